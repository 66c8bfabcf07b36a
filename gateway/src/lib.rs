//! The gateway: Seckill's public HTTP API (actix-web), and the only door users knock on.
//!
//! # Layout
//!
//! - [`settings`]: configuration (`SECKILL_*`).
//! - [`startup`]: [`Application`]: clients of the services, Redis, the HTTP server.
//! - [`routes`]: one file per area: users, goods, seckill (captcha → path → order → result),
//!   orders, admin, ops (`/healthz`, `/readyz`, `/metrics`, `/openapi.json`).
//! - [`middleware`]: request id / trace id, local rate limits, HTTP metrics.
//! - [`auth`]: the `Caller` and `Admin` extractors (JWT checked locally).
//! - [`limits`]: local limits (governor) and the per-user gate (Redis token bucket + anti-brush).
//! - [`captcha`], [`path_token`], [`sold_out`], [`goods_cache`]: the seckill defences.
//! - [`problem`]: RFC 9457 errors with stable codes; [`api`]: request and response bodies;
//!   [`openapi`]: the OpenAPI document.

#![forbid(unsafe_code)]
#![warn(missing_docs, rust_2018_idioms, unreachable_pub)]

pub mod api;
pub mod auth;
pub mod captcha;
pub mod goods_cache;
pub mod keys;
pub mod limits;
pub mod middleware;
pub mod openapi;
pub mod path_token;
pub mod problem;
pub mod routes;
pub mod settings;
pub mod sold_out;
pub mod startup;
pub mod state;

pub use self::settings::Settings;
pub use self::startup::Application;
