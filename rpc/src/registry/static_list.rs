//! [`StaticRegistry`]: instance lists from configuration, for simple setups and tests.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures::future::BoxFuture;

use super::discovery::Feed;
use super::{Discovery, Instance, Registration, Registry, RegistryError};

/// Settings of a [`StaticRegistry`]: for each service, its endpoints.
///
/// ```toml
/// [services]
/// Stock = ["10.0.0.1:7001", { addr = "10.0.0.2:7001", weight = 200 }]
/// ```
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct StaticRegistryConfig {
    /// Endpoints per service name.
    pub services: BTreeMap<String, Vec<StaticEndpoint>>,
}

/// One configured endpoint: `"host:port"`, or a table with a weight.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum StaticEndpoint {
    /// Just the address, with the default weight.
    Addr(String),
    /// Address and weight.
    Weighted {
        /// `host:port`.
        addr: String,
        /// Relative share of traffic.
        weight: u32,
    },
}

/// A registry whose lists never change: what the configuration says. Registering is a no-op.
#[derive(Clone, Debug)]
pub struct StaticRegistry {
    feeds: Arc<HashMap<String, Arc<Feed>>>,
}

impl StaticRegistry {
    /// A registry listing the configured endpoints; they count as long started (no warm-up).
    pub fn new(config: &StaticRegistryConfig) -> StaticRegistry {
        let feeds = config
            .services
            .iter()
            .map(|(service, endpoints)| {
                let instances = endpoints
                    .iter()
                    .map(|endpoint| match endpoint {
                        StaticEndpoint::Addr(addr) => Instance::new(service, addr),
                        StaticEndpoint::Weighted { addr, weight } => Instance::new(service, addr).with_weight(*weight),
                    })
                    .map(|instance| instance.started_at(0))
                    .collect();
                (service.clone(), Feed::fixed(service, instances))
            })
            .collect();
        StaticRegistry { feeds: Arc::new(feeds) }
    }

    /// A registry for one service at the given addresses (handy in tests and tools).
    pub fn single(service: &str, addrs: impl IntoIterator<Item = impl ToString>) -> StaticRegistry {
        let endpoints = addrs.into_iter().map(|addr| StaticEndpoint::Addr(addr.to_string())).collect();
        StaticRegistry::new(&StaticRegistryConfig { services: BTreeMap::from([(service.to_owned(), endpoints)]) })
    }
}

impl Registry for StaticRegistry {
    fn register(&self, instance: Instance) -> BoxFuture<'_, Result<Registration, RegistryError>> {
        Box::pin(async move { Ok(Registration::fixed(instance)) })
    }

    fn discover(&self, service: &str) -> Discovery {
        // An unknown service gets an empty, settled list: its calls fail with `NoEndpoint`.
        self.feeds.get(service).cloned().unwrap_or_else(|| Feed::fixed(service, Vec::new())).subscribe(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_deserialize_from_plain_addresses_and_weighted_tables() {
        let config: StaticRegistryConfig = serde_json::from_str(
            r#"{"services": {"Stock": ["10.0.0.1:7001", {"addr": "10.0.0.2:7001", "weight": 200}]}}"#,
        )
        .unwrap();
        let registry = StaticRegistry::new(&config);
        let listed = registry.discover("Stock").instances();
        let summary: Vec<_> = listed.iter().map(|i| (i.addr.as_str(), i.weight, i.started_at_ms)).collect();
        assert_eq!(summary, [("10.0.0.1:7001", 100, 0), ("10.0.0.2:7001", 200, 0)]);
        assert!(registry.discover("Order").instances().is_empty());
    }
}
