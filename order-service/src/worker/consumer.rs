//! The AMQP side of a consumer: channel, prefetch, the batch loop, reconnects.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use lapin::options::{BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use rpc::{Backoff, Transport};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Worker;
use super::settle::Settlement;
use crate::broker;

impl<T: Transport> Worker<T> {
    /// Consumes until `shutdown`, reconnecting with a backoff whenever the broker is lost.
    pub(super) async fn consume_forever(self: Arc<Self>, n: usize, shutdown: CancellationToken) {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        while !shutdown.is_cancelled() {
            match self.consume(n, &shutdown).await {
                Ok(()) => return,
                Err(err) => {
                    let pause = backoff.next_delay();
                    tracing::warn!(consumer = n, %err, ?pause, "consumer lost the broker; reconnecting");
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(pause) => {}
                    }
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
                self.topology.names.queue.as_str().into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        tracing::info!(consumer = n, queue = %self.topology.names.queue, "consuming");
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
}
