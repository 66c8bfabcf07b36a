//! The gateway in front of the real services: the purchase flow, its defences, and input hardening.

mod support;

use contracts::keyspace::Keyspace;
use std::collections::HashMap;

use futures::future::join_all;
use serde_json::json;
use support::{Options, spawn_app};

#[actix_web::test]
async fn the_full_flow_with_a_real_captcha() {
    let app = spawn_app(Options { captcha_test_mode: false, ..Default::default() }).await;
    let goods_id = app.sale(5).await;
    // register → login
    let (status, _) =
        app.post("/api/v1/users/register", None, json!({"username": "alice", "password": "correct horse"})).await;
    assert_eq!(status, 201);
    let (status, session) =
        app.post("/api/v1/users/login", None, json!({"username": "alice", "password": "correct horse"})).await;
    assert_eq!(status, 200);
    let token = session["token"].as_str().unwrap().to_owned();
    let user_id = session["user"]["id"].as_i64().unwrap();
    // the sale is listed and open
    let (_, list) = app.get("/api/v1/seckill/goods", None).await;
    let listed = list["goods"].as_array().unwrap().iter().find(|g| g["goods_id"] == goods_id).unwrap().clone();
    assert_eq!(listed["status"], "open");
    // captcha: a PNG; its answer is in Redis (read it as a human would from the image)
    let mut response = app
        .client
        .get(app.url(&format!("/api/v1/seckill/goods/{goods_id}/captcha")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers().get("content-type").unwrap(), "image/png");
    let png = response.body().await.unwrap();
    assert_eq!(&png[..4], b"\x89PNG");
    let answer: String = {
        let mut conn = app.redis.get().await.unwrap();
        deadpool_redis::redis::cmd("GET")
            .arg(Keyspace::new(&app.prefix).user(user_id).captcha(goods_id))
            .query_async(&mut *conn)
            .await
            .unwrap()
    };
    // path → order → result
    let (status, path) =
        app.post(&format!("/api/v1/seckill/goods/{goods_id}/path"), Some(&token), json!({"captcha": answer})).await;
    assert_eq!(status, 200, "{path}");
    let path = path["path"].as_str().unwrap().to_owned();
    let (status, ticket) =
        app.post(&format!("/api/v1/seckill/goods/{goods_id}/{path}/orders"), Some(&token), json!({})).await;
    assert_eq!((status, ticket["status"].as_str()), (202, Some("queued")), "{ticket}");
    let result = app.final_result(goods_id, &token).await;
    assert_eq!(result["status"], "success", "{result}");
    // Order ids are strings in JSON: they pass 2^53.
    let order_id: i64 = result["order_id"].as_str().unwrap().parse().unwrap();
    let (status, order) = app.get(&format!("/api/v1/orders/{order_id}"), Some(&token)).await;
    assert_eq!((status, order["user_id"].as_i64()), (200, Some(user_id)));
    assert_eq!(order["id"].as_str(), Some(order_id.to_string().as_str()));
    // the captcha was single use
    let (status, body) =
        app.post(&format!("/api/v1/seckill/goods/{goods_id}/path"), Some(&token), json!({"captcha": answer})).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("BAD_CAPTCHA")));
    app.finish().await;
}

#[actix_web::test]
async fn two_thousand_buyers_through_the_gateway_buy_exactly_the_stock() {
    let app = spawn_app(Options::default()).await;
    let goods_id = app.sale(100).await;
    let users = app.users(2_000).await;
    let answers = join_all(users.iter().map(|(_, token)| app.buy(goods_id, token))).await;
    let mut by_status: HashMap<(u16, String), usize> = HashMap::new();
    for (status, body) in &answers {
        let code = body["code"].as_str().unwrap_or(body["status"].as_str().unwrap_or("")).to_owned();
        *by_status.entry((*status, code)).or_default() += 1;
    }
    assert_eq!(by_status.get(&(202, "queued".into())), Some(&100), "{by_status:?}");
    assert_eq!(by_status.get(&(409, "SOLD_OUT".into())), Some(&1_900), "{by_status:?}");
    let audit = app.drained_audit(goods_id).await;
    assert_eq!(audit["ok"], true, "{audit}");
    let goods = &audit["goods"][0];
    assert_eq!(
        (goods["orders"].as_i64(), goods["oversold"].as_i64(), goods["duplicates"].as_i64()),
        (Some(100), Some(0), Some(0))
    );
    app.finish().await;
}

