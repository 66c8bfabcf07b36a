//! The dashboard: one page that shows a flash sale as it happens, for the operator who runs it
//! (on a screen, during a talk, while k6 or a scenario runs), and where the live rules are
//! changed. Its own program on its own port, behind the admin login: it is an operator tool,
//! not the public API.
//!
//! # Layout
//!
//! - [`settings`]: configuration (`SECKILL_*`).
//! - `startup`: [`Application`]: the sources, the gathering, the HTTP server.
//! - `sources`: one file per source: the programs' Prometheus endpoints, the registry and the
//!   nodes' ports, stock- and order-service, RabbitMQ, PostgreSQL.
//! - `gather`: once a second, every source into one [`snapshot::Snapshot`]; the funnel's
//!   history, bounded.
//! - [`snapshot`]: what the page receives.
//! - `routes`: the page and its vendored assets, login, the stream (SSE), the live rules, the
//!   demo sale; `auth`: the admin session; `problem`: problem+json errors.
//! - [`demo`]: the demo sale the page starts, driven by the load tool's crowd.
//!
//! The page itself is `assets/` (plain JavaScript, uPlot from npm vendored under
//! `assets/vendor/`).

#![forbid(unsafe_code)]
#![warn(missing_docs, rust_2018_idioms, unreachable_pub)]

mod auth;
pub mod demo;
mod gather;
mod problem;
mod routes;
pub mod settings;
pub mod snapshot;
mod sources;
mod startup;
mod state;

pub use self::settings::Settings;
pub use self::startup::Application;
