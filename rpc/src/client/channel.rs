//! [`Channel`]: the transport to one endpoint, a few lazily opened multiplexed connections.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::connection::{Answered, Connection, Request};
use super::{Call, ClientConfig, Reply, Transport};
use crate::backoff::Backoff;
use crate::codec::Codec;
use crate::context::Context;
use crate::error::{Error, RemoteError, TransportError};
use crate::frame::Status;
use crate::sync::lock;

/// A cheap-to-clone handle to a pool of connections to one server address.
///
/// Connections open on first use, calls are spread over them round robin, and a connection that
/// died is replaced on a later call, no sooner than its [`Backoff`] allows: while backing off,
/// calls fail at once with [`TransportError::Connect`] instead of piling up behind a dead address.
#[derive(Clone, Debug)]
pub struct Channel {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    addr: String,
    config: ClientConfig,
    slots: Box<[Slot]>,
    next: AtomicUsize,
}

#[derive(Debug)]
struct Slot {
    conn: Mutex<Option<Arc<Connection>>>,
    /// Held while connecting, so concurrent callers wait for one attempt instead of each dialing.
    reconnect: tokio::sync::Mutex<Backoff>,
}

impl Channel {
    /// A channel to `addr` (`host:port`). Nothing is dialed until the first call.
    pub fn new(addr: impl Into<String>, config: ClientConfig) -> Channel {
        let slots = (0..config.connections.max(1))
            .map(|_| Slot {
                conn: Mutex::new(None),
                reconnect: tokio::sync::Mutex::new(Backoff::new(config.backoff_base, config.backoff_max)),
            })
            .collect();
        Channel { inner: Arc::new(Inner { addr: addr.into(), config, slots, next: AtomicUsize::new(0) }) }
    }

    /// The endpoint address.
    pub fn addr(&self) -> &str {
        &self.inner.addr
    }

    /// The settings this channel was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// How many of the pool's connections are currently open and usable.
    pub fn open_connections(&self) -> usize {
        self.inner.slots.iter().filter(|slot| lock(&slot.conn).as_ref().is_some_and(|c| c.is_usable())).count()
    }

    async fn connection(&self, deadline: Instant) -> Result<Arc<Connection>, Error> {
        let inner = &*self.inner;
        let slot = &inner.slots[inner.next.fetch_add(1, Ordering::Relaxed) % inner.slots.len()];
        if let Some(conn) = usable(&slot.conn) {
            return Ok(conn);
        }
        // Slow path: only here does the deadline need a timer.
        tokio::time::timeout_at(deadline.into(), self.reconnect(slot)).await.map_err(|_| Error::Timeout)?
    }

    async fn reconnect(&self, slot: &Slot) -> Result<Arc<Connection>, Error> {
        let inner = &*self.inner;
        let mut backoff = slot.reconnect.lock().await;
        // Someone else may have reconnected while we waited for the lock.
        if let Some(conn) = usable(&slot.conn) {
            return Ok(conn);
        }
        let now = Instant::now();
        if let Some(wait) = backoff.wait(now) {
            return Err(TransportError::Connect {
                addr: inner.addr.clone(),
                reason: format!("backing off after {} failed attempts; next attempt in {wait:?}", backoff.failures()),
            }
            .into());
        }
        match Connection::connect(&inner.addr, &inner.config).await {
            Ok(conn) => {
                backoff.succeeded();
                *lock(&slot.conn) = Some(conn.clone());
                Ok(conn)
            }
            Err(err) => {
                let delay = backoff.failed(Instant::now());
                tracing::debug!(addr = %inner.addr, %err, ?delay, "connect failed");
                Err(err.into())
            }
        }
    }
}

fn usable(conn: &Mutex<Option<Arc<Connection>>>) -> Option<Arc<Connection>> {
    lock(conn).as_ref().filter(|c| c.is_usable()).cloned()
}

impl Transport for Channel {
    async fn call(&self, call: Call) -> Result<Reply, Error> {
        let (inherited_deadline, trace_id) = Context::inherited();
        let timeout = call.timeout.unwrap_or(self.inner.config.default_timeout);
        let now = Instant::now();
        let own_deadline = now + timeout;
        let deadline = inherited_deadline.map_or(own_deadline, |inherited| inherited.min(own_deadline));
        let request = Request {
            service: call.method.service,
            method: call.method.method,
            codec: call.codec.id(),
            trace_id,
            credential: call.credential.as_deref(),
            body: &call.body,
        };
        // A connection can close between being picked and taking the request (an idle close, a
        // server going away): the request never left, so sending it on a fresh connection is
        // safe even for a non-idempotent method. Once, not in a loop.
        let conn = self.connection(deadline).await?;
        let frame = match conn.call(&request, now, deadline).await {
            Err(Error::Transport(TransportError::NotSent(_))) => {
                drop(conn);
                self.connection(deadline).await?.call(&request, now, deadline).await?
            }
            answered => answered?,
        };
        reply_from_frame(frame)
    }
}

/// Turns an answer into a [`Reply`], or into the error its status stands for.
fn reply_from_frame(frame: Answered) -> Result<Reply, Error> {
    let app_error = match frame.status {
        Status::Ok => false,
        Status::AppError => true,
        Status::Overloaded => return Err(Error::Overloaded),
        Status::DeadlineExceeded => return Err(Error::Timeout),
        status => {
            let message = String::from_utf8_lossy(&frame.body).into_owned();
            return Err(Error::Remote(RemoteError { status, message }));
        }
    };
    let codec = Codec::from_id(frame.codec).ok_or_else(|| crate::CodecError {
        codec: Codec::default(),
        message: format!("the server answered in unknown codec {}", frame.codec),
    })?;
    Ok(Reply { codec, body: frame.body, app_error })
}
