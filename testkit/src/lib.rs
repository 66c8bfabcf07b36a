//! Test helpers shared by the service crates' integration tests.
//!
//! Every test gets its own PostgreSQL database, Redis key prefix and RabbitMQ names, so tests
//! run in parallel and leave nothing behind (the database is dropped even when the test panics).

#![forbid(unsafe_code)]

pub mod fault_proxy;
pub mod private;

use std::time::Duration;

use deadpool_redis::Pool;
use deadpool_redis::redis::{self, AsyncCommands};
use secrecy::SecretString;
use sqlx::postgres::PgPool;
use sqlx::{Connection, PgConnection};

/// The server the throwaway databases are created on.
pub fn admin_database_url() -> String {
    std::env::var("SECKILL_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The Redis the tests use.
pub fn redis_url() -> String {
    std::env::var("SECKILL_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// The RabbitMQ the tests use.
pub fn amqp_url() -> String {
    std::env::var("SECKILL_TEST_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// A short unique name, usable as a Redis prefix, a database suffix or in queue names.
pub fn unique_name() -> String {
    format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// A migrated database that exists for one test and is dropped afterwards.
#[derive(Debug)]
pub struct TestDb {
    /// Its name.
    pub name: String,
    /// URL to connect to it.
    pub url: String,
    /// A pool on it.
    pub pool: PgPool,
}

impl TestDb {
    /// Creates and migrates a fresh database.
    pub async fn create() -> TestDb {
        let name = format!("seckill_test_{}", unique_name());
        let admin = admin_database_url();
        let mut conn = PgConnection::connect(&admin).await.expect("connect to PostgreSQL as admin");
        // Database names cannot be bound parameters; this one is ours (letters, digits, _).
        let create = sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"));
        sqlx::query(create).execute(&mut conn).await.expect("create test database");
        conn.close().await.ok();
        let url = replace_database(&admin, &name);
        let pool = platform::db::connect(&SecretString::from(url.clone()), 10).await.expect("connect to test database");
        platform::db::migrate(&pool).await.expect("migrate test database");
        TestDb { name, url, pool }
    }

    /// The URL as a secret, as service settings take it.
    pub fn secret_url(&self) -> SecretString {
        SecretString::from(self.url.clone())
    }

    /// Service settings for this database (already migrated).
    pub fn settings(&self) -> platform::db::DatabaseSettings {
        platform::db::DatabaseSettings::at(self.secret_url())
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // No async in Drop: a short-lived thread with its own runtime drops the database, so this
        // also runs when the test panicked.
        let name = self.name.clone();
        let pool = self.pool.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async move {
                pool.close().await;
                let mut conn = PgConnection::connect(&admin_database_url()).await.ok()?;
                let drop = sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
                sqlx::query(drop).execute(&mut conn).await.ok()
            })
        })
        .join();
    }
}

fn replace_database(url: &str, database: &str) -> String {
    match url.rfind('/') {
        Some(slash) if url[..slash].contains("://") && !url[..slash].ends_with('/') => {
            format!("{}/{database}", &url[..slash])
        }
        _ => format!("{url}/{database}"),
    }
}

/// A Redis pool for tests.
pub async fn redis_pool() -> Pool {
    platform::redis::connect(&SecretString::from(redis_url()), 32).await.expect("connect to Redis")
}

/// The shared multiplexed Redis connection the services' hot paths use, for tests.
pub async fn redis_shared() -> platform::redis::Shared {
    platform::redis::Shared::connect(&SecretString::from(redis_url())).await.expect("connect to Redis")
}

/// Deletes every key under `prefix:`.
pub async fn clear_redis_prefix(pool: &Pool, prefix: &str) {
    let mut conn = pool.get().await.expect("redis connection");
    let keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("{prefix}:*")).query_async(&mut *conn).await.unwrap_or_default();
    if !keys.is_empty() {
        let _: Result<i64, _> = conn.del(keys).await;
    }
}

/// Polls `probe` every 20 ms until it returns `Some`, or gives up after `limit` (a hang detector).
pub async fn wait_for<T, F, Fut>(limit: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = probe().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The RPC security every in-process test stack uses: the built-in development cluster key
/// (the services' default settings use it too, in development).
pub fn rpc_security() -> rpc::Security {
    platform::security::RpcSecurity::default().load().expect("the development RPC security loads")
}

/// The identity tokens of that cluster.
pub fn identities() -> platform::identity::Identities {
    platform::security::RpcSecurity::default().identities()
}

/// A credential for calls made as user `user_id`.
pub fn as_user(user_id: i64) -> rpc::Credential {
    identities().user_credential(contracts::Actor { user_id, role: contracts::Role::User })
}

/// A credential for calls made as an admin (user 1).
pub fn as_admin() -> rpc::Credential {
    identities().user_credential(contracts::Actor { user_id: 1, role: contracts::Role::Admin })
}

/// A credential for calls made as one of the system's services (the internal methods).
pub fn as_service() -> rpc::Credential {
    identities().service_credential(contracts::Service::Operator)
}

/// A channel to `addr` that passes the test cluster's handshake.
pub fn channel(addr: impl ToString) -> rpc::Channel {
    rpc::Channel::new(addr.to_string(), rpc::ClientConfig { security: rpc_security(), ..Default::default() })
}

/// Registry settings for tests: a static registry, so test servers never appear in the shared
/// Redis registry.
pub fn static_registry() -> platform::registry::RegistrySettings {
    platform::registry::RegistrySettings { kind: platform::registry::RegistryKind::Static, ..Default::default() }
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_names_replace_the_last_path_segment() {
        assert_eq!(super::replace_database("postgres://u@h:5432/postgres", "x"), "postgres://u@h:5432/x");
        assert_eq!(super::replace_database("postgres://u@h:5432", "x"), "postgres://u@h:5432/x");
    }
}
