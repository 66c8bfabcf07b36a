//! Mutual TLS (rustls, ring): every node presents a certificate signed by the cluster's CA and
//! accepts only peers that do.
//!
//! Nodes are found by address (a container IP, a host port), so clients do not check a host name
//! against the address they dialled: every node certificate carries the one DNS name
//! [`NODE_NAME`], and that is the name checked. What is proven is "a node of this cluster".

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// The DNS name every node certificate carries and every client checks.
pub const NODE_NAME: &str = "seckill-node";

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM input held no certificate or key, or could not be parsed.
    #[error("{0}")]
    Pem(String),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    /// The client verifier could not be built.
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// Both ends of mutual TLS for one node.
#[derive(Clone)]
pub struct Tls {
    connector: TlsConnector,
    acceptor: TlsAcceptor,
    server_name: ServerName<'static>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("server_name", &self.server_name).finish_non_exhaustive()
    }
}

impl Tls {
    /// TLS from PEM: the CA certificate(s) peers must chain to, this node's certificate chain,
    /// and its private key.
    pub fn from_pem(ca: &[u8], chain: &[u8], key: &[u8]) -> Result<Tls, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        for cert in certificates(ca, "CA")? {
            roots.add(cert).map_err(|err| TlsError::Pem(format!("CA certificate: {err}")))?;
        }
        let roots = Arc::new(roots);
        let chain = certificates(chain, "node certificate")?;
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|err| TlsError::Pem(format!("node key: {err}")))?;

        let client = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots.clone())
            .with_client_auth_cert(chain.clone(), key.clone_key())?;
        let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider.clone()).build()?;
        let server = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)?;
        let server_name = ServerName::try_from(NODE_NAME).expect("a valid DNS name");
        Ok(Tls {
            connector: TlsConnector::from(Arc::new(client)),
            acceptor: TlsAcceptor::from(Arc::new(server)),
            server_name,
        })
    }

    pub(crate) async fn connect(&self, tcp: TcpStream) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        self.connector.connect(self.server_name.clone(), tcp).await
    }

    pub(crate) async fn accept(&self, tcp: TcpStream) -> std::io::Result<tokio_rustls::server::TlsStream<TcpStream>> {
        self.acceptor.accept(tcp).await
    }
}

fn certificates(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| TlsError::Pem(format!("{what}: {err}")))?;
    if certs.is_empty() {
        return Err(TlsError::Pem(format!("{what}: no certificate in the PEM input")));
    }
    Ok(certs)
}
