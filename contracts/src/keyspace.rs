//! The shared keyspace: every Redis key and pub/sub channel, every PostgreSQL advisory lock and
//! every RabbitMQ name the programs use, in one place. It mirrors the tables of `docs/data.md`;
//! a name written anywhere else is a bug waiting for a typo.
//!
//! | key | type | written by |
//! |-----|------|------------|
//! | `{p}:{g<id>}:meta` | hash | stock-service: `start_ms`, `end_ms`, `price_cents`, `initial`; present = warmed up |
//! | `{p}:{g<id>}:stock` | int | stock-service: units left |
//! | `{p}:{g<id>}:buyers` | hash | stock-service: user → `r:<ticket>:<ms>` / `c:<ticket>:<ms>` |
//! | `{p}:{g<id>.<b>}:meta`, `:stock`, `:buyers` | hash, int, hash | stock-service: stock bucket `b` of a goods split into N (`buckets` > 1); the goods' own `:meta` then holds `buckets` and `initial` |
//! | `{p}:{g<id>}:results` | hash | order-service: user → `q:` / `s:` / `f:` entries |
//! | `{p}:restock` | pub/sub | stock-service: goods ids back in stock |
//! | `{p}:{u<id>}:bucket`, `:brush` | hash, int | gateway: token bucket, anti-brush window |
//! | `{p}:{u<id>}:captcha:<goods>`, `:captcha_failures:<goods>` | string, int | gateway |
//! | `{p}:{u<id>}:path:<goods>` | string | gateway: hidden seckill path |
//! | `{p}:{u<id>}:strikes`, `:ban` | int, string | gateway: anti-brush trips, the blacklist entry |
//! | `{p}:{ip:<addr>}:brush`, `:strikes`, `:ban`, `:sign_in` | int, int, string, int | gateway: the same per client IP, and its sign-in attempts |
//! | `{p}:{n:<username>}:sign_in_failures` | int | gateway: failed logins of one username |
//! | `{p}:blacklist` | sorted set | gateway: `user:<id>` / `ip:<addr>` → ban expiry (ms), for the admin API |
//! | `{p}:snowflake:worker:<n>` | string | order workers: worker id leases |
//! | `{p}:reconciler:lock` | string | order workers: one reconciler pass at a time |
//!
//! Hash tags (`{g42}`, `{u7}`) put every key one Lua script touches in one Redis Cluster slot.
//! The registry's keys belong to the `rpc` crate (`rpc::registry`), under its own prefix.

/// The prefix of every key in production; tests use a unique one each.
pub const DEFAULT_PREFIX: &str = "sk";

/// Key and channel names under one prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keyspace {
    prefix: String,
}

/// The keys of one goods' sale: its state in Redis (stock-service) and its order results
/// (order-service), all under the goods' hash tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaleKeys {
    /// Hash: `start_ms`, `end_ms`, `price_cents`, `initial`. Its presence means "warmed up".
    pub meta: String,
    /// Integer: units left.
    pub stock: String,
    /// Hash: user id → `r:<ticket>:<ms>` (reserved) or `c:<ticket>:<ms>` (claimed by a worker).
    pub buyers: String,
    /// Hash: user id → `q:<ticket>` (queued), `s:<ticket>:<order id>`, `f:<ticket>:<reason>`.
    pub results: String,
}

/// The keys of one user's purchase defences in the gateway, under the user's hash tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserKeys {
    prefix: String,
    user_id: i64,
}

