//! Paying an order through a payment provider, and the provider's callbacks.
//!
//! - [`provider`]: the interface ([`PaymentProvider`]) and the events a provider sends.
//! - [`sandbox`]: the sandbox provider, a simulator (development only, by configuration).
//! - [`signature`]: the callbacks' HMAC signature.
//!
//! `pay` creates a payment row (one per buyer and `Idempotency-Key`) and the provider's intent;
//! the provider's signed callback then settles it. A success pays the order with one
//! conditional UPDATE (`WHERE status = 'unpaid' AND expires_at > now()`), the same row a
//! cancellation changes with `WHERE status = 'unpaid'`: of a payment and a cancellation racing,
//! exactly one wins. A success that loses (the order was cancelled, its window closed, or
//! another payment paid it) is refunded through the provider and the order stays as it is: a
//! late payment never resurrects an order whose unit went back on sale.

pub mod provider;
pub mod sandbox;
pub mod signature;

use std::time::Duration;

use contracts::order::{CallbackOutcome, OrderError, OrderStatus, PaymentView, SandboxInstructions};
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;

use self::provider::{PAYMENT_FAILED, PAYMENT_SUCCEEDED, ProviderError, ProviderEvent};
pub use self::provider::{PaymentProvider, Provider};
use crate::store;

/// The provider the settings choose, after the secret policy allowed them.
pub fn provider_from(settings: &crate::settings::PaymentSettings) -> Provider {
    match settings.provider {
        crate::settings::ProviderKind::None => std::sync::Arc::new(provider::NoProvider),
        crate::settings::ProviderKind::Sandbox => std::sync::Arc::new(sandbox::Sandbox(std::sync::Arc::new(
            sandbox::SandboxProvider::new(settings.sandbox.clone(), settings.webhook_secret.clone()),
        ))),
    }
}

/// Adds the payment settings' problems to `policy`: the built-in webhook secret, and the
/// sandbox, are for development only.
pub fn check(settings: &crate::settings::PaymentSettings, policy: &mut platform::env::SecretPolicy) {
    policy.secret(
        "SECKILL_PAYMENT__WEBHOOK_SECRET",
        &settings.webhook_secret,
        crate::settings::DEVELOPMENT_WEBHOOK_SECRET,
    );
    policy.shortcut(
        settings.provider == crate::settings::ProviderKind::Sandbox,
        "SECKILL_PAYMENT__PROVIDER=sandbox takes payments with a simulator (no money moves); configure a real provider",
    );
}

/// Longest `Idempotency-Key` accepted (the column's CHECK).
const MAX_KEY_LEN: usize = 255;

/// Payments of orders.
#[derive(Clone, Debug)]
pub struct Payments {
    pool: PgPool,
    provider: Provider,
    webhook_secret: SecretString,
}

#[derive(sqlx::FromRow)]
struct PaymentRow {
    id: i64,
    order_id: i64,
    amount_cents: i64,
    status: String,
    provider: String,
    provider_ref: Option<String>,
}

impl From<PaymentRow> for PaymentView {
    fn from(row: PaymentRow) -> PaymentView {
        PaymentView {
            payment_id: row.id,
            order_id: row.order_id,
            amount_cents: row.amount_cents,
            status: row.status,
            provider: row.provider,
            provider_ref: row.provider_ref,
        }
    }
}

/// The columns of a [`PaymentRow`], completed with a `WHERE` literal: a static string.
macro_rules! select_payment {
    ($rest:literal) => {
        concat!("SELECT id, order_id, amount_cents, status, provider, provider_ref FROM payments ", $rest)
    };
}

fn database(err: sqlx::Error) -> OrderError {
    crate::service::database_failure(err)
}

fn provider_failure(err: ProviderError) -> OrderError {
    tracing::warn!(%err, "payment provider failed");
    match err {
        ProviderError::Refused(why) => OrderError::Invalid(why),
        ProviderError::Unavailable(_) => OrderError::Unavailable("payment provider unavailable; try again".into()),
    }
}

impl Payments {
    /// Payments through `provider`, whose callbacks are signed with `webhook_secret`.
    pub fn new(pool: PgPool, provider: Provider, webhook_secret: SecretString) -> Payments {
        Payments { pool, provider, webhook_secret }
    }

