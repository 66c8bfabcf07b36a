//! One server-side connection: a reader that parses requests and starts a task per call, and the
//! shared outbox the answers go into.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::{Notify, OwnedSemaphorePermit};
use tokio::task::{AbortHandle, JoinHandle};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{Request, Response, Shared};
use crate::codec::Codec;
use crate::context::Context;
use crate::frame::{Frame, Kind, Status, encode_control, encode_response};
use crate::outbox::Outbox;
use crate::security::{self, Reader, Side};
use crate::sync::lock;

/// State of one connection, shared by its reader and its handler tasks.
struct Conn {
    shared: Arc<Shared>,
    outbox: Outbox,
    /// Running handlers by request id, so a Cancel frame can stop one. The entry is made before
    /// the task is spawned (`None`) and removed by the task when it ends, so it can never outlive it.
    handlers: Mutex<HashMap<u64, Option<AbortHandle>>>,
    /// Handlers running on this connection.
    in_flight: AtomicUsize,
    /// Notified when `in_flight` drops to zero.
    idle: Notify,
    /// Set once GoAway was sent: later requests are answered `ShuttingDown`.
    draining: AtomicBool,
    /// Milliseconds since `epoch` of the last request (pings do not count: a connection that only
    /// pings is idle).
    last_request_ms: AtomicU64,
    epoch: Instant,
    /// Cancelled when the peer stopped reading its answers (the outbox overflowed): the
    /// connection is dropped at once, unflushed.
    cut_off: CancellationToken,
}

/// Serves one accepted connection until it ends, then waits for its handlers and flushes.
pub(crate) async fn serve(shared: Arc<Shared>, stream: TcpStream, _slot: OwnedSemaphorePermit) {
    let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    let _ = stream.set_nodelay(true);
    // Nothing is read as a frame until TLS and the key handshake have passed.
    let config = &shared.config;
    let secured =
        tokio::time::timeout(config.handshake_timeout, security::split(stream, &config.security, Side::Server));
    let (reader, writer) = match secured.await {
        Ok(Ok(halves)) => halves,
        Ok(Err(err)) => {
            tracing::warn!(%peer, %err, "refusing a connection that failed the handshake");
            return;
        }
        Err(_) => {
            tracing::warn!(%peer, timeout = ?config.handshake_timeout, "refusing a connection that did not complete the handshake");
            return;
        }
    };
    let conn = Arc::new(Conn {
        outbox: Outbox::with_limit(shared.config.max_buffered_bytes),
        shared,
        handlers: Mutex::new(HashMap::new()),
        in_flight: AtomicUsize::new(0),
        idle: Notify::new(),
        draining: AtomicBool::new(false),
        last_request_ms: AtomicU64::new(0),
        epoch: Instant::now(),
        cut_off: CancellationToken::new(),
    });
    let mut writer = AbortOnDrop(tokio::spawn({
        let conn = conn.clone();
        async move {
            if let Err(err) = conn.outbox.run_writer(writer).await {
                tracing::debug!(%err, "write failed");
            }
        }
    }));
    // If this task is aborted (server killed or drain timeout), the handlers go with it.
    let _handlers = AbortHandlersOnDrop(conn.clone());
    let reason = conn.read_loop(reader).await;
    if conn.cut_off.is_cancelled() {
        // Its answers would never be read: drop handlers, buffer and socket now.
        tracing::warn!(%peer, limit = conn.shared.config.max_buffered_bytes, "cutting off a peer that does not read its answers");
        return;
    }
    tracing::debug!(%peer, %reason, "connection ending");
    conn.drained().await;
    conn.outbox.close();
    let _ = (&mut writer.0).await;
}

