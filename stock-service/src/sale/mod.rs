//! The sale state in Redis, changed only through four Lua scripts (see the `.lua` files here):
//! `reserve`, `release`, `claim` and `build`. Each script is one atomic step; that is the whole
//! concurrency story of the hot path: no locks, no transactions, no races between check and act.
//!
//! Scripts are sent once and then called by SHA (`EVALSHA`), falling back to loading them when
//! Redis answers `NOSCRIPT` (after a restart or a `SCRIPT FLUSH`): redis-rs' `Script` does both.

use chrono::{DateTime, TimeZone, Utc};
use contracts::keyspace::Keyspace;
use contracts::stock::{ClaimOutcome, ReleaseOutcome, ReleaseScope, Reservation, ReserveOutcome};
use deadpool_redis::Pool;
use deadpool_redis::redis::{self, Script};
use uuid::Uuid;

/// The source of `reserve.lua` (benchmarks run it through redis-benchmark).
pub const RESERVE_SCRIPT: &str = include_str!("reserve.lua");

/// A failure talking to Redis.
#[derive(Debug, thiserror::Error)]
#[error("redis: {0}")]
pub(crate) struct RedisFailure(String);

impl RedisFailure {
    fn from(err: impl std::fmt::Display) -> Self {
        RedisFailure(err.to_string())
    }
}

/// What PostgreSQL says a sale should look like, for [`SaleStore::build`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SaleSnapshot {
    /// Window start.
    pub(crate) start_at: DateTime<Utc>,
    /// Window end.
    pub(crate) end_at: DateTime<Utc>,
    /// Price, in cents.
    pub(crate) price_cents: i64,
    /// Units put on sale.
    pub(crate) initial_stock: i64,
    /// (user id, ticket, ordered at) of every order written.
    pub(crate) orders: Vec<(i64, Uuid, DateTime<Utc>)>,
}

/// When `build.lua` writes a sale state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BuildMode {
    /// Only if Redis has none (warm-up, or Redis lost it).
    Missing,
    /// Always, merging PostgreSQL's orders into the buyers Redis has (after Redis restored an
    /// older state from its append-only file).
    Resync,
}

/// Redis-side view of a sale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SaleLevel {
    /// Units left, or `None` when there is no sale state.
    pub(crate) stock: Option<i64>,
    /// Reservations and purchases held.
    pub(crate) holds: i64,
}

/// The sale states of every goods, under one key prefix.
#[derive(Clone, Debug)]
pub(crate) struct SaleStore {
    redis: Pool,
    keys: Keyspace,
    reserve: Script,
    release: Script,
    claim: Script,
    build: Script,
}

impl SaleStore {
    /// A store over `redis`, with keys named by `keys`.
    pub(crate) fn new(redis: Pool, keys: Keyspace) -> SaleStore {
        SaleStore {
            redis,
            keys,
            reserve: Script::new(RESERVE_SCRIPT),
            release: Script::new(include_str!("release.lua")),
            claim: Script::new(include_str!("claim.lua")),
            build: Script::new(include_str!("build.lua")),
        }
    }

    async fn conn(&self) -> Result<deadpool_redis::Connection, RedisFailure> {
        self.redis.get().await.map_err(RedisFailure::from)
    }

    /// Runs `reserve.lua`. `Ok(None)` means there is no sale state for this goods.
    pub(crate) async fn reserve(
        &self,
        goods_id: i64,
        user_id: i64,
        ticket: Uuid,
    ) -> Result<Option<ReserveOutcome>, RedisFailure> {
        let keys = self.keys.sale(goods_id);
        let mut conn = self.conn().await?;
        let (code, a, b): (i64, i64, i64) = self
            .reserve
            .key(&keys.meta)
            .key(&keys.stock)
            .key(&keys.buyers)
            .arg(user_id)
            .arg(ticket.to_string())
            .invoke_async(&mut *conn)
            .await
            .map_err(RedisFailure::from)?;
        Ok(Some(match code {
            0 => ReserveOutcome::Reserved { stock_left: a, price_cents: b },
            1 => ReserveOutcome::Duplicate,
            2 => ReserveOutcome::SoldOut,
            3 => ReserveOutcome::NotStarted { starts_at: from_ms(a) },
            4 => ReserveOutcome::Ended,
            _ => return Ok(None),
        }))
    }

    /// Runs `release.lua`.
    pub(crate) async fn release(
        &self,
        goods_id: i64,
        user_id: i64,
        ticket: Uuid,
        scope: ReleaseScope,
    ) -> Result<ReleaseOutcome, RedisFailure> {
        let keys = self.keys.sale(goods_id);
        let scope = match scope {
            ReleaseScope::Unclaimed => "unclaimed",
            ReleaseScope::AnyHold => "any",
            ReleaseScope::Discard => "discard",
        };
        let mut conn = self.conn().await?;
        let released: i64 = self
            .release
            .key(&keys.stock)
            .key(&keys.buyers)
            .arg(user_id)
            .arg(ticket.to_string())
            .arg(scope)
            .arg(self.keys.restock_channel())
            .arg(goods_id)
            .invoke_async(&mut *conn)
            .await
            .map_err(RedisFailure::from)?;
        Ok(match released {
            1 => ReleaseOutcome::Released,
            2 => ReleaseOutcome::Claimed,
            _ => ReleaseOutcome::NotHeld,
        })
    }

