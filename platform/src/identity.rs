//! Caller identity on the RPC: a short-lived token, signed with a key derived from the cluster
//! key, that says who a call comes from. The gateway mints one per request for the user whose
//! JWT it verified; each service mints its own for the calls it makes for itself. A service
//! derives the caller from the token, never from the call's arguments.
//!
//! ```text
//!  0         1        2                 10                18            19                51
//! +---------+--------+-----------------+-----------------+-------------+-----------------+
//! | version | kind   | expires (ms, BE)| user id (BE)    | role/service| HMAC-SHA256     |
//! |   = 1   | 1 user |  Unix epoch     | 0 for services  |  code       | of bytes 0..19  |
//! |         | 2 svc  |                 |                 |             |                 |
//! +---------+--------+-----------------+-----------------+-------------+-----------------+
//! ```
//!
//! The signing key is HMAC(cluster key, "seckill identity tokens v1"): every node that holds the
//! cluster key can mint, and only those. Tokens live a minute: enough for a call and its
//! retries, too short to be worth stealing from a log.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use contracts::{Actor, Principal, Role, Service};
use hmac::{Hmac, KeyInit, Mac};
use rpc::{ClusterKey, Credential};
use sha2::Sha256;

const VERSION: u8 = 1;
const KIND_USER: u8 = 1;
const KIND_SERVICE: u8 = 2;
const SIGNED_LEN: usize = 19;
/// Bytes of a token.
pub const TOKEN_LEN: usize = SIGNED_LEN + 32;
/// How long a token is valid.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(60);

/// Why a call's identity was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The call carried no token.
    #[error("the call carries no identity token")]
    Missing,
    /// The bytes are not a token of this version.
    #[error("malformed identity token")]
    Malformed,
    /// The signature does not match: forged, or signed with another key.
    #[error("identity token with a bad signature")]
    BadSignature,
    /// It was valid once.
    #[error("expired identity token")]
    Expired,
}

/// Mints and verifies identity tokens.
#[derive(Clone)]
pub struct Identities {
    /// HMAC keyed once; cloned per token (saves hashing the key pads each time).
    keyed: Hmac<Sha256>,
}

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Identities([REDACTED])")
    }
}

impl Identities {
    /// The identities of the cluster holding `key`.
    pub fn new(key: &ClusterKey) -> Identities {
        let mut derive = <Hmac<Sha256> as KeyInit>::new_from_slice(key.expose()).expect("HMAC takes any key");
        derive.update(b"seckill identity tokens v1");
        let signing_key = derive.finalize().into_bytes();
        Identities { keyed: <Hmac<Sha256> as KeyInit>::new_from_slice(&signing_key).expect("32-byte key") }
    }

    /// A token for `principal`, valid [`TOKEN_LIFETIME`] from now.
    pub fn mint(&self, principal: Principal) -> Bytes {
        self.mint_until(principal, now_ms() + TOKEN_LIFETIME.as_millis() as u64)
    }

    fn mint_until(&self, principal: Principal, expires_ms: u64) -> Bytes {
        let (kind, subject, detail) = match principal {
            Principal::User(actor) => (KIND_USER, actor.user_id, role_code(actor.role)),
            Principal::Service(service) => (KIND_SERVICE, 0, service as u8),
        };
        let mut token = BytesMut::with_capacity(TOKEN_LEN);
        token.put_u8(VERSION);
        token.put_u8(kind);
        token.put_u64(expires_ms);
        token.put_i64(subject);
        token.put_u8(detail);
        let mut mac = self.keyed.clone();
        mac.update(&token);
        token.put_slice(&mac.finalize().into_bytes());
        token.freeze()
    }

    /// The principal `token` stands for, if it is genuine and current.
    pub fn verify(&self, token: &[u8]) -> Result<Principal, IdentityError> {
        if token.len() != TOKEN_LEN || token[0] != VERSION {
            return Err(IdentityError::Malformed);
        }
        let (signed, tag) = token.split_at(SIGNED_LEN);
        let mut mac = self.keyed.clone();
        mac.update(signed);
        mac.verify_slice(tag).map_err(|_| IdentityError::BadSignature)?;
        let expires_ms = u64::from_be_bytes(signed[2..10].try_into().expect("8 bytes"));
        if now_ms() > expires_ms {
            return Err(IdentityError::Expired);
        }
        let subject = i64::from_be_bytes(signed[10..18].try_into().expect("8 bytes"));
        match (signed[1], signed[18]) {
            (KIND_USER, role) => {
                let role = role_from_code(role).ok_or(IdentityError::Malformed)?;
                Ok(Principal::User(Actor { user_id: subject, role }))
            }
            (KIND_SERVICE, code) => Ok(Principal::Service(Service::from_code(code).ok_or(IdentityError::Malformed)?)),
            _ => Err(IdentityError::Malformed),
        }
    }

    /// Who the call being served comes from (its credential, verified).
    pub fn caller(&self) -> Result<Principal, IdentityError> {
        let token = rpc::Context::credential().ok_or(IdentityError::Missing)?;
        self.verify(&token)
    }

    /// The credential of a service acting for itself: a fresh token on every call.
    pub fn service_credential(&self, service: Service) -> Credential {
        let identities = self.clone();
        Credential::Minted(std::sync::Arc::new(move || identities.mint(Principal::Service(service))))
    }

    /// The credential of one request made for `actor` (the gateway, after verifying a JWT).
    pub fn user_credential(&self, actor: Actor) -> Credential {
        Credential::Fixed(self.mint(Principal::User(actor)))
    }
}

fn role_code(role: Role) -> u8 {
    match role {
        Role::User => 1,
        Role::Admin => 2,
    }
}

fn role_from_code(code: u8) -> Option<Role> {
    match code {
        1 => Some(Role::User),
        2 => Some(Role::Admin),
        _ => None,
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identities(key: &str) -> Identities {
        Identities::new(&ClusterKey::new(key))
    }

    #[test]
    fn tokens_round_trip_for_users_and_services() {
        let ids = identities("k");
        let admin = Principal::User(Actor { user_id: 1 << 60, role: Role::Admin });
        assert_eq!(ids.verify(&ids.mint(admin)), Ok(admin));
        let worker = Principal::Service(Service::OrderWorker);
        assert_eq!(ids.verify(&ids.mint(worker)), Ok(worker));
    }

    #[test]
    fn forged_foreign_expired_and_malformed_tokens_are_refused() {
        let ids = identities("k");
        let user = Principal::User(Actor { user_id: 7, role: Role::User });
        // Another cluster's key.
        assert_eq!(ids.verify(&identities("other").mint(user)), Err(IdentityError::BadSignature));
        // A user who promotes themself: the role byte changes, the signature does not follow.
        let mut forged = ids.mint(user).to_vec();
        forged[18] = role_code(Role::Admin);
        assert_eq!(ids.verify(&forged), Err(IdentityError::BadSignature));
        // Signed properly, but past its time.
        assert_eq!(ids.verify(&ids.mint_until(user, now_ms() - 1)), Err(IdentityError::Expired));
        assert_eq!(ids.verify(b"garbage"), Err(IdentityError::Malformed));
    }
}
