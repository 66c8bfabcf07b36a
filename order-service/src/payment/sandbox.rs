//! The **sandbox payment provider: a simulator**, for development, tests and demonstrations. No
//! money moves. It is chosen only by configuration (`SECKILL_PAYMENT__PROVIDER=sandbox`), which
//! a process outside development refuses to start with, and it says so loudly at start-up.
//!
//! It behaves as a real provider does, over real HTTP: an intent per idempotency key, and a
//! signed callback to the webhook URL after a while, retried with a backoff until the webhook
//! answers 2xx. Each payment can be told (through [`SandboxInstructions`]) to succeed or fail
//! and when to call back, later than the payment window for a late payment; without
//! instructions it does what its settings say.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use contracts::order::SandboxInstructions;
use futures::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use uuid::Uuid;

use super::provider::{
    IntentRequest, PAYMENT_FAILED, PAYMENT_SUCCEEDED, PaymentProvider, ProviderError, ProviderEvent,
};
use super::signature::{self, SIGNATURE_HEADER};

/// The sandbox's settings (`SECKILL_PAYMENT__SANDBOX__*`).
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct SandboxSettings {
    /// Where it calls back: the gateway's webhook endpoint.
    pub webhook_url: String,
    /// Whether payments succeed when not told otherwise.
    pub succeed: bool,
    /// How long after the intent the callback comes, when not told otherwise.
    #[serde(with = "humantime_serde")]
    pub callback_after: Duration,
}

impl Default for SandboxSettings {
    fn default() -> Self {
        SandboxSettings {
            webhook_url: "http://127.0.0.1:8080/api/v1/payments/webhook".into(),
            succeed: true,
            callback_after: Duration::from_millis(300),
        }
    }
}

/// Callbacks tried this many times before the sandbox gives up on one (a real provider retries
/// for days; the safety sweep and the timers do not depend on it).
const CALLBACK_ATTEMPTS: u32 = 8;

/// The simulator.
#[derive(Debug)]
pub struct SandboxProvider {
    settings: SandboxSettings,
    secret: SecretString,
    http: reqwest::Client,
    /// Intent id per idempotency key.
    intents: Mutex<HashMap<String, String>>,
    /// Refund id per idempotency key.
    refunds: Mutex<HashMap<String, String>>,
}

impl SandboxProvider {
    /// A sandbox signing its callbacks with the webhook `secret`.
    pub fn new(settings: SandboxSettings, secret: SecretString) -> SandboxProvider {
        tracing::warn!(
            webhook = %settings.webhook_url,
            "payments go to the SANDBOX provider, a simulator: no money moves (development only)"
        );
        SandboxProvider {
            settings,
            secret,
            http: reqwest::Client::new(),
            intents: Mutex::default(),
            refunds: Mutex::default(),
        }
    }

    /// Calls the webhook back for `event` after `after`, until it answers 2xx.
    fn call_back_later(self: &Arc<Self>, event: ProviderEvent, after: Duration) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let body = serde_json::to_vec(&event).expect("an event serialises");
            let mut pause = Duration::from_millis(250);
            for attempt in 1..=CALLBACK_ATTEMPTS {
                let header =
                    signature::sign(this.secret.expose_secret().as_bytes(), &body, chrono::Utc::now().timestamp());
                let sent = this
                    .http
                    .post(&this.settings.webhook_url)
                    .header(SIGNATURE_HEADER, header)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status().is_success() => return,
                    Ok(response) => {
                        tracing::warn!(intent = %event.intent, attempt, status = %response.status(), "sandbox callback refused")
                    }
                    Err(err) => tracing::warn!(intent = %event.intent, attempt, %err, "sandbox callback failed"),
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(10));
            }
            tracing::error!(intent = %event.intent, "sandbox gave up calling back");
        });
    }
}

/// The sandbox behind an `Arc`, which its callbacks hold on to.
#[derive(Debug, Clone)]
pub struct Sandbox(pub Arc<SandboxProvider>);

impl PaymentProvider for Sandbox {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    fn create_intent(&self, request: IntentRequest) -> BoxFuture<'_, Result<String, ProviderError>> {
        Box::pin(async move {
            let mut intents = self.0.intents.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(intent) = intents.get(&request.idempotency_key) {
                return Ok(intent.clone()); // the same key: the same intent, no second callback
            }
            let intent = format!("pi_sandbox_{}", Uuid::new_v4().simple());
            intents.insert(request.idempotency_key.clone(), intent.clone());
            drop(intents);
            let instructions = request.sandbox.unwrap_or(SandboxInstructions {
                succeed: self.0.settings.succeed,
                callback_after_ms: u64::try_from(self.0.settings.callback_after.as_millis()).unwrap_or(u64::MAX),
            });
            let event = ProviderEvent {
                id: format!("evt_sandbox_{}", Uuid::new_v4().simple()),
                kind: if instructions.succeed { PAYMENT_SUCCEEDED } else { PAYMENT_FAILED }.into(),
                intent: intent.clone(),
                payment_id: request.payment_id,
                amount_cents: request.amount_cents,
            };
            self.0.call_back_later(event, Duration::from_millis(instructions.callback_after_ms));
            Ok(intent)
        })
    }

    fn refund(&self, _intent: &str, idempotency_key: &str) -> BoxFuture<'_, Result<String, ProviderError>> {
        let key = idempotency_key.to_owned();
        Box::pin(async move {
            let mut refunds = self.0.refunds.lock().unwrap_or_else(|p| p.into_inner());
            let refund = refunds.entry(key).or_insert_with(|| format!("re_sandbox_{}", Uuid::new_v4().simple()));
            Ok(refund.clone())
        })
    }
}
