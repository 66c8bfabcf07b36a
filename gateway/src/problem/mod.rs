//! Errors as RFC 9457 problem details (`application/problem+json`) with a stable `code`.
//!
//! Client mistakes are 4xx with a code a client can branch on; a dependency failure is a 503
//! with `Retry-After`; only a bug is a 500. Every error a handler meets converts into a
//! [`Problem`] here, one mapping per source, so the same case reads the same on every route and
//! handlers just use `?`:
//!
//! - `user`, `stock`, `order`: the services' errors (`rpc::Error<UserError>`, ...);
//! - `defences`: the captcha, path token and user gate errors;
//! - `call`: what is left of a failed call (the transport: 503; a bug: 500).

mod call;
mod defences;
mod order;
mod stock;
mod user;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

/// A problem, as sent to the client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub(crate) struct Problem {
    /// A URI naming the problem type (`urn:seckill:problem:<code>`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the problem type.
    pub title: &'static str,
    /// HTTP status.
    pub status: u16,
    /// What happened in this case.
    pub detail: String,
    /// Stable machine-readable code (`SOLD_OUT`, `RATE_LIMITED`, ...).
    pub code: &'static str,
    /// Seconds to wait before trying again, when that helps (also sent as `Retry-After`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

impl Problem {
    fn new(status: StatusCode, code: &'static str, title: &'static str, detail: impl Into<String>) -> Problem {
        Problem {
            kind: format!("urn:seckill:problem:{}", code.to_lowercase().replace('_', "-")),
            title,
            status: status.as_u16(),
            detail: detail.into(),
            code,
            retry_after: None,
        }
    }

    /// 400: the request is malformed or invalid.
    pub(crate) fn validation(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "VALIDATION", "Invalid request", detail)
    }
    /// 400: wrong captcha answer.
    pub(crate) fn bad_captcha() -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "BAD_CAPTCHA", "Wrong captcha", "the captcha answer is wrong or expired")
    }
    /// 401: no valid token.
    pub(crate) fn unauthorized(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "Unauthorized", detail)
    }
    /// 403: authenticated but not allowed.
    pub(crate) fn forbidden(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::FORBIDDEN, "FORBIDDEN", "Forbidden", detail)
    }
    /// 403: the seckill path is unknown, used, expired, or another user's.
    pub(crate) fn bad_path() -> Problem {
        Problem::new(
            StatusCode::FORBIDDEN,
            "BAD_PATH",
            "Bad seckill path",
            "the seckill path is invalid, used or expired",
        )
    }
    /// 403: the sale has not started.
    pub(crate) fn not_started(starts_at: chrono::DateTime<chrono::Utc>) -> Problem {
        Problem::new(
            StatusCode::FORBIDDEN,
            "NOT_STARTED",
            "Sale not started",
            format!("the sale starts at {starts_at}"),
        )
    }
    /// 404: no such resource.
    pub(crate) fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "NOT_FOUND", "Not found", detail)
    }
    /// 404: no goods with this id is on sale.
    pub(crate) fn no_goods(goods_id: i64) -> Problem {
        Problem::not_found(format!("no goods {goods_id} on sale"))
    }
    /// 405: the path exists, the method does not.
    pub(crate) fn method_not_allowed() -> Problem {
        Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "Method not allowed",
            "this path does not take that method",
        )
    }
    /// 409: nothing left.
    pub(crate) fn sold_out() -> Problem {
        Problem::new(StatusCode::CONFLICT, "SOLD_OUT", "Sold out", "the sale is sold out")
    }
    /// 409: already bought.
    pub(crate) fn duplicate_order() -> Problem {
        Problem::new(
            StatusCode::CONFLICT,
            "DUPLICATE_ORDER",
            "Duplicate order",
            "you already have an order for this goods",
        )
    }
    /// 409: the order is not in a state that allows this (`ORDER_PAID`, `ORDER_CANCELLED`,
    /// `PAYMENT_WINDOW_CLOSED`).
    pub(crate) fn order_state(code: &'static str, detail: &'static str) -> Problem {
        Problem::new(StatusCode::CONFLICT, code, "Order state", detail)
    }
    /// 422: an Idempotency-Key sent again with another request.
    pub(crate) fn idempotency_key_reused() -> Problem {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "IDEMPOTENCY_KEY_REUSED",
            "Idempotency key reused",
            "this Idempotency-Key was used for another request",
        )
    }
    /// 400: a webhook callback whose signature is missing, stale or wrong.
    pub(crate) fn bad_signature() -> Problem {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "BAD_SIGNATURE",
            "Bad signature",
            "the callback's signature does not verify",
        )
    }
    /// 409: a unique name is taken.
    pub(crate) fn conflict(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::CONFLICT, "CONFLICT", "Conflict", detail)
    }
    /// 403: an operator closed the sales (the live rule `switches.sales_closed`).
    pub(crate) fn sale_closed() -> Problem {
        Problem::new(StatusCode::FORBIDDEN, "SALE_CLOSED", "Sale closed", "the sale was closed by the operator")
    }
    /// 503: an operator turned this off to shed load (a live degrade switch).
    pub(crate) fn degraded(detail: impl Into<String>) -> Problem {
        let mut problem = Problem::new(StatusCode::SERVICE_UNAVAILABLE, "DEGRADED", "Temporarily off", detail);
        problem.retry_after = Some(5);
        problem
    }
    /// 410: the sale is over.
    pub(crate) fn ended() -> Problem {
        Problem::new(StatusCode::GONE, "ENDED", "Sale ended", "the sale is over")
    }
    /// 413: the body is too large.
    pub(crate) fn too_large(limit: usize) -> Problem {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "TOO_LARGE",
            "Payload too large",
            format!("bodies are limited to {limit} bytes"),
        )
    }
    /// 429: slow down.
    pub(crate) fn rate_limited(retry_after_secs: u64) -> Problem {
        let mut problem = Problem::new(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", "Too many requests", "slow down");
        problem.retry_after = Some(retry_after_secs.max(1));
        problem
    }
    /// 429: this user or IP is on the blacklist for repeated abuse, for `retry_after_secs` more.
    pub(crate) fn blocked(retry_after_secs: u64) -> Problem {
        let mut problem = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "BLOCKED",
            "Blocked",
            "blocked from the sale for repeated abuse of the rate limits",
        );
        problem.retry_after = Some(retry_after_secs.max(1));
        problem
    }
    /// 503: a dependency is down; nothing was done; try again.
    pub(crate) fn unavailable(detail: impl Into<String>) -> Problem {
        let mut problem =
            Problem::new(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", "Temporarily unavailable", detail);
        problem.retry_after = Some(1);
        problem
    }
    /// 500: a service refused the identity this gateway gave a call (the gateway and the
    /// service do not share the cluster key): an operator's problem, logged as such.
    pub(crate) fn misconfigured(service: &str) -> Problem {
        tracing::error!(service, "the service refused this gateway's identity token: check SECKILL_RPC__KEY");
        Problem::internal()
    }
    /// 500: a bug (details in the logs, not in the answer).
    pub(crate) fn internal() -> Problem {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "Internal error",
            "something went wrong on our side",
        )
    }
}

impl actix_web::Responder for Problem {
    type Body = actix_web::body::BoxBody;

    fn respond_to(self, _: &actix_web::HttpRequest) -> HttpResponse {
        self.error_response()
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.detail)
    }
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        // The codes are a fixed set: a bounded label (the dashboard's funnel counts SOLD_OUT).
        metrics::counter!("gateway_problems_total", "code" => self.code).increment(1);
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json")));
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        response.json(self)
    }
}
