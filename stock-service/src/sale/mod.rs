//! The sale state in Redis, changed only through five Lua scripts (see the `.lua` files here):
//! `reserve`, `release`, `claim`, `build` and `take`. Each script is one atomic step; that is the
//! whole concurrency story of the hot path: no locks, no transactions, no races between check and
//! act.
//!
//! **Stock buckets.** A goods may be split into N buckets (`buckets` at creation), each under a
//! hash tag of its own, so that a Redis Cluster spreads one hot goods over N slots instead of
//! putting every buyer on one shard. Every script still touches one bucket only. A buyer belongs
//! to a home bucket ([`home_bucket`]): their reservation, duplicate check, claim and release all
//! happen there. When the home bucket is sold out, `take.lua` takes a unit from each other bucket
//! that has one (one pipelined round trip) and `reserve.lua` carries them home in the call that
//! reserves one of them; the goods is sold out only when every bucket is. Each bucket counts the units that left (`out`) and came
//! (`in`), so `stock + buyers = initial + in - out` per bucket and the sums over buckets are the
//! audit's figures. A stock-service that dies between a take and its carry loses those units from
//! Redis (undersold, never oversold) until the sale state is rebuilt from PostgreSQL.
//!
//! Scripts are sent once and then called by SHA (`EVALSHA`), falling back to loading them when
//! Redis answers `NOSCRIPT` (after a restart or a `SCRIPT FLUSH`): redis-rs' `Script` does both.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, TimeZone, Utc};
use contracts::keyspace::{Keyspace, SaleKeys, home_bucket};
use contracts::stock::{ClaimOutcome, ReleaseOutcome, ReleaseScope, Reservation, ReserveOutcome};
use platform::redis::Shared;
use redis::Script;
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
    /// Redis stock buckets (1: the goods' own keys).
    pub(crate) buckets: u16,
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
    redis: Shared,
    keys: Keyspace,
    reserve: Script,
    release: Script,
    claim: Script,
    build: Script,
    take: Script,
    /// Stock buckets per goods, as read from Redis once (fixed at creation: never stale).
    layouts: Arc<RwLock<HashMap<i64, u16>>>,
}

impl SaleStore {
    /// A store over `redis`, with keys named by `keys`.
    pub(crate) fn new(redis: Shared, keys: Keyspace) -> SaleStore {
        SaleStore {
            redis,
            keys,
            reserve: Script::new(RESERVE_SCRIPT),
            release: Script::new(include_str!("release.lua")),
            claim: Script::new(include_str!("claim.lua")),
            build: Script::new(include_str!("build.lua")),
            take: Script::new(include_str!("take.lua")),
            layouts: Arc::default(),
        }
    }

    /// The stock buckets of `goods_id`, or `None` when it has no sale state. Read from the goods'
    /// meta on the first call of this process for this goods (`buckets` is there for a goods of
    /// more than one), then remembered.
    async fn buckets(&self, goods_id: i64) -> Result<Option<u16>, RedisFailure> {
        if let Some(buckets) = self.layouts.read().expect("never poisoned").get(&goods_id) {
            return Ok(Some(*buckets));
        }
        let mut conn = self.conn();
        let (buckets, initial): (Option<u16>, Option<i64>) = redis::cmd("HMGET")
            .arg(self.keys.sale(goods_id).meta)
            .arg("buckets")
            .arg("initial")
            .query_async(&mut conn)
            .await
            .map_err(RedisFailure::from)?;
        let Some(_) = initial else { return Ok(None) };
        let buckets = buckets.unwrap_or(1).max(1);
        self.layouts.write().expect("never poisoned").insert(goods_id, buckets);
        Ok(Some(buckets))
    }

    /// The keys of every bucket of `goods_id`.
    fn bucket_keys(&self, goods_id: i64, buckets: u16) -> Vec<SaleKeys> {
        (0..buckets).map(|bucket| self.keys.stock_bucket(goods_id, bucket, buckets)).collect()
    }

