//! Building and running order-service and the order workers, from tests as from the binaries.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::worker_lease::WorkerLease;
use anyhow::Context;
use contracts::Service;
use contracts::names::{ORDER_SERVICE, STOCK_SERVICE};
use contracts::order::OrderServiceServer;
use contracts::stock::StockServiceClient;
use platform::env::SecretPolicy;
use platform::error::DependencyError;
use platform::node::Node;
use platform::registry;
use platform::rules::{Following, LiveRules, RuleStore};
use rpc::Cluster;
use secrecy::ExposeSecret;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::broker::{Publisher, Topology};
use crate::lifecycle::Lifecycle;
use crate::lifecycle::sweep::Sweeper;
use crate::payment::Payments;
use crate::reconciler::Reconciler;
use crate::results::Results;
use crate::service::{OrderParts, Orders};
use crate::settings::Settings;
use crate::worker::{Worker, WorkerParts, Writer};

/// What both binaries connect to at start-up.
struct Dependencies {
    pool: PgPool,
    redis: deadpool_redis::Pool,
    /// The shared connection of the hot paths.
    shared: platform::redis::Shared,
    registry: Arc<dyn rpc::Registry>,
    stock: StockServiceClient<Cluster>,
    topology: Topology,
    /// The live rules, and the stock-service client following them.
    rules: LiveRules,
    following: Following,
}

impl Dependencies {
    /// Connects for the program `me`, once `policy` (the node's secrets and the program's own
    /// settings) allows it: its calls to stock-service carry its own identity.
    async fn connect(settings: &Settings, me: Service, policy: SecretPolicy) -> anyhow::Result<Dependencies> {
        policy.enforce()?;
        let security = settings.node.rpc.security.load()?;
        let pool = settings.database.connect().await?;
        let redis = settings.redis.connect().await?;
        let shared = settings.redis.connect_shared().await?;
        let registry = settings.registry.connect().await?;
        let identity = settings.node.rpc.security.identities().service_credential(me);
        let stock = StockServiceClient::new(registry::cluster(&registry, STOCK_SERVICE, &settings.stock, &security))
            .with_credential(identity);
        let topology = Topology::new(&settings.broker);
        let store = RuleStore::new(redis.clone(), settings.redis.keyspace().rules());
        let rules = LiveRules::follow(store, settings.redis.url.clone()).await;
        let following = rules.govern(vec![(stock.transport().clone(), settings.stock.clone())]);
        Ok(Dependencies { pool, redis, shared, registry, stock, topology, rules, following })
    }
}

fn broker_unreachable(settings: &Settings, err: lapin::Error) -> DependencyError {
    DependencyError::new("RabbitMQ", settings.broker.url.expose_secret(), &err)
}

/// A running order-service.
pub struct Application {
    node: Node,
    lease: WorkerLease,
    rules: LiveRules,
    stock: Cluster,
    _following: Following,
    /// Stops the safety sweep with the application.
    _sweep: tokio_util::sync::DropGuard,
}

impl Application {
    /// Connects to PostgreSQL, Redis, the registry and RabbitMQ (declaring the queues), and
    /// starts serving.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let mut policy = settings.node.secret_policy();
        policy.shortcut(
            settings.without.publisher_confirms,
            "SECKILL_WITHOUT__PUBLISHER_CONFIRMS accepts tickets the broker may never have stored; unset it",
        );
        crate::payment::check(&settings.payment, &mut policy);
        let deps = Dependencies::connect(&settings, Service::OrderService, policy).await?;
        let (rules, following, stock) = (deps.rules, deps.following, deps.stock.transport().clone());
        let publisher = Publisher::connect_with(&settings.broker, !settings.without.publisher_confirms)
            .await
            .map_err(|err| broker_unreachable(&settings, err))?;
        let keys = settings.redis.keyspace();
        // Order ids for the strategies that write orders in the request (not `lua_mq`).
        let lease = WorkerLease::acquire(&deps.redis, &keys, settings.worker.lease_ttl)
            .await
            .context("leasing a snowflake worker id")?;
        let provider = crate::payment::provider_from(&settings.payment);
        let payments = Payments::new(deps.pool.clone(), provider, settings.payment.webhook_secret.clone());
        let sweep = CancellationToken::new();
        if settings.sweep.enabled {
            let results = Results::new(deps.shared.clone(), keys.clone());
            let lifecycle = Lifecycle::new(deps.pool.clone(), deps.stock.clone(), results);
            let sweeper = Sweeper::new(deps.pool.clone(), lifecycle, payments.clone(), settings.sweep.grace);
            tokio::spawn(sweeper.run(settings.sweep.interval, sweep.clone()));
        }
        let orders = Orders::new(OrderParts {
            payments,
            pool: deps.pool,
            stock: deps.stock,
            publisher,
            redis: deps.redis,
            shared: deps.shared,
            keys,
            ids: Arc::new(lease.snowflake()?),
            identities: settings.node.rpc.security.identities(),
            orphan_check: settings.orphan_check,
        });
        let server = settings.node.server()?.add_service(OrderServiceServer::new(orders));
        let node = Node::start(&settings.node, server, &[ORDER_SERVICE], &deps.registry)
            .await
            .context("starting the RPC server")?;
        Ok(Application { node, lease, rules, stock, _following: following, _sweep: sweep.drop_guard() })
    }

    /// The RPC address (useful with port 0).
    pub fn address(&self) -> SocketAddr {
        self.node.local_addr()
    }

    /// The version of the live rules its stock-service client follows now.
    pub fn rules_version(&self) -> u64 {
        self.rules.current().version
    }

    /// Its client of stock-service: the nodes, their breakers, the rules in force.
    pub fn stock_cluster(&self) -> &Cluster {
        &self.stock
    }

    /// Serves until `shutdown` completes, then drains in-flight calls.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) {
        self.node.run_until(shutdown).await;
        self.lease.release().await;
    }

    /// Stops now, gracefully.
    pub async fn stop(self) {
        self.node.stop().await;
        self.lease.release().await;
    }
}

