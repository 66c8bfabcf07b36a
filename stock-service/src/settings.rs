//! Configuration: built-in defaults for a local machine, overridden by `SECKILL_*` variables.

use std::time::Duration;

use platform::db::DatabaseSettings;
use platform::node::NodeSettings;
use platform::redis::RedisSettings;
use platform::registry::RegistrySettings;
use serde::Deserialize;

/// What this binary defaults to where the settings types cannot know it (see
/// [`platform::config::load_with`]).
pub const BINARY_DEFAULTS: &[(&str, &str)] = &[("listen", "0.0.0.0:7002"), ("metrics_listen", "0.0.0.0:9102")];

/// stock-service settings.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Listen address, metrics, logs, RPC limits (`SECKILL_LISTEN`, ...).
    #[serde(flatten)]
    pub node: NodeSettings,
    /// Where this node registers (`SECKILL_REGISTRY__KIND`, ...).
    pub registry: RegistrySettings,
    /// PostgreSQL (`SECKILL_DATABASE_URL`, ...).
    #[serde(flatten)]
    pub database: DatabaseSettings,
    /// Redis holding the sale states (`SECKILL_REDIS_URL`, `SECKILL_REDIS_PREFIX`, ...).
    #[serde(flatten)]
    pub redis: RedisSettings,
    /// Warming sales up ahead of their start (`SECKILL_WARM_UP__ENABLED`, `__LEAD`,
    /// `__INTERVAL`).
    pub warm_up: WarmUpSettings,
    /// Safeguards turned off, to show what they are for (`loadtest scenario`); every one on
    /// unless set.
    pub without: Without,
}

/// The warm-up scheduler: every stock-service warms each sale into Redis `lead` before it starts
/// (exactly once across them), and rebuilds a warmed sale whose state Redis lost. The admin's
/// `warm_up` call works either way.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct WarmUpSettings {
    /// `SECKILL_WARM_UP__ENABLED`: run the scheduler in this process (default `true`).
    pub enabled: bool,
    /// `SECKILL_WARM_UP__LEAD`: how long before its start a sale is warmed up (default `60s`).
    #[serde(with = "humantime_serde")]
    pub lead: Duration,
    /// `SECKILL_WARM_UP__INTERVAL`: time between two looks at the catalogue (default `1s`).
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
}

impl Default for WarmUpSettings {
    fn default() -> Self {
        WarmUpSettings { enabled: true, lead: Duration::from_secs(60), interval: Duration::from_secs(1) }
    }
}

/// Safeguards of stock-service that can be turned off, for demonstrations only
/// (`SECKILL_WITHOUT__...=true`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Without {
    /// `SECKILL_WITHOUT__SALE_STATE_REBUILD`: a reserve that finds a warmed-up sale's state lost
    /// from Redis answers "not warmed up" instead of rebuilding it from PostgreSQL, so the sale
    /// stops until an operator warms it up again (or the reconciler, if it runs, resyncs it).
    pub sale_state_rebuild: bool,
}
