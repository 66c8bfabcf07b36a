//! A throwaway Seckill stack inside this process, for benchmarks: its own database, Redis
//! prefix and RabbitMQ names, services on ephemeral ports, a static registry.

use platform::redis::RedisSettings;
use std::collections::BTreeMap;

use chrono::Utc;
use contracts::stock::{NewGoods, StockServiceClient};
use contracts::user::{Credentials, UserServiceClient};
use platform::node::NodeSettings;
use platform::registry::{RegistryKind, RegistrySettings};
use rpc::Cluster;
use secrecy::SecretString;
use testkit::TestDb;

/// A running sandbox.
pub struct Sandbox {
    /// Its database.
    pub db: TestDb,
    /// Redis pool.
    pub redis: deadpool_redis::Pool,
    /// Redis prefix and RabbitMQ prefix.
    pub prefix: String,
    /// stock-service instances.
    pub stock_apps: Vec<stock_service::Application>,
    /// A balanced client to them.
    pub stock: StockServiceClient<Cluster>,
    /// Settings for order-service and workers in this sandbox.
    pub order_settings: order_service::Settings,
    /// With [`StockNodes::proxied`]: the fault proxies in front of the last stock-services.
    pub stock_proxies: Vec<testkit::fault_proxy::FaultProxy>,
    /// With [`StockNodes::redis_through_proxy`]: the fault proxy between stock-services and Redis.
    pub stock_redis_proxy: Option<testkit::fault_proxy::FaultProxy>,
}

/// The stock-service nodes of a sandbox.
#[derive(Clone, Debug, Default)]
pub struct StockNodes {
    /// How many (at least one).
    pub instances: usize,
    /// Every caller reaches the last this many through fault proxies ([`Sandbox::stock_proxies`])
    /// that a scenario can make slow or silent: faults come from outside the programs.
    pub proxied: usize,
    /// They reach Redis through one fault proxy ([`Sandbox::stock_redis_proxy`]).
    pub redis_through_proxy: bool,
    /// Their RPC servers' settings (in-flight limits), if not the default.
    pub server: Option<rpc::ServerConfig>,
    /// Their safeguards turned off (`SECKILL_WITHOUT__SALE_STATE_REBUILD`).
    pub without: stock_service::settings::Without,
}

impl Sandbox {
    /// Starts `stock_instances` stock-services.
    pub async fn start(stock_instances: usize) -> anyhow::Result<Sandbox> {
        Sandbox::start_with(&StockNodes { instances: stock_instances, ..Default::default() }).await
    }

    /// Starts the stock-services `nodes` describes.
    pub async fn start_with(nodes: &StockNodes) -> anyhow::Result<Sandbox> {
        let (stock_instances, proxied) = (nodes.instances.max(1), nodes.proxied);
        let db = TestDb::create().await;
        let prefix = testkit::unique_name();
        let stock_redis_proxy = match nodes.redis_through_proxy {
            true => Some(testkit::fault_proxy::FaultProxy::start(redis_address()?).await),
            false => None,
        };
        let mut stock_apps = Vec::new();
        for _ in 0..stock_instances {
            let mut settings = stock_service::Settings {
                node: NodeSettings::listening("127.0.0.1:0", None),
                registry: testkit::static_registry(),
                database: db.settings(),
                redis: RedisSettings::with_prefix(&prefix),
                without: nodes.without.clone(),
                ..Default::default()
            };
            if let Some(proxy) = &stock_redis_proxy {
                settings.redis.url = SecretString::from(format!("redis://{}", proxy.addr()));
            }
            if let Some(server) = &nodes.server {
                settings.node.rpc.server = server.clone();
            }
            stock_apps.push(stock_service::Application::build(settings).await?);
        }
        let mut addrs: Vec<String> = stock_apps.iter().map(|app| app.address().to_string()).collect();
        let mut stock_proxies = Vec::new();
        for (app, addr) in stock_apps.iter().zip(addrs.iter_mut()).skip(stock_instances.saturating_sub(proxied)) {
            let proxy = testkit::fault_proxy::FaultProxy::start(app.address()).await;
            *addr = proxy.addr().to_string();
            stock_proxies.push(proxy);
        }
        let registry = RegistrySettings {
            kind: RegistryKind::Static,
            endpoints: BTreeMap::from([("stockservice".to_owned(), addrs)]),
            ..Default::default()
        };
        let mut order_settings = order_service::Settings {
            node: NodeSettings::listening("127.0.0.1:0", None),
            registry: registry.clone(),
            database: db.settings(),
            redis: RedisSettings::with_prefix(&prefix),
            ..Default::default()
        };
        order_settings.reconciler.enabled = false;
        order_settings.broker.prefix = prefix.clone();
        order_settings.broker.url = SecretString::from(testkit::amqp_url());
        let connected = registry.connect().await?;
        // The benchmarks call the internal sale-state methods directly, as a service would.
        let stock = StockServiceClient::new(platform::registry::cluster(
            &connected,
            contracts::names::STOCK_SERVICE,
            &Default::default(),
            &testkit::rpc_security(),
        ))
        .with_credential(testkit::as_service());
        Ok(Sandbox {
            db,
            redis: testkit::redis_pool().await,
            prefix,
            stock_apps,
            stock,
            order_settings,
            stock_proxies,
            stock_redis_proxy,
        })
    }

