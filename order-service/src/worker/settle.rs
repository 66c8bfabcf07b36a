//! After a write: releases, results, acknowledgements; and giving up on a message for good.

use contracts::order::{ExpiryMessage, OrderMessage};
use contracts::stock::ReleaseScope;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicRejectOptions};
use rpc::Transport;

use super::Worker;
use super::writer::Verdict;
use crate::results::{Outcome, TicketOutcome};
use crate::store::WrittenOrder;

/// What remains to do for a written batch: releases, results, payment timers, the ack.
pub(crate) struct Settlement {
    outcomes: Vec<TicketOutcome>,
    releases: Vec<(OrderMessage, ReleaseScope)>,
    timers: Vec<(ExpiryMessage, u32)>,
    deliveries: Vec<Delivery>,
}

impl Settlement {
    pub(super) fn new(messages: &[OrderMessage], verdicts: Vec<Verdict>, deliveries: Vec<Delivery>) -> Settlement {
        let mut outcomes = Vec::with_capacity(messages.len());
        let (mut releases, mut written) = (Vec::new(), Vec::new());
        for (message, verdict) in messages.iter().zip(verdicts) {
            let outcome = match verdict {
                Verdict::Written(order) => {
                    metrics::counter!("order_messages_total", "outcome" => "written").increment(1);
                    written.push(order);
                    Outcome::Success(order.id)
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
        Settlement { outcomes, releases, timers: WrittenOrder::timers(&written), deliveries }
    }
}

pub(super) fn outcome_of(message: &OrderMessage, outcome: Outcome) -> TicketOutcome {
    TicketOutcome { goods_id: message.goods_id, user_id: message.user_id, ticket: message.ticket, outcome }
}

impl<T: Transport> Worker<T> {
    /// Releases the units of refused orders, records every outcome, then acknowledges. A release
    /// that fails is retried in place ([`Worker::hold`]); if the worker stops meanwhile, nothing
    /// is acknowledged and the redelivered batch is found written.
    pub(super) async fn settle(&self, settlement: Settlement) {
        for (message, scope) in &settlement.releases {
            if !self.release(message, *scope).await {
                return;
            }
        }
        if !self.record(&settlement.outcomes).await {
            return;
        }
        // Each order's payment timer, before the ack: a crash in between redelivers the batch,
        // which is found written and starts its timers again (a timer twice cancels once).
        if !self.start_timers(&settlement.timers).await {
            return;
        }
        // Deliveries reach a consumer in tag order and each batch is settled after the ones
        // before it, so acknowledging the highest tag with `multiple` settles exactly this batch
        // (and nothing twice: tags rejected earlier are no longer outstanding), in one frame.
        if self.ack_on_delivery {
            return; // acknowledged as delivered: the broker knows no tag to settle
        }
        let Some(last) = settlement.deliveries.iter().max_by_key(|delivery| delivery.delivery_tag) else { return };
        let multiple = BasicAckOptions { multiple: settlement.deliveries.len() > 1 };
        if let Err(err) = last.acker.ack(multiple).await {
            tracing::warn!(%err, "ack failed; the messages will be redelivered and found written");
        }
    }

    /// The message will never be written: give its unit back, record the failure, dead-letter it
    /// (the dead-letter consumer keeps it for operators). Unless an earlier delivery did write it
    /// (committed, then crashed before the ack): then it is a success. Checking and releasing
    /// are retried in place until they answer.
    pub(super) async fn give_up(&self, message: &OrderMessage, delivery: &Delivery, err: &str) {
        let Some(existing) = self.existing_order(message).await else { return };
        if let Some(order) = existing {
            if !self.record(&[outcome_of(message, Outcome::Success(order.id))]).await {
                return;
            }
            if !self.start_timers(&WrittenOrder::timers(&[order])).await {
                return;
            }
            if !self.ack_on_delivery {
                if let Err(err) = delivery.acker.ack(BasicAckOptions::default()).await {
                    tracing::warn!(%err, "ack failed; the message will be redelivered and found written");
                }
            }
            return;
        }
        if !self.release(message, ReleaseScope::AnyHold).await {
            return;
        }
        tracing::error!(ticket = %message.ticket, %err, "order cannot be written: dead-lettering it");
        metrics::counter!("order_messages_total", "outcome" => "dead_lettered").increment(1);
        if self.record_failure(message).await && !self.ack_on_delivery {
            reject(delivery).await;
        }
    }

    /// Starts the payment timers of written orders, publishing until the broker confirms each.
    /// False if the worker stops first.
    pub(super) async fn start_timers(&self, timers: &[(ExpiryMessage, u32)]) -> bool {
        self.persist("timers", || self.timers.publish_timers(timers)).await.is_some()
    }

    /// The order an earlier delivery of `message` wrote, if any, asked until PostgreSQL answers;
    /// `None` if the worker stops first.
    pub(super) async fn existing_order(&self, message: &OrderMessage) -> Option<Option<WrittenOrder>> {
        self.persist("check", || self.writer.existing_order(message.ticket)).await
    }

    /// Undoes a hold, asking until stock-service answers. True once that is certain (released,
    /// or nothing was held); false if the worker stops first.
    pub(super) async fn release(&self, message: &OrderMessage, scope: ReleaseScope) -> bool {
        let release = || self.stock.release(message.goods_id, message.user_id, message.ticket, scope);
        self.persist("release", release).await.is_some()
    }

    /// Records that `message` will never make an order (what its buyer's poll then reads).
    pub(super) async fn record_failure(&self, message: &OrderMessage) -> bool {
        self.record(&[outcome_of(message, Outcome::Failed("order could not be written".into()))]).await
    }

    /// Records outcomes in Redis, asking until it answers: a failure recorded nowhere would leave
    /// its buyer polling "queued". False if the worker stops first.
    pub(super) async fn record(&self, outcomes: &[TicketOutcome]) -> bool {
        self.persist("record results", || self.results.record(outcomes)).await.is_some()
    }
}

/// Rejects without requeue: the queue dead-letters it.
pub(super) async fn reject(delivery: &Delivery) {
    if let Err(err) = delivery.acker.reject(BasicRejectOptions { requeue: false }).await {
        tracing::warn!(%err, "reject failed");
    }
}
