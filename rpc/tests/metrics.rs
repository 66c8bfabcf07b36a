//! Per-endpoint metrics, read back through `metrics-util`'s debugging recorder. The recorder is
//! process-global, so this is the only test in its binary.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use rpc::cluster::BreakerConfig;
use rpc::{BalancerKind, BreakerState, ClusterConfig};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_errors_latency_in_flight_breaker_state_and_retries_are_recorded_per_endpoint() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().expect("the only recorder of this test binary");
    rpc::cluster::describe_metrics();

    let nodes = TestNode::spawn_many(3).await;
    nodes[2].switch.set(Mode::Failing);
    let config = ClusterConfig {
        balancer: BalancerKind::WeightedRandom,
        breaker: BreakerConfig { min_calls: 10, open_for: Duration::from_secs(60), ..Default::default() },
        ..Default::default()
    };
    let lab = cluster_client(&nodes, config);
    for _ in 0..200 {
        lab.whoami().await.expect("idempotent calls are retried onto healthy nodes");
    }
    let sick = nodes[2].addr.to_string();
    assert_eq!(lab.transport().breaker_state(&sick), Some(BreakerState::Open));

    // (metric name, endpoint) → value.
    let mut seen: HashMap<(String, String), DebugValue> = HashMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let labels: HashMap<&str, &str> = key.key().labels().map(|l| (l.key(), l.value())).collect();
        if labels.get("service") != Some(&"Lab") {
            continue;
        }
        let endpoint = labels.get("endpoint").copied().unwrap_or_default().to_owned();
        seen.insert((key.key().name().to_owned(), endpoint), value);
    }
    let counter = |name: &str, endpoint: &str| match seen.get(&(name.to_owned(), endpoint.to_owned())) {
        Some(DebugValue::Counter(n)) => *n,
        other => panic!("{name}{{endpoint={endpoint}}}: {other:?}"),
    };
    let gauge = |name: &str, endpoint: &str| match seen.get(&(name.to_owned(), endpoint.to_owned())) {
        Some(DebugValue::Gauge(value)) => value.0,
        other => panic!("{name}{{endpoint={endpoint}}}: {other:?}"),
    };
    let samples =
        |endpoint: &str| match seen.get(&("rpc_client_request_duration_seconds".to_owned(), endpoint.to_owned())) {
            Some(DebugValue::Histogram(values)) => values.len() as u64,
            other => panic!("histogram of {endpoint}: {other:?}"),
        };

    let mut requests = 0;
    let mut retries = 0;
    for node in &nodes {
        let endpoint = node.addr.to_string();
        let sent = counter("rpc_client_requests_total", &endpoint);
        assert_eq!(sent, node.switch.arrived() as u64, "requests counted for {endpoint}");
        assert_eq!(samples(&endpoint), sent, "one latency sample per request");
        assert_eq!(gauge("rpc_client_in_flight", &endpoint), 0.0);
        let errors = counter("rpc_client_errors_total", &endpoint);
        let state = gauge("rpc_client_breaker_state", &endpoint);
        if endpoint == sick {
            assert_eq!((errors, state), (sent, 1.0), "every call to the sick node failed; its breaker is open");
        } else {
            assert_eq!((errors, state), (0, 0.0));
        }
        requests += sent;
        retries += counter("rpc_client_retries_total", &endpoint);
    }
    assert_eq!(requests, 200 + retries, "each retry is one more request");
    assert!(retries > 0 && retries == counter("rpc_client_errors_total", &sick), "each failure was retried once");
}
