//! The order lifecycle after the write: `unpaid → paid` (see [`crate::payment`]) and
//! `unpaid → cancelled`, by the buyer or by the payment timer.
//!
//! A cancellation is two steps, in this order:
//!
//! ```text
//! BEGIN
//!   lock the goods' sale (advisory, shared)      -- no sale-state rebuild reads half of it
//!   UPDATE orders SET status = 'cancelled' WHERE id = $1 AND status = 'unpaid' [AND expired]
//!   UPDATE seckill_goods SET stock = stock + 1   -- only if that UPDATE changed the row
//! COMMIT
//! release the buyer's hold in Redis, by ticket   -- the unit back on sale, the buyer free
//! UPDATE orders SET unit_returned_at = now()
//! ```
//!
//! PostgreSQL first: Redis may only sell a unit PostgreSQL has. The conditional UPDATE makes
//! the PostgreSQL return happen once however often a cancellation runs; the release only
//! removes a hold of that very ticket, so the Redis return happens once too (a second run finds
//! nothing held). A crash between the steps leaves `unit_returned_at` empty: the timer's message
//! is redelivered (it is acknowledged only after both), and the safety sweep ([`sweep`]) finds
//! whatever is left.

pub mod sweep;

use std::time::Duration;

use chrono::Utc;
use contracts::keyspace::SaleLock;
use contracts::order::{CancelReason, OrderStatus, OrderView};
use contracts::stock::{ReleaseScope, StockError, StockServiceClient};
use rpc::Transport;
use sqlx::PgPool;

use crate::results::{Outcome, Results, TicketOutcome};
use crate::store;

/// What a cancellation found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cancellation {
    /// The order is cancelled (now, or before) and its unit back in both stores.
    Cancelled(OrderView),
    /// It is paid: it stays so.
    Paid(OrderView),
    /// A timer came before the window closed (the broker's clock runs ahead of the
    /// database's): this long is left.
    NotDue(Duration),
    /// No such order (or, for a buyer, not theirs).
    NotFound,
}

/// Why a cancellation did not finish; it can be run again as it is.
#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    /// PostgreSQL failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// stock-service failed (the PostgreSQL step may be done; the Redis one is not).
    #[error("stock-service: {0}")]
    Stock(#[from] rpc::Error<StockError>),
}

/// Cancels orders and puts their units back on sale.
pub struct Lifecycle<T> {
    pool: PgPool,
    stock: StockServiceClient<T>,
    results: Results,
}

impl<T: Clone> Clone for Lifecycle<T> {
    fn clone(&self) -> Self {
        Lifecycle { pool: self.pool.clone(), stock: self.stock.clone(), results: self.results.clone() }
    }
}

impl<T: Transport> Lifecycle<T> {
    /// Over the orders database, returning units through `stock`, telling buyers through `results`.
    pub fn new(pool: PgPool, stock: StockServiceClient<T>, results: Results) -> Self {
        Lifecycle { pool, stock, results }
    }

    /// Cancels `order_id` if it is unpaid: for [`CancelReason::Timeout`] only once its window
    /// closed; for [`CancelReason::Buyer`] only if `buyer` owns it. Finishes a cancellation an
    /// earlier run left half-way. Idempotent.
    pub async fn cancel(
        &self,
        order_id: i64,
        reason: CancelReason,
        buyer: Option<i64>,
    ) -> Result<Cancellation, CancelError> {
        let Some(order) = store::by_id(&self.pool, order_id).await? else { return Ok(Cancellation::NotFound) };
        if buyer.is_some_and(|buyer| buyer != order.user_id) {
            return Ok(Cancellation::NotFound);
        }
        if order.status == OrderStatus::Unpaid {
            self.cancel_in_database(&order, reason).await?;
        }
        let Some(order) = store::by_id(&self.pool, order_id).await? else { return Ok(Cancellation::NotFound) };
        match order.status {
            OrderStatus::Paid => Ok(Cancellation::Paid(order)),
            OrderStatus::Unpaid => {
                let left = (order.expires_at - Utc::now()).to_std().unwrap_or_default();
                Ok(Cancellation::NotDue(left.max(Duration::from_millis(1))))
            }
            OrderStatus::Cancelled => {
                self.return_to_redis(&order).await?;
                Ok(Cancellation::Cancelled(order))
            }
        }
    }

    /// The PostgreSQL step: the order cancelled and its unit back in `stock`, in one
    /// transaction, if the order is still unpaid (and, for a timeout, expired).
    async fn cancel_in_database(&self, order: &OrderView, reason: CancelReason) -> sqlx::Result<()> {
        let mut tx = self.pool.begin().await?;
        store::lock_sale_shared(&mut tx, SaleLock::of(order.goods_id)).await?;
        let cancelled = sqlx::query(
            "UPDATE orders SET status = 'cancelled', cancelled_at = now(), cancel_reason = $2
              WHERE id = $1 AND status = 'unpaid' AND ($3 OR expires_at <= now())",
        )
        .bind(order.id)
        .bind(reason.name())
        .bind(reason == CancelReason::Buyer)
        .execute(&mut *tx)
        .await?;
        if cancelled.rows_affected() == 1 {
            sqlx::query("UPDATE seckill_goods SET stock = stock + 1 WHERE goods_id = $1")
                .bind(order.goods_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        if cancelled.rows_affected() == 1 {
            tracing::info!(order_id = order.id, reason = reason.name(), "order cancelled");
            metrics::counter!("order_cancellations_total", "reason" => reason.name()).increment(1);
        }
        Ok(())
    }

    /// The Redis step, if not done yet: the buyer's hold of this ticket released (its unit back
    /// on sale, the buyer free to buy again), then recorded as done.
    async fn return_to_redis(&self, order: &OrderView) -> Result<(), CancelError> {
        let returned: Option<chrono::DateTime<Utc>> =
            sqlx::query_scalar("SELECT unit_returned_at FROM orders WHERE id = $1")
                .bind(order.id)
                .fetch_one(&self.pool)
                .await?;
        if returned.is_some() {
            return Ok(());
        }
        self.stock.release(order.goods_id, order.user_id, order.ticket, ReleaseScope::AnyHold).await?;
        let cancelled = TicketOutcome {
            goods_id: order.goods_id,
            user_id: order.user_id,
            ticket: order.ticket,
            outcome: Outcome::Cancelled(order.id),
        };
        // Best effort: the buyer's poll falls back to PostgreSQL, which knows.
        if let Err(err) = self.results.record(&[cancelled]).await {
            tracing::warn!(order_id = order.id, %err, "could not record the cancellation for polling");
        }
        sqlx::query("UPDATE orders SET unit_returned_at = now() WHERE id = $1 AND unit_returned_at IS NULL")
            .bind(order.id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
