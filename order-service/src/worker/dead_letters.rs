//! The dead-letter queue's consumer: every message the order queue gave up on is finished here.
//!
//! A message reaches the dead-letter queue two ways: a worker refused it for good (its unit
//! already released, its failure recorded: see `settle::give_up`), or the broker's delivery limit
//! (a policy) moved it there, with nothing done for it — a message whose every delivery killed
//! its worker, say. Either way this consumer, one message at a time:
//!
//! 1. checks PostgreSQL for its order: if one exists, the buyer's result is that success;
//! 2. otherwise releases the ticket's hold (idempotent: nothing happens if it was released) and
//!    records the failure, so its buyer's poll ends;
//! 3. keeps the message in `order_dead_letters` for an operator, then acknowledges it.
//!
//! Each step is retried in place until its dependency answers, like the main consumers'.
//! An undecodable message only gets step 3.

use contracts::order::OrderMessage;
use contracts::stock::ReleaseScope;
use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::BasicAckOptions;
use lapin::types::AMQPValue;
use rpc::Transport;

use super::Worker;
use super::settle::outcome_of;
use crate::results::Outcome;
use crate::store::{self, DeadLetter};

impl<T: Transport> Worker<T> {
    /// Finishes dead letters until the worker stops (run by `consume_forever`).
    pub(super) async fn finish_dead_letters(&self) -> lapin::Result<()> {
        let tag = format!("order-worker-{}-dead-letters", std::process::id());
        let mut subscription = self.subscribe(&self.topology.names.dead_queue, 1, &tag, false).await?;
        loop {
            let next = tokio::select! {
                () = self.shutdown.cancelled() => break,
                next = subscription.consumer.next() => next,
            };
            let Some(delivery) = next else { break };
            self.finish_dead_letter(delivery?).await;
        }
        subscription.close().await;
        Ok(())
    }

    async fn finish_dead_letter(&self, delivery: Delivery) {
        let reason = death_reason(&delivery);
        let message = serde_json::from_slice::<OrderMessage>(&delivery.data).ok();
        let outcome = match &message {
            None => "undecodable",
            Some(message) => match self.existing_order(message).await {
                None => return, // stopping: it stays in the dead-letter queue
                Some(Some(order)) => {
                    if !self.record(&[outcome_of(message, Outcome::Success(order.id))]).await {
                        return;
                    }
                    if !self.start_timers(&crate::store::WrittenOrder::timers(&[order])).await {
                        return;
                    }
                    "ordered"
                }
                Some(None) => {
                    if !(self.release(message, ReleaseScope::AnyHold).await && self.record_failure(message).await) {
                        return;
                    }
                    "failed"
                }
            },
        };
        let letter = DeadLetter { message: message.as_ref(), reason: &reason, outcome, payload: &delivery.data };
        if self.persist("keep dead letter", || store::record_dead_letter(&self.pool, &letter)).await.is_none() {
            return;
        }
        tracing::warn!(ticket = ?message.map(|m| m.ticket), reason, outcome, "dead letter finished");
        metrics::counter!("order_dead_letters_total", "outcome" => outcome).increment(1);
        if let Err(err) = delivery.acker.ack(BasicAckOptions::default()).await {
            tracing::warn!(%err, "ack failed; the dead letter will be finished again (idempotent)");
        }
    }
}

/// Why the broker dead-lettered `delivery`: the `reason` of its latest `x-death` entry
/// (`rejected` by a worker, `delivery_limit`, ...), or `unknown`.
fn death_reason(delivery: &Delivery) -> String {
    let headers = delivery.properties.headers().as_ref();
    let Some(AMQPValue::FieldArray(deaths)) = headers.and_then(|h| h.inner().get("x-death")) else {
        return "unknown".into();
    };
    let reason = deaths.as_slice().first().and_then(|death| match death {
        AMQPValue::FieldTable(death) => match death.inner().get("reason") {
            Some(AMQPValue::LongString(reason)) => Some(String::from_utf8_lossy(reason.as_bytes()).into_owned()),
            _ => None,
        },
        _ => None,
    });
    reason.unwrap_or_else(|| "unknown".into())
}
