//! Peak-EWMA latency estimate (Finagle's and linkerd's), for the `peak_ewma` balancer.
//!
//! A slower sample replaces the estimate at once (the peak); faster samples pull it down with a
//! weight that depends on the time since the last sample, so the estimate forgets a spike over
//! `decay` whatever the call rate. tower has the same algorithm in `tower::load::PeakEwma`, but
//! only as a wrapper around a `tower::Service`; ours sits in a node beside its breaker.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One node's latency estimate. Lock-free: two racing updates may lose one sample, which an
/// estimate can afford.
#[derive(Debug)]
pub(crate) struct PeakEwma {
    /// Estimate in nanoseconds, as `f64` bits.
    estimate_ns: AtomicU64,
    /// Nanoseconds after `epoch` of the last sample.
    stamp_ns: AtomicU64,
    epoch: Instant,
    decay_ns: f64,
}

impl PeakEwma {
    pub(crate) fn new(default_rtt: Duration, decay: Duration, epoch: Instant) -> PeakEwma {
        PeakEwma {
            estimate_ns: AtomicU64::new((default_rtt.as_nanos() as f64).to_bits()),
            stamp_ns: AtomicU64::new(0),
            epoch,
            decay_ns: (decay.as_nanos() as f64).max(1.0),
        }
    }

    /// The current estimate.
    pub(crate) fn estimate(&self) -> Duration {
        Duration::from_nanos(f64::from_bits(self.estimate_ns.load(Ordering::Relaxed)) as u64)
    }

    /// The estimate in nanoseconds, for cost comparisons.
    pub(crate) fn estimate_ns(&self) -> f64 {
        f64::from_bits(self.estimate_ns.load(Ordering::Relaxed))
    }

    /// Folds in one observed round trip, completed at `now`.
    pub(crate) fn observe(&self, rtt: Duration, now: Instant) {
        let now_ns = now.saturating_duration_since(self.epoch).as_nanos() as u64;
        let last_ns = self.stamp_ns.swap(now_ns, Ordering::Relaxed);
        let rtt = rtt.as_nanos() as f64;
        let estimate = self.estimate_ns();
        let next = if rtt > estimate {
            rtt
        } else {
            let weight = (-(now_ns.saturating_sub(last_ns) as f64) / self.decay_ns).exp();
            estimate * weight + rtt * (1.0 - weight)
        };
        self.estimate_ns.store(next.to_bits(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peaks_are_taken_at_once_and_forgotten_over_the_decay_time() {
        let epoch = Instant::now();
        let ewma = PeakEwma::new(Duration::from_millis(30), Duration::from_secs(1), epoch);
        ewma.observe(Duration::from_millis(1), epoch + Duration::from_secs(10));
        assert!(ewma.estimate() < Duration::from_millis(2), "a long quiet spell forgets the default");
        ewma.observe(Duration::from_millis(200), epoch + Duration::from_secs(11));
        assert_eq!(ewma.estimate(), Duration::from_millis(200), "a peak is taken at once");
        ewma.observe(Duration::from_millis(1), epoch + Duration::from_millis(11_001));
        assert!(ewma.estimate() > Duration::from_millis(190), "one fast sample right after barely moves it");
        ewma.observe(Duration::from_millis(1), epoch + Duration::from_secs(14));
        assert!(ewma.estimate() < Duration::from_millis(15), "{:?}", ewma.estimate());
    }
}
