//! The consumer of expired payment timers: each [`ExpiryMessage`] the broker dead-letters when
//! its orders' window closes cancels those still unpaid, with their units returned to PostgreSQL
//! and to Redis (`crate::lifecycle`). A message is acknowledged only after every cancellation
//! finished (or found its order paid); a timer that came early (the broker's clock ahead of the
//! database's) waits out the difference first. Up to [`IN_FLIGHT`] timers are handled at once,
//! and [`PER_TIMER`] orders of each; on shutdown the ones in hand finish first.

use std::sync::Arc;
use std::time::Duration;

use contracts::order::{CancelReason, ExpiryMessage};
use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicRejectOptions};
use rpc::Transport;
use tokio::task::JoinSet;

use super::Worker;
use crate::lifecycle::Cancellation;

/// Timers handled at once per worker process.
const IN_FLIGHT: usize = 16;
/// Orders of one timer cancelled at once.
const PER_TIMER: usize = 16;

/// The longest an early timer is held in place before it is tried again.
const EARLY_WAIT: Duration = Duration::from_secs(5);

impl<T: Transport> Worker<T> {
    /// Cancels expired orders until the worker stops (run by `consume_forever`).
    pub(super) async fn cancel_expired(self: &Arc<Self>) -> lapin::Result<()> {
        let tag = format!("order-worker-{}-expiries", std::process::id());
        let queue = &self.topology.names.expired_queue;
        let mut subscription = self.subscribe(queue, IN_FLIGHT as u16, &tag, false).await?;
        let mut in_hand = JoinSet::new();
        loop {
            let next = tokio::select! {
                () = self.shutdown.cancelled() => break,
                next = subscription.consumer.next() => next,
            };
            let Some(delivery) = next else { break };
            let delivery = delivery?;
            while in_hand.len() >= IN_FLIGHT {
                in_hand.join_next().await;
            }
            let worker = Arc::clone(self);
            in_hand.spawn(async move { worker.expire(delivery).await });
        }
        while in_hand.join_next().await.is_some() {}
        subscription.close().await;
        Ok(())
    }

    async fn expire(&self, delivery: Delivery) {
        let Ok(timer) = serde_json::from_slice::<ExpiryMessage>(&delivery.data) else {
            tracing::error!("undecodable payment timer: dropped (the safety sweep covers its order)");
            if let Err(err) = delivery.acker.reject(BasicRejectOptions { requeue: false }).await {
                tracing::warn!(%err, "reject failed");
            }
            return;
        };
        let mut finished = true;
        for orders in timer.order_ids.chunks(PER_TIMER) {
            let mut cancellations = Vec::with_capacity(orders.len());
            for order_id in orders {
                cancellations.push(self.expire_order(*order_id));
            }
            finished = futures::future::join_all(cancellations).await.into_iter().all(|done| done);
            if !finished {
                break;
            }
        }
        if !finished {
            return; // stopping: unacknowledged, redelivered, and what was done is found done
        }
        if let Err(err) = delivery.acker.ack(BasicAckOptions::default()).await {
            tracing::warn!(%err, "ack failed; the timer comes again and finds its work done");
        }
    }

    /// Cancels one order of an expired timer if it is unpaid; false if the worker stops first.
    async fn expire_order(&self, order_id: i64) -> bool {
        loop {
            let cancel = || self.lifecycle.cancel(order_id, CancelReason::Timeout, None);
            let Some(cancellation) = self.persist("cancel", cancel).await else { return false };
            let outcome = match cancellation {
                Cancellation::NotDue(left) => {
                    tokio::select! {
                        () = self.shutdown.cancelled() => return false,
                        () = tokio::time::sleep(left.min(EARLY_WAIT)) => continue,
                    }
                }
                Cancellation::Cancelled(_) => "cancelled",
                Cancellation::Paid(_) => "paid",
                Cancellation::NotFound => "not_found",
            };
            metrics::counter!("order_timers_total", "outcome" => outcome).increment(1);
            return true;
        }
    }
}