    /// `reserve.lua` in one bucket, `carried`: units taken from other buckets under that build.
    async fn reserve_in(
        &self,
        keys: &SaleKeys,
        user_id: i64,
        ticket: Uuid,
        carried: Option<(usize, &str)>,
    ) -> Result<Option<ReserveOutcome>, RedisFailure> {
        let mut conn = self.conn();
        let mut invocation = self.reserve.key(&keys.meta);
        invocation.key(&keys.stock).key(&keys.buyers).arg(user_id).arg(ticket.to_string());
        if let Some((units, built)) = carried {
            invocation.arg(units).arg(built);
        }
        let (code, a, b): (i64, i64, i64) = invocation.invoke_async(&mut conn).await.map_err(RedisFailure::from)?;
        Ok(Some(match code {
            0 => ReserveOutcome::Reserved { stock_left: a, price_cents: b },
            1 => ReserveOutcome::Duplicate,
            2 => ReserveOutcome::SoldOut,
            3 => ReserveOutcome::NotStarted { starts_at: from_ms(a) },
            4 => ReserveOutcome::Ended,
            _ => return Ok(None),
        }))
    }

    /// The process's shared connection (a handle: cloning it opens nothing).
    fn conn(&self) -> Shared {
        self.redis.clone()
    }

    /// Runs `reserve.lua` in the buyer's home bucket, falling through to the other buckets when
    /// it is sold out. `Ok(None)` means there is no sale state for this goods.
    pub(crate) async fn reserve(
        &self,
        goods_id: i64,
        user_id: i64,
        ticket: Uuid,
    ) -> Result<Option<ReserveOutcome>, RedisFailure> {
        let Some(buckets) = self.buckets(goods_id).await? else { return Ok(None) };
        let home = home_bucket(user_id, buckets);
        let home_keys = self.keys.stock_bucket(goods_id, home, buckets);
        let mut outcome = self.reserve_in(&home_keys, user_id, ticket, None).await?;
        // A fall-through that finds every other bucket empty may have raced buyers who just took
        // units and are carrying them to their own home bucket (one round trip away, in no
        // bucket's stock meanwhile, but counted: out - in): while units are on their way, look
        // again, home and the others, a few times, before saying sold out. Without it a crowd
        // arriving at once was told sold out while units sat in a home bucket (6 of 24 sold to
        // 2,000 buyers in one CI run). A true sell-out (nothing on its way) answers at once.
        for attempt in 0..FALL_THROUGH_ATTEMPTS {
            if buckets == 1 || outcome != Some(ReserveOutcome::SoldOut) {
                return Ok(outcome);
            }
            match self.fall_through(goods_id, home, &home_keys, buckets, user_id, ticket).await? {
                FallThrough::Done(outcome) => return Ok(outcome),
                FallThrough::Empty => break,
                FallThrough::InTransit if attempt + 1 == FALL_THROUGH_ATTEMPTS => break,
                FallThrough::InTransit => {
                    tokio::time::sleep(std::time::Duration::from_millis(1 << attempt)).await;
                    outcome = self.reserve_in(&home_keys, user_id, ticket, None).await?;
                }
            }
        }
        Ok(Some(ReserveOutcome::SoldOut))
    }

    /// Home is sold out: takes a unit from every other bucket that has one and carries them home.
    async fn fall_through(
        &self,
        goods_id: i64,
        home: u16,
        home_keys: &SaleKeys,
        buckets: u16,
        user_id: i64,
        ticket: Uuid,
    ) -> Result<FallThrough, RedisFailure> {
        // Home is sold out: one unit from each other bucket that has one, in one round trip,
        // carried home (where this buyer's duplicate check is) by the reserve that uses the first;
        // the others stay on sale there. Sold out means every bucket is, with no unit on its way
        // between two (the same round trip counts them in home too).
        let takes: Vec<SaleKeys> =
            (1..buckets).map(|step| self.keys.stock_bucket(goods_id, (home + step) % buckets, buckets)).collect();
        let taken = self.take_all(&takes, home_keys).await.map_err(RedisFailure::from)?;
        if taken.iter().any(|(code, ..)| *code < 0) {
            return Ok(FallThrough::Done(None)); // a bucket lost its state: rebuild (its units are recounted)
        }
        let mut builds = taken.iter().filter(|(code, ..)| *code == 1).map(|(_, built, ..)| built.as_str());
        let Some(built) = builds.next() else {
            let in_transit: i64 = taken.iter().map(|(_, _, came, left)| left - came).sum();
            return Ok(if in_transit > 0 { FallThrough::InTransit } else { FallThrough::Empty });
        };
        let carried = 1 + builds.filter(|other| *other == built).count();
        Ok(FallThrough::Done(self.reserve_in(home_keys, user_id, ticket, Some((carried, built))).await?))
    }
}

