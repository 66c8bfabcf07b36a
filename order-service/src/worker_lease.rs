//! Snowflake worker ids leased from Redis, so two running processes never share one.
//!
//! A lease is `SET <lease key> <token> NX PX <ttl>` ([`Keyspace::worker_lease`]), renewed every
//! third of the TTL by a script that extends the key only if it still holds our token (or takes
//! it back if the key vanished: nobody else holds it then). Ids are issued only while the lease
//! is known valid (see [`crate::snowflake::LeaseWindow`]): if renewals fail for longer than the
//! TTL, the generator pauses, and it stops for good if another process took the id, rather than
//! risk sharing it.
//!
//! A Redis that restarted empty forgot every lease while their holders may still be issuing ids
//! for up to a TTL. So a lease taken (or taken back) while Redis has been up for less than the
//! TTL issues nothing until it has: by then every holder from before the restart has stopped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use contracts::keyspace::Keyspace;
use deadpool_redis::Pool;
use deadpool_redis::redis::{self, Script};

use crate::snowflake::{Clock, LeaseDeadline, LeaseWindow, MAX_WORKER_ID, Snowflake, SnowflakeError, SystemClock};

/// Extends our lease; if the key is gone (Redis restarted empty), takes it back, since nobody
/// else holds it. Only a key held by another token means the id is lost.
const RENEW: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
return 0";

const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0";

/// Why no worker id could be leased.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// All 1024 ids are leased.
    #[error("all 1024 snowflake worker ids are leased")]
    Exhausted,
    /// Redis failed.
    #[error("redis: {0}")]
    Redis(String),
}

/// A leased worker id, renewed in the background until dropped or released.
#[derive(Debug)]
pub struct WorkerLease {
    pool: Pool,
    key: String,
    token: String,
    worker_id: u16,
    deadline: LeaseDeadline,
    renewer: tokio::task::JoinHandle<()>,
}

impl WorkerLease {
    /// Leases a free worker id (keys named by `keys`), trying ids from a random start.
    pub async fn acquire(pool: &Pool, keys: &Keyspace, ttl: Duration) -> Result<WorkerLease, LeaseError> {
        let mut conn = pool.get().await.map_err(|e| LeaseError::Redis(e.to_string()))?;
        let token = uuid::Uuid::new_v4().to_string();
        let start = rand::random_range(0..=MAX_WORKER_ID);
        let ttl_ms = ttl.as_millis() as u64;
        for offset in 0..=MAX_WORKER_ID {
            let worker_id = (start + offset) % (MAX_WORKER_ID + 1);
            let key = keys.worker_lease(worker_id);
            let started = SystemClock.now_ms();
            let acquired: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(&token)
                .arg("NX")
                .arg("PX")
                .arg(ttl_ms)
                .query_async(&mut *conn)
                .await
                .map_err(|e| LeaseError::Redis(e.to_string()))?;
            if acquired.is_some() {
                let from = wait_out_a_restart(&mut conn, started, ttl).await;
                if from > started {
                    tracing::warn!(
                        worker_id,
                        wait_ms = from - started,
                        "Redis restarted recently: waiting out earlier holders of this worker id"
                    );
                }
                let deadline = Arc::new(LeaseWindow {
                    from: AtomicU64::new(from),
                    until: AtomicU64::new(valid_until(started, ttl)),
                });
                let renewer = tokio::spawn(renew(pool.clone(), key.clone(), token.clone(), ttl, deadline.clone()));
                tracing::info!(worker_id, "leased snowflake worker id");
                return Ok(WorkerLease { pool: pool.clone(), key, token, worker_id, deadline, renewer });
            }
        }
        Err(LeaseError::Exhausted)
    }

    /// The leased id.
    pub fn worker_id(&self) -> u16 {
        self.worker_id
    }

    /// A generator for this worker id that stops issuing if the lease lapses.
    pub fn snowflake(&self) -> Result<Snowflake, SnowflakeError> {
        Snowflake::with_clock(self.worker_id, SystemClock, Some(self.deadline.clone()))
    }

    /// Gives the id back at once (otherwise it frees itself when the TTL runs out).
    pub async fn release(self) {
        self.renewer.abort();
        self.deadline.until.store(0, Ordering::Release);
        if let Ok(mut conn) = self.pool.get().await {
            let _: Result<i64, _> = Script::new(RELEASE).key(&self.key).arg(&self.token).invoke_async(&mut *conn).await;
        }
    }
}

impl Drop for WorkerLease {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

/// When a lease taken at `now_ms` may first issue ids: at once, unless Redis has been up for less
/// than `ttl` (it restarted and forgot leases whose holders may still be valid), then once it
/// has. If Redis's uptime cannot be read, the full TTL is waited to be safe.
async fn wait_out_a_restart(conn: &mut deadpool_redis::Connection, now_ms: u64, ttl: Duration) -> u64 {
    let info: Result<String, _> = redis::cmd("INFO").arg("server").query_async(&mut **conn).await;
    let uptime_ms = info.ok().and_then(|info| {
        let line = info.lines().find_map(|line| line.strip_prefix("uptime_in_seconds:"))?;
        line.trim().parse::<u64>().ok().map(|secs| secs * 1000)
    });
    let ttl_ms = ttl.as_millis() as u64;
    match uptime_ms {
        // Whole seconds: a second more, so that the rounding can only make the wait longer.
        Some(up) if up >= ttl_ms + 1000 => now_ms,
        Some(up) => now_ms + (ttl_ms + 1000 - up),
        None => now_ms + ttl_ms,
    }
}

/// Ids may be issued until a tenth of the TTL before the key could expire.
fn valid_until(renewed_at_ms: u64, ttl: Duration) -> u64 {
    let ttl_ms = ttl.as_millis() as u64;
    renewed_at_ms + ttl_ms - ttl_ms / 10
}

async fn renew(pool: Pool, key: String, token: String, ttl: Duration, deadline: LeaseDeadline) {
    let script = Script::new(RENEW);
    let mut interval = tokio::time::interval(ttl / 3);
    interval.tick().await; // the first tick is immediate; we just acquired
    loop {
        interval.tick().await;
        let started = SystemClock.now_ms();
        let outcome: Result<i64, String> = async {
            let mut conn = pool.get().await.map_err(|e| e.to_string())?;
            script
                .key(&key)
                .arg(&token)
                .arg(ttl.as_millis() as u64)
                .invoke_async(&mut *conn)
                .await
                .map_err(|e| e.to_string())
        }
        .await;
        match outcome {
            Ok(1) => deadline.until.store(valid_until(started, ttl), Ordering::Release),
            Ok(2) => {
                tracing::warn!(%key, "snowflake worker id lease was gone (Redis lost its data); taken back");
                if let Ok(mut conn) = pool.get().await {
                    let from = wait_out_a_restart(&mut conn, started, ttl).await;
                    deadline.from.fetch_max(from, Ordering::AcqRel);
                }
                deadline.until.store(valid_until(started, ttl), Ordering::Release);
            }
            Ok(_) => {
                deadline.until.store(0, Ordering::Release);
                tracing::error!(%key, "snowflake worker id lease lost to another process; no more ids from this one");
                return;
            }
            Err(err) => tracing::warn!(%key, %err, "could not renew the snowflake worker id lease; will retry"),
        }
    }
}
