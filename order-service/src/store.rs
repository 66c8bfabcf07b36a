//! The `orders` table, and the stock guard on `seckill_goods`. Every query binds its parameters.

use chrono::{DateTime, Utc};
use contracts::keyspace::SaleLock;
use contracts::order::{CancelReason, ExpiryMessage, OrderMessage, OrderStatus, OrderView};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// Takes the sale's advisory lock in shared mode for the rest of the transaction: many workers
/// write orders at once, but never while a sale state is being rebuilt from this table.
pub(crate) async fn lock_sale_shared(conn: &mut PgConnection, lock: SaleLock) -> sqlx::Result<()> {
    sqlx::query(SaleLock::SHARED).bind(lock.id()).execute(conn).await?;
    Ok(())
}

/// An order as written: what its payment timer needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct WrittenOrder {
    /// The ticket it came from.
    pub ticket: Uuid,
    /// Its id.
    pub id: i64,
    /// Its goods.
    pub goods_id: i64,
    /// When its payment window closes.
    pub expires_at: DateTime<Utc>,
    /// Its goods' payment window, in seconds.
    pub window_secs: i32,
}

impl WrittenOrder {
    /// The payment timers of `orders`, with their windows in seconds: one per goods, window and
    /// end of window (in a batch: one per goods), each cancelling its orders still unpaid then.
    pub fn timers(orders: &[WrittenOrder]) -> Vec<(ExpiryMessage, u32)> {
        let mut timers: std::collections::BTreeMap<(i64, i32, DateTime<Utc>), Vec<i64>> = Default::default();
        for order in orders {
            timers.entry((order.goods_id, order.window_secs, order.expires_at)).or_default().push(order.id);
        }
        timers
            .into_iter()
            .map(|((goods_id, window_secs, expires_at), order_ids)| {
                (ExpiryMessage { order_ids, goods_id, expires_at }, u32::try_from(window_secs).unwrap_or(1).max(1))
            })
            .collect()
    }
}

