//! `lua_mq`, the production path and the default: one Lua script in Redis takes the unit (window,
//! dedupe, stock, decrement and buyer in one atomic step: `stock-service/src/sale/reserve.lua`),
//! the order message is published to RabbitMQ and the buyer's ticket accepted only once the
//! broker confirmed it; the batched workers write the orders. The request never waits for
//! PostgreSQL, and a unit taken always ends behind a queued ticket or back on sale.

use std::time::Duration;

use contracts::order::{OrderError, OrderMessage, Ticket};
use contracts::stock::{ReleaseOutcome, ReleaseScope, ReserveOutcome};
use rpc::Transport;
use uuid::Uuid;

use crate::service::{Orders, stock_failure};

/// Time kept back from the caller's deadline for answering it.
const ANSWER_MARGIN: Duration = Duration::from_millis(100);

impl<T: Transport + Clone> Orders<T> {
    /// Reserve, publish, confirm, and on failure release: always all of it, so that a unit taken
    /// ends either behind a queued ticket or back on sale. Safe to repeat with the same ticket
    /// (another node retrying a call this one may have half done): the reserve is idempotent per
    /// ticket and the workers write one order per ticket however often its message comes.
    pub(super) async fn place_lua_mq(
        &self,
        user_id: i64,
        goods_id: i64,
        ticket: Uuid,
        budget: Option<Duration>,
    ) -> Result<Ticket, OrderError> {
        let price_cents = self.reserve(user_id, goods_id, ticket).await?;
        self.queue(OrderMessage { ticket, user_id, goods_id, price_cents }, budget).await
    }

    /// The reservation script, through stock-service: the price of the unit now held for
    /// `ticket`, or why none is.
    pub(super) async fn reserve(&self, user_id: i64, goods_id: i64, ticket: Uuid) -> Result<i64, OrderError> {
        let reserved = match self.stock.reserve(goods_id, user_id, ticket).await {
            Ok(outcome) => outcome,
            Err(err) => {
                if !matches!(err, rpc::Error::Application(_)) && !err.not_executed() {
                    // The reserve may have been applied without its answer reaching us.
                    self.release_if_orphaned_later(goods_id, user_id, ticket);
                }
                return Err(stock_failure(err));
            }
        };
        match reserved {
            ReserveOutcome::Reserved { price_cents, .. } => Ok(price_cents),
            ReserveOutcome::Duplicate => Err(OrderError::Duplicate),
            ReserveOutcome::SoldOut => Err(OrderError::SoldOut),
            ReserveOutcome::NotStarted { starts_at } => Err(OrderError::NotStarted { starts_at }),
            ReserveOutcome::Ended => Err(OrderError::Ended),
        }
    }

    /// Publishes the order of a held unit and waits for the broker's confirm; without one, gives
    /// the unit back.
    pub(super) async fn queue(&self, message: OrderMessage, budget: Option<Duration>) -> Result<Ticket, OrderError> {
        let OrderMessage { ticket, user_id, goods_id, .. } = message;
        // Wait for the confirm no longer than the caller waits for us.
        let patience = budget.map(|left| left.saturating_sub(ANSWER_MARGIN).max(ANSWER_MARGIN));
        if let Err(err) = self.publisher.publish_within(&message, patience).await {
            // Nothing is accepted unless the broker has it: give the unit back.
            tracing::warn!(%ticket, %err, "order message not confirmed; releasing the reservation");
            match self.stock.release(goods_id, user_id, ticket, ReleaseScope::Unclaimed).await {
                Ok(ReleaseOutcome::Released) => {}
                // A worker already claimed it: the broker did store the message after all.
                Ok(ReleaseOutcome::Claimed) => return Ok(self.queued(ticket, user_id, goods_id).await),
                // Nothing is held any more (released meanwhile, or lost with Redis data): if the
                // message did get through, its worker finds no reservation and fails it.
                Ok(ReleaseOutcome::NotHeld) => {
                    tracing::warn!(%ticket, "the reservation was gone after an unconfirmed publish")
                }
                // Released later, or by the reconciler after its grace period.
                Err(release) => {
                    tracing::error!(%ticket, %release, "release failed; retrying later");
                    self.release_if_orphaned_later(goods_id, user_id, ticket);
                }
            }
            metrics::counter!("orders_placed_total", "outcome" => "unconfirmed").increment(1);
            return Err(OrderError::Unavailable(
                "the order queue did not confirm; nothing was taken, try again".into(),
            ));
        }
        Ok(self.queued(ticket, user_id, goods_id).await)
    }

    /// After `orphan_check`, gives back what `ticket` still holds unclaimed, unless it was queued
    /// meanwhile (a retry of the same ticket got through): a reserve whose answer was lost, or a
    /// release that failed, does not wait for the reconciler's grace period.
    fn release_if_orphaned_later(&self, goods_id: i64, user_id: i64, ticket: Uuid) {
        let this = self.clone();
        tokio::spawn(async move {
            let mut backoff = rpc::Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
            tokio::time::sleep(this.orphan_check).await;
            for _ in 0..10 {
                match this.results.get(goods_id, user_id).await {
                    Ok(Some(recorded)) if recorded.ticket == ticket => return,
                    Ok(_) => {}
                    Err(err) => tracing::warn!(%ticket, %err, "results unreadable; checking the hold anyway"),
                }
                match this.stock.release(goods_id, user_id, ticket, ReleaseScope::Unclaimed).await {
                    Ok(ReleaseOutcome::Released) => {
                        tracing::warn!(%ticket, "released the unit of a reservation nobody placed");
                        return;
                    }
                    Ok(ReleaseOutcome::Claimed | ReleaseOutcome::NotHeld) => return,
                    Err(err) => tracing::warn!(%ticket, %err, "orphan release failed; retrying"),
                }
                tokio::time::sleep(backoff.next_delay()).await;
            }
            tracing::error!(%ticket, "orphan release kept failing; the reconciler will release it");
        });
    }

    async fn queued(&self, ticket: Uuid, user_id: i64, goods_id: i64) -> Ticket {
        if let Err(err) = self.results.mark_queued(goods_id, user_id, ticket).await {
            tracing::warn!(%ticket, %err, "could not mark the ticket queued; polling falls back to PostgreSQL");
        }
        metrics::counter!("orders_placed_total", "outcome" => "queued").increment(1);
        Ticket { ticket, user_id, goods_id }
    }
}
