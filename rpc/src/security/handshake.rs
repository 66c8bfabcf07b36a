//! The connection handshake: both ends prove they hold the cluster key before any frame.
//!
//! ```text
//! client                                              server
//!   Hello     "SK" 2 'H' nonce_c[32]          ──►
//!                                             ◄──  Challenge "SK" 2 'C' nonce_s[32] mac_s[32]
//!   (checks mac_s: the server holds the key)
//!   Proof     "SK" 2 'P' mac_c[32]            ──►
//!                                                  (checks mac_c: the client holds the key)
//!                                             ◄──  Welcome   "SK" 2 'W'
//! frames ...
//!
//! mac_s = HMAC-SHA256(key, "seckill-rpc v2 server" ‖ nonce_c ‖ nonce_s)
//! mac_c = HMAC-SHA256(key, "seckill-rpc v2 client" ‖ nonce_c ‖ nonce_s)
//! ```
//!
//! Fresh random nonces from both sides make every transcript new, so a recorded proof is worth
//! nothing on another connection, and the labels differ, so a server's answer cannot be
//! reflected back as a client's proof. Each side checks the other: a client never sends a call
//! to a node that cannot prove the key (a fake node in the registry), and a server never reads a
//! frame from a peer that cannot. MACs are compared in constant time. The handshake proves who
//! is at the ends; it does not hide or sign the frames that follow (use TLS for that).

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::ClusterKey;
use crate::frame::{MAGIC, VERSION};

/// Bytes of a nonce.
pub const NONCE_LEN: usize = 32;
/// Bytes of a MAC (HMAC-SHA256).
pub const MAC_LEN: usize = 32;
/// Bytes of the prefix of every handshake message: magic, version, type.
pub const PREFIX_LEN: usize = 4;

const HELLO: u8 = b'H';
const CHALLENGE: u8 = b'C';
const PROOF: u8 = b'P';
const WELCOME: u8 = b'W';
const SERVER_LABEL: &[u8] = b"seckill-rpc v2 server";
const CLIENT_LABEL: &[u8] = b"seckill-rpc v2 client";

/// Why a handshake failed. The connection is closed in every case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// Reading or writing failed, or the peer closed the connection.
    #[error("handshake I/O: {0}")]
    Io(String),
    /// The peer does not speak this protocol.
    #[error("bad magic {0:#06x}: the peer does not speak the seckill RPC protocol")]
    BadMagic(u16),
    /// The peer speaks another version of it.
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u8),
    /// A message other than the one due.
    #[error("expected handshake message {expected:?}, got {got:#04x}")]
    Unexpected {
        /// The type due.
        expected: char,
        /// The type byte received.
        got: u8,
    },
    /// The peer's MAC is wrong: it does not hold the cluster key.
    #[error("the peer could not prove it holds the cluster key")]
    PeerLacksKey,
    /// The server closed the connection instead of welcoming us: it refused our proof.
    #[error("the server refused the handshake (does this node hold the cluster key?)")]
    Refused,
}

impl From<std::io::Error> for HandshakeError {
    fn from(err: std::io::Error) -> Self {
        HandshakeError::Io(err.to_string())
    }
}

/// Runs the client's side on `stream`.
pub async fn client<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, key: &ClusterKey) -> Result<(), HandshakeError> {
    let nonce_c: [u8; NONCE_LEN] = rand::random();
    let mut hello = prefix(HELLO).to_vec();
    hello.extend_from_slice(&nonce_c);
    stream.write_all(&hello).await?;
    stream.flush().await?;

    let mut challenge = [0u8; PREFIX_LEN + NONCE_LEN + MAC_LEN];
    stream.read_exact(&mut challenge).await?;
    check_prefix(&challenge, CHALLENGE)?;
    let nonce_s = &challenge[PREFIX_LEN..PREFIX_LEN + NONCE_LEN];
    let mac_s = &challenge[PREFIX_LEN + NONCE_LEN..];
    verify(key, SERVER_LABEL, &nonce_c, nonce_s, mac_s)?;

    let mut proof = prefix(PROOF).to_vec();
    proof.extend_from_slice(&mac(key, CLIENT_LABEL, &nonce_c, nonce_s));
    stream.write_all(&proof).await?;
    stream.flush().await?;

    let mut welcome = [0u8; PREFIX_LEN];
    match stream.read_exact(&mut welcome).await {
        Ok(_) => check_prefix(&welcome, WELCOME),
        Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => Err(HandshakeError::Refused),
        Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => Err(HandshakeError::Refused),
        Err(err) => Err(err.into()),
    }
}

