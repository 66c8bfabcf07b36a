//! A whole order pipeline for one test: stock-service instances, order-service, workers on demand,
//! each with its own database, Redis prefix and RabbitMQ names.

#![allow(dead_code, unreachable_pub)]

use platform::redis::RedisSettings;
use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use contracts::order::{OrderError, OrderResult, OrderServiceClient, Ticket};
use contracts::stock::{NewGoods, PurchaseStrategy, StockServiceClient};
use order_service::broker::Topology;
use order_service::settings::ReconcilerSettings;
use order_service::{Application, Settings, WorkerApplication};
use platform::node::NodeSettings;
use platform::registry::{RegistryKind, RegistrySettings};
use rpc::Cluster;
use secrecy::SecretString;
use testkit::TestDb;
use testkit::fault_proxy::FaultProxy;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

pub struct Stack {
    pub db: TestDb,
    pub redis: deadpool_redis::Pool,
    pub prefix: String,
    pub settings: Settings,
    pub stock_apps: Vec<stock_service::Application>,
    pub order_app: Option<Application>,
    pub orders: OrderServiceClient,
    pub stock: StockServiceClient<Cluster>,
    /// With [`Options::stock_through_proxy`]: the fault proxy order-service reaches stock-service through.
    pub stock_proxy: Option<FaultProxy>,
}

pub struct Options {
    /// Where order-service reaches RabbitMQ (a proxy in fault tests).
    pub amqp_url: String,
    /// Order-service reaches one stock-service only, through a fault proxy, with this timeout.
    pub stock_through_proxy: Option<Duration>,
    /// How long a reserve whose answer was lost waits before its unit is given back.
    pub orphan_check: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options { amqp_url: testkit::amqp_url(), stock_through_proxy: None, orphan_check: Duration::from_secs(5) }
    }
}

impl Stack {
    pub async fn start(options: Options) -> Stack {
        let db = TestDb::create().await;
        let prefix = testkit::unique_name();
        let mut stock_apps = Vec::new();
        for _ in 0..2 {
            let settings = stock_service::Settings {
                node: NodeSettings::listening("127.0.0.1:0", None),
                registry: testkit::static_registry(),
                database: db.settings(),
                redis: RedisSettings::with_prefix(&prefix),
                without: Default::default(),
                // Sales are warmed up by the tests (and rebuilt by the reconciler under test).
                warm_up: stock_service::settings::WarmUpSettings { enabled: false, ..Default::default() },
            };
            stock_apps.push(stock_service::Application::build(settings).await.expect("stock-service starts"));
        }
        let mut addrs: Vec<String> = stock_apps.iter().map(|app| app.address().to_string()).collect();
        let mut stock_proxy = None;
        if options.stock_through_proxy.is_some() {
            let proxy = FaultProxy::start(stock_apps[0].address()).await;
            addrs = vec![proxy.addr().to_string()];
            stock_proxy = Some(proxy);
        }
        let registry = RegistrySettings {
            kind: RegistryKind::Static,
            endpoints: BTreeMap::from([("stockservice".to_owned(), addrs)]),
            ..Default::default()
        };
        let mut settings = Settings {
            node: NodeSettings::listening("127.0.0.1:0", None),
            registry,
            database: db.settings(),
            redis: RedisSettings::with_prefix(&prefix),
            reconciler: ReconcilerSettings { enabled: false, ..Default::default() },
            ..Default::default()
        };
        settings.broker.prefix = prefix.clone();
        settings.broker.url = SecretString::from(options.amqp_url);
        settings.orphan_check = options.orphan_check;
        if let Some(timeout) = options.stock_through_proxy {
            // One connection, so the test can open it before it slows the link down.
            settings.stock.client.default_timeout = timeout;
            settings.stock.client.connections = 1;
        }
        settings.broker.confirm_timeout = Duration::from_secs(2);
        settings.worker.batch_size = 100;
        // Payments through the sandbox (a simulator; development only). Tests play the
        // provider's callbacks themselves, signed with the webhook secret: nothing listens here.
        settings.node.env = platform::env::Environment::Development;
        settings.payment.provider = order_service::settings::ProviderKind::Sandbox;
        settings.payment.sandbox.webhook_url = "http://127.0.0.1:9/unused".into();
        let order_app = Application::build(settings.clone()).await.expect("order-service starts");
        let orders = OrderServiceClient::new(testkit::channel(order_app.address()));
        let registry = settings.registry.connect().await.unwrap();
        let stock = StockServiceClient::new(platform::registry::cluster(
            &registry,
            contracts::names::STOCK_SERVICE,
            &Default::default(),
            &testkit::rpc_security(),
        ))
        .with_credential(testkit::as_service());
        // Workers reach the broker directly, whatever order-service does.
        settings.broker.url = SecretString::from(testkit::amqp_url());
        Stack {
            db,
            redis: testkit::redis_pool().await,
            prefix,
            settings,
            stock_apps,
            order_app: Some(order_app),
            orders,
            stock,
            stock_proxy,
        }
    }

