//! The gathered figures: `GET /api/snapshot` (the latest) and `GET /api/stream` (Server-Sent
//! Events: the funnel's history once, then every snapshot as it is gathered).

use actix_web::{HttpResponse, web};
use bytes::Bytes;

use crate::auth::Admin;
use crate::state::AppState;

/// The latest snapshot.
pub(crate) async fn snapshot(state: web::Data<AppState>, _admin: Admin) -> HttpResponse {
    let published = state.published.borrow().clone();
    HttpResponse::Ok().content_type("application/json").body(published.snapshot.clone())
}

/// The stream. Each page holds one receiver of the latest snapshot (never a queue of them), so a
/// slow page skips snapshots instead of making the server buffer them.
pub(crate) async fn stream(state: web::Data<AppState>, _admin: Admin) -> HttpResponse {
    let mut receiver = state.published.clone();
    let history = receiver.borrow_and_update().history.clone();
    let first = Bytes::from(format!("event: history\ndata: {history}\n\n"));
    let updates = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.changed().await.ok()?;
        let snapshot = receiver.borrow_and_update().snapshot.clone();
        Some((Ok::<_, actix_web::Error>(Bytes::from(format!("data: {snapshot}\n\n"))), receiver))
    });
    let events = futures::StreamExt::chain(futures::stream::once(async move { Ok(first) }), updates);
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(events)
}
