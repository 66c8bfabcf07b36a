//! [`Cluster`]: a [`Transport`] over every instance of a service, with balancing, per-node
//! circuit breakers, retries and metrics. Generated clients use it like a [`crate::Channel`].
//!
//! ```text
//! call ─► pick a node (balancer, skipping open breakers) ─► node's Channel ─► outcome
//!            ▲                                                                 │
//!            └── idempotent and a node failure: backoff, budget, another node ─┘
//! ```
//!
//! The node list follows a [`Discovery`]: a background task rebuilds it when the list changes,
//! keeping the nodes that stay (their connections, breakers and statistics). Each attempt picks
//! from the current list under a read lock held only for the pick, so a retry sees the freshest
//! list; a call allocates nothing of its own.
//!
//! The breaker settings and the retry rules can change while calls flow
//! ([`Cluster::set_breaker`], [`Cluster::set_retry`]: the live rules of the services); the rest
//! of [`ClusterConfig`] is fixed when the cluster is made.

mod balance;
mod breaker;
mod config;
mod metrics;
mod node;
mod peak_ewma;
mod retry;
mod window;

use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio_util::sync::{CancellationToken, DropGuard};

use self::balance::Balancer;
pub use self::breaker::BreakerState;
pub use self::config::{BalancerKind, BreakerConfig, ClusterConfig, PeakEwmaConfig, RetryConfig};
pub use self::metrics::describe_metrics;
use self::node::{Node, Picked};
use self::retry::RetryPolicy;
use crate::backoff::Backoff;
use crate::client::{Call, Reply, Transport};
use crate::context::Context;
use crate::error::{Error, TransportError};
use crate::registry::{Discovery, Instance};

/// A balanced, governed transport to every instance of one service. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Cluster {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: ClusterConfig,
    discovery: Discovery,
    nodes: RwLock<Arc<NodeSet>>,
    /// The breaker settings in force (`config.breaker` until [`Cluster::set_breaker`]).
    breaker: ArcSwap<BreakerConfig>,
    /// The retry rules in force, with their budget (replaced by [`Cluster::set_retry`]).
    retry: ArcSwap<RetryPolicy>,
    /// Stops the refresh task when the last clone of the cluster is dropped.
    _refresh: DropGuard,
}

/// The nodes as of one listing, with the balancer built for them.
#[derive(Debug)]
struct NodeSet {
    nodes: Vec<Arc<Node>>,
    balancer: Balancer,
}

/// What a cluster knows of one of its endpoints (see [`Cluster::endpoints`]).
#[derive(Clone, Debug, PartialEq)]
pub struct EndpointStatus {
    /// `host:port`.
    pub addr: String,
    /// Configured weight.
    pub weight: u32,
    /// Weight in use now (lower while warming up).
    pub effective_weight: u32,
    /// Calls waiting for an answer.
    pub in_flight: usize,
    /// Its circuit breaker's state.
    pub breaker: BreakerState,
    /// Its peak-EWMA latency estimate; kept only under the `peak_ewma` balancer.
    pub latency: Option<Duration>,
}

impl Cluster {
    /// A cluster over the instances `discovery` lists. Must be called within a tokio runtime
    /// (it spawns the task that follows the list).
    pub fn new(discovery: Discovery, config: ClusterConfig) -> Cluster {
        let stop = CancellationToken::new();
        let nodes = NodeSet::build(&[], &discovery.instances(), &config, &config.breaker);
        let inner = Arc::new(Inner {
            breaker: ArcSwap::from_pointee(config.breaker.clone()),
            retry: ArcSwap::from_pointee(RetryPolicy::new(&config.retry, discovery.service())),
            nodes: RwLock::new(Arc::new(nodes)),
            discovery: discovery.clone(),
            config,
            _refresh: stop.clone().drop_guard(),
        });
        tokio::spawn(follow(Arc::downgrade(&inner), discovery, stop));
        Cluster { inner }
    }

