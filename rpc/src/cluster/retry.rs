//! The retry rules: which failures are retried, and the budget that caps retries.

use std::time::Duration;

use tower::retry::budget::{Budget, TpsBudget};

use super::config::RetryConfig;
use crate::client::MethodInfo;
use crate::error::Error;

/// Decides whether a failed attempt may be tried again, and holds the cluster's retry budget.
///
/// Idempotent calls are retried after any failure of the node; every call, idempotent or not, is
/// retried when it never reached a server (no connection could be made or secured, or the
/// server was going away): that cannot apply it twice.
///
/// The budget is tower's [`TpsBudget`]: every call deposits, every retry of a call that may have
/// run withdraws (one that never reached a server is free), deposits expire after the window. With a ratio of 0.1 a cluster that fails completely sends at
/// most 10% more calls than it was asked to (plus `budget_min_per_sec`), never a retry storm.
#[derive(Debug)]
pub(crate) struct RetryPolicy {
    /// The settings it was built from.
    pub(crate) config: RetryConfig,
    max_attempts: u32,
    budget: TpsBudget,
    exhausted: metrics::Counter,
}

impl RetryPolicy {
    pub(crate) fn new(config: &RetryConfig, service: &str) -> RetryPolicy {
        // TpsBudget panics outside these ranges: clamp instead.
        let window = config.budget_window.clamp(Duration::from_secs(1), Duration::from_secs(60));
        let ratio = if config.budget_ratio.is_finite() { config.budget_ratio.clamp(0.0, 1000.0) } else { 0.0 };
        let min_per_sec = config.budget_min_per_sec.min(i32::MAX as u32 - 1);
        RetryPolicy {
            config: config.clone(),
            max_attempts: config.max_attempts.max(1),
            budget: TpsBudget::new(window, min_per_sec, ratio),
            exhausted: metrics::counter!(super::metrics::BUDGET_EXHAUSTED, "service" => service.to_owned()),
        }
    }

    /// Whether calls may be retried at all (then they pay into the budget).
    pub(crate) fn enabled(&self) -> bool {
        self.max_attempts > 1
    }

    /// Counts a call toward the budget.
    pub(crate) fn deposit(&self) {
        self.budget.deposit();
    }

    /// Whether an attempt that failed with `error`, after `attempts` attempts, may be retried:
    /// only failures of the node (or calls it never ran), never application or codec errors.
    /// Those must be idempotent (a call that timed out may have been applied), unless the call
    /// never reached a server at all.
    pub(crate) fn may_retry(&self, method: &MethodInfo, error: &Error, attempts: u32) -> bool {
        let retryable = if method.idempotent {
            error.is_node_failure() || error.not_executed()
        } else {
            error.never_reached_server()
        };
        self.enabled() && attempts < self.max_attempts && retryable
    }

    /// Takes one retry from the budget; `false` (and a metric) when it is spent.
    pub(crate) fn withdraw(&self) -> bool {
        let allowed = self.budget.withdraw();
        if !allowed {
            self.exhausted.increment(1);
        }
        allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::TransportError;

    const IDEMPOTENT: MethodInfo = MethodInfo { service: "Lab", method: "get", idempotent: true };
    const NOT_IDEMPOTENT: MethodInfo = MethodInfo { service: "Lab", method: "put", idempotent: false };

    #[test]
    fn only_node_failures_of_idempotent_methods_are_retried_up_to_max_attempts() {
        let policy = RetryPolicy::new(&RetryConfig::default(), "Lab");
        let lost = Error::Transport(TransportError::ConnectionLost("reset".into()));
        assert!(policy.may_retry(&IDEMPOTENT, &lost, 1));
        assert!(policy.may_retry(&IDEMPOTENT, &Error::Overloaded, 2));
        assert!(!policy.may_retry(&IDEMPOTENT, &Error::Overloaded, 3), "max_attempts is 3");
        assert!(!policy.may_retry(&NOT_IDEMPOTENT, &Error::Overloaded, 1));
        assert!(!policy.may_retry(&NOT_IDEMPOTENT, &lost, 1), "a lost connection may have run it");
        let refused = Error::Transport(TransportError::Connect { addr: "x".into(), reason: "handshake".into() });
        assert!(policy.may_retry(&NOT_IDEMPOTENT, &refused, 1), "it never reached a server");
        let codec = Error::Codec(crate::CodecError { codec: Default::default(), message: "bad".into() });
        assert!(!policy.may_retry(&IDEMPOTENT, &codec, 1));
    }

    #[tokio::test]
    async fn the_budget_allows_a_tenth_of_the_deposits() {
        let config = RetryConfig { budget_min_per_sec: 0, budget_ratio: 0.1, ..Default::default() };
        let policy = RetryPolicy::new(&config, "Lab");
        assert!(!policy.withdraw(), "nothing deposited yet");
        for _ in 0..100 {
            policy.deposit();
        }
        let allowed = (0..100).filter(|_| policy.withdraw()).count();
        assert_eq!(allowed, 10);
    }
}
