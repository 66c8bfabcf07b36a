//! `GET /api/v1/orders/{order_id}`: the caller's own orders only.

use actix_web::{HttpResponse, web};

use crate::api::OrderBody;
use crate::auth::Caller;
use crate::problem::Problem;
use crate::state::AppState;

/// One of the caller's orders (another user's order is "not found", not "forbidden": no probing).
#[utoipa::path(get, path = "/api/v1/orders/{order_id}", tag = "orders",
    params(("order_id" = i64, Path, description = "Order id")), security(("bearer" = [])),
    responses((status = 200, body = OrderBody), (status = 404, body = Problem)))]
pub(crate) async fn get_order(
    state: web::Data<AppState>,
    caller: Caller,
    order_id: web::Path<i64>,
) -> Result<HttpResponse, Problem> {
    // order-service answers "not found" for another user's order (no probing of ids).
    let order = state.orders_for(caller.0).get_order(order_id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(OrderBody {
        id: order.id,
        user_id: order.user_id,
        goods_id: order.goods_id,
        ticket: order.ticket,
        price_cents: order.price_cents,
        status: order.status,
        created_at: order.created_at,
    }))
}