/// Looks at the buckets before a buyer of a bucketed goods is told it is sold out.
const FALL_THROUGH_ATTEMPTS: u32 = 4;

/// What a fall-through to the other buckets came to.
enum FallThrough {
    /// The reserve's outcome at home with the units taken (`None`: no sale state).
    Done(Option<ReserveOutcome>),
    /// Every bucket was empty, nothing on its way between two: sold out.
    Empty,
    /// Every bucket was empty, but units were on their way from one bucket to another.
    InTransit,
}

impl SaleStore {
    /// `take.lua` on every bucket of `from`, and a count of `home` (`peek`), pipelined.
    async fn take_all(&self, from: &[SaleKeys], home: &SaleKeys) -> redis::RedisResult<Vec<(i64, String, i64, i64)>> {
        let invocations: Vec<_> = from
            .iter()
            .map(|bucket| (bucket, "take"))
            .chain(std::iter::once((home, "peek")))
            .map(|(bucket, mode)| {
                let mut invocation = self.take.key(&bucket.meta);
                invocation.key(&bucket.stock).arg(mode);
                invocation
            })
            .collect();
        let invocations: Vec<_> = invocations.iter().collect();
        platform::redis::invoke_pipelined(&mut self.conn(), &invocations).await
    }

    /// Runs `release.lua`.
    pub(crate) async fn release(
        &self,
        goods_id: i64,
        user_id: i64,
        ticket: Uuid,
        scope: ReleaseScope,
    ) -> Result<ReleaseOutcome, RedisFailure> {
        // Without sale state nothing is held: the goods' own keys answer "not held".
        let buckets = self.buckets(goods_id).await?.unwrap_or(1);
        let keys = self.keys.stock_bucket(goods_id, home_bucket(user_id, buckets), buckets);
        let scope = match scope {
            ReleaseScope::Unclaimed => "unclaimed",
            ReleaseScope::AnyHold => "any",
            ReleaseScope::Discard => "discard",
        };
        let mut conn = self.conn();
        let released: i64 = self
            .release
            .key(&keys.stock)
            .key(&keys.buyers)
            .arg(user_id)
            .arg(ticket.to_string())
            .arg(scope)
            .arg(self.keys.restock_channel())
            .arg(goods_id)
            .invoke_async(&mut conn)
            .await
            .map_err(RedisFailure::from)?;
        Ok(match released {
            1 => ReleaseOutcome::Released,
            2 => ReleaseOutcome::Claimed,
            _ => ReleaseOutcome::NotHeld,
        })
    }

    /// Runs `claim.lua` for a batch of (user, ticket): once per home bucket among them.
    pub(crate) async fn claim(&self, goods_id: i64, holds: &[(i64, Uuid)]) -> Result<Vec<ClaimOutcome>, RedisFailure> {
        let mut outcomes = vec![ClaimOutcome::Lost; holds.len()];
        if holds.is_empty() {
            return Ok(outcomes);
        }
        let buckets = self.buckets(goods_id).await?.unwrap_or(1);
        let mut by_bucket: HashMap<u16, Vec<usize>> = HashMap::new();
        for (i, (user_id, _)) in holds.iter().enumerate() {
            by_bucket.entry(home_bucket(*user_id, buckets)).or_default().push(i);
        }
        let mut conn = self.conn();
        for (bucket, members) in by_bucket {
            let keys = self.keys.stock_bucket(goods_id, bucket, buckets);
            let mut invocation = self.claim.key(&keys.buyers);
            for &i in &members {
                invocation.arg(holds[i].0).arg(holds[i].1.to_string());
            }
            let codes: Vec<i64> = invocation.invoke_async(&mut conn).await.map_err(RedisFailure::from)?;
            for (i, code) in members.into_iter().zip(codes) {
                outcomes[i] = match code {
                    0 => ClaimOutcome::Claimed,
                    1 => ClaimOutcome::AlreadyClaimed,
                    _ => ClaimOutcome::Lost,
                };
            }
        }
        Ok(outcomes)
    }

