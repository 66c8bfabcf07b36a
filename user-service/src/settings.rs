//! Configuration: built-in defaults for a local machine, overridden by `SECKILL_*` variables.

use common::auth::JwtSettings;
use common::node::{NodeSettings, RegistrySettings};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// user-service settings.
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
    /// Pool size.
    pub database_max_connections: u32,
    /// Apply pending migrations at start-up.
    pub migrate: bool,
    /// JWT secret, issuer, lifetime (`SECKILL_JWT__SECRET`, ...).
    pub jwt: JwtSettings,
    /// The admin account ensured at start-up (`SECKILL_ADMIN__USERNAME`, `SECKILL_ADMIN__PASSWORD`).
    pub admin: AdminBootstrap,
}

/// The admin account created at start-up if it does not exist. No password, no admin.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct AdminBootstrap {
    /// Its username.
    pub username: String,
    /// Its password; unset means no admin is created.
    #[serde(serialize_with = "expose_optional")]
    pub password: Option<SecretString>,
}

impl Default for AdminBootstrap {
    fn default() -> Self {
        AdminBootstrap { username: "admin".into(), password: None }
    }
}

fn expose_optional<S: serde::Serializer>(secret: &Option<SecretString>, serializer: S) -> Result<S::Ok, S::Error> {
    match secret {
        Some(secret) => common::config::expose(secret, serializer),
        None => serializer.serialize_none(),
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            registry: RegistrySettings::default(),
            node: NodeSettings::listening("0.0.0.0:7001", Some("0.0.0.0:9101")),
            database_url: SecretString::from("postgres://postgres@127.0.0.1:5432/seckill"),
            database_max_connections: 10,
            migrate: true,
            jwt: JwtSettings::default(),
            admin: AdminBootstrap::default(),
        }
    }
}
