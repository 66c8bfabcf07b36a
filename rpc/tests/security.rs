//! The trust boundary on real TCP: nothing is dispatched before both ends proved the cluster
//! key; a node without it is never used; mutual TLS; a peer that never reads is cut off.

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rpc::frame::{Frame, Kind, Status};
use rpc::metadata::Metadata;
use rpc::{ClientConfig, ClusterConfig, ClusterKey, DevelopmentCa, Error, Security, ServerConfig, TransportError};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const KEY: &str = "the cluster key of this test, 32+ bytes";

fn keyed(key: &str) -> Security {
    Security::with_key(ClusterKey::new(key))
}

fn server_config(security: Security) -> ServerConfig {
    ServerConfig { security, ..Default::default() }
}

fn client_config(security: Security) -> ClientConfig {
    ClientConfig { security, ..Default::default() }
}

/// A request frame for `Lab.hold(ms)` in JSON, as a script that read PROTOCOL.md would send it.
fn hold_request(id: u64, ms: u64) -> BytesMut {
    let frame = Frame {
        kind: Kind::Request,
        codec: rpc::Codec::Json.id(),
        status: Status::Ok,
        id,
        metadata: Metadata::request("Lab", "hold", Some(5_000_000), 0),
        body: Bytes::from(format!("[{ms}]")),
    };
    let mut buf = BytesMut::new();
    frame.encode(&mut buf);
    buf
}

/// Reads until the peer closes (or resets); the bytes it sent.
async fn read_to_close(stream: &mut TcpStream, limit: Duration) -> Option<usize> {
    let mut total = 0;
    let mut buf = vec![0u8; 64 * 1024];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return total,
                Ok(n) => total += n,
            }
        }
    };
    tokio::time::timeout(limit, read_all).await.ok()
}