/// Inserts unpaid orders in one statement, each held for its goods' payment window; rows whose
/// (user, goods) already has a live order are skipped (a redelivered message, or the user's
/// other ticket). Only that index is the conflict target: an id (or a ticket) that collides with
/// another order's is an error, never taken for "already ordered". Returns the rows actually
/// inserted.
pub async fn insert_orders(
    conn: &mut PgConnection,
    orders: &[(i64, &OrderMessage)],
) -> sqlx::Result<Vec<WrittenOrder>> {
    let ids: Vec<i64> = orders.iter().map(|(id, _)| *id).collect();
    let users: Vec<i64> = orders.iter().map(|(_, m)| m.user_id).collect();
    let goods: Vec<i64> = orders.iter().map(|(_, m)| m.goods_id).collect();
    let tickets: Vec<Uuid> = orders.iter().map(|(_, m)| m.ticket).collect();
    let prices: Vec<i64> = orders.iter().map(|(_, m)| m.price_cents).collect();
    sqlx::query_as(
        "INSERT INTO orders (id, user_id, goods_id, ticket, price_cents, expires_at)
         SELECT o.id, o.user_id, o.goods_id, o.ticket, o.price_cents, now() + make_interval(secs => s.payment_window_secs)
           FROM UNNEST($1::int8[], $2::int8[], $3::int8[], $4::uuid[], $5::int8[])
                AS o (id, user_id, goods_id, ticket, price_cents)
           LEFT JOIN seckill_goods s ON s.goods_id = o.goods_id
         ON CONFLICT (user_id, goods_id) WHERE status <> 'cancelled' DO NOTHING
         RETURNING ticket, id, goods_id, expires_at, EXTRACT(EPOCH FROM expires_at - created_at)::int4 AS window_secs",
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

/// The order counts of one goods, as the audit reads them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, sqlx::FromRow)]
pub(crate) struct Counts {
    /// Live orders (unpaid + paid).
    pub(crate) live: i64,
    /// Distinct buyers of live orders.
    pub(crate) buyers: i64,
    /// Orders (of any status) of the given tickets.
    pub(crate) of_tickets: i64,
    pub(crate) unpaid: i64,
    pub(crate) paid: i64,
    pub(crate) cancelled: i64,
    /// Cancelled orders whose unit is not back in Redis yet.
    pub(crate) returns_pending: i64,
    /// Payments to give back (`refunding`).
    pub(crate) refunds_pending: i64,
    /// Cancelled orders with a payment that succeeded and was kept.
    pub(crate) paid_and_cancelled: i64,
}

/// The order counts of a goods.
pub(crate) async fn counts(pool: &PgPool, goods_id: i64, tickets: &[Uuid]) -> sqlx::Result<Counts> {
    // One statement, so one snapshot: the counts agree with each other even while workers
    // commit orders.
    sqlx::query_as(
        "SELECT count(*) FILTER (WHERE o.status <> 'cancelled') AS live,
                count(DISTINCT o.user_id) FILTER (WHERE o.status <> 'cancelled') AS buyers,
                count(*) FILTER (WHERE o.ticket = ANY($2)) AS of_tickets,
                count(*) FILTER (WHERE o.status = 'unpaid') AS unpaid,
                count(*) FILTER (WHERE o.status = 'paid') AS paid,
                count(*) FILTER (WHERE o.status = 'cancelled') AS cancelled,
                count(*) FILTER (WHERE o.status = 'cancelled' AND o.unit_returned_at IS NULL) AS returns_pending,
                (SELECT count(*) FROM payments p JOIN orders x ON x.id = p.order_id
                  WHERE x.goods_id = $1 AND p.status = 'refunding') AS refunds_pending,
                (SELECT count(*) FROM payments p JOIN orders x ON x.id = p.order_id
                  WHERE x.goods_id = $1 AND x.status = 'cancelled' AND p.status = 'succeeded') AS paid_and_cancelled
           FROM orders o WHERE o.goods_id = $1",
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

/// The orders of the given tickets that exist, as written.
pub(crate) async fn written_by_ticket(conn: &mut PgConnection, tickets: &[Uuid]) -> sqlx::Result<Vec<WrittenOrder>> {
    sqlx::query_as(
        "SELECT ticket, id, goods_id, expires_at, EXTRACT(EPOCH FROM expires_at - created_at)::int4 AS window_secs
           FROM orders WHERE ticket = ANY($1)",
    )
    .bind(tickets)
    .fetch_all(conn)
    .await
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
    expires_at: DateTime<Utc>,
    paid_at: Option<DateTime<Utc>>,
    cancelled_at: Option<DateTime<Utc>>,
    cancel_reason: Option<String>,
}

impl From<OrderRow> for OrderView {
    fn from(row: OrderRow) -> OrderView {
        OrderView {
            id: row.id,
            user_id: row.user_id,
            goods_id: row.goods_id,
            ticket: row.ticket,
            price_cents: row.price_cents,
            // The column's CHECK admits only these.
            status: OrderStatus::from_name(&row.status).unwrap_or(OrderStatus::Unpaid),
            created_at: row.created_at,
            expires_at: row.expires_at,
            paid_at: row.paid_at,
            cancelled_at: row.cancelled_at,
            cancel_reason: match row.cancel_reason.as_deref() {
                Some("timeout") => Some(CancelReason::Timeout),
                Some(_) => Some(CancelReason::Buyer),
                None => None,
            },
        }
    }
}

/// The columns of an [`OrderRow`], for queries completed with a `WHERE` literal.
macro_rules! select_order {
    ($rest:literal) => {
        concat!(
            "SELECT id, user_id, goods_id, ticket, price_cents, status, created_at, expires_at, paid_at, cancelled_at,
                    cancel_reason FROM orders ",
            $rest
        )
    };
}

/// An order by id.
pub(crate) async fn by_id(conn: impl sqlx::PgExecutor<'_>, id: i64) -> sqlx::Result<Option<OrderView>> {
    let row: Option<OrderRow> = sqlx::query_as(select_order!("WHERE id = $1")).bind(id).fetch_optional(conn).await?;
    Ok(row.map(OrderView::from))
}

/// The live order of a user for a goods, if any; else the latest cancelled one.
pub(crate) async fn by_user_and_goods(pool: &PgPool, user_id: i64, goods_id: i64) -> sqlx::Result<Option<OrderView>> {
    let row: Option<OrderRow> = sqlx::query_as(select_order!(
        "WHERE user_id = $1 AND goods_id = $2 ORDER BY (status <> 'cancelled') DESC, id DESC LIMIT 1"
    ))
    .bind(user_id)
    .bind(goods_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(OrderView::from))
}

/// A page of a user's orders, newest first: ids below `before`, at most `limit`.
pub(crate) async fn page_of_user(
    pool: &PgPool,
    user_id: i64,
    before: Option<i64>,
    limit: u32,
) -> sqlx::Result<Vec<OrderView>> {
    let rows: Vec<OrderRow> = sqlx::query_as(select_order!("WHERE user_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"))
        .bind(user_id)
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(OrderView::from).collect())
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
