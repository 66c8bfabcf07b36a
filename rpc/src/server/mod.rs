//! The serving side: accept loop, per-connection tasks, load shedding, graceful shutdown.
//!
//! ```text
//! accept ─► connection (≤ max_connections) ─► reader ─► handler task per request (≤ max_in_flight,
//!                                              │          else Overloaded at once)
//!                                              └────────► outbox ◄── answers ─┘ ─► writer
//! ```

mod config;
mod connection;
mod service;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use self::config::ServerConfig;
pub use self::service::{Request, Response, Service};

/// An RPC server: a set of services and the settings to serve them with.
pub struct Server {
    services: Vec<Arc<dyn Service>>,
    config: ServerConfig,
}

/// What every connection of one server shares.
pub(crate) struct Shared {
    services: Vec<Arc<dyn Service>>,
    config: ServerConfig,
    /// Calls currently running, over all connections.
    in_flight: AtomicUsize,
    /// Cancelled when the server starts shutting down.
    shutdown: CancellationToken,
}

impl Shared {
    fn service(&self, name: &str) -> Option<&Arc<dyn Service>> {
        // A process hosts one or two services: a scan beats hashing.
        self.services.iter().find(|service| service.name() == name)
    }
}

impl Server {
    /// A server with no services yet.
    pub fn new(config: ServerConfig) -> Server {
        Server { services: Vec::new(), config }
    }

    /// Adds a service (usually a generated `XxxServer`).
    pub fn add_service(mut self, service: impl Service) -> Server {
        self.services.push(Arc::new(service));
        self
    }

    /// Serves connections from `listener` until `shutdown` completes, then shuts down gracefully:
    /// stops accepting, tells every client to go away, lets in-flight calls finish and their
    /// answers go out (up to `drain_timeout`), and returns.
    pub async fn serve(self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let shared = Arc::new(Shared {
            services: self.services,
            in_flight: AtomicUsize::new(0),
            shutdown: CancellationToken::new(),
            config: self.config,
        });
        let connection_slots = Arc::new(Semaphore::new(shared.config.max_connections));
        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                Some(_) = connections.join_next() => {}
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(accepted) => accepted,
                        Err(err) => {
                            // Usually out of file descriptors: wait a little instead of spinning.
                            tracing::warn!(%err, "accept failed");
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let Ok(permit) = connection_slots.clone().try_acquire_owned() else {
                        tracing::warn!(%peer, limit = shared.config.max_connections, "connection limit reached; refusing");
                        continue;
                    };
                    connections.spawn(connection::serve(shared.clone(), stream, permit));
                }
            }
        }
        drop(listener);
        shared.shutdown.cancel();
        let drained = tokio::time::timeout(shared.config.drain_timeout, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(left = connections.len(), "drain timeout: closing the remaining connections");
            connections.shutdown().await;
        }
    }

    /// Binds `addr`, then serves in a background task. Returns once the listener is bound, so the
    /// address can be registered right away (registration only after the port listens).
    pub async fn spawn(self, addr: impl ToSocketAddrs) -> std::io::Result<ServerHandle> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(self.serve(listener, async {
            let _ = stopped.await;
        }));
        Ok(ServerHandle { local_addr, stop: Some(stop), task })
    }
}

/// A server running in the background (see [`Server::spawn`]).
#[derive(Debug)]
pub struct ServerHandle {
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Shuts down gracefully and waits until every in-flight call has been answered.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }

    /// Kills the server at once, as a crash would: every connection is dropped mid-flight.
    pub fn abort(self) {
        self.task.abort();
    }
}
