//! PostgreSQL's own count of transactions on the system's database, as a rate.

use std::time::Instant;

use sqlx::PgPool;
use tokio::sync::Mutex;

use crate::snapshot::{PostgresPanel, Source};

/// Reads `pg_stat_database`.
pub(crate) struct PostgresSource {
    pool: PgPool,
    previous: Mutex<Option<(i64, Instant)>>,
}

impl PostgresSource {
    /// Over `pool` (opened lazily: a database that is down is a figure, not a start-up failure).
    pub(crate) fn new(pool: PgPool) -> PostgresSource {
        PostgresSource { pool, previous: Mutex::new(None) }
    }

    /// Transactions per second since the last read (0 on the first).
    pub(crate) async fn read(&self) -> Source<PostgresPanel> {
        let total: Result<i64, sqlx::Error> = sqlx::query_scalar(
            "SELECT (xact_commit + xact_rollback)::BIGINT FROM pg_stat_database WHERE datname = current_database()",
        )
        .fetch_one(&self.pool)
        .await;
        let total = match total {
            Ok(total) => total,
            Err(err) => return Source::Unreachable(format!("PostgreSQL: {err}")),
        };
        let now = Instant::now();
        let mut previous = self.previous.lock().await;
        let transactions_per_sec = match previous.replace((total, now)) {
            Some((before, at)) if total >= before => {
                (total - before) as f64 / now.duration_since(at).as_secs_f64().max(0.001)
            }
            _ => 0.0,
        };
        Source::Ok(PostgresPanel { transactions_per_sec })
    }
}
