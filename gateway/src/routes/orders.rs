//! The caller's orders: one, the list, paying, cancelling; and the payment provider's webhook.

use actix_web::{HttpRequest, HttpResponse, web};
use contracts::order::{MAX_PAGE, SandboxInstructions};

use crate::api::{CallbackBody, OrderBody, OrderListBody, OrderListQuery, PayRequest, PaymentBody};
use crate::auth::Caller;
use crate::problem::Problem;
use crate::state::AppState;

/// The header a payment request carries its idempotency key in.
const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// One of the caller's orders (another user's order is "not found", not "forbidden": no probing).
#[utoipa::path(get, path = "/api/v1/orders/{order_id}", tag = "orders",
    params(("order_id" = i64, Path, description = "Order id")), security(("bearer" = [])),
    responses((status = 200, body = OrderBody), (status = 404, body = Problem)))]
pub(crate) async fn get_order(
    state: web::Data<AppState>,
    caller: Caller,
    order_id: web::Path<i64>,
) -> Result<HttpResponse, Problem> {
    let order = state.orders_for(caller.0).get_order(order_id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(OrderBody::from(order)))
}

/// The caller's orders, newest first, a page at a time.
#[utoipa::path(get, path = "/api/v1/orders", tag = "orders", params(OrderListQuery), security(("bearer" = [])),
    responses((status = 200, body = OrderListBody), (status = 400, body = Problem), (status = 401, body = Problem)))]
pub(crate) async fn list_orders(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<OrderListQuery>,
) -> Result<HttpResponse, Problem> {
    let limit = query.limit.unwrap_or(20);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Problem::validation(format!("limit must be 1 to {MAX_PAGE}")));
    }
    let page = state.orders_for(caller.0).list_orders(query.before, limit).await?;
    Ok(HttpResponse::Ok().json(OrderListBody::from(page)))
}

/// Pays one of the caller's unpaid orders through the payment provider. The `Idempotency-Key`
/// header is required: the same key answers the same payment and never charges twice. The
/// provider's callback settles it; poll the order for `paid`.
#[utoipa::path(post, path = "/api/v1/orders/{order_id}/pay", tag = "orders", request_body = Option<PayRequest>,
    params(("order_id" = i64, Path, description = "Order id"),
        ("Idempotency-Key" = String, Header, description = "One key per payment attempt, e.g. a UUID")),
    security(("bearer" = [])),
    responses((status = 202, body = PaymentBody), (status = 400, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem), (status = 503, body = Problem)))]
pub(crate) async fn pay(
    state: web::Data<AppState>,
    caller: Caller,
    order_id: web::Path<i64>,
    request: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, Problem> {
    let key = request
        .headers()
        .get(IDEMPOTENCY_KEY)
        .and_then(|value| value.to_str().ok())
        .filter(|key| !key.trim().is_empty())
        .ok_or_else(|| Problem::validation("the Idempotency-Key header is required"))?
        .trim()
        .to_owned();
    let pay: PayRequest = if body.iter().all(u8::is_ascii_whitespace) {
        PayRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|err| Problem::validation(format!("malformed body: {err}")))?
    };
    let sandbox =
        pay.sandbox.map(|s| SandboxInstructions { succeed: s.succeed, callback_after_ms: s.callback_after_ms });
    let payment = state.orders_for(caller.0).pay(order_id.into_inner(), key, sandbox).await?;
    Ok(HttpResponse::Accepted().json(PaymentBody::from(payment)))
}

/// Cancels one of the caller's unpaid orders: its unit goes back on sale and the caller may buy
/// again. Cancelling a cancelled order answers it as it is.
#[utoipa::path(post, path = "/api/v1/orders/{order_id}/cancel", tag = "orders",
    params(("order_id" = i64, Path, description = "Order id")), security(("bearer" = [])),
    responses((status = 200, body = OrderBody), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub(crate) async fn cancel_order(
    state: web::Data<AppState>,
    caller: Caller,
    order_id: web::Path<i64>,
) -> Result<HttpResponse, Problem> {
    let order = state.orders_for(caller.0).cancel(order_id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(OrderBody::from(order)))
}

/// The payment provider's callback. No bearer token: order-service verifies the body's HMAC
/// signature (`Seckill-Signature: t=<unix seconds>,v1=<hex>`) with the webhook secret, which the
/// gateway never holds.
#[utoipa::path(post, path = "/api/v1/payments/webhook", tag = "orders",
    params(("Seckill-Signature" = String, Header, description = "t=<unix seconds>,v1=<hex HMAC-SHA256 of \"t.body\">")),
    responses((status = 200, body = CallbackBody), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn payment_webhook(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, Problem> {
    let signature = request
        .headers()
        .get(contracts::order::SIGNATURE_HEADER)
        .and_then(|value| value.to_str().ok())
        .ok_or_else(Problem::bad_signature)?
        .to_owned();
    let outcome = state.orders_as_gateway().payment_callback(body.to_vec(), signature).await?;
    Ok(HttpResponse::Ok().json(CallbackBody::from(outcome)))
}
