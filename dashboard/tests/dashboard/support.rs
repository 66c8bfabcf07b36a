//! A stack and a dashboard over it, and a client of the dashboard's API.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use dashboard::settings::BrokerSettings;
use loadtest::sandbox::{FullStack, StackOptions, StockNodes};
use platform::registry::{RegistryKind, RegistrySettings};
use secrecy::SecretString;
use serde_json::Value;

/// The system and its dashboard.
pub struct TestStack {
    pub stack: FullStack,
    /// The dashboard's base URL.
    pub dashboard: String,
    pub client: reqwest::Client,
    server: actix_web::dev::ServerHandle,
}

impl TestStack {
    /// `gateways` gateways, two stock-service nodes, the dashboard reading all of it.
    pub async fn start(gateways: usize) -> TestStack {
        TestStack::start_with(gateways, |_| {}).await
    }

    /// [`TestStack::start`], the dashboard's settings changed by `tweak`.
    pub async fn start_with(gateways: usize, tweak: impl FnOnce(&mut dashboard::Settings)) -> TestStack {
        let options =
            StackOptions { gateways, stock: StockNodes { instances: 2, ..Default::default() }, ..Default::default() };
        let stack = FullStack::start(options).await.expect("the stack starts");
        let endpoints = BTreeMap::from([
            ("userservice".to_owned(), stack.user_endpoints()),
            ("stockservice".to_owned(), stack.stock_endpoints()),
            ("orderservice".to_owned(), stack.order_endpoints()),
        ]);
        let mut settings = dashboard::Settings {
            env: platform::env::Environment::Development,
            listen: "127.0.0.1:0".into(),
            registry: RegistrySettings { kind: RegistryKind::Static, endpoints, ..Default::default() },
            redis: platform::redis::RedisSettings::with_prefix(&stack.sandbox.prefix),
            database: stack.sandbox.db.settings(),
            broker: BrokerSettings {
                url: SecretString::from(testkit::amqp_url()),
                management_url: None,
                prefix: stack.sandbox.order_settings.broker.prefix.clone(),
            },
            jwt: stack.jwt.clone(),
            gateway_url: stack.base_url.clone(),
            // One process renders one registry: every gateway's endpoint shows all of it.
            scrape: BTreeMap::from([("gateway".to_owned(), vec![stack.metrics_urls[0].clone()])]),
            interval: Duration::from_millis(500),
            ..Default::default()
        };
        tweak(&mut settings);
        let app = dashboard::Application::build(settings).await.expect("the dashboard starts");
        let dashboard = format!("http://127.0.0.1:{}", app.port());
        let server = app.spawn();
        TestStack { stack, dashboard, client: reqwest::Client::new(), server }
    }

    /// GETs a dashboard API path as the stack's admin.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.dashboard))
            .bearer_auth(&self.stack.admin_token)
            .send()
            .await
            .expect("the dashboard answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// PUTs `body` to a dashboard API path as the stack's admin.
    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .client
            .put(format!("{}{path}", self.dashboard))
            .bearer_auth(&self.stack.admin_token)
            .json(&body)
            .send()
            .await
            .expect("the dashboard answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The latest snapshot, once the first gathering is done.
    pub async fn snapshot(&self) -> Value {
        testkit::wait_for(Duration::from_secs(10), || async {
            let (status, body) = self.get("/api/snapshot").await;
            (status == 200 && body.is_object()).then_some(body)
        })
        .await
        .expect("a snapshot within 10 s")
    }

    /// Polls snapshots until `check` finds what it waits for (at most `limit`).
    pub async fn snapshot_until(&self, limit: Duration, check: impl Fn(&Value) -> bool) -> Option<Value> {
        testkit::wait_for(limit, || async {
            let snapshot = self.snapshot().await;
            check(&snapshot).then_some(snapshot)
        })
        .await
    }

    /// The live rules version each gateway reports on `/healthz`.
    pub async fn gateway_rules_versions(&self) -> Vec<u64> {
        let mut versions = Vec::new();
        for base in &self.stack.base_urls {
            let body: Value = self.client.get(format!("{base}/healthz")).send().await.unwrap().json().await.unwrap();
            versions.push(body["rules_version"].as_u64().expect("healthz reports the rules version"));
        }
        versions
    }

    /// The statuses of `attempts` path requests made at once by one new buyer on gateway `index`.
    pub async fn path_statuses(&self, index: usize, goods_id: i64, attempts: usize) -> Vec<u16> {
        let http = loadtest::http::Http {
            client: self.client.clone(),
            base: self.stack.base_urls[index].clone(),
            admin: self.stack.admin_token.clone(),
        };
        let token = http.users(1).await.expect("a buyer").remove(0);
        let mut statuses = Vec::new();
        for _ in 0..attempts {
            let path = format!("/api/v1/seckill/goods/{goods_id}/path");
            let reply = http.post_reply(&path, &token, serde_json::json!({"captcha": "k6-test"})).await.unwrap();
            statuses.push(reply.status);
        }
        statuses
    }

    /// An HTTP client of the first gateway as the admin.
    pub fn gateway(&self) -> loadtest::http::Http {
        loadtest::http::Http {
            client: self.client.clone(),
            base: self.stack.base_url.clone(),
            admin: self.stack.admin_token.clone(),
        }
    }

    /// Stops everything.
    pub async fn finish(self) {
        self.server.stop(true).await;
        self.stack.finish().await;
    }
}

/// The goods `goods_id` in a snapshot.
pub fn goods(snapshot: &Value, goods_id: i64) -> Option<&Value> {
    snapshot["goods"]["ok"].as_array()?.iter().find(|g| g["goods_id"].as_i64() == Some(goods_id))
}
