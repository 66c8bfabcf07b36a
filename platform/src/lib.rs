//! What every Seckill binary runs on.
//!
//! # Layout
//!
//! - [`config`]: typed settings from `SECKILL_` environment variables over built-in defaults.
//! - [`env`]: `SECKILL_ENV` and the secrets a process refuses outside development.
//! - [`auth`]: JWT issuing and verification (HS256 pinned).
//! - [`security`]: the RPC's cluster key and TLS settings; [`identity`]: the short-lived tokens
//!   that say who an RPC call comes from.
//! - [`db`]: PostgreSQL settings, pool and the embedded migrations; [`redis`]: Redis settings and
//!   pool.
//! - [`registry`]: the process's one service registry, and governed clients over it.
//! - [`node`]: settings and start/stop sequence shared by every RPC service binary.
//! - [`rules`]: the live rules in Redis (limits, degrade switches), versioned and followed
//!   by every process.
//! - [`metrics`]: the Prometheus exporter; [`telemetry`]: structured logging.
//! - [`shutdown`]: a future that completes on SIGINT or SIGTERM.
//! - [`error`]: error helpers (one-line error chains, unreachable dependencies at start-up).
//!
//! The contracts between the programs (service traits, names, the keyspace) are in the
//! `contracts` crate.

#![forbid(unsafe_code)]
#![warn(missing_docs, rust_2018_idioms, unreachable_pub)]

pub mod auth;
pub mod config;
pub mod db;
pub mod env;
pub mod error;
pub mod identity;
pub mod metrics;
pub mod node;
pub mod redis;
pub mod registry;
pub mod rules;
pub mod security;
pub mod shutdown;
pub mod telemetry;

pub use self::config::{ConfigError, load, load_with};
pub use self::error::{DependencyError, chain};
pub use self::shutdown::shutdown_signal;
