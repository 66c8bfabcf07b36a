//! The whole system for one test: every service and a worker in-process, each test with its own
//! database, Redis prefix and RabbitMQ names, and the gateway in front.

#![allow(dead_code, unreachable_pub)]

use platform::redis::RedisSettings;
use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::web;
use awc::Client;
use chrono::Utc;
use contracts::stock::StockServiceClient;
use gateway::settings::{CaptchaSettings, LimitSettings, SignInLimits};
use gateway::state::AppState;
use platform::auth::JwtSettings;
use platform::env::Environment;
use platform::node::NodeSettings;
use platform::registry::{RegistryKind, RegistrySettings};
use secrecy::SecretString;
use serde_json::{Value, json};
use testkit::TestDb;

pub const TEST_ANSWER: &str = "k6-test";

pub struct Options {
    pub captcha_test_mode: bool,
    pub limits: LimitSettings,
    pub sign_in: SignInLimits,
    pub without: gateway::settings::Without,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            captcha_test_mode: true,
            limits: LimitSettings {
                global_per_sec: 1_000_000,
                per_ip_per_sec: 1_000_000,
                per_user_per_sec: 100,
                per_user_burst: 100,
                brush_limit: 100,
                ..Default::default()
            },
            sign_in: SignInLimits { per_ip_per_minute: 10_000, ..Default::default() },
            without: Default::default(),
        }
    }
}

pub struct TestApp {
    pub base: String,
    /// The gateway's `/metrics`, on its own listener.
    pub metrics_url: String,
    /// A client of the test's stock-service, for arranging what a test needs directly.
    pub stock_client: StockServiceClient,
    pub client: Client,
    pub state: web::Data<AppState>,
    pub redis: deadpool_redis::Pool,
    pub prefix: String,
    pub jwt_secret: String,
    pub admin_token: String,
    db: TestDb,
    http: gateway::Running,
    user: Option<user_service::Application>,
    stock: Option<stock_service::Application>,
    order: Option<order_service::Application>,
    worker: Option<order_service::WorkerApplication>,
    /// order-service's settings, the broker's among them: what a restarted worker is built from.
    worker_settings: order_service::Settings,
}

