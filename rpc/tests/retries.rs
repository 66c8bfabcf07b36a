//! Retries over real servers: only idempotent methods, always on another node, capped by the
//! retry budget, never past the caller's deadline.

mod support;

use std::time::{Duration, Instant};

use rpc::cluster::{BreakerConfig, RetryConfig};
use rpc::{BalancerKind, CallOptions, ClusterConfig, Context, Error};
use support::*;

/// Breakers off, so that every call reaches a server and the counts show the retries alone.
fn config(retry: RetryConfig) -> ClusterConfig {
    ClusterConfig {
        balancer: BalancerKind::WeightedRandom,
        breaker: BreakerConfig { enabled: false, ..Default::default() },
        retry,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_non_idempotent_method_is_never_retried() {
    let nodes = TestNode::spawn_many(3).await;
    for node in &nodes {
        node.switch.set(Mode::Failing);
    }
    let lab = cluster_client(&nodes, config(RetryConfig::default()));
    for _ in 0..100 {
        assert!(lab.record().await.is_err());
    }
    assert_eq!(TestNode::arrived(&nodes), 100, "one attempt per call, no retry");
}

#[tokio::test]
async fn an_idempotent_method_is_retried_on_another_node() {
    let nodes = TestNode::spawn_many(2).await;
    nodes[0].switch.set(Mode::Failing);
    // Two attempts over two nodes: the call can only succeed if the retry goes to the other one.
    let lab = cluster_client(&nodes, config(RetryConfig { max_attempts: 2, ..Default::default() }));
    for _ in 0..100 {
        assert_eq!(lab.whoami().await, Ok(2));
    }
    let first_tries_on_the_sick_node = nodes[0].switch.arrived();
    assert!(first_tries_on_the_sick_node > 0, "weighted random must have sent some calls to node 1 first");
    assert_eq!(nodes[1].switch.arrived(), 100, "node 2 served every call, retried or not");
}

#[tokio::test]
async fn calls_to_a_dead_node_go_to_a_live_one_without_drawing_on_the_budget() {
    let live = TestNode::spawn(2).await;
    // A port nothing listens on any more: every connection to it is refused, as to a node killed
    // with -9 that the registry still lists.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let registry = rpc::StaticRegistry::single("Lab", vec![dead.to_string(), live.addr.to_string()]);
    // No budget at all: a retry that drew on it would fail its call.
    let retry = RetryConfig { budget_ratio: 0.0, budget_min_per_sec: 0, ..Default::default() };
    let config = ClusterConfig { balancer: BalancerKind::SmoothRoundRobin, ..config(retry) };
    let lab = LabClient::new(rpc::Cluster::new(rpc::Registry::discover(&registry, "Lab"), config));
    for _ in 0..200 {
        // `record` is not idempotent: only a call that never reached a server may go elsewhere.
        assert_eq!(lab.record().await.map_err(|e| e.to_string()), Ok(2));
    }
    assert_eq!(live.switch.arrived(), 200, "every call ran once, on the live node");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_node_fails_the_budget_caps_the_retries() {
    let nodes = TestNode::spawn_many(3).await;
    for node in &nodes {
        node.switch.set(Mode::Failing);
    }
    let retry = RetryConfig {
        max_attempts: 3,
        budget_ratio: 0.1,
        budget_min_per_sec: 0,
        budget_window: std::time::Duration::from_secs(60),
        backoff_base: Duration::from_millis(1),
        ..Default::default()
    };
    let lab = cluster_client(&nodes, config(retry));
    let calls = 1_000;
    let results = run_calls(calls, 10, move |_| {
        let lab = lab.clone();
        async move { lab.whoami().await }
    })
    .await;
    assert!(results.iter().all(Result::is_err));
    let retries = TestNode::arrived(&nodes) - calls;
    eprintln!("{retries} retries for {calls} calls on a cluster where every node fails");
    // Without a budget: up to 2 retries per call (2,000). With 10% of the calls: at most 100.
    assert!(retries <= calls / 10, "{retries} retries for {calls} calls");
    assert!(retries >= calls / 20, "the budget should have allowed retries: {retries}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_attempt_or_backoff_outlives_the_callers_deadline() {
    let nodes = TestNode::spawn_many(3).await;
    for node in &nodes {
        node.switch.set_slow(Duration::from_secs(5));
    }
    let lab = cluster_client(&nodes, config(RetryConfig::default()));
    let started = Instant::now();
    let result = Context::default().with_timeout(Duration::from_millis(300)).scope(lab.whoami()).await;
    assert_eq!(result, Err(Error::Timeout));
    // The nodes hold calls for 5 s: returning well before shows the deadline, not a node, ended it.
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    assert_eq!(TestNode::arrived(&nodes), 1, "a timeout at the deadline leaves no time for a retry");
}

#[tokio::test]
async fn the_deadline_reaches_the_server_through_the_cluster() {
    let nodes = TestNode::spawn_many(2).await;
    let lab = cluster_client(&nodes, config(RetryConfig::default()))
        .with_options(CallOptions { timeout: Some(Duration::from_secs(30)), ..Default::default() });
    let seen = Context::default().with_timeout(Duration::from_secs(2)).with_trace_id(7).scope(lab.context()).await;
    let seen = seen.expect("call");
    let remaining = seen.remaining_ms.expect("the server must know the deadline");
    assert!(remaining > 0 && remaining <= 2_000, "the caller's 2 s must win over the call's 30 s: {remaining} ms");
    assert_eq!(seen.trace_id, 7);
}

#[tokio::test]
async fn retry_rules_changed_at_run_time_apply_to_the_next_call() {
    let nodes = TestNode::spawn_many(2).await;
    nodes[0].switch.set(Mode::Failing);
    let lab = cluster_client(&nodes, config(RetryConfig { max_attempts: 2, ..Default::default() }));
    for _ in 0..50 {
        assert_eq!(lab.whoami().await, Ok(2), "retried on the healthy node");
    }
    let one_attempt = RetryConfig { max_attempts: 1, ..Default::default() };
    lab.transport().set_retry(&one_attempt);
    assert_eq!(lab.transport().retry_config(), one_attempt);
    let failed = (0..100).map(|_| lab.whoami());
    let failed = futures::future::join_all(failed).await.iter().filter(|r| r.is_err()).count();
    assert!(failed > 0, "with retries off, the calls sent to the failing node fail");
    lab.transport().set_retry(&RetryConfig { max_attempts: 2, ..Default::default() });
    for _ in 0..50 {
        assert_eq!(lab.whoami().await, Ok(2), "retries are back");
    }
}
