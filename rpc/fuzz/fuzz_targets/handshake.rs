//! The connection handshake: the server against a stranger's bytes, and the real client
//! against the real server with keys from the input.
//!
//! The first byte picks the mode, the rest is its input:
//!
//! - High bit clear, a stranger: the rest is everything a peer sends before closing its write
//!   half. The server must finish, must fail (no one can answer its fresh nonce without the key)
//!   with the error the bytes call for, judged four bytes at a time, and must answer nothing but
//!   a challenge, and that only to a well-formed hello.
//! - High bit set, a pair: bits 0-1 say which side takes its key from the rest (both, the client,
//!   the server, or each one half). Equal keys must shake hands; other keys must end with the
//!   client refusing the server and the server failing.
//!
//! Time is paused on the runtime, so a handshake that deadlocks reaches its timeout at once and
//! fails the run instead of stalling it.

#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use rpc::ClusterKey;
use rpc::frame::{MAGIC, VERSION};
use rpc::security::handshake::{self, HandshakeError, MAC_LEN, NONCE_LEN, PREFIX_LEN};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::runtime::Runtime;

/// Message types, as the diagram in `rpc/src/security/handshake.rs` gives them (private there).
const HELLO: u8 = b'H';
const CHALLENGE: u8 = b'C';
const PROOF: u8 = b'P';
/// Each direction of the pipe holds less than a challenge, so messages cross it in pieces.
const PIPE: usize = 64;
/// Far longer than a handshake takes; with time paused only a deadlock gets there.
const HANG: Duration = Duration::from_secs(3600);
/// The key of a side that does not take its key from the input.
const FIXED_KEY: &[u8] = b"the fixed cluster key of the fuzz target";
/// HMAC-SHA256 zero-pads keys up to its 64-byte block (and hashes longer ones).
const HMAC_BLOCK: usize = 64;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, input)) = data.split_first() else {
        return;
    };
    if mode & 0x80 == 0 { stranger(input) } else { pair(mode, input) }
});

fn stranger(input: &[u8]) {
    let (peer, mut end) = tokio::io::duplex(PIPE);
    let key = ClusterKey::new(FIXED_KEY);
    let (outcome, answer) = block_on(async move {
        // Each end is dropped as soon as its side is done, as a closed connection would be.
        let server = async move { handshake::server(&mut end, &key).await };
        tokio::join!(server, send_and_listen(peer, input))
    });
    let expected = expected_failure(input);
    assert!(
        matches!((&outcome, &expected), (Err(HandshakeError::Io(_)), HandshakeError::Io(_)))
            || outcome.as_ref().err() == Some(&expected),
        "the server said {outcome:?} to {input:?}, expected {expected:?}"
    );
    if judge(input, HELLO, NONCE_LEN).is_ok() {
        assert_eq!(answer.len(), PREFIX_LEN + NONCE_LEN + MAC_LEN, "a hello is answered by one challenge: {answer:?}");
        assert_eq!(answer[..PREFIX_LEN], prefix(CHALLENGE), "a hello is answered by one challenge: {answer:?}");
    } else {
        assert!(answer.is_empty(), "the server answered a stranger: {answer:?}");
    }
}

/// The stranger: writes `input` and closes its write half while reading all the server sends.
/// The two run at once, as over a socket, or a server answering mid-input would block on a
/// full pipe.
async fn send_and_listen(peer: DuplexStream, input: &[u8]) -> Vec<u8> {
    let (mut reader, mut writer) = tokio::io::split(peer);
    let send = async move {
        // The server stops reading once it has failed: writing then fails, as it should.
        let _ = writer.write_all(input).await;
        let _ = writer.shutdown().await;
    };
    let listen = async move {
        let mut answer = Vec::new();
        let _ = reader.read_to_end(&mut answer).await;
        answer
    };
    tokio::join!(send, listen).1
}

fn pair(mode: u8, input: &[u8]) {
    let (client_key, server_key) = match mode & 0b11 {
        0 => (input, input),
        1 => (input, FIXED_KEY),
        2 => (FIXED_KEY, input),
        _ => input.split_at(input.len() / 2),
    };
    let (mut client_end, mut server_end) = tokio::io::duplex(PIPE);
    let (client, server) = (ClusterKey::new(client_key), ClusterKey::new(server_key));
    let outcomes = block_on(async move {
        let client = async move { handshake::client(&mut client_end, &client).await };
        let server = async move { handshake::server(&mut server_end, &server).await };
        tokio::join!(client, server)
    });
    if same_hmac_key(client_key, server_key) {
        assert_eq!(outcomes, (Ok(()), Ok(())), "keys {client_key:?} and {server_key:?}");
    } else {
        // The client judges the server's MAC first, and closes before sending a proof.
        let (client, server) = &outcomes;
        assert_eq!(client, &Err(HandshakeError::PeerLacksKey), "keys {client_key:?} and {server_key:?}");
        assert!(matches!(server, Err(HandshakeError::Io(_))), "keys {client_key:?} and {server_key:?}: {server:?}");
    }
}

/// Whether HMAC uses the two keys as one. Keys up to a block differ only by trailing zeros then;
/// a key longer than a block is hashed, which is not modelled: such a key equals only itself.
fn same_hmac_key(a: &[u8], b: &[u8]) -> bool {
    if a.len() > HMAC_BLOCK || b.len() > HMAC_BLOCK {
        return a == b;
    }
    let trimmed = |key: &[u8]| key.len() - key.iter().rev().take_while(|&&byte| byte == 0).count();
    a[..trimmed(a)] == b[..trimmed(b)]
}

/// The error the server owes a peer that sends `input` and closes: its first message must be a
/// hello, its second a proof, and no proof without the key can match a fresh nonce.
fn expected_failure(input: &[u8]) -> HandshakeError {
    match judge(input, HELLO, NONCE_LEN).and_then(|rest| judge(rest, PROOF, MAC_LEN)) {
        Ok(_) => HandshakeError::PeerLacksKey,
        Err(err) => err,
    }
}

/// Judges the message of type `kind` at the start of `input` as the server does: the prefix as
/// soon as it is there, then the rest. Returns the bytes after the message.
fn judge(input: &[u8], kind: u8, body_len: usize) -> Result<&[u8], HandshakeError> {
    let eof = || HandshakeError::Io("early eof".into());
    let message_prefix = input.get(..PREFIX_LEN).ok_or_else(eof)?;
    let magic = u16::from_be_bytes([message_prefix[0], message_prefix[1]]);
    if magic != MAGIC {
        return Err(HandshakeError::BadMagic(magic));
    }
    if message_prefix[2] != VERSION {
        return Err(HandshakeError::UnsupportedVersion(message_prefix[2]));
    }
    if message_prefix[3] != kind {
        return Err(HandshakeError::Unexpected { expected: kind as char, got: message_prefix[3] });
    }
    input.get(PREFIX_LEN + body_len..).ok_or_else(eof)
}

fn prefix(kind: u8) -> [u8; PREFIX_LEN] {
    let [hi, lo] = MAGIC.to_be_bytes();
    [hi, lo, VERSION, kind]
}

/// Runs `future` to completion on the target's runtime, failing the run if it deadlocks.
fn block_on<F: Future>(future: F) -> F::Output {
    runtime().block_on(async { tokio::time::timeout(HANG, future).await.expect("the handshake hung") })
}

/// One current-thread runtime for the whole run: building one per input would dominate it.
fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a current-thread runtime builds")
    })
}
