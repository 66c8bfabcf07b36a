//! Balancers over real servers on 127.0.0.1, listed statically.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use rpc::registry::{StaticEndpoint, StaticRegistryConfig};
use rpc::{BalancerKind, Cluster, ClusterConfig, Error, Registry, StaticRegistry, TransportError};
use support::*;

fn config(balancer: BalancerKind) -> ClusterConfig {
    ClusterConfig { balancer, ..Default::default() }
}

/// Calls per node id, from `whoami` answers.
fn tally(ids: &[u32]) -> BTreeMap<u32, usize> {
    ids.iter().fold(BTreeMap::new(), |mut counts, id| {
        *counts.entry(*id).or_default() += 1;
        counts
    })
}

#[tokio::test]
async fn smooth_round_robin_over_weights_5_1_1_gives_exactly_nginx_sequence() {
    let nodes = TestNode::spawn_many(3).await;
    // The cluster orders nodes by address; the first gets weight 5, so it is nginx's `a`.
    let mut by_addr: Vec<&TestNode> = nodes.iter().collect();
    by_addr.sort_by_key(|node| node.addr.to_string());
    let endpoints = by_addr
        .iter()
        .zip([5, 1, 1])
        .map(|(node, weight)| StaticEndpoint::Weighted { addr: node.addr.to_string(), weight })
        .collect();
    let registry = StaticRegistry::new(&StaticRegistryConfig { services: BTreeMap::from([("Lab".into(), endpoints)]) });
    let lab = LabClient::new(Cluster::new(registry.discover("Lab"), config(BalancerKind::SmoothRoundRobin)));
    let mut sequence = Vec::new();
    for _ in 0..21 {
        sequence.push(lab.whoami().await.expect("call"));
    }
    let [a, b, c] = [by_addr[0].id, by_addr[1].id, by_addr[2].id];
    let nginx = [a, a, b, a, c, a, a];
    assert_eq!(sequence, nginx.repeat(3));
}

#[tokio::test]
async fn weighted_random_shares_follow_the_weights() {
    let nodes = TestNode::spawn_many(2).await;
    let endpoints = vec![
        StaticEndpoint::Weighted { addr: nodes[0].addr.to_string(), weight: 300 },
        StaticEndpoint::Weighted { addr: nodes[1].addr.to_string(), weight: 100 },
    ];
    let registry = StaticRegistry::new(&StaticRegistryConfig { services: BTreeMap::from([("Lab".into(), endpoints)]) });
    let lab = LabClient::new(Cluster::new(registry.discover("Lab"), config(BalancerKind::WeightedRandom)));
    let ids: Vec<u32> = run_calls(4_000, 8, move |_| {
        let lab = lab.clone();
        async move { lab.whoami().await.expect("call") }
    })
    .await;
    let share = tally(&ids)[&1] as f64 / 4_000.0;
    // Expected 75%; ±5 points is over 7 standard deviations.
    assert!((0.70..=0.80).contains(&share), "share of the weight-300 node: {share}");
}

#[tokio::test]
async fn consistent_hash_pins_keys_and_a_fifth_node_moves_at_most_a_quarter_of_them() {
    let nodes = TestNode::spawn_many(5).await;
    let four = cluster_client(&nodes[..4], config(BalancerKind::ConsistentHash));
    let five = cluster_client(&nodes, config(BalancerKind::ConsistentHash));
    let keys = 2_000u64;
    let (mut moved, mut to_new) = (0, 0);
    for key in 0..keys {
        let owner = four.route(key).await.expect("call");
        assert_eq!(four.route(key).await.expect("call"), owner, "key {key} changed node");
        let after = five.route(key).await.expect("call");
        if after != owner {
            moved += 1;
            to_new += usize::from(after == nodes[4].id);
        }
    }
    // Ideal: 1/5 of the keys move, all of them to the new node. Bound tested: at most 25%.
    assert_eq!(moved, to_new, "a key may only move to the new node");
    let share = moved as f64 / keys as f64;
    assert!((0.10..=0.25).contains(&share), "moved {share:.3} of the keys");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_active_and_peak_ewma_send_most_traffic_away_from_a_slow_node() {
    for balancer in [BalancerKind::LeastActive, BalancerKind::PeakEwma] {
        let nodes = TestNode::spawn_many(3).await;
        let lab = cluster_client(&nodes, config(balancer));
        // Let every node be measured while healthy, then make node 3 slow.
        run_calls(300, 8, {
            let lab = lab.clone();
            move |_| {
                let lab = lab.clone();
                async move { lab.whoami().await.expect("call") }
            }
        })
        .await;
        nodes[2].switch.set_slow(Duration::from_millis(50));
        let ids: Vec<u32> = run_calls(3_000, 16, {
            let lab = lab.clone();
            move |_| {
                let lab = lab.clone();
                async move { lab.whoami().await.expect("call") }
            }
        })
        .await;
        let slow_share = tally(&ids).get(&3).copied().unwrap_or(0) as f64 / 3_000.0;
        eprintln!("{}: slow node share {slow_share:.3}", balancer.name());
        // A blind balancer would give it a third.
        assert!(slow_share < 0.10, "{}: the slow node got {slow_share:.3} of the calls", balancer.name());
    }
}

#[tokio::test]
async fn a_service_without_nodes_fails_fast_with_no_endpoint() {
    let registry = StaticRegistry::single("Lab", Vec::<String>::new());
    let lab = LabClient::new(Cluster::new(registry.discover("Lab"), ClusterConfig::default()));
    assert_eq!(lab.whoami().await, Err(Error::Transport(TransportError::NoEndpoint("Lab".into()))));
}
