//! `redis_decr`: `DECR` the stock in Redis, give the unit back if it went below zero, then check
//! whether the buyer already has one (`HSETNX` on the buyers). **It undersells**: the check comes
//! after the decrement, so a repeat click (a double tap, a retry, a second tab) takes a unit and
//! is then refused as a duplicate, and that unit is never sold. Each step is atomic; the
//! sequence is not. The fix is to check and take in one atomic step, before the decrement: the
//! reservation script ([`super::lua_mq`]). Past the gate it queues the order as `lua_mq` does.

use std::time::Duration;

use chrono::Utc;
use contracts::order::{OrderError, OrderMessage, Ticket};
use deadpool_redis::redis;
use rpc::Transport;
use uuid::Uuid;

use super::SaleRule;
use crate::service::Orders;

impl<T: Transport + Clone> Orders<T> {
    pub(super) async fn place_redis_decr(
        &self,
        rule: &SaleRule,
        user_id: i64,
        goods_id: i64,
        ticket: Uuid,
        budget: Option<Duration>,
    ) -> Result<Ticket, OrderError> {
        rule.open_at(Utc::now())?;
        let keys = self.keys.sale(goods_id);
        let mut conn = self.redis.get().await.map_err(redis_failure)?;
        let left: i64 = redis::cmd("DECR").arg(&keys.stock).query_async(&mut *conn).await.map_err(redis_failure)?;
        if left < 0 {
            let _: i64 = redis::cmd("INCR").arg(&keys.stock).query_async(&mut *conn).await.map_err(redis_failure)?;
            return Err(OrderError::SoldOut);
        }
        // The bug: the duplicate check comes after the decrement, and a duplicate keeps its unit.
        let entry = format!("r:{ticket}:{}", Utc::now().timestamp_millis());
        let first: bool = redis::cmd("HSETNX")
            .arg(&keys.buyers)
            .arg(user_id)
            .arg(entry)
            .query_async(&mut *conn)
            .await
            .map_err(redis_failure)?;
        if !first {
            metrics::counter!("orders_placed_total", "outcome" => "unit_burnt").increment(1);
            return Err(OrderError::Duplicate);
        }
        drop(conn);
        self.queue(OrderMessage { ticket, user_id, goods_id, price_cents: rule.price_cents }, budget).await
    }
}

fn redis_failure(err: impl std::fmt::Display) -> OrderError {
    tracing::error!(%err, "redis failed");
    OrderError::Unavailable("redis unavailable".into())
}
