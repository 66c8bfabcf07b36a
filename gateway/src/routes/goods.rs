//! `GET /api/v1/seckill/goods`, `GET /api/v1/seckill/goods/{goods_id}`: from the in-memory cache.

use actix_web::{HttpResponse, web};
use chrono::Utc;

use crate::api::{GoodsBody, GoodsDetailBody, GoodsListBody};
use crate::problem::Problem;
use crate::state::AppState;

/// Every goods on sale, with the server time.
#[utoipa::path(get, path = "/api/v1/seckill/goods", tag = "seckill",
    responses((status = 200, body = GoodsListBody), (status = 503, body = Problem)))]
pub(crate) async fn list_goods(state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let now = Utc::now();
    let goods = state.goods.list().await?;
    let goods = goods.iter().map(|g| GoodsBody::new(g, now)).collect();
    Ok(HttpResponse::Ok().json(GoodsListBody { server_time: now, goods }))
}

/// One goods, with the server time.
#[utoipa::path(get, path = "/api/v1/seckill/goods/{goods_id}", tag = "seckill",
    params(("goods_id" = i64, Path, description = "Goods id")),
    responses((status = 200, body = GoodsDetailBody), (status = 404, body = Problem)))]
pub(crate) async fn goods_detail(
    state: web::Data<AppState>,
    goods_id: web::Path<i64>,
) -> Result<HttpResponse, Problem> {
    let now = Utc::now();
    let goods = state.goods.get(goods_id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(GoodsDetailBody { server_time: now, goods: GoodsBody::new(&goods, now) }))
}
