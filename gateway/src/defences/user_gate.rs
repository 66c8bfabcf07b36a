//! The per-user gate on the seckill endpoints (captcha, path, order): anti-brush (at most N calls
//! per window) and a token bucket, in one Redis script so every gateway instance shares them.

use deadpool_redis::Pool;
use deadpool_redis::redis::Script;

use crate::keys::Keys;
use crate::settings::LimitSettings;

/// The gate.
#[derive(Clone, Debug)]
pub struct UserGate {
    redis: Pool,
    keys: Keys,
    script: Script,
    settings: LimitSettings,
}

impl UserGate {
    /// A gate over `redis`.
    pub fn new(redis: Pool, keys: Keys, settings: LimitSettings) -> UserGate {
        UserGate { redis, keys, script: Script::new(include_str!("user_gate.lua")), settings }
    }

    /// `Ok(Ok(()))` if `user_id` may make one more seckill call, `Ok(Err(secs))` if it must wait.
    pub async fn admit(&self, user_id: i64) -> Result<Result<(), u64>, String> {
        let mut conn = self.redis.get().await.map_err(|e| e.to_string())?;
        let (allowed, wait_ms): (i64, i64) = self
            .script
            .key(self.keys.bucket(user_id))
            .key(self.keys.brush(user_id))
            .arg(self.settings.per_user_per_sec.max(1))
            .arg(self.settings.per_user_burst.max(1))
            .arg(self.settings.brush_limit)
            .arg(self.settings.brush_window.as_millis() as u64)
            .invoke_async(&mut *conn)
            .await
            .map_err(|e| e.to_string())?;
        Ok(if allowed == 1 { Ok(()) } else { Err((wait_ms.max(1) as u64).div_ceil(1000)) })
    }
}
