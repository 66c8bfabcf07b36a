//! The gateway: Seckill's public HTTP API (actix-web), and the only door users knock on.
//!
//! # Layout
//!
//! - [`settings`]: configuration (`SECKILL_*`).
//! - `startup`: [`Application`]: clients of the services, Redis, the HTTP server.
//! - `routes`: one file per area: users, goods, seckill (captcha → path → order → result),
//!   orders, admin, ops (`/healthz`, `/readyz`, `/metrics`).
//! - `middleware`: request id / trace id, local rate limits, HTTP metrics.
//! - `auth`: the `Caller` and `Admin` extractors (JWT checked locally).
//! - `defences`: local limits, sold-out flags, the per-user gate, captchas, hidden paths.
//! - `goods_cache`: goods lists and details from memory, refreshed by one caller.
//! - `problem`: RFC 9457 errors with stable codes, and the one mapping of every error into them.
//! - [`api`]: request and response bodies; `openapi`: the OpenAPI document and its route.
//! - [`state`]: what the handlers share (tests read its counters).

#![forbid(unsafe_code)]
#![warn(missing_docs, rust_2018_idioms, unreachable_pub)]

pub mod api;
mod auth;
mod defences;
mod goods_cache;
mod middleware;
mod openapi;
mod problem;
mod routes;
pub mod settings;
mod startup;
pub mod state;

pub use self::settings::Settings;
pub use self::startup::{Application, Running};
