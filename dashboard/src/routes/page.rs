//! The page and its assets, compiled into the binary (no CDN: it works offline), and `/healthz`.

use actix_web::{HttpResponse, web};

/// `(name, content type, bytes)` of every asset.
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("app.js", "text/javascript; charset=utf-8", include_bytes!("../../assets/app.js")),
    ("app.css", "text/css; charset=utf-8", include_bytes!("../../assets/app.css")),
    ("uPlot.iife.min.js", "text/javascript; charset=utf-8", include_bytes!("../../assets/vendor/uPlot.iife.min.js")),
    ("uPlot.min.css", "text/css; charset=utf-8", include_bytes!("../../assets/vendor/uPlot.min.css")),
];

/// `GET /`.
pub(crate) async fn index() -> HttpResponse {
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(include_str!("../../assets/index.html"))
}

/// `GET /assets/{name}`.
pub(crate) async fn asset(name: web::Path<String>) -> HttpResponse {
    match ASSETS.iter().find(|(asset, _, _)| *asset == name.as_str()) {
        Some((_, content_type, bytes)) => HttpResponse::Ok()
            .content_type(*content_type)
            .insert_header(("Cache-Control", "public, max-age=300"))
            .body(*bytes),
        None => HttpResponse::NotFound().finish(),
    }
}

/// `GET /healthz`.
pub(crate) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}