#[actix_web::test]
async fn an_audit_taken_while_the_queue_drains_never_reports_a_violation_that_did_not_happen() {
    // The stock level and the order counts come from two services while workers commit: read
    // carelessly, a commit between the two reads looks like stock that does not add up.
    let mut app = spawn_app(Options::default()).await;
    let goods_id = app.sale(400).await;
    let users = app.users(400).await;
    // First with the worker stopped, so that the drain is surely caught half-way: every unit taken
    // in Redis, every ticket queued, no order in PostgreSQL yet.
    app.stop_worker().await;
    let answers = join_all(users.iter().map(|(_, token)| app.buy(goods_id, token))).await;
    assert!(answers.iter().all(|(status, _)| *status == 202), "{answers:?}");
    let (status, audit) = app.get(&format!("/admin/v1/goods/{goods_id}/audit"), Some(&app.admin_token)).await;
    assert_eq!(status, 200, "{audit}");
    let goods = &audit["goods"][0];
    assert_eq!((goods["drained"].as_bool(), goods["pending_tickets"].as_i64()), (Some(false), Some(400)), "{audit}");
    assert_eq!(audit["ok"], true, "a false violation with every ticket pending: {audit}");
    // Then while the worker drains the queue, audit after audit.
    app.start_worker().await;
    let auditing = async {
        let mut audits = Vec::new();
        let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            assert!(std::time::Instant::now() < until, "the sale never drained: {:?}", audits.last());
            let (status, audit) = app.get(&format!("/admin/v1/goods/{goods_id}/audit"), Some(&app.admin_token)).await;
            assert_eq!(status, 200, "{audit}");
            let done = audit["goods"][0]["drained"] == true && audit["goods"][0]["orders"] == 400;
            audits.push(audit);
            if done {
                return audits;
            }
        }
    };
    let audits = auditing.await;
    for audit in &audits {
        assert_eq!(audit["ok"], true, "a false violation mid-drain: {audit}");
    }
    app.finish().await;
}

#[actix_web::test]
async fn paths_are_single_use_and_personal_and_a_wrong_captcha_gets_no_path() {
    let app = spawn_app(Options { captcha_test_mode: false, ..Default::default() }).await;
    let goods_id = app.sale(10).await;
    let users = app.users(2).await;
    let ((alice, alice_token), (_, bob_token)) = (&users[0], &users[1]);
    // A wrong captcha: 400, and no path exists for alice.
    app.get(&format!("/api/v1/seckill/goods/{goods_id}/captcha"), Some(alice_token)).await;
    let (status, body) = app
        .post(&format!("/api/v1/seckill/goods/{goods_id}/path"), Some(alice_token), json!({"captcha": "nope!"}))
        .await;
    assert_eq!((status, body["code"].as_str()), (400, Some("BAD_CAPTCHA")));
    let path_key = Keyspace::new(&app.prefix).user(*alice).path(goods_id);
    let exists: bool = {
        let mut conn = app.redis.get().await.unwrap();
        deadpool_redis::redis::cmd("EXISTS").arg(&path_key).query_async(&mut *conn).await.unwrap()
    };
    assert!(!exists, "a wrong captcha must not yield a path");
    // A right captcha: a path; bob cannot use it; alice can, once.
    app.get(&format!("/api/v1/seckill/goods/{goods_id}/captcha"), Some(alice_token)).await;
    let answer: String = {
        let mut conn = app.redis.get().await.unwrap();
        deadpool_redis::redis::cmd("GET")
            .arg(Keyspace::new(&app.prefix).user(*alice).captcha(goods_id))
            .query_async(&mut *conn)
            .await
            .unwrap()
    };
    let (_, path) = app
        .post(&format!("/api/v1/seckill/goods/{goods_id}/path"), Some(alice_token), json!({"captcha": answer}))
        .await;
    let path = path["path"].as_str().unwrap().to_owned();
    let order_url = format!("/api/v1/seckill/goods/{goods_id}/{path}/orders");
    let (status, body) = app.post(&order_url, Some(bob_token), json!({})).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("BAD_PATH")), "another user's path");
    let (status, first) = app.post(&order_url, Some(alice_token), json!({})).await;
    assert_eq!(status, 202);
    // Replayed (a load balancer repeating a request a dying gateway never answered), the used
    // path places nothing: it answers with the first attempt's outcome, the same ticket while
    // queued, DUPLICATE_ORDER once the order is written.
    let (status, replay) = app.post(&order_url, Some(alice_token), json!({})).await;
    match status {
        202 => assert_eq!(replay["ticket"], first["ticket"], "{replay}"),
        _ => assert_eq!((status, replay["code"].as_str()), (409, Some("DUPLICATE_ORDER")), "{replay}"),
    }
    assert_eq!(app.final_result(goods_id, alice_token).await["status"], "success");
    let (status, replay) = app.post(&order_url, Some(alice_token), json!({})).await;
    assert_eq!((status, replay["code"].as_str()), (409, Some("DUPLICATE_ORDER")), "a path replayed after the order");
    let audit = app.drained_audit(goods_id).await;
    assert_eq!((audit["goods"][0]["orders"].as_i64(), audit["goods"][0]["holds"].as_i64()), (Some(1), Some(1)));
    // Bob, who bought nothing, still gets 403 for alice's used path.
    let (status, body) = app.post(&order_url, Some(bob_token), json!({})).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("BAD_PATH")), "another user's used path");
    app.finish().await;
}

