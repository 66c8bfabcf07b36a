//! stock-service: the goods on sale and the sale state in Redis (stock, buyers, reservations).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Goods to put on sale (admin only).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewGoods {
    /// Display name.
    pub name: String,
    /// Longer text.
    #[serde(default)]
    pub description: String,
    /// Normal price, in cents.
    pub price_cents: i64,
    /// Flash-sale price, in cents.
    pub seckill_price_cents: i64,
    /// Units for sale.
    pub stock: i32,
    /// When the sale opens.
    pub start_at: DateTime<Utc>,
    /// When the sale closes.
    pub end_at: DateTime<Utc>,
    /// How a purchase takes a unit (admin-only, fixed at creation; the default is the
    /// production path).
    #[serde(default)]
    pub strategy: PurchaseStrategy,
    /// Redis stock buckets the units are split into at warm-up (1 to
    /// [`MAX_STOCK_BUCKETS`](crate::keyspace::MAX_STOCK_BUCKETS); fixed at creation). More than
    /// one spreads a hot goods over Redis Cluster slots; only the strategies that reserve
    /// through the stock-service's script (`lua_mq`, `redis_lua_sync_db`) take them.
    #[serde(default = "one_bucket")]
    pub buckets: u16,
    /// How long a won unit waits for its payment, in seconds (1 to 86,400; default
    /// [`DEFAULT_PAYMENT_WINDOW_SECS`]): an order unpaid by then is cancelled and its unit
    /// put back on sale.
    #[serde(default = "default_payment_window")]
    pub payment_window_secs: u32,
}

/// The payment window of a goods that names none: 15 minutes.
pub const DEFAULT_PAYMENT_WINDOW_SECS: u32 = 900;
/// The longest payment window: a day.
pub const MAX_PAYMENT_WINDOW_SECS: u32 = 86_400;

fn one_bucket() -> u16 {
    1
}

fn default_payment_window() -> u32 {
    DEFAULT_PAYMENT_WINDOW_SECS
}

/// How a purchase of a goods takes its unit. The production path is [`PurchaseStrategy::LuaMq`]
/// and the default; the others exist to be compared with it side by side (`loadtest scenario
/// oversell`), each in a file of its own under `order-service/src/strategy/` that says what goes
/// wrong with it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PurchaseStrategy {
    /// `SELECT stock`, then `UPDATE ... SET stock = <what was read> - 1`: lost updates oversell.
    DbCheckThenUpdate,
    /// `UPDATE ... SET stock = stock - 1 WHERE stock > 0`: correct, bound by the row lock.
    DbGuardedUpdate,
    /// `SELECT ... FOR UPDATE`, then the update: correct, pessimistic, bound by the row lock.
    DbForUpdate,
    /// A version column compared on update, retried a few times: correct, but under contention
    /// most buyers exhaust their retries and units stay unsold while buyers were turned away.
    DbOptimistic,
    /// `DECR` in Redis, then the duplicate check: a repeat click burns a unit, so it undersells.
    RedisDecr,
    /// The reservation script, then the order written synchronously in the request.
    RedisLuaSyncDb,
    /// The reservation script, then the order queued (publisher-confirmed) for the batched
    /// workers: the production path.
    #[default]
    LuaMq,
}

impl PurchaseStrategy {
    /// Every strategy, from the most naive to the production path.
    pub const ALL: [PurchaseStrategy; 7] = [
        PurchaseStrategy::DbCheckThenUpdate,
        PurchaseStrategy::DbGuardedUpdate,
        PurchaseStrategy::DbForUpdate,
        PurchaseStrategy::DbOptimistic,
        PurchaseStrategy::RedisDecr,
        PurchaseStrategy::RedisLuaSyncDb,
        PurchaseStrategy::LuaMq,
    ];

