//! `db_guarded_update`: `UPDATE ... SET stock = stock - 1 WHERE stock > 0`. **Correct**: the
//! check and the write are one statement, and the row lock it takes makes concurrent purchases
//! of the goods wait for each other, each re-reading the committed stock. That row lock is also
//! its limit: every buyer of a hot goods queues on one row for the length of a transaction (the
//! order insert and the commit included), so throughput is bound by PostgreSQL's commit rate on
//! one row, and the crowd's connections pile up in the database.

use sqlx::PgConnection;

use super::Took;

pub(super) async fn take(conn: &mut PgConnection, goods_id: i64) -> sqlx::Result<Took> {
    let updated = sqlx::query("UPDATE seckill_goods SET stock = stock - 1 WHERE goods_id = $1 AND stock > 0")
        .bind(goods_id)
        .execute(conn)
        .await?;
    Ok(if updated.rows_affected() == 1 { Took::Unit } else { Took::SoldOut })
}
