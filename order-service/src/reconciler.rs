//! The reconciler: repairs what a crash or a Redis restart leaves behind.
//!
//! Each pass, under a Redis lock so that only one worker process runs it at a time:
//! 1. every live goods whose sale state is missing from Redis (Redis keeps nothing on disk here)
//!    is rebuilt from PostgreSQL by stock-service (`rewarm`);
//! 2. every reservation older than the grace period that no worker has claimed and that has no
//!    ticket (its order message was never confirmed: a crash between reserve and publish) is
//!    released. A reservation with a ticket has a message on its way; the worker decides it.

use std::time::Duration;

use chrono::Utc;
use contracts::keyspace::Keyspace;
use contracts::stock::{ReleaseOutcome, ReleaseScope, RewarmOutcome, StockServiceClient};
use deadpool_redis::Pool;
use deadpool_redis::redis;
use rpc::Transport;
use tokio_util::sync::CancellationToken;

use crate::results::Results;

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pass {
    /// Sale states rebuilt.
    pub rewarmed: usize,
    /// Sale states resynchronised with PostgreSQL after Redis restarted.
    pub resynced: usize,
    /// Orphaned reservations released.
    pub released: usize,
}

/// The reconciler.
pub struct Reconciler<T> {
    stock: StockServiceClient<T>,
    results: Results,
    redis: Pool,
    keys: Keyspace,
    grace: Duration,
    /// The Redis server's run id at the last pass: a new one means it restarted.
    run_id: std::sync::Mutex<Option<String>>,
}

impl<T: Transport> Reconciler<T> {
    /// A reconciler over `stock` and `results`, taking its pass lock in `redis` (keys named by
    /// `keys`), releasing unticketed reservations older than `grace`.
    pub fn new(stock: StockServiceClient<T>, results: Results, redis: Pool, keys: Keyspace, grace: Duration) -> Self {
        Reconciler { stock, results, redis, keys, grace, run_id: std::sync::Mutex::new(None) }
    }

    /// Whether Redis restarted since the last time this was asked (never, the first time).
    async fn redis_restarted(&self) -> anyhow::Result<bool> {
        let mut conn = self.redis.get().await?;
        let info: String = redis::cmd("INFO").arg("server").query_async(&mut *conn).await?;
        let run_id = info.lines().find_map(|line| line.strip_prefix("run_id:")).map(|id| id.trim().to_owned());
        let mut last = self.run_id.lock().unwrap_or_else(|p| p.into_inner());
        let restarted = last.is_some() && *last != run_id;
        *last = run_id;
        Ok(restarted)
    }

    /// Runs a pass every `interval` until `shutdown`.
    pub async fn run(self, interval: Duration, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(interval);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticker.tick() => {}
            }
            match self.pass_if_leader(interval * 3).await {
                Ok(Some(pass)) if pass != Pass::default() => tracing::info!(?pass, "reconciler repaired state"),
                Ok(_) => {}
                Err(err) => tracing::warn!(%err, "reconciler pass failed"),
            }
        }
    }

    /// Runs a pass if no other process holds the lock; `None` when another one does.
    pub async fn pass_if_leader(&self, lock_ttl: Duration) -> anyhow::Result<Option<Pass>> {
        let key = self.keys.reconciler_lock();
        let token = uuid::Uuid::new_v4().to_string();
        let mut conn = self.redis.get().await?;
        let acquired: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(lock_ttl.as_millis() as u64)
            .query_async(&mut *conn)
            .await?;
        if acquired.is_none() {
            return Ok(None);
        }
        let pass = self.pass().await;
        let unlock = redis::Script::new(
            "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
        );
        let _: i64 = unlock.key(&key).arg(&token).invoke_async(&mut *conn).await?;
        pass.map(Some)
    }

    /// One pass, unconditionally.
    pub async fn pass(&self) -> anyhow::Result<Pass> {
        let mut pass = Pass::default();
        let now = Utc::now();
        // A Redis that restarted from its append-only file may lack its last second of writes
        // (a claim, a release): every live sale is recomputed from PostgreSQL plus the holds.
        let restarted = self.redis_restarted().await?;
        for goods in self.stock.list_goods().await? {
            // Orphans from a sale's last minutes are released after its end too.
            if goods.end_at + chrono::Duration::hours(1) <= now {
                continue;
            }
            if restarted {
                if let RewarmOutcome::Rebuilt { stock } = self.stock.resync(goods.goods_id).await? {
                    tracing::warn!(goods_id = goods.goods_id, stock, "Redis restarted: sale state resynchronised");
                    pass.resynced += 1;
                }
                continue;
            }
            if !goods.warmed {
                if let RewarmOutcome::Rebuilt { stock } = self.stock.rewarm(goods.goods_id).await? {
                    tracing::warn!(goods_id = goods.goods_id, stock, "sale state was missing from Redis: rebuilt");
                    pass.rewarmed += 1;
                }
                continue;
            }
            // Ages by Redis's clock, which stamped the reservations: this host's clock may differ.
            let grace_ms = i64::try_from(self.grace.as_millis()).unwrap_or(i64::MAX);
            for hold in self.stock.stale_reservations(goods.goods_id, grace_ms).await? {
                let ticketed =
                    self.results.get(goods.goods_id, hold.user_id).await?.is_some_and(|r| r.ticket == hold.ticket);
                if ticketed {
                    continue;
                }
                let outcome =
                    self.stock.release(goods.goods_id, hold.user_id, hold.ticket, ReleaseScope::Unclaimed).await?;
                if outcome == ReleaseOutcome::Released {
                    tracing::warn!(goods_id = goods.goods_id, user_id = hold.user_id, ticket = %hold.ticket, "released an orphaned reservation");
                    pass.released += 1;
                }
            }
        }
        Ok(pass)
    }
}