#[actix_web::test]
async fn forged_tokens_and_wrong_roles_are_refused() {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    let app = spawn_app(Options::default()).await;
    let now = chrono::Utc::now().timestamp();
    let claims = |exp: i64| json!({"sub": "1", "role": "admin", "iss": "seckill", "iat": now, "exp": exp});
    let wrong_key =
        encode(&Header::new(Algorithm::HS256), &claims(now + 600), &EncodingKey::from_secret(b"not the secret"))
            .unwrap();
    let expired = encode(
        &Header::new(Algorithm::HS256),
        &claims(now - 600),
        &EncodingKey::from_secret(app.jwt_secret.as_bytes()),
    )
    .unwrap();
    let b64 = |bytes: &[u8]| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    };
    let alg_none =
        format!("{}.{}.", b64(br#"{"alg":"none","typ":"JWT"}"#), b64(claims(now + 600).to_string().as_bytes()));
    for (name, token) in
        [("wrong key", wrong_key), ("expired", expired), ("alg none", alg_none), ("garbage", "abc".into())]
    {
        let (status, body) = app.get("/admin/v1/audit", Some(&token)).await;
        assert_eq!((status, body["code"].as_str()), (401, Some("UNAUTHORIZED")), "{name}");
    }
    let (status, _) = app.get("/admin/v1/audit", None).await;
    assert_eq!(status, 401);
    let buyer = &app.users(1).await[0].1;
    let (status, body) = app.get("/admin/v1/audit", Some(buyer)).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("FORBIDDEN")));
    app.finish().await;
}

#[actix_web::test]
async fn a_user_over_the_limit_gets_429_with_retry_after() {
    let limits = gateway::settings::LimitSettings {
        brush_limit: 5,
        per_user_per_sec: 100,
        per_user_burst: 100,
        ..Options::default().limits
    };
    let app = spawn_app(Options { limits, ..Default::default() }).await;
    let goods_id = app.sale(10).await;
    let token = &app.users(1).await[0].1;
    for _ in 0..5 {
        let (status, _) = app.path(goods_id, token).await;
        assert_eq!(status, 200);
    }
    let mut response = app
        .client
        .post(app.url(&format!("/api/v1/seckill/goods/{goods_id}/path")))
        .bearer_auth(token)
        .send_json(&json!({"captcha": support::TEST_ANSWER}))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 429);
    let retry_after: u64 = response.headers().get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=5).contains(&retry_after), "{retry_after}");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "RATE_LIMITED");
    app.finish().await;
}

#[actix_web::test]
async fn after_sell_out_the_flag_answers_without_any_rpc_and_a_restock_clears_it() {
    use contracts::stock::{ReleaseOutcome, ReleaseScope};
    let app = spawn_app(Options::default()).await;
    let goods_id = app.sale(1).await;
    let users = app.users(12).await;
    // Someone holds the only unit (reserved directly: an order in the making).
    let ticket = uuid::Uuid::new_v4();
    let stock = app.stock_client.clone();
    stock.reserve(goods_id, users[0].0, ticket).await.unwrap();
    let (status, body) = app.buy(goods_id, &users[1].1).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("SOLD_OUT")), "learned from stock-service");
    let place_calls = app.state.counters.place_calls();
    for (_, token) in &users[2..11] {
        let url = format!("/api/v1/seckill/goods/{goods_id}/{}/orders", uuid::Uuid::new_v4());
        let (status, body) = app.post(&url, Some(token), json!({})).await;
        assert_eq!((status, body["code"].as_str()), (409, Some("SOLD_OUT")));
    }
    assert_eq!(app.state.counters.place_calls(), place_calls, "no order RPC after the sell-out");
    assert_eq!(app.state.counters.sold_out_answers(), 9);
    // The unit comes back: stock-service announces it and the flag clears.
    assert_eq!(
        stock.release(goods_id, users[0].0, ticket, ReleaseScope::Unclaimed).await,
        Ok(ReleaseOutcome::Released)
    );
    let cleared = testkit::wait_for(std::time::Duration::from_secs(10), || async {
        (!app.state.is_sold_out(goods_id)).then_some(())
    })
    .await;
    assert!(cleared.is_some(), "the restock notification must clear the flag");
    let (status, _) = app.buy(goods_id, &users[11].1).await;
    assert_eq!(status, 202);
    app.finish().await;
}

