//! Configuration: built-in defaults for a local machine, overridden by `SECKILL_*` variables.

use platform::auth::JwtSettings;
use platform::db::DatabaseSettings;
use platform::node::NodeSettings;
use platform::registry::RegistrySettings;
use secrecy::SecretString;
use serde::Deserialize;

/// What this binary defaults to where the settings types cannot know it (see
/// [`platform::config::load_with`]).
pub const BINARY_DEFAULTS: &[(&str, &str)] = &[("listen", "0.0.0.0:7001"), ("metrics_listen", "0.0.0.0:9101")];

/// user-service settings.
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
    /// JWT secret, issuer, lifetime (`SECKILL_JWT__SECRET`, ...).
    pub jwt: JwtSettings,
    /// The admin account ensured at start-up (`SECKILL_ADMIN__USERNAME`, `SECKILL_ADMIN__PASSWORD`).
    pub admin: AdminBootstrap,
}

/// The admin account created at start-up if it does not exist. No password, no admin.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct AdminBootstrap {
    /// Its username.
    pub username: String,
    /// Its password; unset means no admin is created.
    pub password: Option<SecretString>,
}

impl Default for AdminBootstrap {
    fn default() -> Self {
        AdminBootstrap { username: "admin".into(), password: None }
    }
}
