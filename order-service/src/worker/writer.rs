//! Writing one batch of orders: one PostgreSQL transaction for the whole batch.
//!
//! ```text
//! BEGIN
//!   lock each goods (advisory, shared)         -- no sale-state rebuild in between
//!   claim the reservations in Redis (one RPC per goods)
//!   INSERT ... SELECT FROM UNNEST(...) ON CONFLICT DO NOTHING   -- one statement, n rows
//!   UPDATE seckill_goods SET stock = stock - n WHERE stock >= n  -- the guard, per goods
//! COMMIT                                       -- then each order's payment timer is
//!                                              -- published, then the messages acknowledged
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::snowflake::Snowflake;
use contracts::keyspace::SaleLock;
use contracts::order::OrderMessage;
use contracts::stock::{ClaimOutcome, ReleaseScope, StockServiceClient};
use rpc::Transport;
use sqlx::PgPool;
use uuid::Uuid;

use crate::store::{self, WrittenOrder};

/// What became of one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The order exists (written now, or by an earlier delivery of the same message).
    Written(WrittenOrder),
    /// No order. `release` says how the message's hold must be undone, if it still holds one
    /// (a lost reservation holds nothing).
    Refused {
        /// Why, for the buyer's result.
        reason: String,
        /// How to undo the hold, if at all.
        release: Option<ReleaseScope>,
    },
}

/// Why a batch was not written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WriteError {
    /// A dependency is down or timed out: the same batch may well work later.
    #[error("transient: {0}")]
    Transient(String),
    /// Some message cannot be written (a constraint or data error): write the messages one by
    /// one to find out which.
    #[error("batch refused: {0}")]
    Refused(String),
    /// The database stock guard refused: PostgreSQL has fewer units than Redis handed out.
    #[error("stock guard: {0}")]
    SoldOutInDatabase(String),
}

impl From<sqlx::Error> for WriteError {
    fn from(err: sqlx::Error) -> WriteError {
        match &err {
            // Class 22 (data exception) and 23 (integrity constraint violation): the data is at
            // fault, retrying will not help.
            sqlx::Error::Database(db)
                if db.code().is_some_and(|code| code.starts_with("22") || code.starts_with("23")) =>
            {
                WriteError::Refused(err.to_string())
            }
            _ => WriteError::Transient(err.to_string()),
        }
    }
}

/// Writes batches of orders.
pub(crate) struct Writer<T> {
    pool: PgPool,
    stock: StockServiceClient<T>,
    ids: Arc<Snowflake>,
}

impl<T: Transport> Writer<T> {
    /// A writer over the orders database, claiming through `stock`, numbering with `ids`.
    pub(crate) fn new(pool: PgPool, stock: StockServiceClient<T>, ids: Arc<Snowflake>) -> Self {
        Writer { pool, stock, ids }
    }

    /// Writes `messages` (distinct tickets) in one transaction; one verdict per message, in order.
    pub(crate) async fn write(&self, messages: &[OrderMessage]) -> Result<Vec<Verdict>, WriteError> {
        let mut tx = self.pool.begin().await?;
        let mut goods: Vec<i64> = messages.iter().map(|m| m.goods_id).collect();
        goods.sort_unstable(); // a fixed lock order: no deadlock between workers
        goods.dedup();
        for goods_id in &goods {
            store::lock_sale_shared(&mut tx, SaleLock::of(*goods_id)).await?;
        }
        let claims = self.claim(messages, &goods).await?;
        let mut to_insert = Vec::new();
        for message in messages {
            if claims.get(&message.ticket) != Some(&ClaimOutcome::Lost) {
                let id = self.ids.next_id().map_err(|e| WriteError::Transient(e.to_string()))?;
                to_insert.push((id, message));
            }
        }
        let inserted = store::insert_orders(&mut tx, &to_insert).await?;
        // Row locks in goods order, like the advisory locks: two batches never wait on each other
        // crosswise.
        let mut per_goods: BTreeMap<i64, i64> = BTreeMap::new();
        for order in &inserted {
            *per_goods.entry(order.goods_id).or_default() += 1;
        }
        for (goods_id, n) in &per_goods {
            if !store::take_stock(&mut tx, *goods_id, *n).await? {
                // Redis let more through than PostgreSQL has: never commit that.
                tracing::error!(goods_id, n, "stock guard refused a batch: Redis and PostgreSQL disagree");
                return Err(WriteError::SoldOutInDatabase(format!("goods {goods_id} has fewer than {n} units")));
            }
        }
        let mut written: HashMap<Uuid, WrittenOrder> =
            inserted.into_iter().map(|order| (order.ticket, order)).collect();
        // Not inserted although claimed: an earlier delivery of the same message wrote it.
        let skipped: Vec<Uuid> =
            to_insert.iter().map(|(_, m)| m.ticket).filter(|ticket| !written.contains_key(ticket)).collect();
        if !skipped.is_empty() {
            written.extend(store::written_by_ticket(&mut tx, &skipped).await?.into_iter().map(|o| (o.ticket, o)));
        }
        tx.commit().await?;
        Ok(messages.iter().map(|message| verdict(message, &claims, &written)).collect())
    }

    /// The order written for `ticket`, if any (an earlier delivery may have committed it).
    pub(crate) async fn existing_order(&self, ticket: Uuid) -> sqlx::Result<Option<WrittenOrder>> {
        let mut conn = self.pool.acquire().await?;
        Ok(store::written_by_ticket(&mut conn, &[ticket]).await?.first().copied())
    }

    async fn claim(&self, messages: &[OrderMessage], goods: &[i64]) -> Result<HashMap<Uuid, ClaimOutcome>, WriteError> {
        let mut claims = HashMap::with_capacity(messages.len());
        for goods_id in goods {
            let holds: Vec<(i64, Uuid)> =
                messages.iter().filter(|m| m.goods_id == *goods_id).map(|m| (m.user_id, m.ticket)).collect();
            let outcomes = self
                .stock
                .claim(*goods_id, holds.clone())
                .await
                .map_err(|err| WriteError::Transient(format!("claiming reservations: {err}")))?;
            claims.extend(holds.into_iter().map(|(_, ticket)| ticket).zip(outcomes));
        }
        Ok(claims)
    }
}

fn verdict(
    message: &OrderMessage,
    claims: &HashMap<Uuid, ClaimOutcome>,
    written: &HashMap<Uuid, WrittenOrder>,
) -> Verdict {
    if claims.get(&message.ticket) == Some(&ClaimOutcome::Lost) {
        return Verdict::Refused { reason: "reservation lost".into(), release: None };
    }
    match written.get(&message.ticket) {
        Some(order) => Verdict::Written(*order),
        // Claimed, yet the user already has an order under another ticket.
        None => Verdict::Refused { reason: "already ordered".into(), release: Some(ReleaseScope::AnyHold) },
    }
}
