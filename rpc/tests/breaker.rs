//! Per-node circuit breakers over real servers: a sick node is cut off, its siblings keep serving,
//! and it comes back through half-open probes once healthy.

mod support;

use std::time::{Duration, Instant};

use rpc::cluster::BreakerConfig;
use rpc::{BalancerKind, BreakerState, ClusterConfig, Error};
use support::*;

fn config() -> ClusterConfig {
    ClusterConfig {
        balancer: BalancerKind::WeightedRandom,
        breaker: BreakerConfig {
            min_calls: 10,
            failure_ratio: 0.5,
            open_for: Duration::from_secs(2),
            half_open_probes: 1,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// `total` calls of the non-idempotent `record` (never retried, so every failure shows).
async fn record_calls(lab: &LabClient<rpc::Cluster>, total: usize) -> Vec<Result<u32, Error>> {
    let lab = lab.clone();
    run_calls(total, 8, move |_| {
        let lab = lab.clone();
        async move { lab.record().await }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_node_is_cut_off_while_the_others_keep_serving_and_it_recovers_half_open() {
    let nodes = TestNode::spawn_many(3).await;
    let lab = cluster_client(&nodes, config());
    let sick = nodes[2].addr.to_string();
    nodes[2].switch.set(Mode::Failing);

    // Its breaker opens after the minimum number of calls; only the sick node's own breaker.
    let mut early = Vec::new();
    let until = Instant::now() + Duration::from_secs(10);
    while lab.transport().breaker_state(&sick) != Some(BreakerState::Open) {
        assert!(Instant::now() < until, "the sick node's breaker never opened");
        early.extend(record_calls(&lab, 20).await);
    }
    assert!(early.iter().any(Result::is_err), "the sick node did fail some calls before its breaker opened");
    for healthy in &nodes[..2] {
        assert_eq!(lab.transport().breaker_state(&healthy.addr.to_string()), Some(BreakerState::Closed));
    }

    // With it cut off, the others keep serving: at least 99% success (half-open probes into the
    // still-sick node are the only failures allowed).
    let results = record_calls(&lab, 1_000).await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    eprintln!("{ok}/1000 calls succeeded with the sick node's breaker open");
    assert!(ok >= 990, "{ok}/1000 calls succeeded while one node of three was sick");
    assert!(results.iter().flatten().all(|id| *id != 3), "the sick node cannot have answered");

    // Healthy again: a half-open probe succeeds and the breaker closes; it gets traffic again.
    nodes[2].switch.set(Mode::Healthy);
    let until = Instant::now() + Duration::from_secs(15);
    while lab.transport().breaker_state(&sick) != Some(BreakerState::Closed) {
        assert!(Instant::now() < until, "the breaker did not close after the node recovered");
        record_calls(&lab, 10).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ids: Vec<u32> = record_calls(&lab, 300).await.into_iter().map(|r| r.expect("all healthy")).collect();
    assert!(ids.contains(&3), "the recovered node gets calls again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overloaded_answers_count_as_failures() {
    let nodes = TestNode::spawn_many(2).await;
    let lab = cluster_client(&nodes, config());
    nodes[1].switch.set(Mode::Overloaded);
    let shedding = nodes[1].addr.to_string();
    let until = Instant::now() + Duration::from_secs(10);
    while lab.transport().breaker_state(&shedding) != Some(BreakerState::Open) {
        assert!(Instant::now() < until, "a node answering only Overloaded must trip its breaker");
        record_calls(&lab, 20).await;
    }
    let status = lab.transport().endpoints();
    assert_eq!(status.iter().filter(|e| e.breaker == BreakerState::Open).count(), 1, "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaker_settings_changed_at_run_time_reach_every_node() {
    let nodes = TestNode::spawn_many(2).await;
    let off = BreakerConfig { enabled: false, ..config().breaker };
    let lab = cluster_client(&nodes, ClusterConfig { breaker: off, ..config() });
    let sick = nodes[1].addr.to_string();
    nodes[1].switch.set(Mode::Failing);
    let results = record_calls(&lab, 200).await;
    assert!(results.iter().any(Result::is_err), "the sick node fails its calls");
    assert_eq!(lab.transport().breaker_state(&sick), Some(BreakerState::Closed), "breaking is off");

    // Turned on while calls flow: the sick node is cut off.
    let on = config().breaker;
    lab.transport().set_breaker(&on);
    assert_eq!(lab.transport().breaker_config(), on);
    let until = Instant::now() + Duration::from_secs(10);
    while lab.transport().breaker_state(&sick) != Some(BreakerState::Open) {
        assert!(Instant::now() < until, "the breaker turned on never opened");
        record_calls(&lab, 20).await;
    }
}
