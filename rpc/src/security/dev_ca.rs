//! A throwaway certificate authority for development and tests: node certificates for mutual
//! TLS without an operator's PKI. Never for production: its keys live in files next to the code
//! that made them (`scripts/dev-up --tls`) or only in memory (tests).

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};

use super::tls::{NODE_NAME, Tls, TlsError};

/// A CA and the node certificates it signs.
pub struct DevelopmentCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A node's certificate and key, PEM-encoded.
#[derive(Clone)]
pub struct NodeIdentity {
    /// The certificate (signed by the CA; DNS names [`NODE_NAME`] and `localhost`).
    pub cert_pem: String,
    /// Its private key.
    pub key_pem: String,
}

impl std::fmt::Debug for DevelopmentCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DevelopmentCa")
    }
}

impl DevelopmentCa {
    /// A new CA named `name`.
    pub fn new(name: &str) -> Result<DevelopmentCa, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Ok(DevelopmentCa { issuer: CertifiedIssuer::self_signed(params, KeyPair::generate()?)? })
    }

    /// The CA certificate, PEM-encoded (what every node trusts).
    pub fn ca_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A fresh node certificate and key.
    pub fn node(&self) -> Result<NodeIdentity, rcgen::Error> {
        let mut params = CertificateParams::new(vec![NODE_NAME.to_owned(), "localhost".to_owned()])?;
        params.distinguished_name.push(DnType::CommonName, NODE_NAME);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(NodeIdentity { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    }

    /// A node's TLS, ready to use.
    pub fn tls(&self) -> Result<Tls, TlsError> {
        let node = self.node().map_err(|err| TlsError::Pem(err.to_string()))?;
        Tls::from_pem(self.ca_pem().as_bytes(), node.cert_pem.as_bytes(), node.key_pem.as_bytes())
    }
}
