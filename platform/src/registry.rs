//! Where services register and find each other: the process's one registry, from settings.

use std::collections::BTreeMap;
use std::sync::Arc;

use rpc::registry::{RedisRegistryConfig, StaticEndpoint, StaticRegistryConfig};
use rpc::{Cluster, ClusterConfig, RedisRegistry, Registry, Security, StaticRegistry};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::error::DependencyError;

/// Which registry a process uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistryKind {
    /// Redis: servers register with a TTL and heartbeats; clients follow changes.
    #[default]
    Redis,
    /// Fixed lists from `endpoints`.
    Static,
}

/// Where services register and find each other (`SECKILL_REGISTRY__*`).
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct RegistrySettings {
    /// `redis` or `static`.
    pub kind: RegistryKind,
    /// Redis holding the registry (`SECKILL_REGISTRY__URL`).
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

impl RegistrySettings {
    /// Connects the process's one registry.
    pub async fn connect(&self) -> Result<Arc<dyn Registry>, DependencyError> {
        match self.kind {
            RegistryKind::Static => {
                // Environment keys arrive lowercased: map them back to the contracts' names.
                let services = contracts::names::ALL
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
/// breakers and retries as `config` says, every connection secured by `security`.
pub fn cluster(registry: &Arc<dyn Registry>, service: &str, config: &ClusterConfig, security: &Security) -> Cluster {
    let mut config = config.clone();
    config.client.security = security.clone();
    Cluster::new(registry.discover(service), config)
}
