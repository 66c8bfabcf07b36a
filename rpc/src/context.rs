//! The call context: deadline and trace id, carried across hops, and the caller's credential.
//!
//! The server runs every handler inside [`Context::scope`], so a handler that calls another service
//! passes its own deadline and trace id on without doing anything: clients read
//! [`Context::current`]. That is how "no hop waits past its caller's deadline" holds.
//!
//! The credential is the other way round: it describes who called *this* handler, and is never
//! forwarded. A handler that calls on acts under its own client's credential, so identity is
//! never borrowed by accident.

use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;

tokio::task_local! {
    static CURRENT: Context;
}

/// Deadline and trace id of the call being served (or of the caller's own choosing), and the
/// credential that call came with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Context {
    /// When the caller stops waiting. `None` means no deadline.
    pub deadline: Option<Instant>,
    /// Trace id shared by every hop of one user request; 0 means none.
    pub trace_id: u128,
    /// The credential the call being served carried (its metadata entry 5), for the handler to
    /// verify. Outgoing calls do not inherit it.
    pub credential: Option<Bytes>,
}

impl Context {
    /// The context of the current task, or an empty one outside any scope.
    pub fn current() -> Context {
        CURRENT.try_with(Context::clone).unwrap_or_default()
    }

    /// The deadline and trace id outgoing calls inherit (no clone of the credential).
    pub(crate) fn inherited() -> (Option<Instant>, u128) {
        CURRENT.try_with(|ctx| (ctx.deadline, ctx.trace_id)).unwrap_or_default()
    }

    /// The credential of the call being served, if any.
    pub fn credential() -> Option<Bytes> {
        CURRENT.try_with(|ctx| ctx.credential.clone()).ok().flatten()
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
        let seen = outer.clone().scope(async { Context::current() }).await;
        assert_eq!(seen, outer);
        let looser = outer.clone().with_timeout(Duration::from_secs(60));
        assert_eq!(looser.deadline, outer.deadline);
        let tighter = outer.clone().with_timeout(Duration::from_millis(10));
        assert!(tighter.deadline < outer.deadline);
    }
}