impl Conn {
    async fn read_loop(self: &Arc<Self>, mut reader: Reader) -> String {
        let config = &self.shared.config;
        let mut buf = BytesMut::with_capacity(64 * 1024);
        let shutdown = self.shared.shutdown.clone();
        let shutdown = shutdown.cancelled();
        tokio::pin!(shutdown);
        let cut_off = self.cut_off.clone();
        let cut_off = cut_off.cancelled();
        tokio::pin!(cut_off);
        let mut ticker =
            tokio::time::interval((config.idle_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1)));
        let mut draining_since: Option<Instant> = None;
        loop {
            if buf.capacity() - buf.len() < 4096 {
                buf.reserve(64 * 1024);
            }
            tokio::select! {
                biased;
                () = &mut cut_off => return "the peer stopped reading".into(),
                () = &mut shutdown, if draining_since.is_none() => {
                    self.start_draining();
                    draining_since = Some(Instant::now());
                }
                _ = ticker.tick() => {
                    if let Some(since) = draining_since {
                        if since.elapsed() >= config.drain_timeout {
                            return "drain timeout".into();
                        }
                    } else if self.in_flight.load(Ordering::Acquire) == 0 && self.idle_for() >= config.idle_timeout {
                        // GoAway rather than a bare close, so a call racing with us is not lost:
                        // the client stops sending and closes the connection itself.
                        self.start_draining();
                        draining_since = Some(Instant::now());
                    }
                }
                read = reader.read_buf(&mut buf) => match read {
                    Ok(0) => return "closed by the client".into(),
                    Err(err) => return format!("read failed: {err}"),
                    Ok(_) => {
                        // One clock reading per batch: the frames in it arrived together.
                        let now = Instant::now();
                        match self.handle_frames(&mut buf, now) {
                            Ok(0) => {}
                            Ok(_requests) => self.last_request_ms.store(now.duration_since(self.epoch).as_millis() as u64, Ordering::Relaxed),
                            Err(err) => {
                                tracing::warn!(%err, "closing a connection that broke the protocol");
                                return err;
                            }
                        }
                    }
                },
            }
        }
    }

    /// Handles every complete frame in `buf`; returns how many were requests.
    fn handle_frames(self: &Arc<Self>, buf: &mut BytesMut, now: Instant) -> Result<usize, String> {
        let mut requests = 0;
        loop {
            let frame = match Frame::parse(buf, &self.shared.config.limits) {
                Ok(Some(frame)) => frame,
                Ok(None) => return Ok(requests),
                Err(err) => return Err(format!("protocol error: {err}")),
            };
            match frame.kind {
                Kind::Request => {
                    requests += 1;
                    self.on_request(frame, now);
                }
                Kind::Ping => {
                    self.outbox.push(|out| encode_control(out, Kind::Pong, frame.id));
                }
                Kind::Pong => {}
                Kind::Cancel => {
                    if let Some(Some(handler)) = lock(&self.handlers).remove(&frame.id) {
                        handler.abort();
                    }
                }
                Kind::Response | Kind::GoAway => {
                    return Err(format!("protocol error: client sent a {:?} frame", frame.kind));
                }
            }
        }
    }

    fn on_request(self: &Arc<Self>, frame: Frame, received_at: Instant) {
        let id = frame.id;
        let Some(codec) = Codec::from_id(frame.codec) else {
            return self.respond(
                id,
                frame.codec,
                &Response::failure(Status::BadRequest, format!("unknown codec {}", frame.codec)),
            );
        };
        if self.draining.load(Ordering::Relaxed) {
            return self.respond(id, frame.codec, &Response::failure(Status::ShuttingDown, "server is shutting down"));
        }
        let in_flight = match InFlight::enter(self, id) {
            Ok(in_flight) => in_flight,
            Err(refusal) => return self.respond(id, frame.codec, &refusal),
        };
        let Frame { metadata: meta, body, .. } = frame;
        let Some(service) = self.shared.service(&meta.service) else {
            let message = format!("no service {:?}", &meta.service[..]);
            return self.respond(id, frame.codec, &Response::failure(Status::UnknownService, message));
        };
        let deadline = meta.deadline_us.map(|us| received_at + Duration::from_micros(us));
        let ctx = Context { deadline, trace_id: meta.trace_id, credential: meta.credential };
        let span = tracing::info_span!("rpc", service = %meta.service, method = %meta.method, trace_id = %TraceId(meta.trace_id));
        let Some(handler) = service.call(&meta.method, Request { codec, body }) else {
            let message = format!("service {:?} has no method {:?}", &meta.service[..], &meta.method[..]);
            return self.respond(id, frame.codec, &Response::failure(Status::UnknownMethod, message));
        };
        let conn = self.clone();
        let work = async move {
            let response = run_handler(handler, ctx).await;
            conn.respond(id, codec.id(), &response);
            drop(in_flight);
        };
        // Entering a disabled span still costs; skip it when no subscriber wants it.
        let task = if span.is_disabled() { tokio::spawn(work) } else { tokio::spawn(work.instrument(span)) };
        // If the handler already finished, its entry is gone and there is nothing left to cancel.
        if let Some(slot) = lock(&self.handlers).get_mut(&id) {
            *slot = Some(task.abort_handle());
        }
    }

    fn respond(&self, id: u64, codec: u8, response: &Response) {
        if !self.outbox.push(|buf| encode_response(buf, id, codec, response.status, &response.body))
            && self.outbox.overflowed()
        {
            self.cut_off.cancel();
        }
    }

    fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
        self.outbox.push(|buf| encode_control(buf, Kind::GoAway, 0));
    }

    fn idle_for(&self) -> Duration {
        let now_ms = self.epoch.elapsed().as_millis() as u64;
        Duration::from_millis(now_ms.saturating_sub(self.last_request_ms.load(Ordering::Relaxed)))
    }

    /// Waits until no handler of this connection is running.
    async fn drained(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.in_flight.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Runs a handler within its context, turning a panic into `Internal`.
///
/// A call whose deadline passed before it started is dropped unrun. One that runs out of time
/// while running is stopped by the client: its timeout sends a Cancel frame, which aborts the
/// task. That costs nothing per call, where a server-side timer per call would not.
async fn run_handler(handler: BoxFuture<'static, Response>, ctx: Context) -> Response {
    if ctx.deadline.is_some_and(|deadline| Instant::now() >= deadline) {
        return Response::failure(Status::DeadlineExceeded, "the deadline passed before the call started");
    }
    let outcome = AssertUnwindSafe(ctx.scope(handler)).catch_unwind().await;
    outcome.unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        tracing::error!(%message, "handler panicked");
        Response::failure(Status::Internal, format!("handler panicked: {message}"))
    })
}

