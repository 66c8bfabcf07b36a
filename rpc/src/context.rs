//! The call context: deadline and trace id, carried across hops.
//!
//! The server runs every handler inside [`Context::scope`], so a handler that calls another service
//! passes its own deadline and trace id on without doing anything: clients read
//! [`Context::current`]. That is how "no hop waits past its caller's deadline" holds.

use std::future::Future;
use std::time::{Duration, Instant};

tokio::task_local! {
    static CURRENT: Context;
}

/// Deadline and trace id of the call being served (or of the caller's own choosing).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Context {
    /// When the caller stops waiting. `None` means no deadline.
    pub deadline: Option<Instant>,
    /// Trace id shared by every hop of one user request; 0 means none.
    pub trace_id: u128,
}

impl Context {
    /// The context of the current task, or an empty one outside any scope.
    pub fn current() -> Context {
        CURRENT.try_with(|ctx| *ctx).unwrap_or_default()
    }

    /// Runs `fut` with this context as [`Context::current`].
    pub fn scope<F: Future>(self, fut: F) -> impl Future<Output = F::Output> {
        CURRENT.scope(self, fut)
    }

    /// The same context with a new trace id.
    pub fn with_trace_id(self, trace_id: u128) -> Context {
        Context { trace_id, ..self }
    }

    /// The same context with the deadline moved earlier to `now + timeout` if that is sooner.
    pub fn with_timeout(self, timeout: Duration) -> Context {
        let candidate = Instant::now() + timeout;
        Context { deadline: Some(self.deadline.map_or(candidate, |d| d.min(candidate))), ..self }
    }

    /// Time left before the deadline (zero once it has passed), or `None` without a deadline.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline.map(|d| d.saturating_duration_since(Instant::now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn scope_sets_current_and_timeout_only_tightens() {
        assert_eq!(Context::current(), Context::default());
        let outer = Context::default().with_timeout(Duration::from_secs(1)).with_trace_id(9);
        let seen = outer.scope(async { Context::current() }).await;
        assert_eq!(seen, outer);
        let looser = outer.with_timeout(Duration::from_secs(60));
        assert_eq!(looser.deadline, outer.deadline);
        let tighter = outer.with_timeout(Duration::from_millis(10));
        assert!(tighter.deadline < outer.deadline);
    }
}
