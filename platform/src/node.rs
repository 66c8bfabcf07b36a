//! Running one RPC service node: the settings every service binary shares, and the start and
//! stop sequence (metrics, listen, then announce; on stop, withdraw, then drain).

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use rpc::registry::{RedisRegistryConfig, StaticEndpoint, StaticRegistryConfig};
use rpc::{Cluster, ClusterConfig, Instance, RedisRegistry, Registration, Registry, StaticRegistry};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::error::DependencyError;
use crate::telemetry::LogFormat;

/// Which registry a process uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistryKind {
    /// Redis: servers register with a TTL and heartbeats; clients follow changes.
    #[default]
    Redis,
    /// Fixed lists from `endpoints`.
    Static,
}

/// Where services register and find each other (`SECKILL_REGISTRY__*`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct RegistrySettings {
    /// `redis` or `static`.
    pub kind: RegistryKind,
    /// Redis holding the registry (`SECKILL_REGISTRY__URL`).
    #[serde(serialize_with = "crate::config::expose")]
    pub url: SecretString,
    /// Key prefix, entry TTL, heartbeat and resync intervals (`SECKILL_REGISTRY__REDIS__TTL`, ...).
    pub redis: RedisRegistryConfig,
    /// For `static`: addresses per service, keyed by the lowercase service name
    /// (`SECKILL_REGISTRY__ENDPOINTS__STOCKSERVICE='["127.0.0.1:7002"]'`).
    pub endpoints: BTreeMap<String, Vec<String>>,
}

impl Default for RegistrySettings {
    fn default() -> Self {
        RegistrySettings {
            kind: RegistryKind::Redis,
            url: SecretString::from("redis://127.0.0.1:6379"),
            redis: RedisRegistryConfig::default(),
            endpoints: BTreeMap::new(),
        }
    }
}

/// The service names of the contracts, as registered (the trait names).
pub const SERVICE_NAMES: [&str; 3] = ["UserService", "StockService", "OrderService"];