impl Keyspace {
    /// Names under `prefix`.
    pub fn new(prefix: impl Into<String>) -> Keyspace {
        Keyspace { prefix: prefix.into() }
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The keys of `goods_id`'s sale.
    pub fn sale(&self, goods_id: i64) -> SaleKeys {
        let tag = format!("{}:{{g{goods_id}}}", self.prefix);
        SaleKeys {
            meta: format!("{tag}:meta"),
            stock: format!("{tag}:stock"),
            buyers: format!("{tag}:buyers"),
            results: format!("{tag}:results"),
        }
    }

    /// The keys of stock bucket `bucket` of `goods_id`, split into `buckets`: each bucket under a
    /// hash tag of its own (`{g42.3}`), so a Redis Cluster spreads a hot goods over its slots. A
    /// goods of one bucket keeps its [`Keyspace::sale`] keys; `results` is always the goods' own.
    pub fn stock_bucket(&self, goods_id: i64, bucket: u16, buckets: u16) -> SaleKeys {
        let sale = self.sale(goods_id);
        if buckets <= 1 {
            return sale;
        }
        let tag = format!("{}:{{g{goods_id}.{bucket}}}", self.prefix);
        SaleKeys {
            meta: format!("{tag}:meta"),
            stock: format!("{tag}:stock"),
            buyers: format!("{tag}:buyers"),
            results: sale.results,
        }
    }

    /// The pub/sub channel announcing goods back in stock (payload: the goods id). Gateways clear
    /// their in-process sold-out flag on it.
    pub fn restock_channel(&self) -> String {
        format!("{}:restock", self.prefix)
    }

    /// The live rules ([`RuleKeys`]).
    pub fn rules(&self) -> RuleKeys {
        RuleKeys {
            current: format!("{}:rules", self.prefix),
            log: format!("{}:rules:log", self.prefix),
            channel: format!("{}:rules:changed", self.prefix),
        }
    }

    /// The scenario `loadtest scenario` is running ([`crate::scenario::ScenarioStatus`], JSON).
    pub fn scenario(&self) -> String {
        format!("{}:scenario", self.prefix)
    }

    /// The keys of `user_id`'s defences.
    pub fn user(&self, user_id: i64) -> UserKeys {
        UserKeys { prefix: self.prefix.clone(), user_id }
    }

    /// The keys of one client IP's defences.
    pub fn ip(&self, ip: &str) -> IpKeys {
        IpKeys { tag: format!("{}:{{ip:{ip}}}", self.prefix) }
    }

    /// Failed logins of `username`.
    pub fn sign_in_failures(&self, username: &str) -> String {
        format!("{}:{{n:{username}}}:sign_in_failures", self.prefix)
    }

    /// The index of blacklist entries (members `user:<id>`, `ip:<addr>`; scores: expiry in ms).
    pub fn blacklist(&self) -> String {
        format!("{}:blacklist", self.prefix)
    }

    /// The lease of snowflake worker id `worker_id`.
    pub fn worker_lease(&self, worker_id: u16) -> String {
        format!("{}:snowflake:worker:{worker_id}", self.prefix)
    }

    /// The lock that lets one reconciler pass run at a time.
    pub fn reconciler_lock(&self) -> String {
        format!("{}:reconciler:lock", self.prefix)
    }
}

/// The most stock buckets a goods can be split into.
pub const MAX_STOCK_BUCKETS: u16 = 64;

/// The stock bucket a buyer belongs to, of `buckets`: where their reservation is made and
/// deduplicated, whichever bucket the unit came from. Fibonacci hashing spreads consecutive ids
/// evenly; every process computes the same bucket.
pub fn home_bucket(user_id: i64, buckets: u16) -> u16 {
    let mixed = (user_id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    u16::try_from(mixed % u64::from(buckets.max(1))).expect("below a u16")
}

impl Default for Keyspace {
    fn default() -> Self {
        Keyspace::new(DEFAULT_PREFIX)
    }
}

impl UserKeys {
    fn key(&self, rest: std::fmt::Arguments<'_>) -> String {
        format!("{}:{{u{}}}:{rest}", self.prefix, self.user_id)
    }

    /// Token bucket of the seckill calls.
    pub fn bucket(&self) -> String {
        self.key(format_args!("bucket"))
    }

    /// Anti-brush window counter.
    pub fn brush(&self) -> String {
        self.key(format_args!("brush"))
    }

    /// The captcha answer due for `goods_id`.
    pub fn captcha(&self, goods_id: i64) -> String {
        self.key(format_args!("captcha:{goods_id}"))
    }

    /// Wrong captcha answers for `goods_id`.
    pub fn captcha_failures(&self, goods_id: i64) -> String {
        self.key(format_args!("captcha_failures:{goods_id}"))
    }

    /// The hidden seckill path issued for `goods_id`.
    pub fn path(&self, goods_id: i64) -> String {
        self.key(format_args!("path:{goods_id}"))
    }

    /// Anti-brush trips counted towards the blacklist.
    pub fn strikes(&self) -> String {
        self.key(format_args!("strikes"))
    }

    /// Present while the user is blacklisted.
    pub fn ban(&self) -> String {
        self.key(format_args!("ban"))
    }
}

/// Where the live rules are kept: the rule set in force (JSON, with its version), the log of
/// changes (newest first), and the channel that announces a change (payload: the new version).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleKeys {
    /// The rule set in force.
    pub current: String,
    /// Every change, newest first (capped).
    pub log: String,
    /// Announces each change.
    pub channel: String,
}

/// The keys of one client IP's defences in the gateway, under the IP's hash tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpKeys {
    tag: String,
}