#[tokio::test]
async fn a_client_without_the_key_gets_nothing_dispatched_and_is_cut_off() {
    let (server, counters) = spawn_lab(server_config(keyed(KEY))).await;
    // Frames straight away, no handshake: the server reads four bytes, sees no hello, closes.
    let mut raw = TcpStream::connect(server.local_addr()).await.unwrap();
    raw.write_all(&hold_request(1, 10)).await.unwrap();
    assert_eq!(read_to_close(&mut raw, Duration::from_secs(5)).await, Some(0), "closed without a word");
    // A handshake with a made-up proof: the server answers the hello, then closes.
    let mut raw = TcpStream::connect(server.local_addr()).await.unwrap();
    let mut hello = vec![0x53, 0x4B, rpc::frame::VERSION, b'H'];
    hello.extend_from_slice(&[7u8; 32]);
    raw.write_all(&hello).await.unwrap();
    let mut challenge = [0u8; 68];
    raw.read_exact(&mut challenge).await.unwrap();
    let mut proof = vec![0x53, 0x4B, rpc::frame::VERSION, b'P'];
    proof.extend_from_slice(&[0u8; 32]);
    raw.write_all(&proof).await.unwrap();
    raw.write_all(&hold_request(2, 10)).await.unwrap();
    assert_eq!(read_to_close(&mut raw, Duration::from_secs(5)).await, Some(0), "no welcome, no answer");
    // Typed clients: without a key the connection is dropped under the first call; with another
    // key it never opens (the client sees the server cannot prove this key either).
    let keyless = client(server.local_addr(), ClientConfig::default());
    assert!(matches!(keyless.hold(10).await, Err(Error::Transport(_))));
    let foreign = client(server.local_addr(), client_config(keyed("another cluster's key")));
    assert!(matches!(foreign.hold(10).await, Err(Error::Transport(TransportError::Connect { .. }))));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(counters.started.load(Ordering::SeqCst), 0, "not one request was dispatched");
    let member = client(server.local_addr(), client_config(keyed(KEY)));
    assert_eq!(member.hold(10).await, Ok(10));
    assert_eq!(counters.started.load(Ordering::SeqCst), 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fake_node_in_the_registry_is_never_used_its_calls_go_to_the_real_node() {
    let real = TestNode::spawn_with(1, server_config(keyed(KEY))).await;
    // One impostor speaks the protocol without any key, the other holds a different key.
    let keyless = TestNode::spawn_with(2, ServerConfig::default()).await;
    let foreign = TestNode::spawn_with(3, server_config(keyed("not this cluster's key"))).await;
    let nodes = [real, keyless, foreign];
    let mut config = ClusterConfig::default();
    config.client.security = keyed(KEY);
    let lab = cluster_client(&nodes, config);
    // `record` is not idempotent: it is only ever sent elsewhere because it never reached a server.
    let answers = run_calls(300, 16, move |_| {
        let lab = lab.clone();
        async move { lab.record().await }
    })
    .await;
    assert!(answers.iter().all(|answer| *answer == Ok(1)), "{:?}", answers.iter().find(|a| **a != Ok(1)));
    assert_eq!(nodes[0].switch.arrived(), 300);
    assert_eq!(nodes[1].switch.arrived() + nodes[2].switch.arrived(), 0, "the impostors saw no call");
}

#[tokio::test]
async fn mutual_tls_carries_calls_and_refuses_a_stranger_certificate() {
    let ca = DevelopmentCa::new("seckill test CA").unwrap();
    let tls = |ca: &DevelopmentCa| Security { key: Some(ClusterKey::new(KEY)), tls: Some(ca.tls().unwrap()) };
    let (server, counters) = spawn_lab(server_config(tls(&ca))).await;
    let member = client(server.local_addr(), client_config(tls(&ca)));
    assert_eq!(member.echo(b"over TLS".to_vec()).await, Ok(b"over TLS".to_vec()));
    assert_eq!(member.hold(1).await, Ok(1));
    // The right cluster key, but a certificate from another CA.
    let other_ca = DevelopmentCa::new("someone else's CA").unwrap();
    let stranger = client(server.local_addr(), client_config(tls(&other_ca)));
    assert!(matches!(stranger.hold(1).await, Err(Error::Transport(TransportError::Connect { .. }))));
    // Plain TCP to a TLS server.
    let plain = client(server.local_addr(), client_config(keyed(KEY)));
    assert!(matches!(plain.hold(1).await, Err(Error::Transport(TransportError::Connect { .. }))));
    assert_eq!(counters.started.load(Ordering::SeqCst), 1, "only the member's call ran");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_reads_its_answers_is_cut_off_and_memory_stays_bounded() {
    const LIMIT: usize = 256 * 1024;
    const PAYLOAD: usize = 64 * 1024;
    const REQUESTS: u64 = 400;
    let config = ServerConfig { max_buffered_bytes: LIMIT, ..Default::default() };
    let (server, _) = spawn_lab(config).await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(64 * 1024).unwrap();
    let mut raw = socket.connect(server.local_addr()).await.unwrap();
    // 400 echoes of 64 KiB: 25 MiB of answers the peer asks for and never reads.
    let payload = format!("[{}]", vec!["7"; PAYLOAD].join(","));
    let mut sent = 0;
    for id in 1..=REQUESTS {
        let frame = Frame {
            kind: Kind::Request,
            codec: rpc::Codec::Json.id(),
            status: Status::Ok,
            id,
            metadata: Metadata::request("Lab", "echo", Some(30_000_000), 0),
            body: Bytes::from(format!("[{payload}]")),
        };
        let mut buf = BytesMut::new();
        frame.encode(&mut buf);
        match tokio::time::timeout(Duration::from_secs(2), raw.write_all(&buf)).await {
            Ok(Ok(())) => sent += 1,
            _ => break, // the server stopped reading us too: it cut the connection
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let received = read_to_close(&mut raw, Duration::from_secs(20)).await.expect("the server closes the connection");
    let asked = REQUESTS as usize * PAYLOAD * 2; // JSON digits and commas: ~2 bytes per byte
    println!("sent {sent} requests asking for ~{} MiB; received {} KiB before the cut", asked >> 20, received >> 10);
    // What arrives is bounded by the limit (twice: the batch being written and the buffer)
    // plus the kernel's socket buffers on both ends, far below what was asked.
    assert!(received < asked / 4, "received {received} of {asked} bytes: the server kept buffering");
    // The server serves others all along.
    let other = client(server.local_addr(), ClientConfig::default());
    assert_eq!(other.hold(1).await, Ok(1));
    server.shutdown().await;
}

#[tokio::test]
async fn one_connection_cannot_take_more_than_its_share_of_in_flight_calls() {
    let config = ServerConfig { max_in_flight_per_connection: 5, ..Default::default() };
    let (server, _) = spawn_lab(config).await;
    let lab = client(server.local_addr(), ClientConfig { connections: 1, ..Default::default() });
    let results = futures::future::join_all((0..20).map(|_| lab.hold(300))).await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let overloaded = results.iter().filter(|r| **r == Err(Error::Overloaded)).count();
    assert_eq!((ok, overloaded), (5, 15), "{results:?}");
    server.shutdown().await;
}
