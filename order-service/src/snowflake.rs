//! Snowflake ids: 41 bits of milliseconds since [`EPOCH_MS`], 10 bits of worker id, 12 bits of
//! sequence. Unique across processes as long as no two share a worker id (see
//! [`crate::worker_lease`]), time-ordered, and never repeated, even when the clock steps back.
//!
//! ```text
//!  63  62                                   22 21          12 11           0
//! +---+---------------------------------------+--------------+--------------+
//! | 0 |      milliseconds since EPOCH_MS      |  worker id   |   sequence   |
//! +---+---------------------------------------+--------------+--------------+
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// 2026-01-01T00:00:00Z: 41 bits of milliseconds from here last until 2095.
pub const EPOCH_MS: u64 = 1_767_225_600_000;
/// Largest worker id (10 bits).
pub const MAX_WORKER_ID: u16 = 1023;
const SEQUENCE_BITS: u32 = 12;
const WORKER_BITS: u32 = 10;
const MAX_SEQUENCE: u64 = (1 << SEQUENCE_BITS) - 1;
/// A clock step back up to this much is waited out; a larger one is an error.
const MAX_BACKWARDS_WAIT_MS: u64 = 10;

/// Milliseconds since the Unix epoch. A trait so tests can make time go backwards.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now_ms(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
    }
}

/// Why no id was produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnowflakeError {
    /// The clock went back further than we are willing to wait; issuing now could repeat an id.
    #[error("clock moved backwards by {0} ms; refusing to issue ids")]
    ClockMovedBackwards(u64),
    /// The lease is not valid yet: Redis restarted recently, and a process that held this worker
    /// id before the restart may still be issuing with it for this many ms.
    #[error("worker id lease not valid for another {0} ms (waiting out a previous holder)")]
    LeaseNotYetValid(u64),
    /// The worker id lease was not renewed in time: another process may hold this id now.
    #[error("worker id lease lost; refusing to issue ids")]
    LeaseLost,
    /// A worker id above [`MAX_WORKER_ID`].
    #[error("worker id {0} is out of range 0..=1023")]
    WorkerIdOutOfRange(u16),
    /// The clock reads before [`EPOCH_MS`]: the time bits would underflow and repeat ids.
    #[error("the clock reads {0} ms before the id epoch (2026-01-01); refusing to issue ids")]
    ClockBeforeEpoch(u64),
}

/// Lease validity shared with [`crate::worker_lease::WorkerLease`]: ids may be issued while the
/// clock (ms since the Unix epoch) is in `[from, until)`.
#[derive(Debug, Default)]
pub struct LeaseWindow {
    /// Not before: a lease taken while Redis had just restarted waits out any previous holder.
    pub from: AtomicU64,
    /// Not after: the renewal must keep this ahead.
    pub until: AtomicU64,
}

/// A lease window shared between a lease and its generators.
pub type LeaseDeadline = Arc<LeaseWindow>;

/// An id generator for one worker id.
pub struct Snowflake {
    worker_id: u16,
    clock: Box<dyn Clock>,
    state: Mutex<State>,
    lease: Option<LeaseDeadline>,
}

#[derive(Debug, Default)]
struct State {
    last_ms: u64,
    sequence: u64,
}

impl std::fmt::Debug for Snowflake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snowflake").field("worker_id", &self.worker_id).finish_non_exhaustive()
    }
}

impl Snowflake {
    /// A generator on the system clock. Prefer [`crate::worker_lease::WorkerLease::snowflake`],
    /// which guarantees the worker id is not shared.
    pub fn new(worker_id: u16) -> Result<Snowflake, SnowflakeError> {
        Snowflake::with_clock(worker_id, SystemClock, None)
    }

    /// A generator on any clock, optionally bound to a lease.
    pub fn with_clock(
        worker_id: u16,
        clock: impl Clock,
        lease: Option<LeaseDeadline>,
    ) -> Result<Snowflake, SnowflakeError> {
        if worker_id > MAX_WORKER_ID {
            return Err(SnowflakeError::WorkerIdOutOfRange(worker_id));
        }
        Ok(Snowflake { worker_id, clock: Box::new(clock), state: Mutex::new(State::default()), lease })
    }

    /// The worker id.
    pub fn worker_id(&self) -> u16 {
        self.worker_id
    }

    /// The next id: greater than every id this generator issued before.
    pub fn next_id(&self) -> Result<i64, SnowflakeError> {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut now = self.clock.now_ms();
        if now < EPOCH_MS {
            return Err(SnowflakeError::ClockBeforeEpoch(EPOCH_MS - now));
        }
        if let Some(window) = &self.lease {
            let from = window.from.load(Ordering::Acquire);
            if now < from {
                return Err(SnowflakeError::LeaseNotYetValid(from - now));
            }
            if now >= window.until.load(Ordering::Acquire) {
                return Err(SnowflakeError::LeaseLost);
            }
        }
        if now < state.last_ms {
            let behind = state.last_ms - now;
            if behind > MAX_BACKWARDS_WAIT_MS {
                return Err(SnowflakeError::ClockMovedBackwards(behind));
            }
            // A small step back (NTP slewing, a VM pause): wait until we are past it.
            now = self.wait_until(state.last_ms);
        }
        if now == state.last_ms {
            state.sequence = (state.sequence + 1) & MAX_SEQUENCE;
            if state.sequence == 0 {
                // 4096 ids in this millisecond already: move to the next one.
                now = self.wait_until(state.last_ms + 1);
            }
        } else {
            state.sequence = 0;
        }
        state.last_ms = now;
        let elapsed = now - EPOCH_MS;
        Ok(((elapsed << (WORKER_BITS + SEQUENCE_BITS)) | (u64::from(self.worker_id) << SEQUENCE_BITS) | state.sequence)
            as i64)
    }

