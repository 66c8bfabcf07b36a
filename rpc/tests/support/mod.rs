//! A laboratory service and helpers shared by the integration tests.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rpc::{
    BoxFuture, Channel, ClientConfig, Context, Request, Response, Server, ServerConfig, ServerHandle, Service, Status,
};
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
    /// The serving node's id. Idempotent: a cluster may retry it.
    #[rpc(idempotent)]
    async fn whoami(&self) -> u32;
    /// The serving node's id, as a call with a side effect: never retried.
    async fn record(&self) -> u32;
    /// The serving node's id; consistent hashing routes it by `key`.
    #[rpc(idempotent, hash_key = key)]
    async fn route(&self, key: u64) -> u32;
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
    /// Answered by `whoami`, `record` and `route`.
    pub id: u32,
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

    async fn whoami(&self) -> u32 {
        self.id
    }

    async fn record(&self) -> u32 {
        self.id
    }

    async fn route(&self, _key: u64) -> u32 {
        self.id
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

/// How a [`TestNode`] answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Healthy,
    /// Every call fails with `Internal` (a node failure) without running.
    Failing,
    /// Every call is shed with `Overloaded`.
    Overloaded,
    /// Every call runs after a delay (see [`Switch::set_slow`]).
    Slow,
}

/// A node's health switch and its call counter.
#[derive(Debug, Default)]
pub struct Switch {
    mode: AtomicU8,
    slow_ms: AtomicU64,
    /// Calls that reached the node, whatever it answered.
    pub arrived: AtomicUsize,
}

impl Switch {
    pub fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    pub fn set_slow(&self, delay: Duration) {
        self.slow_ms.store(delay.as_millis() as u64, Ordering::SeqCst);
        self.set(Mode::Slow);
    }

    pub fn arrived(&self) -> usize {
        self.arrived.load(Ordering::SeqCst)
    }

    fn mode(&self) -> Mode {
        match self.mode.load(Ordering::SeqCst) {
            1 => Mode::Failing,
            2 => Mode::Overloaded,
            3 => Mode::Slow,
            _ => Mode::Healthy,
        }
    }
}

/// Wraps a service so a test can make it sick, shed or slow.
pub struct Switchable<S> {
    inner: S,
    switch: Arc<Switch>,
}

impl<S: Service> Service for Switchable<S> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn call(&self, method: &str, request: Request) -> Option<BoxFuture<'static, Response>> {
        self.switch.arrived.fetch_add(1, Ordering::SeqCst);
        let failure = |status, message| -> BoxFuture<'static, Response> {
            Box::pin(std::future::ready(Response::failure(status, message)))
        };
        match self.switch.mode() {
            Mode::Healthy => self.inner.call(method, request),
            Mode::Failing => Some(failure(Status::Internal, "this node is sick")),
            Mode::Overloaded => Some(failure(Status::Overloaded, "this node is overloaded")),
            Mode::Slow => {
                let call = self.inner.call(method, request)?;
                let delay = Duration::from_millis(self.switch.slow_ms.load(Ordering::SeqCst));
                Some(Box::pin(async move {
                    tokio::time::sleep(delay).await;
                    call.await
                }))
            }
        }
    }
}

/// A Lab server with an id and a health switch.
pub struct TestNode {
    pub id: u32,
    pub addr: std::net::SocketAddr,
    pub switch: Arc<Switch>,
    pub handle: ServerHandle,
}

impl TestNode {
    pub async fn spawn(id: u32) -> TestNode {
        TestNode::spawn_with(id, ServerConfig::default()).await
    }

    pub async fn spawn_with(id: u32, config: ServerConfig) -> TestNode {
        let switch = Arc::new(Switch::default());
        let lab = LabServer::new(LabImpl { id, ..Default::default() });
        let handle = Server::new(config)
            .add_service(Switchable { inner: lab, switch: switch.clone() })
            .spawn("127.0.0.1:0")
            .await
            .expect("bind");
        TestNode { id, addr: handle.local_addr(), switch, handle }
    }

    /// `n` nodes with ids `1..=n`.
    pub async fn spawn_many(n: u32) -> Vec<TestNode> {
        let mut nodes = Vec::new();
        for id in 1..=n {
            nodes.push(TestNode::spawn(id).await);
        }
        nodes
    }

    pub fn addrs(nodes: &[TestNode]) -> Vec<String> {
        nodes.iter().map(|node| node.addr.to_string()).collect()
    }

    pub fn arrived(nodes: &[TestNode]) -> usize {
        nodes.iter().map(|node| node.switch.arrived()).sum()
    }
}

/// A governed Lab client over `nodes`, listed statically.
pub fn cluster_client(nodes: &[TestNode], config: rpc::ClusterConfig) -> LabClient<rpc::Cluster> {
    let registry = rpc::StaticRegistry::single("Lab", TestNode::addrs(nodes));
    LabClient::new(rpc::Cluster::new(rpc::Registry::discover(&registry, "Lab"), config))
}

/// Runs `total` calls of `call` with `concurrency` workers; returns every result.
pub async fn run_calls<T, F, Fut>(total: usize, concurrency: usize, call: F) -> Vec<T>
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = T> + Send,
    T: Send + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (next, call) = (next.clone(), call.clone());
            tokio::spawn(async move {
                let mut results = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= total {
                        return results;
                    }
                    results.push(call(i).await);
                }
            })
        })
        .collect();
    let mut all = Vec::with_capacity(total);
    for worker in workers {
        all.extend(worker.await.expect("worker panicked"));
    }
    all
}
