//! Server settings.

use std::time::Duration;

use crate::frame::Limits;

/// Settings of a [`super::Server`].
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ServerConfig {
    /// Connections served at once; further ones are accepted and closed at once, so the client
    /// learns quickly and can try another node.
    pub max_connections: usize,
    /// Calls running at once over all connections. Past it, a call is answered `Overloaded`
    /// immediately (load shedding) instead of queueing without bound.
    pub max_in_flight: usize,
    /// Close a connection that carried no request for this long and has nothing in flight.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// On shutdown, how long in-flight calls get to finish before their connections are cut.
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
    /// Frame size limits applied to requests.
    #[serde(skip)]
    pub limits: Limits,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_connections: 10_000,
            max_in_flight: 10_000,
            idle_timeout: Duration::from_secs(300),
            drain_timeout: Duration::from_secs(30),
            limits: Limits::default(),
        }
    }
}
