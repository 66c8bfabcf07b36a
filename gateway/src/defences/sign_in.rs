//! Limits on `register` and `login`, shared by every gateway through Redis: attempts per client
//! IP per minute, and failed logins per username within a window (a password-guessing run on one
//! account stops after `failures_per_username`, whatever IPs it comes from). Both answer 429 with
//! `Retry-After`.

use std::net::IpAddr;
use std::time::Duration;

use contracts::keyspace::Keyspace;
use platform::redis::Shared;
use redis::{self, AsyncCommands};

use crate::settings::SignInLimits;

const IP_WINDOW: Duration = Duration::from_secs(60);

/// Why a sign-in or registration attempt was refused before reaching user-service.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SignInError {
    /// Too many attempts from this IP, or too many failures for this username.
    #[error("too many sign-in attempts")]
    TooMany {
        /// Seconds until attempts are taken again.
        retry_after_secs: u64,
    },
    /// Redis failed.
    #[error("sign-in limiter: {0}")]
    Store(String),
}

/// The sign-in limits.
#[derive(Clone, Debug)]
pub(crate) struct SignInGuard {
    redis: Shared,
    keys: Keyspace,
    limits: SignInLimits,
}

impl SignInGuard {
    /// Limits kept in `redis`.
    pub(crate) fn new(redis: Shared, keys: Keyspace, limits: SignInLimits) -> SignInGuard {
        SignInGuard { redis, keys, limits }
    }

    /// Counts one attempt from `ip` and admits it, unless the IP is over its rate or `username`
    /// (for a login) has failed too often. One round trip.
    pub(crate) async fn admit(&self, ip: Option<IpAddr>, username: Option<&str>) -> Result<(), SignInError> {
        let mut conn = self.redis.clone();
        let mut pipe = redis::pipe();
        let ip_key = ip.map(|ip| self.keys.ip(&ip.to_string()).sign_in());
        if let Some(key) = &ip_key {
            pipe.incr(key, 1).cmd("PEXPIRE").arg(key).arg(IP_WINDOW.as_millis() as u64).arg("NX").ignore();
            pipe.pttl(key);
        }
        let failures_key = username.filter(|name| countable(name)).map(|name| self.keys.sign_in_failures(name));
        if let Some(key) = &failures_key {
            pipe.get(key).pttl(key);
        }
        let mut replies: Vec<redis::Value> = pipe.query_async(&mut conn).await.map_err(store)?;
        let mut next = || -> Result<Option<i64>, SignInError> {
            if replies.is_empty() {
                return Ok(None);
            }
            redis::from_redis_value(replies.remove(0)).map_err(store)
        };
        if ip_key.is_some() {
            let (attempts, ttl_ms) = (next()?.unwrap_or(0), next()?.unwrap_or(0));
            if attempts > i64::from(self.limits.per_ip_per_minute) {
                return Err(too_many(ttl_ms));
            }
        }
        if failures_key.is_some() {
            let (failures, ttl_ms) = (next()?.unwrap_or(0), next()?.unwrap_or(0));
            if failures >= i64::from(self.limits.failures_per_username) {
                return Err(too_many(ttl_ms));
            }
        }
        Ok(())
    }

    /// Counts a failed login of `username`.
    pub(crate) async fn failed(&self, username: &str) {
        if !countable(username) {
            return;
        }
        let key = self.keys.sign_in_failures(username);
        let counted = async {
            let mut conn = self.redis.clone();
            redis::pipe()
                .incr(&key, 1)
                .ignore()
                .cmd("PEXPIRE")
                .arg(&key)
                .arg(self.limits.failure_window.as_millis() as u64)
                .arg("NX")
                .ignore()
                .query_async::<()>(&mut conn)
                .await
                .map_err(store)
        };
        if let Err(err) = counted.await {
            tracing::warn!(%err, "could not count a failed login");
        }
    }

    /// A successful login forgets the username's failures.
    pub(crate) async fn succeeded(&self, username: &str) {
        if !countable(username) {
            return;
        }
        let mut conn = self.redis.clone();
        let _: Result<i64, _> = conn.del(self.keys.sign_in_failures(username)).await;
    }
}

/// Only names that could be usernames get a counter (3 to 64 of `A-Za-z0-9_.-`): anything else
/// is refused by user-service anyway, and must not shape a Redis key.
fn countable(name: &str) -> bool {
    (3..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn too_many(ttl_ms: i64) -> SignInError {
    SignInError::TooMany { retry_after_secs: (ttl_ms.max(1) as u64).div_ceil(1000) }
}

fn store(err: impl std::fmt::Display) -> SignInError {
    SignInError::Store(err.to_string())
}
