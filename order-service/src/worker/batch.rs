//! One batch of deliveries: decoded, deduped, written in one transaction; on a refusal, written
//! message by message to find the one at fault. A transient failure holds the batch and retries.

use std::collections::HashSet;

use contracts::order::OrderMessage;
use contracts::stock::ReleaseScope;
use lapin::message::Delivery;
use rpc::Transport;
use tokio::sync::mpsc;

use super::settle::{Settlement, reject};
use super::writer::{Verdict, WriteError};
use super::{Worker, hold_backoff};

impl<T: Transport> Worker<T> {
    /// Writes and settles one batch of deliveries; a written batch is settled through `settler`
    /// when given (in order, overlapping the next write), else at once.
    pub(super) async fn process(&self, deliveries: Vec<Delivery>, settler: Option<&mpsc::Sender<Settlement>>) {
        let started = std::time::Instant::now();
        let mut messages: Vec<(OrderMessage, Delivery)> = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            if delivery.redelivered {
                // Delivered before and never acknowledged: its worker crashed, or lost the broker.
                metrics::counter!("order_messages_redelivered_total").increment(1);
            }
            match serde_json::from_slice::<OrderMessage>(&delivery.data) {
                Ok(message) => messages.push((message, delivery)),
                Err(err) => {
                    tracing::error!(%err, "undecodable order message: dead-lettering it");
                    metrics::counter!("order_messages_total", "outcome" => "poison").increment(1);
                    if !self.ack_on_delivery {
                        reject(&delivery).await;
                    }
                }
            }
        }
        // A message delivered twice in one batch (a redelivery racing its original) is written once.
        let mut seen = HashSet::with_capacity(messages.len());
        let unique: Vec<OrderMessage> =
            messages.iter().filter(|(message, _)| seen.insert(message.ticket)).map(|(m, _)| m.clone()).collect();
        let size = unique.len();
        self.write_and_settle(unique, messages, settler).await;
        metrics::histogram!("order_batch_seconds").record(started.elapsed().as_secs_f64());
        metrics::histogram!("order_batch_size").record(size as f64);
    }

    async fn write_and_settle(
        &self,
        unique: Vec<OrderMessage>,
        messages: Vec<(OrderMessage, Delivery)>,
        settler: Option<&mpsc::Sender<Settlement>>,
    ) {
        let mut backoff = hold_backoff();
        let verdicts = loop {
            match self.writer.write(&unique).await {
                Ok(verdicts) => break verdicts,
                Err(WriteError::Transient(err)) => {
                    if !self.hold(&mut backoff, "write", &err).await {
                        return; // stopping: the batch goes back to the queue, unacknowledged
                    }
                }
                Err(WriteError::Refused(err) | WriteError::SoldOutInDatabase(err)) => {
                    tracing::warn!(%err, batch = unique.len(), "batch refused; writing its messages one by one");
                    for (message, delivery) in messages {
                        self.process_one(&message, delivery).await;
                    }
                    return;
                }
            }
        };
        let settlement = Settlement::new(&unique, verdicts, messages.into_iter().map(|(_, d)| d).collect());
        match settler {
            Some(settler) => {
                if let Err(unsent) = settler.send(settlement).await {
                    self.settle(unsent.0).await;
                }
            }
            None => self.settle(settlement).await,
        }
    }

    async fn process_one(&self, message: &OrderMessage, delivery: Delivery) {
        let mut backoff = hold_backoff();
        let verdicts = loop {
            match self.writer.write(std::slice::from_ref(message)).await {
                Ok(verdicts) => break verdicts,
                Err(WriteError::Transient(err)) => {
                    if !self.hold(&mut backoff, "write", &err).await {
                        return;
                    }
                }
                Err(WriteError::Refused(err)) => return self.give_up(message, &delivery, &err).await,
                Err(WriteError::SoldOutInDatabase(err)) => {
                    // Not poison: the database simply has no unit for it. The hold goes without
                    // putting a unit back on sale (PostgreSQL does not have it), and the message
                    // is done.
                    tracing::error!(ticket = %message.ticket, %err, "no unit left in the database for this order");
                    break vec![Verdict::Refused { reason: "sold out".into(), release: Some(ReleaseScope::Discard) }];
                }
            }
        };
        self.settle(Settlement::new(std::slice::from_ref(message), verdicts, vec![delivery])).await
    }
}
