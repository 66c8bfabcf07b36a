//! Configuration of order-service and the order workers: built-in defaults for a local machine,
//! overridden by `SECKILL_*` variables.

use std::time::Duration;

use contracts::keyspace::OrderQueues;
use platform::db::DatabaseSettings;
use platform::node::NodeSettings;
use platform::redis::RedisSettings;
use platform::registry::RegistrySettings;
use secrecy::SecretString;
use serde::Deserialize;

/// What order-service defaults to where the settings types cannot know it (see
/// [`platform::config::load_with`]).
pub const SERVICE_DEFAULTS: &[(&str, &str)] = &[("listen", "0.0.0.0:7003"), ("metrics_listen", "0.0.0.0:9103")];
/// What order-worker defaults to: its own metrics port, so it can run next to an order-service.
pub const WORKER_DEFAULTS: &[(&str, &str)] = &[("metrics_listen", "0.0.0.0:9104")];

/// Settings of both binaries (each reads the parts it needs).
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Listen address, metrics, logs, RPC limits (`SECKILL_LISTEN`, ...).
    #[serde(flatten)]
    pub node: NodeSettings,
    /// Where services register and find each other (`SECKILL_REGISTRY__KIND`, ...).
    pub registry: RegistrySettings,
    /// How calls to stock-service are balanced, broken and retried (`SECKILL_STOCK__BALANCER`, ...).
    pub stock: rpc::ClusterConfig,
    /// PostgreSQL (`SECKILL_DATABASE_URL`, ...).
    #[serde(flatten)]
    pub database: DatabaseSettings,
    /// Redis: results, worker id leases, the reconciler's lock (`SECKILL_REDIS_URL`, ...).
    #[serde(flatten)]
    pub redis: RedisSettings,
    /// RabbitMQ (`SECKILL_BROKER__URL`, ...).
    pub broker: BrokerSettings,
    /// Order workers (`SECKILL_WORKER__BATCH_SIZE`, ...).
    pub worker: WorkerSettings,
    /// The reconciler (`SECKILL_RECONCILER__GRACE`, ...).
    pub reconciler: ReconcilerSettings,
    /// Payments: the provider, its webhook secret (`SECKILL_PAYMENT__PROVIDER`, ...).
    pub payment: PaymentSettings,
    /// The safety sweep of overdue orders and refunds, run by order-service
    /// (`SECKILL_SWEEP__INTERVAL`, ...).
    pub sweep: SweepSettings,
    /// How long `place` waits before giving back a unit whose reserve answer it never got (or
    /// whose release failed), unless a retry of the same ticket queued it (`SECKILL_ORPHAN_CHECK`).
    #[serde(with = "humantime_serde")]
    pub orphan_check: Duration,
    /// Safeguards turned off, to show what they are for (`loadtest scenario`); every one on
    /// unless set.
    pub without: Without,
}

/// Safeguards of order-service that can be turned off, for demonstrations only
/// (`SECKILL_WITHOUT__...=true`, refused outside development).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Without {
    /// `SECKILL_WITHOUT__PUBLISHER_CONFIRMS`: fire and forget. A ticket is accepted once its
    /// message is handed to the connection, not once the broker has stored it, so messages in
    /// flight when the broker or the link fails are lost with their tickets accepted.
    pub publisher_confirms: bool,
    /// `SECKILL_WITHOUT__ACK_AFTER_COMMIT`: the workers take order messages acknowledged as they
    /// are delivered, before their orders are committed, so the messages a worker holds when it
    /// crashes are lost with their tickets accepted.
    pub ack_after_commit: bool,
}

/// RabbitMQ settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct BrokerSettings {
    /// AMQP URL.
    pub url: SecretString,
    /// Prefix of the exchange and queue names (`seckill` → `seckill.orders`, ...).
    pub prefix: String,
    /// How long `place` waits for the broker's confirm before giving the unit back.
    #[serde(with = "humantime_serde")]
    pub confirm_timeout: Duration,
}