    /// Runs `build.lua`: creates the sale state from `snapshot` unless present (the window and
    /// price are refreshed either way). Returns whether it was built.
    pub(crate) async fn build(
        &self,
        goods_id: i64,
        snapshot: &SaleSnapshot,
        mode: BuildMode,
    ) -> Result<bool, RedisFailure> {
        let build_id = Uuid::new_v4().to_string();
        let buckets = snapshot.buckets.max(1);
        if buckets == 1 {
            let keys = self.keys.sale(goods_id);
            return self
                .build_bucket(goods_id, &keys, snapshot, snapshot.initial_stock, &snapshot.orders, mode, &build_id)
                .await;
        }
        let base = self.keys.sale(goods_id).meta;
        let mut conn = self.conn();
        if mode == BuildMode::Missing
            && redis::cmd("EXISTS").arg(&base).query_async(&mut conn).await.map_err(RedisFailure::from)?
        {
            return Ok(false);
        }
        let keys = self.bucket_keys(goods_id, buckets);
        let mut read = redis::pipe();
        for bucket in &keys {
            read.cmd("HGET").arg(&bucket.meta).arg("initial");
        }
        let initials: Vec<Option<i64>> = read.query_async(&mut conn).await.map_err(RedisFailure::from)?;
        drop(conn);
        let mut orders = vec![Vec::new(); usize::from(buckets)];
        for order in &snapshot.orders {
            orders[usize::from(home_bucket(order.0, buckets))].push(*order);
        }
        // Units no bucket still present accounts for, shared out evenly over the missing ones
        // when every bucket is missing (Redis lost the goods: PostgreSQL's figures are the whole
        // truth). When only some are missing (a shard lost, a build cut short), a missing bucket
        // gets its orders and no more: its other units cannot be told from those moving between
        // buckets at this moment, and a unit left unsold is better than one sold twice.
        let all_missing = initials.iter().all(Option::is_none);
        let remaining = (snapshot.initial_stock - i64::try_from(snapshot.orders.len()).unwrap_or(i64::MAX)).max(0);
        let mut built = false;
        for (index, bucket) in keys.iter().enumerate() {
            let share = match initials[index] {
                Some(initial) => initial,
                None if all_missing => {
                    let (each, extra) = (remaining / i64::from(buckets), remaining % i64::from(buckets));
                    i64::try_from(orders[index].len()).unwrap_or(i64::MAX)
                        + each
                        + i64::from(i64::try_from(index).unwrap_or(0) < extra)
                }
                None => i64::try_from(orders[index].len()).unwrap_or(i64::MAX),
            };
            // A missing bucket is built; one still present is recounted from its own ledger, both
            // under this build (a unit taken under an earlier one is not deposited).
            let bucket_mode = if initials[index].is_some() { BuildMode::Resync } else { BuildMode::Missing };
            built |=
                self.build_bucket(goods_id, bucket, snapshot, share, &orders[index], bucket_mode, &build_id).await?;
        }
        let mut conn = self.conn();
        let () = redis::cmd("HSET")
            .arg(&base)
            .arg("buckets")
            .arg(buckets)
            .arg("initial")
            .arg(snapshot.initial_stock)
            .query_async(&mut conn)
            .await
            .map_err(RedisFailure::from)?;
        self.layouts.write().expect("never poisoned").insert(goods_id, buckets);
        Ok(built)
    }

    /// `build.lua` on one bucket (or the goods' own keys).
    #[allow(clippy::too_many_arguments)]
    async fn build_bucket(
        &self,
        goods_id: i64,
        keys: &SaleKeys,
        snapshot: &SaleSnapshot,
        initial: i64,
        orders: &[(i64, Uuid, DateTime<Utc>)],
        mode: BuildMode,
        build_id: &str,
    ) -> Result<bool, RedisFailure> {
        let mut invocation = self.build.key(&keys.meta);
        invocation
            .key(&keys.stock)
            .key(&keys.buyers)
            .arg(snapshot.start_at.timestamp_millis())
            .arg(snapshot.end_at.timestamp_millis())
            .arg(snapshot.price_cents)
            .arg(initial)
            .arg(match mode {
                BuildMode::Missing => "missing",
                BuildMode::Resync => "resync",
            })
            .arg(self.keys.restock_channel())
            .arg(goods_id)
            .arg(build_id);
        for (user_id, ticket, at) in orders {
            invocation.arg(*user_id).arg(format!("c:{ticket}:{}", at.timestamp_millis()));
        }
        let mut conn = self.conn();
        let built: i64 = invocation.invoke_async(&mut conn).await.map_err(RedisFailure::from)?;
        Ok(built == 1)
    }

