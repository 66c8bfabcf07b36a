//! Errors of the dashboard's API: RFC 9457 problem+json with a stable code, like the gateway's.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// A problem answer.
#[derive(Clone, Debug, Serialize, thiserror::Error)]
#[error("{code}: {detail}")]
pub(crate) struct Problem {
    #[serde(rename = "type")]
    kind: String,
    status: u16,
    code: &'static str,
    detail: String,
}

impl Problem {
    fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Problem {
        let kind = format!("urn:seckill:problem:{}", code.to_lowercase().replace('_', "-"));
        Problem { kind, status: status.as_u16(), code, detail: detail.into() }
    }

    /// 400.
    pub(crate) fn validation(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "VALIDATION", detail)
    }
    /// 401.
    pub(crate) fn unauthorized(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", detail)
    }
    /// 403.
    pub(crate) fn forbidden(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::FORBIDDEN, "FORBIDDEN", detail)
    }
    /// 404.
    pub(crate) fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "NOT_FOUND", detail)
    }
    /// 409.
    pub(crate) fn conflict(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::CONFLICT, "CONFLICT", detail)
    }
    /// 503.
    pub(crate) fn unavailable(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", detail)
    }
    /// 500, saying nothing of the cause (it is logged).
    pub(crate) fn internal() -> Problem {
        Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "something went wrong")
    }
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code())
            .insert_header((header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json")))
            .json(self)
    }
}
