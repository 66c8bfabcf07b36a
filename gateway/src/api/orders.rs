//! Orders, their payments, and the payment provider's callbacks.

use chrono::{DateTime, Utc};
use contracts::order::{CallbackOutcome, OrderPage, OrderView, PaymentView};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::ids;

/// An order.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct OrderBody {
    /// Snowflake id, as a string: ids pass 2^53, beyond which a JavaScript number loses digits.
    #[serde(serialize_with = "ids::string")]
    #[schema(value_type = String, example = "290467863829413888")]
    pub id: i64,
    /// Buyer.
    pub user_id: i64,
    /// Goods.
    pub goods_id: i64,
    /// Ticket it came from.
    pub ticket: Uuid,
    /// Price to pay, in cents.
    pub price_cents: i64,
    /// `unpaid` (its unit is held until `expires_at`), `paid` or `cancelled`.
    pub status: &'static str,
    /// Written at.
    pub created_at: DateTime<Utc>,
    /// When its payment window closes: unpaid by then, it is cancelled and its unit put back on
    /// sale.
    pub expires_at: DateTime<Utc>,
    /// When it was paid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<DateTime<Utc>>,
    /// When it was cancelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancelled_at: Option<DateTime<Utc>>,
    /// `timeout` or `buyer`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<&'static str>,
}

impl From<OrderView> for OrderBody {
    fn from(order: OrderView) -> OrderBody {
        OrderBody {
            id: order.id,
            user_id: order.user_id,
            goods_id: order.goods_id,
            ticket: order.ticket,
            price_cents: order.price_cents,
            status: order.status.name(),
            created_at: order.created_at,
            expires_at: order.expires_at,
            paid_at: order.paid_at,
            cancelled_at: order.cancelled_at,
            cancel_reason: order.cancel_reason.map(|reason| reason.name()),
        }
    }
}

/// A page of the caller's orders, newest first.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct OrderListBody {
    /// The orders.
    pub orders: Vec<OrderBody>,
    /// Pass as `before` for the next page; absent on the last one (a string: order ids pass 2^53).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ids::optional")]
    #[schema(value_type = Option<String>)]
    pub next_before: Option<i64>,
}

impl From<OrderPage> for OrderListBody {
    fn from(page: OrderPage) -> OrderListBody {
        OrderListBody { orders: page.orders.into_iter().map(OrderBody::from).collect(), next_before: page.next_before }
    }
}

/// The query of the order list.
#[derive(Clone, Debug, Deserialize, utoipa::IntoParams)]
pub struct OrderListQuery {
    /// Orders with ids below this one (the previous page's `next_before`).
    pub before: Option<i64>,
    /// At most this many, 1 to 100 (default 20).
    pub limit: Option<u32>,
}

/// How to pay (optional body of the pay request).
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
pub struct PayRequest {
    /// For the sandbox provider only (a simulator; a real provider refuses this): the outcome
    /// and when its callback comes.
    #[serde(default)]
    pub sandbox: Option<SandboxBody>,
}

/// What the sandbox provider should do with this payment.
#[derive(Clone, Copy, Debug, Deserialize, ToSchema)]
pub struct SandboxBody {
    /// Whether the payment succeeds (default true).
    #[serde(default = "yes")]
    pub succeed: bool,
    /// Milliseconds until the provider's callback (default 300; past the window: a late payment).
    #[serde(default = "three_hundred")]
    pub callback_after_ms: u64,
}

fn yes() -> bool {
    true
}

fn three_hundred() -> u64 {
    300
}

/// A payment of an order.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PaymentBody {
    /// Our id of the payment.
    pub payment_id: i64,
    /// The order it pays (a string: order ids pass 2^53).
    #[serde(serialize_with = "ids::string")]
    #[schema(value_type = String)]
    pub order_id: i64,
    /// Amount, in cents.
    pub amount_cents: i64,
    /// `pending` (the provider calls back; poll the order), `succeeded`, `failed`, `refunding`
    /// or `refunded` (the money came when the order could no longer be paid).
    pub status: String,
    /// `sandbox` (the simulator) or a real provider's name.
    pub provider: String,
    /// The provider's id of the payment intent.
    pub provider_ref: Option<String>,
}

impl From<PaymentView> for PaymentBody {
    fn from(payment: PaymentView) -> PaymentBody {
        PaymentBody {
            payment_id: payment.payment_id,
            order_id: payment.order_id,
            amount_cents: payment.amount_cents,
            status: payment.status,
            provider: payment.provider,
            provider_ref: payment.provider_ref,
        }
    }
}

/// What a provider callback did.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CallbackBody {
    /// `paid`, `failed`, `refunded` (too late: the money goes back) or `duplicate`.
    pub outcome: &'static str,
}

impl From<CallbackOutcome> for CallbackBody {
    fn from(outcome: CallbackOutcome) -> CallbackBody {
        let outcome = match outcome {
            CallbackOutcome::Paid => "paid",
            CallbackOutcome::Failed => "failed",
            CallbackOutcome::Refunded => "refunded",
            CallbackOutcome::Duplicate => "duplicate",
        };
        CallbackBody { outcome }
    }
}
