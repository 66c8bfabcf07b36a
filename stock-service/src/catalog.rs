//! The `goods` and `seckill_goods` tables. Every query binds its parameters.

use chrono::{DateTime, Utc};
use contracts::keyspace::SaleLock;
use contracts::stock::NewGoods;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::sale::SaleSnapshot;

/// A row of goods joined with its sale.
#[derive(Clone, Debug, sqlx::FromRow)]
pub(crate) struct GoodsRow {
    /// Id.
    pub(crate) goods_id: i64,
    /// Name.
    pub(crate) name: String,
    /// Description.
    pub(crate) description: String,
    /// Normal price.
    pub(crate) price_cents: i64,
    /// Sale price.
    pub(crate) seckill_price_cents: i64,
    /// Units put on sale.
    pub(crate) initial_stock: i32,
    /// Units left in PostgreSQL.
    pub(crate) stock: i32,
    /// Window start.
    pub(crate) start_at: DateTime<Utc>,
    /// Window end.
    pub(crate) end_at: DateTime<Utc>,
    /// First warm-up, if any.
    pub(crate) warmed_at: Option<DateTime<Utc>>,
    /// How a purchase takes a unit (a `PurchaseStrategy` name).
    pub(crate) strategy: String,
    /// Redis stock buckets (1 to 64, the column's CHECK).
    pub(crate) buckets: i16,
    /// The payment window, in seconds (1 to 86,400, the column's CHECK).
    pub(crate) payment_window_secs: i32,
}

impl GoodsRow {
    /// [`GoodsRow::buckets`] as a count.
    pub(crate) fn bucket_count(&self) -> u16 {
        u16::try_from(self.buckets).unwrap_or(1).max(1)
    }
}

/// The goods query, completed with a `WHERE`/`ORDER BY` literal: a static string, no formatting.
macro_rules! select_goods {
    ($rest:literal) => {
        concat!(
            "SELECT g.id AS goods_id, g.name, g.description, g.price_cents, s.seckill_price_cents,
                    s.initial_stock, s.stock, s.start_at, s.end_at, s.warmed_at, s.strategy, s.buckets,
                    s.payment_window_secs
               FROM goods g JOIN seckill_goods s ON s.goods_id = g.id ",
            $rest
        )
    };
}

/// Inserts goods and its sale in one transaction.
pub(crate) async fn create(pool: &PgPool, goods: &NewGoods) -> sqlx::Result<GoodsRow> {
    let mut tx = pool.begin().await?;
    let (goods_id,): (i64,) =
        sqlx::query_as("INSERT INTO goods (name, description, price_cents) VALUES ($1, $2, $3) RETURNING id")
            .bind(&goods.name)
            .bind(&goods.description)
            .bind(goods.price_cents)
            .fetch_one(&mut *tx)
            .await?;
    sqlx::query(
        "INSERT INTO seckill_goods (goods_id, seckill_price_cents, initial_stock, stock, start_at, end_at, strategy,
                                    buckets, payment_window_secs)
         VALUES ($1, $2, $3, $3, $4, $5, $6, $7, $8)",
    )
    .bind(goods_id)
    .bind(goods.seckill_price_cents)
    .bind(goods.stock)
    .bind(goods.start_at)
    .bind(goods.end_at)
    .bind(goods.strategy.name())
    .bind(i16::try_from(goods.buckets).unwrap_or(i16::MAX))
    .bind(i32::try_from(goods.payment_window_secs).unwrap_or(i32::MAX))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(get(pool, goods_id).await?.expect("the goods was just inserted"))
}

/// Every goods on sale, soonest first.
pub(crate) async fn list(pool: &PgPool) -> sqlx::Result<Vec<GoodsRow>> {
    sqlx::query_as(select_goods!("ORDER BY s.start_at, g.id")).fetch_all(pool).await
}

/// One goods.
pub(crate) async fn get(pool: &PgPool, goods_id: i64) -> sqlx::Result<Option<GoodsRow>> {
    sqlx::query_as(select_goods!("WHERE g.id = $1")).bind(goods_id).fetch_optional(pool).await
}

/// Begins the transaction that (re)builds a sale state: it holds the goods' advisory lock in
/// exclusive mode, so no order worker is between claiming reservations and committing orders for
/// this goods while PostgreSQL's figures are read (workers hold the same lock in shared mode).
/// Returns the snapshot to build from, or `None` for an unknown goods.
pub(crate) async fn lock_snapshot(
    pool: &PgPool,
    lock: SaleLock,
) -> sqlx::Result<Option<(Transaction<'static, Postgres>, GoodsRow, SaleSnapshot)>> {
    let goods_id = lock.id();
    let mut tx = pool.begin().await?;
    sqlx::query(SaleLock::EXCLUSIVE).bind(lock.id()).execute(&mut *tx).await?;
    let Some(row) =
        sqlx::query_as::<_, GoodsRow>(select_goods!("WHERE g.id = $1")).bind(goods_id).fetch_optional(&mut *tx).await?
    else {
        return Ok(None);
    };
    // `orders` belongs to order-service: this read, in the same database, is the one place the
    // stock side looks at it (to rebuild the buyers after Redis lost them). A cancelled order
    // holds nothing: its unit is back in `stock`, and its buyer may buy again.
    let orders: Vec<(i64, Uuid, DateTime<Utc>)> =
        sqlx::query_as("SELECT user_id, ticket, created_at FROM orders WHERE goods_id = $1 AND status <> 'cancelled'")
            .bind(goods_id)
            .fetch_all(&mut *tx)
            .await?;
    let snapshot = SaleSnapshot {
        start_at: row.start_at,
        end_at: row.end_at,
        price_cents: row.seckill_price_cents,
        initial_stock: i64::from(row.initial_stock),
        buckets: row.bucket_count(),
        orders,
    };
    Ok(Some((tx, row, snapshot)))
}

/// Records the first warm-up.
pub(crate) async fn mark_warmed(tx: &mut Transaction<'static, Postgres>, goods_id: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE seckill_goods SET warmed_at = COALESCE(warmed_at, now()) WHERE goods_id = $1")
        .bind(goods_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A goods whose sale is due to be warmed up, as [`due_for_warm_up`] finds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, sqlx::FromRow)]
pub(crate) struct DueSale {
    /// Id.
    pub(crate) goods_id: i64,
    /// First warm-up, if any (read without the lock: [`lock_snapshot`] reads it again under it).
    pub(crate) warmed_at: Option<DateTime<Utc>>,
}

/// The sales that start within `lead_ms` milliseconds, or have started, and have not ended,
/// soonest first. PostgreSQL's clock decides, for every stock-service alike.
pub(crate) async fn due_for_warm_up(pool: &PgPool, lead_ms: i64) -> sqlx::Result<Vec<DueSale>> {
    sqlx::query_as(
        "SELECT goods_id, warmed_at FROM seckill_goods
          WHERE start_at <= now() + $1 * interval '1 millisecond' AND end_at > now()
          ORDER BY start_at, goods_id",
    )
    .bind(lead_ms)
    .fetch_all(pool)
    .await
}
