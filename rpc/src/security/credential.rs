//! What a client says about itself on every call.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

/// The credential a client attaches to its calls: fixed bytes (a token minted for one request),
/// or a source asked on every call (a service's own short-lived token, renewed as it goes).
#[derive(Clone)]
pub enum Credential {
    /// The same bytes on every call.
    Fixed(Bytes),
    /// Fresh bytes for each call.
    Minted(Arc<dyn Fn() -> Bytes + Send + Sync>),
}

impl Credential {
    /// The bytes for the next call.
    pub fn bytes(&self) -> Bytes {
        match self {
            Credential::Fixed(bytes) => bytes.clone(),
            Credential::Minted(mint) => mint(),
        }
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Fixed(bytes) => write!(f, "Credential::Fixed({} bytes)", bytes.len()),
            Credential::Minted(_) => f.write_str("Credential::Minted"),
        }
    }
}

impl PartialEq for Credential {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Credential::Fixed(a), Credential::Fixed(b)) => a == b,
            (Credential::Minted(a), Credential::Minted(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for Credential {}
