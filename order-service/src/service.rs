//! The `OrderService` implementation: place (reserve, publish, confirm), result, get.

use contracts::order::{OrderAudit, OrderError, OrderMessage, OrderResult, OrderService, OrderView, Ticket};
use contracts::stock::{ReleaseOutcome, ReleaseScope, ReserveOutcome, StockError, StockServiceClient};
use std::sync::Arc;
use std::time::Duration;

use contracts::Principal;
use platform::identity::Identities;
use rpc::Transport;
use sqlx::PgPool;
use uuid::Uuid;

use crate::broker::Publisher;
use crate::results::{Outcome, Results, TicketOutcome};
use crate::store;

/// The order service. Cheap to clone (its parts are handles).
pub(crate) struct Orders<T> {
    pool: PgPool,
    stock: StockServiceClient<T>,
    publisher: Arc<Publisher>,
    results: Results,
    identities: Identities,
    orphan_check: Duration,
}

impl<T: Clone> Clone for Orders<T> {
    fn clone(&self) -> Self {
        Orders {
            pool: self.pool.clone(),
            stock: self.stock.clone(),
            publisher: self.publisher.clone(),
            results: self.results.clone(),
            identities: self.identities.clone(),
            orphan_check: self.orphan_check,
        }
    }
}

/// A ticket queued this long (by Redis's clock) is checked against PostgreSQL when polled: far
/// longer than a batch takes, so polls during a normal sale never reach the database.
const QUEUED_CHECK_AFTER_MS: i64 = 3_000;

/// Time kept back from the caller's deadline for answering it.
const ANSWER_MARGIN: Duration = Duration::from_millis(100);

impl<T: Transport + Clone> Orders<T> {
    /// The service over its dependencies.
    pub(crate) fn new(
        pool: PgPool,
        stock: StockServiceClient<T>,
        publisher: Publisher,
        results: Results,
        identities: Identities,
        orphan_check: Duration,
    ) -> Self {
        Orders { pool, stock, publisher: Arc::new(publisher), results, identities, orphan_check }
    }

    /// Who the call being served comes from.
    fn caller(&self) -> Result<Principal, OrderError> {
        self.identities.caller().map_err(|err| {
            tracing::warn!(%err, "call refused: no valid identity");
            OrderError::Unauthenticated
        })
    }

    /// The calling user (the buyer of `place` and `result`).
    fn buyer(&self) -> Result<i64, OrderError> {
        self.caller()?.user().map(|actor| actor.user_id).map_err(forbidden)
    }

