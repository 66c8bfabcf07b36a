//! The scenario that is running (`loadtest scenario`), as the load tool announces it and the
//! dashboard shows it: kept in Redis under [`crate::keyspace::Keyspace::scenario`] for an hour.

use serde::{Deserialize, Serialize};

/// Where a scenario run stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScenarioStatus {
    /// The scenario's name (`oversell`, ...).
    pub name: String,
    /// Its title.
    pub title: String,
    /// `running`, `done` or `failed`.
    pub phase: String,
    /// When it started, in milliseconds since the Unix epoch.
    pub started_at_ms: i64,
    /// One line, once done.
    pub verdict: Option<String>,
    /// Every variant's headline figures, the naive first, once done.
    pub variants: Vec<VariantFigures>,
}

/// One variant's headline figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VariantFigures {
    /// What the variant is.
    pub variant: String,
    /// Orders written.
    pub orders: i64,
    /// Orders beyond the stock.
    pub oversold: i64,
    /// Accepted share of the attempts (or of the page views).
    pub accepted_rate: f64,
    /// p99 of the accepted, in milliseconds.
    pub p99_ms: f64,
    /// The scenario's own measures, by name.
    pub own: Vec<(String, String)>,
}