    /// Runs `claim.lua` for a batch of (user, ticket).
    pub(crate) async fn claim(&self, goods_id: i64, holds: &[(i64, Uuid)]) -> Result<Vec<ClaimOutcome>, RedisFailure> {
        if holds.is_empty() {
            return Ok(Vec::new());
        }
        let keys = self.keys.sale(goods_id);
        let mut invocation = self.claim.key(&keys.buyers);
        for (user_id, ticket) in holds {
            invocation.arg(*user_id).arg(ticket.to_string());
        }
        let mut conn = self.conn().await?;
        let codes: Vec<i64> = invocation.invoke_async(&mut *conn).await.map_err(RedisFailure::from)?;
        Ok(codes
            .into_iter()
            .map(|code| match code {
                0 => ClaimOutcome::Claimed,
                1 => ClaimOutcome::AlreadyClaimed,
                _ => ClaimOutcome::Lost,
            })
            .collect())
    }

    /// Runs `build.lua`: creates the sale state from `snapshot` unless present (the window and
    /// price are refreshed either way). Returns whether it was built.
    pub(crate) async fn build(
        &self,
        goods_id: i64,
        snapshot: &SaleSnapshot,
        mode: BuildMode,
    ) -> Result<bool, RedisFailure> {
        let keys = self.keys.sale(goods_id);
        let mut invocation = self.build.key(&keys.meta);
        invocation
            .key(&keys.stock)
            .key(&keys.buyers)
            .arg(snapshot.start_at.timestamp_millis())
            .arg(snapshot.end_at.timestamp_millis())
            .arg(snapshot.price_cents)
            .arg(snapshot.initial_stock)
            .arg(match mode {
                BuildMode::Missing => "missing",
                BuildMode::Resync => "resync",
            })
            .arg(self.keys.restock_channel())
            .arg(goods_id);
        for (user_id, ticket, at) in &snapshot.orders {
            invocation.arg(*user_id).arg(format!("c:{ticket}:{}", at.timestamp_millis()));
        }
        let mut conn = self.conn().await?;
        let built: i64 = invocation.invoke_async(&mut *conn).await.map_err(RedisFailure::from)?;
        Ok(built == 1)
    }

    /// Whether the sale state of `goods_id` is in Redis.
    pub(crate) async fn present(&self, goods_id: i64) -> Result<bool, RedisFailure> {
        let mut conn = self.conn().await?;
        redis::cmd("EXISTS")
            .arg(self.keys.sale(goods_id).meta)
            .query_async(&mut *conn)
            .await
            .map_err(RedisFailure::from)
    }

    /// Stock and holds in Redis.
    pub(crate) async fn level(&self, goods_id: i64) -> Result<SaleLevel, RedisFailure> {
        let keys = self.keys.sale(goods_id);
        let mut conn = self.conn().await?;
        let (present, stock, holds): (bool, Option<i64>, i64) = redis::pipe()
            .exists(&keys.meta)
            .get(&keys.stock)
            .hlen(&keys.buyers)
            .query_async(&mut *conn)
            .await
            .map_err(RedisFailure::from)?;
        Ok(SaleLevel { stock: if present { stock } else { None }, holds })
    }

    /// Units left for several goods at once (`None` where there is no sale state).
    pub(crate) async fn stocks(&self, goods_ids: &[i64]) -> Result<Vec<Option<i64>>, RedisFailure> {
        if goods_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for goods_id in goods_ids {
            // One GET per key rather than MGET: the keys live in different cluster slots.
            pipe.get(self.keys.sale(*goods_id).stock);
        }
        let mut conn = self.conn().await?;
        pipe.query_async(&mut *conn).await.map_err(RedisFailure::from)
    }

    /// Redis's clock (ms since the epoch) and every buyer entry of a goods, read together.
    pub(crate) async fn holds(&self, goods_id: i64) -> Result<(i64, Vec<Reservation>), RedisFailure> {
        let keys = self.keys.sale(goods_id);
        let mut conn = self.conn().await?;
        let ((seconds, micros), entries): ((i64, i64), Vec<(i64, String)>) = redis::pipe()
            .cmd("TIME")
            .cmd("HGETALL")
            .arg(&keys.buyers)
            .query_async(&mut *conn)
            .await
            .map_err(RedisFailure::from)?;
        let holds = entries.into_iter().filter_map(|(user_id, entry)| parse_hold(user_id, &entry)).collect();
        Ok((seconds * 1000 + micros / 1000, holds))
    }
}

/// Parses a buyer entry `r:<ticket>:<ms>` or `c:<ticket>:<ms>`.
fn parse_hold(user_id: i64, entry: &str) -> Option<Reservation> {
    let (state, rest) = entry.split_once(':')?;
    let (ticket, ms) = rest.split_once(':')?;
    Some(Reservation { user_id, ticket: ticket.parse().ok()?, reserved_at_ms: ms.parse().ok()?, claimed: state == "c" })
}

fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buyer_entries_parse() {
        let ticket = Uuid::new_v4();
        let held = parse_hold(7, &format!("r:{ticket}:1700000000000")).unwrap();
        assert_eq!(held, Reservation { user_id: 7, ticket, reserved_at_ms: 1_700_000_000_000, claimed: false });
        assert!(parse_hold(7, &format!("c:{ticket}:1")).unwrap().claimed);
        assert_eq!(parse_hold(7, "garbage"), None);
    }
}
