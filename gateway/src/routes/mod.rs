//! The routes, one file per area. Every resource answers a wrong method with a 405 problem.

mod admin;
mod goods;
mod ops;
mod orders;
mod seckill;
mod users;

use actix_web::{Resource, web};

pub(crate) use self::admin::*;
pub(crate) use self::goods::*;
pub(crate) use self::ops::*;
pub(crate) use self::orders::*;
pub(crate) use self::seckill::*;
pub(crate) use self::users::*;
use crate::problem::Problem;

/// The client's IP, as the connection shows it.
pub(crate) fn client_ip(request: &actix_web::HttpRequest) -> Option<std::net::IpAddr> {
    request.peer_addr().map(|addr| addr.ip())
}

/// A named resource whose unknown methods get a problem+json 405. The name labels its metrics
/// (reading it after routing costs nothing, unlike matching the path against every pattern again).
pub(crate) fn resource(name: &str, path: &str) -> Resource {
    web::resource(path).name(name).default_service(web::to(|| async { Problem::method_not_allowed() }))
}

/// Registers every route (but `/openapi.json`, which `crate::openapi` serves). Routes are tried in
/// order and each pattern with a `{segment}` is a regular expression, so the crowd's routes
/// (order, path, result) come first.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("place_order", "/api/v1/seckill/goods/{goods_id}/{path}/orders").route(web::post().to(place_order)),
    )
    .service(resource("path", "/api/v1/seckill/goods/{goods_id}/path").route(web::post().to(path)))
    .service(resource("result", "/api/v1/seckill/goods/{goods_id}/result").route(web::get().to(result)))
    .service(resource("captcha", "/api/v1/seckill/goods/{goods_id}/captcha").route(web::get().to(captcha)))
    .service(resource("goods", "/api/v1/seckill/goods").route(web::get().to(list_goods)))
    .service(resource("goods_detail", "/api/v1/seckill/goods/{goods_id}").route(web::get().to(goods_detail)))
    .service(resource("register", "/api/v1/users/register").route(web::post().to(register)))
    .service(resource("login", "/api/v1/users/login").route(web::post().to(login)))
    .service(resource("orders", "/api/v1/orders").route(web::get().to(list_orders)))
    .service(resource("order", "/api/v1/orders/{order_id}").route(web::get().to(get_order)))
    .service(resource("order_pay", "/api/v1/orders/{order_id}/pay").route(web::post().to(pay)))
    .service(resource("order_cancel", "/api/v1/orders/{order_id}/cancel").route(web::post().to(cancel_order)))
    .service(resource("payment_webhook", "/api/v1/payments/webhook").route(web::post().to(payment_webhook)))
    .service(resource("healthz", "/healthz").route(web::get().to(healthz)))
    .service(resource("readyz", "/readyz").route(web::get().to(readyz)))
    .service(resource("admin_create_goods", "/admin/v1/goods").route(web::post().to(create_goods)))
    .service(resource("admin_warmup", "/admin/v1/goods/{goods_id}/warmup").route(web::post().to(warm_up)))
    .service(resource("admin_stats", "/admin/v1/goods/{goods_id}/stats").route(web::get().to(stats)))
    .service(resource("admin_audit_goods", "/admin/v1/goods/{goods_id}/audit").route(web::get().to(audit_goods)))
    .service(resource("admin_audit", "/admin/v1/audit").route(web::get().to(audit_all)))
    .service(resource("admin_bulk_users", "/admin/v1/users/bulk").route(web::post().to(bulk_users)))
    .service(resource("admin_blacklist", "/admin/v1/blacklist").route(web::get().to(list_blacklist)))
    .service(
        resource("admin_blacklist_entry", "/admin/v1/blacklist/{kind}/{id}").route(web::delete().to(lift_blacklist)),
    );
}
