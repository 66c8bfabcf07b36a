//! A time-based sliding window of call outcomes, in buckets.

use std::time::{Duration, Instant};

/// Counts over the window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub(crate) calls: u32,
    pub(crate) failures: u32,
    pub(crate) slow: u32,
}

/// Outcomes of the last `span`, in `buckets` slices: an outcome leaves the window at most one
/// slice late, and recording costs a few additions, whatever the call rate.
#[derive(Debug)]
pub(crate) struct Window {
    buckets: Box<[Bucket]>,
    slice: Duration,
    epoch: Instant,
}

#[derive(Clone, Copy, Debug, Default)]
struct Bucket {
    /// Which slice (counted from `epoch`) the counts belong to.
    slice: u64,
    totals: Totals,
}

impl Window {
    pub(crate) fn new(span: Duration, buckets: u32, epoch: Instant) -> Window {
        let buckets = buckets.max(1);
        let slice = (span / buckets).max(Duration::from_millis(1));
        Window { buckets: vec![Bucket::default(); buckets as usize].into(), slice, epoch }
    }

    /// Records one outcome at `now` and returns the totals over the window.
    pub(crate) fn record(&mut self, now: Instant, failed: bool, slow: bool) -> Totals {
        let current = self.slice_of(now);
        let len = self.buckets.len() as u64;
        let bucket = &mut self.buckets[(current % len) as usize];
        if bucket.slice != current {
            *bucket = Bucket { slice: current, totals: Totals::default() };
        }
        bucket.totals.calls += 1;
        bucket.totals.failures += u32::from(failed);
        bucket.totals.slow += u32::from(slow);
        self.buckets.iter().filter(|b| b.slice + len > current).fold(Totals::default(), |sum, b| Totals {
            calls: sum.calls + b.totals.calls,
            failures: sum.failures + b.totals.failures,
            slow: sum.slow + b.totals.slow,
        })
    }

    /// Forgets every outcome (after a state change of the breaker).
    pub(crate) fn clear(&mut self) {
        self.buckets.fill(Bucket::default());
    }

    fn slice_of(&self, now: Instant) -> u64 {
        (now.saturating_duration_since(self.epoch).as_nanos() / self.slice.as_nanos()) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_leave_the_window_after_its_span() {
        let epoch = Instant::now();
        let mut window = Window::new(Duration::from_secs(10), 10, epoch);
        let at = |secs: f64| epoch + Duration::from_secs_f64(secs);
        window.record(at(0.5), true, false);
        window.record(at(3.5), false, true);
        assert_eq!(window.record(at(9.5), false, false), Totals { calls: 3, failures: 1, slow: 1 });
        // At 10.5 s the slice of 0.5 s has been reused; 3.5 s is still in.
        assert_eq!(window.record(at(10.5), false, false), Totals { calls: 3, failures: 0, slow: 1 });
        assert_eq!(window.record(at(30.0), false, false), Totals { calls: 1, failures: 0, slow: 0 });
        window.clear();
        assert_eq!(window.record(at(30.1), true, false), Totals { calls: 1, failures: 1, slow: 0 });
    }
}
