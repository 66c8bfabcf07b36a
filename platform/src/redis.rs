//! Redis: the settings every Redis user shares, and a pool of multiplexed connections checked at
//! start-up.

use contracts::keyspace::{DEFAULT_PREFIX, Keyspace};
use deadpool_redis::{Config, Pool, Runtime};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::error::DependencyError;

/// Redis settings, flattened into a program's own (`SECKILL_REDIS_URL`,
/// `SECKILL_REDIS_MAX_CONNECTIONS`, `SECKILL_REDIS_PREFIX`).
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct RedisSettings {
    /// Where Redis is (a password may be in it: a secret).
    #[serde(rename = "redis_url")]
    pub url: SecretString,
    /// Pool size (each connection is multiplexed).
    #[serde(rename = "redis_max_connections")]
    pub max_connections: usize,
    /// Prefix of every key ([`contracts::keyspace`]); the same for every program of one system.
    #[serde(rename = "redis_prefix")]
    pub prefix: String,
}

impl Default for RedisSettings {
    fn default() -> Self {
        RedisSettings {
            url: SecretString::from("redis://127.0.0.1:6379"),
            max_connections: 32,
            prefix: DEFAULT_PREFIX.into(),
        }
    }
}

impl RedisSettings {
    /// Settings with keys under `prefix`, otherwise the defaults.
    pub fn with_prefix(prefix: impl Into<String>) -> RedisSettings {
        RedisSettings { prefix: prefix.into(), ..RedisSettings::default() }
    }

    /// The key names under this prefix.
    pub fn keyspace(&self) -> Keyspace {
        Keyspace::new(self.prefix.clone())
    }

    /// Opens the pool and checks that Redis answers.
    pub async fn connect(&self) -> Result<Pool, DependencyError> {
        connect(&self.url, self.max_connections).await
    }
}

/// Opens a pool and checks that Redis answers `PING`.
pub async fn connect(url: &SecretString, max_connections: usize) -> Result<Pool, DependencyError> {
    let unreachable = |err: &(dyn std::error::Error + 'static)| DependencyError::new("Redis", url.expose_secret(), err);
    let mut config = Config::from_url(url.expose_secret());
    config.pool = Some(deadpool_redis::PoolConfig::new(max_connections));
    let pool = config.create_pool(Some(Runtime::Tokio1)).map_err(|err| unreachable(&err))?;
    let mut conn = pool.get().await.map_err(|err| unreachable(&err))?;
    let _: String =
        deadpool_redis::redis::cmd("PING").query_async(&mut *conn).await.map_err(|err| unreachable(&err))?;
    Ok(pool)
}
