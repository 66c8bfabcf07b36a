//! Goods lists and details served from memory, refreshed at most once per TTL by one caller
//! (single flight): the crowd reloading the sale page never reaches PostgreSQL. Built without
//! single flight (`SECKILL_WITHOUT__SINGLE_FLIGHT`), every request that finds the list expired
//! reloads it: a stampede on stock-service and PostgreSQL at each expiry.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use contracts::stock::{GoodsView, StockServiceClient};
use rpc::Cluster;

use crate::problem::Problem;

/// The cache.
pub(crate) struct GoodsCache {
    stock: StockServiceClient<Cluster>,
    ttl: Duration,
    current: Mutex<Option<(Instant, Arc<Vec<GoodsView>>)>>,
    /// Held by the one caller refreshing, if single flight is on.
    refresh: Option<tokio::sync::Mutex<()>>,
}

impl GoodsCache {
    /// A cache over `stock`, refreshed by one caller at a time if `single_flight`.
    pub(crate) fn new(stock: StockServiceClient<Cluster>, ttl: Duration, single_flight: bool) -> GoodsCache {
        let refresh = single_flight.then(|| tokio::sync::Mutex::new(()));
        GoodsCache { stock, ttl, current: Mutex::new(None), refresh }
    }

    fn fresh(&self) -> Option<Arc<Vec<GoodsView>>> {
        let current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        current.as_ref().filter(|(at, _)| at.elapsed() < self.ttl).map(|(_, goods)| goods.clone())
    }

    /// Every goods on sale.
    pub(crate) async fn list(&self) -> Result<Arc<Vec<GoodsView>>, Problem> {
        if let Some(goods) = self.fresh() {
            return Ok(goods);
        }
        let _single_flight = match &self.refresh {
            Some(refresh) => Some(refresh.lock().await),
            None => None,
        };
        if let Some(goods) = self.fresh() {
            return Ok(goods);
        }
        let goods = Arc::new(self.stock.list_goods().await?);
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), goods.clone()));
        Ok(goods)
    }

    /// One goods, or 404.
    pub(crate) async fn get(&self, goods_id: i64) -> Result<GoodsView, Problem> {
        self.list()
            .await?
            .iter()
            .find(|goods| goods.goods_id == goods_id)
            .cloned()
            .ok_or_else(|| Problem::no_goods(goods_id))
    }

    /// Forgets the cached list (after an admin change on this gateway).
    pub(crate) fn invalidate(&self) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}
