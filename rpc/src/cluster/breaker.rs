//! The per-node circuit breaker.
//!
//! ```text
//!            failure ratio ≥ failure_ratio or slow ratio ≥ slow_call_ratio,
//!            over ≥ min_calls calls in the last `window`;
//!            or consecutive_failures failures in a row
//!   Closed ───────────────────────────────────────────────► Open
//!     ▲                                                   │  ▲
//!     │ half_open_probes probes succeed    open_for passed │  │ a probe fails or is slow
//!     │                                                   ▼  │
//!     └─────────────────────────────────────────────── HalfOpen
//! ```
//!
//! The ratios judge a node that degrades; the run of failures judges one that died. A window of
//! 10 s full of successes needs seconds of failures to reach a ratio of 0.5 (measured: 4 s with
//! `kill -9` of one of two stock-services mid-sale, every call to it failing meanwhile), while
//! five failures in a row with no success between take a few milliseconds at that rate.
//!
//! One breaker per node, never per service: a sick node is cut off while its healthy siblings
//! keep serving. The closed state, by far the commonest, costs an atomic load to check and a few
//! atomic additions to record a success; the lock is taken only for failures and slow calls
//! (the only outcomes that can trip the breaker) and in the half-open state.
//!
//! The settings can change while calls flow ([`Breaker::reconfigure`], from the live rules): the
//! state and the counts are kept, except that a new window span starts an empty window.

use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use super::config::BreakerConfig;
use super::window::Window;
use crate::sync::lock;

/// The state of a breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Calls flow; outcomes are counted.
    Closed,
    /// Calls are refused until `open_for` has passed.
    Open,
    /// A few probe calls are let through to test the node.
    HalfOpen,
}

impl BreakerState {
    /// The value of the `rpc_client_breaker_state` gauge: 0 closed, 1 open, 2 half-open.
    pub fn as_gauge(self) -> f64 {
        match self {
            BreakerState::Closed => 0.0,
            BreakerState::Open => 1.0,
            BreakerState::HalfOpen => 2.0,
        }
    }

    fn from_u8(value: u8) -> BreakerState {
        match value {
            1 => BreakerState::Open,
            2 => BreakerState::HalfOpen,
            _ => BreakerState::Closed,
        }
    }
}

/// Why a call was let through: counted normally, or as one of the half-open probes of a
/// generation (a probe from an earlier half-open spell must not count in a later one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    Normal,
    Probe { generation: u64 },
}

/// One node's breaker.
#[derive(Debug)]
pub(crate) struct Breaker {
    config: ArcSwap<BreakerConfig>,
    /// The node's address, for logs.
    addr: String,
    state: AtomicU8,
    /// Microseconds after `epoch` when an open breaker lets probes in.
    open_until_us: AtomicU64,
    epoch: Instant,
    /// Outcomes while closed.
    window: Window,
    /// Node failures since the last success, while closed.
    failures_in_a_row: AtomicU32,
    /// Serializes state changes and the half-open bookkeeping.
    inner: Mutex<Inner>,
    gauge: metrics::Gauge,
}

#[derive(Debug)]
struct Inner {
    /// Bumped on every state change.
    generation: u64,
    probes_started: u32,
    probes_succeeded: u32,
}

impl Breaker {
    pub(crate) fn new(config: BreakerConfig, addr: &str, gauge: metrics::Gauge) -> Breaker {
        let epoch = Instant::now();
        gauge.set(BreakerState::Closed.as_gauge());
        Breaker {
            window: Window::new(config.window, 10, epoch),
            failures_in_a_row: AtomicU32::new(0),
            inner: Mutex::new(Inner { generation: 0, probes_started: 0, probes_succeeded: 0 }),
            config: ArcSwap::from_pointee(config),
            addr: addr.to_owned(),
            state: AtomicU8::new(BreakerState::Closed as u8),
            open_until_us: AtomicU64::new(0),
            epoch,
            gauge,
        }
    }

    /// Puts new settings in force. An open breaker keeps the time it was opened until; turning
    /// breaking off closes it.
    pub(crate) fn reconfigure(&self, config: &BreakerConfig) {
        let mut inner = lock(&self.inner);
        let current = self.config.load();
        if **current == *config {
            return;
        }
        if current.window != config.window {
            self.window.set_span(config.window);
        }
        tracing::info!(addr = %self.addr, ?config, "circuit breaker settings changed");
        self.config.store(Arc::new(config.clone()));
        if !config.enabled && self.state() != BreakerState::Closed {
            self.transition(&mut inner, BreakerState::Closed);
        }
    }

    /// The current state. An open breaker whose time is up still reads `Open` until a call
    /// comes along to probe.
    pub(crate) fn state(&self) -> BreakerState {
        BreakerState::from_u8(self.state.load(Ordering::Acquire))
    }

