//! stock-service's errors.

use contracts::stock::StockError;

use super::Problem;

impl From<rpc::Error<StockError>> for Problem {
    fn from(err: rpc::Error<StockError>) -> Problem {
        match err {
            rpc::Error::Application(err) => match err {
                StockError::UnknownGoods(id) => Problem::no_goods(id),
                StockError::NotWarmed(id) => Problem::not_found(format!("goods {id} is not warmed up")),
                StockError::Invalid(detail) => Problem::validation(detail),
                StockError::Unauthenticated => Problem::misconfigured("stock-service"),
                StockError::Forbidden => Problem::forbidden("admin role required"),
                StockError::Unavailable(_) => Problem::unavailable("stock-service is unavailable"),
            },
            other => super::call::failure("stock-service", other),
        }
    }
}
