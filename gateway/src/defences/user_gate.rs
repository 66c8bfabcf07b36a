//! The per-user gate on the seckill endpoints (captcha, path, order): the blacklist, anti-brush
//! (at most N calls per window) and a token bucket, in one Redis script (`gate.lua`) so every
//! gateway instance shares them. A caller that trips the anti-brush limit
//! `strikes_to_ban` times within `strike_window` is blacklisted for `ban`. The same gate,
//! without the bucket, can also run per client IP (`ip_brush_limit`), in the same round trip.

use std::net::IpAddr;
use std::time::Duration;

use contracts::keyspace::Keyspace;
use deadpool_redis::Pool;
use deadpool_redis::redis::{self, Script};
use platform::rules::{LimitRules, LiveRules};

use super::blacklist::{Blacklist, Entry};
use crate::settings::LimitSettings;

/// Why a seckill call was not admitted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GateError {
    /// Over the caller's limits.
    #[error("slow down")]
    Limited {
        /// Seconds until the next call is admitted.
        retry_after_secs: u64,
    },
    /// The caller (user or IP) is on the blacklist.
    #[error("blacklisted")]
    Blocked {
        /// Seconds until the entry expires.
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
    rules: LiveRules,
    blacklist: Blacklist,
}

impl UserGate {
    /// A gate over `redis` with the configured limits `settings`, as the live `rules` override
    /// them, recording its bans in `blacklist`.
    pub(crate) fn new(
        redis: Pool,
        keys: Keyspace,
        settings: LimitSettings,
        rules: LiveRules,
        blacklist: Blacklist,
    ) -> UserGate {
        UserGate { redis, keys, script: Script::new(include_str!("gate.lua")), settings, rules, blacklist }
    }

    /// The limits in force: the configured ones, with what the live rules override.
    fn limits(&self) -> LimitSettings {
        let rules = self.rules.current();
        // The global and per-IP rates are the local limiter's (`LocalLimits::set`).
        let LimitRules { per_user_per_sec, per_user_burst, brush_limit, brush_window_ms, strikes_to_ban, .. } =
            rules.rules.limits;
        let configured = &self.settings;
        LimitSettings {
            per_user_per_sec: per_user_per_sec.unwrap_or(configured.per_user_per_sec),
            per_user_burst: per_user_burst.unwrap_or(configured.per_user_burst),
            brush_limit: brush_limit.unwrap_or(configured.brush_limit),
            brush_window: brush_window_ms.map(Duration::from_millis).unwrap_or(configured.brush_window),
            strikes_to_ban: strikes_to_ban.unwrap_or(configured.strikes_to_ban),
            ..configured.clone()
        }
    }

    /// Admits one more seckill call of `user_id` (from `ip`), or says why not.
    pub(crate) async fn admit(&self, user_id: i64, ip: Option<IpAddr>) -> Result<(), GateError> {
        let limits = self.limits();
        let conn = self.redis.get().await.map_err(store)?;
        let keys = self.keys.user(user_id);
        let mut user = self.invocation(&limits, &keys.brush(), &keys.strikes(), &keys.ban(), limits.brush_limit);
        user.key(keys.bucket()).arg(limits.per_user_per_sec.max(1)).arg(limits.per_user_burst.max(1));
        let (mut for_user, mut for_ip) = ((*conn).clone(), (*conn).clone());
        // Both scripts go out on the same multiplexed connection back to back: one round trip.
        let (user_verdict, ip_verdict) = match ip.filter(|_| limits.ip_brush_limit > 0) {
            None => (user.invoke_async::<(i64, i64)>(&mut for_user).await.map_err(store)?, None),
            Some(ip) => {
                let keys = self.keys.ip(&ip.to_string());
                let by_ip =
                    self.invocation(&limits, &keys.brush(), &keys.strikes(), &keys.ban(), limits.ip_brush_limit);
                let (user, by_ip) =
                    tokio::try_join!(user.invoke_async::<(i64, i64)>(&mut for_user), by_ip.invoke_async(&mut for_ip))
                        .map_err(store)?;
                (user, Some((ip, by_ip)))
            }
        };
        if let Some((ip, verdict)) = ip_verdict {
            self.judge(verdict, Entry::Ip(ip.to_string())).await?;
        }
        self.judge(user_verdict, Entry::User(user_id)).await
    }

    fn invocation<'a>(
        &'a self,
        limits: &LimitSettings,
        brush: &str,
        strikes: &str,
        ban: &str,
        brush_limit: u32,
    ) -> redis::ScriptInvocation<'a> {
        let mut invocation = self.script.key(brush);
        invocation
            .key(strikes)
            .key(ban)
            .arg(brush_limit)
            .arg(limits.brush_window.as_millis() as u64)
            .arg(limits.strikes_to_ban.max(1))
            .arg(limits.strike_window.as_millis() as u64)
            .arg(limits.ban.as_millis() as u64);
        invocation
    }

    async fn judge(&self, (code, ms): (i64, i64), who: Entry) -> Result<(), GateError> {
        let retry_after_secs = (ms.max(1) as u64).div_ceil(1000);
        match code {
            0 => Ok(()),
            1 => Err(GateError::Limited { retry_after_secs }),
            3 => {
                tracing::warn!(%who, ban_secs = retry_after_secs, "blacklisted after repeated anti-brush trips");
                metrics::counter!("gateway_blacklisted_total").increment(1);
                self.blacklist.record(&who, ms).await;
                Err(GateError::Blocked { retry_after_secs })
            }
            _ => Err(GateError::Blocked { retry_after_secs }),
        }
    }
}

fn store(err: impl std::fmt::Display) -> GateError {
    GateError::Store(err.to_string())
}
