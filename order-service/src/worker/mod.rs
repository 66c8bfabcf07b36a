//! Order workers: consume order messages, write them to PostgreSQL in batches, acknowledge only
//! after the commit.
//!
//! - `consumer`: one AMQP channel per consumer with a prefetch window; waits for a first message,
//!   lets the batch fill for `batch_linger` (or up to `batch_size`), hands it on; reconnects
//!   after a broker failure.
//! - `batch`: decodes and dedupes a batch, writes it in one transaction (`writer`), and when the
//!   database refuses it, writes its messages one by one to isolate the culprit.
//! - `settle`: what follows a write: units of refused orders released, outcomes recorded, then
//!   the acknowledgements; and the give-up policy for a message that will never be written (its
//!   unit back, a failed result, the dead-letter queue).
//! - `dead_letters`: the dead-letter queue's consumer, which finishes whatever reached it.
//! - `expiries`: the consumer of expired payment timers, which cancels what is still unpaid.
//!
//! A dependency that is down (PostgreSQL, stock-service, Redis) never sends a message back to the
//! queue: the batch is held and its step retried with growing pauses ([`Worker::hold`]) until
//! the dependency answers, and meanwhile the consumer takes nothing new. Returning it would count
//! a delivery each time, and a long outage would dead-letter messages merely for lasting.

mod batch;
mod consumer;
mod dead_letters;
mod expiries;
mod settle;
mod writer;

use std::fmt::Display;
use std::sync::Arc;
use std::time::Duration;

use contracts::stock::StockServiceClient;
use rpc::{Backoff, Transport};
use secrecy::SecretString;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use self::consumer::Role;
pub(crate) use self::writer::Writer;
use crate::broker::{Publisher, Topology};
use crate::lifecycle::Lifecycle;
use crate::results::Results;
use crate::settings::WorkerSettings;

/// Everything a worker process's consumers share.
pub(crate) struct Worker<T> {
    amqp_url: SecretString,
    topology: Topology,
    settings: WorkerSettings,
    writer: Writer<T>,
    stock: StockServiceClient<T>,
    results: Results,
    /// Where the dead-letter consumer records what it finished (`order_dead_letters`).
    pool: PgPool,
    /// Take order messages acknowledged as delivered (`SECKILL_WITHOUT__ACK_AFTER_COMMIT` only).
    ack_on_delivery: bool,
    /// Publishes the written orders' payment timers.
    timers: Publisher,
    /// Cancels the orders whose timers expire.
    lifecycle: Lifecycle<T>,
    /// Cancelled when the worker stops: ends the consumers and any batch held in [`Worker::hold`].
    shutdown: CancellationToken,
}

/// Everything a worker needs from outside.
pub(crate) struct WorkerParts<T> {
    pub(crate) amqp_url: SecretString,
    pub(crate) topology: Topology,
    pub(crate) settings: WorkerSettings,
    pub(crate) writer: Writer<T>,
    pub(crate) stock: StockServiceClient<T>,
    pub(crate) results: Results,
    pub(crate) pool: PgPool,
    /// `SECKILL_WITHOUT__ACK_AFTER_COMMIT`: order messages are acknowledged as they are delivered,
    /// before their orders are written, so a crash loses what the worker held.
    pub(crate) ack_on_delivery: bool,
    pub(crate) timers: Publisher,
    pub(crate) lifecycle: Lifecycle<T>,
}

impl<T: Transport> Worker<T> {
    /// A worker writing through `writer`, releasing through `stock`, recording in `results`,
    /// until `shutdown` is cancelled.
    pub(crate) fn new(parts: WorkerParts<T>, shutdown: CancellationToken) -> Self {
        let WorkerParts {
            amqp_url,
            topology,
            settings,
            writer,
            stock,
            results,
            pool,
            ack_on_delivery,
            timers,
            lifecycle,
        } = parts;
        Worker {
            amqp_url,
            topology,
            settings,
            writer,
            stock,
            results,
            pool,
            ack_on_delivery,
            timers,
            lifecycle,
            shutdown,
        }
    }

    /// Runs `settings.consumers` consumers and the dead-letter consumer until the shutdown token
    /// is cancelled; each reconnects after a broker failure. In-flight batches finish first.
    /// The consumers are tasks of a set this future owns: dropping it (aborting its task, as
    /// [`crate::WorkerApplication::abort`] does to simulate a crash) aborts them all at once.
    pub(crate) async fn run(self: Arc<Self>) {
        let roles = (0..self.settings.consumers.max(1)).map(Role::Orders).chain([Role::DeadLetters, Role::Expiries]);
        let mut consumers = tokio::task::JoinSet::new();
        for role in roles {
            consumers.spawn(self.clone().consume_forever(role));
        }
        while consumers.join_next().await.is_some() {}
        // Closed cleanly (dropped, the broker would log an abrupt close).
        self.timers.close().await;
    }

    /// Waits before `step` is tried again after failing with `err`: a random pause under a ceiling
    /// that starts at 200 ms and doubles up to 10 s (`backoff`). Returns false, at once, if the worker is stopping instead (the caller then leaves
    /// its deliveries unacknowledged: they go back to the queue when the channel closes).
    async fn hold(&self, backoff: &mut Backoff, step: &'static str, err: &(dyn Display + Sync)) -> bool {
        let first = backoff.failures() == 0;
        let pause = backoff.next_delay();
        if first {
            tracing::warn!(step, %err, "a dependency failed: holding the batch and retrying until it answers");
        } else {
            tracing::debug!(step, %err, ?pause, "still failing; holding the batch");
        }
        metrics::counter!("order_worker_holds_total", "step" => step).increment(1);
        tokio::select! {
            () = self.shutdown.cancelled() => false,
            () = tokio::time::sleep(pause) => true,
        }
    }
}

impl<T: Transport> Worker<T> {
    /// Runs `attempt` until it succeeds, holding between failures ([`Worker::hold`]). `None` if
    /// the worker stops first.
    async fn persist<R, E, F>(&self, step: &'static str, mut attempt: impl FnMut() -> F) -> Option<R>
    where
        E: Display + Sync,
        F: Future<Output = Result<R, E>>,
    {
        let mut backoff = hold_backoff();
        loop {
            match attempt().await {
                Ok(value) => return Some(value),
                Err(err) => {
                    if !self.hold(&mut backoff, step, &err).await {
                        return None;
                    }
                }
            }
        }
    }
}

/// The pauses of one held step.
fn hold_backoff() -> Backoff {
    Backoff::new(Duration::from_millis(200), Duration::from_secs(10))
}