    /// Reserve, publish, confirm, and on failure release: always all of it, so that a unit taken
    /// ends either behind a queued ticket or back on sale. Safe to repeat with the same ticket
    /// (another node retrying a call this one may have half done): the reserve is idempotent per
    /// ticket and the workers write one order per ticket however often its message comes.
    async fn place_to_completion(
        &self,
        user_id: i64,
        goods_id: i64,
        ticket: Uuid,
        budget: Option<Duration>,
    ) -> Result<Ticket, OrderError> {
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
        let price_cents = match reserved {
            ReserveOutcome::Reserved { price_cents, .. } => price_cents,
            ReserveOutcome::Duplicate => return Err(OrderError::Duplicate),
            ReserveOutcome::SoldOut => return Err(OrderError::SoldOut),
            ReserveOutcome::NotStarted { starts_at } => return Err(OrderError::NotStarted { starts_at }),
            ReserveOutcome::Ended => return Err(OrderError::Ended),
        };
        let message = OrderMessage { ticket, user_id, goods_id, price_cents };
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

fn stock_failure(err: rpc::Error<StockError>) -> OrderError {
    match err {
        rpc::Error::Application(StockError::UnknownGoods(id) | StockError::NotWarmed(id)) => {
            OrderError::UnknownGoods(id)
        }
        other => {
            tracing::warn!(%other, "stock-service call failed");
            OrderError::Unavailable("stock service unavailable".into())
        }
    }
}

fn forbidden(denied: contracts::Denied) -> OrderError {
    tracing::warn!(%denied, "call refused");
    OrderError::Forbidden
}

fn database_failure(err: sqlx::Error) -> OrderError {
    tracing::error!(%err, "database failed");
    OrderError::Unavailable("database unavailable".into())
}

impl<T: Transport + Clone> OrderService for Orders<T> {
    async fn place(&self, goods_id: i64, ticket: Uuid) -> Result<Ticket, OrderError> {
        let user_id = self.buyer()?;
        // A task of its own: if the caller gives up (its Cancel aborts this handler), the
        // reservation still ends queued or released, never half-way.
        let this = self.clone();
        let ctx = rpc::Context::current();
        let budget = ctx.remaining();
        let placing =
            tokio::spawn(ctx.scope(async move { this.place_to_completion(user_id, goods_id, ticket, budget).await }));
        placing.await.unwrap_or_else(|_| Err(OrderError::Unavailable("placing the order failed".into())))
    }

    async fn result(&self, goods_id: i64) -> Result<OrderResult, OrderError> {
        let user_id = self.buyer()?;
        match self.results.get(goods_id, user_id).await {
            // Queued for long: its order may be committed with its result never recorded (the
            // worker's Redis write failed). PostgreSQL knows.
            Ok(Some(recorded)) if recorded.queued_for_ms.is_some_and(|ms| ms >= QUEUED_CHECK_AFTER_MS) => {
                if let Some(order) = store::by_ticket(&self.pool, recorded.ticket).await.map_err(database_failure)? {
                    let written =
                        TicketOutcome { goods_id, user_id, ticket: recorded.ticket, outcome: Outcome::Success(order) };
                    if let Err(err) = self.results.record(&[written]).await {
                        tracing::warn!(%err, "could not repair a stale queued result");
                    }
                    return Ok(OrderResult::Success { order_id: order });
                }
                return Ok(recorded.result);
            }
            Ok(Some(recorded)) => return Ok(recorded.result),
            Ok(None) => {}
            Err(err) => tracing::warn!(%err, "results unreadable in Redis; asking PostgreSQL"),
        }
        if let Some(order) = store::by_user_and_goods(&self.pool, user_id, goods_id).await.map_err(database_failure)? {
            return Ok(OrderResult::Success { order_id: order.id });
        }
        let level = self.stock.stock_level(goods_id).await.map_err(stock_failure)?;
        Ok(if level.redis_stock == Some(0) { OrderResult::SoldOut } else { OrderResult::None })
    }

    async fn get_order(&self, order_id: i64) -> Result<OrderView, OrderError> {
        let reader = self.caller()?.user().map_err(forbidden)?;
        let order = store::by_id(&self.pool, order_id).await.map_err(database_failure)?.ok_or(OrderError::NotFound)?;
        // Another user's order is "not found", not "forbidden": ids cannot be probed.
        if order.user_id != reader.user_id && !reader.is_admin() {
            return Err(OrderError::NotFound);
        }
        Ok(order)
    }

    async fn audit(&self, goods_id: i64) -> Result<OrderAudit, OrderError> {
        self.caller()?.admin_or_service().map_err(forbidden)?;
        // Redis first, then PostgreSQL: a ticket whose order is committed in between is still
        // "queued" in the summary and found written in the database; read the other way round it
        // would be neither pending nor counted.
        let (queued, failed_tickets) = self.results.summary(goods_id).await.map_err(|err| {
            tracing::error!(%err, "results unreadable");
            OrderError::Unavailable("results unavailable".into())
        })?;
        // A "queued" entry whose order exists was written but its result not recorded yet.
        let (orders, buyers, written) = store::counts(&self.pool, goods_id, &queued).await.map_err(database_failure)?;
        Ok(OrderAudit { orders, buyers, pending_tickets: queued.len() as i64 - written, failed_tickets })
    }
}
