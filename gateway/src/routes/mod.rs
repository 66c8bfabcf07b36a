//! The routes, one file per area. Every resource answers a wrong method with a 405 problem.

mod admin;
mod goods;
mod ops;
mod orders;
mod seckill;
mod users;

use actix_web::{Resource, web};

pub use self::admin::*;
pub use self::goods::*;
pub use self::ops::*;
pub use self::orders::*;
pub use self::seckill::*;
pub use self::users::*;
use crate::problem::Problem;

/// A resource whose unknown methods get a problem+json 405.
fn resource(path: &str) -> Resource {
    web::resource(path).default_service(web::to(|| async { Problem::method_not_allowed() }))
}

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/healthz").route(web::get().to(healthz)))
        .service(resource("/readyz").route(web::get().to(readyz)))
        .service(resource("/metrics").route(web::get().to(metrics)))
        .service(resource("/openapi.json").route(web::get().to(openapi)))
        .service(resource("/api/v1/users/register").route(web::post().to(register)))
        .service(resource("/api/v1/users/login").route(web::post().to(login)))
        .service(resource("/api/v1/seckill/goods").route(web::get().to(list_goods)))
        .service(resource("/api/v1/seckill/goods/{goods_id}").route(web::get().to(goods_detail)))
        .service(resource("/api/v1/seckill/goods/{goods_id}/captcha").route(web::get().to(captcha)))
        .service(resource("/api/v1/seckill/goods/{goods_id}/path").route(web::post().to(path)))
        .service(resource("/api/v1/seckill/goods/{goods_id}/result").route(web::get().to(result)))
        .service(resource("/api/v1/seckill/goods/{goods_id}/{path}/orders").route(web::post().to(place_order)))
        .service(resource("/api/v1/orders/{order_id}").route(web::get().to(get_order)))
        .service(resource("/admin/v1/goods").route(web::post().to(create_goods)))
        .service(resource("/admin/v1/goods/{goods_id}/warmup").route(web::post().to(warm_up)))
        .service(resource("/admin/v1/goods/{goods_id}/stats").route(web::get().to(stats)))
        .service(resource("/admin/v1/goods/{goods_id}/audit").route(web::get().to(audit_goods)))
        .service(resource("/admin/v1/audit").route(web::get().to(audit_all)))
        .service(resource("/admin/v1/users/bulk").route(web::post().to(bulk_users)));
}
