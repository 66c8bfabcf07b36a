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
    /// The order was cancelled (unpaid in time, or by the buyer): its unit is back on sale and
    /// the buyer may buy again.
    Cancelled {
        /// The cancelled order's id.
        order_id: i64,
    },
}

/// Where an order is in its lifecycle: `unpaid → paid`, `unpaid → cancelled`. A payment that
/// arrives for a cancelled order is refunded; the order stays cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Written; its unit is held until the payment window closes.
    Unpaid,
    /// Paid in time.
    Paid,
    /// Cancelled; its unit went back on sale.
    Cancelled,
}

impl OrderStatus {
    /// The name in the API and in the database.
    pub fn name(self) -> &'static str {
        match self {
            OrderStatus::Unpaid => "unpaid",
            OrderStatus::Paid => "paid",
            OrderStatus::Cancelled => "cancelled",
        }
    }

    /// The status named `name`, if any.
    pub fn from_name(name: &str) -> Option<OrderStatus> {
        [OrderStatus::Unpaid, OrderStatus::Paid, OrderStatus::Cancelled].into_iter().find(|s| s.name() == name)
    }
}

/// Why an order was cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelReason {
    /// Its payment window closed unpaid.
    Timeout,
    /// Its buyer cancelled it.
    Buyer,
}

impl CancelReason {
    /// The name in the API and in the database.
    pub fn name(self) -> &'static str {
        match self {
            CancelReason::Timeout => "timeout",
            CancelReason::Buyer => "buyer",
        }
    }
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
    /// Price to pay, in cents.
    pub price_cents: i64,
    /// Where it is in its lifecycle.
    pub status: OrderStatus,
    /// When it was written.
    pub created_at: DateTime<Utc>,
    /// When its payment window closes.
    pub expires_at: DateTime<Utc>,
    /// When it was paid.
    pub paid_at: Option<DateTime<Utc>>,
    /// When it was cancelled.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// Why it was cancelled.
    pub cancel_reason: Option<CancelReason>,
}

/// One page of a buyer's orders, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPage {
    /// The orders.
    pub orders: Vec<OrderView>,
    /// Pass as `before` for the next page; `None` on the last one.
    pub next_before: Option<i64>,
}

/// The most orders one page holds.
pub const MAX_PAGE: u32 = 100;

/// The timer of the payment window of orders written together: published when they are written,
/// dead-lettered by the broker when the window closes, and consumed by the workers, which cancel
/// each order still unpaid (JSON). The orders of one goods written in one transaction share their
/// `expires_at` (PostgreSQL's `now()` is the transaction's), so a batch of a thousand is one
/// timer, not a thousand.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpiryMessage {
    /// The orders.
    pub order_ids: Vec<i64>,
    /// Their goods.
    pub goods_id: i64,
    /// When their window closes.
    pub expires_at: DateTime<Utc>,
}

/// A payment of an order through the payment provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentView {
    /// Our id of the payment.
    pub payment_id: i64,
    /// The order it pays.
    pub order_id: i64,
    /// The amount, in cents.
    pub amount_cents: i64,
    /// `pending` (the provider has it; its callback comes), `succeeded`, `failed`, `refunding`
    /// or `refunded` (it came after the order could no longer be paid).
    pub status: String,
    /// The provider (`sandbox`: the simulator).
    pub provider: String,
    /// The provider's id of the payment intent.
    pub provider_ref: Option<String>,
}

/// What the sandbox payment provider (a simulator, development only) should do with one
/// payment. A real provider refuses these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxInstructions {
    /// Whether the payment succeeds.
    pub succeed: bool,
    /// How long after the intent its callback comes, in ms (beyond the payment window: a late
    /// payment).
    pub callback_after_ms: u64,
}

/// The header a payment provider's callback carries its signature in:
/// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
pub const SIGNATURE_HEADER: &str = "Seckill-Signature";

/// What a verified provider callback did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallbackOutcome {
    /// The order is paid.
    Paid,
    /// The payment failed; the order is still unpaid and may be paid again in its window.
    Failed,
    /// The money came when the order could no longer be paid (cancelled, expired, or paid by
    /// another payment): refunded; the order is as it was.
    Refunded,
    /// Seen before: nothing changed.
    Duplicate,
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
    /// Live orders (unpaid + paid): the units sold or held for a payment.
    pub orders: i64,
    /// Distinct buyers among them (equal to `orders` unless someone bought twice).
    pub buyers: i64,
    /// Live orders waiting for their payment.
    pub unpaid: i64,
    /// Paid orders.
    pub paid: i64,
    /// Cancelled orders (their units back in PostgreSQL's stock).
    pub cancelled: i64,
    /// Cancelled orders whose unit is not back in the Redis sale state yet.
    pub returns_pending: i64,
    /// Payments that came for an order they could not pay and are not refunded yet.
    pub refunds_pending: i64,
    /// Cancelled orders that kept a successful payment: must be 0 (a cancelled order is never
    /// also paid).
    pub paid_and_cancelled: i64,
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
    /// The order is paid: it can be neither paid again nor cancelled.
    #[error("the order is paid")]
    AlreadyPaid,
    /// The order is cancelled: it can no longer be paid.
    #[error("the order is cancelled")]
    AlreadyCancelled,
    /// The order's payment window closed.
    #[error("the payment window closed")]
    PaymentWindowClosed,
    /// This Idempotency-Key was used for another order.
    #[error("the idempotency key was used for another request")]
    IdempotencyKeyReused,
    /// A provider callback whose signature does not verify (or is too old).
    #[error("bad signature")]
    BadSignature,
    /// The request is not valid.
    #[error("invalid: {0}")]
    Invalid(String),
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
    /// The calling user's orders, newest first: at most `limit` (1 to [`MAX_PAGE`]) with ids
    /// below `before` (all when `None`). Users only.
    #[rpc(idempotent)]
    async fn list_orders(&self, before: Option<i64>, limit: u32) -> Result<OrderPage, OrderError>;
    /// Starts paying the calling user's unpaid order through the payment provider. The same
    /// `idempotency_key` (the buyer's, per user) is the same payment: asked again it answers the
    /// same payment and never charges twice. `sandbox`: what the sandbox provider should do
    /// (refused by a real one). Users only.
    #[rpc(idempotent)]
    async fn pay(
        &self,
        order_id: i64,
        idempotency_key: String,
        sandbox: Option<SandboxInstructions>,
    ) -> Result<PaymentView, OrderError>;
    /// Cancels the calling user's unpaid order: its unit goes back on sale (PostgreSQL and
    /// Redis) and the buyer may buy again. Cancelling a cancelled order answers it as it is.
    /// Users only.
    #[rpc(idempotent)]
    async fn cancel(&self, order_id: i64) -> Result<OrderView, OrderError>;
    /// A payment provider's callback, as received (the raw body and its signature header):
    /// order-service verifies the signature (HMAC) before anything else. Services only (the
    /// gateway relays its webhook endpoint).
    #[rpc(idempotent)]
    async fn payment_callback(&self, payload: Vec<u8>, signature: String) -> Result<CallbackOutcome, OrderError>;
}