    /// Creates and warms up a sale of `stock` units, open for an hour.
    pub async fn sale(&self, stock: i32) -> anyhow::Result<i64> {
        let now = Utc::now();
        let goods = NewGoods {
            name: "Benchmark goods".into(),
            description: String::new(),
            price_cents: 1_000,
            seckill_price_cents: 100,
            stock,
            start_at: now - chrono::Duration::minutes(1),
            end_at: now + chrono::Duration::hours(1),
            strategy: Default::default(),
            buckets: 1,
            payment_window_secs: contracts::stock::DEFAULT_PAYMENT_WINDOW_SECS,
        };
        let admin = self.stock.clone().with_credential(testkit::as_admin());
        let goods_id = admin.create_goods(goods).await?.goods_id;
        admin.warm_up(goods_id).await?;
        Ok(goods_id)
    }

    /// Stops the services and deletes the Redis keys and queues (the database goes on drop).
    pub async fn finish(self) {
        for app in self.stock_apps {
            app.stop().await;
        }
        order_service::broker::Topology::remove(
            &self.order_settings.broker,
            &[contracts::stock::DEFAULT_PAYMENT_WINDOW_SECS],
        )
        .await;
        testkit::clear_redis_prefix(&self.redis, &self.prefix).await;
    }
}

/// The whole system in this process: user-, stock-, order-service, one worker and the
/// gateway (or several, [`StackOptions::gateways`]).
pub struct FullStack {
    /// The stock side (database, Redis, stock-service).
    pub sandbox: Sandbox,
    /// The (first) gateway's base URL.
    pub base_url: String,
    /// Every gateway's base URL, the first's first.
    pub base_urls: Vec<String>,
    /// Every gateway's `/metrics` URL (in one process they all render the same registry).
    pub metrics_urls: Vec<String>,
    /// The JWT settings every part of this stack shares.
    pub jwt: platform::auth::JwtSettings,
    /// A bearer token of the admin.
    pub admin_token: String,
    /// With [`StackOptions::broker_through_proxy`]: the proxy between order-service and RabbitMQ.
    pub broker_proxy: Option<testkit::fault_proxy::FaultProxy>,
    user: user_service::Application,
    order: order_service::Application,
    /// The order worker (none between [`FullStack::crash_worker`] and [`FullStack::start_worker`]).
    worker: Option<order_service::WorkerApplication>,
    worker_settings: order_service::Settings,
    gateways: Vec<gateway::Running>,
}

/// How a [`FullStack`] differs from the default one.
#[derive(Clone, Debug, Default)]
pub struct StackOptions {
    /// The gateway's limits.
    pub limits: gateway::settings::LimitSettings,
    /// The stock-service nodes.
    pub stock: StockNodes,
    /// order-service's client of stock-service (balancer, breaker, retries, timeouts).
    pub stock_cluster: rpc::ClusterConfig,
    /// The gateway's defences turned off (`SECKILL_WITHOUT__...`).
    pub without: gateway::settings::Without,
    /// order-service's safeguards turned off (`SECKILL_WITHOUT__PUBLISHER_CONFIRMS`).
    pub order_without: order_service::settings::Without,
    /// order-service (not the worker) reaches RabbitMQ through a fault proxy
    /// ([`FullStack::broker_proxy`]).
    pub broker_through_proxy: bool,
    /// Gateways, the same settings each (at least one).
    pub gateways: usize,
}