    /// `user_id` starts paying `order_id` (see `OrderService::pay`).
    pub async fn pay(
        &self,
        user_id: i64,
        order_id: i64,
        idempotency_key: &str,
        sandbox: Option<SandboxInstructions>,
    ) -> Result<PaymentView, OrderError> {
        if idempotency_key.is_empty() || idempotency_key.len() > MAX_KEY_LEN {
            return Err(OrderError::Invalid(format!("the Idempotency-Key must have 1 to {MAX_KEY_LEN} characters")));
        }
        let order = store::by_id(&self.pool, order_id).await.map_err(database)?;
        let Some(order) = order.filter(|order| order.user_id == user_id) else { return Err(OrderError::NotFound) };
        let existing = self.by_key(user_id, idempotency_key).await?;
        let payment = match existing {
            // The same key is the same payment, whatever happened since.
            Some(payment) if payment.order_id != order_id => return Err(OrderError::IdempotencyKeyReused),
            Some(payment) => payment,
            None => {
                match order.status {
                    OrderStatus::Paid => return Err(OrderError::AlreadyPaid),
                    OrderStatus::Cancelled => return Err(OrderError::AlreadyCancelled),
                    OrderStatus::Unpaid if order.expires_at <= chrono::Utc::now() => {
                        return Err(OrderError::PaymentWindowClosed);
                    }
                    OrderStatus::Unpaid => {}
                }
                sqlx::query(
                    "INSERT INTO payments (order_id, user_id, idempotency_key, provider, amount_cents)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT ON CONSTRAINT payments_one_per_key DO NOTHING",
                )
                .bind(order_id)
                .bind(user_id)
                .bind(idempotency_key)
                .bind(self.provider.name())
                .bind(order.price_cents)
                .execute(&self.pool)
                .await
                .map_err(database)?;
                // Inserted now, or by a concurrent request with the same key: either way, that one.
                let payment = self.by_key(user_id, idempotency_key).await?.ok_or(OrderError::NotFound)?;
                if payment.order_id != order_id {
                    return Err(OrderError::IdempotencyKeyReused);
                }
                payment
            }
        };
        if payment.provider_ref.is_some() {
            return Ok(payment);
        }
        // No intent yet (new, or the provider did not answer last time): ask, under the same
        // key, so a repeat is the same intent.
        let request = provider::IntentRequest {
            payment_id: payment.payment_id,
            order_id,
            amount_cents: payment.amount_cents,
            idempotency_key: format!("{user_id}:{idempotency_key}"),
            sandbox,
        };
        let intent = self.provider.create_intent(request).await.map_err(provider_failure)?;
        sqlx::query("UPDATE payments SET provider_ref = $2, updated_at = now() WHERE id = $1 AND provider_ref IS NULL")
            .bind(payment.payment_id)
            .bind(&intent)
            .execute(&self.pool)
            .await
            .map_err(database)?;
        metrics::counter!("payments_started_total").increment(1);
        Ok(PaymentView { provider_ref: Some(intent), ..payment })
    }

    async fn by_key(&self, user_id: i64, key: &str) -> Result<Option<PaymentView>, OrderError> {
        let row: Option<PaymentRow> = sqlx::query_as(select_payment!("WHERE user_id = $1 AND idempotency_key = $2"))
            .bind(user_id)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(database)?;
        Ok(row.map(PaymentView::from))
    }

    /// A provider's callback: verified, then applied (see the module's documentation).
    pub async fn callback(&self, payload: &[u8], signature: &str) -> Result<CallbackOutcome, OrderError> {
        let secret = self.webhook_secret.expose_secret().as_bytes();
        if let Err(err) = signature::verify(secret, payload, signature, chrono::Utc::now().timestamp()) {
            tracing::warn!(%err, "payment callback refused");
            metrics::counter!("payment_callbacks_total", "outcome" => "bad_signature").increment(1);
            return Err(OrderError::BadSignature);
        }
        let event: ProviderEvent = serde_json::from_slice(payload)
            .map_err(|err| OrderError::Invalid(format!("not a payment event: {err}")))?;
        let row: Option<PaymentRow> = sqlx::query_as(select_payment!("WHERE provider_ref = $1"))
            .bind(&event.intent)
            .fetch_optional(&self.pool)
            .await
            .map_err(database)?;
        let payment = row.ok_or(OrderError::NotFound)?;
        let outcome = match event.kind.as_str() {
            PAYMENT_SUCCEEDED => self.succeeded(payment.id, payment.order_id).await?,
            PAYMENT_FAILED => self.failed(payment.id).await?,
            other => return Err(OrderError::Invalid(format!("unknown event type {other}"))),
        };
        let name = match outcome {
            CallbackOutcome::Paid => "paid",
            CallbackOutcome::Failed => "failed",
            CallbackOutcome::Refunded => "refunded",
            CallbackOutcome::Duplicate => "duplicate",
        };
        metrics::counter!("payment_callbacks_total", "outcome" => name).increment(1);
        Ok(outcome)
    }

