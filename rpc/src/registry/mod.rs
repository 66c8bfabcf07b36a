//! Service registry and discovery: where the instances of a service are.
//!
//! A server registers after its listener is bound ([`crate::Server::spawn`] returns only then)
//! and keeps the returned [`Registration`] until shutdown. A client asks for a [`Discovery`] of a
//! service and hands it to a [`crate::Cluster`].
//!
//! - [`RedisRegistry`]: entries with a TTL kept alive by heartbeats, change notification over
//!   pub/sub plus a periodic resync, and a client-side cache that outlives a Redis outage.
//! - [`StaticRegistry`]: fixed lists from configuration.
//!
//! One registry per process, cloned into whatever needs it: the registry multiplexes every
//! registration and every discovered service over one Redis connection and one subscription.

mod discovery;
mod instance;
mod redis;
mod registration;
mod static_list;

use futures::future::BoxFuture;

pub use self::discovery::Discovery;
pub use self::instance::{DEFAULT_WEIGHT, Instance};
pub use self::redis::{RedisRegistry, RedisRegistryConfig};
pub use self::registration::Registration;
pub use self::static_list::{StaticEndpoint, StaticRegistry, StaticRegistryConfig};

/// Where servers announce themselves and clients find them.
///
/// Object safe, so a binary can pick the implementation from configuration (`Arc<dyn Registry>`).
pub trait Registry: Send + Sync + 'static {
    /// Registers `instance` and keeps it registered until the returned handle is deregistered or
    /// dropped. Call it only once the server listens.
    fn register(&self, instance: Instance) -> BoxFuture<'_, Result<Registration, RegistryError>>;

    /// A live, cached view of `service`'s instances. Must be called within a tokio runtime.
    fn discover(&self, service: &str) -> Discovery;
}

/// Why a registration failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry could not be reached or refused the command, after every attempt.
    #[error("registry unreachable after {attempts} attempts: {last}")]
    Unreachable {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// The registry accepted the entry but reading it back did not find it, after every attempt.
    #[error("registration of {addr} not visible in the registry after {attempts} attempts")]
    NotVerified {
        /// The instance's address.
        addr: String,
        /// Attempts made.
        attempts: u32,
    },
}
