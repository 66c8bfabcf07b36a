//! The purchase: captcha → path → order → result.
//!
//! Each step runs its checks cheapest first, so a crowd is turned away before it costs anything:
//! JWT (local) → the sold-out flag (local) → the per-user gate (one Redis script) → the captcha or
//! the path (Redis) → the order RPC. After a sell-out, an order attempt costs no RPC and no Redis.

use actix_web::{HttpRequest, HttpResponse, web};
use contracts::order::{OrderError, OrderResult};

use super::client_ip;
use crate::api::{PathBody, PathRequest, ResultBody, TicketBody};
use crate::auth::Caller;
use crate::defences::{PathError, Refused, Then};
use crate::problem::Problem;
use crate::state::AppState;

/// A captcha image for this goods (answer valid 5 minutes, single use).
#[utoipa::path(get, path = "/api/v1/seckill/goods/{goods_id}/captcha", tag = "seckill",
    params(("goods_id" = i64, Path, description = "Goods id")), security(("bearer" = [])),
    responses((status = 200, content_type = "image/png", description = "PNG image"), (status = 401, body = Problem), (status = 429, body = Problem)))]
pub(crate) async fn captcha(
    state: web::Data<AppState>,
    request: HttpRequest,
    caller: Caller,
    goods_id: web::Path<i64>,
) -> Result<HttpResponse, Problem> {
    let goods_id = goods_id.into_inner();
    if state.rules.current().rules.switches.captchas_off {
        return Err(Problem::degraded("captchas are switched off for now"));
    }
    state.user_gate.admit(caller.0.user_id, client_ip(&request), Then::Nothing).await?;
    let png = state.captchas.issue(caller.0.user_id, goods_id).await?;
    Ok(HttpResponse::Ok().content_type("image/png").insert_header(("Cache-Control", "no-store")).body(png))
}

/// Exchanges a captcha answer for a hidden seckill path (single use, valid `expires_in` seconds).
#[utoipa::path(post, path = "/api/v1/seckill/goods/{goods_id}/path", tag = "seckill",
    params(("goods_id" = i64, Path, description = "Goods id")), request_body = PathRequest, security(("bearer" = [])),
    responses((status = 200, body = PathBody), (status = 400, body = Problem), (status = 409, body = Problem), (status = 429, body = Problem)))]
pub(crate) async fn path(
    state: web::Data<AppState>,
    request: HttpRequest,
    caller: Caller,
    goods_id: web::Path<i64>,
    body: web::Json<PathRequest>,
) -> Result<HttpResponse, Problem> {
    let (user_id, goods_id) = (caller.0.user_id, goods_id.into_inner());
    state.check_sales_open()?;
    if state.is_sold_out(goods_id) {
        return Err(Problem::sold_out());
    }
    let answer = if state.without.captcha_and_path { None } else { state.captchas.answer_to_check(&body.captcha)? };
    // Gate, captcha and the new path: one Redis round trip.
    let path = uuid::Uuid::new_v4();
    state.user_gate.admit(user_id, client_ip(&request), Then::IssuePath { goods_id, path, answer }).await?;
    Ok(HttpResponse::Ok().json(PathBody { path, expires_in: state.user_gate.path_ttl().as_secs() }))
}

/// Places the order: 202 with a ticket once the order is safely queued.
#[utoipa::path(post, path = "/api/v1/seckill/goods/{goods_id}/{path}/orders", tag = "seckill",
    params(("goods_id" = i64, Path, description = "Goods id"), ("path" = String, Path, description = "The hidden seckill path")),
    security(("bearer" = [])),
    responses((status = 202, body = TicketBody), (status = 403, body = Problem), (status = 409, body = Problem),
        (status = 410, body = Problem), (status = 429, body = Problem), (status = 503, body = Problem)))]
pub(crate) async fn place_order(
    state: web::Data<AppState>,
    request: HttpRequest,
    caller: Caller,
    params: web::Path<(i64, String)>,
) -> Result<HttpResponse, Problem> {
    let (goods_id, path) = params.into_inner();
    let user_id = caller.0.user_id;
    state.check_sales_open()?;
    if state.is_sold_out(goods_id) {
        state.counters.sold_out_answer();
        return Err(Problem::sold_out());
    }
    // Gate and path: one Redis round trip.
    let then = if state.without.captcha_and_path { Then::Nothing } else { Then::RedeemPath { goods_id, path: &path } };
    match state.user_gate.admit(user_id, client_ip(&request), then).await {
        Ok(()) => {}
        Err(Refused::Path(PathError::Invalid)) => return repeated_order(&state, &caller, goods_id).await,
        Err(refused) => return Err(refused.into()),
    }
    state.counters.place_call();
    let epoch = state.sold_out.epoch();
    // The gateway names the attempt: if the order-service node dies mid-call, the same ticket is
    // placed on another one, and it can neither take a second unit nor make a second order.
    let placed = state.orders_for(caller.0).place(goods_id, uuid::Uuid::new_v4()).await;
    if let Err(rpc::Error::Application(OrderError::SoldOut)) = &placed {
        // This route's own side effect: later attempts are answered here, with no RPC.
        state.sold_out.mark_unless_restocked(goods_id, epoch);
    }
    let ticket = placed?;
    Ok(HttpResponse::Accepted().json(TicketBody { ticket: ticket.ticket, status: "queued" }))
}

/// The answer to an order request whose path is used up: when the buyer's purchase already
/// went through, this is a repeat of it (HAProxy repeats a request a dying gateway never
/// answered, and the first attempt had redeemed the path), and it gets the first attempt's
/// outcome, its queued ticket (202) or, once the order is written, 409 DUPLICATE_ORDER, instead
/// of a 403 for a purchase that worked. Otherwise 403 BAD_PATH. Only the caller's own purchase
/// is looked up, so a wrong path tells a prober nothing new.
async fn repeated_order(state: &AppState, caller: &Caller, goods_id: i64) -> Result<HttpResponse, Problem> {
    match state.orders_for(caller.0).result(goods_id).await {
        Ok(OrderResult::Queued { ticket }) => {
            Ok(HttpResponse::Accepted().json(TicketBody { ticket, status: "queued" }))
        }
        Ok(OrderResult::Success { .. }) => Err(Problem::duplicate_order()),
        _ => Err(Problem::bad_path()),
    }
}

/// Where the caller's purchase of this goods stands.
#[utoipa::path(get, path = "/api/v1/seckill/goods/{goods_id}/result", tag = "seckill",
    params(("goods_id" = i64, Path, description = "Goods id")), security(("bearer" = [])),
    responses((status = 200, body = ResultBody), (status = 401, body = Problem)))]
pub(crate) async fn result(
    state: web::Data<AppState>,
    caller: Caller,
    goods_id: web::Path<i64>,
) -> Result<HttpResponse, Problem> {
    let result = state.orders_for(caller.0).result(goods_id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(ResultBody::from(result)))
}