    /// Whether the sale state of `goods_id` is in Redis.
    pub(crate) async fn present(&self, goods_id: i64) -> Result<bool, RedisFailure> {
        let mut conn = self.conn();
        redis::cmd("EXISTS").arg(self.keys.sale(goods_id).meta).query_async(&mut conn).await.map_err(RedisFailure::from)
    }

    /// Stock and holds in Redis, summed over the stock buckets.
    pub(crate) async fn level(&self, goods_id: i64) -> Result<SaleLevel, RedisFailure> {
        let Some(buckets) = self.buckets(goods_id).await? else {
            return Ok(SaleLevel { stock: None, holds: 0 });
        };
        let mut pipe = redis::pipe();
        pipe.exists(self.keys.sale(goods_id).meta);
        for keys in self.bucket_keys(goods_id, buckets) {
            pipe.get(&keys.stock).hlen(&keys.buyers);
        }
        let mut conn = self.conn();
        let values: Vec<redis::Value> = pipe.query_async(&mut conn).await.map_err(RedisFailure::from)?;
        let present: bool = redis::from_redis_value(values[0].clone()).map_err(RedisFailure::from)?;
        let (mut lefts, mut holds) = (Vec::new(), 0);
        for pair in values[1..].chunks(2) {
            let (left, held): (Option<i64>, i64) =
                redis::from_redis_value(redis::Value::Array(pair.to_vec())).map_err(RedisFailure::from)?;
            lefts.push(left);
            holds += held;
        }
        Ok(SaleLevel { stock: if present { total_stock(lefts) } else { None }, holds })
    }

    /// Units left for several goods at once, given with their stock buckets (`None` where there
    /// is no sale state).
    pub(crate) async fn stocks(&self, goods: &[(i64, u16)]) -> Result<Vec<Option<i64>>, RedisFailure> {
        if goods.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for (goods_id, buckets) in goods {
            // One GET per key rather than MGET: the keys live in different cluster slots.
            for keys in self.bucket_keys(*goods_id, *buckets) {
                pipe.get(keys.stock);
            }
        }
        let mut conn = self.conn();
        let mut stocks = pipe.query_async::<Vec<Option<i64>>>(&mut conn).await.map_err(RedisFailure::from)?.into_iter();
        Ok(goods.iter().map(|(_, buckets)| total_stock(stocks.by_ref().take(usize::from(*buckets)))).collect())
    }

    /// Redis's clock (ms since the epoch) and every buyer entry of a goods (of every bucket),
    /// read together.
    pub(crate) async fn holds(&self, goods_id: i64) -> Result<(i64, Vec<Reservation>), RedisFailure> {
        let buckets = self.buckets(goods_id).await?.unwrap_or(1);
        let mut pipe = redis::pipe();
        pipe.cmd("TIME");
        for keys in self.bucket_keys(goods_id, buckets) {
            pipe.cmd("HGETALL").arg(&keys.buyers);
        }
        let mut conn = self.conn();
        let values: Vec<redis::Value> = pipe.query_async(&mut conn).await.map_err(RedisFailure::from)?;
        let (seconds, micros): (i64, i64) = redis::from_redis_value(values[0].clone()).map_err(RedisFailure::from)?;
        let mut holds = Vec::new();
        for value in &values[1..] {
            let entries: Vec<(i64, String)> = redis::from_redis_value(value.clone()).map_err(RedisFailure::from)?;
            holds.extend(entries.into_iter().filter_map(|(user_id, entry)| parse_hold(user_id, &entry)));
        }
        Ok((seconds * 1000 + micros / 1000, holds))
    }
}

/// The units left over a goods' buckets: their sum, `None` when no bucket has a stock key.
fn total_stock(lefts: impl IntoIterator<Item = Option<i64>>) -> Option<i64> {
    lefts.into_iter().fold(None, |sum, left| match (sum, left) {
        (None, left) => left,
        (Some(sum), left) => Some(sum + left.unwrap_or_default()),
    })
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
