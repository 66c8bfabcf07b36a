//! Redis: a pool of multiplexed connections, checked at start-up.

use deadpool_redis::{Config, Pool, Runtime};
use secrecy::{ExposeSecret, SecretString};

use crate::error::DependencyError;

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
