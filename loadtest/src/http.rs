//! The gateway's HTTP API as the load drivers use it: an admin who sets up sales and buyers, and
//! the purchase (path, then order) a buyer makes.

use chrono::Utc;
use contracts::stock::PurchaseStrategy;
use serde_json::{Value, json};

/// An answer of the gateway.
#[derive(Clone, Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// The JSON body (null if none).
    pub body: Value,
    /// Whether it carried `Retry-After`.
    pub retry_after: bool,
}

impl Reply {
    /// The problem code of a refusal (`SOLD_OUT`, ...), if any.
    pub fn code(&self) -> Option<&str> {
        self.body["code"].as_str()
    }
}

/// A client of one gateway, holding an admin's bearer token.
#[derive(Clone)]
pub struct Http {
    /// The HTTP client (its connection pool is shared by every clone).
    pub client: reqwest::Client,
    /// The gateway's base URL.
    pub base: String,
    /// An admin's bearer token.
    pub admin: String,
}

impl Http {
    /// A client of the gateway at `base`, logged in as the admin `username`.
    pub async fn login(client: reqwest::Client, base: &str, username: &str, password: &str) -> anyhow::Result<Http> {
        let mut http = Http { client, base: base.trim_end_matches('/').to_owned(), admin: String::new() };
        let (status, body) =
            http.post("/api/v1/users/login", "", json!({"username": username, "password": password})).await?;
        anyhow::ensure!(status == 200, "admin login: {status} {body}");
        http.admin = body["token"].as_str().unwrap_or_default().to_owned();
        Ok(http)
    }

    /// POSTs `body` with `token` (none if empty): the status and the JSON answer (null if none).
    pub async fn post(&self, path: &str, token: &str, body: Value) -> anyhow::Result<(u16, Value)> {
        let reply = self.post_reply(path, token, body).await?;
        Ok((reply.status, reply.body))
    }

