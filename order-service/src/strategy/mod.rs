//! How a purchase takes its unit, chosen per goods by an admin at creation
//! ([`PurchaseStrategy`]). The production path, [`lua_mq`], is the default; the other six are
//! the designs a flash sale is usually built with first, kept so that `loadtest scenario
//! oversell` can run them side by side on the same crowd. Each lives in a file of its own that
//! says what goes wrong with it:
//!
//! | strategy | file | on a crowd |
//! |---|---|---|
//! | `db_check_then_update` | [`db_check_then_update`] | lost updates: oversells |
//! | `db_guarded_update` | [`db_guarded_update`] | correct; every buyer queues on one row lock |
//! | `db_for_update` | [`db_for_update`] | correct; the same row lock, held longer |
//! | `db_optimistic` | [`db_optimistic`] | correct; buyers run out of retries: undersells |
//! | `redis_decr` | [`redis_decr`] | a repeat click burns a unit: undersells |
//! | `redis_lua_sync_db` | [`redis_lua_sync_db`] | correct; the request waits for PostgreSQL |
//! | `lua_mq` | [`lua_mq`] | correct; the request waits for the broker's confirm only |
//!
//! The database strategies share one transaction shape ([`Orders::place_in_database`]): take
//! the unit (the strategy's own step), insert the order, commit; the order's unique (user,
//! goods) constraint turns a repeat purchase into a rollback that gives the unit back.

mod db_check_then_update;
mod db_for_update;
mod db_guarded_update;
mod db_optimistic;
mod lua_mq;
mod redis_decr;
mod redis_lua_sync_db;

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use contracts::order::{OrderError, OrderMessage, Ticket};
use contracts::stock::PurchaseStrategy;
use rpc::Transport;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::results::{Outcome, TicketOutcome};
use crate::service::Orders;
use crate::store;

/// What a purchase of one goods needs to know before taking a unit; fixed at creation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SaleRule {
    pub(crate) strategy: PurchaseStrategy,
    pub(crate) price_cents: i64,
    pub(crate) start_at: DateTime<Utc>,
    pub(crate) end_at: DateTime<Utc>,
}

impl SaleRule {
    /// Whether the sale is open now; the reason it is not, as the buyer is told.
    fn open_at(&self, now: DateTime<Utc>) -> Result<(), OrderError> {
        if now < self.start_at {
            return Err(OrderError::NotStarted { starts_at: self.start_at });
        }
        if now >= self.end_at {
            return Err(OrderError::Ended);
        }
        Ok(())
    }
}

/// The rules of the goods bought through this process, read from PostgreSQL once per goods
/// (a goods' strategy, price and window never change), and an unknown goods id remembered for
/// a second, so that probing ids costs one query per id per second.
pub(crate) struct SaleRules {
    pool: PgPool,
    known: RwLock<HashMap<i64, SaleRule>>,
    unknown: RwLock<HashMap<i64, Instant>>,
}

/// How long "no such goods" is believed.
const UNKNOWN_FOR: Duration = Duration::from_secs(1);

impl SaleRules {
    pub(crate) fn new(pool: PgPool) -> SaleRules {
        SaleRules { pool, known: RwLock::default(), unknown: RwLock::default() }
    }

    /// The rule of `goods_id`, or `None` if there is no such goods.
    pub(crate) async fn of(&self, goods_id: i64) -> sqlx::Result<Option<SaleRule>> {
        if let Some(rule) = self.known.read().unwrap_or_else(PoisonError::into_inner).get(&goods_id) {
            return Ok(Some(*rule));
        }
        if self
            .unknown
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&goods_id)
            .is_some_and(|at| at.elapsed() < UNKNOWN_FOR)
        {
            return Ok(None);
        }
        let row: Option<(String, i64, DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
            "SELECT strategy, seckill_price_cents, start_at, end_at FROM seckill_goods WHERE goods_id = $1",
        )
        .bind(goods_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some((strategy, price_cents, start_at, end_at)) = row else {
            let mut unknown = self.unknown.write().unwrap_or_else(PoisonError::into_inner);
            unknown.retain(|_, at| at.elapsed() < UNKNOWN_FOR);
            unknown.insert(goods_id, Instant::now());
            return Ok(None);
        };
        // The column's CHECK admits only strategy names.
        let strategy = PurchaseStrategy::from_name(&strategy).unwrap_or_default();
        let rule = SaleRule { strategy, price_cents, start_at, end_at };
        self.known.write().unwrap_or_else(PoisonError::into_inner).insert(goods_id, rule);
        Ok(Some(rule))
    }
}

/// What a database strategy's own step did, inside the purchase's transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Took {
    /// One unit is taken (committed with the order, or rolled back with it).
    Unit,
    /// None left.
    SoldOut,
    /// Another purchase changed the row first (optimistic only): try again.
    Conflict,
}

/// Attempts of a database purchase whose step reports [`Took::Conflict`].
const DATABASE_ATTEMPTS: usize = 3;

