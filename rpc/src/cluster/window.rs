//! A time-based sliding window of call outcomes, in buckets of atomic counters.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Counts over the window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub(crate) calls: u32,
    pub(crate) failures: u32,
    pub(crate) slow: u32,
}

/// Outcomes of the last `span`, in `buckets` slices: an outcome leaves the window at most one
/// slice late, and recording is a few atomic additions, with no lock, whatever the call rate.
///
/// The first outcome of a new slice resets the bucket it reuses; an outcome recorded by another
/// thread in the same instant may be lost. The window feeds ratios over dozens of calls, which a
/// lost count at a slice boundary does not change.
#[derive(Debug)]
pub(crate) struct Window {
    buckets: Box<[Bucket]>,
    /// The length of a slice, in nanoseconds (changed by [`Window::set_span`]).
    slice_nanos: AtomicU64,
    epoch: Instant,
}

#[derive(Debug, Default)]
struct Bucket {
    /// Which slice (counted from `epoch`) the counts belong to.
    slice: AtomicU64,
    calls: AtomicU32,
    failures: AtomicU32,
    slow: AtomicU32,
}

impl Window {
    pub(crate) fn new(span: Duration, buckets: u32, epoch: Instant) -> Window {
        let buckets = buckets.max(1);
        let slice_nanos = AtomicU64::new(slice_nanos(span, buckets));
        Window { buckets: (0..buckets).map(|_| Bucket::default()).collect(), slice_nanos, epoch }
    }

    /// Covers `span` from now on, starting empty (counts of the old slices mean nothing in the
    /// new ones).
    pub(crate) fn set_span(&self, span: Duration) {
        self.slice_nanos.store(slice_nanos(span, self.buckets.len() as u32), Ordering::Relaxed);
        self.clear();
    }

    /// Records one outcome at `now`.
    pub(crate) fn record(&self, now: Instant, failed: bool, slow: bool) {
        let current = self.slice_of(now);
        let bucket = &self.buckets[(current % self.buckets.len() as u64) as usize];
        let seen = bucket.slice.load(Ordering::Acquire);
        if seen != current && bucket.slice.compare_exchange(seen, current, Ordering::AcqRel, Ordering::Acquire).is_ok()
        {
            bucket.reset();
        }
        bucket.calls.fetch_add(1, Ordering::Relaxed);
        if failed {
            bucket.failures.fetch_add(1, Ordering::Relaxed);
        }
        if slow {
            bucket.slow.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The totals over the window ending at `now`.
    pub(crate) fn totals(&self, now: Instant) -> Totals {
        let current = self.slice_of(now);
        let len = self.buckets.len() as u64;
        self.buckets
            .iter()
            .filter(|b| {
                let slice = b.slice.load(Ordering::Acquire);
                slice <= current && slice + len > current
            })
            .fold(Totals::default(), |sum, b| Totals {
                calls: sum.calls + b.calls.load(Ordering::Relaxed),
                failures: sum.failures + b.failures.load(Ordering::Relaxed),
                slow: sum.slow + b.slow.load(Ordering::Relaxed),
            })
    }

    /// Forgets every outcome (after a state change of the breaker).
    pub(crate) fn clear(&self) {
        self.buckets.iter().for_each(Bucket::reset);
    }

    fn slice_of(&self, now: Instant) -> u64 {
        let nanos = u128::from(self.slice_nanos.load(Ordering::Relaxed));
        (now.saturating_duration_since(self.epoch).as_nanos() / nanos) as u64
    }
}

/// The length of one of `buckets` slices of `span`, at least a millisecond.
fn slice_nanos(span: Duration, buckets: u32) -> u64 {
    (span / buckets).max(Duration::from_millis(1)).as_nanos().min(u128::from(u64::MAX)) as u64
}

impl Bucket {
    fn reset(&self) {
        self.calls.store(0, Ordering::Relaxed);
        self.failures.store(0, Ordering::Relaxed);
        self.slow.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_leave_the_window_after_its_span() {
        let epoch = Instant::now();
        let window = Window::new(Duration::from_secs(10), 10, epoch);
        let at = |secs: f64| epoch + Duration::from_secs_f64(secs);
        window.record(at(0.5), true, false);
        window.record(at(3.5), false, true);
        window.record(at(9.5), false, false);
        assert_eq!(window.totals(at(9.5)), Totals { calls: 3, failures: 1, slow: 1 });
        // At 10.5 s the slice of 0.5 s has been reused; 3.5 s is still in.
        window.record(at(10.5), false, false);
        assert_eq!(window.totals(at(10.5)), Totals { calls: 3, failures: 0, slow: 1 });
        window.record(at(30.0), false, false);
        assert_eq!(window.totals(at(30.0)), Totals { calls: 1, failures: 0, slow: 0 });
        window.clear();
        window.record(at(30.1), true, false);
        assert_eq!(window.totals(at(30.1)), Totals { calls: 1, failures: 1, slow: 0 });
    }
}
