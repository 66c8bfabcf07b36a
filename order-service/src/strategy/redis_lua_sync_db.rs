//! `redis_lua_sync_db`: the reservation script takes the unit (as in [`super::lua_mq`]), then
//! the request writes the order itself, in PostgreSQL, before answering. **Correct, and slow**:
//! Redis turns the crowd away, but every buyer who got a unit waits for a claim, a transaction
//! and a commit of its own, and the database sees as many concurrent writers as there are
//! buyers with a unit at that moment. The queue in `lua_mq` takes exactly that off the request:
//! the workers write the same orders in batches, at the rate PostgreSQL likes.

use contracts::keyspace::SaleLock;
use contracts::order::{OrderError, OrderMessage, Ticket};
use contracts::stock::{ClaimOutcome, ReleaseScope};
use rpc::Transport;
use uuid::Uuid;

use crate::service::{Orders, database_failure, stock_failure};
use crate::store;

impl<T: Transport + Clone> Orders<T> {
    pub(super) async fn place_redis_lua_sync_db(
        &self,
        user_id: i64,
        goods_id: i64,
        ticket: Uuid,
    ) -> Result<Ticket, OrderError> {
        let price_cents = self.reserve(user_id, goods_id, ticket).await?;
        // Claimed first, as a worker does, so the reconciler never releases it meanwhile.
        let claimed = self.stock.claim(goods_id, vec![(user_id, ticket)]).await.map_err(stock_failure)?;
        if claimed.first() == Some(&ClaimOutcome::Lost) {
            return Err(OrderError::Unavailable("the reservation was lost; try again".into()));
        }
        let message = OrderMessage { ticket, user_id, goods_id, price_cents };
        match self.write_one(&message).await {
            Ok(Written::Order(order)) => {
                self.written(user_id, &order).await;
                Ok(Ticket { ticket, user_id, goods_id })
            }
            // PostgreSQL's guard refused the unit (it has none left): Redis had one too many.
            Ok(Written::NoStock) => {
                let _ = self.stock.release(goods_id, user_id, ticket, ReleaseScope::Discard).await;
                Err(OrderError::SoldOut)
            }
            // The buyer's order exists already (Redis had lost its hold and it bought again): no
            // second order, and the rollback left the unit in PostgreSQL.
            Ok(Written::AlreadyOrdered) => Err(OrderError::Duplicate),
            Err(err) => {
                let _ = self.stock.release(goods_id, user_id, ticket, ReleaseScope::AnyHold).await;
                Err(database_failure(err))
            }
        }
    }

    /// The order and its unit in one transaction, as a worker writes a batch of one.
    async fn write_one(&self, message: &OrderMessage) -> sqlx::Result<Written> {
        let mut tx = self.pool.begin().await?;
        store::lock_sale_shared(&mut tx, SaleLock::of(message.goods_id)).await?;
        if !store::take_stock(&mut tx, message.goods_id, 1).await? {
            return Ok(Written::NoStock);
        }
        let order_id = self.order_id().map_err(|err| sqlx::Error::Protocol(err.to_string()))?;
        let Some(order) = store::insert_orders(&mut tx, &[(order_id, message)]).await?.pop() else {
            return Ok(Written::AlreadyOrdered);
        };
        tx.commit().await?;
        Ok(Written::Order(order))
    }
}

/// What [`Orders::write_one`] did.
enum Written {
    /// The order is committed.
    Order(store::WrittenOrder),
    /// PostgreSQL has no unit left: nothing was written.
    NoStock,
    /// The buyer has an order already: nothing was written.
    AlreadyOrdered,
}
