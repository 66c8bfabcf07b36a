//! Hidden seckill paths: a random UUID v4 per (user, goods), kept in Redis for a minute, good for
//! exactly one order attempt (`GETDEL`). The order URL contains it, so a script cannot order
//! without first passing the captcha, and a path cannot be replayed or shared.

use std::time::Duration;

use contracts::keyspace::Keyspace;
use deadpool_redis::Pool;
use deadpool_redis::redis::{self, AsyncCommands};
use uuid::Uuid;

/// Why a path was not issued or not accepted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PathError {
    /// Not this user's live path for this goods: unknown, used, expired, or someone else's.
    #[error("the seckill path is invalid, used or expired")]
    Invalid,
    /// Redis failed.
    #[error("path store: {0}")]
    Store(String),
}

fn store(err: impl std::fmt::Display) -> PathError {
    PathError::Store(err.to_string())
}

/// Issues and redeems paths.
#[derive(Clone, Debug)]
pub(crate) struct PathTokens {
    redis: Pool,
    keys: Keyspace,
    ttl: Duration,
}

impl PathTokens {
    /// Paths stored in `redis`, valid for `ttl`.
    pub(crate) fn new(redis: Pool, keys: Keyspace, ttl: Duration) -> PathTokens {
        PathTokens { redis, keys, ttl }
    }

    /// How long an issued path stays valid.
    pub(crate) fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A new path for `user_id` and `goods_id` (the previous one, if any, stops working).
    pub(crate) async fn issue(&self, user_id: i64, goods_id: i64) -> Result<Uuid, PathError> {
        let path = Uuid::new_v4();
        let mut conn = self.redis.get().await.map_err(store)?;
        let _: () = conn
            .set_ex(self.keys.user(user_id).path(goods_id), path.to_string(), self.ttl.as_secs())
            .await
            .map_err(store)?;
        Ok(path)
    }

    /// Accepts `path` if it is this user's live path for this goods; it is used up either way.
    pub(crate) async fn redeem(&self, user_id: i64, goods_id: i64, path: &str) -> Result<(), PathError> {
        let mut conn = self.redis.get().await.map_err(store)?;
        let issued: Option<String> = redis::cmd("GETDEL")
            .arg(self.keys.user(user_id).path(goods_id))
            .query_async(&mut *conn)
            .await
            .map_err(store)?;
        if issued.is_some_and(|issued| issued == path) { Ok(()) } else { Err(PathError::Invalid) }
    }
}
