//! `db_check_then_update`: read the stock, and if there is some, write back what was read minus
//! one. **It oversells.** Under PostgreSQL's default isolation (read committed) two purchases
//! that read the same stock both write the same "stock − 1": the second write overwrites the
//! first (a lost update), two orders are inserted and one unit is taken. Nothing in the schema
//! can notice: the stock never goes negative, it just stops counting. The fix is to let the
//! database decide in the write itself ([`super::db_guarded_update`]).

use sqlx::PgConnection;

use super::Took;

pub(super) async fn take(conn: &mut PgConnection, goods_id: i64) -> sqlx::Result<Took> {
    let stock: i32 = sqlx::query_scalar("SELECT stock FROM seckill_goods WHERE goods_id = $1")
        .bind(goods_id)
        .fetch_one(&mut *conn)
        .await?;
    if stock <= 0 {
        return Ok(Took::SoldOut);
    }
    // The bug: the new value is computed here, from a read that others made too.
    sqlx::query("UPDATE seckill_goods SET stock = $2 WHERE goods_id = $1")
        .bind(goods_id)
        .bind(stock - 1)
        .execute(conn)
        .await?;
    Ok(Took::Unit)
}