/// A running order-worker process: consumers and, if enabled, the reconciler.
pub struct WorkerApplication {
    shutdown: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    lease: WorkerLease,
    rules: LiveRules,
    _following: Following,
}

impl WorkerApplication {
    /// Connects, leases a snowflake worker id, and starts consuming.
    pub async fn build(settings: Settings) -> anyhow::Result<WorkerApplication> {
        let mut policy = settings.node.secret_policy();
        policy.shortcut(
            settings.without.ack_after_commit,
            "SECKILL_WITHOUT__ACK_AFTER_COMMIT loses the orders a crashed worker held; unset it",
        );
        let deps = Dependencies::connect(&settings, Service::OrderWorker, policy).await?;
        if let Some(listen) = settings.node.metrics_listen {
            if let Err(err) = platform::metrics::serve_prometheus(listen) {
                tracing::warn!(%listen, %err, "metrics exporter not started");
            }
        }
        // Fail now, clearly, if the broker is unreachable (the consumers would only retry).
        let connection =
            crate::broker::connect(&settings.broker.url).await.map_err(|err| broker_unreachable(&settings, err))?;
        deps.topology.declare(&connection).await.map_err(|err| broker_unreachable(&settings, err))?;
        let _ = connection.close(200, "declared".into()).await;

        let keys = settings.redis.keyspace();
        let lease = WorkerLease::acquire(&deps.redis, &keys, settings.worker.lease_ttl)
            .await
            .context("leasing a snowflake worker id")?;
        let ids = Arc::new(lease.snowflake()?);
        let results = Results::new(deps.shared.clone(), keys.clone());
        let timers = Publisher::connect(&settings.broker).await.map_err(|err| broker_unreachable(&settings, err))?;
        let lifecycle = Lifecycle::new(deps.pool.clone(), deps.stock.clone(), results.clone());
        let shutdown = CancellationToken::new();
        let parts = WorkerParts {
            amqp_url: settings.broker.url.clone(),
            topology: deps.topology.clone(),
            settings: settings.worker.clone(),
            writer: Writer::new(deps.pool.clone(), deps.stock.clone(), ids),
            stock: deps.stock.clone(),
            results: results.clone(),
            pool: deps.pool.clone(),
            ack_on_delivery: settings.without.ack_after_commit,
            timers,
            lifecycle,
        };
        let worker = Arc::new(Worker::new(parts, shutdown.clone()));
        let mut tasks = vec![tokio::spawn(worker.run())];
        if settings.reconciler.enabled {
            let reconciler =
                Reconciler::new(deps.stock.clone(), results, deps.redis.clone(), keys, settings.reconciler.grace);
            tasks.push(tokio::spawn(reconciler.run(settings.reconciler.interval, shutdown.clone())));
        }
        tracing::info!(worker_id = lease.worker_id(), "order worker started");
        Ok(WorkerApplication { shutdown, tasks, lease, rules: deps.rules, _following: deps.following })
    }

    /// The version of the live rules its stock-service client follows now.
    pub fn rules_version(&self) -> u64 {
        self.rules.current().version
    }

    /// Runs until `shutdown` completes, then finishes the batches in hand and stops.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) {
        shutdown.await;
        self.stop().await;
    }

    /// Stops now: no new batches; in-flight batches are written and acknowledged first.
    pub async fn stop(self) {
        self.shutdown.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
        self.lease.release().await;
    }

    /// Kills the workers at once, as a crash would (tests): unacknowledged messages are redelivered.
    pub fn abort(self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
