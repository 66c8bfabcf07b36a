//! Hidden seckill paths: a random UUID v4 per (user, goods), kept in Redis for a minute, good for
//! exactly one order attempt (`GETDEL`). The order URL contains it, so a script cannot order
//! without first passing the captcha, and a path cannot be replayed or shared.

use std::time::Duration;

use deadpool_redis::Pool;
use deadpool_redis::redis::{self, AsyncCommands};
use uuid::Uuid;

use crate::keys::Keys;

/// Issues and redeems paths.
#[derive(Clone, Debug)]
pub struct PathTokens {
    redis: Pool,
    keys: Keys,
    ttl: Duration,
}

impl PathTokens {
    /// Paths stored in `redis`, valid for `ttl`.
    pub fn new(redis: Pool, keys: Keys, ttl: Duration) -> PathTokens {
        PathTokens { redis, keys, ttl }
    }

    /// A new path for `user_id` and `goods_id` (the previous one, if any, stops working).
    pub async fn issue(&self, user_id: i64, goods_id: i64) -> Result<Uuid, String> {
        let path = Uuid::new_v4();
        let mut conn = self.redis.get().await.map_err(|e| e.to_string())?;
        let _: () = conn
            .set_ex(self.keys.path(user_id, goods_id), path.to_string(), self.ttl.as_secs())
            .await
            .map_err(|e| e.to_string())?;
        Ok(path)
    }

    /// Whether `path` is this user's live path for this goods; it is used up either way.
    pub async fn redeem(&self, user_id: i64, goods_id: i64, path: &str) -> Result<bool, String> {
        let mut conn = self.redis.get().await.map_err(|e| e.to_string())?;
        let issued: Option<String> = redis::cmd("GETDEL")
            .arg(self.keys.path(user_id, goods_id))
            .query_async(&mut *conn)
            .await
            .map_err(|e| e.to_string())?;
        Ok(issued.is_some_and(|issued| issued == path))
    }
}