impl<T: Transport + Clone> Orders<T> {
    /// The purchase, by the goods' strategy.
    pub(crate) async fn place_by_strategy(
        &self,
        user_id: i64,
        goods_id: i64,
        ticket: Uuid,
        budget: Option<Duration>,
    ) -> Result<Ticket, OrderError> {
        let rule = match self.rules.of(goods_id).await {
            Ok(rule) => rule,
            // The production path never needs PostgreSQL: a goods not read yet is bought on it
            // while PostgreSQL is down (the workers' stock guard still holds for any goods).
            Err(err) => {
                tracing::warn!(goods_id, %err, "purchase strategy unreadable; buying on lua_mq");
                None
            }
        };
        // No such goods (or unreadable): the production path, which stock-service answers.
        let Some(rule) = rule else { return self.place_lua_mq(user_id, goods_id, ticket, budget).await };
        match rule.strategy {
            PurchaseStrategy::LuaMq => self.place_lua_mq(user_id, goods_id, ticket, budget).await,
            PurchaseStrategy::RedisLuaSyncDb => self.place_redis_lua_sync_db(user_id, goods_id, ticket).await,
            PurchaseStrategy::RedisDecr => self.place_redis_decr(&rule, user_id, goods_id, ticket, budget).await,
            PurchaseStrategy::DbCheckThenUpdate
            | PurchaseStrategy::DbGuardedUpdate
            | PurchaseStrategy::DbForUpdate
            | PurchaseStrategy::DbOptimistic => self.place_in_database(&rule, user_id, goods_id, ticket).await,
        }
    }

    /// The database strategies: in one transaction, the strategy's step takes a unit, the order
    /// is inserted, and both commit; a second order of the same buyer rolls its unit back.
    async fn place_in_database(
        &self,
        rule: &SaleRule,
        user_id: i64,
        goods_id: i64,
        ticket: Uuid,
    ) -> Result<Ticket, OrderError> {
        rule.open_at(Utc::now())?;
        let message = OrderMessage { ticket, user_id, goods_id, price_cents: rule.price_cents };
        for _ in 0..DATABASE_ATTEMPTS {
            let mut tx = self.pool.begin().await.map_err(crate::service::database_failure)?;
            let took = take_unit(&mut tx, rule.strategy, goods_id).await.map_err(crate::service::database_failure)?;
            match took {
                Took::SoldOut => return Err(OrderError::SoldOut),
                Took::Conflict => continue,
                Took::Unit => {}
            }
            let order_id = self.order_id()?;
            let inserted = store::insert_orders(&mut tx, &[(order_id, &message)])
                .await
                .map_err(crate::service::database_failure)?;
            let Some(order) = inserted.first() else {
                // The buyer already has an order: the rollback (on drop) gives the unit back.
                return Err(OrderError::Duplicate);
            };
            tx.commit().await.map_err(crate::service::database_failure)?;
            self.written(user_id, order).await;
            return Ok(Ticket { ticket, user_id, goods_id });
        }
        metrics::counter!("orders_placed_total", "outcome" => "conflict").increment(1);
        Err(OrderError::Unavailable("other buyers changed the stock first every time; try again".into()))
    }

    /// A snowflake id for an order written in the request (the synchronous strategies).
    fn order_id(&self) -> Result<i64, OrderError> {
        self.ids.next_id().map_err(|err| {
            tracing::error!(%err, "no order id");
            OrderError::Unavailable("no order id available".into())
        })
    }

    /// Records the written order as the buyer's result (best effort: polling falls back to
    /// PostgreSQL) and starts its payment timer (best effort too: the safety sweep cancels an
    /// order whose timer was never started).
    async fn written(&self, user_id: i64, order: &store::WrittenOrder) {
        let (goods_id, ticket) = (order.goods_id, order.ticket);
        let outcome = TicketOutcome { goods_id, user_id, ticket, outcome: Outcome::Success(order.id) };
        if let Err(err) = self.results.record(&[outcome]).await {
            tracing::warn!(%ticket, %err, "could not record the written order's result");
        }
        if let Err(err) = self.publisher.publish_timers(&store::WrittenOrder::timers(&[*order])).await {
            tracing::warn!(order_id = order.id, %err, "payment timer not started; the safety sweep will cancel it");
        }
        metrics::counter!("orders_placed_total", "outcome" => "written").increment(1);
    }
}

/// The strategy's own step of a database purchase.
async fn take_unit(conn: &mut PgConnection, strategy: PurchaseStrategy, goods_id: i64) -> sqlx::Result<Took> {
    match strategy {
        PurchaseStrategy::DbCheckThenUpdate => db_check_then_update::take(conn, goods_id).await,
        PurchaseStrategy::DbGuardedUpdate => db_guarded_update::take(conn, goods_id).await,
        PurchaseStrategy::DbForUpdate => db_for_update::take(conn, goods_id).await,
        PurchaseStrategy::DbOptimistic => db_optimistic::take(conn, goods_id).await,
        PurchaseStrategy::RedisDecr | PurchaseStrategy::RedisLuaSyncDb | PurchaseStrategy::LuaMq => {
            unreachable!("{} is not a database strategy", strategy.name())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sale_is_open_from_its_start_until_its_end() {
        let start_at = Utc::now();
        let rule = SaleRule {
            strategy: PurchaseStrategy::DbGuardedUpdate,
            price_cents: 1,
            start_at,
            end_at: start_at + chrono::Duration::minutes(1),
        };
        assert_eq!(
            rule.open_at(start_at - chrono::Duration::seconds(1)),
            Err(OrderError::NotStarted { starts_at: start_at })
        );
        assert_eq!(rule.open_at(start_at), Ok(()));
        assert_eq!(rule.open_at(start_at + chrono::Duration::minutes(1)), Err(OrderError::Ended));
    }
}