/// Order worker settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct WorkerSettings {
    /// Consumers per worker process (each its own channel and batches).
    pub consumers: usize,
    /// Unacknowledged messages the broker sends each consumer ahead.
    pub prefetch: u16,
    /// Most orders per database transaction.
    pub batch_size: usize,
    /// How long a batch waits to fill once it has its first message.
    #[serde(with = "humantime_serde")]
    pub batch_linger: Duration,
    /// TTL of the snowflake worker-id lease in Redis: renewed every third of it; after a Redis
    /// restart, ids wait this long (earlier holders may still be valid).
    #[serde(with = "humantime_serde")]
    pub lease_ttl: Duration,
}

/// Which payment provider takes the payments.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// None: paying answers "unavailable" (the default: nothing is simulated unless asked).
    #[default]
    None,
    /// The sandbox, a simulator (`crate::payment::sandbox`): development only.
    Sandbox,
}

/// Payment settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct PaymentSettings {
    /// `SECKILL_PAYMENT__PROVIDER`: `none` (default) or `sandbox`.
    pub provider: ProviderKind,
    /// `SECKILL_PAYMENT__WEBHOOK_SECRET`: the HMAC key of the provider's callbacks (at least 32
    /// bytes outside development).
    pub webhook_secret: SecretString,
    /// The sandbox (`SECKILL_PAYMENT__SANDBOX__WEBHOOK_URL`, `..__SUCCEED`, `..__CALLBACK_AFTER`).
    pub sandbox: crate::payment::sandbox::SandboxSettings,
}

/// The built-in webhook secret: development only.
pub const DEVELOPMENT_WEBHOOK_SECRET: &str = "seckill-development-webhook-secret";

impl Default for PaymentSettings {
    fn default() -> Self {
        PaymentSettings {
            provider: ProviderKind::None,
            webhook_secret: SecretString::from(DEVELOPMENT_WEBHOOK_SECRET),
            sandbox: Default::default(),
        }
    }
}

/// Safety sweep settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct SweepSettings {
    /// Run it in this order-service process (every one may: its steps are idempotent).
    pub enabled: bool,
    /// Time between sweeps.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// How far overdue an order (or a refund) must be before the sweep takes it from the timers.
    #[serde(with = "humantime_serde")]
    pub grace: Duration,
}

impl Default for SweepSettings {
    fn default() -> Self {
        SweepSettings { enabled: true, interval: Duration::from_secs(60), grace: Duration::from_secs(30) }
    }
}

/// Reconciler settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct ReconcilerSettings {
    /// Run the reconciler in this worker process (one of them takes a lock per pass).
    pub enabled: bool,
    /// Time between passes.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// A reservation with no ticket this old was orphaned by a crash between reserve and publish.
    #[serde(with = "humantime_serde")]
    pub grace: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            node: NodeSettings::default(),
            registry: RegistrySettings::default(),
            stock: rpc::ClusterConfig::default(),
            database: DatabaseSettings::default(),
            redis: RedisSettings::default(),
            broker: BrokerSettings::default(),
            worker: WorkerSettings::default(),
            reconciler: ReconcilerSettings::default(),
            payment: PaymentSettings::default(),
            sweep: SweepSettings::default(),
            orphan_check: Duration::from_secs(5),
            without: Without::default(),
        }
    }
}

impl Default for BrokerSettings {
    fn default() -> Self {
        BrokerSettings {
            url: SecretString::from("amqp://guest:guest@127.0.0.1:5672/%2f"),
            prefix: OrderQueues::DEFAULT_PREFIX.into(),
            confirm_timeout: Duration::from_secs(5),
        }
    }
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            consumers: 2,
            prefetch: 2000,
            batch_size: 1000,
            batch_linger: Duration::from_millis(5),
            lease_ttl: Duration::from_secs(10),
        }
    }
}

impl Default for ReconcilerSettings {
    fn default() -> Self {
        ReconcilerSettings { enabled: true, interval: Duration::from_secs(5), grace: Duration::from_secs(60) }
    }
}
