//! Logging in and out: with the admin's username and password (user-service checks them), or,
//! in development only, with one click.

use actix_web::{HttpResponse, web};
use contracts::user::{Credentials, UserError};
use contracts::{Actor, Role};
use serde::Deserialize;
use serde_json::json;

use crate::auth::{self, Admin};
use crate::problem::Problem;
use crate::state::AppState;

/// The login form.
#[derive(Deserialize)]
pub(crate) struct LoginForm {
    username: String,
    password: String,
}

/// `POST /api/login`: a session for an admin.
pub(crate) async fn login(state: web::Data<AppState>, form: web::Json<LoginForm>) -> Result<HttpResponse, Problem> {
    let form = form.into_inner();
    let session = state.users.login(Credentials { username: form.username, password: form.password }).await;
    let session = match session {
        Ok(session) => session,
        Err(rpc::Error::Application(UserError::InvalidCredentials)) => {
            return Err(Problem::unauthorized("invalid username or password"));
        }
        Err(err) => {
            tracing::warn!(%err, "login: user-service unavailable");
            return Err(Problem::unavailable("user-service is unavailable"));
        }
    };
    let actor = state.jwt.verify(&session.token).map_err(|_| Problem::unauthorized("the token is not valid here"))?;
    if actor.role != Role::Admin {
        return Err(Problem::forbidden("the dashboard is for admins"));
    }
    tracing::info!(user_id = actor.user_id, "admin logged in to the dashboard");
    Ok(HttpResponse::Ok().cookie(auth::session_cookie(session.token)).json(json!({"user_id": actor.user_id})))
}

/// `POST /api/dev-login`: an admin session without a password, in development only (404
/// elsewhere, as if it did not exist).
pub(crate) async fn development_login(state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    if !state.development_login {
        return Err(Problem::not_found("no such route"));
    }
    let actor = Actor { user_id: 0, role: Role::Admin };
    let (token, _) = state.jwt.issue(actor).map_err(|err| {
        tracing::warn!(%err, "development login: cannot sign");
        Problem::internal()
    })?;
    tracing::warn!("development login used: an admin session without a password");
    Ok(HttpResponse::Ok().cookie(auth::session_cookie(token)).json(json!({"user_id": 0})))
}

/// `POST /api/logout`.
pub(crate) async fn logout() -> HttpResponse {
    let mut cookie = auth::session_cookie(String::new());
    cookie.make_removal();
    HttpResponse::NoContent().cookie(cookie).finish()
}

/// `GET /api/session`: who is logged in, and whether the development login is offered.
pub(crate) async fn session(state: web::Data<AppState>, admin: Option<Admin>) -> HttpResponse {
    match admin {
        Some(admin) => HttpResponse::Ok()
            .json(json!({"user_id": admin.actor.user_id, "development_login": state.development_login})),
        None => HttpResponse::Unauthorized().json(json!({"development_login": state.development_login})),
    }
}