    /// The service this cluster calls.
    pub fn service(&self) -> &str {
        self.inner.discovery.service()
    }

    /// The discovery the node list follows (e.g. to check [`Discovery::is_live`]).
    pub fn discovery(&self) -> &Discovery {
        &self.inner.discovery
    }

    /// The state of every endpoint, in address order.
    pub fn endpoints(&self) -> Vec<EndpointStatus> {
        let now = Instant::now();
        let set = self.inner.node_set();
        set.nodes
            .iter()
            .map(|node| EndpointStatus {
                addr: node.instance.addr.clone(),
                weight: node.instance.weight,
                effective_weight: node.weight(now),
                in_flight: node.in_flight(),
                breaker: node.breaker.state(),
                latency: node.tracks_latency().then(|| node.latency.estimate()),
            })
            .collect()
    }

    /// Puts new breaker settings in force on every node, now and later listed: each keeps its
    /// state and counts (a new window span starts an empty window).
    pub fn set_breaker(&self, config: &BreakerConfig) {
        let inner = &*self.inner;
        // Stored first: a node set being rebuilt meanwhile makes its new nodes with these.
        inner.breaker.store(Arc::new(config.clone()));
        for node in &inner.node_set().nodes {
            node.breaker.reconfigure(config);
        }
    }

    /// Puts new retry rules in force. A change starts a new retry budget, empty but for its
    /// `budget_min_per_sec`; the same rules again change nothing.
    pub fn set_retry(&self, config: &RetryConfig) {
        let inner = &*self.inner;
        if inner.retry.load().config != *config {
            tracing::info!(service = %inner.discovery.service(), ?config, "retry rules changed");
            inner.retry.store(Arc::new(RetryPolicy::new(config, inner.discovery.service())));
        }
    }

    /// The breaker settings in force.
    pub fn breaker_config(&self) -> BreakerConfig {
        self.inner.breaker.load().as_ref().clone()
    }

    /// The retry rules in force.
    pub fn retry_config(&self) -> RetryConfig {
        self.inner.retry.load().config.clone()
    }

    /// The breaker state of the endpoint at `addr`, if the cluster has it.
    pub fn breaker_state(&self, addr: &str) -> Option<BreakerState> {
        self.inner.node_set().nodes.iter().find(|node| node.instance.addr == addr).map(|node| node.breaker.state())
    }
}

impl Inner {
    fn node_set(&self) -> Arc<NodeSet> {
        self.nodes.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Chooses a node for an attempt from the current list.
    fn pick(&self, key: Option<u64>, now: Instant, tried: &mut Tried) -> Option<Picked> {
        self.nodes.read().unwrap_or_else(|poisoned| poisoned.into_inner()).pick(key, now, tried)
    }

    /// Rebuilds the node set from a new listing, keeping the nodes whose instance did not change.
    fn refresh(&self, instances: &[Instance]) {
        let current = self.node_set();
        let next = NodeSet::build(&current.nodes, instances, &self.config, &self.breaker.load());
        tracing::info!(service = %self.discovery.service(), nodes = next.nodes.len(), "cluster node list updated");
        *self.nodes.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(next);
    }

    fn no_endpoint(&self) -> Error {
        TransportError::NoEndpoint(self.discovery.service().to_owned()).into()
    }
}

/// Follows the discovery until the cluster is dropped.
async fn follow(inner: Weak<Inner>, mut discovery: Discovery, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            changed = discovery.changed() => if changed.is_err() { return },
        }
        let Some(inner) = inner.upgrade() else { return };
        inner.refresh(&discovery.instances());
    }
}

impl NodeSet {
    fn build(
        current: &[Arc<Node>],
        instances: &[Instance],
        config: &ClusterConfig,
        breaker: &BreakerConfig,
    ) -> NodeSet {
        let nodes: Vec<Arc<Node>> = instances
            .iter()
            .map(|instance| {
                current
                    .iter()
                    .find(|node| node.instance == *instance)
                    .cloned()
                    .unwrap_or_else(|| Arc::new(Node::new(instance.clone(), config, breaker)))
            })
            .collect();
        NodeSet { balancer: Balancer::new(config.balancer, &nodes), nodes }
    }