impl IpKeys {
    /// Anti-brush window counter of the seckill calls.
    pub fn brush(&self) -> String {
        format!("{}:brush", self.tag)
    }

    /// Anti-brush trips counted towards the blacklist.
    pub fn strikes(&self) -> String {
        format!("{}:strikes", self.tag)
    }

    /// Present while the IP is blacklisted.
    pub fn ban(&self) -> String {
        format!("{}:ban", self.tag)
    }

    /// Sign-in and registration attempts in the current minute.
    pub fn sign_in(&self) -> String {
        format!("{}:sign_in", self.tag)
    }
}

/// The PostgreSQL advisory lock of one goods' sale, taken for the rest of a transaction.
///
/// Order workers hold it shared while they claim reservations and write orders; a rebuild of
/// the sale state from PostgreSQL holds it exclusive, so it never reads a batch half-way. Both
/// sides name the lock through this type: passing a bare id where a lock is meant does not
/// compile, and the id scheme lives here only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SaleLock(i64);

impl SaleLock {
    /// Takes the lock exclusively; `$1` is [`SaleLock::id`].
    pub const EXCLUSIVE: &'static str = "SELECT pg_advisory_xact_lock($1)";
    /// Takes the lock shared; `$1` is [`SaleLock::id`].
    pub const SHARED: &'static str = "SELECT pg_advisory_xact_lock_shared($1)";

    /// The lock of `goods_id`'s sale.
    pub fn of(goods_id: i64) -> SaleLock {
        SaleLock(goods_id)
    }

    /// The advisory lock key (the goods id: goods ids are the only advisory keys we take).
    pub fn id(self) -> i64 {
        self.0
    }
}

/// The RabbitMQ names of the order pipeline, derived from one prefix (`seckill` in production).
///
/// ```text
/// place ──► {p}.orders (direct) ──create──► {p}.orders.create (quorum queue)
///                                               │ rejected, or delivered too often
///                                               ▼
///                                    {p}.orders.dlx (fanout) ──► {p}.orders.dead
///
/// worker, after writing an order ──► {p}.orders.unpaid.<window>s (quorum queue, message TTL = the
///                                    │ payment window; one queue per window, so the head always
///                                    │ expires first)
///                                    ▼ TTL expired (dead-lettered at least once)
///                          {p}.orders.expired.dlx (fanout) ──► {p}.orders.expired ──► the workers
///                                                              cancel what is still unpaid
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderQueues {
    /// Direct exchange orders are published to.
    pub exchange: String,
    /// Quorum queue the workers consume.
    pub queue: String,
    /// Fanout exchange for dead letters.
    pub dead_exchange: String,
    /// Where dead letters wait.
    pub dead_queue: String,
    /// Fanout exchange the payment timers are dead-lettered to when they expire.
    pub expired_exchange: String,
    /// Where expired payment timers wait for the workers.
    pub expired_queue: String,
    prefix: String,
}

