//! user-service's errors.

use contracts::user::UserError;

use super::Problem;

impl From<rpc::Error<UserError>> for Problem {
    fn from(err: rpc::Error<UserError>) -> Problem {
        match err {
            rpc::Error::Application(err) => match err {
                UserError::UsernameTaken => Problem::conflict("username already taken"),
                UserError::Invalid(detail) => Problem::validation(detail),
                UserError::InvalidCredentials => Problem::unauthorized("invalid username or password"),
                UserError::NotFound => Problem::not_found("no such user"),
                UserError::Unauthenticated => Problem::misconfigured("user-service"),
                UserError::Forbidden => Problem::forbidden("admin role required"),
                UserError::Busy => Problem::unavailable("too many sign-ins at once, try again"),
                UserError::Unavailable(_) => Problem::unavailable("user-service is unavailable"),
            },
            other => super::call::failure("user-service", other),
        }
    }
}
