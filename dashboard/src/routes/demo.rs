//! `POST /api/demo`: starts a demo sale (one at a time).

use actix_web::{HttpResponse, web};

use crate::auth::Admin;
use crate::demo::DemoRequest;
use crate::problem::Problem;
use crate::state::AppState;

/// Starts it: 202, or 409 while another runs.
pub(crate) async fn start(
    state: web::Data<AppState>,
    admin: Admin,
    request: web::Json<DemoRequest>,
) -> Result<HttpResponse, Problem> {
    let request = request.into_inner();
    request.validate().map_err(Problem::validation)?;
    state.demo.start(request, admin.token).map_err(Problem::conflict)?;
    tracing::info!(admin = admin.actor.user_id, ?request, "demo sale started");
    Ok(HttpResponse::Accepted().finish())
}
