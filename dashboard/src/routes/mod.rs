//! The routes, one file per area.

mod demo;
mod live;
mod page;
mod rules;
mod session;

use actix_web::web;

/// Registers every route.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(page::index))
        .route("/assets/{name}", web::get().to(page::asset))
        .route("/healthz", web::get().to(page::healthz))
        .route("/api/login", web::post().to(session::login))
        .route("/api/dev-login", web::post().to(session::development_login))
        .route("/api/logout", web::post().to(session::logout))
        .route("/api/session", web::get().to(session::session))
        .route("/api/snapshot", web::get().to(live::snapshot))
        .route("/api/stream", web::get().to(live::stream))
        .route("/api/rules", web::get().to(rules::get))
        .route("/api/rules", web::put().to(rules::put))
        .route("/api/demo", web::post().to(demo::start));
}
