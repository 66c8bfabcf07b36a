//! `POST /api/v1/users/register`, `POST /api/v1/users/login`.

use actix_web::{HttpResponse, web};
use contracts::user::Credentials;

use crate::api::{CredentialsBody, SessionBody, UserBody};
use crate::problem::Problem;
use crate::state::AppState;

/// Creates an account.
#[utoipa::path(post, path = "/api/v1/users/register", tag = "users", request_body = CredentialsBody,
    responses((status = 201, body = UserBody), (status = 400, body = Problem), (status = 409, body = Problem)))]
pub(crate) async fn register(
    state: web::Data<AppState>,
    body: web::Json<CredentialsBody>,
) -> Result<HttpResponse, Problem> {
    let body = body.into_inner();
    let credentials = Credentials { username: body.username, password: body.password };
    let user = state.users.register(credentials).await?;
    Ok(HttpResponse::Created().json(UserBody::from(user)))
}

/// Signs in: a bearer JWT.
#[utoipa::path(post, path = "/api/v1/users/login", tag = "users", request_body = CredentialsBody,
    responses((status = 200, body = SessionBody), (status = 401, body = Problem)))]
pub(crate) async fn login(
    state: web::Data<AppState>,
    body: web::Json<CredentialsBody>,
) -> Result<HttpResponse, Problem> {
    let body = body.into_inner();
    let session = state.users.login(Credentials { username: body.username, password: body.password }).await?;
    Ok(HttpResponse::Ok().json(SessionBody {
        token: session.token,
        expires_at: session.expires_at,
        user: session.user.into(),
    }))
}
