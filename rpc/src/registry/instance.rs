//! [`Instance`]: one server process offering one service at one address.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Weight of an instance that sets none: a hundred leaves room for warm-up to ramp in small steps.
pub const DEFAULT_WEIGHT: u32 = 100;

/// One server of a service, as the registry lists it.
///
/// The address is the identity: a service has at most one instance per `addr`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Instance {
    /// The service name clients address (the trait's name, e.g. `Stock`).
    pub service: String,
    /// `host:port` the server listens on.
    pub addr: String,
    /// Relative share of traffic for the weighted balancers.
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// When the instance started serving, in milliseconds since the Unix epoch; `0` means long
    /// ago, so no warm-up. Set by the server, so a client that starts later does not mistake an
    /// old node for a new one.
    #[serde(default)]
    pub started_at_ms: u64,
}

fn default_weight() -> u32 {
    DEFAULT_WEIGHT
}

impl Instance {
    /// An instance of `service` at `addr` that starts now, with the default weight.
    pub fn new(service: impl Into<String>, addr: impl ToString) -> Instance {
        Instance { service: service.into(), addr: addr.to_string(), weight: DEFAULT_WEIGHT, started_at_ms: unix_ms() }
    }

    /// The same instance with another weight.
    pub fn with_weight(self, weight: u32) -> Instance {
        Instance { weight, ..self }
    }

    /// The same instance, started at `started_at_ms` (`0`: long ago, no warm-up).
    pub fn started_at(self, started_at_ms: u64) -> Instance {
        Instance { started_at_ms, ..self }
    }

    /// How long ago the instance started, by this host's clock (zero if it seems to be in the future).
    pub fn age(&self) -> Duration {
        Duration::from_millis(unix_ms().saturating_sub(self.started_at_ms))
    }
}

/// Milliseconds since the Unix epoch by this host's clock.
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