    /// Whether [`Breaker::admit`] may let a call through now (balancers skip nodes that cannot).
    pub(crate) fn available(&self, now: Instant) -> bool {
        match self.state() {
            BreakerState::Closed => true,
            BreakerState::Open => self.micros(now) >= self.open_until_us.load(Ordering::Relaxed),
            BreakerState::HalfOpen => lock(&self.inner).probes_started < self.config.load().half_open_probes,
        }
    }

    /// Lets a call through, or refuses it. An open breaker whose time is up turns half-open here.
    pub(crate) fn admit(&self, now: Instant) -> Option<Admission> {
        if self.state() == BreakerState::Closed {
            return Some(Admission::Normal);
        }
        let mut inner = lock(&self.inner);
        match self.state() {
            BreakerState::Closed => return Some(Admission::Normal),
            BreakerState::Open if self.micros(now) >= self.open_until_us.load(Ordering::Relaxed) => {
                self.transition(&mut inner, BreakerState::HalfOpen);
            }
            BreakerState::Open => return None,
            BreakerState::HalfOpen => {}
        }
        if inner.probes_started >= self.config.load().half_open_probes {
            return None;
        }
        inner.probes_started += 1;
        Some(Admission::Probe { generation: inner.generation })
    }

    /// Calls at least this slow count as slow.
    pub(crate) fn slow_call_threshold(&self) -> Duration {
        self.config.load().slow_call_threshold
    }

    /// Records the outcome of an admitted call.
    pub(crate) fn record(&self, admission: Admission, now: Instant, failed: bool, elapsed: Duration) {
        let config = self.config.load();
        if !config.enabled {
            return;
        }
        let slow = elapsed >= config.slow_call_threshold;
        let Admission::Probe { generation } = admission else {
            self.record_closed(&config, now, failed, slow);
            return;
        };
        let mut inner = lock(&self.inner);
        if generation != inner.generation {
            return;
        }
        if failed || slow {
            tracing::warn!(addr = %self.addr, failed, slow, "half-open probe failed; circuit breaker re-opened");
            self.open(&mut inner, now, config.open_for);
        } else {
            inner.probes_succeeded += 1;
            if inner.probes_succeeded >= config.half_open_probes {
                tracing::info!(addr = %self.addr, "half-open probes succeeded; circuit breaker closed");
                self.transition(&mut inner, BreakerState::Closed);
            }
        }
    }

    /// Counts an outcome in the closed state, and opens if the window says so.
    fn record_closed(&self, config: &BreakerConfig, now: Instant, failed: bool, slow: bool) {
        // A call admitted before the breaker opened says nothing about the new state.
        if self.state() != BreakerState::Closed {
            return;
        }
        self.window.record(now, failed, slow);
        let in_a_row = if failed {
            self.failures_in_a_row.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            self.failures_in_a_row.store(0, Ordering::Relaxed);
            0
        };
        // A success only lowers the ratios: the next failure re-evaluates them.
        if !failed && !slow {
            return;
        }
        let mut inner = lock(&self.inner);
        if self.state() != BreakerState::Closed {
            return;
        }
        let totals = self.window.totals(now);
        let ratio = |count: u32| f64::from(count) / f64::from(totals.calls.max(1));
        let died = config.consecutive_failures > 0 && in_a_row >= config.consecutive_failures;
        if died
            || totals.calls >= config.min_calls.max(1)
                && (ratio(totals.failures) >= config.failure_ratio || ratio(totals.slow) >= config.slow_call_ratio)
        {
            tracing::warn!(addr = %self.addr, ?totals, failures_in_a_row = in_a_row, "circuit breaker opened");
            self.open(&mut inner, now, config.open_for);
        }
    }

    /// Gives back an admission whose call never completed (cancelled, or not sent at all).
    pub(crate) fn release(&self, admission: Admission) {
        if let Admission::Probe { generation } = admission {
            let mut inner = lock(&self.inner);
            if generation == inner.generation {
                inner.probes_started = inner.probes_started.saturating_sub(1);
            }
        }
    }

    fn open(&self, inner: &mut Inner, now: Instant, open_for: Duration) {
        let until = self.micros(now + open_for);
        self.open_until_us.store(until, Ordering::Relaxed);
        self.transition(inner, BreakerState::Open);
    }

    fn transition(&self, inner: &mut Inner, to: BreakerState) {
        inner.generation += 1;
        inner.probes_started = 0;
        inner.probes_succeeded = 0;
        self.window.clear();
        self.failures_in_a_row.store(0, Ordering::Relaxed);
        self.state.store(to as u8, Ordering::Release);
        self.gauge.set(to.as_gauge());
    }

    fn micros(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_micros() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        let config = BreakerConfig {
            min_calls: 10,
            failure_ratio: 0.5,
            slow_call_threshold: Duration::from_millis(100),
            slow_call_ratio: 0.8,
            open_for: Duration::from_secs(5),
            half_open_probes: 2,
            // The ratio tests judge the window alone.
            consecutive_failures: 0,
            ..Default::default()
        };
        Breaker::new(config, "test:1", metrics::Gauge::noop())
    }

