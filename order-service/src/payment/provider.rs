//! The payment provider interface, shaped like a real one: a payment intent is created for an
//! amount under an idempotency key (the same key is the same intent, never a second charge);
//! the provider reports the outcome later by calling our webhook with a signed [`ProviderEvent`];
//! a captured payment can be refunded (idempotently, per payment).

use std::sync::Arc;

use contracts::order::SandboxInstructions;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

/// A payment to ask the provider for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntentRequest {
    /// Our id of the payment (the provider echoes it in its events).
    pub payment_id: i64,
    /// The order it pays.
    pub order_id: i64,
    /// Amount, in cents.
    pub amount_cents: i64,
    /// Sent along: the provider answers the same intent for the same key.
    pub idempotency_key: String,
    /// Test instructions, for the sandbox only.
    pub sandbox: Option<SandboxInstructions>,
}

/// Why the provider did not do what was asked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// It refused the request (a real provider refuses sandbox instructions, say).
    #[error("refused by the payment provider: {0}")]
    Refused(String),
    /// It did not answer; ask again with the same idempotency key.
    #[error("payment provider unavailable: {0}")]
    Unavailable(String),
}

/// What a provider's callback says (the webhook's JSON body).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderEvent {
    /// The event's id.
    pub id: String,
    /// `payment.succeeded` or `payment.failed`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The provider's id of the payment intent.
    pub intent: String,
    /// Our id of the payment.
    pub payment_id: i64,
    /// Amount, in cents.
    pub amount_cents: i64,
}

/// The event types.
pub const PAYMENT_SUCCEEDED: &str = "payment.succeeded";
/// See [`PAYMENT_SUCCEEDED`].
pub const PAYMENT_FAILED: &str = "payment.failed";

/// A payment provider.
pub trait PaymentProvider: Send + Sync + std::fmt::Debug {
    /// Its name, as stored with each payment.
    fn name(&self) -> &'static str;
    /// Creates (or, for a known idempotency key, finds) a payment intent; returns its id.
    fn create_intent(&self, request: IntentRequest) -> BoxFuture<'_, Result<String, ProviderError>>;
    /// Refunds a captured intent; `idempotency_key` makes a repeat the same refund. Returns
    /// the refund's id.
    fn refund(&self, intent: &str, idempotency_key: &str) -> BoxFuture<'_, Result<String, ProviderError>>;
}

/// No provider configured: every payment is refused, clearly.
#[derive(Debug)]
pub struct NoProvider;

impl PaymentProvider for NoProvider {
    fn name(&self) -> &'static str {
        "none"
    }

    fn create_intent(&self, _: IntentRequest) -> BoxFuture<'_, Result<String, ProviderError>> {
        Box::pin(async { Err(ProviderError::Unavailable("no payment provider is configured".into())) })
    }

    fn refund(&self, _: &str, _: &str) -> BoxFuture<'_, Result<String, ProviderError>> {
        Box::pin(async { Err(ProviderError::Unavailable("no payment provider is configured".into())) })
    }
}

/// A shared provider.
pub type Provider = Arc<dyn PaymentProvider>;
