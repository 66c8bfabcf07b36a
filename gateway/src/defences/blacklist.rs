//! The blacklist as admins see it: who is refused the seckill routes, until when; and lifting an
//! entry. The bans themselves are keys the gate script sets and checks (`gate.lua`); this index
//! (a sorted set by expiry) only lists them.

use std::fmt;

use contracts::keyspace::Keyspace;
use platform::redis::Shared;
use redis::{self, AsyncCommands};

/// One blacklisted caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    /// A user id.
    User(i64),
    /// A client IP.
    Ip(String),
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Entry::User(id) => write!(f, "user:{id}"),
            Entry::Ip(ip) => write!(f, "ip:{ip}"),
        }
    }
}

impl Entry {
    /// Parses `user:<id>` or `ip:<addr>` (the index's members, the admin API's paths).
    pub(crate) fn parse(kind: &str, id: &str) -> Option<Entry> {
        match kind {
            "user" => id.parse().ok().map(Entry::User),
            "ip" => id.parse::<std::net::IpAddr>().ok().map(|ip| Entry::Ip(ip.to_string())),
            _ => None,
        }
    }
}

/// The index and the lifting of bans.
#[derive(Clone, Debug)]
pub(crate) struct Blacklist {
    redis: Shared,
    keys: Keyspace,
}

impl Blacklist {
    /// The blacklist in `redis`.
    pub(crate) fn new(redis: Shared, keys: Keyspace) -> Blacklist {
        Blacklist { redis, keys }
    }

    fn ban_key(&self, entry: &Entry) -> (String, String) {
        match entry {
            Entry::User(id) => {
                let user = self.keys.user(*id);
                (user.ban(), user.strikes())
            }
            Entry::Ip(ip) => {
                let ip = self.keys.ip(ip);
                (ip.ban(), ip.strikes())
            }
        }
    }

    /// Lists `entry` as banned for `ms` more milliseconds (best effort: the ban holds anyway).
    pub(crate) async fn record(&self, entry: &Entry, ms: i64) {
        let recorded = async {
            let mut conn = self.redis.clone();
            let now: (i64, i64) = redis::cmd("TIME").query_async(&mut conn).await.map_err(|e| e.to_string())?;
            let until = now.0 * 1000 + now.1 / 1000 + ms;
            conn.zadd::<_, _, _, ()>(self.keys.blacklist(), entry.to_string(), until).await.map_err(|e| e.to_string())
        };
        if let Err(err) = recorded.await {
            tracing::warn!(%entry, %err, "could not list a blacklist entry");
        }
    }

    /// Every current entry with its expiry (ms since the epoch), soonest first.
    pub(crate) async fn list(&self) -> redis::RedisResult<Vec<(Entry, i64)>> {
        let mut conn = self.redis.clone();
        let now: (i64, i64) = redis::cmd("TIME").query_async(&mut conn).await?;
        let now_ms = now.0 * 1000 + now.1 / 1000;
        let index = self.keys.blacklist();
        let _: i64 = conn.zrembyscore(&index, "-inf", now_ms).await?;
        let members: Vec<(String, i64)> = conn.zrangebyscore_withscores(&index, now_ms, "+inf").await?;
        Ok(members
            .into_iter()
            .filter_map(|(member, until)| {
                let (kind, id) = member.split_once(':')?;
                Some((Entry::parse(kind, id)?, until))
            })
            .collect())
    }

    /// Lifts `entry`'s ban (and forgets its strikes). Whether there was one.
    pub(crate) async fn lift(&self, entry: &Entry) -> redis::RedisResult<bool> {
        let mut conn = self.redis.clone();
        let (ban, strikes) = self.ban_key(entry);
        let removed: i64 = conn.del(&[ban, strikes]).await?;
        let listed: i64 = conn.zrem(self.keys.blacklist(), entry.to_string()).await?;
        Ok(removed > 0 || listed > 0)
    }
}
