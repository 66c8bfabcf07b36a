//! After a write: releases, results, acknowledgements; and giving up on a message for good.

use contracts::order::OrderMessage;
use contracts::stock::ReleaseScope;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicNackOptions, BasicRejectOptions};
use lapin::types::AMQPValue;
use rpc::Transport;

use super::Worker;
use super::writer::Verdict;
use crate::results::{Outcome, TicketOutcome};

/// What remains to do for a written batch: releases, results, the ack.
pub(crate) struct Settlement {
    outcomes: Vec<TicketOutcome>,
    releases: Vec<(OrderMessage, ReleaseScope)>,
    deliveries: Vec<Delivery>,
}

impl Settlement {
    pub(super) fn new(messages: &[OrderMessage], verdicts: Vec<Verdict>, deliveries: Vec<Delivery>) -> Settlement {
        let mut outcomes = Vec::with_capacity(messages.len());
        let mut releases = Vec::new();
        for (message, verdict) in messages.iter().zip(verdicts) {
            let outcome = match verdict {
                Verdict::Written(order_id) => {
                    metrics::counter!("order_messages_total", "outcome" => "written").increment(1);
                    Outcome::Success(order_id)
                }
                Verdict::Refused { reason, release } => {
                    metrics::counter!("order_messages_total", "outcome" => "refused").increment(1);
                    if let Some(scope) = release {
                        releases.push((message.clone(), scope));
                    }
                    Outcome::Failed(reason)
                }
            };
            outcomes.push(outcome_of(message, outcome));
        }
        Settlement { outcomes, releases, deliveries }
    }
}

fn outcome_of(message: &OrderMessage, outcome: Outcome) -> TicketOutcome {
    TicketOutcome { goods_id: message.goods_id, user_id: message.user_id, ticket: message.ticket, outcome }
}

impl<T: Transport> Worker<T> {
    /// Releases the units of refused orders, records every outcome, then acknowledges.
    pub(super) async fn settle(&self, settlement: Settlement) {
        for (message, scope) in &settlement.releases {
            // A failed release is retried by the message's redelivery: hand the batch back.
            if !self.release(message, *scope).await {
                for delivery in &settlement.deliveries {
                    requeue(delivery).await;
                }
                return;
            }
        }
        if let Err(err) = self.results.record(&settlement.outcomes).await {
            // The orders are committed; polling falls back to PostgreSQL.
            tracing::warn!(%err, "could not record results in Redis");
        }
        // Deliveries reach a consumer in tag order and each batch is settled after the ones
        // before it, so acknowledging the highest tag with `multiple` settles exactly this batch
        // (and nothing twice: tags rejected earlier are no longer outstanding), in one frame.
        let Some(last) = settlement.deliveries.iter().max_by_key(|delivery| delivery.delivery_tag) else { return };
        let multiple = BasicAckOptions { multiple: settlement.deliveries.len() > 1 };
        if let Err(err) = last.acker.ack(multiple).await {
            tracing::warn!(%err, "ack failed; the messages will be redelivered and found written");
        }
    }

    /// A transient failure: back to the queue, unless this was the message's last delivery.
    pub(super) async fn retry_or_give_up(&self, message: &OrderMessage, delivery: &Delivery, err: &str) {
        if deliveries_so_far(delivery) + 1 >= self.topology.delivery_limit {
            return self.give_up(message, delivery, err).await;
        }
        requeue(delivery).await;
    }

    /// The message will never be written: give its unit back, record the failure, dead-letter it.
    /// Unless an earlier delivery did write it (committed, then crashed before the ack): then it
    /// is a success. When that cannot be checked, or the unit cannot be given back, the message
    /// goes back to the queue rather than leave a unit stuck or a written order "failed".
    pub(super) async fn give_up(&self, message: &OrderMessage, delivery: &Delivery, err: &str) {
        match self.writer.existing_order(message.ticket).await {
            Ok(Some(order_id)) => {
                if let Err(err) = self.results.record(&[outcome_of(message, Outcome::Success(order_id))]).await {
                    tracing::warn!(%err, "could not record the result in Redis");
                }
                if let Err(err) = delivery.acker.ack(BasicAckOptions::default()).await {
                    tracing::warn!(%err, "ack failed; the message will be redelivered and found written");
                }
                return;
            }
            Ok(None) => {}
            Err(check) => {
                tracing::warn!(ticket = %message.ticket, %check, "cannot tell whether the order exists; requeueing");
                return requeue(delivery).await;
            }
        }
        if !self.release(message, ReleaseScope::AnyHold).await {
            return requeue(delivery).await;
        }
        tracing::error!(ticket = %message.ticket, %err, "order cannot be written: dead-lettering it");
        metrics::counter!("order_messages_total", "outcome" => "dead_lettered").increment(1);
        let failed = outcome_of(message, Outcome::Failed("order could not be written".into()));
        if let Err(err) = self.results.record(&[failed]).await {
            tracing::warn!(%err, "could not record the failure in Redis");
        }
        reject(delivery).await;
    }

    /// Undoes a hold; whether that is now certain (released, or nothing was held).
    async fn release(&self, message: &OrderMessage, scope: ReleaseScope) -> bool {
        match self.stock.release(message.goods_id, message.user_id, message.ticket, scope).await {
            Ok(_) => true,
            Err(err) => {
                tracing::error!(ticket = %message.ticket, %err, "could not release the unit of a refused order");
                false
            }
        }
    }
}

/// Hands a message back to the queue (it counts one delivery).
async fn requeue(delivery: &Delivery) {
    let requeue = BasicNackOptions { requeue: true, ..Default::default() };
    if let Err(err) = delivery.acker.nack(requeue).await {
        tracing::warn!(%err, "nack failed; the broker redelivers on reconnect");
    }
}

/// Rejects without requeue: the queue dead-letters it.
pub(super) async fn reject(delivery: &Delivery) {
    if let Err(err) = delivery.acker.reject(BasicRejectOptions { requeue: false }).await {
        tracing::warn!(%err, "reject failed");
    }
}

/// How often the broker delivered this message before (quorum queues count in `x-delivery-count`).
fn deliveries_so_far(delivery: &Delivery) -> u32 {
    let count =
        delivery.properties.headers().as_ref().and_then(|headers| headers.inner().get("x-delivery-count").cloned());
    match count {
        Some(AMQPValue::LongLongInt(n)) => n.max(0) as u32,
        Some(AMQPValue::LongInt(n)) => n.max(0) as u32,
        Some(AMQPValue::ShortInt(n)) => n.max(0) as u32,
        _ => u32::from(delivery.redelivered),
    }
}
