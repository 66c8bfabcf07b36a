//! The `StockService` implementation: the catalogue in PostgreSQL, the sale state in Redis.

use contracts::Principal;
use contracts::keyspace::{MAX_STOCK_BUCKETS, SaleLock};
use contracts::stock::{
    ClaimOutcome, GoodsView, NewGoods, PurchaseStrategy, ReleaseOutcome, ReleaseScope, Reservation, ReserveOutcome,
    RewarmOutcome, StockError, StockLevel, StockService,
};
use platform::identity::Identities;
use sqlx::PgPool;
use uuid::Uuid;

use crate::catalog::{self, GoodsRow};
use crate::sale::{BuildMode, SaleStore};
use crate::single_flight::SingleFlight;

/// The stock service.
#[derive(Clone, Debug)]
pub(crate) struct Stock {
    pool: PgPool,
    sales: SaleStore,
    identities: Identities,
    /// One rebuild at a time per goods in this process (the advisory lock orders them across).
    rebuilds: SingleFlight,
    /// Rebuild a lost sale state on the spot (off only with `SECKILL_WITHOUT__SALE_STATE_REBUILD`).
    rebuild: bool,
}

impl Stock {
    /// The service over a migrated database and a Redis sale store; `rebuild`: a lost sale state
    /// is rebuilt by the first reserve that finds it missing.
    pub(crate) fn new(pool: PgPool, sales: SaleStore, identities: Identities, rebuild: bool) -> Stock {
        Stock { pool, sales, identities, rebuilds: SingleFlight::default(), rebuild }
    }

    /// Rebuilds the sale state Redis lost (a restart without the append-only file, say), once
    /// for all the reserves that find it missing at the same moment: the sale resumes at once,
    /// not at the reconciler's next pass.
    async fn rebuild_lost(&self, goods_id: i64) -> Result<(), StockError> {
        if !self.rebuild {
            return Err(StockError::NotWarmed(goods_id));
        }
        let _only_one = self.rebuilds.enter(goods_id).await;
        if self.sales.present(goods_id).await.map_err(unavailable)? {
            return Ok(()); // another reserve rebuilt it while we waited
        }
        let (row, built) = self.build(goods_id, false, BuildMode::Missing).await?;
        if row.warmed_at.is_none() {
            return Err(StockError::NotWarmed(goods_id));
        }
        if built {
            tracing::warn!(goods_id, "the sale state was missing from Redis: rebuilt on the first reserve");
        }
        Ok(())
    }

    /// Who the call being served comes from.
    fn caller(&self) -> Result<Principal, StockError> {
        self.identities.caller().map_err(|err| {
            tracing::warn!(%err, "call refused: no valid identity");
            StockError::Unauthenticated
        })
    }

    fn admin(&self) -> Result<(), StockError> {
        self.caller()?.admin().map(drop).map_err(forbidden)
    }

    /// The internal methods: only the system's own services.
    fn service(&self) -> Result<(), StockError> {
        self.caller()?.service().map(drop).map_err(forbidden)
    }

    async fn row(&self, goods_id: i64) -> Result<GoodsRow, StockError> {
        catalog::get(&self.pool, goods_id).await.map_err(unavailable)?.ok_or(StockError::UnknownGoods(goods_id))
    }

    async fn views(&self, rows: Vec<GoodsRow>) -> Result<Vec<GoodsView>, StockError> {
        let goods: Vec<(i64, u16)> = rows.iter().map(|row| (row.goods_id, row.bucket_count())).collect();
        let stocks = self.sales.stocks(&goods).await.map_err(unavailable)?;
        Ok(rows.into_iter().zip(stocks).map(|(row, redis_stock)| view(row, redis_stock)).collect())
    }

    /// Builds the sale state from PostgreSQL as `mode` says; `warm` also marks the goods warmed
    /// (an admin's warm-up), a rewarm or resync only restores what was warmed before.
    async fn build(&self, goods_id: i64, warm: bool, mode: BuildMode) -> Result<(GoodsRow, bool), StockError> {
        let (mut tx, row, snapshot) = catalog::lock_snapshot(&self.pool, SaleLock::of(goods_id))
            .await
            .map_err(unavailable)?
            .ok_or(StockError::UnknownGoods(goods_id))?;
        if !warm && row.warmed_at.is_none() {
            return Ok((row, false));
        }
        let built = self.sales.build(goods_id, &snapshot, mode).await.map_err(unavailable)?;
        if warm {
            catalog::mark_warmed(&mut tx, goods_id).await.map_err(unavailable)?;
        }
        // Committing releases the advisory lock: workers may claim and write again.
        tx.commit().await.map_err(unavailable)?;
        if built {
            tracing::info!(goods_id, orders = snapshot.orders.len(), ?mode, "sale state built in Redis");
        }
        Ok((row, built))
    }
}

fn view(row: GoodsRow, redis_stock: Option<i64>) -> GoodsView {
    let buckets = row.bucket_count();
    GoodsView {
        goods_id: row.goods_id,
        name: row.name,
        description: row.description,
        price_cents: row.price_cents,
        seckill_price_cents: row.seckill_price_cents,
        initial_stock: row.initial_stock,
        stock_left: redis_stock.unwrap_or(i64::from(row.stock)),
        start_at: row.start_at,
        end_at: row.end_at,
        warmed: redis_stock.is_some(),
        // The column's CHECK admits only strategy names.
        strategy: PurchaseStrategy::from_name(&row.strategy).unwrap_or_default(),
        buckets,
    }
}

