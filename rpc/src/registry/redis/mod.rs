//! [`RedisRegistry`]: the registry on Redis.
//!
//! Per service, a sorted set `{prefix}:svc:{service}:nodes` maps each address to the Redis time
//! (ms) at which its entry expires, and a hash `{prefix}:svc:{service}:info` holds each
//! instance's JSON. Heartbeats push the expiry forward; an entry whose server stopped
//! heartbeating is simply past its expiry, and every script ignores and prunes such entries.
//! Changes (an entry added or removed) are published on `{prefix}:changes` with the service name
//! as payload. Both keys expire with their longest-lived entry, so nothing is left behind.

mod heartbeat;
mod scripts;
mod watcher;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::mpsc;

use super::discovery::Feed;
use super::{Discovery, Instance, Registration, Registry, RegistryError};
use crate::sync::lock;

/// Settings of a [`RedisRegistry`].
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct RedisRegistryConfig {
    /// Prefix of every key and channel, so that several deployments (or tests) share one Redis.
    pub prefix: String,
    /// An entry that is not refreshed for this long is gone: a crashed server disappears from
    /// every client within this time.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// How often a registered server refreshes its entry; a third of `ttl` survives two lost beats.
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// How often discovery re-reads every list, in case a change notification was lost (pub/sub
    /// delivers at most once) and to find out that Redis is back after an outage.
    #[serde(with = "humantime_serde")]
    pub resync_interval: Duration,
    /// Attempts to register (and read the entry back) before giving up.
    pub register_attempts: u32,
    /// First delay between registration attempts; doubles each time, with jitter.
    #[serde(with = "humantime_serde")]
    pub register_backoff: Duration,
    /// Give up on one Redis command after this long.
    #[serde(with = "humantime_serde")]
    pub command_timeout: Duration,
}

impl Default for RedisRegistryConfig {
    fn default() -> Self {
        RedisRegistryConfig {
            prefix: "seckill:rpc".into(),
            ttl: Duration::from_secs(10),
            heartbeat_interval: Duration::from_secs(3),
            resync_interval: Duration::from_secs(5),
            register_attempts: 5,
            register_backoff: Duration::from_millis(200),
            command_timeout: Duration::from_secs(1),
        }
    }
}

/// The registry on Redis. Cheap to clone; make one per process and pass it around: it shares one
/// command connection and one subscription among all registrations and discoveries.
#[derive(Clone)]
pub struct RedisRegistry {
    shared: Arc<Shared>,
}

struct Shared {
    conn: ConnectionManager,
    keys: Keys,
    config: RedisRegistryConfig,
    /// One feed per discovered service, shared by every `Discovery` of it.
    feeds: Mutex<HashMap<String, Arc<Feed>>>,
    /// Hands new feeds to the watcher task, which stops when this is dropped: once every clone of
    /// the registry and every `Discovery` from it are gone.
    watch: mpsc::UnboundedSender<Arc<Feed>>,
}

impl std::fmt::Debug for RedisRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRegistry").field("config", &self.shared.config).finish_non_exhaustive()
    }
}

impl RedisRegistry {
    /// Connects to Redis through `client` and starts the discovery watcher. Fails if Redis cannot
    /// be reached now, or refuses us (a password or an ACL user goes in the URL:
    /// `redis://user:password@host:6379`); once connected, outages are survived (see the module
    /// docs).
    pub async fn connect(client: redis::Client, config: RedisRegistryConfig) -> redis::RedisResult<RedisRegistry> {
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.command_timeout))
            .set_response_timeout(Some(config.command_timeout))
            .set_number_of_retries(2)
            .set_max_delay(config.command_timeout);
        let mut conn = client.get_connection_manager_with_config(manager_config).await?;
        // A server that wants a password accepts the connection and refuses the first command.
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        let keys = Keys { prefix: config.prefix.clone() };
        let (watch, feeds) = mpsc::unbounded_channel();
        tokio::spawn(watcher::run(watcher::Watcher::new(conn.clone(), client, keys.clone(), config.clone()), feeds));
        let shared = Shared { conn, keys, config, feeds: Mutex::default(), watch };
        Ok(RedisRegistry { shared: Arc::new(shared) })
    }

    /// The settings in use.
    pub fn config(&self) -> &RedisRegistryConfig {
        &self.shared.config
    }
}

impl Registry for RedisRegistry {
    fn register(&self, instance: Instance) -> BoxFuture<'_, Result<Registration, RegistryError>> {
        let shared = &self.shared;
        Box::pin(heartbeat::register(shared.conn.clone(), shared.keys.clone(), shared.config.clone(), instance))
    }

    fn discover(&self, service: &str) -> Discovery {
        let keep_alive: Arc<dyn Send + Sync> = self.shared.clone();
        let mut feeds = lock(&self.shared.feeds);
        if let Some(feed) = feeds.get(service) {
            return feed.subscribe(Some(keep_alive));
        }
        let feed = Feed::new(service);
        feeds.insert(service.to_owned(), feed.clone());
        // The watcher only stops once every clone of the registry is gone, so it is listening.
        let _ = self.shared.watch.send(feed.clone());
        feed.subscribe(Some(keep_alive))
    }
}

/// Key and channel names under the configured prefix.
#[derive(Clone, Debug)]
struct Keys {
    prefix: String,
}

impl Keys {
    fn nodes(&self, service: &str) -> String {
        format!("{}:svc:{service}:nodes", self.prefix)
    }

    fn info(&self, service: &str) -> String {
        format!("{}:svc:{service}:info", self.prefix)
    }

    fn changes(&self) -> String {
        format!("{}:changes", self.prefix)
    }
}

/// Bounds a Redis command by `command_timeout`; the error as text, for logs and `RegistryError`.
pub(super) async fn with_timeout<T>(
    config: &RedisRegistryConfig,
    command: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, String> {
    match tokio::time::timeout(config.command_timeout, command).await {
        Ok(result) => result.map_err(|err| err.to_string()),
        Err(_) => Err(format!("no answer within {:?}", config.command_timeout)),
    }
}