/// Runs the server's side on `stream`. On success the connection may carry frames; on failure
/// the caller closes it without a word.
pub async fn server<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, key: &ClusterKey) -> Result<(), HandshakeError> {
    let mut hello = [0u8; PREFIX_LEN + NONCE_LEN];
    read_message(stream, &mut hello, HELLO).await?;
    let nonce_c = &hello[PREFIX_LEN..];
    let nonce_s: [u8; NONCE_LEN] = rand::random();
    let mut challenge = prefix(CHALLENGE).to_vec();
    challenge.extend_from_slice(&nonce_s);
    challenge.extend_from_slice(&mac(key, SERVER_LABEL, nonce_c, &nonce_s));
    stream.write_all(&challenge).await?;
    stream.flush().await?;

    let mut proof = [0u8; PREFIX_LEN + MAC_LEN];
    read_message(stream, &mut proof, PROOF).await?;
    verify(key, CLIENT_LABEL, nonce_c, &nonce_s, &proof[PREFIX_LEN..])?;
    stream.write_all(&prefix(WELCOME)).await?;
    stream.flush().await?;
    Ok(())
}

fn prefix(kind: u8) -> [u8; PREFIX_LEN] {
    let [hi, lo] = MAGIC.to_be_bytes();
    [hi, lo, VERSION, kind]
}

/// Reads one message, judging its prefix as soon as it is there (a stranger is cut off after
/// four bytes, not after a whole message's worth).
async fn read_message<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut [u8], kind: u8) -> Result<(), HandshakeError> {
    stream.read_exact(&mut buf[..PREFIX_LEN]).await?;
    check_prefix(buf, kind)?;
    stream.read_exact(&mut buf[PREFIX_LEN..]).await?;
    Ok(())
}

fn check_prefix(message: &[u8], kind: u8) -> Result<(), HandshakeError> {
    let magic = u16::from_be_bytes([message[0], message[1]]);
    if magic != MAGIC {
        return Err(HandshakeError::BadMagic(magic));
    }
    if message[2] != VERSION {
        return Err(HandshakeError::UnsupportedVersion(message[2]));
    }
    if message[3] != kind {
        return Err(HandshakeError::Unexpected { expected: kind as char, got: message[3] });
    }
    Ok(())
}

fn keyed(key: &ClusterKey, label: &[u8], nonce_c: &[u8], nonce_s: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key.expose()).expect("HMAC accepts any key length");
    mac.update(label);
    mac.update(nonce_c);
    mac.update(nonce_s);
    mac
}

fn mac(key: &ClusterKey, label: &[u8], nonce_c: &[u8], nonce_s: &[u8]) -> [u8; MAC_LEN] {
    keyed(key, label, nonce_c, nonce_s).finalize().into_bytes().into()
}

fn verify(key: &ClusterKey, label: &[u8], nonce_c: &[u8], nonce_s: &[u8], tag: &[u8]) -> Result<(), HandshakeError> {
    keyed(key, label, nonce_c, nonce_s).verify_slice(tag).map_err(|_| HandshakeError::PeerLacksKey)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run(
        client_key: &ClusterKey,
        server_key: &ClusterKey,
    ) -> (Result<(), HandshakeError>, Result<(), HandshakeError>) {
        let (mut a, mut b) = tokio::io::duplex(1024);
        let (client_key, server_key) = (client_key.clone(), server_key.clone());
        let server = tokio::spawn(async move {
            let outcome = server(&mut b, &server_key).await;
            drop(b); // a refused client sees the connection close
            outcome
        });
        let client = client(&mut a, &client_key).await;
        drop(a); // a client that gave up closes the connection
        (client, server.await.unwrap())
    }

    #[tokio::test]
    async fn the_same_key_on_both_sides_shakes_hands() {
        let key = ClusterKey::new("a cluster key of some length");
        assert_eq!(run(&key, &key).await, (Ok(()), Ok(())));
    }

    #[tokio::test]
    async fn a_client_without_the_key_is_refused_and_a_server_without_it_is_not_trusted() {
        let (right, wrong) = (ClusterKey::new("right"), ClusterKey::new("wrong"));
        // The client checks the server first: a server with another key never sees a proof.
        let (client, server) = run(&wrong, &right).await;
        assert_eq!(client, Err(HandshakeError::PeerLacksKey));
        assert!(server.is_err());
    }

    #[tokio::test]
    async fn a_peer_that_is_no_rpc_peer_is_cut_off_after_four_bytes() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        a.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        assert_eq!(server(&mut b, &ClusterKey::new("k")).await, Err(HandshakeError::BadMagic(0x4745)));
    }

    #[test]
    fn the_two_directions_use_different_macs() {
        let key = ClusterKey::new("k");
        let (nonce_c, nonce_s) = ([1u8; 32], [2u8; 32]);
        assert_ne!(mac(&key, SERVER_LABEL, &nonce_c, &nonce_s), mac(&key, CLIENT_LABEL, &nonce_c, &nonce_s));
    }
}
