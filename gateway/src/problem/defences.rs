//! The seckill defences' errors.

use super::Problem;
use crate::defences::{CaptchaError, GateError, PathError, Refused, SignInError};

impl From<CaptchaError> for Problem {
    fn from(err: CaptchaError) -> Problem {
        match err {
            CaptchaError::Wrong => Problem::bad_captcha(),
            CaptchaError::TooManyFailures { retry_after_secs } => Problem::rate_limited(retry_after_secs),
            CaptchaError::Drawing => Problem::internal(),
            CaptchaError::Store(err) => store_unavailable(&err),
        }
    }
}

impl From<PathError> for Problem {
    fn from(err: PathError) -> Problem {
        match err {
            PathError::Invalid => Problem::bad_path(),
        }
    }
}

impl From<Refused> for Problem {
    fn from(refused: Refused) -> Problem {
        match refused {
            Refused::Gate(err) => err.into(),
            Refused::Captcha(err) => err.into(),
            Refused::Path(err) => err.into(),
        }
    }
}

impl From<GateError> for Problem {
    fn from(err: GateError) -> Problem {
        match err {
            GateError::Limited { retry_after_secs } => Problem::rate_limited(retry_after_secs),
            GateError::Blocked { retry_after_secs } => Problem::blocked(retry_after_secs),
            GateError::Store(err) => {
                tracing::warn!(%err, "user gate unavailable");
                Problem::unavailable("rate limiter unavailable")
            }
        }
    }
}

fn store_unavailable(err: &str) -> Problem {
    tracing::warn!(%err, "token store unavailable");
    Problem::unavailable("token store unavailable")
}

impl From<SignInError> for Problem {
    fn from(err: SignInError) -> Problem {
        match err {
            SignInError::TooMany { retry_after_secs } => Problem::rate_limited(retry_after_secs),
            SignInError::Store(err) => {
                tracing::warn!(%err, "sign-in limiter unavailable");
                Problem::unavailable("sign-in limiter unavailable")
            }
        }
    }
}
