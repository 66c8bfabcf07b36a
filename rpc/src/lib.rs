//! Seckill's own RPC: a multiplexed binary protocol over TCP.
//!
//! Every hop between the gateway and the services goes through this crate. It is generic: it knows
//! nothing of flash sales. Services are Rust traits marked [`service`]; the macro generates a typed
//! client (`XxxClient`) and a server dispatcher (`XxxServer`) from each.
//!
//! ```ignore
//! #[rpc::service]
//! pub trait Echo {
//!     async fn echo(&self, text: String) -> String;
//! }
//!
//! let server = rpc::Server::new(Default::default()).add_service(EchoServer::new(MyEcho)).spawn("127.0.0.1:0").await?;
//! let client = EchoClient::new(rpc::Channel::new(server.local_addr().to_string(), Default::default()));
//! assert_eq!(client.echo("hi".into()).await?, "hi");
//! ```
//!
//! # Layout
//!
//! - [`frame`]: the 24-byte header and the frame type; `check` then `parse`, never panicking.
//!   The byte table is in `PROTOCOL.md`.
//! - [`metadata`]: the metadata entries (service, method, deadline, trace id).
//! - [`codec`]: body codecs chosen per request (postcard, JSON).
//! - `outbox`: the shared write buffer and writer task that coalesce frames into few syscalls;
//!   `sync`: the poison-tolerant lock every shared table here uses.
//! - [`backoff`]: exponential backoff with full jitter, for every retry loop of the workspace.
//! - [`context`]: deadline and trace id of the current call, propagated to outgoing calls.
//! - [`client`]: [`Transport`], the one-endpoint connection pool [`Channel`], and [`invoke`],
//!   the typed call behind every generated client method.
//! - [`server`]: [`Server`], connection handling, load shedding and graceful shutdown, and the
//!   [`Service`] dispatcher trait.
//! - [`security`]: the connection handshake (both ends prove the [`ClusterKey`]), optional mutual
//!   TLS, and the opaque [`Credential`] a client attaches to its calls.
//! - [`error`]: the typed [`Error`] every call returns.
//! - [`registry`]: service registry and discovery: the [`Registry`] trait, [`RedisRegistry`]
//!   (heartbeats with a TTL, pub/sub change notification, a cache that outlives Redis outages) and
//!   [`StaticRegistry`].
//! - [`cluster`]: [`Cluster`], the governed transport over a discovered service: balancers
//!   (weighted random, smooth WRR, least active, consistent hash, peak EWMA) with warm-up,
//!   a circuit breaker per node, budgeted retries of idempotent calls, per-endpoint metrics.
//!   `README.md` has the balancer table, the breaker's state machine and the retry rules.

#![forbid(unsafe_code)]
#![warn(missing_docs, rust_2018_idioms, unreachable_pub)]

pub mod backoff;
pub mod client;
pub mod cluster;
pub mod codec;
pub mod context;
pub mod error;
pub mod frame;
pub mod metadata;
mod outbox;
pub mod registry;
pub mod security;
pub mod server;
mod sync;

pub use futures::future::BoxFuture;
pub use rpc_macros::service;

pub use self::backoff::Backoff;
pub use self::client::{Call, CallOptions, Channel, ClientConfig, MethodInfo, Reply, Transport, hash_key, invoke};
pub use self::cluster::{BalancerKind, BreakerState, Cluster, ClusterConfig};
pub use self::codec::{Codec, CodecError};
pub use self::context::Context;
pub use self::error::{Error, Never, RemoteError, TransportError};
pub use self::frame::{Limits, Status};
pub use self::registry::{Discovery, Instance, RedisRegistry, Registration, Registry, StaticRegistry};
pub use self::security::{ClusterKey, Credential, DevelopmentCa, Security, Tls};
pub use self::server::{Request, Response, Server, ServerConfig, ServerHandle, Service};