    /// The name used in the API and in the database (`lua_mq`, ...).
    pub fn name(self) -> &'static str {
        match self {
            PurchaseStrategy::DbCheckThenUpdate => "db_check_then_update",
            PurchaseStrategy::DbGuardedUpdate => "db_guarded_update",
            PurchaseStrategy::DbForUpdate => "db_for_update",
            PurchaseStrategy::DbOptimistic => "db_optimistic",
            PurchaseStrategy::RedisDecr => "redis_decr",
            PurchaseStrategy::RedisLuaSyncDb => "redis_lua_sync_db",
            PurchaseStrategy::LuaMq => "lua_mq",
        }
    }

    /// Whether a purchase reserves its unit through the stock-service's script (and so can use
    /// stock buckets).
    pub fn reserves_in_redis(self) -> bool {
        matches!(self, PurchaseStrategy::RedisLuaSyncDb | PurchaseStrategy::LuaMq)
    }

    /// The strategy named `name`, if any.
    pub fn from_name(name: &str) -> Option<PurchaseStrategy> {
        PurchaseStrategy::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// Goods on sale as buyers see them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoodsView {
    /// Id.
    pub goods_id: i64,
    /// Display name.
    pub name: String,
    /// Longer text.
    pub description: String,
    /// Normal price, in cents.
    pub price_cents: i64,
    /// Flash-sale price, in cents.
    pub seckill_price_cents: i64,
    /// Units put on sale.
    pub initial_stock: i32,
    /// Units left: from Redis once warmed up (the live figure), else from PostgreSQL.
    pub stock_left: i64,
    /// When the sale opens.
    pub start_at: DateTime<Utc>,
    /// When the sale closes.
    pub end_at: DateTime<Utc>,
    /// Whether the sale state is in Redis (only then can it be bought).
    pub warmed: bool,
    /// How a purchase takes a unit.
    pub strategy: PurchaseStrategy,
    /// Redis stock buckets.
    pub buckets: u16,
    /// How long a won unit waits for its payment, in seconds.
    pub payment_window_secs: u32,
}

/// What `reserve` decided, atomically, in one Lua script.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReserveOutcome {
    /// One unit is now held for this user and ticket.
    Reserved {
        /// Units left after this one.
        stock_left: i64,
        /// Price to charge, in cents.
        price_cents: i64,
    },
    /// The user already holds (or bought) one: nothing was taken.
    Duplicate,
    /// Nothing left.
    SoldOut,
    /// The sale has not opened yet.
    NotStarted {
        /// When it opens.
        starts_at: DateTime<Utc>,
    },
    /// The sale is over.
    Ended,
}

/// Which holds `release` may undo.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReleaseScope {
    /// Only a reservation no worker has claimed (publish failed; reconciler).
    Unclaimed,
    /// Also a claimed one (a worker gave up on its order).
    AnyHold,
    /// Removes a hold (claimed or not) WITHOUT putting its unit back on sale: for an order the
    /// database stock guard refused, whose unit PostgreSQL does not have.
    Discard,
}

/// What `release` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReleaseOutcome {
    /// The unit went back on sale and the user may buy again.
    Released,
    /// The ticket's hold is claimed by a worker (its order is being written): left alone, since
    /// only unclaimed holds were to go.
    Claimed,
    /// This ticket holds nothing (already released, lost with Redis data, or another ticket's).
    NotHeld,
}

/// What `claim` decided for one (user, ticket). A worker claims a reservation before writing its
/// order, so the reconciler can never release a reservation whose order is being written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClaimOutcome {
    /// The reservation is now claimed by this ticket.
    Claimed,
    /// It was already claimed by this ticket (a redelivered message).
    AlreadyClaimed,
    /// No reservation for this ticket: released by the reconciler, or lost with Redis data.
    Lost,
}

/// One reservation (or purchase) in a sale's buyers table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// The buyer.
    pub user_id: i64,
    /// The ticket it was made for.
    pub ticket: Uuid,
    /// When it was made (Redis clock), in ms since the Unix epoch.
    pub reserved_at_ms: i64,
    /// Whether a worker has claimed it to write its order.
    pub claimed: bool,
}

/// The sale state of one goods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockLevel {
    /// The goods.
    pub goods_id: i64,
    /// Units put on sale.
    pub initial_stock: i64,
    /// Units left in PostgreSQL (decremented by order workers).
    pub db_stock: i64,
    /// Units left in Redis, or `None` when the sale state is not in Redis.
    pub redis_stock: Option<i64>,
    /// Reservations and purchases held in Redis.
    pub holds: i64,
}