impl StackOptions {
    /// The default stack with the gateway's `limits`.
    pub fn with_limits(limits: gateway::settings::LimitSettings) -> StackOptions {
        StackOptions { limits, ..Default::default() }
    }
}

impl FullStack {
    /// Starts everything as `options` say; the captcha in test mode (`k6-test`).
    pub async fn start(options: StackOptions) -> anyhow::Result<FullStack> {
        let mut sandbox = Sandbox::start_with(&options.stock).await?;
        sandbox.order_settings.stock = options.stock_cluster.clone();
        let limits = options.limits;
        let jwt = platform::auth::JwtSettings {
            secret: SecretString::from(format!("bench-{}", sandbox.prefix)),
            ..Default::default()
        };
        let user = user_service::Application::build(user_service::Settings {
            node: NodeSettings::listening("127.0.0.1:0", None),
            registry: testkit::static_registry(),
            database: sandbox.db.settings(),
            jwt: jwt.clone(),
            admin: user_service::settings::AdminBootstrap {
                username: "admin".into(),
                password: Some(SecretString::from("admin-password")),
            },
            ..Default::default()
        })
        .await?;
        let mut order_settings = sandbox.order_settings.clone();
        order_settings.without = options.order_without.clone();
        // Payments through the sandbox provider (a simulator), calling the first gateway's
        // webhook back: its port is chosen now, since order-service starts first.
        let first_gateway_port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        order_settings.node.env = platform::env::Environment::Development;
        order_settings.payment.provider = order_service::settings::ProviderKind::Sandbox;
        order_settings.payment.sandbox.webhook_url =
            format!("http://127.0.0.1:{first_gateway_port}/api/v1/payments/webhook");
        let mut broker_proxy = None;
        if options.broker_through_proxy {
            let url = testkit::amqp_url();
            let (credentials, rest) = url.split_once('@').ok_or_else(|| anyhow::anyhow!("AMQP URL {url:?}"))?;
            let (address, vhost) = rest.split_once('/').unwrap_or((rest, ""));
            let proxy = testkit::fault_proxy::FaultProxy::start(address.parse()?).await;
            order_settings.broker.url = SecretString::from(format!("{credentials}@{}/{vhost}", proxy.addr()));
            broker_proxy = Some(proxy);
        }
        let order = order_service::Application::build(order_settings).await?;
        let mut worker_settings = sandbox.order_settings.clone();
        worker_settings.without = options.order_without.clone();
        let worker = order_service::WorkerApplication::build(worker_settings.clone()).await?;
        let mut endpoints = sandbox.order_settings.registry.endpoints.clone();
        endpoints.insert("userservice".into(), vec![user.address().to_string()]);
        endpoints.insert("orderservice".into(), vec![order.address().to_string()]);
        let settings = gateway::Settings {
            env: platform::env::Environment::Development,
            listen: "127.0.0.1:0".into(),
            registry: RegistrySettings { kind: RegistryKind::Static, endpoints, ..Default::default() },
            redis: RedisSettings::with_prefix(&sandbox.prefix),
            jwt: jwt.clone(),
            captcha: gateway::settings::CaptchaSettings { test_answer: Some("k6-test".into()), ..Default::default() },
            limits,
            without: options.without,
            metrics_listen: Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
            ..Default::default()
        };
        let (mut gateways, mut base_urls, mut metrics_urls) = (Vec::new(), Vec::new(), Vec::new());
        for n in 0..options.gateways.max(1) {
            let mut settings = settings.clone();
            if n == 0 {
                settings.listen = format!("127.0.0.1:{first_gateway_port}");
            }
            let app = gateway::Application::build(settings).await?;
            base_urls.push(format!("http://127.0.0.1:{}", app.port()));
            metrics_urls.extend(app.metrics_port().map(|port| format!("http://127.0.0.1:{port}/metrics")));
            gateways.push(app.spawn());
        }
        let base_url = base_urls[0].clone();
        let users = UserServiceClient::new(testkit::channel(user.address()));
        let admin = Credentials { username: "admin".into(), password: "admin-password".into() };
        let session = users.login(admin).await.map_err(|err| anyhow::anyhow!("admin login: {err}"))?;
        let admin_token = session.token;
        let worker = Some(worker);
        Ok(FullStack {
            sandbox,
            base_url,
            base_urls,
            metrics_urls,
            jwt,
            admin_token,
            broker_proxy,
            user,
            order,
            worker,
            worker_settings,
            gateways,
        })
    }

