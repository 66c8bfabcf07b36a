//! PostgreSQL: the pool and the schema migrations (in `migrations/` at the workspace root).

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::error::DependencyError;

/// Every migration of the workspace, embedded at compile time.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

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
