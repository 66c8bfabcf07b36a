//! What every Seckill binary shares.
//!
//! # Layout
//!
//! - [`contracts`]: the service traits (user, stock, order) and their message types, used by the
//!   servers that implement them and every client that calls them.
//! - [`config`]: typed settings from `SECKILL_` environment variables over built-in defaults.
//! - [`auth`]: JWT issuing and verification (HS256 pinned).
//! - [`snowflake`] and [`worker_lease`]: time-ordered unique ids, worker ids leased from Redis.
//! - [`db`]: PostgreSQL pool and the embedded migrations; [`redis`]: the Redis pool.
//! - [`node`]: settings and start/stop sequence shared by every RPC service binary.
//! - [`metrics`]: the Prometheus exporter; [`telemetry`]: structured logging.
//! - [`shutdown`]: a future that completes on SIGINT or SIGTERM.
//! - [`error`]: error helpers (one-line error chains, unreachable dependencies at start-up).

#![forbid(unsafe_code)]
#![warn(missing_docs, rust_2018_idioms, unreachable_pub)]

pub mod auth;
pub mod config;
pub mod contracts;
pub mod db;
pub mod error;
pub mod metrics;
pub mod node;
pub mod redis;
pub mod shutdown;
pub mod snowflake;
pub mod telemetry;
pub mod worker_lease;

pub use self::config::{ConfigError, load};
pub use self::error::{DependencyError, chain};
pub use self::shutdown::shutdown_signal;
