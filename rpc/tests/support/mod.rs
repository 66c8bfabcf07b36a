//! A laboratory service and helpers shared by the integration tests.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rpc::{Channel, ClientConfig, Context, Server, ServerConfig, ServerHandle};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LabError {
    DivisionByZero,
}

/// What a handler saw of its call context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub remaining_ms: Option<u64>,
    pub trace_id: u128,
}

#[rpc::service]
pub trait Lab {
    async fn echo(&self, payload: Vec<u8>) -> Vec<u8>;
    /// Sleeps, then answers `value`: a later call can overtake an earlier one.
    async fn delayed(&self, millis: u64, value: u64) -> u64;
    async fn divide(&self, a: i64, b: i64) -> Result<i64, LabError>;
    async fn explode(&self) -> u8;
    #[rpc(idempotent)]
    async fn context(&self) -> Seen;
    /// Asks the downstream Lab for its context: shows what propagates across a hop.
    async fn forward_context(&self) -> Result<Seen, String>;
    /// Holds for `millis`, counting starts, finishes and cancellations.
    async fn hold(&self, millis: u64) -> u64;
}

#[derive(Debug, Default)]
pub struct Counters {
    pub started: AtomicUsize,
    pub finished: AtomicUsize,
    pub cancelled: AtomicUsize,
}

#[derive(Clone, Default)]
pub struct LabImpl {
    pub counters: Arc<Counters>,
    pub downstream: Option<LabClient>,
}

impl Lab for LabImpl {
    async fn echo(&self, payload: Vec<u8>) -> Vec<u8> {
        payload
    }

    async fn delayed(&self, millis: u64, value: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(millis)).await;
        value
    }

    async fn divide(&self, a: i64, b: i64) -> Result<i64, LabError> {
        a.checked_div(b).ok_or(LabError::DivisionByZero)
    }

    async fn explode(&self) -> u8 {
        panic!("the laboratory exploded")
    }

    async fn context(&self) -> Seen {
        let ctx = Context::current();
        Seen { remaining_ms: ctx.remaining().map(|d| d.as_millis() as u64), trace_id: ctx.trace_id }
    }

    async fn forward_context(&self) -> Result<Seen, String> {
        let downstream = self.downstream.as_ref().ok_or("no downstream")?;
        downstream.context().await.map_err(|e| e.to_string())
    }

    async fn hold(&self, millis: u64) -> u64 {
        struct CountCancel(Arc<Counters>, bool);
        impl Drop for CountCancel {
            fn drop(&mut self) {
                let counter = if self.1 { &self.0.finished } else { &self.0.cancelled };
                counter.fetch_add(1, Ordering::SeqCst);
            }
        }
        self.counters.started.fetch_add(1, Ordering::SeqCst);
        let mut guard = CountCancel(self.counters.clone(), false);
        tokio::time::sleep(Duration::from_millis(millis)).await;
        guard.1 = true;
        millis
    }
}

/// Starts a Lab server on an ephemeral port.
pub async fn spawn_lab(config: ServerConfig) -> (ServerHandle, Arc<Counters>) {
    spawn_lab_with(config, LabImpl::default()).await
}

pub async fn spawn_lab_with(config: ServerConfig, lab: LabImpl) -> (ServerHandle, Arc<Counters>) {
    let counters = lab.counters.clone();
    let handle = Server::new(config).add_service(LabServer::new(lab)).spawn("127.0.0.1:0").await.expect("bind");
    (handle, counters)
}

pub fn client(addr: impl ToString, config: ClientConfig) -> LabClient {
    LabClient::new(Channel::new(addr.to_string(), config))
}

/// Polls `condition` every 10 ms until it holds or `limit` passes; returns whether it held.
pub async fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    condition()
}