#[actix_web::test]
async fn with_the_sold_out_flag_switched_off_every_attempt_after_the_sell_out_reaches_order_service() {
    let app = spawn_app(Options::default()).await;
    let mut rules = platform::rules::Rules::default();
    rules.switches.sold_out_flag_off = true;
    let store =
        platform::rules::RuleStore::new(app.redis.clone(), contracts::keyspace::Keyspace::new(&app.prefix).rules());
    store.change(0, rules, "user:1").await.unwrap();
    let followed = testkit::wait_for(std::time::Duration::from_secs(10), || async {
        (app.get("/healthz", None).await.1["rules_version"] == 1).then_some(())
    })
    .await;
    assert!(followed.is_some(), "the gateway follows the switch");
    let goods_id = app.sale(1).await;
    let users = app.users(6).await;
    assert_eq!(app.buy(goods_id, &users[0].1).await.0, 202);
    let place_calls = app.state.counters.place_calls();
    for (_, token) in &users[1..] {
        let (status, body) = app.buy(goods_id, token).await;
        assert_eq!((status, body["code"].as_str()), (409, Some("SOLD_OUT")), "stock-service still says so");
    }
    assert!(!app.state.is_sold_out(goods_id), "no flag is in use");
    assert_eq!(app.state.counters.place_calls(), place_calls + 5, "every attempt made the order RPC");
    assert_eq!(app.state.counters.sold_out_answers(), 0);
    app.finish().await;
}

#[actix_web::test]
async fn without_captcha_and_path_a_script_orders_with_no_captcha_and_a_made_up_path() {
    let without = gateway::settings::Without { captcha_and_path: true, ..Default::default() };
    let app = spawn_app(Options { captcha_test_mode: false, without, ..Options::default() }).await;
    let goods_id = app.sale(5).await;
    let users = app.users(2).await;
    let url = format!("/api/v1/seckill/goods/{goods_id}/anything/orders");
    let (status, body) = app.post(&url, Some(&users[0].1), json!({})).await;
    assert_eq!(status, 202, "{body}");
    let (status, body) =
        app.post(&format!("/api/v1/seckill/goods/{goods_id}/path"), Some(&users[1].1), json!({"captcha": "?"})).await;
    assert_eq!(status, 200, "a path without a captcha answer: {body}");
    app.finish().await;
}

#[actix_web::test]
async fn client_mistakes_are_4xx_problems_never_500() {
    let app = spawn_app(Options::default()).await;
    let token = &app.users(1).await[0].1;
    let problem = |headers: &actix_web::http::header::HeaderMap| {
        headers.get("content-type").map(|v| v.to_str().unwrap().to_owned())
    };
    // malformed JSON
    let mut response = app
        .client
        .post(app.url("/api/v1/users/login"))
        .content_type("application/json")
        .send_body("{not json")
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(problem(response.headers()).as_deref(), Some("application/problem+json"));
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "VALIDATION");
    // too large
    let huge = json!({"username": "x".repeat(100_000), "password": "y"});
    let (status, body) = app.post("/api/v1/users/login", None, huge).await;
    assert_eq!((status, body["code"].as_str()), (413, Some("TOO_LARGE")));
    // unknown route, unknown goods, non-numeric id
    let (status, body) = app.get("/api/v1/nothing-here", None).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("NOT_FOUND")));
    let (status, _) = app.get("/api/v1/seckill/goods/999999", None).await;
    assert_eq!(status, 404);
    let (status, _) = app.get("/api/v1/seckill/goods/abc", None).await;
    assert_eq!(status, 404);
    // wrong method
    let (status, body) = app.get("/api/v1/users/login", None).await;
    assert_eq!((status, body["code"].as_str()), (405, Some("METHOD_NOT_ALLOWED")));
    // invalid registration
    let (status, body) = app.post("/api/v1/users/register", None, json!({"username": "a", "password": "short"})).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("VALIDATION")));
    // ordering an unknown goods with a made-up path
    let (status, _) = app.post("/api/v1/seckill/goods/424242/not-a-path/orders", Some(token), json!({})).await;
    assert_eq!(status, 403);
    // invalid goods (ends before it starts)
    let now = chrono::Utc::now();
    let bad = json!({"name": "x", "price_cents": 1, "seckill_price_cents": 1, "stock": 1, "start_at": now, "end_at": now - chrono::Duration::hours(1)});
    let (status, body) = app.post("/admin/v1/goods", Some(&app.admin_token), bad).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("VALIDATION")));
    // a purchase strategy that does not exist
    let unknown = json!({"name": "x", "price_cents": 1, "seckill_price_cents": 1, "stock": 1, "start_at": now,
        "end_at": now + chrono::Duration::hours(1), "strategy": "first_come_first_served"});
    let (status, body) = app.post("/admin/v1/goods", Some(&app.admin_token), unknown).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("VALIDATION")), "{body}");
    assert!(body["detail"].as_str().unwrap_or_default().contains("lua_mq"), "the error names the strategies: {body}");
    // stock buckets out of range, or with a strategy that does not reserve in Redis
    for (buckets, strategy) in [(0, "lua_mq"), (65, "lua_mq"), (4, "db_for_update"), (-1, "lua_mq")] {
        let bad = json!({"name": "x", "price_cents": 1, "seckill_price_cents": 1, "stock": 1, "start_at": now,
            "end_at": now + chrono::Duration::hours(1), "strategy": strategy, "buckets": buckets});
        let (status, body) = app.post("/admin/v1/goods", Some(&app.admin_token), bad).await;
        assert_eq!((status, body["code"].as_str()), (400, Some("VALIDATION")), "{buckets} {strategy}: {body}");
    }
    app.finish().await;
}

