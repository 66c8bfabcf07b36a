//! The AMQP side of a consumer: channel, prefetch, the batch loop, reconnects.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use lapin::options::{BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, Consumer};
use rpc::{Backoff, Transport};
use tokio::sync::mpsc;

use super::Worker;
use super::settle::Settlement;
use crate::broker;

/// One broker connection's consumer on one queue.
pub(super) struct Subscription {
    connection: Connection,
    channel: Channel,
    pub(super) consumer: Consumer,
}

impl Subscription {
    /// Closes the channel (unacknowledged messages go back to the queue), then the connection.
    pub(super) async fn close(self) {
        drop(self.consumer);
        broker::close(&self.connection, self.channel).await;
    }
}

/// What a consumer task consumes.
#[derive(Clone, Copy, Debug)]
pub(super) enum Role {
    /// The order queue (consumer number n).
    Orders(usize),
    /// The dead-letter queue.
    DeadLetters,
    /// The expired payment timers.
    Expiries,
}

impl<T: Transport> Worker<T> {
    /// Consumes as `role` says until the worker stops, reconnecting with a backoff whenever the
    /// broker is lost.
    pub(super) async fn consume_forever(self: Arc<Self>, role: Role) {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        while !self.shutdown.is_cancelled() {
            let session = match role {
                Role::Orders(n) => self.consume(n).await,
                Role::DeadLetters => self.finish_dead_letters().await,
                Role::Expiries => self.cancel_expired().await,
            };
            match session {
                Ok(()) => return,
                Err(err) => {
                    let pause = backoff.next_delay();
                    tracing::warn!(?role, %err, ?pause, "consumer lost the broker; reconnecting");
                    tokio::select! {
                        () = self.shutdown.cancelled() => return,
                        () = tokio::time::sleep(pause) => {}
                    }
                }
            }
        }
    }

    /// Connects, declares the topology and subscribes to `queue` with a window of `prefetch`
    /// unacknowledged messages.
    /// With `ack_on_delivery` the broker forgets each message as it sends it (no prefetch
    /// window then: it sends everything it has), and the worker must send no ack or reject
    /// (the broker would close the channel over an unknown tag): settling skips them.
    pub(super) async fn subscribe(
        &self,
        queue: &str,
        prefetch: u16,
        tag: &str,
        ack_on_delivery: bool,
    ) -> lapin::Result<Subscription> {
        let connection = broker::connect(&self.amqp_url).await?;
        self.topology.declare(&connection).await?;
        let channel = connection.create_channel().await?;
        channel.basic_qos(prefetch, BasicQosOptions::default()).await?;
        let options = BasicConsumeOptions { no_ack: ack_on_delivery, ..Default::default() };
        let consumer = channel.basic_consume(queue.into(), tag.into(), options, FieldTable::default()).await?;
        tracing::info!(queue, tag, "consuming");
        Ok(Subscription { connection, channel, consumer })
    }

    async fn consume(self: &Arc<Self>, n: usize) -> lapin::Result<()> {
        let tag = format!("order-worker-{}-{n}", std::process::id());
        let queue = &self.topology.names.queue;
        let mut subscription = self.subscribe(queue, self.settings.prefetch, &tag, self.ack_on_delivery).await?;
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
        let consumer = &mut subscription.consumer;
        loop {
            let first = tokio::select! {
                () = self.shutdown.cancelled() => break,
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
        subscription.close().await;
        Ok(())
    }
}
