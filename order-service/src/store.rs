//! The `orders` table, and the stock guard on `seckill_goods`. Every query binds its parameters.

use chrono::{DateTime, Utc};
use contracts::keyspace::SaleLock;
use contracts::order::{OrderMessage, OrderView};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// Takes the sale's advisory lock in shared mode for the rest of the transaction: many workers
/// write orders at once, but never while a sale state is being rebuilt from this table.
pub(crate) async fn lock_sale_shared(conn: &mut PgConnection, lock: SaleLock) -> sqlx::Result<()> {
    sqlx::query(SaleLock::SHARED).bind(lock.id()).execute(conn).await?;
    Ok(())
}

/// Inserts orders in one statement; rows whose (user, goods) already has an order are skipped (a
/// redelivered message, or the user's other ticket). Only that constraint is the conflict target:
/// an id that collides with another order's is an error, never taken for "already ordered".
/// Returns (ticket, order id, goods id) of the rows actually inserted.
pub async fn insert_orders(
    conn: &mut PgConnection,
    orders: &[(i64, &OrderMessage)],
) -> sqlx::Result<Vec<(Uuid, i64, i64)>> {
    let ids: Vec<i64> = orders.iter().map(|(id, _)| *id).collect();
    let users: Vec<i64> = orders.iter().map(|(_, m)| m.user_id).collect();
    let goods: Vec<i64> = orders.iter().map(|(_, m)| m.goods_id).collect();
    let tickets: Vec<Uuid> = orders.iter().map(|(_, m)| m.ticket).collect();
    let prices: Vec<i64> = orders.iter().map(|(_, m)| m.price_cents).collect();
    sqlx::query_as(
        "INSERT INTO orders (id, user_id, goods_id, ticket, price_cents)
         SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::int8[], $4::uuid[], $5::int8[])
         ON CONFLICT ON CONSTRAINT orders_one_per_user_and_goods DO NOTHING
         RETURNING ticket, id, goods_id",
    )
    .bind(&ids)
    .bind(&users)
    .bind(&goods)
    .bind(&tickets)
    .bind(&prices)
    .fetch_all(conn)
    .await
}

/// The last line of defence against overselling: takes `n` units off the database stock only if
/// there are `n` left. Returns whether it did.
pub(crate) async fn take_stock(conn: &mut PgConnection, goods_id: i64, n: i64) -> sqlx::Result<bool> {
    let updated = sqlx::query("UPDATE seckill_goods SET stock = stock - $2 WHERE goods_id = $1 AND stock >= $2")
        .bind(goods_id)
        .bind(n)
        .execute(conn)
        .await?;
    Ok(updated.rows_affected() == 1)
}

/// Orders and distinct buyers of a goods.
pub(crate) async fn counts(pool: &PgPool, goods_id: i64, tickets: &[Uuid]) -> sqlx::Result<(i64, i64, i64)> {
    // One statement, so one snapshot: the three counts agree with each other even while
    // workers commit orders.
    sqlx::query_as(
        "SELECT count(*), count(DISTINCT user_id), count(*) FILTER (WHERE ticket = ANY($2)) \
         FROM orders WHERE goods_id = $1",
    )
    .bind(goods_id)
    .bind(tickets)
    .fetch_one(pool)
    .await
}

/// The order id of `ticket`, if its order exists.
pub(crate) async fn by_ticket(pool: &PgPool, ticket: Uuid) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar("SELECT id FROM orders WHERE ticket = $1").bind(ticket).fetch_optional(pool).await
}

/// Order ids of the given tickets that exist.
pub(crate) async fn ids_by_ticket(conn: &mut PgConnection, tickets: &[Uuid]) -> sqlx::Result<Vec<(Uuid, i64)>> {
    sqlx::query_as("SELECT ticket, id FROM orders WHERE ticket = ANY($1)").bind(tickets).fetch_all(conn).await
}

#[derive(sqlx::FromRow)]
struct OrderRow {
    id: i64,
    user_id: i64,
    goods_id: i64,
    ticket: Uuid,
    price_cents: i64,
    status: String,
    created_at: DateTime<Utc>,
}

impl From<OrderRow> for OrderView {
    fn from(row: OrderRow) -> OrderView {
        OrderView {
            id: row.id,
            user_id: row.user_id,
            goods_id: row.goods_id,
            ticket: row.ticket,
            price_cents: row.price_cents,
            status: row.status,
            created_at: row.created_at,
        }
    }
}

/// An order by id.
pub(crate) async fn by_id(pool: &PgPool, id: i64) -> sqlx::Result<Option<OrderView>> {
    let row: Option<OrderRow> = sqlx::query_as(
        "SELECT id, user_id, goods_id, ticket, price_cents, status, created_at FROM orders WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(OrderView::from))
}

/// The order of a user for a goods, if any.
pub(crate) async fn by_user_and_goods(pool: &PgPool, user_id: i64, goods_id: i64) -> sqlx::Result<Option<OrderView>> {
    let row: Option<OrderRow> = sqlx::query_as(
        "SELECT id, user_id, goods_id, ticket, price_cents, status, created_at FROM orders
          WHERE user_id = $1 AND goods_id = $2",
    )
    .bind(user_id)
    .bind(goods_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(OrderView::from))
}

/// A message the order queue dead-lettered, as the dead-letter consumer finished it.
pub(crate) struct DeadLetter<'a> {
    /// The order message, if it could be decoded.
    pub(crate) message: Option<&'a OrderMessage>,
    /// The broker's reason (`rejected`, `delivery_limit`, ...).
    pub(crate) reason: &'a str,
    /// What became of it: `ordered`, `failed` or `undecodable`.
    pub(crate) outcome: &'a str,
    /// The message body as it came.
    pub(crate) payload: &'a [u8],
}

/// Keeps a dead letter in `order_dead_letters`; a ticket kept before is not kept twice.
pub(crate) async fn record_dead_letter(pool: &PgPool, letter: &DeadLetter<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO order_dead_letters (ticket, goods_id, user_id, reason, outcome, payload)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (ticket) DO NOTHING",
    )
    .bind(letter.message.map(|m| m.ticket))
    .bind(letter.message.map(|m| m.goods_id))
    .bind(letter.message.map(|m| m.user_id))
    .bind(letter.reason)
    .bind(letter.outcome)
    .bind(letter.payload)
    .execute(pool)
    .await?;
    Ok(())
}