    async fn failed(&self, payment_id: i64) -> Result<CallbackOutcome, OrderError> {
        let failed = sqlx::query(
            "UPDATE payments SET status = 'failed', updated_at = now() WHERE id = $1 AND status = 'pending'",
        )
        .bind(payment_id)
        .execute(&self.pool)
        .await
        .map_err(database)?;
        Ok(if failed.rows_affected() == 1 { CallbackOutcome::Failed } else { CallbackOutcome::Duplicate })
    }

    /// The money came: the order paid, if it still can be; else the payment refunded.
    async fn succeeded(&self, payment_id: i64, order_id: i64) -> Result<CallbackOutcome, OrderError> {
        let mut tx = self.pool.begin().await.map_err(database)?;
        let captured = sqlx::query(
            "UPDATE payments SET status = 'succeeded', updated_at = now()
              WHERE id = $1 AND status IN ('pending', 'failed')",
        )
        .bind(payment_id)
        .execute(&mut *tx)
        .await
        .map_err(database)?;
        if captured.rows_affected() == 0 {
            return Ok(CallbackOutcome::Duplicate); // settled by an earlier delivery of the event
        }
        let paid = sqlx::query(
            "UPDATE orders SET status = 'paid', paid_at = now(), payment_id = $2
              WHERE id = $1 AND status = 'unpaid' AND expires_at > now()",
        )
        .bind(order_id)
        .bind(payment_id)
        .execute(&mut *tx)
        .await
        .map_err(database)?;
        if paid.rows_affected() == 1 {
            tx.commit().await.map_err(database)?;
            tracing::info!(order_id, payment_id, "order paid");
            return Ok(CallbackOutcome::Paid);
        }
        // Too late (or paid twice): the money goes back; the order stays as it is.
        sqlx::query("UPDATE payments SET status = 'refunding', updated_at = now() WHERE id = $1")
            .bind(payment_id)
            .execute(&mut *tx)
            .await
            .map_err(database)?;
        tx.commit().await.map_err(database)?;
        tracing::warn!(order_id, payment_id, "payment came when the order could no longer be paid: refunding it");
        if let Err(err) = self.refund(payment_id).await {
            // It stays `refunding`: the safety sweep asks the provider again.
            tracing::warn!(payment_id, %err, "refund not done yet");
        }
        Ok(CallbackOutcome::Refunded)
    }

    /// Gives a `refunding` payment's money back through the provider.
    async fn refund(&self, payment_id: i64) -> Result<(), OrderError> {
        let intent: Option<String> =
            sqlx::query_scalar("SELECT provider_ref FROM payments WHERE id = $1 AND status = 'refunding'")
                .bind(payment_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(database)?
                .flatten();
        let Some(intent) = intent else { return Ok(()) };
        let refund = self.provider.refund(&intent, &format!("refund-{payment_id}")).await.map_err(provider_failure)?;
        sqlx::query(
            "UPDATE payments SET status = 'refunded', refund_ref = $2, updated_at = now()
              WHERE id = $1 AND status = 'refunding'",
        )
        .bind(payment_id)
        .bind(refund)
        .execute(&self.pool)
        .await
        .map_err(database)?;
        metrics::counter!("payment_refunds_total").increment(1);
        Ok(())
    }

    /// Refunds still `refunding` after `grace` (the safety sweep); returns how many went through.
    pub async fn retry_refunds(&self, grace: Duration, limit: i64) -> anyhow::Result<usize> {
        let due: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM payments WHERE status = 'refunding' AND updated_at < now() - make_interval(secs => $1)
              LIMIT $2",
        )
        .bind(grace.as_secs_f64())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut refunded = 0;
        for payment_id in due {
            if self.refund(payment_id).await.is_ok() {
                refunded += 1;
            }
        }
        Ok(refunded)
    }
}
