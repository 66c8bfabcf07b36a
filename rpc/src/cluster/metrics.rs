//! Per-endpoint metrics through the `metrics` facade.
//!
//! rpc installs no exporter: a binary installs one (Prometheus) at startup, before building its
//! clusters, and calls [`describe_metrics`]. Handles are resolved once per node, so a call
//! touches no registry map.
//!
//! | metric | type | labels | meaning |
//! |---|---|---|---|
//! | `rpc_client_requests_total` | counter | service, endpoint | calls sent (retries included) |
//! | `rpc_client_errors_total` | counter | service, endpoint | calls that failed below the application |
//! | `rpc_client_request_duration_seconds` | histogram | service, endpoint | latency of each attempt |
//! | `rpc_client_in_flight` | gauge | service, endpoint | calls waiting for an answer |
//! | `rpc_client_breaker_state` | gauge | service, endpoint | 0 closed, 1 open, 2 half-open |
//! | `rpc_client_retries_total` | counter | service, endpoint | retries sent to this endpoint |
//! | `rpc_client_retry_budget_exhausted_total` | counter | service | retries refused by the budget |

use metrics::{Counter, Gauge, Histogram, Unit};

pub(crate) const REQUESTS: &str = "rpc_client_requests_total";
pub(crate) const ERRORS: &str = "rpc_client_errors_total";
pub(crate) const DURATION: &str = "rpc_client_request_duration_seconds";
pub(crate) const IN_FLIGHT: &str = "rpc_client_in_flight";
pub(crate) const BREAKER_STATE: &str = "rpc_client_breaker_state";
pub(crate) const RETRIES: &str = "rpc_client_retries_total";
pub(crate) const BUDGET_EXHAUSTED: &str = "rpc_client_retry_budget_exhausted_total";

/// Registers the descriptions and units of the cluster metrics with the installed recorder.
pub fn describe_metrics() {
    metrics::describe_counter!(REQUESTS, "RPC calls sent to an endpoint, retries included");
    metrics::describe_counter!(ERRORS, "RPC calls to an endpoint that failed below the application");
    metrics::describe_histogram!(DURATION, Unit::Seconds, "Latency of RPC attempts per endpoint");
    metrics::describe_gauge!(IN_FLIGHT, "RPC calls waiting for an answer per endpoint");
    metrics::describe_gauge!(BREAKER_STATE, "Circuit breaker state per endpoint: 0 closed, 1 open, 2 half-open");
    metrics::describe_counter!(RETRIES, "Retries sent to an endpoint");
    metrics::describe_counter!(BUDGET_EXHAUSTED, "Retries refused because the retry budget was spent");
}

/// The metric handles of one node.
#[derive(Debug)]
pub(crate) struct NodeMetrics {
    pub(crate) requests: Counter,
    pub(crate) errors: Counter,
    pub(crate) duration: Histogram,
    pub(crate) in_flight: Gauge,
    pub(crate) retries: Counter,
}

impl NodeMetrics {
    /// Resolves the handles of `endpoint`, and its breaker gauge (handed to the breaker).
    pub(crate) fn new(service: &str, endpoint: &str) -> (NodeMetrics, Gauge) {
        let labels = [("service", service.to_owned()), ("endpoint", endpoint.to_owned())];
        let handles = NodeMetrics {
            requests: metrics::counter!(REQUESTS, &labels),
            errors: metrics::counter!(ERRORS, &labels),
            duration: metrics::histogram!(DURATION, &labels),
            in_flight: metrics::gauge!(IN_FLIGHT, &labels),
            retries: metrics::counter!(RETRIES, &labels),
        };
        (handles, metrics::gauge!(BREAKER_STATE, &labels))
    }
}
