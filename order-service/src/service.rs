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
use crate::results::Results;
use crate::store;

/// The order service. Cheap to clone (its parts are handles).
pub(crate) struct Orders<T> {
    pool: PgPool,
    stock: StockServiceClient<T>,
    publisher: Arc<Publisher>,
    results: Results,
    identities: Identities,
}

impl<T: Clone> Clone for Orders<T> {
    fn clone(&self) -> Self {
        Orders {
            pool: self.pool.clone(),
            stock: self.stock.clone(),
            publisher: self.publisher.clone(),
            results: self.results.clone(),
            identities: self.identities.clone(),
        }
    }
}

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
    ) -> Self {
        Orders { pool, stock, publisher: Arc::new(publisher), results, identities }
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
    /// ends either behind a queued ticket or back on sale.
    async fn place_to_completion(
        &self,
        user_id: i64,
        goods_id: i64,
        budget: Option<Duration>,
    ) -> Result<Ticket, OrderError> {
        let ticket = Uuid::new_v4();
        let price_cents = match self.stock.reserve(goods_id, user_id, ticket).await.map_err(stock_failure)? {
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
                Ok(ReleaseOutcome::NotHeld) => return Ok(self.queued(ticket, user_id, goods_id).await),
                // The reconciler releases it after its grace period.
                Err(release) => tracing::error!(%ticket, %release, "release failed; the reconciler will release it"),
            }
            metrics::counter!("orders_placed_total", "outcome" => "unconfirmed").increment(1);
            return Err(OrderError::Unavailable(
                "the order queue did not confirm; nothing was taken, try again".into(),
            ));
        }
        Ok(self.queued(ticket, user_id, goods_id).await)
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
    async fn place(&self, goods_id: i64) -> Result<Ticket, OrderError> {
        let user_id = self.buyer()?;
        // A task of its own: if the caller gives up (its Cancel aborts this handler), the
        // reservation still ends queued or released, never half-way.
        let this = self.clone();
        let ctx = rpc::Context::current();
        let budget = ctx.remaining();
        let placing = tokio::spawn(ctx.scope(async move { this.place_to_completion(user_id, goods_id, budget).await }));
        placing.await.unwrap_or_else(|_| Err(OrderError::Unavailable("placing the order failed".into())))
    }

    async fn result(&self, goods_id: i64) -> Result<OrderResult, OrderError> {
        let user_id = self.buyer()?;
        match self.results.get(goods_id, user_id).await {
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
        let (orders, buyers) = store::counts(&self.pool, goods_id).await.map_err(database_failure)?;
        let (queued, failed_tickets) = self.results.summary(goods_id).await.map_err(|err| {
            tracing::error!(%err, "results unreadable");
            OrderError::Unavailable("results unavailable".into())
        })?;
        // A "queued" entry whose order exists was written but its result not recorded yet.
        let written = store::count_tickets(&self.pool, &queued).await.map_err(database_failure)?;
        Ok(OrderAudit { orders, buyers, pending_tickets: queued.len() as i64 - written, failed_tickets })
    }
}
