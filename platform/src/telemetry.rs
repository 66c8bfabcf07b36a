//! Structured logging.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt;
use tracing_subscriber::prelude::*;

/// Log output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines, for a terminal.
    #[default]
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Installs the global subscriber: filter from `RUST_LOG` (default `info`, with sqlx at `warn`:
/// PostgreSQL notices such as "relation already exists, skipping" are not news), fields such as
/// `trace_id` from the current spans on every line. Safe to call twice (the second is a no-op).
pub fn init(service: &'static str, format: LogFormat) {
    init_with_default(service, format, "info,sqlx=warn");
}

/// [`init`] with `default` as the filter when `RUST_LOG` is not set.
pub fn init_with_default(service: &'static str, format: LogFormat, default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let registry = tracing_subscriber::registry().with(filter);
    let installed = match format {
        LogFormat::Pretty => registry.with(fmt::layer().with_target(false)).try_init(),
        LogFormat::Json => registry.with(fmt::layer().json().flatten_event(true).with_current_span(true)).try_init(),
    };
    if installed.is_ok() {
        tracing::info!(service, "logging started");
    }
}
