//! The `StockService` implementation: the catalogue in PostgreSQL, the sale state in Redis.

use contracts::Principal;
use contracts::keyspace::{MAX_STOCK_BUCKETS, SaleLock};
use contracts::stock::{
    ClaimOutcome, DEFAULT_PAYMENT_WINDOW_SECS, GoodsView, MAX_PAYMENT_WINDOW_SECS, NewGoods, PurchaseStrategy,
    ReleaseOutcome, ReleaseScope, Reservation, ReserveOutcome, RewarmOutcome, StockError, StockLevel, StockService,
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
        match self.restore(goods_id).await? {
            None => Err(StockError::NotWarmed(goods_id)),
            Some(built) => {
                if built {
                    tracing::warn!(goods_id, "the sale state was missing from Redis: rebuilt on the first reserve");
                }
                Ok(())
            }
        }
    }

    /// Rebuilds a warmed-up goods' sale state if Redis has none, one rebuild at a time per goods
    /// in this process: `Some(built)`, or `None` for a goods never warmed up.
    async fn restore(&self, goods_id: i64) -> Result<Option<bool>, StockError> {
        let _only_one = self.rebuilds.enter(goods_id).await;
        if self.sales.present(goods_id).await.map_err(unavailable)? {
            return Ok(Some(false)); // present, or rebuilt by another caller while we waited
        }
        let (row, built) = self.build(goods_id, Purpose::Restore, BuildMode::Missing).await?;
        Ok(row.warmed_at.map(|_| built))
    }

    /// The scheduler's first warm-up of `goods_id`: `true` if this call warmed it up, `false`
    /// if someone had already (another stock-service, an admin).
    pub(crate) async fn warm_up_once(&self, goods_id: i64) -> Result<bool, StockError> {
        let (row, _) = self.build(goods_id, Purpose::FirstWarmUp, BuildMode::Missing).await?;
        // Read under the lock: `None` there means this call is the one that set it.
        Ok(row.warmed_at.is_none())
    }

    /// The scheduler's re-warm: rebuilds a warmed-up goods' sale state that Redis lost, unless
    /// the rebuild is off (`SECKILL_WITHOUT__SALE_STATE_REBUILD`, where a lost sale stops until
    /// an admin warms it up again). `true` if it rebuilt it.
    pub(crate) async fn rewarm_lost(&self, goods_id: i64) -> Result<bool, StockError> {
        if !self.rebuild {
            return Ok(false);
        }
        Ok(self.restore(goods_id).await?.unwrap_or(false))
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

    /// Builds the sale state from PostgreSQL as `mode` says, for `purpose` (which decides
    /// whether it marks the goods warmed). Returns the row as read under the goods' advisory
    /// lock, and whether Redis was written.
    async fn build(&self, goods_id: i64, purpose: Purpose, mode: BuildMode) -> Result<(GoodsRow, bool), StockError> {
        let (mut tx, row, snapshot) = catalog::lock_snapshot(&self.pool, SaleLock::of(goods_id))
            .await
            .map_err(unavailable)?
            .ok_or(StockError::UnknownGoods(goods_id))?;
        let skip = match purpose {
            Purpose::WarmUp => false,
            // Another instance that held the lock before us has warmed it: exactly once.
            Purpose::FirstWarmUp => row.warmed_at.is_some(),
            Purpose::Restore => row.warmed_at.is_none(),
        };
        if skip {
            return Ok((row, false));
        }
        let built = self.sales.build(goods_id, &snapshot, mode).await.map_err(unavailable)?;
        if purpose != Purpose::Restore {
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

/// Why a sale state is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Purpose {
    /// An admin's warm-up: builds if missing and marks the goods warmed.
    WarmUp,
    /// The scheduler's warm-up: as [`Purpose::WarmUp`], unless the goods is warmed already.
    FirstWarmUp,
    /// A rewarm or resync: only restores what was warmed up before.
    Restore,
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
        payment_window_secs: u32::try_from(row.payment_window_secs).unwrap_or(DEFAULT_PAYMENT_WINDOW_SECS),
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
    if !(1..=MAX_PAYMENT_WINDOW_SECS).contains(&goods.payment_window_secs) {
        return Err(StockError::Invalid(format!("payment_window_secs must be 1 to {MAX_PAYMENT_WINDOW_SECS}")));
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
        self.build(goods_id, Purpose::WarmUp, BuildMode::Missing).await?;
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
        let (row, built) = self.build(goods_id, Purpose::Restore, BuildMode::Missing).await?;
        Ok(match (row.warmed_at, built) {
            (None, _) => RewarmOutcome::NeverWarmed,
            (Some(_), false) => RewarmOutcome::Present,
            (Some(_), true) => RewarmOutcome::Rebuilt { stock: i64::from(row.stock) },
        })
    }

    async fn resync(&self, goods_id: i64) -> Result<RewarmOutcome, StockError> {
        self.service()?;
        let (row, _) = self.build(goods_id, Purpose::Restore, BuildMode::Resync).await?;
        if row.warmed_at.is_none() {
            return Ok(RewarmOutcome::NeverWarmed);
        }
        let level = self.sales.level(goods_id).await.map_err(unavailable)?;
        Ok(RewarmOutcome::Rebuilt { stock: level.stock.unwrap_or_default() })
    }
}
