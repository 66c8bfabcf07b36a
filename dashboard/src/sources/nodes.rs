//! The node grid: every RPC node in the registry, what its callers' metrics say of it, and
//! whether its port answers. A node that leaves the registry stays on the grid as `gone` for a
//! while, so a stopped replica turns red instead of silently disappearing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rpc::Registry;
use rpc::registry::Discovery;

use super::prometheus::Rates;
use crate::snapshot::NodeTile;

/// How long a node that left the registry stays on the grid.
const GONE_FOR: Duration = Duration::from_secs(120);
/// How long a port may take to accept before the node counts as down.
const PROBE_TIMEOUT: Duration = Duration::from_millis(300);

/// Follows the registry.
pub(crate) struct NodeSource {
    discoveries: Vec<Discovery>,
    /// Nodes seen, by (service, address): when last seen in the registry.
    seen: std::sync::Mutex<HashMap<(String, String), Instant>>,
}

impl NodeSource {
    /// Follows every service of the system in `registry`.
    pub(crate) fn new(registry: &Arc<dyn Registry>) -> NodeSource {
        let discoveries = contracts::names::ALL.iter().map(|name| registry.discover(name)).collect();
        NodeSource { discoveries, seen: std::sync::Mutex::new(HashMap::new()) }
    }

    /// The grid now, with the RPC figures of this round.
    pub(crate) async fn read(&self, rates: &Rates) -> Vec<NodeTile> {
        let now = Instant::now();
        let listed: Vec<(String, String)> = self
            .discoveries
            .iter()
            .flat_map(|discovery| {
                discovery.instances().iter().map(|i| (i.service.clone(), i.addr.clone())).collect::<Vec<_>>()
            })
            .collect();
        let gone: Vec<(String, String)> = {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            for node in &listed {
                seen.insert(node.clone(), now);
            }
            seen.retain(|_, at| now.duration_since(*at) < GONE_FOR);
            seen.keys().filter(|node| !listed.contains(node)).cloned().collect()
        };
        let probes = listed.iter().map(|(_, addr)| probe(addr));
        let reachable = futures::future::join_all(probes).await;
        let mut tiles: Vec<NodeTile> = listed
            .into_iter()
            .zip(reachable)
            .map(|((service, addr), reachable)| {
                let mut tile = tile(rates, service, addr);
                if !reachable {
                    tile.status = "down";
                }
                tile
            })
            .chain(gone.into_iter().map(|(service, addr)| NodeTile { status: "gone", ..tile(rates, service, addr) }))
            .collect();
        tiles.sort_by(|a, b| (&a.service, &a.addr).cmp(&(&b.service, &b.addr)));
        tiles
    }
}

/// What the callers' metrics say of the node at `addr`.
fn tile(rates: &Rates, service: String, addr: String) -> NodeTile {
    let labels = [("endpoint", addr.as_str())];
    // Several callers (gateways, order-services) each keep a breaker for this node: the worst counts.
    let breaker = rates
        .current()
        .flat_map(|samples| samples.matching("rpc_client_breaker_state", &labels).map(|s| s.value as i64))
        .max()
        .unwrap_or(0);
    let status = match breaker {
        1 => "open",
        2 => "half-open",
        _ => "up",
    };
    NodeTile {
        qps: rates.per_sec("rpc_client_requests_total", &labels),
        errors: rates.per_sec("rpc_client_errors_total", &labels),
        p99_ms: rates.p99("rpc_client_request_duration_seconds", &labels).map(|s| s * 1000.0),
        in_flight: rates.gauge("rpc_client_in_flight", &labels),
        service,
        addr,
        status,
    }
}

async fn probe(addr: &str) -> bool {
    matches!(tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(addr)).await, Ok(Ok(_)))
}