#[actix_web::test]
async fn the_openapi_document_matches_the_routes() {
    let app = spawn_app(Options::default()).await;
    let (status, doc) = app.get("/openapi.json", None).await;
    assert_eq!(status, 200);
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    documented.sort();
    let mut served = vec![
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/openapi.json"),
        ("POST", "/api/v1/users/register"),
        ("POST", "/api/v1/users/login"),
        ("GET", "/api/v1/seckill/goods"),
        ("GET", "/api/v1/seckill/goods/{goods_id}"),
        ("GET", "/api/v1/seckill/goods/{goods_id}/captcha"),
        ("POST", "/api/v1/seckill/goods/{goods_id}/path"),
        ("POST", "/api/v1/seckill/goods/{goods_id}/{path}/orders"),
        ("GET", "/api/v1/seckill/goods/{goods_id}/result"),
        ("GET", "/api/v1/orders"),
        ("GET", "/api/v1/orders/{order_id}"),
        ("POST", "/api/v1/orders/{order_id}/pay"),
        ("POST", "/api/v1/orders/{order_id}/cancel"),
        ("POST", "/api/v1/payments/webhook"),
        ("POST", "/admin/v1/goods"),
        ("POST", "/admin/v1/goods/{goods_id}/warmup"),
        ("GET", "/admin/v1/goods/{goods_id}/stats"),
        ("GET", "/admin/v1/goods/{goods_id}/audit"),
        ("GET", "/admin/v1/audit"),
        ("POST", "/admin/v1/users/bulk"),
        ("GET", "/admin/v1/blacklist"),
        ("DELETE", "/admin/v1/blacklist/{kind}/{id}"),
    ]
    .into_iter()
    .map(|(m, p)| (m.to_owned(), p.to_owned()))
    .collect::<Vec<_>>();
    served.sort();
    assert_eq!(documented, served);
    // And every documented operation is really routed: no "no such route", no 405.
    for (method, path) in &documented {
        let concrete = path
            .replace("{goods_id}", "1")
            .replace("{order_id}", "1")
            .replace("{path}", "x")
            .replace("{kind}", "user")
            .replace("{id}", "1");
        let request = app.client.request(method.parse().unwrap(), app.url(&concrete));
        let mut response = request.send().await.unwrap();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        let status = response.status().as_u16();
        assert!(status != 405 && body["detail"] != "no such route", "{method} {path}: {status} {body}");
    }
    app.finish().await;
}

#[actix_web::test]
async fn health_and_readiness_report_the_truth() {
    let app = spawn_app(Options::default()).await;
    let (status, health) = app.get("/healthz", None).await;
    assert_eq!((status, health["captcha_test_mode"].as_bool()), (200, Some(true)));
    let (status, ready) = app.get("/readyz", None).await;
    assert_eq!((status, ready["ready"].as_bool()), (200, Some(true)), "{ready}");
    // /metrics is not on the public listener (its labels name every RPC node) but on its own.
    let (status, _) = app.get("/metrics", None).await;
    assert_eq!(status, 404);
    let response = app.client.get(&app.metrics_url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    app.finish().await;
}
