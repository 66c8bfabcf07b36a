//! order-service: placing orders (reserve + publish) and reading their outcome.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An accepted purchase attempt: the broker has the order message; its outcome comes later.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    /// The ticket id (also the message id on the broker).
    pub ticket: Uuid,
    /// The buyer.
    pub user_id: i64,
    /// The goods.
    pub goods_id: i64,
}

/// Where a user's purchase of a goods stands. (Externally tagged: postcard, the default codec,
/// cannot carry internally tagged enums.)
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderResult {
    /// Accepted; the order is being written.
    Queued {
        /// The ticket.
        ticket: Uuid,
    },
    /// The order exists.
    Success {
        /// The order's id.
        order_id: i64,
    },
    /// The attempt failed and its unit was released.
    Failed {
        /// Why.
        reason: String,
    },
    /// This user has no purchase of this goods and the sale is sold out.
    SoldOut,
    /// This user has no purchase of this goods.
    None,
}

/// An order as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderView {
    /// Snowflake id.
    pub id: i64,
    /// The buyer.
    pub user_id: i64,
    /// The goods.
    pub goods_id: i64,
    /// The ticket it came from.
    pub ticket: Uuid,
    /// Price paid, in cents.
    pub price_cents: i64,
    /// Status (`created`).
    pub status: String,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}

/// The order message on the broker (JSON; its AMQP message id is the ticket id).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderMessage {
    /// The ticket.
    pub ticket: Uuid,
    /// The buyer.
    pub user_id: i64,
    /// The goods.
    pub goods_id: i64,
    /// Price to charge, in cents.
    pub price_cents: i64,
}

/// What the orders side knows of one goods, for the audit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderAudit {
    /// Orders written.
    pub orders: i64,
    /// Distinct buyers among them (equal to `orders` unless someone bought twice).
    pub buyers: i64,
    /// Accepted tickets whose outcome is not known yet.
    pub pending_tickets: i64,
    /// Accepted tickets that ended as an explicit failure.
    pub failed_tickets: i64,
}

/// Why an order operation failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum OrderError {
    /// Nothing left.
    #[error("sold out")]
    SoldOut,
    /// This user already holds or bought one.
    #[error("already ordered")]
    Duplicate,
    /// The sale has not opened.
    #[error("sale not started")]
    NotStarted {
        /// When it opens.
        starts_at: DateTime<Utc>,
    },
    /// The sale is over.
    #[error("sale ended")]
    Ended,
    /// No such goods on sale (or not warmed up).
    #[error("unknown goods {0}")]
    UnknownGoods(i64),
    /// No such order.
    #[error("no such order")]
    NotFound,
    /// The call carries no valid identity token.
    #[error("no valid caller identity")]
    Unauthenticated,
    /// The caller may not do this.
    #[error("not allowed")]
    Forbidden,
    /// A dependency failed; nothing was accepted and any unit taken was given back. Retry later.
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
}

/// Placing orders and reading their outcome. The buyer is the caller, as the call's identity
/// token says: nobody can place or read for another user.
#[rpc::service]
pub trait OrderService {
    /// Reserves a unit for the calling user under `ticket` (chosen by the caller, fresh per
    /// purchase attempt), then hands the order to the broker (publisher-confirmed). Only a
    /// confirmed message yields a ticket; otherwise the unit is released and `Unavailable`
    /// returned. Idempotent per ticket, so a call cut off with its node can be repeated on
    /// another one: the same ticket never takes a second unit nor makes a second order. Users only.
    #[rpc(idempotent)]
    async fn place(&self, goods_id: i64, ticket: Uuid) -> Result<Ticket, OrderError>;
    /// Where the calling user's purchase of this goods stands. Users only.
    #[rpc(idempotent)]
    async fn result(&self, goods_id: i64) -> Result<OrderResult, OrderError>;
    /// An order by id: the buyer's own (another user's is `NotFound`), or any for an admin.
    #[rpc(idempotent)]
    async fn get_order(&self, order_id: i64) -> Result<OrderView, OrderError>;
    /// Order counts of a goods, for the audit. Admins and services.
    #[rpc(idempotent)]
    async fn audit(&self, goods_id: i64) -> Result<OrderAudit, OrderError>;
}
