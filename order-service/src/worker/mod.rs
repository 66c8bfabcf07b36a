//! Order workers: consume order messages, write them to PostgreSQL in batches, acknowledge only
//! after the commit.
//!
//! Each consumer has its own channel with a prefetch window. It waits for a first message, lets
//! the batch fill for `batch_linger` (or up to `batch_size`), writes it in one transaction, then
//! settles every message. A batch the database refuses is retried message by message to isolate
//! the culprit; a message that cannot be written (or whose last delivery failed) gives its unit
//! back, records a failed result and is rejected into the dead-letter queue.

mod writer;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::contracts::order::OrderMessage;
use common::contracts::stock::{ReleaseScope, StockServiceClient};
use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, BasicRejectOptions};
use lapin::types::{AMQPValue, FieldTable};
use rpc::Transport;
use secrecy::SecretString;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use self::writer::{Verdict, WriteError, Writer};
use crate::broker::{self, Topology};
use crate::results::{Outcome, Results};
use crate::settings::WorkerSettings;

/// Everything a consumer needs.
pub struct Worker<T> {
    /// The broker.
    pub amqp_url: SecretString,
    /// Queue names and delivery limit.
    pub topology: Topology,
    /// Batch and prefetch settings.
    pub settings: WorkerSettings,
    /// Writes batches.
    pub writer: Writer<T>,
    /// Releases units of refused orders.
    pub stock: StockServiceClient<T>,
    /// Records outcomes for polling.
    pub results: Results,
    /// Pause before handing back a batch that failed for a transient reason.
    pub backoff: TransientBackoff,
}

/// Exponential pause after consecutive transient failures: a dependency that restarts must not
/// burn every message's delivery limit in seconds (each requeue counts one delivery).
#[derive(Debug, Default)]
pub struct TransientBackoff {
    failures: std::sync::atomic::AtomicU32,
}

impl TransientBackoff {
    /// Records a failure and returns how long to wait: 250 ms doubling up to 8 s.
    fn failed(&self) -> Duration {
        let n = self.failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed).min(5);
        Duration::from_millis(250 << n)
    }

    fn succeeded(&self) {
        self.failures.store(0, std::sync::atomic::Ordering::Relaxed);
    }
}

