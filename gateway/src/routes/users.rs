//! `POST /api/v1/users/register`, `POST /api/v1/users/login`.

use actix_web::{HttpResponse, web};
use common::contracts::user::{Credentials, UserError};

use crate::api::{CredentialsBody, SessionBody, UserBody};
use crate::problem::{Problem, rpc_failure};
use crate::state::AppState;

/// A user-service failure as a problem.
pub(crate) fn user_problem(err: rpc::Error<UserError>) -> Problem {
    match err {
        rpc::Error::Application(UserError::UsernameTaken) => Problem::conflict("username already taken"),
        rpc::Error::Application(UserError::Invalid(detail)) => Problem::validation(detail),
        rpc::Error::Application(UserError::InvalidCredentials) => Problem::unauthorized("invalid username or password"),
        rpc::Error::Application(UserError::NotFound) => Problem::not_found("no such user"),
        rpc::Error::Application(UserError::Forbidden) => Problem::forbidden("admin role required"),
        rpc::Error::Application(UserError::Unavailable(_)) => Problem::unavailable("user service unavailable"),
        other => rpc_failure("user-service", other),
    }
}

/// Creates an account.
#[utoipa::path(post, path = "/api/v1/users/register", tag = "users", request_body = CredentialsBody,
    responses((status = 201, body = UserBody), (status = 400, body = Problem), (status = 409, body = Problem)))]
pub async fn register(state: web::Data<AppState>, body: web::Json<CredentialsBody>) -> Result<HttpResponse, Problem> {
    let body = body.into_inner();
    let credentials = Credentials { username: body.username, password: body.password };
    let user = state.users.register(credentials).await.map_err(user_problem)?;
    Ok(HttpResponse::Created().json(UserBody::from(user)))
}

/// Signs in: a bearer JWT.
#[utoipa::path(post, path = "/api/v1/users/login", tag = "users", request_body = CredentialsBody,
    responses((status = 200, body = SessionBody), (status = 401, body = Problem)))]
pub async fn login(state: web::Data<AppState>, body: web::Json<CredentialsBody>) -> Result<HttpResponse, Problem> {
    let body = body.into_inner();
    let session = state
        .users
        .login(Credentials { username: body.username, password: body.password })
        .await
        .map_err(user_problem)?;
    Ok(HttpResponse::Ok().json(SessionBody {
        token: session.token,
        expires_at: session.expires_at,
        user: session.user.into(),
    }))
}