    fn wait_until(&self, target_ms: u64) -> u64 {
        loop {
            let now = self.clock.now_ms();
            if now >= target_ms {
                return now;
            }
            std::thread::sleep(Duration::from_micros(100));
        }
    }
}

/// The parts of an id, for debugging and tests.
pub fn decompose(id: i64) -> (u64, u16, u16) {
    let id = id as u64;
    let ms = (id >> (WORKER_BITS + SEQUENCE_BITS)) + EPOCH_MS;
    let worker = ((id >> SEQUENCE_BITS) & u64::from(MAX_WORKER_ID)) as u16;
    let sequence = (id & MAX_SEQUENCE) as u16;
    (ms, worker, sequence)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex as StdMutex;

    /// A clock that replays a script of readings, then repeats the last one plus one per call.
    struct ScriptedClock(StdMutex<(Vec<u64>, u64)>);

    impl ScriptedClock {
        fn new(readings: &[u64]) -> Self {
            ScriptedClock(StdMutex::new((readings.iter().rev().copied().collect(), 0)))
        }
    }

    impl Clock for ScriptedClock {
        fn now_ms(&self) -> u64 {
            let mut guard = self.0.lock().unwrap();
            let (script, last) = &mut *guard;
            *last = script.pop().unwrap_or(*last + 1);
            *last
        }
    }

    const T: u64 = EPOCH_MS + 1_000_000;

    #[test]
    fn ids_carry_time_worker_and_sequence() {
        let generator = Snowflake::with_clock(5, ScriptedClock::new(&[T, T, T + 1]), None).unwrap();
        let ids: Vec<i64> = (0..3).map(|_| generator.next_id().unwrap()).collect();
        assert_eq!(decompose(ids[0]), (T, 5, 0));
        assert_eq!(decompose(ids[1]), (T, 5, 1));
        assert_eq!(decompose(ids[2]), (T + 1, 5, 0));
    }

    #[test]
    fn a_small_step_back_is_waited_out_and_never_repeats_an_id() {
        // 1000, then the clock jumps back 3 ms and recovers.
        let generator =
            Snowflake::with_clock(1, ScriptedClock::new(&[T, T - 3, T - 2, T - 1, T, T, T + 1]), None).unwrap();
        let first = generator.next_id().unwrap();
        let second = generator.next_id().unwrap();
        assert!(second > first, "{second} must follow {first}");
        assert_eq!(decompose(second), (T, 1, 1));
    }

    #[test]
    fn a_large_step_back_is_an_error_not_a_repeat() {
        let generator = Snowflake::with_clock(1, ScriptedClock::new(&[T, T - 5_000]), None).unwrap();
        generator.next_id().unwrap();
        assert_eq!(generator.next_id(), Err(SnowflakeError::ClockMovedBackwards(5_000)));
    }

    #[test]
    fn sequence_exhaustion_moves_to_the_next_millisecond() {
        let readings = vec![T; 4097];
        let generator = Snowflake::with_clock(2, ScriptedClock::new(&readings), None).unwrap();
        let ids: Vec<i64> = (0..4097).map(|_| generator.next_id().unwrap()).collect();
        assert!(ids.windows(2).all(|w| w[1] > w[0]));
        assert_eq!(decompose(ids[4095]), (T, 2, 4095));
        assert_eq!(decompose(ids[4096]).0, T + 1);
    }

    #[test]
    fn a_lease_not_valid_yet_issues_nothing_until_it_is() {
        let lease = Arc::new(LeaseWindow { from: AtomicU64::new(T + 2), until: AtomicU64::new(T + 100) });
        let generator = Snowflake::with_clock(3, ScriptedClock::new(&[T, T + 2]), Some(lease)).unwrap();
        assert_eq!(generator.next_id(), Err(SnowflakeError::LeaseNotYetValid(2)));
        assert!(generator.next_id().is_ok());
    }

    #[test]
    fn a_clock_before_the_epoch_issues_nothing() {
        let generator = Snowflake::with_clock(1, ScriptedClock::new(&[EPOCH_MS - 1]), None).unwrap();
        assert_eq!(generator.next_id(), Err(SnowflakeError::ClockBeforeEpoch(1)));
    }

    #[test]
    fn an_expired_lease_stops_issuing() {
        let lease = Arc::new(LeaseWindow { from: AtomicU64::new(0), until: AtomicU64::new(T + 1) });
        let generator = Snowflake::with_clock(3, ScriptedClock::new(&[T, T + 1]), Some(lease)).unwrap();
        assert!(generator.next_id().is_ok());
        assert_eq!(generator.next_id(), Err(SnowflakeError::LeaseLost));
        assert_eq!(Snowflake::new(1024).unwrap_err(), SnowflakeError::WorkerIdOutOfRange(1024));
    }
}
