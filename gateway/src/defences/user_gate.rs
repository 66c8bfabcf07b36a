//! The per-user gate on the seckill endpoints (captcha, path, order): the blacklist, anti-brush
//! (at most N calls per window) and a token bucket, in one Redis script (`gate.lua`) so every
//! gateway instance shares them. A caller that trips the anti-brush limit
//! `strikes_to_ban` times within `strike_window` is blacklisted for `ban`. The same gate,
//! without the bucket, can also run per client IP (`ip_brush_limit`), in the same round trip.
//!
//! What the route does once the caller is admitted runs in the gate's own script, in the same
//! round trip ([`Then`]): checking the captcha answer and storing a new path
//! (`issue_path.lua`), or using up the path an order carries (`redeem_path.lua`). A purchase
//! (path, then order) costs the gateway two Redis round trips.

use std::net::IpAddr;
use std::time::Duration;

use contracts::keyspace::Keyspace;
use platform::redis::Shared;
use platform::rules::{LimitRules, LiveRules};
use redis::Script;
use uuid::Uuid;

use super::blacklist::{Blacklist, Entry};
use super::{CaptchaError, PathError};
use crate::settings::{CaptchaSettings, LimitSettings};

/// What runs in the gate's round trip once the caller is admitted.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Then<'a> {
    /// Nothing more (the captcha image route).
    Nothing,
    /// Check the captcha `answer` (`None`: nothing to check in Redis), then store `path` as the
    /// user's hidden path for the goods (replacing any earlier one).
    IssuePath {
        /// The goods.
        goods_id: i64,
        /// The new path.
        path: Uuid,
        /// The answer to check against the stored one, if any.
        answer: Option<&'a str>,
    },
    /// Use up the user's path for the goods: accepted only if it is `path`.
    RedeemPath {
        /// The goods.
        goods_id: i64,
        /// The path the order URL carries.
        path: &'a str,
    },
}

/// Why a call was refused at the gate or at its step.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refused {
    /// The gate itself (limits, blacklist, Redis).
    #[error(transparent)]
    Gate(#[from] GateError),
    /// The captcha answer.
    #[error(transparent)]
    Captcha(#[from] CaptchaError),
    /// The path.
    #[error(transparent)]
    Path(#[from] PathError),
}

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

/// The scripts: `gate.lua` defines the gate, the step after it is the script's main part.
#[derive(Clone, Debug)]
struct Scripts {
    admit: Script,
    issue_path: Script,
    redeem_path: Script,
}

/// The gate.
#[derive(Clone, Debug)]
pub(crate) struct UserGate {
    redis: Shared,
    keys: Keyspace,
    scripts: Scripts,
    settings: LimitSettings,
    captcha: CaptchaSettings,
    path_ttl: Duration,
    rules: LiveRules,
    blacklist: Blacklist,
}

/// Everything [`UserGate::new`] takes besides Redis.
pub(crate) struct GateParts {
    /// The key names.
    pub(crate) keys: Keyspace,
    /// The configured limits.
    pub(crate) limits: LimitSettings,
    /// Captcha answers' TTL and wrong answers allowed.
    pub(crate) captcha: CaptchaSettings,
    /// How long an issued path stays valid.
    pub(crate) path_ttl: Duration,
    /// The live rules overriding `limits`.
    pub(crate) rules: LiveRules,
    /// Where bans are listed.
    pub(crate) blacklist: Blacklist,
}

impl UserGate {
    /// A gate over `redis` with the configured limits, as the live rules override them,
    /// recording its bans in the blacklist.
    pub(crate) fn new(redis: Shared, parts: GateParts) -> UserGate {
        let GateParts { keys, limits, captcha, path_ttl, rules, blacklist } = parts;
        let gated = |step: &str| Script::new(&format!("{}\n{step}", include_str!("gate.lua")));
        let scripts = Scripts {
            admit: gated(include_str!("admit.lua")),
            issue_path: gated(include_str!("issue_path.lua")),
            redeem_path: gated(include_str!("redeem_path.lua")),
        };
        UserGate { redis, keys, scripts, settings: limits, captcha, path_ttl, rules, blacklist }
    }

    /// How long an issued path stays valid.
    pub(crate) fn path_ttl(&self) -> Duration {
        self.path_ttl
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

    /// Admits one more seckill call of `user_id` (from `ip`) and runs `then` for it, in one round
    /// trip, or says why not. With the per-IP gate on, its script goes out in the same pipeline;
    /// its refusal does not undo the user's step (a path issued or used up meanwhile).
    pub(crate) async fn admit(&self, user_id: i64, ip: Option<IpAddr>, then: Then<'_>) -> Result<(), Refused> {
        let limits = self.limits();
        let keys = self.keys.user(user_id);
        let script = match then {
            Then::Nothing => &self.scripts.admit,
            Then::IssuePath { .. } => &self.scripts.issue_path,
            Then::RedeemPath { .. } => &self.scripts.redeem_path,
        };
        let mut user =
            self.invocation(script, &limits, &keys.brush(), &keys.strikes(), &keys.ban(), limits.brush_limit);
        user.key(keys.bucket()).arg(limits.per_user_per_sec.max(1)).arg(limits.per_user_burst.max(1));
        match then {
            Then::Nothing => {}
            Then::IssuePath { goods_id, path, answer } => {
                user.key(keys.path(goods_id))
                    .key(keys.captcha(goods_id))
                    .key(keys.captcha_failures(goods_id))
                    .arg(path.to_string())
                    .arg(self.path_ttl.as_secs().max(1))
                    .arg(answer.map(|answer| answer.trim().to_ascii_lowercase()).unwrap_or_default())
                    .arg(self.captcha.ttl.as_secs().max(1))
                    .arg(self.captcha.max_failures);
            }
            Then::RedeemPath { goods_id, path } => {
                user.key(keys.path(goods_id)).arg(path);
            }
        }
        let mut conn = self.redis.clone();
        let (user_verdict, ip_verdict) = match ip.filter(|_| limits.ip_brush_limit > 0) {
            None => (user.invoke_async::<(i64, i64)>(&mut conn).await.map_err(store)?, None),
            Some(ip) => {
                let keys = self.keys.ip(&ip.to_string());
                let by_ip = self.invocation(
                    &self.scripts.admit,
                    &limits,
                    &keys.brush(),
                    &keys.strikes(),
                    &keys.ban(),
                    limits.ip_brush_limit,
                );
                let (user, by_ip) =
                    platform::redis::invoke_pipelined(&mut conn, &[&user, &by_ip]).await.map_err(store)?;
                (user, Some((ip, by_ip)))
            }
        };
        if let Some((ip, verdict)) = ip_verdict {
            self.judge(verdict, Entry::Ip(ip.to_string())).await?;
        }
        match user_verdict {
            (10, _) => Err(CaptchaError::Wrong.into()),
            (11, ms) => {
                Err(CaptchaError::TooManyFailures { retry_after_secs: (ms.max(1) as u64).div_ceil(1000) }.into())
            }
            (20, _) => Err(PathError::Invalid.into()),
            verdict => Ok(self.judge(verdict, Entry::User(user_id)).await?),
        }
    }

    fn invocation<'a>(
        &'a self,
        script: &'a Script,
        limits: &LimitSettings,
        brush: &str,
        strikes: &str,
        ban: &str,
        brush_limit: u32,
    ) -> redis::ScriptInvocation<'a> {
        let mut invocation = script.key(brush);
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
