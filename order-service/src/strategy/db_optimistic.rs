//! `db_optimistic`: read stock and version, then `UPDATE ... WHERE version = <what was read>`;
//! zero rows updated means another purchase got there first, and the purchase starts again (a
//! few times, [`super::DATABASE_ATTEMPTS`]). **Correct, and it undersells under a crowd**: of
//! the purchases that read the same version only one wins, the others retry and lose again, and
//! after their attempts they give up while units are left. It suits rare conflicts, which a
//! flash sale is the opposite of.

use sqlx::PgConnection;

use super::Took;

pub(super) async fn take(conn: &mut PgConnection, goods_id: i64) -> sqlx::Result<Took> {
    let (stock, version): (i32, i64) = sqlx::query_as("SELECT stock, version FROM seckill_goods WHERE goods_id = $1")
        .bind(goods_id)
        .fetch_one(&mut *conn)
        .await?;
    if stock <= 0 {
        return Ok(Took::SoldOut);
    }
    let updated = sqlx::query(
        "UPDATE seckill_goods SET stock = stock - 1, version = version + 1 WHERE goods_id = $1 AND version = $2",
    )
    .bind(goods_id)
    .bind(version)
    .execute(conn)
    .await?;
    Ok(if updated.rows_affected() == 1 { Took::Unit } else { Took::Conflict })
}
