//! What is left of a failed call once the service's own errors are mapped.

use super::Problem;

/// A failed RPC as a problem: the node failed or the call was not run (503, retryable), or
/// something unexpected happened (500, details in the logs).
pub(super) fn failure<E: std::fmt::Debug>(service: &'static str, err: rpc::Error<E>) -> Problem {
    if err.is_node_failure() || err.not_executed() {
        tracing::warn!(service, ?err, "service unavailable");
        Problem::unavailable(format!("{service} is unavailable"))
    } else {
        tracing::error!(service, error = ?err, "unexpected RPC failure");
        Problem::internal()
    }
}
