//! order-service's errors.

use contracts::order::OrderError;

use super::Problem;

impl From<rpc::Error<OrderError>> for Problem {
    fn from(err: rpc::Error<OrderError>) -> Problem {
        match err {
            rpc::Error::Application(err) => match err {
                OrderError::SoldOut => Problem::sold_out(),
                OrderError::Duplicate => Problem::duplicate_order(),
                OrderError::NotStarted { starts_at } => Problem::not_started(starts_at),
                OrderError::Ended => Problem::ended(),
                OrderError::UnknownGoods(id) => Problem::no_goods(id),
                OrderError::NotFound => Problem::not_found("no such order"),
                OrderError::Unauthenticated => Problem::misconfigured("order-service"),
                OrderError::Forbidden => Problem::forbidden("admin role required"),
                OrderError::Unavailable(detail) => Problem::unavailable(detail),
                OrderError::AlreadyPaid => Problem::order_state("ORDER_PAID", "the order is paid"),
                OrderError::AlreadyCancelled => Problem::order_state("ORDER_CANCELLED", "the order is cancelled"),
                OrderError::PaymentWindowClosed => {
                    Problem::order_state("PAYMENT_WINDOW_CLOSED", "the order's payment window closed")
                }
                OrderError::IdempotencyKeyReused => Problem::idempotency_key_reused(),
                OrderError::BadSignature => Problem::bad_signature(),
                OrderError::Invalid(detail) => Problem::validation(detail),
            },
            other => super::call::failure("order-service", other),
        }
    }
}
