//! Authentication: every request with a bearer JWT is verified here, locally (no RPC):
//! algorithm pinned to HS256, signature, expiry and issuer checked.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use contracts::Actor;

use crate::problem::Problem;
use crate::state::AppState;

/// The authenticated caller.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Caller(pub Actor);

/// The authenticated caller, who must be an admin.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Admin(pub Actor);

fn authenticate(req: &HttpRequest) -> Result<Actor, Problem> {
    let state = req.app_data::<web::Data<AppState>>().ok_or_else(Problem::internal)?;
    let value =
        req.headers().get(header::AUTHORIZATION).ok_or_else(|| Problem::unauthorized("missing bearer token"))?;
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .ok_or_else(|| Problem::unauthorized("expected `Authorization: Bearer <token>`"))?;
    state.jwt.verify(token.trim()).map_err(|err| Problem::unauthorized(err.to_string()))
}

impl FromRequest for Caller {
    type Error = Problem;
    type Future = Ready<Result<Caller, Problem>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req).map(Caller))
    }
}

impl FromRequest for Admin {
    type Error = Problem;
    type Future = Ready<Result<Admin, Problem>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req).and_then(|actor| {
            if actor.is_admin() { Ok(Admin(actor)) } else { Err(Problem::forbidden("admin role required")) }
        }))
    }
}
