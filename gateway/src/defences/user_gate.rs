//! The per-user gate on the seckill endpoints (captcha, path, order): anti-brush (at most N calls
//! per window) and a token bucket, in one Redis script so every gateway instance shares them.

use contracts::keyspace::Keyspace;
use deadpool_redis::Pool;
use deadpool_redis::redis::Script;

use crate::settings::LimitSettings;

/// Why a seckill call was not admitted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GateError {
    /// Over the user's limits.
    #[error("slow down")]
    Limited {
        /// Seconds until the next call is admitted.
        retry_after_secs: u64,
    },
    /// Redis failed.
    #[error("rate limiter: {0}")]
    Store(String),
}

/// The gate.
#[derive(Clone, Debug)]
pub(crate) struct UserGate {
    redis: Pool,
    keys: Keyspace,
    script: Script,
    settings: LimitSettings,
}

impl UserGate {
    /// A gate over `redis`.
    pub(crate) fn new(redis: Pool, keys: Keyspace, settings: LimitSettings) -> UserGate {
        UserGate { redis, keys, script: Script::new(include_str!("user_gate.lua")), settings }
    }

    /// Admits one more seckill call of `user_id`, or says how long to wait.
    pub(crate) async fn admit(&self, user_id: i64) -> Result<(), GateError> {
        let store = |err: &dyn std::fmt::Display| GateError::Store(err.to_string());
        let mut conn = self.redis.get().await.map_err(|e| store(&e))?;
        let keys = self.keys.user(user_id);
        let (allowed, wait_ms): (i64, i64) = self
            .script
            .key(keys.bucket())
            .key(keys.brush())
            .arg(self.settings.per_user_per_sec.max(1))
            .arg(self.settings.per_user_burst.max(1))
            .arg(self.settings.brush_limit)
            .arg(self.settings.brush_window.as_millis() as u64)
            .invoke_async(&mut *conn)
            .await
            .map_err(|e| store(&e))?;
        if allowed == 1 {
            Ok(())
        } else {
            Err(GateError::Limited { retry_after_secs: (wait_ms.max(1) as u64).div_ceil(1000) })
        }
    }
}
