//! The rule store in Redis: the rule set in force, the log of changes, the change channel.

use contracts::keyspace::RuleKeys;
use deadpool_redis::Pool;
use deadpool_redis::redis::{self, Script};
use serde::{Deserialize, Serialize};

use super::{RuleSet, Rules};

/// Changes kept in the log.
const LOG_LENGTH: usize = 1_000;

/// Why the rules could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// The rules were changed since the caller read them (at version `current`): read again.
    #[error("the rules changed meanwhile (now version {current}); reload and try again")]
    Stale {
        /// The version in force.
        current: u64,
    },
    /// The change is not a usable rule set.
    #[error("{0}")]
    Invalid(String),
    /// Redis failed, or holds something that is not a rule set.
    #[error("rule store: {0}")]
    Store(String),
}

/// What a version holds besides its number (the stored body).
#[derive(Serialize, Deserialize)]
struct Body {
    rules: Rules,
    changed_by: String,
    changed_at_ms: i64,
}

impl Body {
    fn into_set(self, version: u64) -> RuleSet {
        RuleSet { version, rules: self.rules, changed_by: self.changed_by, changed_at_ms: self.changed_at_ms }
    }
}

/// Reads and changes the live rules.
#[derive(Clone, Debug)]
pub struct RuleStore {
    redis: Pool,
    keys: RuleKeys,
    change: Script,
}

impl RuleStore {
    /// The store under `keys` in `redis`.
    pub fn new(redis: Pool, keys: RuleKeys) -> RuleStore {
        RuleStore { redis, keys, change: Script::new(include_str!("change.lua")) }
    }

    /// Its keys (the channel is what [`super::LiveRules`] subscribes to).
    pub fn keys(&self) -> &RuleKeys {
        &self.keys
    }

    /// The rule set in force ([`RuleSet::initial`] before the first change).
    pub async fn current(&self) -> Result<RuleSet, RuleError> {
        let mut conn = self.redis.get().await.map_err(store)?;
        let (version, body): (Option<u64>, Option<String>) = redis::cmd("HMGET")
            .arg(&self.keys.current)
            .arg("version")
            .arg("body")
            .query_async(&mut *conn)
            .await
            .map_err(store)?;
        match (version, body) {
            (Some(version), Some(body)) => Ok(parse(&body)?.into_set(version)),
            _ => Ok(RuleSet::initial()),
        }
    }

    /// Replaces the rules by `rules`, made by `changed_by`, if the version in force is still
    /// `read_version` (the one the caller's change is based on); logs and announces it.
    pub async fn change(&self, read_version: u64, rules: Rules, changed_by: &str) -> Result<RuleSet, RuleError> {
        rules.validate().map_err(RuleError::Invalid)?;
        let body =
            Body { rules, changed_by: changed_by.to_owned(), changed_at_ms: chrono::Utc::now().timestamp_millis() };
        let json = serde_json::to_string(&body).map_err(store)?;
        let mut conn = self.redis.get().await.map_err(store)?;
        let (changed, version): (i64, u64) = self
            .change
            .key(&self.keys.current)
            .key(&self.keys.log)
            .arg(read_version)
            .arg(&json)
            .arg(&self.keys.channel)
            .arg(LOG_LENGTH)
            .invoke_async(&mut *conn)
            .await
            .map_err(store)?;
        if changed == 0 {
            return Err(RuleError::Stale { current: version });
        }
        tracing::info!(version, changed_by, rules = %json, "live rules changed");
        Ok(body.into_set(version))
    }

    /// The last `count` changes, newest first.
    pub async fn log(&self, count: usize) -> Result<Vec<RuleSet>, RuleError> {
        let mut conn = self.redis.get().await.map_err(store)?;
        let entries: Vec<String> = redis::cmd("LRANGE")
            .arg(&self.keys.log)
            .arg(0)
            .arg(count.saturating_sub(1))
            .query_async(&mut *conn)
            .await
            .map_err(store)?;
        entries
            .iter()
            .map(|entry| {
                let (version, body) =
                    entry.split_once(' ').ok_or_else(|| RuleError::Store("log entry without a version".into()))?;
                let version = version.parse().map_err(store)?;
                Ok(parse(body)?.into_set(version))
            })
            .collect()
    }
}

fn parse(body: &str) -> Result<Body, RuleError> {
    serde_json::from_str(body).map_err(|err| RuleError::Store(format!("stored rules unreadable: {err}")))
}

fn store(err: impl std::fmt::Display) -> RuleError {
    RuleError::Store(err.to_string())
}
