//! The live rules: `GET /api/rules` (in force, and the log of changes) and `PUT /api/rules` (a
//! change based on the version the admin saw: 409 if someone changed them meanwhile).

use actix_web::{HttpResponse, web};
use platform::rules::{RuleError, Rules};
use serde::Deserialize;
use serde_json::json;

use crate::auth::Admin;
use crate::problem::Problem;
use crate::state::AppState;

/// Changes kept in the answer of `GET`.
const LOG_SHOWN: usize = 20;

/// A change.
#[derive(Deserialize)]
pub(crate) struct RuleChange {
    /// The version the change is based on.
    version: u64,
    /// The new rules (all of them).
    rules: Rules,
}

/// The rules in force and the latest changes.
pub(crate) async fn get(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse, Problem> {
    let current = state.rules.current().await.map_err(unavailable)?;
    let log = state.rules.log(LOG_SHOWN).await.map_err(unavailable)?;
    Ok(HttpResponse::Ok().json(json!({"current": current, "log": log})))
}

/// Changes the rules.
pub(crate) async fn put(
    state: web::Data<AppState>,
    admin: Admin,
    change: web::Json<RuleChange>,
) -> Result<HttpResponse, Problem> {
    let change = change.into_inner();
    let by = format!("user:{}", admin.actor.user_id);
    match state.rules.change(change.version, change.rules, &by).await {
        Ok(set) => Ok(HttpResponse::Ok().json(set)),
        Err(err @ RuleError::Stale { .. }) => Err(Problem::conflict(err.to_string())),
        Err(RuleError::Invalid(reason)) => Err(Problem::validation(reason)),
        Err(err) => Err(unavailable(err)),
    }
}

fn unavailable(err: RuleError) -> Problem {
    tracing::warn!(%err, "rule store unavailable");
    Problem::unavailable("the rule store is unavailable")
}
