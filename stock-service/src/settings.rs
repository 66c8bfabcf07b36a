//! Configuration: built-in defaults for a local machine, overridden by `SECKILL_*` variables.

use common::node::{NodeSettings, RegistrySettings};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// stock-service settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Listen address, metrics, logs, RPC limits (`SECKILL_LISTEN`, ...).
    #[serde(flatten)]
    pub node: NodeSettings,
    /// Where this node registers (`SECKILL_REGISTRY__KIND`, ...).
    pub registry: RegistrySettings,
    /// PostgreSQL (`SECKILL_DATABASE_URL`).
    #[serde(serialize_with = "common::config::expose")]
    pub database_url: SecretString,
    /// PostgreSQL pool size.
    pub database_max_connections: u32,
    /// Apply pending migrations at start-up.
    pub migrate: bool,
    /// Redis (`SECKILL_REDIS_URL`).
    #[serde(serialize_with = "common::config::expose")]
    pub redis_url: SecretString,
    /// Redis pool size (each connection is multiplexed).
    pub redis_max_connections: usize,
    /// Prefix of every Redis key of the sale state (`sk`).
    pub redis_prefix: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            registry: RegistrySettings::default(),
            node: NodeSettings::listening("0.0.0.0:7002", Some("0.0.0.0:9102")),
            database_url: SecretString::from("postgres://postgres@127.0.0.1:5432/seckill"),
            database_max_connections: 10,
            migrate: true,
            redis_url: SecretString::from("redis://127.0.0.1:6379"),
            redis_max_connections: 16,
            redis_prefix: "sk".into(),
        }
    }
}
