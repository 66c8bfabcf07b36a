//! PostgreSQL: the settings every service shares, the pool, and the schema migrations (in
//! `migrations/` at the workspace root).

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::error::DependencyError;

/// Every migration of the workspace, embedded at compile time.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// PostgreSQL settings, flattened into a service's own (`SECKILL_DATABASE_URL`,
/// `SECKILL_DATABASE_MAX_CONNECTIONS`, `SECKILL_MIGRATE`).
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct DatabaseSettings {
    /// Where the database is (credentials included: a secret).
    #[serde(rename = "database_url")]
    pub url: SecretString,
    /// Pool size.
    #[serde(rename = "database_max_connections")]
    pub max_connections: u32,
    /// Apply pending migrations at start-up.
    pub migrate: bool,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            url: SecretString::from("postgres://postgres@127.0.0.1:5432/seckill"),
            max_connections: 10,
            migrate: true,
        }
    }
}

impl DatabaseSettings {
    /// Settings for the database at `url`, otherwise the defaults.
    pub fn at(url: SecretString) -> DatabaseSettings {
        DatabaseSettings { url, ..DatabaseSettings::default() }
    }

    /// Opens the pool, checks that the database answers, and migrates it if asked to.
    pub async fn connect(&self) -> anyhow::Result<PgPool> {
        let pool = connect(&self.url, self.max_connections).await?;
        if self.migrate {
            use anyhow::Context as _;
            migrate(&pool).await.context("applying database migrations")?;
        }
        Ok(pool)
    }
}

/// Opens a pool and checks that the database answers.
pub async fn connect(url: &SecretString, max_connections: u32) -> Result<PgPool, DependencyError> {
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect(url.expose_secret())
        .await
        .map_err(|err| DependencyError::new("PostgreSQL", url.expose_secret(), &err))?;
    Ok(pool)
}

/// Applies the migrations that have not run yet. Safe to call from several processes at once:
/// sqlx holds an advisory lock while migrating.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}
