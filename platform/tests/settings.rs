//! The shared settings pieces flattened into one service's settings, loaded as a binary loads
//! them: environment names stay flat (`SECKILL_DATABASE_URL`, `SECKILL_LISTEN`), numbers parse,
//! binary defaults sit under the environment, and nothing prints a secret.

#![allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error by design

use platform::db::DatabaseSettings;
use platform::node::NodeSettings;
use platform::redis::RedisSettings;
use secrecy::ExposeSecret;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ServiceSettings {
    #[serde(flatten)]
    node: NodeSettings,
    #[serde(flatten)]
    database: DatabaseSettings,
    #[serde(flatten)]
    redis: RedisSettings,
}

const DEFAULTS: &[(&str, &str)] = &[("listen", "0.0.0.0:7002"), ("metrics_listen", "0.0.0.0:9102")];

#[test]
fn flattened_pieces_read_their_flat_names() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("SECKILL_DATABASE_URL", "postgres://app:s3cr3t@db:5432/seckill");
        jail.set_env("SECKILL_DATABASE_MAX_CONNECTIONS", "20");
        jail.set_env("SECKILL_MIGRATE", "false");
        jail.set_env("SECKILL_REDIS_PREFIX", "other");
        jail.set_env("SECKILL_RPC__MAX_IN_FLIGHT", "5");
        jail.set_env("SECKILL_RPC__KEY", "a-cluster-key-of-32-bytes-or-more!!");
        jail.set_env("SECKILL_ENV", "development");
        let settings: ServiceSettings = platform::load_with(DEFAULTS).map_err(|e| e.to_string())?;
        assert_eq!(settings.database.url.expose_secret(), "postgres://app:s3cr3t@db:5432/seckill");
        assert_eq!((settings.database.max_connections, settings.database.migrate), (20, false));
        assert_eq!(settings.redis.prefix, "other");
        assert_eq!(settings.redis.max_connections, RedisSettings::default().max_connections);
        assert_eq!(settings.node.rpc.server.max_in_flight, 5);
        assert_eq!(settings.node.rpc.security.key.expose_secret(), "a-cluster-key-of-32-bytes-or-more!!");
        assert_eq!(settings.node.env, platform::env::Environment::Development);
        assert_eq!(settings.node.listen, "0.0.0.0:7002", "the binary's default");
        assert_eq!(settings.node.metrics_listen, "0.0.0.0:9102".parse().ok());
        let printed = format!("{settings:?}");
        assert!(!printed.contains("s3cr3t") && !printed.contains("32-bytes"), "secrets never print");
        Ok(())
    });
}

#[test]
fn an_explicit_setting_beats_the_binary_default() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("SECKILL_METRICS_LISTEN", "127.0.0.1:9200");
        let settings: ServiceSettings = platform::load_with(DEFAULTS).map_err(|e| e.to_string())?;
        assert_eq!(settings.node.metrics_listen, "127.0.0.1:9200".parse().ok());
        assert_eq!(settings.node.env, platform::env::Environment::Production, "never development by default");
        Ok(())
    });
}
