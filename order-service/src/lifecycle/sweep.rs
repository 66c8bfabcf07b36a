//! The safety sweep: what the payment timers should have done and did not (a timer the broker
//! lost, a cancellation cut off between its two steps, a refund the provider did not answer).
//! Timers cancel orders on time; the sweep is slow on purpose (every minute by default, and only
//! for what is overdue by a grace period), so that it never races them in a normal sale.
//!
//! Every step it takes is a conditional UPDATE or a release by ticket, so sweeps running in
//! several processes at once, or next to the timers, change nothing twice.

use std::time::Duration;

use contracts::order::CancelReason;
use rpc::Transport;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::{Cancellation, Lifecycle};
use crate::payment::Payments;

/// What one sweep did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Overdue unpaid orders cancelled.
    pub cancelled: usize,
    /// Cancelled orders whose unit was not back in Redis, finished.
    pub returned: usize,
    /// Refunds retried.
    pub refunded: usize,
}

/// Most rows one sweep handles of each kind (the rest wait for the next).
const SWEEP_LIMIT: i64 = 1_000;

/// The sweep.
pub struct Sweeper<T> {
    pool: PgPool,
    lifecycle: Lifecycle<T>,
    payments: Payments,
    grace: Duration,
}

impl<T: Transport> Sweeper<T> {
    /// Sweeps what is overdue by more than `grace`.
    pub fn new(pool: PgPool, lifecycle: Lifecycle<T>, payments: Payments, grace: Duration) -> Self {
        Sweeper { pool, lifecycle, payments, grace }
    }

    /// Sweeps every `interval` until `shutdown`.
    pub async fn run(self, interval: Duration, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(interval);
        ticker.tick().await; // the first tick is immediate: let the timers work first
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticker.tick() => {}
            }
            match self.sweep().await {
                Ok(swept) if swept != Swept::default() => tracing::warn!(?swept, "the safety sweep repaired orders"),
                Ok(_) => {}
                Err(err) => tracing::warn!(%err, "safety sweep failed"),
            }
        }
    }

    /// One sweep.
    pub async fn sweep(&self) -> anyhow::Result<Swept> {
        let grace = self.grace.as_secs_f64();
        let mut swept = Swept::default();
        let overdue: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM orders WHERE status = 'unpaid' AND expires_at < now() - make_interval(secs => $1)
              ORDER BY expires_at LIMIT $2",
        )
        .bind(grace)
        .bind(SWEEP_LIMIT)
        .fetch_all(&self.pool)
        .await?;
        for order_id in overdue {
            if let Cancellation::Cancelled(_) = self.lifecycle.cancel(order_id, CancelReason::Timeout, None).await? {
                swept.cancelled += 1;
            }
        }
        let unreturned: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM orders WHERE status = 'cancelled' AND unit_returned_at IS NULL
                AND cancelled_at < now() - make_interval(secs => $1) LIMIT $2",
        )
        .bind(grace)
        .bind(SWEEP_LIMIT)
        .fetch_all(&self.pool)
        .await?;
        for order_id in unreturned {
            self.lifecycle.cancel(order_id, CancelReason::Timeout, None).await?;
            swept.returned += 1;
        }
        swept.refunded = self.payments.retry_refunds(self.grace, SWEEP_LIMIT).await?;
        Ok(swept)
    }
}
