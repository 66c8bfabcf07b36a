//! Prometheus `/metrics` for a binary.

use std::net::SocketAddr;

use metrics_exporter_prometheus::PrometheusBuilder;

/// Latency buckets in seconds, from 100 µs to 10 s: the range an RPC or a batch can take.
const LATENCY_BUCKETS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Installs the global recorder (once per process) and returns a handle that renders the
/// Prometheus text format, for a binary that serves `/metrics` on its own HTTP port.
pub fn prometheus_handle()
-> Result<metrics_exporter_prometheus::PrometheusHandle, metrics_exporter_prometheus::BuildError> {
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> = std::sync::OnceLock::new();
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new().set_buckets(LATENCY_BUCKETS)?.install_recorder()?;
    rpc::cluster::describe_metrics();
    Ok(HANDLE.get_or_init(|| handle).clone())
}

/// Installs the global recorder and serves `GET /metrics` on `listen` (needs a tokio runtime).
pub fn serve_prometheus(listen: SocketAddr) -> Result<(), metrics_exporter_prometheus::BuildError> {
    PrometheusBuilder::new().with_http_listener(listen).set_buckets(LATENCY_BUCKETS)?.install()?;
    rpc::cluster::describe_metrics();
    tracing::info!(%listen, "serving Prometheus metrics at /metrics");
    Ok(())
}
