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
    /// Password hashing (`SECKILL_PASSWORD__MAX_CONCURRENT_HASHES`).
    pub password: PasswordSettings,
}

/// Password hashing settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct PasswordSettings {
    /// argon2 hashes computed at once (each takes ~19 MiB and tens of ms of a core); sign-ins
    /// past it are answered "busy".
    pub max_concurrent_hashes: usize,
}

impl Default for PasswordSettings {
    fn default() -> Self {
        PasswordSettings { max_concurrent_hashes: std::thread::available_parallelism().map_or(2, |n| n.get() * 2) }
    }
}

/// The admin password `scripts/dev-up` and the compose demo use: development only.
pub const DEVELOPMENT_ADMIN_PASSWORD: &str = "seckill-admin";

impl Settings {
    /// Refuses (outside development) the built-in secrets and the demo admin password, naming
    /// the setting to give.
    pub fn check_secrets(&self) -> Result<(), platform::env::InsecureSettings> {
        let mut policy = self.node.secret_policy();
        policy.secret("SECKILL_JWT__SECRET", &self.jwt.secret, platform::auth::DEVELOPMENT_SECRET);
        let demo_password = self
            .admin
            .password
            .as_ref()
            .is_some_and(|password| secrecy::ExposeSecret::expose_secret(password) == DEVELOPMENT_ADMIN_PASSWORD);
        policy.shortcut(
            demo_password,
            "SECKILL_ADMIN__PASSWORD is the demo password of scripts/dev-up; give the admin a password of its own",
        );
        policy.enforce()
    }
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
