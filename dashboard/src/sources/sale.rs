//! The goods: their stock in Redis and PostgreSQL, holds, orders, pending tickets, and the
//! audit of each, from stock- and order-service (called as an operator).

use contracts::audit::GoodsAudit;
use contracts::order::OrderServiceClient;
use contracts::stock::StockServiceClient;
use rpc::Cluster;

use crate::snapshot::{AuditBadge, GoodsPanel, Source};

/// Reads the sales.
pub(crate) struct SaleSource {
    stock: StockServiceClient<Cluster>,
    orders: OrderServiceClient<Cluster>,
    shown: usize,
}

impl SaleSource {
    /// Over these clients, showing the `shown` most recent goods.
    pub(crate) fn new(stock: StockServiceClient<Cluster>, orders: OrderServiceClient<Cluster>, shown: usize) -> Self {
        SaleSource { stock, orders, shown }
    }

    /// The goods panels and their audit.
    pub(crate) async fn read(&self) -> (Source<Vec<GoodsPanel>>, Source<AuditBadge>) {
        let mut goods = match self.stock.list_goods().await {
            Ok(goods) => goods,
            Err(err) => {
                let reason = format!("stock-service: {err}");
                return (Source::Unreachable(reason.clone()), Source::Unreachable(reason));
            }
        };
        goods.sort_by_key(|goods| std::cmp::Reverse(goods.goods_id));
        goods.truncate(self.shown);
        let readings = goods.iter().map(|goods| contracts::audit::figures(&self.stock, &self.orders, goods.goods_id));
        let readings = futures::future::join_all(readings).await;
        let mut panels = Vec::with_capacity(goods.len());
        let mut badge = AuditBadge { clean: true, goods: goods.len(), drained: true, violations: Vec::new() };
        for (goods, reading) in goods.into_iter().zip(readings) {
            let (level, orders) = match reading {
                Ok(reading) => reading,
                Err(err) => {
                    let reason = format!("goods {}: {err}", goods.goods_id);
                    return (Source::Unreachable(reason.clone()), Source::Unreachable(reason));
                }
            };
            let audit = GoodsAudit::of(goods.goods_id, &level, &orders);
            badge.clean &= audit.is_clean();
            badge.drained &= audit.drained;
            badge.violations.extend(audit.violations.iter().map(|v| format!("goods {}: {v}", goods.goods_id)));
            panels.push(GoodsPanel {
                goods_id: goods.goods_id,
                name: goods.name,
                strategy: goods.strategy.name().to_owned(),
                initial_stock: level.initial_stock,
                redis_stock: level.redis_stock,
                holds: level.holds,
                db_stock: level.db_stock,
                orders: orders.orders,
                pending_tickets: orders.pending_tickets,
                sold_out: level.redis_stock == Some(0),
                violations: audit.violations,
            });
        }
        (Source::Ok(panels), Source::Ok(badge))
    }
}
