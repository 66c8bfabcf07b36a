//! One multiplexed client connection: many calls in flight, answers matched by request id.
//!
//! Three tasks serve a connection: the writer (see `outbox`), the reader, which routes each answer
//! to its waiting caller, and the timekeeper, which fails calls past their deadline, pings an idle
//! peer and declares the connection dead when nothing comes back. Whatever ends the connection,
//! every pending call is failed at once: a caller never hangs on a dead connection.
//!
//! Deadlines are kept in the pending-call table and swept every `timeout_resolution` rather than
//! given a tokio timer each: one timer per call cost about 8% of the echo benchmark's throughput,
//! and a timeout a few milliseconds late costs nothing that matters.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::{Notify, oneshot};
use tokio::task::AbortHandle;

use super::ClientConfig;
use crate::error::{Error, TransportError};
use crate::frame::{self, Frame, Kind, Limits, Status, encode_control};
use crate::metadata::Entries;
use crate::outbox::Outbox;
use crate::security::{self, Reader, Side};
use crate::sync::lock;

type Answer = Result<Answered, Error>;

/// What a caller gets back: the parts of a response frame it needs (kept small, as it is moved
/// through a channel and several futures per call).
#[derive(Debug)]
pub(crate) struct Answered {
    pub(crate) status: Status,
    pub(crate) codec: u8,
    pub(crate) body: Bytes,
}

/// A live connection to one server. Dropping the last handle closes it.
#[derive(Debug)]
pub(crate) struct Connection {
    shared: Arc<Shared>,
}

/// The state the connection's tasks share with its handle.
#[derive(Debug)]
struct Shared {
    outbox: Outbox,
    pending: Mutex<Pending>,
    next_id: AtomicU64,
    /// Set when the server sent GoAway: no new calls; closed once the pending ones are answered.
    draining: AtomicBool,
    /// Wakes the timekeeper when the first call is registered after a quiet spell.
    calls_waiting: Notify,
    /// Mirrors `pending.closed.is_some()`, readable without the lock.
    closed: AtomicBool,
    /// Milliseconds since `epoch` at which the last bytes arrived.
    last_rx_ms: AtomicU64,
    epoch: Instant,
    tasks: Mutex<Tasks>,
}

#[derive(Debug, Default)]
struct Tasks {
    writer: Option<AbortHandle>,
    others: Vec<AbortHandle>,
}

#[derive(Debug, Default)]
struct Pending {
    calls: HashMap<u64, Waiting>,
    /// Why the connection closed; set once, after which no call is registered.
    closed: Option<String>,
}

/// A caller waiting for its answer.
#[derive(Debug)]
struct Waiting {
    tx: oneshot::Sender<Answer>,
    deadline: Instant,
}

impl Connection {
    /// Connects and starts the connection's tasks.
    pub(crate) async fn connect(addr: &str, config: &ClientConfig) -> Result<Arc<Connection>, TransportError> {
        let connect_error = |reason: String| TransportError::Connect { addr: addr.to_owned(), reason };
        let stream = tokio::time::timeout(config.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| connect_error(format!("no answer within {:?}", config.connect_timeout)))?
            .map_err(|e| connect_error(e.to_string()))?;
        // Requests are small and latency matters; coalescing happens in the outbox instead.
        stream.set_nodelay(true).map_err(|e| connect_error(e.to_string()))?;
        // TLS and the key handshake, within the same connect timeout: a node that cannot prove
        // the cluster key is never sent a call.
        let (reader, writer) =
            tokio::time::timeout(config.connect_timeout, security::split(stream, &config.security, Side::Client))
                .await
                .map_err(|_| connect_error(format!("no handshake within {:?}", config.connect_timeout)))?
                .map_err(connect_error)?;
        let conn = Arc::new(Shared {
            outbox: Outbox::new(),
            pending: Mutex::new(Pending::default()),
            next_id: AtomicU64::new(1),
            draining: AtomicBool::new(false),
            calls_waiting: Notify::new(),
            closed: AtomicBool::new(false),
            last_rx_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            tasks: Mutex::new(Tasks::default()),
        });
        let writer = tokio::spawn({
            let conn = conn.clone();
            async move {
                if let Err(err) = conn.outbox.run_writer(writer).await {
                    conn.close(format!("write failed: {err}"), true);
                }
            }
        });
        let reader = tokio::spawn(conn.clone().read_loop(reader, config.limits));
        let timekeeper = tokio::spawn(conn.clone().timekeeper(config.clone()));
        *lock(&conn.tasks) = Tasks {
            writer: Some(writer.abort_handle()),
            others: vec![reader.abort_handle(), timekeeper.abort_handle()],
        };
        Ok(Arc::new(Connection { shared: conn }))
    }