/// What `rewarm` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RewarmOutcome {
    /// The sale state was missing and has been rebuilt.
    Rebuilt {
        /// Stock now in Redis.
        stock: i64,
    },
    /// The sale state was present: nothing changed.
    Present,
    /// The goods was never warmed up: there is nothing to restore.
    NeverWarmed,
}

/// Why a stock operation failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum StockError {
    /// No goods with this id is on sale.
    #[error("unknown goods {0}")]
    UnknownGoods(i64),
    /// The goods exists but its sale state is not in Redis (warm it up first).
    #[error("goods {0} is not warmed up")]
    NotWarmed(i64),
    /// The request is not valid.
    #[error("invalid: {0}")]
    Invalid(String),
    /// The call carries no valid identity token.
    #[error("no valid caller identity")]
    Unauthenticated,
    /// The caller may not do this.
    #[error("not allowed")]
    Forbidden,
    /// Redis or PostgreSQL failed (details in the service's logs).
    #[error("stock service unavailable: {0}")]
    Unavailable(String),
}

/// The goods catalogue and the sale state. Who may call what is decided from the call's identity
/// token: the catalogue is public, creating and warming sales is for admins, and the sale-state
/// operations are internal (services only: order-service, the workers, the reconciler).
#[rpc::service]
pub trait StockService {
    /// Puts goods on sale. Admin only.
    async fn create_goods(&self, goods: NewGoods) -> Result<GoodsView, StockError>;
    /// Every goods on sale. Anyone.
    #[rpc(idempotent)]
    async fn list_goods(&self) -> Result<Vec<GoodsView>, StockError>;
    /// One goods. Anyone.
    #[rpc(idempotent)]
    async fn get_goods(&self, goods_id: i64) -> Result<GoodsView, StockError>;
    /// Loads stock, window and price into Redis (again: resets the sale state from PostgreSQL). Admin only.
    #[rpc(idempotent)]
    async fn warm_up(&self, goods_id: i64) -> Result<GoodsView, StockError>;
    /// The purchase gate: one Lua script (window, dedupe, stock, decrement, buyer). Idempotent
    /// per ticket: the same ticket reserved twice answers `Reserved` twice and takes one unit.
    /// Services only.
    #[rpc(idempotent, hash_key = goods_id)]
    async fn reserve(&self, goods_id: i64, user_id: i64, ticket: Uuid) -> Result<ReserveOutcome, StockError>;
    /// Compensation: gives a held unit back. Idempotent. Services only.
    #[rpc(idempotent, hash_key = goods_id)]
    async fn release(
        &self,
        goods_id: i64,
        user_id: i64,
        ticket: Uuid,
        scope: ReleaseScope,
    ) -> Result<ReleaseOutcome, StockError>;
    /// Claims reservations for order writing, one outcome per (user, ticket), in order. Services only.
    #[rpc(idempotent, hash_key = goods_id)]
    async fn claim(&self, goods_id: i64, holds: Vec<(i64, Uuid)>) -> Result<Vec<ClaimOutcome>, StockError>;
    /// Stock in PostgreSQL and Redis, and the holds. Admins and services.
    #[rpc(idempotent)]
    async fn stock_level(&self, goods_id: i64) -> Result<StockLevel, StockError>;
    /// Unclaimed reservations older than `older_than_ms`, by Redis's clock (the one that stamped
    /// them: no other host's clock is compared with it). Services only.
    #[rpc(idempotent)]
    async fn stale_reservations(&self, goods_id: i64, older_than_ms: i64) -> Result<Vec<Reservation>, StockError>;
    /// Rebuilds a sale state that Redis lost, from PostgreSQL: stock = the database stock
    /// (initial - orders), each user with an order a (claimed) buyer. Does nothing if the state is
    /// present, or if the goods was never warmed up. Services only.
    #[rpc(idempotent)]
    async fn rewarm(&self, goods_id: i64) -> Result<RewarmOutcome, StockError>;
    /// Recomputes a sale state Redis may have restored incompletely (from its append-only file,
    /// missing its last writes): PostgreSQL's orders are merged into the buyers, live
    /// reservations kept, and the stock set to what nobody holds. Services only.
    #[rpc(idempotent)]
    async fn resync(&self, goods_id: i64) -> Result<RewarmOutcome, StockError>;
}
