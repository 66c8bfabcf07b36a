//! Exponential backoff with full jitter: the one retry schedule of the workspace (reconnects,
//! retries, registrations, consumers, subscriptions).

use std::time::{Duration, Instant};

/// A retry schedule: after `n` consecutive failures the next attempt waits a random time in
/// `[0, min(max, base * 2^n))` ("full jitter", so that many clients that lost the same server do
/// not all come back at the same instant).
///
/// Two ways to use it: a loop sleeps for what [`Backoff::failed`] returns; a gate that is asked
/// often (a connection slot) records the failure and checks [`Backoff::wait`] before each try.
#[derive(Clone, Debug)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    failures: u32,
    next_attempt: Option<Instant>,
}

impl Backoff {
    /// A schedule with no failures yet.
    pub fn new(base: Duration, max: Duration) -> Self {
        Backoff { base, max, failures: 0, next_attempt: None }
    }

    /// Time to wait before the next attempt is allowed, if any.
    pub fn wait(&self, now: Instant) -> Option<Duration> {
        self.next_attempt.and_then(|at| at.checked_duration_since(now)).filter(|d| !d.is_zero())
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Records a failed attempt and schedules the next one.
    pub fn failed(&mut self, now: Instant) -> Duration {
        let ceiling = self.ceiling();
        self.failures = self.failures.saturating_add(1);
        let delay = ceiling.mul_f64(rand::random::<f64>());
        self.next_attempt = Some(now + delay);
        delay
    }

    /// [`Backoff::failed`] at the current instant: the pause before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        self.failed(Instant::now())
    }

    /// Records a success: the next failure starts from `base` again.
    pub fn succeeded(&mut self) {
        self.failures = 0;
        self.next_attempt = None;
    }

    /// Upper bound of the delay after the next failure.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.failures.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_exponentially_up_to_the_cap_and_reset_on_success() {
        let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(5));
        let now = Instant::now();
        assert_eq!(backoff.wait(now), None);
        let mut ceilings = Vec::new();
        for _ in 0..10 {
            ceilings.push(backoff.ceiling());
            let delay = backoff.failed(now);
            assert!(delay <= *ceilings.last().unwrap());
        }
        assert_eq!(ceilings[0], Duration::from_millis(50));
        assert_eq!(ceilings[1], Duration::from_millis(100));
        assert_eq!(ceilings[6], Duration::from_millis(3200));
        assert_eq!(ceilings[9], Duration::from_secs(5));
        backoff.succeeded();
        assert_eq!(backoff.ceiling(), Duration::from_millis(50));
        assert_eq!(backoff.wait(now), None);
    }
}
