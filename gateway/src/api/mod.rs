//! The HTTP API's request and response bodies (what `/openapi.json` describes). They are the
//! gateway's own types, converted from the RPC contracts, so the public API can stay stable
//! while services change.
//!
//! - [`orders`]: orders, their payments and the provider's callbacks.

mod orders;

pub use self::orders::*;

use chrono::{DateTime, Utc};
use contracts::Role;
use contracts::order::OrderResult;
use contracts::stock::GoodsView;
use contracts::user::UserView;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// Ids that may exceed 2^53 (snowflake order ids) go out as JSON strings: a browser parsing
/// `290467863829413888` as a number gets `290467863829413900`.
pub mod ids {
    use serde::Serializer;

    /// An id as a string.
    pub fn string<S: Serializer>(id: &i64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(id)
    }

    /// An optional id as a string (or null).
    pub fn optional<S: Serializer>(id: &Option<i64>, serializer: S) -> Result<S::Ok, S::Error> {
        match id {
            Some(id) => serializer.collect_str(id),
            None => serializer.serialize_none(),
        }
    }
}

/// Username and password.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct CredentialsBody {
    /// 3 to 64 characters: letters, digits, `_ - .`
    pub username: String,
    /// 8 to 128 characters.
    pub password: String,
}

/// A user.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct UserBody {
    /// Id.
    pub id: i64,
    /// Username.
    pub username: String,
    /// `user` or `admin`.
    pub role: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl From<UserView> for UserBody {
    fn from(user: UserView) -> Self {
        UserBody {
            id: user.id,
            username: user.username,
            role: role_name(user.role).into(),
            created_at: user.created_at,
        }
    }
}

fn role_name(role: Role) -> &'static str {
    role.as_str()
}

/// A session.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SessionBody {
    /// Bearer JWT.
    pub token: String,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
    /// Who it is for.
    pub user: UserBody,
}

/// A goods on sale.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct GoodsBody {
    /// Id.
    pub goods_id: i64,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Normal price, in cents.
    pub price_cents: i64,
    /// Sale price, in cents.
    pub seckill_price_cents: i64,
    /// Units put on sale.
    pub initial_stock: i32,
    /// Units left (live once warmed up; cached for a second).
    pub stock_left: i64,
    /// Sale opens.
    pub start_at: DateTime<Utc>,
    /// Sale closes.
    pub end_at: DateTime<Utc>,
    /// `upcoming`, `open`, `sold_out`, `ended`, or `not_ready` (not warmed up).
    pub status: &'static str,
}

impl GoodsBody {
    /// The body of a goods as of `now`.
    pub fn new(goods: &GoodsView, now: DateTime<Utc>) -> GoodsBody {
        let status = if !goods.warmed {
            "not_ready"
        } else if now < goods.start_at {
            "upcoming"
        } else if now >= goods.end_at {
            "ended"
        } else if goods.stock_left <= 0 {
            "sold_out"
        } else {
            "open"
        };
        GoodsBody {
            goods_id: goods.goods_id,
            name: goods.name.clone(),
            description: goods.description.clone(),
            price_cents: goods.price_cents,
            seckill_price_cents: goods.seckill_price_cents,
            initial_stock: goods.initial_stock,
            stock_left: goods.stock_left,
            start_at: goods.start_at,
            end_at: goods.end_at,
            status,
        }
    }
}

/// The goods on sale, with the server's clock (clients count down with it, not their own).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct GoodsListBody {
    /// Server time.
    pub server_time: DateTime<Utc>,
    /// The goods.
    pub goods: Vec<GoodsBody>,
}

/// One goods, with the server's clock.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct GoodsDetailBody {
    /// Server time.
    pub server_time: DateTime<Utc>,
    /// The goods.
    pub goods: GoodsBody,
}

/// The captcha answer, in exchange for a seckill path.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct PathRequest {
    /// The characters shown in the captcha image.
    pub captcha: String,
}

/// A hidden seckill path: put it in the order URL, once, within a minute.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PathBody {
    /// The path token.
    pub path: Uuid,
    /// Seconds it stays valid.
    pub expires_in: u64,
}

