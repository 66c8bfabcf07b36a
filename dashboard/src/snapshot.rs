//! What the page shows, as gathered once a second: the types the server streams as JSON.

use platform::rules::RuleSet;
use serde::Serialize;

/// A figure from one source, or why that source could not be read: a source that is down
/// shows as unreachable, never breaks the page.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source<T> {
    /// Read.
    Ok(T),
    /// Not read, and why.
    Unreachable(String),
}

impl<T> Source<T> {
    /// From a read that may have failed.
    pub fn from_result<E: std::fmt::Display>(result: Result<T, E>) -> Source<T> {
        match result {
            Ok(value) => Source::Ok(value),
            Err(err) => Source::Unreachable(err.to_string()),
        }
    }
}

/// One gathering.
#[derive(Clone, Debug, Serialize)]
pub struct Snapshot {
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// The gateways' funnel over the last interval.
    pub funnel: FunnelPoint,
    /// The most recent goods.
    pub goods: Source<Vec<GoodsPanel>>,
    /// The audit of those goods.
    pub audit: Source<AuditBadge>,
    /// The order queue.
    pub queue: Source<QueuePanel>,
    /// The order workers.
    pub workers: WorkerPanel,
    /// PostgreSQL.
    pub postgres: Source<PostgresPanel>,
    /// Every RPC node in the registry (and those that left it lately).
    pub nodes: Source<Vec<NodeTile>>,
    /// Every program whose metrics are read.
    pub programs: Vec<ProgramTile>,
    /// The live rules in force.
    pub rules: Source<RuleSet>,
    /// The demo sale started from the page, if any.
    pub demo: Option<DemoState>,
    /// The scenario `loadtest scenario` runs or ran last (within the hour), if any.
    pub scenario: Source<Option<contracts::scenario::ScenarioStatus>>,
}

/// The gateways' purchase funnel, per second.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct FunnelPoint {
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// Captcha images served.
    pub captcha: f64,
    /// Path requests.
    pub path: f64,
    /// Order requests.
    pub order: f64,
    /// Orders accepted (202).
    pub accepted: f64,
    /// Answered sold out.
    pub sold_out: f64,
    /// Answered 429 (any limit).
    pub limited: f64,
    /// Answered 503.
    pub unavailable: f64,
}

/// One goods.
#[derive(Clone, Debug, Serialize)]
pub struct GoodsPanel {
    /// Goods id.
    pub goods_id: i64,
    /// Name.
    pub name: String,
    /// Purchase strategy.
    pub strategy: String,
    /// Units put on sale.
    pub initial_stock: i64,
    /// Units left in Redis (none when not warmed).
    pub redis_stock: Option<i64>,
    /// Units held for accepted tickets.
    pub holds: i64,
    /// Units left in PostgreSQL.
    pub db_stock: i64,
    /// Orders written.
    pub orders: i64,
    /// Accepted tickets not written yet.
    pub pending_tickets: i64,
    /// Nothing left to sell in Redis.
    pub sold_out: bool,
    /// Broken invariants (empty: clean).
    pub violations: Vec<String>,
}

/// The audit of the goods shown.
#[derive(Clone, Debug, Serialize)]
pub struct AuditBadge {
    /// Every invariant holds for every goods shown.
    pub clean: bool,
    /// Goods audited.
    pub goods: usize,
    /// Every queue drained (the Redis invariant is checked then).
    pub drained: bool,
    /// What broke, per goods.
    pub violations: Vec<String>,
}

/// The order queue.
#[derive(Clone, Debug, Serialize)]
pub struct QueuePanel {
    /// Queue name.
    pub queue: String,
    /// Messages in it (ready + unacknowledged, by passive declare: ready only).
    pub depth: u32,
    /// Its consumers.
    pub consumers: u32,
    /// Messages in the dead-letter queue.
    pub dead_letters: u32,
    /// Rates from the management API (unreachable without it).
    pub rates: Source<QueueRates>,
}

/// Message rates from RabbitMQ's management API.
#[derive(Clone, Debug, Default, Serialize)]
pub struct QueueRates {
    /// Published per second.
    pub publish: f64,
    /// Delivered per second.
    pub deliver: f64,
    /// Acknowledged per second.
    pub ack: f64,
    /// Unacknowledged messages (delivered, not settled).
    pub unacked: u64,
}

/// The order workers, from their metrics.
#[derive(Clone, Debug, Default, Serialize)]
pub struct WorkerPanel {
    /// Tickets settled per second (orders written or refused).
    pub drained_per_sec: f64,
    /// Orders written per second.
    pub written_per_sec: f64,
    /// Batches committed per second.
    pub batches_per_sec: f64,
    /// Mean orders per batch over the interval.
    pub mean_batch: Option<f64>,
    /// Redelivered messages per second.
    pub redelivered_per_sec: f64,
}

/// PostgreSQL's own figures.
#[derive(Clone, Debug, Serialize)]
pub struct PostgresPanel {
    /// Transactions (commits + rollbacks) per second on the system's database.
    pub transactions_per_sec: f64,
}

/// One RPC node.
#[derive(Clone, Debug, Serialize)]
pub struct NodeTile {
    /// Service name.
    pub service: String,
    /// Address.
    pub addr: String,
    /// `up`, `open` (a caller's breaker is open), `half-open`, `down` (its port does not
    /// answer) or `gone` (left the registry lately).
    pub status: &'static str,
    /// Calls per second its callers sent it.
    pub qps: f64,
    /// Failed calls per second (below the application).
    pub errors: f64,
    /// p99 of the calls of the last interval, in milliseconds.
    pub p99_ms: Option<f64>,
    /// Calls waiting for its answer.
    pub in_flight: f64,
}

/// One program whose metrics are read.
#[derive(Clone, Debug, Serialize)]
pub struct ProgramTile {
    /// Program (`gateway`, `order_worker`, ...).
    pub program: String,
    /// Its metrics URL.
    pub url: String,
    /// Whether it answered.
    pub up: bool,
    /// The live rules version it follows, if it reports one.
    pub rules_version: Option<u64>,
}

/// The demo sale started from the page.
#[derive(Clone, Debug, Serialize)]
pub struct DemoState {
    /// What it is doing: `preparing`, `buying`, `draining`, `done`, `failed`.
    pub phase: String,
    /// Goods on sale.
    pub goods_id: Option<i64>,
    /// Stock, buyers, rate.
    pub stock: i32,
    /// Buyers.
    pub buyers: usize,
    /// Arrivals per second.
    pub rate: u32,
    /// What the crowd saw, once done (accepted, sold out, refused by reason), or the error.
    pub summary: Vec<String>,
}
