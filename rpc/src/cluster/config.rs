//! Cluster settings, deserializable from configuration (`SECKILL_*` variables in the binaries).

use std::time::Duration;

use crate::client::ClientConfig;

/// Settings of a [`super::Cluster`]. Every field has a default suited to a LAN.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ClusterConfig {
    /// How calls are spread over the nodes.
    pub balancer: BalancerKind,
    /// A node that started this recently gets a share of its weight that grows linearly from
    /// almost nothing to all of it over this time (JIT, caches and pools warm up first). Zero
    /// turns warm-up off. Not applied by `consistent_hash`, which routes by key, not by weight.
    #[serde(with = "humantime_serde")]
    pub warmup: Duration,
    /// Settings of the per-node connection pools (including the default call timeout).
    pub client: ClientConfig,
    /// The per-node circuit breaker.
    pub breaker: BreakerConfig,
    /// Retries of idempotent calls.
    pub retry: RetryConfig,
    /// The latency estimate of the `peak_ewma` balancer.
    pub peak_ewma: PeakEwmaConfig,
}

/// The balancing algorithm; see the crate README for when to use each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BalancerKind {
    /// Random, in proportion to (warmed-up) weight.
    WeightedRandom,
    /// Smooth weighted round robin, nginx's algorithm: deterministic and evenly interleaved.
    SmoothRoundRobin,
    /// Power of two choices on in-flight calls per unit of weight.
    #[default]
    LeastActive,
    /// Consistent hash ring (160 virtual nodes per node) on the method's `hash_key`; calls without
    /// a key are balanced as `least_active`.
    ConsistentHash,
    /// Power of two choices on peak-EWMA latency × (in-flight + 1) per unit of weight.
    PeakEwma,
}

impl BalancerKind {
    /// Every balancer, in documentation order.
    pub const ALL: [BalancerKind; 5] = [
        BalancerKind::WeightedRandom,
        BalancerKind::SmoothRoundRobin,
        BalancerKind::LeastActive,
        BalancerKind::ConsistentHash,
        BalancerKind::PeakEwma,
    ];

    /// The configuration name (`least_active`, ...).
    pub fn name(self) -> &'static str {
        match self {
            BalancerKind::WeightedRandom => "weighted_random",
            BalancerKind::SmoothRoundRobin => "smooth_round_robin",
            BalancerKind::LeastActive => "least_active",
            BalancerKind::ConsistentHash => "consistent_hash",
            BalancerKind::PeakEwma => "peak_ewma",
        }
    }
}

/// Retry rules: only idempotent methods, only on another node, with backoff, within a budget.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct RetryConfig {
    /// Attempts per call, the first included (1 disables retries).
    pub max_attempts: u32,
    /// Ceiling of the delay before the first retry; doubles per retry; the delay is drawn
    /// uniformly below the ceiling ("full jitter").
    #[serde(with = "humantime_serde")]
    pub backoff_base: Duration,
    /// Largest ceiling of the delay.
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    /// Retries allowed as a fraction of calls over `budget_window` (0.1: at most 10% extra calls).
    pub budget_ratio: f32,
    /// Retries per second allowed regardless of traffic, so a quiet client can still retry.
    pub budget_min_per_sec: u32,
    /// How long a call counts toward the budget (clamped to 1–60 s).
    #[serde(with = "humantime_serde")]
    pub budget_window: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 3,
            backoff_base: Duration::from_millis(10),
            backoff_max: Duration::from_millis(200),
            budget_ratio: 0.1,
            budget_min_per_sec: 10,
            budget_window: Duration::from_secs(10),
        }
    }
}

/// Settings of the per-node circuit breaker.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct BreakerConfig {
    /// `false` turns breaking off (every node always admits calls).
    pub enabled: bool,
    /// Span of the sliding window the ratios are computed over.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// No verdict before this many calls in the window: two failures out of three prove nothing.
    pub min_calls: u32,
    /// Open when at least this fraction of the window's calls failed (node failures only:
    /// transport errors, timeouts, `Overloaded`, internal errors; never application errors).
    /// The ratios are evaluated each time a failure or a slow call is recorded.
    pub failure_ratio: f64,
    /// A call slower than this counts as slow.
    #[serde(with = "humantime_serde")]
    pub slow_call_threshold: Duration,
    /// Open when at least this fraction of the window's calls were slow.
    pub slow_call_ratio: f64,
    /// Open after this many node failures in a row, whatever the window says: a node that died
    /// (0 turns this off).
    pub consecutive_failures: u32,
    /// How long an open breaker refuses calls before letting probes through.
    #[serde(with = "humantime_serde")]
    pub open_for: Duration,
    /// Probes admitted while half-open; all must succeed (and be fast) to close again.
    pub half_open_probes: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            enabled: true,
            window: Duration::from_secs(10),
            min_calls: 20,
            failure_ratio: 0.5,
            slow_call_threshold: Duration::from_secs(1),
            slow_call_ratio: 0.8,
            consecutive_failures: 5,
            open_for: Duration::from_secs(5),
            half_open_probes: 3,
        }
    }
}

/// The latency estimate behind the `peak_ewma` balancer.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct PeakEwmaConfig {
    /// Estimate of a node not measured yet: pessimistic enough that a new node is tried, not flooded.
    #[serde(with = "humantime_serde")]
    pub default_rtt: Duration,
    /// Time constant of the decay: a latency spike fades to a third of itself after this long.
    #[serde(with = "humantime_serde")]
    pub decay: Duration,
}

impl Default for PeakEwmaConfig {
    fn default() -> Self {
        PeakEwmaConfig { default_rtt: Duration::from_millis(30), decay: Duration::from_secs(10) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_configuration_keeps_the_other_defaults() {
        let config: ClusterConfig = serde_json::from_str(
            r#"{"balancer": "smooth_round_robin", "warmup": "30s", "retry": {"max_attempts": 2}}"#,
        )
        .unwrap();
        assert_eq!(config.balancer, BalancerKind::SmoothRoundRobin);
        assert_eq!(config.warmup, Duration::from_secs(30));
        assert_eq!(config.retry.max_attempts, 2);
        assert_eq!(config.retry.budget_ratio, 0.1);
        assert_eq!(config.breaker, BreakerConfig::default());
        for kind in BalancerKind::ALL {
            let parsed: BalancerKind = serde_json::from_value(serde_json::json!(kind.name())).unwrap();
            assert_eq!(parsed, kind);
        }
    }
}