    /// Chooses a node for an attempt: the balancer's choice among the nodes not `tried` whose
    /// breaker admits calls.
    fn pick(&self, key: Option<u64>, now: Instant, tried: &mut Tried) -> Option<Picked> {
        // Each round either returns or rules a node out, so this ends.
        for _ in 0..=self.nodes.len() {
            let nodes = &self.nodes;
            let eligible = |i: usize| !tried.contains(Node::id(&nodes[i])) && nodes[i].breaker.available(now);
            let node = &nodes[self.balancer.pick(nodes, key, now, eligible)?];
            match node.breaker.admit(now) {
                Some(admission) => return Some(Picked::new(node.clone(), admission)),
                // Lost the race for the last half-open probe slot.
                None => tried.insert(Node::id(node)),
            }
        }
        None
    }
}

/// Nodes (by [`Node::id`]) a call has tried or found closed to it, so a retry goes elsewhere.
/// Inline, no allocation: a call makes a handful of attempts.
#[derive(Debug, Default)]
struct Tried {
    nodes: [usize; 8],
    len: usize,
}

impl Tried {
    fn contains(&self, node: usize) -> bool {
        self.nodes[..self.len].contains(&node)
    }

    fn insert(&mut self, node: usize) {
        if self.len < self.nodes.len() && !self.contains(node) {
            self.nodes[self.len] = node;
            self.len += 1;
        }
    }
}

impl Transport for Cluster {
    async fn call(&self, mut call: Call) -> Result<Reply, Error> {
        let inner = &*self.inner;
        let started = Instant::now();
        // The earlier of the call's own timeout and the caller's deadline bounds every attempt
        // and every backoff: no hop waits past its caller's deadline.
        let own = started + call.timeout.unwrap_or(inner.config.client.default_timeout);
        let deadline = Context::inherited().0.map_or(own, |inherited| inherited.min(own));
        call.timeout = Some(deadline.saturating_duration_since(started));
        let mut tried = Tried::default();
        let mut picked = inner.pick(call.hash_key, started, &mut tried).ok_or_else(|| inner.no_endpoint())?;
        // The rules are read afresh at each decision (they may change meanwhile), never held
        // across an await.
        let mut backoff = {
            let retry = inner.retry.load();
            if !retry.enabled() {
                drop(retry);
                return picked.call(call, started).await;
            }
            retry.deposit();
            Backoff::new(retry.config.backoff_base, retry.config.backoff_max)
        };
        let (mut attempts, mut sent_at) = (0, started);
        loop {
            attempts += 1;
            tried.insert(Node::id(&picked.node));
            let error = match picked.call(call.clone(), sent_at).await {
                Ok(reply) => return Ok(reply),
                Err(error) => error,
            };
            let retry = inner.retry.load();
            if !retry.may_retry(&call.method, &error, attempts) {
                return Err(error);
            }
            let now = Instant::now();
            let delay = backoff.failed(now);
            if now + delay >= deadline {
                return Err(error);
            }
            let Some(next) = inner.pick(call.hash_key, now, &mut tried) else { return Err(error) };
            // A call that never reached a server costs no server anything: sending it to another
            // node is not amplification, so it does not draw on the budget (a node that dies
            // would otherwise spend it in a second and fail every call still routed to it).
            if !error.never_reached_server() && !retry.withdraw() {
                return Err(error);
            }
            drop(retry);
            let (service, to) = (inner.discovery.service(), &next.node.instance.addr);
            tracing::debug!(service, method = call.method.method, attempts, %to, %error, ?delay, "retrying on another node");
            tokio::time::sleep(delay).await;
            sent_at = Instant::now();
            call.timeout = Some(deadline.saturating_duration_since(sent_at));
            next.node.metrics.retries.increment(1);
            picked = next;
        }
    }
}