/// An accepted order attempt.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TicketBody {
    /// The ticket.
    pub ticket: Uuid,
    /// Always `queued`: poll the result endpoint.
    pub status: &'static str,
}

/// Where the caller's purchase stands.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ResultBody {
    /// `queued`, `success`, `failed`, `sold_out`, `cancelled` (the order was not paid in time, or
    /// its buyer cancelled it: buy again) or `none`.
    pub status: &'static str,
    /// The order, on success or cancellation (a string: order ids pass 2^53).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ids::optional")]
    #[schema(value_type = Option<String>, example = "290467863829413888")]
    pub order_id: Option<i64>,
    /// Why, on failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The ticket, while queued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket: Option<Uuid>,
}

impl From<OrderResult> for ResultBody {
    fn from(result: OrderResult) -> Self {
        let body = |status| ResultBody { status, order_id: None, reason: None, ticket: None };
        match result {
            OrderResult::Queued { ticket } => ResultBody { ticket: Some(ticket), ..body("queued") },
            OrderResult::Success { order_id } => ResultBody { order_id: Some(order_id), ..body("success") },
            OrderResult::Failed { reason } => ResultBody { reason: Some(reason), ..body("failed") },
            OrderResult::SoldOut => body("sold_out"),
            OrderResult::None => body("none"),
            OrderResult::Cancelled { order_id } => ResultBody { order_id: Some(order_id), ..body("cancelled") },
        }
    }
}

/// Goods to put on sale.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct NewGoodsBody {
    /// Name.
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Normal price, in cents.
    pub price_cents: i64,
    /// Sale price, in cents.
    pub seckill_price_cents: i64,
    /// Units for sale.
    pub stock: i32,
    /// Sale opens (RFC 3339).
    pub start_at: DateTime<Utc>,
    /// Sale closes (RFC 3339).
    pub end_at: DateTime<Utc>,
    /// How a purchase takes a unit: `lua_mq` (the default, the production path), or one of the
    /// strategies kept for comparison (`db_check_then_update`, `db_guarded_update`,
    /// `db_for_update`, `db_optimistic`, `redis_decr`, `redis_lua_sync_db`; see
    /// `order-service/src/strategy/`). Fixed at creation.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "lua_mq")]
    pub strategy: Option<contracts::stock::PurchaseStrategy>,
    /// Redis stock buckets the units are split into at warm-up, 1 (the default) to 64: more than
    /// one spreads a hot goods over Redis Cluster slots (only with `lua_mq` or
    /// `redis_lua_sync_db`). Fixed at creation.
    #[serde(default)]
    #[schema(example = 1)]
    pub buckets: Option<u16>,
    /// How long a won unit waits for its payment, in seconds (1 to 86,400; default 900): an
    /// order unpaid by then is cancelled and its unit put back on sale. Fixed at creation.
    #[serde(default)]
    #[schema(example = 900)]
    pub payment_window_secs: Option<u32>,
}

/// Load-test users to create.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct BulkUsersBody {
    /// Usernames are `{prefix}{n}`.
    pub prefix: String,
    /// How many (1 to 20,000 per call; ask again for more).
    pub count: u32,
}

/// Created load-test users with their tokens.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BulkUsersCreated {
    /// The users.
    pub users: Vec<IssuedUserBody>,
}

/// One load-test user.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct IssuedUserBody {
    /// Id.
    pub id: i64,
    /// Username.
    pub username: String,
    /// Bearer JWT.
    pub token: String,
}

/// Live figures of one sale.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct StatsBody {
    /// Goods.
    pub goods_id: i64,
    /// Units put on sale.
    pub initial_stock: i64,
    /// Units left in PostgreSQL.
    pub db_stock: i64,
    /// Units left in Redis (absent when not warmed up).
    pub redis_stock: Option<i64>,
    /// Reservations and purchases held in Redis.
    pub holds: i64,
    /// Live orders (unpaid + paid).
    pub orders: i64,
    /// Live orders waiting for their payment.
    pub unpaid: i64,
    /// Paid orders.
    pub paid: i64,
    /// Cancelled orders.
    pub cancelled: i64,
    /// Accepted tickets not settled yet.
    pub pending_tickets: i64,
    /// Accepted tickets that ended in failure.
    pub failed_tickets: i64,
}

