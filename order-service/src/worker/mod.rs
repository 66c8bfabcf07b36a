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

mod batch;
mod consumer;
mod settle;
mod writer;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use contracts::stock::StockServiceClient;
use rpc::{Backoff, Transport};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

pub(crate) use self::writer::Writer;
use crate::broker::Topology;
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
    /// Pause before handing back a batch that failed for a transient reason: a dependency that
    /// restarts must not burn every message's delivery limit in seconds (each requeue counts one
    /// delivery). Shared by the consumers: they fail together.
    transient: Mutex<Backoff>,
}

impl<T: Transport> Worker<T> {
    /// A worker writing through `writer`, releasing through `stock`, recording in `results`.
    pub(crate) fn new(
        amqp_url: SecretString,
        topology: Topology,
        settings: WorkerSettings,
        writer: Writer<T>,
        stock: StockServiceClient<T>,
        results: Results,
    ) -> Self {
        let transient = Mutex::new(Backoff::new(Duration::from_millis(500), Duration::from_secs(16)));
        Worker { amqp_url, topology, settings, writer, stock, results, transient }
    }

    /// Runs `settings.consumers` consumers until `shutdown` is cancelled; each reconnects after a
    /// broker failure. In-flight batches finish before this returns.
    pub(crate) async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let consumers: Vec<_> = (0..self.settings.consumers.max(1))
            .map(|n| tokio::spawn(self.clone().consume_forever(n, shutdown.clone())))
            .collect();
        for consumer in consumers {
            let _ = consumer.await;
        }
    }

    /// The pause after one more transient failure.
    fn transient_failure(&self) -> Duration {
        self.transient.lock().unwrap_or_else(|p| p.into_inner()).next_delay()
    }

    fn transient_recovered(&self) {
        self.transient.lock().unwrap_or_else(|p| p.into_inner()).succeeded();
    }
}