impl OrderQueues {
    /// The routing key of order-creation messages.
    pub const ROUTING_KEY: &'static str = "create";
    /// The prefix in production.
    pub const DEFAULT_PREFIX: &'static str = "seckill";

    /// Names under `prefix`.
    pub fn new(prefix: &str) -> OrderQueues {
        OrderQueues {
            exchange: format!("{prefix}.orders"),
            queue: format!("{prefix}.orders.create"),
            dead_exchange: format!("{prefix}.orders.dlx"),
            dead_queue: format!("{prefix}.orders.dead"),
            expired_exchange: format!("{prefix}.orders.expired.dlx"),
            expired_queue: format!("{prefix}.orders.expired"),
            prefix: prefix.to_owned(),
        }
    }

    /// The queue where the payment timers of a `window_secs` window wait (their TTL).
    pub fn unpaid_queue(&self, window_secs: u32) -> String {
        format!("{}.orders.unpaid.{window_secs}s", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_a_goods_shares_one_hash_tag() {
        let keys = Keyspace::new("sk").sale(42);
        for key in [&keys.meta, &keys.stock, &keys.buyers, &keys.results] {
            assert!(key.starts_with("sk:{g42}:"), "{key}");
        }
        assert_eq!(keys.stock, "sk:{g42}:stock");
    }

    #[test]
    fn stock_buckets_have_a_hash_tag_each_and_one_bucket_is_the_goods_itself() {
        let keys = Keyspace::new("sk");
        assert_eq!(keys.stock_bucket(42, 0, 1), keys.sale(42));
        let bucket = keys.stock_bucket(42, 3, 8);
        for key in [&bucket.meta, &bucket.stock, &bucket.buyers] {
            assert!(key.starts_with("sk:{g42.3}:"), "{key}");
        }
        assert_eq!(bucket.results, keys.sale(42).results);
    }

    #[test]
    fn buyers_spread_evenly_over_their_home_buckets() {
        let mut counts = [0u32; 8];
        for user_id in 1..=8_000 {
            counts[usize::from(home_bucket(user_id, 8))] += 1;
        }
        assert!(counts.iter().all(|&n| (900..=1_100).contains(&n)), "{counts:?}");
        assert_eq!(home_bucket(12_345, 1), 0);
        assert_eq!(home_bucket(12_345, 8), home_bucket(12_345, 8));
    }

    #[test]
    fn every_key_of_a_user_shares_one_hash_tag() {
        let user = Keyspace::new("sk").user(7);
        for key in [
            user.bucket(),
            user.brush(),
            user.captcha(3),
            user.captcha_failures(3),
            user.path(3),
            user.strikes(),
            user.ban(),
        ] {
            assert!(key.starts_with("sk:{u7}:"), "{key}");
        }
        assert_eq!(user.path(3), "sk:{u7}:path:3");
    }

    #[test]
    fn names_match_the_documented_layout() {
        let keys = Keyspace::default();
        assert_eq!(keys.restock_channel(), "sk:restock");
        assert_eq!(keys.worker_lease(5), "sk:snowflake:worker:5");
        assert_eq!(keys.reconciler_lock(), "sk:reconciler:lock");
        assert_eq!(OrderQueues::new("seckill").queue, "seckill.orders.create");
        assert_eq!(OrderQueues::new("seckill").unpaid_queue(900), "seckill.orders.unpaid.900s");
        let ip = keys.ip("10.0.0.1");
        assert_eq!((ip.brush(), ip.ban()), ("sk:{ip:10.0.0.1}:brush".to_owned(), "sk:{ip:10.0.0.1}:ban".to_owned()));
        assert_eq!(keys.sign_in_failures("alice"), "sk:{n:alice}:sign_in_failures");
    }
}
