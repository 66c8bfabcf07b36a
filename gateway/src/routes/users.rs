//! `POST /api/v1/users/register`, `POST /api/v1/users/login`.

use actix_web::{HttpRequest, HttpResponse, web};
use contracts::user::{Credentials, UserError};

use super::client_ip;
use crate::api::{CredentialsBody, SessionBody, UserBody};
use crate::problem::Problem;
use crate::state::AppState;

/// Creates an account.
#[utoipa::path(post, path = "/api/v1/users/register", tag = "users", request_body = CredentialsBody,
    responses((status = 201, body = UserBody), (status = 400, body = Problem), (status = 409, body = Problem),
        (status = 429, body = Problem)))]
pub(crate) async fn register(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Json<CredentialsBody>,
) -> Result<HttpResponse, Problem> {
    state.sign_in.admit(client_ip(&request), None).await?;
    let body = body.into_inner();
    let credentials = Credentials { username: body.username, password: body.password };
    let user = state.users.register(credentials).await?;
    Ok(HttpResponse::Created().json(UserBody::from(user)))
}

/// Signs in: a bearer JWT. Attempts per client IP and failures per username are limited (429).
#[utoipa::path(post, path = "/api/v1/users/login", tag = "users", request_body = CredentialsBody,
    responses((status = 200, body = SessionBody), (status = 401, body = Problem), (status = 429, body = Problem),
        (status = 503, body = Problem)))]
pub(crate) async fn login(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Json<CredentialsBody>,
) -> Result<HttpResponse, Problem> {
    let body = body.into_inner();
    state.sign_in.admit(client_ip(&request), Some(&body.username)).await?;
    let credentials = Credentials { username: body.username.clone(), password: body.password };
    let session = match state.users.login(credentials).await {
        Err(rpc::Error::Application(UserError::InvalidCredentials)) => {
            state.sign_in.failed(&body.username).await;
            return Err(Problem::unauthorized("invalid username or password"));
        }
        answer => answer?,
    };
    state.sign_in.succeeded(&body.username).await;
    Ok(HttpResponse::Ok().json(SessionBody {
        token: session.token,
        expires_at: session.expires_at,
        user: session.user.into(),
    }))
}
