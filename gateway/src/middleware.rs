//! Per-request plumbing: a request id on every response and log line (carried into every RPC as
//! the trace id), the local rate limits on the public API, and HTTP metrics.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;
use tracing::Instrument;
use uuid::Uuid;

use crate::problem::Problem;
use crate::state::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The middleware (wrap the app with `from_fn(request_context)`).
pub(crate) async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    // A caller's own request id is kept if it is a UUID, so one id follows a request end to end.
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| Uuid::parse_str(value).ok())
        .unwrap_or_else(Uuid::new_v4);
    if req.path().starts_with("/api/") {
        if let Some(state) = req.app_data::<web::Data<AppState>>() {
            let ip = req.peer_addr().map(|addr| addr.ip());
            if let Err(wait_secs) = state.local_limits.check(ip) {
                metrics::counter!("http_rate_limited_total", "limit" => "local").increment(1);
                return Err(Problem::rate_limited(wait_secs).into());
            }
        }
    }
    // Labels are bounded: a method outside the standard ones is "other", never a new series.
    let method = match *req.method() {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    };
    let span = tracing::info_span!("http", request_id = %request_id, method = %req.method(), path = %req.path());
    let started = Instant::now();
    let context = rpc::Context::default().with_trace_id(request_id.as_u128());
    let mut response = context.scope(next.call(req)).instrument(span).await?;
    if let Ok(value) = HeaderValue::from_str(&request_id.to_string()) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    let status = response.status().as_u16().to_string();
    let route = response.request().match_name().unwrap_or("unmatched").to_owned();
    metrics::histogram!("http_request_seconds", "route" => route.clone(), "method" => method)
        .record(started.elapsed().as_secs_f64());
    metrics::counter!("http_requests_total", "route" => route, "method" => method, "status" => status).increment(1);
    Ok(response)
}