pub async fn spawn_app(options: Options) -> TestApp {
    let db = TestDb::create().await;
    let prefix = testkit::unique_name();
    let jwt_secret = format!("secret-{prefix}");
    let jwt = JwtSettings { secret: SecretString::from(jwt_secret.clone()), ..Default::default() };
    let node = || NodeSettings::listening("127.0.0.1:0", None);

    let user = user_service::Application::build(user_service::Settings {
        node: node(),
        registry: testkit::static_registry(),
        database: db.settings(),
        jwt: jwt.clone(),
        admin: user_service::settings::AdminBootstrap {
            username: "admin".into(),
            password: Some(SecretString::from("admin-password")),
        },
        ..Default::default()
    })
    .await
    .expect("user-service starts");
    let stock = stock_service::Application::build(stock_service::Settings {
        node: node(),
        registry: testkit::static_registry(),
        database: db.settings(),
        redis: RedisSettings::with_prefix(&prefix),
        without: Default::default(),
        ..Default::default()
    })
    .await
    .expect("stock-service starts");
    let mut endpoints = BTreeMap::from([
        ("userservice".to_owned(), vec![user.address().to_string()]),
        ("stockservice".to_owned(), vec![stock.address().to_string()]),
    ]);
    let registry = |endpoints: &BTreeMap<String, Vec<String>>| RegistrySettings {
        kind: RegistryKind::Static,
        endpoints: endpoints.clone(),
        ..Default::default()
    };
    let mut order_settings = order_service::Settings {
        node: node(),
        registry: registry(&endpoints),
        database: db.settings(),
        redis: RedisSettings::with_prefix(&prefix),
        ..Default::default()
    };
    order_settings.broker.prefix = prefix.clone();
    order_settings.reconciler.enabled = false;
    // Payments through the sandbox provider (a simulator), calling back this gateway's webhook:
    // the gateway's port is chosen now, since order-service starts first.
    let gateway_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    order_settings.node.env = Environment::Development;
    order_settings.payment.provider = order_service::settings::ProviderKind::Sandbox;
    order_settings.payment.sandbox.webhook_url = format!("http://127.0.0.1:{gateway_port}/api/v1/payments/webhook");
    let order = order_service::Application::build(order_settings.clone()).await.expect("order-service starts");
    let worker = order_service::WorkerApplication::build(order_settings.clone()).await.expect("worker starts");
    endpoints.insert("orderservice".to_owned(), vec![order.address().to_string()]);

    let settings = gateway::Settings {
        env: Environment::Development,
        listen: format!("127.0.0.1:{gateway_port}"),
        metrics_listen: "127.0.0.1:0".parse().ok(),
        workers: Some(2),
        registry: registry(&endpoints),
        redis: RedisSettings::with_prefix(&prefix),
        jwt,
        captcha: CaptchaSettings {
            test_answer: options.captcha_test_mode.then(|| TEST_ANSWER.to_owned()),
            ..Default::default()
        },
        limits: options.limits,
        sign_in: options.sign_in,
        goods_cache_ttl: Duration::from_millis(100),
        without: options.without,
        ..Default::default()
    };
    let app = gateway::Application::build(settings).await.expect("gateway starts");
    let base = format!("http://127.0.0.1:{}", app.port());
    let metrics_url = format!("http://127.0.0.1:{}/metrics", app.metrics_port().expect("metrics are served"));
    let state = app.state();
    let http = app.spawn();
    let client = Client::builder().timeout(Duration::from_secs(30)).finish();
    let stock_client =
        StockServiceClient::new(testkit::channel(stock.address())).with_credential(testkit::as_service());
    let mut test = TestApp {
        base,
        metrics_url,
        stock_client,
        client,
        state,
        redis: testkit::redis_pool().await,
        prefix: prefix.clone(),
        jwt_secret,
        admin_token: String::new(),
        db,
        http,
        user: Some(user),
        stock: Some(stock),
        order: Some(order),
        worker: Some(worker),
        worker_settings: order_settings.clone(),
    };
    let (status, session) =
        test.post("/api/v1/users/login", None, json!({"username": "admin", "password": "admin-password"})).await;
    assert_eq!(status, 200, "{session}");
    test.admin_token = session["token"].as_str().unwrap().to_owned();
    test
}

