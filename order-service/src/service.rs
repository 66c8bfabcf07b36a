//! The `OrderService` implementation: place (reserve, publish, confirm), result, get.

use contracts::keyspace::Keyspace;
use contracts::order::{
    CallbackOutcome, CancelReason, MAX_PAGE, OrderAudit, OrderError, OrderPage, OrderResult, OrderService, OrderStatus,
    OrderView, SandboxInstructions, Ticket,
};
use contracts::stock::{StockError, StockServiceClient};
use std::sync::Arc;
use std::time::Duration;

use contracts::Principal;
use platform::identity::Identities;
use rpc::Transport;
use sqlx::PgPool;
use uuid::Uuid;

use crate::broker::Publisher;
use crate::lifecycle::{CancelError, Cancellation, Lifecycle};
use crate::payment::Payments;
use crate::results::{Outcome, Results, TicketOutcome};
use crate::snowflake::Snowflake;
use crate::store;
use crate::strategy::SaleRules;

/// The order service. Cheap to clone (its parts are handles). The purchase itself is in
/// [`crate::strategy`], one file per strategy.
pub(crate) struct Orders<T> {
    pub(crate) pool: PgPool,
    pub(crate) stock: StockServiceClient<T>,
    pub(crate) publisher: Arc<Publisher>,
    pub(crate) results: Results,
    pub(crate) identities: Identities,
    pub(crate) orphan_check: Duration,
    /// The sale state's Redis, for `redis_decr`.
    pub(crate) redis: deadpool_redis::Pool,
    pub(crate) keys: Keyspace,
    /// Order ids for the strategies that write orders in the request.
    pub(crate) ids: Arc<Snowflake>,
    /// Each goods' strategy, price and window.
    pub(crate) rules: Arc<SaleRules>,
    /// Cancellations.
    pub(crate) lifecycle: Lifecycle<T>,
    /// Payments.
    pub(crate) payments: Payments,
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
            redis: self.redis.clone(),
            keys: self.keys.clone(),
            ids: self.ids.clone(),
            rules: self.rules.clone(),
            lifecycle: self.lifecycle.clone(),
            payments: self.payments.clone(),
        }
    }
}

/// A ticket queued this long (by Redis's clock) is checked against PostgreSQL when polled: far
/// longer than a batch takes, so polls during a normal sale never reach the database.
const QUEUED_CHECK_AFTER_MS: i64 = 3_000;

/// What [`Orders`] is built from.
pub(crate) struct OrderParts<T> {
    pub(crate) pool: PgPool,
    pub(crate) stock: StockServiceClient<T>,
    pub(crate) publisher: Publisher,
    pub(crate) redis: deadpool_redis::Pool,
    /// The shared connection of the hot paths (results).
    pub(crate) shared: platform::redis::Shared,
    pub(crate) keys: Keyspace,
    pub(crate) ids: Arc<Snowflake>,
    pub(crate) identities: Identities,
    pub(crate) orphan_check: Duration,
    pub(crate) payments: Payments,
}

impl<T: Transport + Clone> Orders<T> {
    /// The service over its dependencies.
    pub(crate) fn new(parts: OrderParts<T>) -> Self {
        let OrderParts { pool, stock, publisher, redis, shared, keys, ids, identities, orphan_check, payments } = parts;
        let results = Results::new(shared, keys.clone());
        let rules = Arc::new(SaleRules::new(pool.clone()));
        let lifecycle = Lifecycle::new(pool.clone(), stock.clone(), results.clone());
        Orders {
            lifecycle,
            payments,
            pool,
            stock,
            publisher: Arc::new(publisher),
            results,
            identities,
            orphan_check,
            redis,
            keys,
            ids,
            rules,
        }
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
}

pub(crate) fn stock_failure(err: rpc::Error<StockError>) -> OrderError {
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

fn cancel_failure(err: CancelError) -> OrderError {
    tracing::warn!(%err, "cancellation not finished");
    OrderError::Unavailable("the cancellation could not finish; try again".into())
}

pub(crate) fn database_failure(err: sqlx::Error) -> OrderError {
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
            tokio::spawn(ctx.scope(async move { this.place_by_strategy(user_id, goods_id, ticket, budget).await }));
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
            return Ok(match order.status {
                OrderStatus::Cancelled => OrderResult::Cancelled { order_id: order.id },
                OrderStatus::Unpaid | OrderStatus::Paid => OrderResult::Success { order_id: order.id },
            });
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
        let counts = store::counts(&self.pool, goods_id, &queued).await.map_err(database_failure)?;
        Ok(OrderAudit {
            orders: counts.live,
            buyers: counts.buyers,
            unpaid: counts.unpaid,
            paid: counts.paid,
            cancelled: counts.cancelled,
            returns_pending: counts.returns_pending,
            refunds_pending: counts.refunds_pending,
            paid_and_cancelled: counts.paid_and_cancelled,
            pending_tickets: queued.len() as i64 - counts.of_tickets,
            failed_tickets,
        })
    }

    async fn list_orders(&self, before: Option<i64>, limit: u32) -> Result<OrderPage, OrderError> {
        let user_id = self.buyer()?;
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(OrderError::Invalid(format!("limit must be 1 to {MAX_PAGE}")));
        }
        let orders = store::page_of_user(&self.pool, user_id, before, limit).await.map_err(database_failure)?;
        let next_before = if orders.len() == limit as usize { orders.last().map(|order| order.id) } else { None };
        Ok(OrderPage { orders, next_before })
    }

    async fn pay(
        &self,
        order_id: i64,
        idempotency_key: String,
        sandbox: Option<SandboxInstructions>,
    ) -> Result<contracts::order::PaymentView, OrderError> {
        let user_id = self.buyer()?;
        self.payments.pay(user_id, order_id, &idempotency_key, sandbox).await
    }

    async fn cancel(&self, order_id: i64) -> Result<OrderView, OrderError> {
        let user_id = self.buyer()?;
        match self.lifecycle.cancel(order_id, CancelReason::Buyer, Some(user_id)).await.map_err(cancel_failure)? {
            Cancellation::Cancelled(order) => Ok(order),
            Cancellation::Paid(_) => Err(OrderError::AlreadyPaid),
            Cancellation::NotFound => Err(OrderError::NotFound),
            // Only a timeout waits for the window; a buyer's cancellation cannot get here.
            Cancellation::NotDue(_) => Err(OrderError::Unavailable("the order changed meanwhile; try again".into())),
        }
    }

    async fn payment_callback(&self, payload: Vec<u8>, signature: String) -> Result<CallbackOutcome, OrderError> {
        self.caller()?.service().map_err(forbidden)?;
        self.payments.callback(&payload, &signature).await
    }
}