/// The oversell audit of one goods: the invariants listed in `docs/data.md` ("What the audit
/// checks").
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct GoodsAuditBody {
    /// Goods.
    pub goods_id: i64,
    /// Name.
    pub name: String,
    /// Units put on sale.
    pub initial_stock: i64,
    /// Units left in PostgreSQL.
    pub db_stock: i64,
    /// Units left in Redis.
    pub redis_stock: Option<i64>,
    /// Holds in Redis.
    pub holds: i64,
    /// Live orders (unpaid + paid).
    pub orders: i64,
    /// Live orders waiting for their payment.
    pub unpaid: i64,
    /// Paid orders.
    pub paid: i64,
    /// Cancelled orders (their units back on sale).
    pub cancelled: i64,
    /// Late payments not refunded yet.
    pub refunds_pending: i64,
    /// Orders beyond one per buyer.
    pub duplicates: i64,
    /// Orders beyond the initial stock.
    pub oversold: i64,
    /// Accepted tickets not settled yet.
    pub pending_tickets: i64,
    /// Whether every accepted ticket is settled (the Redis invariant only holds then).
    pub drained: bool,
    /// Broken invariants, in words; empty when all hold.
    pub violations: Vec<String>,
}

/// The audit report.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AuditBody {
    /// Whether every invariant holds for every goods.
    pub ok: bool,
    /// Per goods.
    pub goods: Vec<GoodsAuditBody>,
}

/// Liveness.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct HealthBody {
    /// `ok`.
    pub status: &'static str,
    /// Whether the captcha test mode is on (never in production).
    pub captcha_test_mode: bool,
    /// The version of the live rules this gateway follows (0: configuration only).
    pub rules_version: u64,
}

/// Readiness of each dependency.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ReadyBody {
    /// Whether everything is reachable.
    pub ready: bool,
    /// Per dependency: `ok` or what is wrong.
    pub checks: std::collections::BTreeMap<String, String>,
}

/// The blacklist.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BlacklistBody {
    /// Every current entry, soonest expiry first.
    pub entries: Vec<BlacklistEntryBody>,
}

/// One blacklisted caller.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BlacklistEntryBody {
    /// `user` or `ip`.
    pub kind: &'static str,
    /// The user id or the IP address (a string either way).
    pub id: String,
    /// When the entry expires.
    pub until: DateTime<Utc>,
}

impl BlacklistEntryBody {
    pub(crate) fn new(entry: &crate::defences::Entry, until_ms: i64) -> BlacklistEntryBody {
        let (kind, id) = match entry {
            crate::defences::Entry::User(id) => ("user", id.to_string()),
            crate::defences::Entry::Ip(ip) => ("ip", ip.clone()),
        };
        BlacklistEntryBody { kind, id, until: DateTime::from_timestamp_millis(until_ms).unwrap_or_default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_id_above_2_pow_53_survives_a_javascript_style_json_round_trip() {
        let id = (1i64 << 53) + 1; // 9007199254740993: the first integer an f64 cannot hold
        let now = Utc::now();
        let order = OrderBody::from(contracts::order::OrderView {
            id,
            user_id: 7,
            goods_id: 3,
            ticket: Uuid::nil(),
            price_cents: 100,
            status: contracts::order::OrderStatus::Unpaid,
            created_at: now,
            expires_at: now,
            paid_at: None,
            cancelled_at: None,
            cancel_reason: None,
        });
        let json = serde_json::to_string(&order).unwrap();
        // A browser parses numbers as f64: an id sent as a number would come back rounded.
        assert_ne!((id as f64) as i64, id);
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        let as_js: i64 = parsed["id"].as_str().expect("the id is a string").parse().unwrap();
        assert_eq!(as_js, id);
        let result = ResultBody::from(OrderResult::Success { order_id: id });
        let parsed: serde_json::Value = serde_json::to_value(&result).unwrap();
        assert_eq!(parsed["order_id"], serde_json::Value::String(id.to_string()));
    }
}
