//! Server settings.

use std::time::Duration;

use crate::frame::Limits;
use crate::security::Security;

/// Settings of a [`super::Server`].
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ServerConfig {
    /// Connections served at once; further ones are accepted and closed at once, so the client
    /// learns quickly and can try another node.
    pub max_connections: usize,
    /// Calls running at once over all connections. Past it, a call is answered `Overloaded`
    /// immediately (load shedding) instead of queueing without bound.
    pub max_in_flight: usize,
    /// Calls running at once on one connection: one peer cannot take the whole server's share.
    pub max_in_flight_per_connection: usize,
    /// Answers buffered for one connection that its peer has not read yet. A peer that stops
    /// reading (slowly or on purpose) is cut off past this, so memory stays bounded.
    pub max_buffered_bytes: usize,
    /// Time a new connection gets to complete TLS and the key handshake.
    #[serde(with = "humantime_serde")]
    pub handshake_timeout: Duration,
    /// Close a connection that carried no request for this long and has nothing in flight.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// On shutdown, how long in-flight calls get to finish before their connections are cut.
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
    /// Frame size limits applied to requests.
    #[serde(skip)]
    pub limits: Limits,
    /// The cluster key and TLS every connection must pass (from the program's settings, never
    /// from this struct's serialized form).
    #[serde(skip)]
    pub security: Security,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_connections: 10_000,
            max_in_flight: 10_000,
            max_in_flight_per_connection: 5_000,
            max_buffered_bytes: 16 * 1024 * 1024,
            handshake_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(300),
            drain_timeout: Duration::from_secs(30),
            limits: Limits::default(),
            security: Security::default(),
        }
    }
}