fn forbidden(denied: contracts::Denied) -> StockError {
    tracing::warn!(%denied, "call refused");
    StockError::Forbidden
}

/// Logs a dependency failure and hands the caller a short message.
fn unavailable(err: impl std::fmt::Display) -> StockError {
    tracing::error!(%err, "stock dependency failed");
    StockError::Unavailable(err.to_string())
}

fn validate(goods: &NewGoods) -> Result<(), StockError> {
    let invalid = |what: &str| Err(StockError::Invalid(what.into()));
    if goods.name.trim().is_empty() || goods.name.len() > 200 {
        return invalid("name must have 1 to 200 characters");
    }
    if goods.price_cents < 0 || goods.seckill_price_cents < 0 {
        return invalid("prices cannot be negative");
    }
    if goods.stock < 0 {
        return invalid("stock cannot be negative");
    }
    if goods.end_at <= goods.start_at {
        return invalid("the sale must end after it starts");
    }
    if !(1..=MAX_STOCK_BUCKETS).contains(&goods.buckets) {
        return Err(StockError::Invalid(format!("buckets must be 1 to {MAX_STOCK_BUCKETS}")));
    }
    if goods.buckets > 1 && !goods.strategy.reserves_in_redis() {
        return Err(StockError::Invalid(format!(
            "stock buckets need a strategy that reserves through the stock-service's script (lua_mq, \
             redis_lua_sync_db), not {}",
            goods.strategy.name()
        )));
    }
    Ok(())
}

impl StockService for Stock {
    async fn create_goods(&self, goods: NewGoods) -> Result<GoodsView, StockError> {
        self.admin()?;
        validate(&goods)?;
        let row = catalog::create(&self.pool, &goods).await.map_err(unavailable)?;
        tracing::info!(goods_id = row.goods_id, stock = goods.stock, buckets = goods.buckets, "goods created");
        Ok(view(row, None))
    }

    async fn list_goods(&self) -> Result<Vec<GoodsView>, StockError> {
        let rows = catalog::list(&self.pool).await.map_err(unavailable)?;
        self.views(rows).await
    }

    async fn get_goods(&self, goods_id: i64) -> Result<GoodsView, StockError> {
        let row = self.row(goods_id).await?;
        Ok(self.views(vec![row]).await?.remove(0))
    }

    async fn warm_up(&self, goods_id: i64) -> Result<GoodsView, StockError> {
        self.admin()?;
        self.build(goods_id, true, BuildMode::Missing).await?;
        self.get_goods(goods_id).await
    }

    async fn reserve(&self, goods_id: i64, user_id: i64, ticket: Uuid) -> Result<ReserveOutcome, StockError> {
        self.service()?;
        if let Some(outcome) = self.sales.reserve(goods_id, user_id, ticket).await.map_err(unavailable)? {
            return Ok(outcome);
        }
        // Off the hot path: only a goods without sale state gets here (never warmed, or lost).
        self.rebuild_lost(goods_id).await?;
        self.sales.reserve(goods_id, user_id, ticket).await.map_err(unavailable)?.ok_or(StockError::NotWarmed(goods_id))
    }

    async fn release(
        &self,
        goods_id: i64,
        user_id: i64,
        ticket: Uuid,
        scope: ReleaseScope,
    ) -> Result<ReleaseOutcome, StockError> {
        self.service()?;
        self.sales.release(goods_id, user_id, ticket, scope).await.map_err(unavailable)
    }

    async fn claim(&self, goods_id: i64, holds: Vec<(i64, Uuid)>) -> Result<Vec<ClaimOutcome>, StockError> {
        self.service()?;
        self.sales.claim(goods_id, &holds).await.map_err(unavailable)
    }

    async fn stock_level(&self, goods_id: i64) -> Result<StockLevel, StockError> {
        self.caller()?.admin_or_service().map_err(forbidden)?;
        let row = self.row(goods_id).await?;
        let level = self.sales.level(goods_id).await.map_err(unavailable)?;
        Ok(StockLevel {
            goods_id,
            initial_stock: i64::from(row.initial_stock),
            db_stock: i64::from(row.stock),
            redis_stock: level.stock,
            holds: level.holds,
        })
    }

    async fn stale_reservations(&self, goods_id: i64, older_than_ms: i64) -> Result<Vec<Reservation>, StockError> {
        self.service()?;
        let (now_ms, holds) = self.sales.holds(goods_id).await.map_err(unavailable)?;
        let before_ms = now_ms.saturating_sub(older_than_ms.max(0));
        Ok(holds.into_iter().filter(|hold| !hold.claimed && hold.reserved_at_ms < before_ms).collect())
    }

    async fn rewarm(&self, goods_id: i64) -> Result<RewarmOutcome, StockError> {
        self.service()?;
        let (row, built) = self.build(goods_id, false, BuildMode::Missing).await?;
        Ok(match (row.warmed_at, built) {
            (None, _) => RewarmOutcome::NeverWarmed,
            (Some(_), false) => RewarmOutcome::Present,
            (Some(_), true) => RewarmOutcome::Rebuilt { stock: i64::from(row.stock) },
        })
    }

    async fn resync(&self, goods_id: i64) -> Result<RewarmOutcome, StockError> {
        self.service()?;
        let (row, _) = self.build(goods_id, false, BuildMode::Resync).await?;
        if row.warmed_at.is_none() {
            return Ok(RewarmOutcome::NeverWarmed);
        }
        let level = self.sales.level(goods_id).await.map_err(unavailable)?;
        Ok(RewarmOutcome::Rebuilt { stock: level.stock.unwrap_or_default() })
    }
}