impl TestApp {
    /// The test's database.
    pub fn db_pool(&self) -> sqlx::PgPool {
        self.db.pool.clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let mut response = request.send().await.expect("request sent");
        let body = response.body().limit(10 << 20).await.unwrap_or_default();
        (response.status().as_u16(), serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut request = self.client.post(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let mut response = request.send_json(&body).await.expect("request sent");
        let body = response.body().limit(10 << 20).await.unwrap_or_default();
        (response.status().as_u16(), serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// `POST` with an `Idempotency-Key`.
    pub async fn post_idempotent(&self, path: &str, token: &str, key: &str, body: Value) -> (u16, Value) {
        let request = self.client.post(self.url(path)).bearer_auth(token).insert_header(("Idempotency-Key", key));
        let mut response = request.send_json(&body).await.expect("request sent");
        let body = response.body().limit(10 << 20).await.unwrap_or_default();
        (response.status().as_u16(), serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// Creates and warms up a sale of `stock` units, open now.
    pub async fn sale(&self, stock: i32) -> i64 {
        self.sale_with_window(stock, 900).await
    }

    /// Creates and warms up a sale of `stock` units, open now, whose orders wait
    /// `payment_window_secs` for their payment.
    pub async fn sale_with_window(&self, stock: i32, payment_window_secs: u32) -> i64 {
        let now = Utc::now();
        let body = json!({
            "name": "Flash phone", "price_cents": 99900, "seckill_price_cents": 100, "stock": stock,
            "start_at": now - chrono::Duration::minutes(1), "end_at": now + chrono::Duration::hours(1),
            "payment_window_secs": payment_window_secs,
        });
        let (status, goods) = self.post("/admin/v1/goods", Some(&self.admin_token), body).await;
        assert_eq!(status, 201, "{goods}");
        let goods_id = goods["goods_id"].as_i64().unwrap();
        let (status, warmed) =
            self.post(&format!("/admin/v1/goods/{goods_id}/warmup"), Some(&self.admin_token), json!({})).await;
        assert_eq!(status, 200, "{warmed}");
        goods_id
    }

    /// `count` load-test users: (id, token).
    pub async fn users(&self, count: u32) -> Vec<(i64, String)> {
        let prefix = format!("u{}_", testkit::unique_name());
        let (status, body) =
            self.post("/admin/v1/users/bulk", Some(&self.admin_token), json!({"prefix": prefix, "count": count})).await;
        assert_eq!(status, 201, "{body}");
        body["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| (u["id"].as_i64().unwrap(), u["token"].as_str().unwrap().to_owned()))
            .collect()
    }

    /// captcha (test answer) → path.
    pub async fn path(&self, goods_id: i64, token: &str) -> (u16, Value) {
        self.post(&format!("/api/v1/seckill/goods/{goods_id}/path"), Some(token), json!({"captcha": TEST_ANSWER})).await
    }

    /// One complete purchase attempt: path then order. Returns the order answer.
    pub async fn buy(&self, goods_id: i64, token: &str) -> (u16, Value) {
        let (status, path) = self.path(goods_id, token).await;
        if status != 200 {
            return (status, path);
        }
        let path = path["path"].as_str().unwrap().to_owned();
        self.post(&format!("/api/v1/seckill/goods/{goods_id}/{path}/orders"), Some(token), json!({})).await
    }

    /// Polls the result until it is final.
    pub async fn final_result(&self, goods_id: i64, token: &str) -> Value {
        let result = testkit::wait_for(Duration::from_secs(30), || async {
            let (status, body) = self.get(&format!("/api/v1/seckill/goods/{goods_id}/result"), Some(token)).await;
            (status == 200 && body["status"] != "queued").then_some(body)
        })
        .await;
        result.expect("the result never became final")
    }

    /// Waits until the audit of `goods_id` reports every ticket settled, and returns it.
    pub async fn drained_audit(&self, goods_id: i64) -> Value {
        let audit = testkit::wait_for(Duration::from_secs(60), || async {
            let (status, body) = self.get(&format!("/admin/v1/goods/{goods_id}/audit"), Some(&self.admin_token)).await;
            (status == 200 && body["goods"][0]["drained"] == true).then_some(body)
        })
        .await;
        audit.expect("the sale never drained")
    }

    /// Stops the order worker (cleanly): accepted tickets wait in the queue.
    pub async fn stop_worker(&mut self) {
        if let Some(worker) = self.worker.take() {
            worker.stop().await;
        }
    }

    /// Starts an order worker again after [`TestApp::stop_worker`].
    pub async fn start_worker(&mut self) {
        let worker = order_service::WorkerApplication::build(self.worker_settings.clone())
            .await
            .expect("the worker starts again");
        self.worker = Some(worker);
    }

    pub async fn finish(mut self) {
        self.http.stop(true).await;
        if let Some(worker) = self.worker.take() {
            worker.stop().await;
        }
        if let Some(app) = self.order.take() {
            app.stop().await;
        }
        if let Some(app) = self.stock.take() {
            app.stop().await;
        }
        if let Some(app) = self.user.take() {
            app.stop().await;
        }
        // The payment windows the tests use (other wait queues delete themselves, unused).
        order_service::broker::Topology::remove(&self.worker_settings.broker, &[900, 1, 2, 3, 4, 5, 6, 8, 10]).await;
        testkit::clear_redis_prefix(&self.redis, &self.prefix).await;
    }
}
