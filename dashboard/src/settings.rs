//! Configuration: built-in defaults for a local machine, overridden by `SECKILL_*` variables.

use std::collections::BTreeMap;
use std::time::Duration;

use platform::auth::JwtSettings;
use platform::db::DatabaseSettings;
use platform::env::{Environment, InsecureSettings};
use platform::redis::RedisSettings;
use platform::registry::RegistrySettings;
use platform::security::RpcSecurity;
use platform::telemetry::LogFormat;
use secrecy::SecretString;
use serde::Deserialize;

/// Dashboard settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Where the process runs (`SECKILL_ENV`): the development login and the built-in secrets
    /// only in development.
    pub env: Environment,
    /// HTTP listen address of the page and its API (`SECKILL_LISTEN`).
    pub listen: String,
    /// Log output format.
    pub log_format: LogFormat,
    /// Where the services are registered (`SECKILL_REGISTRY__*`): the node grid.
    pub registry: RegistrySettings,
    /// The cluster key and TLS of the RPC (`SECKILL_RPC__KEY`, ...): the dashboard calls
    /// stock- and order-service as an operator, and user-service for the admin's login.
    pub rpc: RpcSecurity,
    /// The services' Redis (`SECKILL_REDIS_URL`, `SECKILL_REDIS_PREFIX`): the live rules.
    #[serde(flatten)]
    pub redis: RedisSettings,
    /// The system's PostgreSQL (`SECKILL_DATABASE_URL`): transactions per second.
    #[serde(flatten)]
    pub database: DatabaseSettings,
    /// RabbitMQ (`SECKILL_BROKER__URL`, `SECKILL_BROKER__MANAGEMENT_URL`, `SECKILL_BROKER__PREFIX`).
    pub broker: BrokerSettings,
    /// JWT verification (`SECKILL_JWT__SECRET`, the same as user-service's and the gateway's).
    pub jwt: JwtSettings,
    /// The gateway the demo sale drives (`SECKILL_GATEWAY_URL`).
    pub gateway_url: String,
    /// The Prometheus endpoints to read, per program (`SECKILL_SCRAPE__GATEWAY='["http://...:9100/metrics"]'`).
    /// A host name that resolves to several addresses (a scaled compose service) is every one
    /// of them.
    pub scrape: BTreeMap<String, Vec<String>>,
    /// How often the figures are gathered.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// How much history the funnel chart keeps.
    #[serde(with = "humantime_serde")]
    pub history: Duration,
    /// How many goods the page shows (the most recent).
    pub goods_shown: usize,
}

/// Where RabbitMQ is, and its management HTTP API.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct BrokerSettings {
    /// AMQP URL: queue depths by passive declare.
    pub url: SecretString,
    /// The management API (`http://user:password@host:15672`): rates; none when unset.
    pub management_url: Option<SecretString>,
    /// The prefix of the queue names (order-service's `SECKILL_BROKER__PREFIX`).
    pub prefix: String,
}

impl Default for BrokerSettings {
    fn default() -> Self {
        BrokerSettings {
            url: SecretString::from("amqp://guest:guest@127.0.0.1:5672/%2f"),
            management_url: None,
            prefix: contracts::keyspace::OrderQueues::DEFAULT_PREFIX.into(),
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            env: Environment::default(),
            listen: "0.0.0.0:8090".into(),
            log_format: LogFormat::default(),
            registry: RegistrySettings::default(),
            rpc: RpcSecurity::default(),
            redis: RedisSettings::default(),
            database: DatabaseSettings::default(),
            broker: BrokerSettings::default(),
            jwt: JwtSettings::default(),
            gateway_url: "http://127.0.0.1:8080".into(),
            scrape: BTreeMap::new(),
            interval: Duration::from_secs(1),
            history: Duration::from_secs(300),
            goods_shown: 6,
        }
    }
}

impl Settings {
    /// Refuses (outside development) the built-in secrets.
    pub fn check_secrets(&self) -> Result<(), InsecureSettings> {
        let mut policy = platform::env::SecretPolicy::new(self.env);
        self.rpc.check(&mut policy);
        policy.secret("SECKILL_JWT__SECRET", &self.jwt.secret, platform::auth::DEVELOPMENT_SECRET);
        policy.enforce()
    }

    /// Whether the development login (an admin session without a password) is offered.
    pub fn development_login(&self) -> bool {
        self.env == Environment::Development
    }
}