    /// [`Http::post`], keeping whether the answer said when to come back.
    pub async fn post_reply(&self, path: &str, token: &str, body: Value) -> anyhow::Result<Reply> {
        let mut request = self.client.post(format!("{}{path}", self.base)).json(&body);
        if !token.is_empty() {
            request = request.bearer_auth(token);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let retry_after = response.headers().contains_key(reqwest::header::RETRY_AFTER);
        Ok(Reply { status, retry_after, body: response.json().await.unwrap_or(Value::Null) })
    }

    /// GETs `path` with `token`: the status and the JSON answer (null if none).
    pub async fn get(&self, path: &str, token: &str) -> anyhow::Result<(u16, Value)> {
        let response = self.client.get(format!("{}{path}", self.base)).bearer_auth(token).send().await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    /// Creates `count` buyers (new names every call) and returns their bearer tokens.
    pub async fn users(&self, count: u32) -> anyhow::Result<Vec<String>> {
        let mut tokens = Vec::with_capacity(count as usize);
        // The bulk endpoint takes at most 20,000 users per call.
        for chunk in 0..count.div_ceil(20_000) {
            let prefix = format!("bench{}_{chunk}_", &uuid::Uuid::new_v4().simple().to_string()[..8]);
            let n = (count - chunk * 20_000).min(20_000);
            let (status, body) =
                self.post("/admin/v1/users/bulk", &self.admin, json!({"prefix": prefix, "count": n})).await?;
            anyhow::ensure!(status == 201, "bulk users: {status} {body}");
            tokens.extend(
                body["users"].as_array().into_iter().flatten().filter_map(|u| u["token"].as_str().map(str::to_owned)),
            );
        }
        Ok(tokens)
    }

    /// Creates a sale of `stock` units, open for an hour, and warms it up: its goods id.
    pub async fn sale(&self, stock: i32) -> anyhow::Result<i64> {
        self.sale_bought_by(stock, PurchaseStrategy::LuaMq).await
    }

    /// [`Http::sale`], its purchases taking their unit by `strategy`.
    pub async fn sale_bought_by(&self, stock: i32, strategy: PurchaseStrategy) -> anyhow::Result<i64> {
        self.create_sale(stock, strategy, 1).await
    }

    /// [`Http::sale`], its units split into `buckets` Redis stock buckets.
    pub async fn sale_in_buckets(&self, stock: i32, buckets: u16) -> anyhow::Result<i64> {
        self.create_sale(stock, PurchaseStrategy::LuaMq, buckets).await
    }

    /// [`Http::sale`], its orders waiting `payment_window_secs` for their payment.
    pub async fn sale_with_window(&self, stock: i32, payment_window_secs: u32) -> anyhow::Result<i64> {
        self.create_sale_with(stock, PurchaseStrategy::LuaMq, 1, payment_window_secs).await
    }

    async fn create_sale(&self, stock: i32, strategy: PurchaseStrategy, buckets: u16) -> anyhow::Result<i64> {
        self.create_sale_with(stock, strategy, buckets, contracts::stock::DEFAULT_PAYMENT_WINDOW_SECS).await
    }

    async fn create_sale_with(
        &self,
        stock: i32,
        strategy: PurchaseStrategy,
        buckets: u16,
        payment_window_secs: u32,
    ) -> anyhow::Result<i64> {
        let now = Utc::now();
        let goods = json!({"name": format!("Sale by {} in {buckets} bucket(s)", strategy.name()), "price_cents": 100,
            "seckill_price_cents": 1, "stock": stock, "strategy": strategy, "buckets": buckets,
            "payment_window_secs": payment_window_secs,
            "start_at": now - chrono::Duration::minutes(1), "end_at": now + chrono::Duration::hours(1)});
        let (status, body) = self.post("/admin/v1/goods", &self.admin, goods).await?;
        anyhow::ensure!(status == 201, "create goods: {status} {body}");
        let goods_id = body["goods_id"].as_i64().unwrap_or_default();
        let (status, body) = self.post(&format!("/admin/v1/goods/{goods_id}/warmup"), &self.admin, json!({})).await?;
        anyhow::ensure!(status == 200, "warm up: {status} {body}");
        Ok(goods_id)
    }

    /// path, then order (the captcha in the gateway's test mode, `k6-test`): the answer of the
    /// last step made.
    pub async fn buy(&self, goods_id: i64, token: &str) -> anyhow::Result<Reply> {
        self.buy_routed(goods_id, token, || self.clone()).await
    }

    /// [`Http::buy`], its path request here and its order request sent to `next()` (asked when
    /// it is sent: a load balancer routes each request).
    pub async fn buy_routed(&self, goods_id: i64, token: &str, next: impl FnOnce() -> Http) -> anyhow::Result<Reply> {
        let path = self
            .post_reply(&format!("/api/v1/seckill/goods/{goods_id}/path"), token, json!({"captcha": "k6-test"}))
            .await?;
        if path.status != 200 {
            return Ok(path);
        }
        let path = path.body["path"].as_str().unwrap_or_default();
        next().post_reply(&format!("/api/v1/seckill/goods/{goods_id}/{path}/orders"), token, json!({})).await
    }

    /// The buyer's order of `goods_id` (as a string id), once its ticket settled as a success.
    pub async fn order_of(&self, goods_id: i64, token: &str) -> anyhow::Result<Option<String>> {
        for _ in 0..600 {
            let (status, body) = self.get(&format!("/api/v1/seckill/goods/{goods_id}/result"), token).await?;
            anyhow::ensure!(status == 200, "result: {status} {body}");
            match body["status"].as_str() {
                Some("queued") => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
                Some("success") => return Ok(body["order_id"].as_str().map(str::to_owned)),
                _ => return Ok(None),
            }
        }
        anyhow::bail!("the ticket never settled")
    }

    /// Pays an order through the payment provider (a fresh Idempotency-Key): the payment's status.
    pub async fn pay(&self, order_id: &str, token: &str) -> anyhow::Result<String> {
        let response = self
            .client
            .post(format!("{}/api/v1/orders/{order_id}/pay", self.base))
            .bearer_auth(token)
            .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
            .send()
            .await?;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        anyhow::ensure!(status == 202, "pay: {status} {body}");
        Ok(body["status"].as_str().unwrap_or_default().to_owned())
    }

    /// The buyer's result for `goods_id`: `queued`, `success`, `failed`, `sold_out` or `none`.
    pub async fn result(&self, goods_id: i64, token: &str) -> anyhow::Result<String> {
        let (status, body) = self.get(&format!("/api/v1/seckill/goods/{goods_id}/result"), token).await?;
        anyhow::ensure!(status == 200, "result: {status} {body}");
        Ok(body["status"].as_str().unwrap_or_default().to_owned())
    }
}
