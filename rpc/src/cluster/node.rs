//! [`Node`]: one instance as a cluster sees it, with everything the balancers and the breaker
//! need to know about it; and [`Picked`], a node chosen for one attempt.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::breaker::{Admission, Breaker};
use super::config::{BalancerKind, BreakerConfig, ClusterConfig};
use super::metrics::NodeMetrics;
use super::peak_ewma::PeakEwma;
use crate::client::{Call, Channel, Reply, Transport};
use crate::error::Error;
use crate::registry::Instance;

/// One node of a cluster. Kept across list refreshes for as long as its instance is listed, so
/// its connections, breaker and statistics survive them.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) instance: Instance,
    channel: Channel,
    in_flight: AtomicUsize,
    pub(crate) latency: PeakEwma,
    /// Whether the balancer reads `latency` (only `peak_ewma` does; others skip the update).
    track_latency: bool,
    pub(crate) breaker: Breaker,
    pub(crate) metrics: NodeMetrics,
    warmup: Warmup,
}

impl Node {
    /// A node of a cluster configured as `config`, whose breakers follow `breaker` now.
    pub(crate) fn new(instance: Instance, config: &ClusterConfig, breaker: &BreakerConfig) -> Node {
        let now = Instant::now();
        let (metrics, breaker_gauge) = NodeMetrics::new(&instance.service, &instance.addr);
        Node {
            channel: Channel::new(instance.addr.clone(), config.client.clone()),
            in_flight: AtomicUsize::new(0),
            latency: PeakEwma::new(config.peak_ewma.default_rtt, config.peak_ewma.decay, now),
            track_latency: config.balancer == BalancerKind::PeakEwma,
            breaker: Breaker::new(breaker.clone(), &instance.addr, breaker_gauge),
            metrics,
            warmup: Warmup::new(instance.weight, instance.age(), config.warmup, now),
            instance,
        }
    }

    /// Identifies the node for as long as it is alive (its address in memory): a retry must
    /// avoid the nodes already tried, even if the node list was rebuilt in between.
    pub(crate) fn id(node: &Arc<Node>) -> usize {
        Arc::as_ptr(node) as usize
    }

    /// Whether this node's latency estimate is kept up to date.
    pub(crate) fn tracks_latency(&self) -> bool {
        self.track_latency
    }

    /// Calls waiting for this node's answer.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// The weight the balancers use now: the configured one, ramped up while warming up; ≥ 1.
    pub(crate) fn weight(&self, now: Instant) -> u32 {
        self.warmup.weight(now)
    }
}

/// Warm-up: the effective weight grows linearly with the node's age, from 1 to its full weight
/// over the warm-up time (Dubbo's rule). The age comes from the instance's own start time, so a
/// client that starts later does not take an old node for a new one.
#[derive(Debug)]
struct Warmup {
    weight: u32,
    started: Instant,
    span: Duration,
    warm_at: Instant,
}

impl Warmup {
    fn new(weight: u32, age: Duration, span: Duration, now: Instant) -> Warmup {
        let started = now.checked_sub(age).unwrap_or(now);
        Warmup { weight: weight.max(1), started, span, warm_at: started + span }
    }

    fn weight(&self, now: Instant) -> u32 {
        if now >= self.warm_at {
            return self.weight;
        }
        let age = now.saturating_duration_since(self.started);
        let share = age.as_secs_f64() / self.span.as_secs_f64();
        ((f64::from(self.weight) * share) as u32).clamp(1, self.weight)
    }
}

/// A node chosen for one attempt, holding its breaker admission. Dropped unused (or with its
/// call cancelled), it gives the admission back.
#[derive(Debug)]
pub(crate) struct Picked {
    pub(crate) node: Arc<Node>,
    admission: Option<Admission>,
}

impl Picked {
    pub(crate) fn new(node: Arc<Node>, admission: Admission) -> Picked {
        Picked { node, admission: Some(admission) }
    }

    /// Sends the call to the node and accounts for it: in-flight count, latency, breaker, metrics.
    /// `started` is the caller's reading of the clock just before, saving another.
    pub(crate) async fn call(mut self, call: Call, started: Instant) -> Result<Reply, Error> {
        let node = &*self.node;
        let _in_flight = InFlight::enter(node);
        node.metrics.requests.increment(1);
        let result = node.channel.call(call).await;
        let finished = Instant::now();
        let elapsed = finished - started;
        node.metrics.duration.record(elapsed.as_secs_f64());
        let failed = result.as_ref().is_err_and(Error::is_node_failure);
        if result.is_err() {
            node.metrics.errors.increment(1);
        }
        if node.track_latency {
            // A failure is as bad as a slow answer for the latency estimate: a node that fails
            // fast must not attract traffic by looking quick.
            let penalty = if failed { elapsed.max(node.breaker.slow_call_threshold()) } else { elapsed };
            node.latency.observe(penalty, finished);
        }
        if let Some(admission) = self.admission.take() {
            node.breaker.record(admission, finished, failed, elapsed);
        }
        result
    }
}

impl Drop for Picked {
    fn drop(&mut self) {
        if let Some(admission) = self.admission.take() {
            self.node.breaker.release(admission);
        }
    }
}

/// Counts a call in flight for as long as it lives (so a cancelled call is counted out too).
struct InFlight<'a>(&'a Node);

impl<'a> InFlight<'a> {
    fn enter(node: &'a Node) -> InFlight<'a> {
        node.in_flight.fetch_add(1, Ordering::Relaxed);
        node.metrics.in_flight.increment(1.0);
        InFlight(node)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.metrics.in_flight.decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warm_up_ramps_the_weight_linearly_from_one_to_full() {
        let now = Instant::now();
        let span = Duration::from_secs(100);
        let fresh = Warmup::new(100, Duration::ZERO, span, now);
        assert_eq!(fresh.weight(now), 1);
        assert_eq!(fresh.weight(now + Duration::from_secs(25)), 25);
        assert_eq!(fresh.weight(now + Duration::from_secs(100)), 100);
        let old = Warmup::new(100, Duration::from_secs(3600), span, now);
        assert_eq!(old.weight(now), 100, "an instance started long ago is warm at once");
        let off = Warmup::new(7, Duration::ZERO, Duration::ZERO, now);
        assert_eq!(off.weight(now), 7);
    }
}