impl RegistrySettings {
    /// Connects the process's one registry.
    pub async fn connect(&self) -> Result<Arc<dyn Registry>, DependencyError> {
        match self.kind {
            RegistryKind::Static => {
                // Environment keys arrive lowercased: map them back to the contracts' names.
                let services = SERVICE_NAMES
                    .iter()
                    .filter_map(|name| {
                        let addrs = self.endpoints.get(&name.to_lowercase())?;
                        Some((name.to_string(), addrs.iter().cloned().map(StaticEndpoint::Addr).collect()))
                    })
                    .collect();
                Ok(Arc::new(StaticRegistry::new(&StaticRegistryConfig { services })))
            }
            RegistryKind::Redis => {
                let url = self.url.expose_secret();
                let unreachable =
                    |err: &(dyn std::error::Error + 'static)| DependencyError::new("Redis (registry)", url, err);
                let client = deadpool_redis::redis::Client::open(url).map_err(|err| unreachable(&err))?;
                let registry =
                    RedisRegistry::connect(client, self.redis.clone()).await.map_err(|err| unreachable(&err))?;
                Ok(Arc::new(registry))
            }
        }
    }
}

/// A governed client transport to `service`: discovery through `registry`, then balancing,
/// breakers and retries as `config` says.
pub fn cluster(registry: &Arc<dyn Registry>, service: &str, config: &ClusterConfig) -> Cluster {
    Cluster::new(registry.discover(service), config.clone())
}

/// Settings every service binary has; flattened into its own settings, so they read
/// `SECKILL_LISTEN`, `SECKILL_METRICS_LISTEN`, `SECKILL_RPC__MAX_IN_FLIGHT`, ...
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeSettings {
    /// Where the RPC server listens (`0.0.0.0:7001`; port 0 picks a free one).
    pub listen: String,
    /// The address other processes reach this node at. Defaults to the listen address, with an
    /// unspecified IP (`0.0.0.0`) replaced by this host's primary IP.
    pub advertise: Option<String>,
    /// Where `/metrics` is served for Prometheus; none when unset.
    pub metrics_listen: Option<SocketAddr>,
    /// Log output format.
    pub log_format: LogFormat,
    /// RPC server limits (in-flight calls, connections, idle and drain timeouts).
    pub rpc: rpc::ServerConfig,
}

impl Default for NodeSettings {
    fn default() -> Self {
        NodeSettings {
            listen: "127.0.0.1:0".into(),
            advertise: None,
            metrics_listen: None,
            log_format: LogFormat::default(),
            rpc: rpc::ServerConfig::default(),
        }
    }
}

impl NodeSettings {
    /// Settings listening on `listen`, exporting metrics on `metrics`.
    pub fn listening(listen: &str, metrics: Option<&str>) -> Self {
        NodeSettings {
            listen: listen.into(),
            metrics_listen: metrics.and_then(|m| m.parse().ok()),
            ..NodeSettings::default()
        }
    }
}

/// A running node: its RPC server and its registrations.
#[derive(Debug)]
pub struct Node {
    server: rpc::ServerHandle,
    advertised: String,
    registrations: Vec<Registration>,
}

impl Node {
    /// Starts the metrics exporter (once per process) and the RPC server, then registers
    /// `services` at the advertised address: only once the port listens, so the registry never
    /// points callers at a closed port.
    pub async fn start(
        settings: &NodeSettings,
        server: rpc::Server,
        services: &[&str],
        registry: &Arc<dyn Registry>,
    ) -> anyhow::Result<Node> {
        if let Some(listen) = settings.metrics_listen {
            // One recorder per process: in tests several nodes share a process, the first wins.
            if let Err(err) = crate::metrics::serve_prometheus(listen) {
                tracing::warn!(%listen, %err, "metrics exporter not started");
            }
        }
        let server = server.spawn(&settings.listen).await?;
        let advertised = advertised_address(settings.advertise.as_deref(), server.local_addr());
        tracing::info!(listen = %server.local_addr(), %advertised, "RPC server listening");
        let mut registrations = Vec::new();
        for service in services {
            let registration = registry.register(Instance::new(*service, &advertised)).await?;
            registrations.push(registration);
        }
        Ok(Node { server, advertised, registrations })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// The address other processes should use.
    pub fn advertised(&self) -> &str {
        &self.advertised
    }

    /// Waits for `shutdown`, then stops gracefully: in-flight calls finish and are answered.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) {
        shutdown.await;
        self.stop().await;
    }

    /// Stops gracefully now: leaves the registry first (clients stop sending), then drains.
    pub async fn stop(self) {
        for registration in self.registrations {
            registration.deregister().await;
        }
        tracing::info!("draining in-flight calls");
        self.server.shutdown().await;
        tracing::info!("stopped");
    }
}

fn advertised_address(configured: Option<&str>, bound: SocketAddr) -> String {
    match configured {
        Some(address) => address.to_owned(),
        None if bound.ip().is_unspecified() => format!("{}:{}", primary_ip(), bound.port()),
        None => bound.to_string(),
    }
}

/// The address of the interface that routes outwards (a container's own IP under Docker, so
/// `--scale` replicas each register a reachable address). Connecting a UDP socket sends nothing;
/// it only asks the kernel for a route. Falls back to 127.0.0.1 on a host without one.
fn primary_ip() -> std::net::IpAddr {
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").and_then(|socket| {
        socket.connect("10.255.255.255:9")?;
        socket.local_addr()
    });
    match probe {
        Ok(addr) if !addr.ip().is_unspecified() => addr.ip(),
        _ => std::net::IpAddr::from([127, 0, 0, 1]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_advertised_address_never_is_the_unspecified_ip() {
        let bound: SocketAddr = "0.0.0.0:7001".parse().unwrap();
        let advertised = advertised_address(None, bound);
        assert!(advertised.ends_with(":7001") && !advertised.starts_with("0.0.0.0"), "{advertised}");
        assert_eq!(advertised_address(Some("stock-1:7001"), bound), "stock-1:7001");
        assert_eq!(advertised_address(None, "10.0.0.5:7001".parse().unwrap()), "10.0.0.5:7001");
    }
}
