//! `db_for_update`: `SELECT ... FOR UPDATE`, check, then update. **Correct** (pessimistic
//! locking): the select locks the row, so no other purchase reads the stock until this one
//! commits or rolls back. It holds the lock from the read to the commit, a round trip longer
//! than [`super::db_guarded_update`], for the same result: the row lock is the bottleneck.

use sqlx::PgConnection;

use super::Took;

pub(super) async fn take(conn: &mut PgConnection, goods_id: i64) -> sqlx::Result<Took> {
    let stock: i32 = sqlx::query_scalar("SELECT stock FROM seckill_goods WHERE goods_id = $1 FOR UPDATE")
        .bind(goods_id)
        .fetch_one(&mut *conn)
        .await?;
    if stock <= 0 {
        return Ok(Took::SoldOut);
    }
    sqlx::query("UPDATE seckill_goods SET stock = stock - 1 WHERE goods_id = $1").bind(goods_id).execute(conn).await?;
    Ok(Took::Unit)
}