impl<T: Transport> Worker<T> {
    /// Runs `settings.consumers` consumers until `shutdown` is cancelled; each reconnects after a
    /// broker failure. In-flight batches finish before this returns.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let consumers: Vec<_> = (0..self.settings.consumers.max(1))
            .map(|n| tokio::spawn(self.clone().consume_forever(n, shutdown.clone())))
            .collect();
        for consumer in consumers {
            let _ = consumer.await;
        }
    }

    async fn consume_forever(self: Arc<Self>, n: usize, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(100);
        while !shutdown.is_cancelled() {
            match self.consume(n, &shutdown).await {
                Ok(()) => return,
                Err(err) => {
                    tracing::warn!(consumer = n, %err, ?backoff, "consumer lost the broker; reconnecting");
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    async fn consume(self: &Arc<Self>, n: usize, shutdown: &CancellationToken) -> lapin::Result<()> {
        let connection = broker::connect(&self.amqp_url).await?;
        let channel = connection.create_channel().await?;
        self.topology.declare(&channel).await?;
        channel.basic_qos(self.settings.prefetch, BasicQosOptions::default()).await?;
        let tag = format!("order-worker-{}-{n}", std::process::id());
        let mut consumer = channel
            .basic_consume(
                self.topology.queue.as_str().into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        tracing::info!(consumer = n, queue = %self.topology.queue, "consuming");
        // Settling a written batch (results, releases, the ack) overlaps with writing the next
        // one; the settler keeps batches in order, and at most two wait for it.
        let (settle, mut pending) = mpsc::channel::<Settlement>(2);
        let settler = tokio::spawn({
            let worker = self.clone();
            async move {
                while let Some(settlement) = pending.recv().await {
                    worker.settle(settlement).await;
                }
            }
        });
        loop {
            let first = tokio::select! {
                () = shutdown.cancelled() => break,
                next = consumer.next() => next,
            };
            let Some(first) = first else { break };
            let mut batch = vec![first?];
            let until = tokio::time::Instant::now() + self.settings.batch_linger;
            while batch.len() < self.settings.batch_size {
                match tokio::time::timeout_at(until, consumer.next()).await {
                    Ok(Some(delivery)) => batch.push(delivery?),
                    Ok(None) | Err(_) => break,
                }
            }
            self.process(batch, Some(&settle)).await;
        }
        drop(settle);
        let _ = settler.await;
        // Unacknowledged messages go back to the queue when the channel closes.
        drop(consumer);
        broker::close(&connection, channel).await;
        Ok(())
    }

    /// Writes and settles one batch of deliveries; a written batch is settled through `settler`
    /// when given (in order, overlapping the next write), else at once.
    pub async fn process(&self, deliveries: Vec<Delivery>, settler: Option<&mpsc::Sender<Settlement>>) {
        let started = std::time::Instant::now();
        let mut messages: Vec<(OrderMessage, Delivery)> = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            match serde_json::from_slice::<OrderMessage>(&delivery.data) {
                Ok(message) => messages.push((message, delivery)),
                Err(err) => {
                    tracing::error!(%err, "undecodable order message: dead-lettering it");
                    metrics::counter!("order_messages_total", "outcome" => "poison").increment(1);
                    reject(&delivery).await;
                }
            }
        }
        // A message delivered twice in one batch (a redelivery racing its original) is written once.
        let mut unique: Vec<OrderMessage> = Vec::with_capacity(messages.len());
        let mut seen = HashMap::new();
        for (message, _) in &messages {
            if seen.insert(message.ticket, ()).is_none() {
                unique.push(message.clone());
            }
        }
        match self.writer.write(&unique).await {
            Ok(verdicts) => {
                self.backoff.succeeded();
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
            Err(WriteError::Transient(err)) => {
                let pause = self.backoff.failed();
                tracing::warn!(%err, batch = unique.len(), ?pause, "batch not written; it will be redelivered");
                tokio::time::sleep(pause).await;
                for (message, delivery) in &messages {
                    self.retry_or_give_up(message, delivery, &err).await;
                }
            }
            Err(WriteError::Refused(err) | WriteError::SoldOutInDatabase(err)) => {
                tracing::warn!(%err, batch = unique.len(), "batch refused; writing its messages one by one");
                for (message, delivery) in messages {
                    self.process_one(&message, delivery).await;
                }
            }
        }
        metrics::histogram!("order_batch_seconds").record(started.elapsed().as_secs_f64());
        metrics::histogram!("order_batch_size").record(unique.len() as f64);
    }

    async fn process_one(&self, message: &OrderMessage, delivery: Delivery) {
        match self.writer.write(std::slice::from_ref(message)).await {
            Ok(verdicts) => self.settle(Settlement::new(std::slice::from_ref(message), verdicts, vec![delivery])).await,
            Err(WriteError::Transient(err)) => {
                tokio::time::sleep(self.backoff.failed()).await;
                self.retry_or_give_up(message, &delivery, &err).await
            }
            Err(WriteError::Refused(err)) => self.give_up(message, &delivery, &err).await,
            Err(WriteError::SoldOutInDatabase(err)) => {
                // Not poison: the database simply has no unit for it. The hold goes without
                // putting a unit back on sale (PostgreSQL does not have it), and the message is done.
                tracing::error!(ticket = %message.ticket, %err, "no unit left in the database for this order");
                let refused = Verdict::Refused { reason: "sold out".into(), release: Some(ReleaseScope::Discard) };
                self.settle(Settlement::new(std::slice::from_ref(message), vec![refused], vec![delivery])).await
            }
        }
    }

    /// Releases the units of refused orders, records every outcome, then acknowledges.
    async fn settle(&self, settlement: Settlement) {
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
    async fn retry_or_give_up(&self, message: &OrderMessage, delivery: &Delivery, err: &str) {
        if deliveries_so_far(delivery) + 1 >= self.topology.delivery_limit {
            return self.give_up(message, delivery, err).await;
        }
        requeue(delivery).await;
    }

    /// The message will never be written: give its unit back, record the failure, dead-letter it.
    /// Unless an earlier delivery did write it (committed, then crashed before the ack): then it
    /// is a success. When that cannot be checked, or the unit cannot be given back, the message
    /// goes back to the queue rather than leave a unit stuck or a written order "failed".
    async fn give_up(&self, message: &OrderMessage, delivery: &Delivery, err: &str) {
        match self.writer.existing_order(message.ticket).await {
            Ok(Some(order_id)) => {
                let written = [(message.goods_id, message.user_id, message.ticket, Outcome::Success(order_id))];
                if let Err(err) = self.results.record(&written).await {
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
        let failed =
            [(message.goods_id, message.user_id, message.ticket, Outcome::Failed("order could not be written".into()))];
        if let Err(err) = self.results.record(&failed).await {
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

/// What remains to do for a written batch: releases, results, the ack.
pub struct Settlement {
    outcomes: Vec<(i64, i64, Uuid, Outcome)>,
    releases: Vec<(OrderMessage, ReleaseScope)>,
    deliveries: Vec<Delivery>,
}

impl Settlement {
    fn new(messages: &[OrderMessage], verdicts: Vec<Verdict>, deliveries: Vec<Delivery>) -> Settlement {
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
            outcomes.push((message.goods_id, message.user_id, message.ticket, outcome));
        }
        Settlement { outcomes, releases, deliveries }
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
async fn reject(delivery: &Delivery) {
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
