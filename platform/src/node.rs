//! Running one RPC service node: the settings every service binary shares, and the start and
//! stop sequence (metrics, listen, then announce; on stop, withdraw, then drain).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use rpc::{Instance, Registration, Registry};
use serde::Deserialize;

use crate::env::{Environment, SecretPolicy};
use crate::security::RpcSecurity;
use crate::telemetry::LogFormat;

/// Settings every service binary has; flattened into its own settings, so they read
/// `SECKILL_ENV`, `SECKILL_LISTEN`, `SECKILL_METRICS_LISTEN`, `SECKILL_RPC__MAX_IN_FLIGHT`,
/// `SECKILL_RPC__KEY`, ...
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct NodeSettings {
    /// Where the process runs (`SECKILL_ENV`): built-in secrets only in development.
    pub env: Environment,
    /// Where the RPC server listens (`0.0.0.0:7001`; port 0 picks a free one).
    pub listen: String,
    /// The address other processes reach this node at. Defaults to the listen address, with an
    /// unspecified IP (`0.0.0.0`) replaced by this host's primary IP.
    pub advertise: Option<String>,
    /// Where `/metrics` is served for Prometheus; none when unset.
    pub metrics_listen: Option<SocketAddr>,
    /// Log output format.
    pub log_format: LogFormat,
    /// The RPC: server limits (in-flight calls, connections, idle and drain timeouts, buffered
    /// bytes) and security (cluster key, TLS), all under `SECKILL_RPC__`.
    pub rpc: NodeRpcSettings,
}

/// The `SECKILL_RPC__*` settings of a service node.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct NodeRpcSettings {
    /// Server limits.
    #[serde(flatten)]
    pub server: rpc::ServerConfig,
    /// Cluster key and TLS, for the server and for the node's own clients.
    #[serde(flatten)]
    pub security: RpcSecurity,
}

impl Default for NodeSettings {
    fn default() -> Self {
        NodeSettings {
            env: Environment::default(),
            listen: "127.0.0.1:0".into(),
            advertise: None,
            metrics_listen: None,
            log_format: LogFormat::default(),
            rpc: NodeRpcSettings::default(),
        }
    }
}

impl NodeSettings {
    /// Development settings listening on `listen`, exporting metrics on `metrics` (tests and
    /// in-process stacks: the built-in cluster key is allowed).
    pub fn listening(listen: &str, metrics: Option<&str>) -> Self {
        NodeSettings {
            env: Environment::Development,
            listen: listen.into(),
            metrics_listen: metrics.and_then(|m| m.parse().ok()),
            ..NodeSettings::default()
        }
    }

    /// A policy to check this node's secrets with: the cluster key's problems are in it; the
    /// service adds its own, then enforces.
    pub fn secret_policy(&self) -> SecretPolicy {
        let mut policy = SecretPolicy::new(self.env);
        self.rpc.security.check(&mut policy);
        policy
    }

    /// An RPC server with this node's limits and security, to add the services to.
    pub fn server(&self) -> anyhow::Result<rpc::Server> {
        let config = rpc::ServerConfig { security: self.rpc.security.load()?, ..self.rpc.server.clone() };
        Ok(rpc::Server::new(config))
    }
}

/// A running node: its RPC server and its registrations.
#[derive(Debug)]
pub struct Node {
    server: rpc::ServerHandle,
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
        Ok(Node { server, registrations })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
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
