//! The admin session: a JWT with role `admin` (the one user-service signs, checked for
//! algorithm, signature and expiry), in an HttpOnly cookie set at login or as a bearer token.

use std::future::{Ready, ready};

use actix_web::cookie::{Cookie, SameSite};
use actix_web::{FromRequest, HttpRequest, web};
use contracts::{Actor, Role};

use crate::problem::Problem;
use crate::state::AppState;

/// The cookie holding the session's token.
pub(crate) const COOKIE: &str = "seckill_dashboard";

/// A verified admin, and the token they came with (the demo sale acts with it).
pub(crate) struct Admin {
    pub(crate) actor: Actor,
    pub(crate) token: String,
}

impl FromRequest for Admin {
    type Error = Problem;
    type Future = Ready<Result<Admin, Problem>>;

    fn from_request(request: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(admin(request))
    }
}

fn admin(request: &HttpRequest) -> Result<Admin, Problem> {
    let state = request.app_data::<web::Data<AppState>>().ok_or_else(Problem::internal)?;
    let bearer = request
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::to_owned);
    let token = bearer
        .or_else(|| request.cookie(COOKIE).map(|cookie| cookie.value().to_owned()))
        .ok_or_else(|| Problem::unauthorized("log in first"))?;
    let actor = state.jwt.verify(&token).map_err(|_| Problem::unauthorized("the session is invalid or expired"))?;
    if actor.role != Role::Admin {
        return Err(Problem::forbidden("the dashboard is for admins"));
    }
    Ok(Admin { actor, token })
}

/// The session cookie for `token`: HttpOnly (no script reads it), same-site only.
pub(crate) fn session_cookie(token: String) -> Cookie<'static> {
    Cookie::build(COOKIE, token).path("/").http_only(true).same_site(SameSite::Strict).finish()
}
