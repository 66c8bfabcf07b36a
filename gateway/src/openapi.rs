//! The OpenAPI document, generated from the handlers' annotations, and its route
//! (`/openapi.json`).

use actix_web::{HttpResponse, web};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::api::*;
use crate::problem::Problem;
use crate::routes;

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "Seckill gateway", description = "The public HTTP API of the Seckill flash-sale system."),
    paths(
        routes::healthz, routes::readyz, serve,
        routes::register, routes::login,
        routes::list_goods, routes::goods_detail, routes::captcha, routes::path, routes::place_order, routes::result,
        routes::get_order, routes::list_orders, routes::pay, routes::cancel_order, routes::payment_webhook,
        routes::create_goods, routes::warm_up, routes::stats, routes::audit_goods, routes::audit_all, routes::bulk_users,
        routes::list_blacklist, routes::lift_blacklist,
    ),
    components(schemas(Problem, CredentialsBody, UserBody, SessionBody, GoodsBody, GoodsListBody, GoodsDetailBody,
        PathRequest, PathBody, TicketBody, ResultBody, OrderBody, NewGoodsBody, BulkUsersBody, BulkUsersCreated,
        IssuedUserBody, StatsBody, GoodsAuditBody, AuditBody, HealthBody, ReadyBody, BlacklistBody, BlacklistEntryBody,
        OrderListBody, PayRequest, SandboxBody, PaymentBody, CallbackBody)),
    modifiers(&BearerAuth),
    tags((name = "users"), (name = "seckill"), (name = "orders"), (name = "admin"), (name = "ops")),
)]
pub(crate) struct ApiDoc;

/// Registers `/openapi.json`.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(routes::resource("openapi", "/openapi.json").route(web::get().to(serve)));
}

/// This API's OpenAPI document.
#[utoipa::path(get, path = "/openapi.json", tag = "ops", responses((status = 200, description = "OpenAPI 3 document")))]
pub(crate) async fn serve() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

/// Declares the bearer JWT scheme the secured paths refer to.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}
