//! The warm-up scheduler: sales warmed into Redis a lead time before they start, with no admin
//! call, and warmed sales whose state Redis lost rebuilt before buyers find them missing.
//!
//! Every stock-service runs one. They need not agree on who warms what: each goods' first
//! warm-up happens under its PostgreSQL advisory lock and re-reads `warmed_at` there
//! ([`Stock::warm_up_once`]), so the instances that waited on the lock find it set and do
//! nothing. Exactly once by a lock, not by timing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::catalog::{self, DueSale};
use crate::service::Stock;
use crate::settings::WarmUpSettings;

/// Looks at the catalogue every `interval` and warms up what is due.
#[derive(Debug)]
pub(crate) struct WarmUpScheduler {
    pool: PgPool,
    stock: Stock,
    lead: Duration,
    interval: Duration,
    /// First warm-ups this process performed (not the ones it found done).
    performed: Arc<AtomicU64>,
}

/// The running scheduler; dropping it stops the task too.
#[derive(Debug)]
pub(crate) struct RunningScheduler {
    task: JoinHandle<()>,
    /// Cancels the task's token when dropped.
    stop: DropGuard,
}

impl WarmUpScheduler {
    /// A scheduler over the catalogue in `pool`, building through `stock`; it counts into
    /// `performed`.
    pub(crate) fn new(pool: PgPool, stock: Stock, settings: &WarmUpSettings, performed: Arc<AtomicU64>) -> Self {
        WarmUpScheduler { pool, stock, lead: settings.lead, interval: settings.interval, performed }
    }

    /// Runs the scheduler on its own task until [`RunningScheduler::stop`] (or drop).
    pub(crate) fn spawn(self) -> RunningScheduler {
        tracing::info!(lead = ?self.lead, interval = ?self.interval, "warm-up scheduler running");
        let stop = CancellationToken::new();
        let task = tokio::spawn(self.run(stop.clone()));
        RunningScheduler { task, stop: stop.drop_guard() }
    }

    async fn run(self, stop: CancellationToken) {
        let mut ticker = tokio::time::interval(self.interval);
        // A slow tick (PostgreSQL busy) delays the next one instead of bursting to catch up.
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticker.tick() => {}
            }
            // Cancelling mid-tick is safe: an uncommitted warm-up rolls back (`warmed_at` stays
            // NULL, a state built in Redis stays) and the next instance to tick finishes it.
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.tick() => {}
            }
        }
    }

    /// One look at the catalogue: every due sale is warmed up or checked. A failure is logged
    /// and left to the next tick.
    async fn tick(&self) {
        let lead_ms = i64::try_from(self.lead.as_millis()).unwrap_or(i64::MAX);
        let due = match catalog::due_for_warm_up(&self.pool, lead_ms).await {
            Ok(due) => due,
            Err(err) => {
                tracing::warn!(%err, "warm-up scheduler: reading the due sales failed; next tick retries");
                return;
            }
        };
        for sale in due {
            if let Err(err) = self.visit(sale).await {
                tracing::warn!(goods_id = sale.goods_id, %err, "warm-up scheduler: failed; next tick retries");
            }
        }
    }

    async fn visit(&self, sale: DueSale) -> Result<(), contracts::stock::StockError> {
        let goods_id = sale.goods_id;
        if sale.warmed_at.is_none() {
            if self.stock.warm_up_once(goods_id).await? {
                self.performed.fetch_add(1, Ordering::Relaxed);
                tracing::info!(goods_id, lead = ?self.lead, "sale warmed up by the scheduler");
            }
        } else if self.stock.rewarm_lost(goods_id).await? {
            tracing::warn!(goods_id, "the sale state was missing from Redis: rebuilt by the warm-up scheduler");
        }
        Ok(())
    }
}

impl RunningScheduler {
    /// Stops the scheduler and waits for its task to end (a tick in flight is abandoned).
    pub(crate) async fn stop(self) {
        let RunningScheduler { task, stop } = self;
        drop(stop);
        if let Err(err) = task.await {
            tracing::warn!(%err, "warm-up scheduler task ended abnormally");
        }
    }
}