/// One running call: counted against the server's and the connection's in-flight totals until dropped.
struct InFlight {
    conn: Arc<Conn>,
    id: u64,
}

impl InFlight {
    fn enter(conn: &Arc<Conn>, id: u64) -> Result<InFlight, Response> {
        let mut handlers = lock(&conn.handlers);
        if handlers.contains_key(&id) {
            // Ids must be unique among a connection's calls in flight, or Cancel could stop the
            // wrong one.
            return Err(Response::failure(Status::BadRequest, format!("request id {id} is already in flight")));
        }
        if conn.in_flight.load(Ordering::Acquire) >= conn.shared.config.max_in_flight_per_connection {
            return Err(Response::failure(Status::Overloaded, "in-flight limit of this connection reached"));
        }
        let server = &conn.shared.in_flight;
        if server.fetch_add(1, Ordering::AcqRel) >= conn.shared.config.max_in_flight {
            server.fetch_sub(1, Ordering::AcqRel);
            return Err(Response::failure(Status::Overloaded, "in-flight limit reached"));
        }
        conn.in_flight.fetch_add(1, Ordering::AcqRel);
        handlers.insert(id, None);
        Ok(InFlight { conn: conn.clone(), id })
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let conn = &self.conn;
        lock(&conn.handlers).remove(&self.id);
        conn.shared.in_flight.fetch_sub(1, Ordering::AcqRel);
        if conn.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            conn.idle.notify_waiters();
        }
    }
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct AbortHandlersOnDrop(Arc<Conn>);

impl Drop for AbortHandlersOnDrop {
    fn drop(&mut self) {
        for handler in lock(&self.0.handlers).drain().filter_map(|(_, handler)| handler) {
            handler.abort();
        }
    }
}

/// Formats a trace id as 32 hex digits (or `-` when there is none).
struct TraceId(u128);

impl std::fmt::Display for TraceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0 == 0 { f.write_str("-") } else { write!(f, "{:032x}", self.0) }
    }
}