    /// Whether new calls may use this connection.
    pub(crate) fn is_usable(&self) -> bool {
        !self.shared.draining.load(Ordering::Relaxed) && !self.shared.closed.load(Ordering::Relaxed)
    }

    /// Sends one request and waits for its answer frame, until `deadline` at the latest (`now` is
    /// the caller's reading of the clock, saving another).
    pub(crate) async fn call(&self, request: &Request<'_>, now: Instant, deadline: Instant) -> Result<Answered, Error> {
        self.shared.call(request, now, deadline).await
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.shared.close("the client dropped the connection".into(), false);
    }
}

impl Shared {
    async fn call(&self, request: &Request<'_>, now: Instant, deadline: Instant) -> Result<Answered, Error> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = lock(&self.pending);
            if let Some(reason) = &pending.closed {
                return Err(TransportError::NotSent(reason.clone()).into());
            }
            if pending.calls.is_empty() {
                self.calls_waiting.notify_one();
            }
            pending.calls.insert(id, Waiting { tx, deadline });
        }
        // From here on, leaving early (timeout, or the caller dropping us) cancels the call.
        let mut guard = CancelOnDrop { conn: self, id, armed: true };
        let remaining = deadline.saturating_duration_since(now);
        if remaining.is_zero() {
            return Err(Error::Timeout);
        }
        let remaining_us = u64::try_from(remaining.as_micros()).unwrap_or(u64::MAX);
        let pushed = self.outbox.push(|buf| {
            let Request { service, method, codec, trace_id, credential, body } = *request;
            let entries = Entries { service, method, deadline_us: Some(remaining_us), trace_id, credential };
            frame::encode_request(buf, id, codec, &entries, body);
        });
        if !pushed {
            return Err(TransportError::NotSent("connection closed".into()).into());
        }
        // The timekeeper answers `Timeout` once the deadline has passed.
        let answer = rx.await;
        guard.armed = false;
        answer.unwrap_or_else(|_| Err(TransportError::ConnectionLost("connection dropped".into()).into()))
    }

    /// Forgets a pending call and tells the server it may stop working on it.
    fn cancel(&self, id: u64) {
        let was_pending = lock(&self.pending).calls.remove(&id).is_some();
        if was_pending {
            self.outbox.push(|buf| encode_control(buf, Kind::Cancel, id));
            self.close_if_drained();
        }
    }

    /// Closes the connection and fails every pending call with `reason`. Idempotent. A `hard`
    /// close also abandons unsent frames (the peer is dead); otherwise the writer flushes them and
    /// half-closes the socket.
    fn close(&self, reason: String, hard: bool) {
        let calls = {
            let mut pending = lock(&self.pending);
            if pending.closed.is_some() {
                return;
            }
            pending.closed = Some(reason.clone());
            self.closed.store(true, Ordering::Relaxed);
            std::mem::take(&mut pending.calls)
        };
        for (_, waiting) in calls {
            let _ = waiting.tx.send(Err(TransportError::ConnectionLost(reason.clone()).into()));
        }
        self.outbox.close();
        let mut tasks = lock(&self.tasks);
        for task in tasks.others.drain(..) {
            task.abort();
        }
        if hard {
            if let Some(writer) = tasks.writer.take() {
                writer.abort();
            }
        }
    }

    /// After GoAway, the connection closes itself as soon as nothing is pending.
    fn close_if_drained(&self) {
        if self.draining.load(Ordering::Relaxed) && lock(&self.pending).calls.is_empty() {
            self.close("server is shutting down (GoAway)".into(), false);
        }
    }

    async fn read_loop(self: Arc<Self>, mut reader: Reader, limits: Limits) {
        let mut buf = BytesMut::with_capacity(64 * 1024);
        let mut answers = Vec::new();
        let reason = loop {
            if buf.capacity() - buf.len() < 4096 {
                buf.reserve(64 * 1024);
            }
            match reader.read_buf(&mut buf).await {
                Ok(0) => break "connection closed by the server".to_owned(),
                Ok(_) => self.touch(),
                Err(err) => break format!("read failed: {err}"),
            }
            if let Err(reason) = self.handle_frames(&mut buf, &limits, &mut answers) {
                break reason;
            }
        };
        self.close(reason, true);
    }

    /// Parses every complete frame in `buf` and delivers the answers, taking the pending-call lock
    /// once per batch rather than once per frame.
    fn handle_frames(&self, buf: &mut BytesMut, limits: &Limits, answers: &mut Vec<Frame>) -> Result<(), String> {
        let mut result = Ok(());
        loop {
            match Frame::parse(buf, limits) {
                Ok(Some(frame)) => match frame.kind {
                    Kind::Response => answers.push(frame),
                    Kind::Ping => {
                        self.outbox.push(|out| encode_control(out, Kind::Pong, frame.id));
                    }
                    Kind::Pong => {}
                    Kind::GoAway => self.draining.store(true, Ordering::Relaxed),
                    Kind::Request | Kind::Cancel => {
                        result = Err(format!("protocol error: server sent a {:?} frame", frame.kind));
                        break;
                    }
                },
                Ok(None) => break,
                Err(err) => {
                    result = Err(format!("protocol error: {err}"));
                    break;
                }
            }
        }
        if !answers.is_empty() {
            let mut waiting = Vec::with_capacity(answers.len());
            {
                let mut pending = lock(&self.pending);
                for frame in answers.drain(..) {
                    // No entry: the caller timed out or went away; the answer is dropped.
                    if let Some(call) = pending.calls.remove(&frame.id) {
                        waiting.push((call.tx, frame));
                    }
                }
            }
            for (tx, frame) in waiting {
                let _ = tx.send(Ok(Answered { status: frame.status, codec: frame.codec, body: frame.body }));
            }
        }
        self.close_if_drained();
        result
    }

    /// Fails overdue calls (telling the server to stop), and runs the heartbeat.
    async fn timekeeper(self: Arc<Self>, config: ClientConfig) {
        let mut next_heartbeat = Instant::now() + config.heartbeat_interval;
        let mut ping_id = 0u64;
        loop {
            let now = Instant::now();
            let busy = !lock(&self.pending).calls.is_empty();
            let wake_at = if busy { now + config.timeout_resolution } else { next_heartbeat };
            tokio::select! {
                () = tokio::time::sleep_until(wake_at.min(next_heartbeat).into()) => {}
                () = self.calls_waiting.notified(), if !busy => continue,
            }
            let now = Instant::now();
            self.expire_overdue(now);
            if now < next_heartbeat {
                continue;
            }
            next_heartbeat = now + config.heartbeat_interval;
            let silent = self.silent_for();
            if silent >= config.heartbeat_timeout {
                let timeout = config.heartbeat_timeout;
                self.close(format!("no frame from the server for {silent:?} (heartbeat timeout {timeout:?})"), true);
                return;
            }
            if silent >= config.heartbeat_interval {
                ping_id = ping_id.wrapping_add(1);
                self.outbox.push(|buf| encode_control(buf, Kind::Ping, ping_id));
            }
        }
    }

    fn expire_overdue(&self, now: Instant) {
        let overdue: Vec<(u64, Waiting)> = {
            let mut pending = lock(&self.pending);
            let ids: Vec<u64> = pending.calls.iter().filter(|(_, w)| w.deadline <= now).map(|(id, _)| *id).collect();
            ids.into_iter().filter_map(|id| pending.calls.remove(&id).map(|w| (id, w))).collect()
        };
        if overdue.is_empty() {
            return;
        }
        self.outbox.push(|buf| {
            for (id, _) in &overdue {
                encode_control(buf, Kind::Cancel, *id);
            }
        });
        for (_, waiting) in overdue {
            let _ = waiting.tx.send(Err(Error::Timeout));
        }
        self.close_if_drained();
    }

    fn touch(&self) {
        let now_ms = self.epoch.elapsed().as_millis() as u64;
        self.last_rx_ms.store(now_ms, Ordering::Relaxed);
    }

    fn silent_for(&self) -> Duration {
        let now_ms = self.epoch.elapsed().as_millis() as u64;
        Duration::from_millis(now_ms.saturating_sub(self.last_rx_ms.load(Ordering::Relaxed)))
    }
}

/// What goes into a request frame, borrowed from the call.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Request<'a> {
    pub(crate) service: &'a str,
    pub(crate) method: &'a str,
    pub(crate) codec: u8,
    pub(crate) trace_id: u128,
    pub(crate) credential: Option<&'a [u8]>,
    pub(crate) body: &'a Bytes,
}

/// Cancels the call if its future is dropped before the answer arrived.
struct CancelOnDrop<'a> {
    conn: &'a Shared,
    id: u64,
    armed: bool,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.conn.cancel(self.id);
        }
    }
}
