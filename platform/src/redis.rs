//! Redis: the settings every Redis user shares; [`Shared`], the one multiplexed connection per
//! process that the hot paths use; and a pool of connections for the rest, checked at start-up.
//!
//! **Why the hot paths do not use the pool.** deadpool-redis recycles a connection on every
//! checkout with a `PING` and an `UNWATCH` (one round trip), and a purchase checked a connection
//! out about six times: 12 of its 44 Redis commands were that recycling. A redis-rs
//! multiplexed connection needs no pool: any number of tasks send on it at once, their commands
//! are pipelined on one socket (fewer system calls on both sides under load), and
//! [`redis::aio::ConnectionManager`] reconnects it by itself after Redis restarts (the commands
//! in flight then fail, the next ones go out on the new connection). The pool stays for
//! what needs a connection of its own and for the cold paths that were written against it.

use ::redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use ::redis::{Cmd, Pipeline, RedisFuture, Value};
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

    /// Opens the process's shared connection (see [`Shared`]).
    pub async fn connect_shared(&self) -> Result<Shared, DependencyError> {
        Shared::connect(&self.url).await
    }
}

/// The process's shared multiplexed connection to Redis, for the hot paths: clone it freely (a
/// clone is a handle to the same connection), use it as a connection (`&mut shared`) with any
/// redis-rs command, pipeline or script. Each command or pipeline sent is one round trip, counted
/// in `redis_round_trips_total` (the benchmarks print it per purchase).
#[derive(Clone)]
pub struct Shared {
    connection: ConnectionManager,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Shared(redis)")
    }
}

impl Shared {
    /// Connects (retrying for a few seconds) and checks that Redis answers `PING`.
    pub async fn connect(url: &SecretString) -> Result<Shared, DependencyError> {
        let unreachable =
            |err: &(dyn std::error::Error + 'static)| DependencyError::new("Redis", url.expose_secret(), err);
        let client = redis::Client::open(url.expose_secret()).map_err(|err| unreachable(&err))?;
        // The defaults (0.5 s per answer, 1 s to connect) are the pool's; reconnection retries
        // back off from 100 ms.
        let connection = ConnectionManager::new_with_config(client, ConnectionManagerConfig::new())
            .await
            .map_err(|err| unreachable(&err))?;
        let mut shared = Shared { connection };
        let _: String = redis::cmd("PING").query_async(&mut shared).await.map_err(|err| unreachable(&err))?;
        Ok(shared)
    }
}

/// Runs script invocations in one pipeline (one round trip), loading the scripts and running them
/// again after a `NOSCRIPT` (Redis restarted or flushed its script cache). `T` is the tuple (or
/// `Vec`) of their answers.
pub async fn invoke_pipelined<T: redis::FromRedisValue>(
    conn: &mut Shared,
    invocations: &[&redis::ScriptInvocation<'_>],
) -> redis::RedisResult<T> {
    let mut pipe = redis::pipe();
    for invocation in invocations {
        pipe.invoke_script(invocation);
    }
    match pipe.query_async(conn).await {
        Err(err) if err.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
            for invocation in invocations {
                invocation.load_async(conn).await?;
            }
            pipe.query_async(conn).await
        }
        answer => answer,
    }
}

fn count_round_trip() {
    metrics::counter!("redis_round_trips_total").increment(1);
}

impl ConnectionLike for Shared {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        count_round_trip();
        self.connection.req_packed_command(cmd)
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        count_round_trip();
        self.connection.req_packed_commands(pipeline, offset, count)
    }

    fn get_db(&self) -> i64 {
        self.connection.get_db()
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
