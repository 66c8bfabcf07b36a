//! What every Seckill binary shares.
//!
//! # Layout
//!
//! - [`config`]: typed settings from `SECKILL_` environment variables over built-in defaults.
//! - [`telemetry`]: structured logging (tracing), human or JSON.
//! - [`shutdown`]: a future that completes on SIGINT or SIGTERM.
//! - [`error`]: error helpers (one-line error chains, unreachable dependencies at start-up).

#![forbid(unsafe_code)]
#![warn(missing_docs, rust_2018_idioms, unreachable_pub)]

pub mod config;
pub mod error;
pub mod shutdown;
pub mod telemetry;

pub use self::config::{ConfigError, load};
pub use self::error::{DependencyError, chain};
pub use self::shutdown::shutdown_signal;
