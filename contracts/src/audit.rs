//! The oversell audit of one goods: the invariants the figures of a sale must satisfy. The
//! gateway's `/admin/v1/audit` and the dashboard's badge judge with this one function.

use serde::{Deserialize, Serialize};

use crate::order::{OrderAudit, OrderError, OrderServiceClient};
use crate::stock::{StockError, StockLevel, StockServiceClient};

/// Why a consistent reading of one goods' figures was not taken.
#[derive(Debug, thiserror::Error)]
pub enum FiguresError {
    /// stock-service failed.
    #[error("stock-service: {0}")]
    Stock(#[from] rpc::Error<StockError>),
    /// order-service failed.
    #[error("order-service: {0}")]
    Orders(#[from] rpc::Error<OrderError>),
    /// Orders were committed, or units returned, between every pair of reads.
    #[error("orders are being written too fast for a consistent audit; try again")]
    TooBusy,
}

/// The stock level and the order counts of one goods, as of one moment: they come from two
/// services and workers commit orders (and their stock) all the while, so the order counts are
/// read before and after the stock level until the figures judged against it did not move in
/// between: the live orders and the units of cancelled orders not yet back in Redis. Without
/// that, an audit taken while the queue drains could see a stock level from before a commit next
/// to an order count from after it, and report a violation that never happened; and one taken
/// while cancellations return their units could see a hold still in Redis next to PostgreSQL
/// saying its return is done (`returns_pending` 0, so "drained"). Tickets still queued may come
/// and go meanwhile (each is a unit taken and held in Redis, in one step): a busy sale would
/// otherwise never give a reading.
pub async fn figures<S: rpc::Transport, O: rpc::Transport>(
    stock: &StockServiceClient<S>,
    orders: &OrderServiceClient<O>,
    goods_id: i64,
) -> Result<(StockLevel, OrderAudit), FiguresError> {
    const ATTEMPTS: usize = 20;
    let mut before = orders.audit(goods_id).await?;
    for _ in 0..ATTEMPTS {
        let level = stock.stock_level(goods_id).await?;
        let after = orders.audit(goods_id).await?;
        if (after.orders, after.returns_pending) == (before.orders, before.returns_pending) {
            return Ok((level, after));
        }
        before = after;
    }
    Err(FiguresError::TooBusy)
}

/// The verdict on one goods, with the figures it was judged on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoodsAudit {
    /// Goods.
    pub goods_id: i64,
    /// Units put on sale.
    pub initial_stock: i64,
    /// Units left in PostgreSQL.
    pub db_stock: i64,
    /// Units left in Redis (none when the sale is not in Redis).
    pub redis_stock: Option<i64>,
    /// Holds in Redis.
    pub holds: i64,
    /// Live orders (unpaid + paid).
    pub orders: i64,
    /// Live orders waiting for their payment.
    pub unpaid: i64,
    /// Paid orders.
    pub paid: i64,
    /// Cancelled orders (their units back on sale).
    pub cancelled: i64,
    /// Cancelled orders whose unit is not back in Redis yet.
    pub returns_pending: i64,
    /// Late payments not refunded yet.
    pub refunds_pending: i64,
    /// Orders beyond one per buyer.
    pub duplicates: i64,
    /// Orders beyond the initial stock.
    pub oversold: i64,
    /// Accepted tickets not settled yet.
    pub pending_tickets: i64,
    /// Whether every accepted ticket is settled and every cancelled unit back in Redis (the
    /// Redis invariant only holds then).
    pub drained: bool,
    /// Broken invariants, in words; empty when all hold.
    pub violations: Vec<String>,
}

impl GoodsAudit {
    /// Judges one goods from its stock level and its order counts, taken at one moment.
    pub fn of(goods_id: i64, level: &StockLevel, orders: &OrderAudit) -> GoodsAudit {
        let initial = level.initial_stock;
        let mut violations = Vec::new();
        let oversold = (orders.orders - initial).max(0);
        if oversold > 0 {
            violations.push(format!("oversold: {} orders for {initial} units", orders.orders));
        }
        let duplicates = orders.orders - orders.buyers;
        if duplicates > 0 {
            violations.push(format!("{duplicates} users ordered more than once"));
        }
        if orders.unpaid + orders.paid != orders.orders {
            violations
                .push(format!("unpaid {} + paid {} != live orders {}", orders.unpaid, orders.paid, orders.orders));
        }
        // Cancelled units are back in PostgreSQL's stock: it counts only the live orders.
        if level.db_stock + orders.unpaid + orders.paid != initial {
            violations.push(format!(
                "database stock {} + unpaid {} + paid {} != initial {initial}",
                level.db_stock, orders.unpaid, orders.paid
            ));
        }
        if orders.paid_and_cancelled > 0 {
            violations.push(format!("{} cancelled orders kept a successful payment", orders.paid_and_cancelled));
        }
        let drained = orders.pending_tickets == 0 && orders.returns_pending == 0;
        if let (true, Some(redis_stock)) = (drained, level.redis_stock) {
            if redis_stock + level.holds != initial {
                violations.push(format!("Redis stock {redis_stock} + holds {} != initial {initial}", level.holds));
            }
        }
        GoodsAudit {
            goods_id,
            initial_stock: initial,
            db_stock: level.db_stock,
            redis_stock: level.redis_stock,
            holds: level.holds,
            orders: orders.orders,
            unpaid: orders.unpaid,
            paid: orders.paid,
            cancelled: orders.cancelled,
            returns_pending: orders.returns_pending,
            refunds_pending: orders.refunds_pending,
            duplicates,
            oversold,
            pending_tickets: orders.pending_tickets,
            drained,
            violations,
        }
    }

