//! The balancers: which node gets the next attempt.
//!
//! Each algorithm is a function of the node list and a predicate saying which nodes may be
//! chosen (not tried yet by this call, breaker admitting calls). They skip ineligible nodes in
//! their own natural way instead of copying the eligible ones out: picking allocates nothing.

mod hash_ring;
mod p2c;
mod round_robin;
mod weighted_random;

use std::sync::Arc;
use std::time::Instant;

pub(crate) use self::hash_ring::HashRing;
pub(crate) use self::round_robin::SmoothRoundRobin;
use super::config::BalancerKind;
use super::node::Node;

/// A balancer with whatever state its algorithm keeps for one node list.
#[derive(Debug)]
pub(crate) enum Balancer {
    WeightedRandom,
    SmoothRoundRobin(SmoothRoundRobin),
    LeastActive,
    ConsistentHash(HashRing),
    PeakEwma,
}

impl Balancer {
    /// The balancer of `kind` for `nodes`.
    pub(crate) fn new(kind: BalancerKind, nodes: &[Arc<Node>]) -> Balancer {
        match kind {
            BalancerKind::WeightedRandom => Balancer::WeightedRandom,
            BalancerKind::SmoothRoundRobin => Balancer::SmoothRoundRobin(SmoothRoundRobin::new(nodes.len())),
            BalancerKind::LeastActive => Balancer::LeastActive,
            BalancerKind::ConsistentHash => {
                Balancer::ConsistentHash(HashRing::new(nodes.iter().map(|node| node.instance.addr.as_str())))
            }
            BalancerKind::PeakEwma => Balancer::PeakEwma,
        }
    }

    /// The index of the node for a call with routing key `key`, among those `eligible` accepts.
    pub(crate) fn pick(
        &self,
        nodes: &[Arc<Node>],
        key: Option<u64>,
        now: Instant,
        eligible: impl Fn(usize) -> bool,
    ) -> Option<usize> {
        match (self, key) {
            (Balancer::WeightedRandom, _) => weighted_random::pick(nodes.len(), |i| nodes[i].weight(now), eligible),
            (Balancer::SmoothRoundRobin(state), _) => state.pick(nodes.len(), |i| nodes[i].weight(now), eligible),
            (Balancer::ConsistentHash(ring), Some(key)) => ring.pick(key, eligible),
            (Balancer::LeastActive | Balancer::ConsistentHash(_), _) => {
                p2c::pick(nodes.len(), eligible, |i| least_active_cost(&nodes[i], now))
            }
            (Balancer::PeakEwma, _) => p2c::pick(nodes.len(), eligible, |i| peak_ewma_cost(&nodes[i], now)),
        }
    }
}

/// In-flight calls per unit of weight; the `+ 1` makes an idle heavy node beat an idle light one.
fn least_active_cost(node: &Node, now: Instant) -> f64 {
    (node.in_flight() as f64 + 1.0) / f64::from(node.weight(now))
}

/// Expected wait: latency estimate × queue (in flight + this call), per unit of weight.
fn peak_ewma_cost(node: &Node, now: Instant) -> f64 {
    node.latency.estimate_ns() * (node.in_flight() as f64 + 1.0) / f64::from(node.weight(now))
}