    #[test]
    fn a_run_of_failures_opens_a_breaker_whose_window_is_full_of_successes() {
        let config = BreakerConfig { consecutive_failures: 5, ..Default::default() };
        let (breaker, now) = (Breaker::new(config, "test:1", metrics::Gauge::noop()), Instant::now());
        for _ in 0..1000 {
            run(&breaker, now, false, 1);
        }
        for _ in 0..4 {
            run(&breaker, now, true, 1);
        }
        run(&breaker, now, false, 1);
        for _ in 0..4 {
            run(&breaker, now, true, 1);
        }
        assert_eq!(breaker.state(), BreakerState::Closed, "a success between breaks the run");
        run(&breaker, now, true, 1);
        assert_eq!(breaker.state(), BreakerState::Open, "5 in a row, at a failure ratio under 1%");
    }

    fn run(breaker: &Breaker, now: Instant, failed: bool, elapsed_ms: u64) -> bool {
        match breaker.admit(now) {
            Some(admission) => {
                breaker.record(admission, now, failed, Duration::from_millis(elapsed_ms));
                true
            }
            None => false,
        }
    }

    #[test]
    fn opens_on_the_failure_ratio_only_after_the_minimum_number_of_calls() {
        let (breaker, now) = (breaker(), Instant::now());
        for _ in 0..9 {
            run(&breaker, now, true, 1);
        }
        assert_eq!(breaker.state(), BreakerState::Closed, "9 calls are below min_calls");
        run(&breaker, now, true, 1);
        assert_eq!(breaker.state(), BreakerState::Open);
        assert!(!breaker.available(now));
        assert!(!run(&breaker, now, false, 1), "an open breaker refuses calls");
    }

    #[test]
    fn opens_on_the_slow_call_ratio() {
        let (breaker, now) = (breaker(), Instant::now());
        // The ratios are evaluated when a failure or a slow call is recorded.
        for i in 0..10 {
            run(&breaker, now, false, if i < 2 { 1 } else { 150 });
        }
        assert_eq!(breaker.state(), BreakerState::Open);
    }

    #[test]
    fn half_open_admits_a_few_probes_then_closes_or_reopens_on_their_outcome() {
        let (breaker, now) = (breaker(), Instant::now());
        for _ in 0..10 {
            run(&breaker, now, true, 1);
        }
        let later = now + Duration::from_secs(5);
        assert!(breaker.available(later));
        let first = breaker.admit(later).expect("probe");
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        let second = breaker.admit(later).expect("probe");
        assert!(breaker.admit(later).is_none(), "only two probes at once");
        breaker.record(first, later, false, Duration::from_millis(1));
        breaker.record(second, later, true, Duration::from_millis(1));
        assert_eq!(breaker.state(), BreakerState::Open, "a failed probe re-opens");

        let even_later = later + Duration::from_secs(5);
        let probes = [breaker.admit(even_later).unwrap(), breaker.admit(even_later).unwrap()];
        // A cancelled probe gives its slot back.
        breaker.release(probes[0]);
        let replacement = breaker.admit(even_later).unwrap();
        breaker.record(probes[1], even_later, false, Duration::from_millis(1));
        breaker.record(replacement, even_later, false, Duration::from_millis(1));
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    #[test]
    fn new_settings_take_effect_on_the_next_outcome_and_keep_the_state() {
        let (breaker, now) = (breaker(), Instant::now());
        for _ in 0..5 {
            run(&breaker, now, true, 1);
        }
        assert_eq!(breaker.state(), BreakerState::Closed, "5 calls are below min_calls 10");
        breaker.reconfigure(&BreakerConfig { min_calls: 6, ..breaker.config.load().as_ref().clone() });
        run(&breaker, now, true, 1);
        assert_eq!(breaker.state(), BreakerState::Open, "the five failures before still count");
        breaker.reconfigure(&BreakerConfig {
            open_for: Duration::from_secs(60),
            ..breaker.config.load().as_ref().clone()
        });
        assert!(breaker.admit(now + Duration::from_secs(5)).is_some(), "it keeps the time it was opened until");
        breaker.reconfigure(&BreakerConfig { enabled: false, ..breaker.config.load().as_ref().clone() });
        assert_eq!(breaker.state(), BreakerState::Closed, "turning breaking off closes it");
        for _ in 0..100 {
            assert!(run(&breaker, now, true, 1), "a disabled breaker admits every call");
        }
    }

    #[test]
    fn a_disabled_breaker_never_opens() {
        let breaker = Breaker::new(
            BreakerConfig { enabled: false, min_calls: 1, ..Default::default() },
            "test:1",
            metrics::Gauge::noop(),
        );
        for _ in 0..100 {
            assert!(run(&breaker, Instant::now(), true, 1));
        }
        assert_eq!(breaker.state(), BreakerState::Closed);
    }
}
