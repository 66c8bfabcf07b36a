//! The RPC's security settings: the cluster key every connection proves, optional mutual TLS,
//! and the identities derived from the key (`SECKILL_RPC__KEY`, `SECKILL_RPC__TLS__CA`,
//! `SECKILL_RPC__TLS__CERT`, `SECKILL_RPC__TLS__KEY`).

use std::path::PathBuf;

use anyhow::Context as _;
use rpc::{ClusterKey, Security, Tls};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::env::SecretPolicy;
use crate::identity::Identities;

/// The built-in cluster key: development only (see [`crate::env`]).
pub const DEVELOPMENT_RPC_KEY: &str = "seckill-development-rpc-key-change-me";

/// RPC security settings, the same for every program of one system.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct RpcSecurity {
    /// The cluster key (`SECKILL_RPC__KEY`): at least 32 random bytes outside development.
    pub key: SecretString,
    /// Mutual TLS around every connection (`SECKILL_RPC__TLS__*`); plain TCP when unset.
    pub tls: Option<TlsFiles>,
}

/// PEM files of a node's TLS identity (`scripts/dev-up --tls` makes a development set).
#[derive(Clone, Debug, Deserialize)]
pub struct TlsFiles {
    /// The CA every node certificate must chain to.
    pub ca: PathBuf,
    /// This node's certificate (with `rpc::security::NODE_NAME` as a DNS name).
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

impl Default for RpcSecurity {
    fn default() -> Self {
        RpcSecurity { key: SecretString::from(DEVELOPMENT_RPC_KEY), tls: None }
    }
}

impl RpcSecurity {
    /// The cluster key.
    pub fn cluster_key(&self) -> ClusterKey {
        ClusterKey::new(self.key.expose_secret())
    }

    /// The identity tokens of this cluster.
    pub fn identities(&self) -> Identities {
        Identities::new(&self.cluster_key())
    }

    /// What the RPC secures its connections with (reads the TLS files, if any).
    pub fn load(&self) -> anyhow::Result<Security> {
        let tls = match &self.tls {
            None => None,
            Some(files) => {
                let read = |path: &PathBuf, what: &str| {
                    std::fs::read(path).with_context(|| format!("reading the RPC TLS {what} {}", path.display()))
                };
                let (ca, cert, key) =
                    (read(&files.ca, "CA")?, read(&files.cert, "certificate")?, read(&files.key, "key")?);
                Some(Tls::from_pem(&ca, &cert, &key).context("setting up RPC TLS")?)
            }
        };
        Ok(Security { key: Some(self.cluster_key()), tls })
    }

    /// Adds this key's problems to `policy`.
    pub fn check(&self, policy: &mut SecretPolicy) {
        policy.secret("SECKILL_RPC__KEY", &self.key, DEVELOPMENT_RPC_KEY);
    }
}
