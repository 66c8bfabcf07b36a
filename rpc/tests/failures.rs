//! Failures over real TCP: crashed and frozen servers, restarts, shutdown, hostile clients.
//!
//! Bounds such as "within 5 s" below are hang detectors, far above the configured heartbeat
//! window and far below the calls' own 60 s timeout: they tell which mechanism answered, not how fast.

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::BytesMut;
use futures::future::join_all;
use rpc::frame::{Frame, Header, Kind, Limits};
use rpc::metadata::Metadata;
use rpc::{ClientConfig, Error, ServerConfig, Status, TransportError};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn patient() -> ClientConfig {
    ClientConfig { default_timeout: Duration::from_secs(60), ..Default::default() }
}

fn is_connection_lost<T: std::fmt::Debug>(result: &Result<T, Error>) -> bool {
    matches!(result, Err(Error::Transport(TransportError::ConnectionLost(_))))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_fails_every_pending_call_promptly() {
    let (server, counters) = spawn_lab(ServerConfig::default()).await;
    let lab = client(server.local_addr(), patient());
    let calls = tokio::spawn({
        let lab = lab.clone();
        async move { join_all((0..20).map(|_| lab.hold(30_000))).await }
    });
    assert!(eventually(Duration::from_secs(5), || counters.started.load(Ordering::SeqCst) == 20).await);
    server.abort();
    let results = tokio::time::timeout(Duration::from_secs(5), calls).await.expect("callers hung").unwrap();
    assert!(results.iter().all(is_connection_lost), "{results:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_server_is_detected_by_the_heartbeat_and_pending_calls_fail() {
    // A peer that accepts and reads but never answers anything, pings included: what a hung
    // process or a dead host behind a silent network looks like.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut sink = vec![0u8; 4096];
                while matches!(socket.read(&mut sink).await, Ok(n) if n > 0) {}
            });
        }
    });
    let config = ClientConfig {
        heartbeat_interval: Duration::from_millis(100),
        heartbeat_timeout: Duration::from_millis(300),
        ..patient()
    };
    let lab = client(addr, config);
    let results = tokio::time::timeout(Duration::from_secs(5), join_all((0..5).map(|_| lab.hold(1))))
        .await
        .expect("callers hung past the heartbeat window");
    assert!(results.iter().all(is_connection_lost), "{results:?}");
    match &results[0] {
        Err(Error::Transport(TransportError::ConnectionLost(reason))) => {
            assert!(reason.contains("heartbeat"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_reconnects_after_a_server_restart() {
    let (server, _) = spawn_lab(ServerConfig::default()).await;
    let addr = server.local_addr();
    let config = ClientConfig { backoff_max: Duration::from_millis(200), ..Default::default() };
    let lab = client(addr, config);
    assert_eq!(lab.echo(vec![1]).await, Ok(vec![1]));
    server.shutdown().await;
    assert!(lab.echo(vec![2]).await.is_err(), "nobody is listening");

    let restarted = rpc::Server::new(ServerConfig::default())
        .add_service(LabServer::new(LabImpl::default()))
        .spawn(addr)
        .await
        .expect("rebind the same port");
    let mut attempts = 0;
    let recovered = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            attempts += 1;
            if lab.echo(vec![3]).await == Ok(vec![3]) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(recovered.is_ok(), "no reconnect after {attempts} attempts");
    restarted.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_answers_every_in_flight_call_and_then_refuses() {
    let (server, counters) = spawn_lab(ServerConfig::default()).await;
    let addr = server.local_addr();
    let lab = client(addr, ClientConfig { connections: 3, ..patient() });
    let calls = tokio::spawn({
        let lab = lab.clone();
        async move { join_all((0..100).map(|_| lab.hold(300))).await }
    });
    assert!(eventually(Duration::from_secs(5), || counters.started.load(Ordering::SeqCst) == 100).await);
    server.shutdown().await;
    let results = calls.await.unwrap();
    assert_eq!(results.iter().filter(|r| **r == Ok(300)).count(), 100, "{results:?}");
    assert_eq!(counters.finished.load(Ordering::SeqCst), 100);
    assert!(TcpStream::connect(addr).await.is_err(), "a shut-down server must not accept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_sending_garbage_is_cut_off_while_others_keep_working() {
    let (server, _) = spawn_lab(ServerConfig::default()).await;
    let lab = client(server.local_addr(), ClientConfig::default());
    let steady = tokio::spawn({
        let lab = lab.clone();
        async move {
            let mut ok = 0;
            for i in 0..200u32 {
                if lab.echo(i.to_be_bytes().to_vec()).await == Ok(i.to_be_bytes().to_vec()) {
                    ok += 1;
                }
            }
            ok
        }
    });
    let mut rogue = TcpStream::connect(server.local_addr()).await.unwrap();
    rogue.write_all(b"GET / HTTP/1.1\r\nHost: seckill\r\n\r\n").await.unwrap();
    assert_eq!(read_until_closed(&mut rogue).await, 0, "the server must close without answering");
    assert_eq!(steady.await.unwrap(), 200);
    server.shutdown().await;
}

#[tokio::test]
async fn an_oversized_frame_closes_only_that_connection() {
    let limits = Limits { max_metadata: 1024, max_body: 1024 };
    let (server, _) = spawn_lab(ServerConfig { limits, ..Default::default() }).await;
    let mut rogue = TcpStream::connect(server.local_addr()).await.unwrap();
    let mut header = BytesMut::new();
    Header { kind: Kind::Request, codec: 1, status: Status::Ok, id: 1, metadata_len: 0, body_len: 1_000_000 }
        .encode(&mut header);
    rogue.write_all(&header).await.unwrap();
    assert_eq!(read_until_closed(&mut rogue).await, 0);
    let lab = client(server.local_addr(), ClientConfig::default());
    assert_eq!(lab.echo(vec![7; 512]).await, Ok(vec![7; 512]));
    // A client whose request is too large loses that connection (the server cannot skip an
    // unread body and stay in sync); its next call simply reconnects.
    assert!(is_connection_lost(&lab.echo(vec![7; 2048]).await));
    assert_eq!(lab.echo(vec![8; 16]).await, Ok(vec![8; 16]));
    server.shutdown().await;
}

#[tokio::test]
async fn a_request_whose_deadline_already_passed_is_not_run() {
    let (server, counters) = spawn_lab(ServerConfig::default()).await;
    let mut socket = TcpStream::connect(server.local_addr()).await.unwrap();
    let mut out = BytesMut::new();
    let body = rpc::Codec::Postcard.encode(&(5u64,)).unwrap();
    Frame {
        kind: Kind::Request,
        codec: 1,
        status: Status::Ok,
        id: 9,
        metadata: Metadata::request("Lab", "hold", Some(0), 0),
        body,
    }
    .encode(&mut out);
    socket.write_all(&out).await.unwrap();
    let answer = read_frame(&mut socket).await;
    assert_eq!((answer.kind, answer.id, answer.status), (Kind::Response, 9, Status::DeadlineExceeded));
    assert_eq!(counters.started.load(Ordering::SeqCst), 0, "an expired call must be dropped before it starts");
    drop(socket); // a raw client does not answer GoAway; closing it lets shutdown finish at once
    server.shutdown().await;
}

#[tokio::test]
async fn a_request_id_already_in_flight_is_refused() {
    let (server, counters) = spawn_lab(ServerConfig::default()).await;
    let mut socket = TcpStream::connect(server.local_addr()).await.unwrap();
    let mut out = BytesMut::new();
    for _ in 0..2 {
        let body = rpc::Codec::Postcard.encode(&(300u64,)).unwrap();
        let metadata = Metadata::request("Lab", "hold", Some(10_000_000), 0);
        Frame { kind: Kind::Request, codec: 1, status: Status::Ok, id: 5, metadata, body }.encode(&mut out);
    }
    socket.write_all(&out).await.unwrap();
    let first = read_frame(&mut socket).await;
    assert_eq!((first.id, first.status), (5, Status::BadRequest), "the duplicate is refused at once");
    assert_eq!(counters.started.load(Ordering::SeqCst), 1, "only the first one runs");
    drop(socket);
    server.shutdown().await;
}

#[tokio::test]
async fn an_idle_connection_is_closed_by_the_server_and_reopened_on_demand() {
    let (server, _) = spawn_lab(ServerConfig { idle_timeout: Duration::from_millis(200), ..Default::default() }).await;
    let lab = client(server.local_addr(), ClientConfig { connections: 1, ..Default::default() });
    assert_eq!(lab.echo(vec![1]).await, Ok(vec![1]));
    assert_eq!(lab.transport().open_connections(), 1);
    assert!(
        eventually(Duration::from_secs(5), || lab.transport().open_connections() == 0).await,
        "idle connection kept"
    );
    assert_eq!(lab.echo(vec![2]).await, Ok(vec![2]));
    server.shutdown().await;
}

#[tokio::test]
async fn connections_past_the_limit_are_refused_and_the_others_keep_working() {
    let (server, _) = spawn_lab(ServerConfig { max_connections: 1, ..Default::default() }).await;
    let first = client(server.local_addr(), ClientConfig { connections: 1, ..Default::default() });
    assert_eq!(first.echo(vec![1]).await, Ok(vec![1]));
    let second = client(server.local_addr(), ClientConfig { connections: 1, ..Default::default() });
    assert!(matches!(second.echo(vec![2]).await, Err(Error::Transport(_))));
    assert_eq!(first.echo(vec![3]).await, Ok(vec![3]));
    server.shutdown().await;
}

/// Reads until the peer closes; returns how many bytes came before that.
async fn read_until_closed(socket: &mut TcpStream) -> usize {
    let mut total = 0;
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buf)).await.expect("connection left open") {
            Ok(0) | Err(_) => return total,
            Ok(n) => total += n,
        }
    }
}

async fn read_frame(socket: &mut TcpStream) -> Frame {
    let mut buf = BytesMut::new();
    loop {
        if let Some(frame) = Frame::parse(&mut buf, &Limits::default()).unwrap() {
            return frame;
        }
        let n = tokio::time::timeout(Duration::from_secs(5), socket.read_buf(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "closed before a whole frame");
    }
}
