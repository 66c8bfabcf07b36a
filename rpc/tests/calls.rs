//! Calls over real TCP on 127.0.0.1: values, errors, codecs, concurrency, ordering, deadlines.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::join_all;
use rpc::{CallOptions, ClientConfig, Codec, Context, Error, MethodInfo, RemoteError, ServerConfig, Status};
use support::*;

#[tokio::test]
async fn values_and_application_errors_come_back_typed_in_both_codecs() {
    let (server, _) = spawn_lab(ServerConfig::default()).await;
    for codec in [Codec::Postcard, Codec::Json] {
        let lab = client(server.local_addr(), ClientConfig::default())
            .with_options(CallOptions { codec: Some(codec), ..Default::default() });
        assert_eq!(lab.echo(b"seckill".to_vec()).await.unwrap(), b"seckill");
        assert_eq!(lab.divide(84, 2).await.unwrap(), 42);
        assert_eq!(lab.divide(1, 0).await, Err(Error::Application(LabError::DivisionByZero)), "{codec:?}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn ten_thousand_concurrent_calls_over_four_connections_all_get_their_own_answer() {
    let (server, _) = spawn_lab(ServerConfig::default()).await;
    let lab = client(server.local_addr(), ClientConfig { connections: 4, ..Default::default() });
    let calls = (0..10_000u32).map(|i| {
        let lab = lab.clone();
        async move {
            let payload = format!("call-{i}").into_bytes();
            let answer = lab.echo(payload.clone()).await.expect("call failed");
            answer == payload
        }
    });
    let results = join_all(calls).await;
    assert_eq!(results.iter().filter(|ok| **ok).count(), 10_000);
    assert_eq!(lab.transport().open_connections(), 4);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_call_is_overtaken_on_the_same_connection() {
    let (server, _) = spawn_lab(ServerConfig::default()).await;
    let lab = client(server.local_addr(), ClientConfig { connections: 1, ..Default::default() });
    let order = Arc::new(Mutex::new(Vec::new()));
    let slow = {
        let (lab, order) = (lab.clone(), order.clone());
        tokio::spawn(async move {
            let value = lab.delayed(400, 1).await.unwrap();
            order.lock().unwrap().push(value);
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let fast = lab.delayed(0, 2).await.unwrap();
    order.lock().unwrap().push(fast);
    slow.await.unwrap();
    assert_eq!(*order.lock().unwrap(), vec![2, 1], "answers must be matched by id, not by order");
    server.shutdown().await;
}

#[tokio::test]
async fn a_call_past_its_timeout_fails_with_timeout_and_is_cancelled_on_the_server() {
    let (server, counters) = spawn_lab(ServerConfig::default()).await;
    let lab = client(server.local_addr(), ClientConfig::default())
        .with_options(CallOptions { timeout: Some(Duration::from_millis(100)), ..Default::default() });
    assert_eq!(lab.hold(30_000).await, Err(Error::Timeout));
    let cancelled =
        eventually(Duration::from_secs(5), || counters.cancelled.load(std::sync::atomic::Ordering::SeqCst) == 1).await;
    assert!(cancelled, "the server should have aborted the handler after the client's Cancel");
    assert_eq!(counters.finished.load(std::sync::atomic::Ordering::SeqCst), 0);
    server.shutdown().await;
}

#[tokio::test]
async fn dropping_a_call_future_cancels_the_call_on_the_server() {
    let (server, counters) = spawn_lab(ServerConfig::default()).await;
    let lab = client(server.local_addr(), ClientConfig::default());
    let call = tokio::spawn({
        let lab = lab.clone();
        async move { lab.hold(30_000).await }
    });
    assert!(
        eventually(Duration::from_secs(5), || counters.started.load(std::sync::atomic::Ordering::SeqCst) == 1).await
    );
    call.abort();
    let cancelled =
        eventually(Duration::from_secs(5), || counters.cancelled.load(std::sync::atomic::Ordering::SeqCst) == 1).await;
    assert!(cancelled, "dropping the caller's future must cancel the handler");
    server.shutdown().await;
}

#[tokio::test]
async fn past_the_in_flight_limit_calls_are_shed_with_overloaded() {
    let (server, _) = spawn_lab(ServerConfig { max_in_flight: 10, ..Default::default() }).await;
    let lab = client(server.local_addr(), ClientConfig::default());
    let results = join_all((0..50).map(|_| lab.hold(1_000))).await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let overloaded = results.iter().filter(|r| **r == Err(Error::Overloaded)).count();
    assert_eq!((ok, overloaded), (10, 40), "{results:?}");
    assert!(Error::<rpc::Never>::Overloaded.not_executed());
    // Once the holders finished, there is room again.
    assert_eq!(lab.hold(1).await, Ok(1));
    server.shutdown().await;
}

#[tokio::test]
async fn a_panicking_handler_answers_internal_and_the_server_keeps_serving() {
    let (server, _) = spawn_lab(ServerConfig::default()).await;
    let lab = client(server.local_addr(), ClientConfig::default());
    match lab.explode().await {
        Err(Error::Remote(RemoteError { status: Status::Internal, message })) => {
            assert!(message.contains("the laboratory exploded"), "{message}");
        }
        other => panic!("expected Internal, got {other:?}"),
    }
    assert_eq!(lab.divide(6, 3).await, Ok(2));
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_services_and_methods_are_remote_errors() {
    let (server, _) = spawn_lab(ServerConfig::default()).await;
    let channel = rpc::Channel::new(server.local_addr().to_string(), ClientConfig::default());
    let call = |service, method| {
        let channel = channel.clone();
        async move {
            let info = MethodInfo { service, method, idempotent: false };
            rpc::invoke::<_, _, u8, rpc::Never>(&channel, &CallOptions::default(), info, None, &()).await
        }
    };
    let status = |result: Result<u8, Error>| match result {
        Err(Error::Remote(remote)) => Some(remote.status),
        _ => None,
    };
    assert_eq!(status(call("Nope", "echo").await), Some(Status::UnknownService));
    assert_eq!(status(call("Lab", "nope").await), Some(Status::UnknownMethod));
    // Arguments that do not decode as the method's parameters.
    assert_eq!(status(call("Lab", "divide").await), Some(Status::BadRequest));
    server.shutdown().await;
}

#[tokio::test]
async fn deadline_and_trace_id_propagate_across_a_hop() {
    let (downstream, _) = spawn_lab(ServerConfig::default()).await;
    let lab =
        LabImpl { downstream: Some(client(downstream.local_addr(), ClientConfig::default())), ..Default::default() };
    let (upstream, _) = spawn_lab_with(ServerConfig::default(), lab).await;
    let entry = client(upstream.local_addr(), ClientConfig::default())
        .with_options(CallOptions { timeout: Some(Duration::from_secs(2)), ..Default::default() });
    let seen = Context::default().with_trace_id(0xfeed).scope(entry.forward_context()).await.unwrap();
    assert_eq!(seen.trace_id, 0xfeed, "the trace id must reach the second hop");
    let remaining = seen.remaining_ms.expect("the second hop must know the deadline");
    // The downstream client's own default is 5 s: the caller's 2 s must win.
    assert!(remaining <= 2_000 && remaining > 0, "remaining {remaining} ms");
    upstream.shutdown().await;
    downstream.shutdown().await;
}
