//! Client settings.

use std::time::Duration;

use crate::frame::Limits;
use crate::security::Security;

/// Settings of a [`super::Channel`]. The defaults suit a service mesh on one LAN.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ClientConfig {
    /// Multiplexed connections per endpoint. A few spread the work over the server's threads;
    /// more add nothing because each already carries many calls at once.
    pub connections: usize,
    /// Give up connecting after this long.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Timeout of a call that sets none itself. Always bounded: a call never waits forever.
    #[serde(with = "humantime_serde")]
    pub default_timeout: Duration,
    /// How often pending calls are checked against their deadlines: a timeout fires at most this
    /// much late. Coarser is cheaper (see `connection.rs`).
    #[serde(with = "humantime_serde")]
    pub timeout_resolution: Duration,
    /// Send a ping when nothing has been received for this long.
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// Declare the connection dead, and fail its pending calls, when nothing at all has been
    /// received for this long.
    #[serde(with = "humantime_serde")]
    pub heartbeat_timeout: Duration,
    /// First reconnect delay after a failed connect; doubles per failure, with full jitter.
    #[serde(with = "humantime_serde")]
    pub backoff_base: Duration,
    /// Ceiling of the reconnect delay.
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    /// Frame size limits applied to answers.
    #[serde(skip)]
    pub limits: Limits,
    /// The cluster key and TLS every connection is secured with (from the program's settings,
    /// never from this struct's serialized form).
    #[serde(skip)]
    pub security: Security,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connections: 2,
            connect_timeout: Duration::from_secs(1),
            default_timeout: Duration::from_secs(5),
            timeout_resolution: Duration::from_millis(5),
            heartbeat_interval: Duration::from_secs(1),
            heartbeat_timeout: Duration::from_secs(3),
            backoff_base: Duration::from_millis(50),
            backoff_max: Duration::from_secs(5),
            limits: Limits::default(),
            security: Security::default(),
        }
    }
}
