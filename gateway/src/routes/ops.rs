//! `/healthz`, `/readyz`, `/metrics`, `/openapi.json`.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};

use contracts::names;

use crate::api::{HealthBody, ReadyBody};
use crate::state::AppState;

/// Liveness: the process answers. Also tells whether the captcha test mode is on.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = HealthBody)))]
pub(crate) async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(HealthBody {
        status: "ok",
        captcha_test_mode: state.captchas.test_mode(),
        rules_version: state.rules_version(),
    })
}

/// Readiness: Redis answers and every service has at least one known instance.
#[utoipa::path(get, path = "/readyz", tag = "ops", responses((status = 200, body = ReadyBody), (status = 503, body = ReadyBody)))]
pub(crate) async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let mut checks = BTreeMap::new();
    let redis = async {
        let mut conn = state.redis.clone();
        redis::cmd("PING").query_async::<String>(&mut conn).await.map_err(|e| e.to_string())
    };
    checks.insert("redis".to_owned(), redis.await.map(|_| "ok".to_owned()).unwrap_or_else(|e| e));
    let services = [
        (names::USER_SERVICE, state.users.transport().discovery().instances().len()),
        (names::STOCK_SERVICE, state.stock.transport().discovery().instances().len()),
        (names::ORDER_SERVICE, state.orders.transport().discovery().instances().len()),
    ];
    for (name, instances) in services {
        let status = if instances > 0 { "ok".to_owned() } else { "no instance registered".to_owned() };
        checks.insert(name.to_owned(), status);
    }
    let ready = checks.values().all(|status| status == "ok");
    let body = ReadyBody { ready, checks };
    if ready { HttpResponse::Ok().json(body) } else { HttpResponse::ServiceUnavailable().json(body) }
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "ops", responses((status = 200, content_type = "text/plain", description = "Prometheus text format")))]
pub(crate) async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(state.metrics.render())
}