    /// Whether every invariant holds.
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(db_stock: i64, redis_stock: Option<i64>, holds: i64) -> StockLevel {
        StockLevel { goods_id: 7, initial_stock: 10, db_stock, redis_stock, holds }
    }

    fn orders(orders: i64, buyers: i64, pending_tickets: i64) -> OrderAudit {
        OrderAudit {
            orders,
            buyers,
            unpaid: orders,
            paid: 0,
            cancelled: 0,
            returns_pending: 0,
            refunds_pending: 0,
            paid_and_cancelled: 0,
            pending_tickets,
            failed_tickets: 0,
        }
    }

    #[test]
    fn a_drained_sale_whose_stores_agree_is_clean() {
        let audit = GoodsAudit::of(7, &level(4, Some(4), 6), &orders(6, 6, 0));
        assert!(audit.is_clean(), "{:?}", audit.violations);
    }

    #[test]
    fn oversell_duplicates_and_disagreeing_stores_are_each_named() {
        let audit = GoodsAudit::of(7, &level(0, Some(0), 12), &orders(12, 11, 0));
        assert_eq!(audit.oversold, 2);
        assert_eq!(audit.duplicates, 1);
        assert_eq!(audit.violations.len(), 4, "{:?}", audit.violations);
    }

    #[test]
    fn cancelled_units_count_as_stock_again_and_a_kept_payment_is_a_violation() {
        // 10 units: 3 unpaid, 4 paid, 2 cancelled (back in both stores), so 3 left in each.
        let sale = OrderAudit { unpaid: 3, paid: 4, cancelled: 2, ..orders(7, 7, 0) };
        let audit = GoodsAudit::of(7, &level(3, Some(3), 7), &sale);
        assert!(audit.is_clean(), "{:?}", audit.violations);
        // The cancelled units not returned to PostgreSQL: the stock no longer adds up.
        assert!(!GoodsAudit::of(7, &level(1, Some(3), 7), &sale).is_clean());
        let kept = OrderAudit { paid_and_cancelled: 1, ..sale };
        let audit = GoodsAudit::of(7, &level(3, Some(3), 7), &kept);
        assert_eq!(audit.violations.len(), 1, "{:?}", audit.violations);
        // A cancelled unit on its way back to Redis: not drained, the Redis check waits.
        let returning = OrderAudit { returns_pending: 1, ..sale };
        let audit = GoodsAudit::of(7, &level(3, Some(2), 8), &returning);
        assert!(!audit.drained && audit.is_clean(), "{:?}", audit.violations);
    }

    #[test]
    fn the_redis_invariant_waits_for_the_queue_to_drain() {
        let audit = GoodsAudit::of(7, &level(8, Some(3), 5), &orders(2, 2, 3));
        assert!(!audit.drained);
        assert!(audit.is_clean(), "{:?}", audit.violations);
    }
}