    /// The addresses callers reach stock-service at (the proxies' for proxied nodes).
    pub fn stock_endpoints(&self) -> Vec<String> {
        self.sandbox.order_settings.registry.endpoints.get("stockservice").cloned().unwrap_or_default()
    }

    /// The address of user-service.
    pub fn user_endpoints(&self) -> Vec<String> {
        vec![self.user.address().to_string()]
    }

    /// The address of order-service.
    pub fn order_endpoints(&self) -> Vec<String> {
        vec![self.order.address().to_string()]
    }

    /// The version of the live rules each process that follows them follows now: every
    /// gateway, order-service, the worker (if running).
    pub fn rules_versions(&self) -> Vec<u64> {
        let gateways = self.gateways.iter().map(gateway::Running::rules_version);
        let worker = self.worker.as_ref().map(order_service::WorkerApplication::rules_version);
        gateways.chain([self.order.rules_version()]).chain(worker).collect()
    }

    /// Waits (at most 10 s) until every process follows rules `version` or later.
    pub async fn follow_rules(&self, version: u64) -> anyhow::Result<()> {
        testkit::wait_for(std::time::Duration::from_secs(10), || async {
            self.rules_versions().iter().all(|v| *v >= version).then_some(())
        })
        .await
        .ok_or_else(|| anyhow::anyhow!("rules v{version} not followed everywhere: {:?}", self.rules_versions()))
    }

    /// Changes the live rules of this stack, as an operator would on the dashboard, and waits
    /// until every process follows the change.
    pub async fn set_rules(&self, rules: platform::rules::Rules, by: &str) -> anyhow::Result<u64> {
        let store = platform::rules::RuleStore::new(self.sandbox.redis.clone(), self.keyspace().rules());
        let current = store.current().await?;
        let set = store.change(current.version, rules, by).await?;
        self.follow_rules(set.version).await?;
        Ok(set.version)
    }

    /// The stack's Redis keyspace.
    pub fn keyspace(&self) -> contracts::keyspace::Keyspace {
        contracts::keyspace::Keyspace::new(&self.sandbox.prefix)
    }

    /// order-service's client of stock-service.
    pub fn order_stock_cluster(&self) -> &rpc::Cluster {
        self.order.stock_cluster()
    }

    /// Kills the order worker at once, as `kill -9` would: what it has not acknowledged goes back
    /// to the queue (and what it has, is gone).
    pub fn crash_worker(&mut self) {
        if let Some(worker) = self.worker.take() {
            worker.abort();
        }
    }

    /// Starts an order worker (after [`FullStack::crash_worker`]).
    pub async fn start_worker(&mut self) -> anyhow::Result<()> {
        if self.worker.is_none() {
            self.worker = Some(order_service::WorkerApplication::build(self.worker_settings.clone()).await?);
        }
        Ok(())
    }

    /// Stops gateway `index`: `graceful`, it stops accepting and finishes the requests it has;
    /// else it drops them at once, as `kill -9` would.
    pub async fn stop_gateway(&self, index: usize, graceful: bool) {
        if let Some(gateway) = self.gateways.get(index) {
            gateway.stop(graceful).await;
        }
    }

    /// Stops everything and cleans up.
    pub async fn finish(self) {
        for gateway in &self.gateways {
            gateway.stop(true).await;
        }
        if let Some(worker) = self.worker {
            worker.stop().await;
        }
        self.order.stop().await;
        self.user.stop().await;
        self.sandbox.finish().await;
    }
}

/// The address of the Redis the sandbox uses (the default settings', `redis://127.0.0.1:6379`).
fn redis_address() -> anyhow::Result<std::net::SocketAddr> {
    use secrecy::ExposeSecret;
    let url = RedisSettings::default().url;
    let address = url.expose_secret().trim_start_matches("redis://").trim_end_matches('/');
    address.parse().map_err(|err| anyhow::anyhow!("Redis address {address:?}: {err}"))
}
