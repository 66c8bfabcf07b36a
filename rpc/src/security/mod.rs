//! Who may talk to whom.
//!
//! - Connections: before a single frame is read, both ends prove they hold the cluster's
//!   [`ClusterKey`] ([`handshake`], an HMAC challenge–response over both sides' nonces); a node
//!   without the key is refused by servers and clients alike. Optionally the whole connection
//!   runs inside mutual TLS ([`Tls`]), for networks where traffic must be private too.
//! - Calls: a client may attach a [`Credential`] to every call (metadata entry 5). This crate
//!   never looks inside: the service verifies it and decides what the caller may do.
//!
//! A server or client with no key and no TLS speaks plain frames at once (tests, benchmarks,
//! development); the programs of the system always configure a key.

mod credential;
mod dev_ca;
pub mod handshake;
mod stream;
mod tls;

use std::fmt;
use std::sync::Arc;

pub use self::credential::Credential;
pub use self::dev_ca::{DevelopmentCa, NodeIdentity};
pub(crate) use self::stream::{Reader, Side, split};
pub use self::tls::{NODE_NAME, Tls, TlsError};

/// The secret every node of one cluster shares. Never printed.
#[derive(Clone)]
pub struct ClusterKey(Arc<[u8]>);

impl ClusterKey {
    /// A key from its bytes. How long a key must be is the operator's policy (the programs
    /// require at least 32 bytes outside development); any non-empty key works here.
    pub fn new(bytes: impl AsRef<[u8]>) -> ClusterKey {
        ClusterKey(Arc::from(bytes.as_ref()))
    }

    /// The key's bytes, for deriving other keys from it (never print them).
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClusterKey([REDACTED])")
    }
}

/// How a server or a client secures its connections.
#[derive(Clone, Debug, Default)]
pub struct Security {
    /// The cluster key both ends of every connection must prove they hold; `None` skips the
    /// handshake.
    pub key: Option<ClusterKey>,
    /// Mutual TLS around the connection; `None` is plain TCP.
    pub tls: Option<Tls>,
}

impl Security {
    /// Only the handshake, over plain TCP.
    pub fn with_key(key: ClusterKey) -> Security {
        Security { key: Some(key), tls: None }
    }
}