    pub async fn goods(&self, stock: i32) -> i64 {
        self.goods_bought_by(stock, PurchaseStrategy::LuaMq).await
    }

    /// A warmed-up sale of `stock` units whose orders wait `window_secs` for their payment.
    pub async fn goods_with_window(&self, stock: i32, window_secs: u32) -> i64 {
        self.create_goods(stock, PurchaseStrategy::LuaMq, window_secs).await
    }

    /// A warmed-up sale of `stock` units whose purchases take their unit by `strategy`.
    pub async fn goods_bought_by(&self, stock: i32, strategy: PurchaseStrategy) -> i64 {
        self.create_goods(stock, strategy, contracts::stock::DEFAULT_PAYMENT_WINDOW_SECS).await
    }

    async fn create_goods(&self, stock: i32, strategy: PurchaseStrategy, payment_window_secs: u32) -> i64 {
        let now = Utc::now();
        let goods = NewGoods {
            name: "Flash sale".into(),
            description: String::new(),
            price_cents: 1_000,
            seckill_price_cents: 100,
            stock,
            start_at: now - chrono::Duration::hours(1),
            end_at: now + chrono::Duration::hours(1),
            strategy,
            buckets: 1,
            payment_window_secs,
        };
        let admin = self.stock.clone().with_credential(testkit::as_admin());
        let goods_id = admin.create_goods(goods).await.unwrap().goods_id;
        admin.warm_up(goods_id).await.unwrap();
        goods_id
    }

    /// order-service as user `user_id` sees it.
    pub fn orders_of(&self, user_id: i64) -> OrderServiceClient {
        self.orders.clone().with_credential(testkit::as_user(user_id))
    }

    /// `user_id` places an order for `goods_id` (a fresh ticket).
    pub async fn place(&self, user_id: i64, goods_id: i64) -> Result<Ticket, rpc::Error<OrderError>> {
        self.orders_of(user_id).place(goods_id, uuid::Uuid::new_v4()).await
    }

    /// Where `user_id`'s purchase of `goods_id` stands.
    pub async fn result(&self, user_id: i64, goods_id: i64) -> Result<OrderResult, rpc::Error<OrderError>> {
        self.orders_of(user_id).result(goods_id).await
    }

    pub async fn worker(&self) -> WorkerApplication {
        WorkerApplication::build(self.settings.clone()).await.expect("worker starts")
    }

    pub fn topology(&self) -> Topology {
        Topology::new(&self.settings.broker)
    }

    pub async fn order_count(&self, goods_id: i64) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM orders WHERE goods_id = $1")
            .bind(goods_id)
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }

    /// Waits until `goods_id` has `n` orders (a hang detector, not a timing assertion).
    pub async fn wait_for_orders(&self, goods_id: i64, n: i64) {
        let reached = testkit::wait_for(Duration::from_secs(60), || async {
            (self.order_count(goods_id).await >= n).then_some(())
        })
        .await;
        assert!(reached.is_some(), "only {} of {n} orders written", self.order_count(goods_id).await);
    }

    pub async fn db_stock(&self, goods_id: i64) -> i64 {
        let stock: i32 = sqlx::query_scalar("SELECT stock FROM seckill_goods WHERE goods_id = $1")
            .bind(goods_id)
            .fetch_one(&self.db.pool)
            .await
            .unwrap();
        i64::from(stock)
    }

    pub async fn dead_letters(&self) -> u32 {
        let connection = order_service::broker::connect(&SecretString::from(testkit::amqp_url())).await.unwrap();
        let channel = connection.create_channel().await.unwrap();
        let count = self.topology().dead_letters(&channel).await.unwrap();
        order_service::broker::close(&connection, channel).await;
        count
    }

    pub async fn finish(mut self) {
        if let Some(app) = self.order_app.take() {
            app.stop().await;
        }
        for app in self.stock_apps.drain(..) {
            app.stop().await;
        }
        // The payment windows the tests use (other wait queues delete themselves, unused).
        Topology::remove(&self.settings.broker, &[900, 1, 2, 3, 4, 5, 6, 8, 10]).await;
        testkit::clear_redis_prefix(&self.redis, &self.prefix).await;
    }
}

/// A TCP proxy to RabbitMQ that a test can cut, as a network failure would.
pub struct BrokerProxy {
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl BrokerProxy {
    pub async fn start() -> BrokerProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let mut links = JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                links.spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect("127.0.0.1:5672").await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        BrokerProxy { url: format!("amqp://guest:guest@127.0.0.1:{port}/%2f"), task }
    }

    /// Cuts every connection and stops listening.
    pub fn cut(&self) {
        self.task.abort();
    }
}
