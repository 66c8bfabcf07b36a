//! Abuse limits through the real gateway, on real Redis: password guessing, sign-in floods from
//! one IP, bounded metric labels, the blacklist and its admin API, and built-in secrets refused.

mod support;

use std::time::Duration;

use awc::http::Method;
use gateway::settings::{LimitSettings, SignInLimits};
use serde_json::json;
use support::{Options, spawn_app};

#[actix_web::test]
async fn a_password_guessing_run_on_one_username_is_stopped_with_429() {
    let sign_in = SignInLimits { per_ip_per_minute: 1_000, failures_per_username: 10, ..Default::default() };
    let app = spawn_app(Options { sign_in, ..Default::default() }).await;
    let (status, _) =
        app.post("/api/v1/users/register", None, json!({"username": "alice", "password": "correct horse"})).await;
    assert_eq!(status, 201);
    for attempt in 0..10 {
        let (status, body) = app
            .post("/api/v1/users/login", None, json!({"username": "alice", "password": format!("guess {attempt}")}))
            .await;
        assert_eq!((status, body["code"].as_str()), (401, Some("UNAUTHORIZED")), "attempt {attempt}");
    }
    // The eleventh try is refused before any password is checked, the right one included.
    let mut response = app
        .client
        .post(app.url("/api/v1/users/login"))
        .send_json(&json!({"username": "alice", "password": "correct horse"}))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 429);
    let retry_after: u64 = response.headers().get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=15 * 60).contains(&retry_after), "{retry_after}");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "RATE_LIMITED");
    // Another account is not affected.
    app.post("/api/v1/users/register", None, json!({"username": "bob", "password": "correct horse"})).await;
    let (status, _) =
        app.post("/api/v1/users/login", None, json!({"username": "bob", "password": "correct horse"})).await;
    assert_eq!(status, 200);
    app.finish().await;
}

#[actix_web::test]
async fn sign_in_attempts_from_one_ip_are_limited_per_minute() {
    let sign_in = SignInLimits { per_ip_per_minute: 5, ..Default::default() };
    let app = spawn_app(Options { sign_in, ..Default::default() }).await;
    // spawn_app logged the admin in once already: 4 more attempts pass, the next is refused.
    let mut statuses = Vec::new();
    for n in 0..6 {
        let (status, _) = app
            .post("/api/v1/users/register", None, json!({"username": format!("user{n}"), "password": "correct horse"}))
            .await;
        statuses.push(status);
    }
    assert_eq!(statuses, [201, 201, 201, 201, 429, 429]);
    app.finish().await;
}

#[actix_web::test]
async fn ten_thousand_requests_with_made_up_methods_leave_the_metric_series_bounded() {
    let app = spawn_app(Options::default()).await;
    let series = |text: &str| text.lines().filter(|line| line.starts_with("http_requests_total{")).count();
    let scrape = || async {
        let body = app.client.get(&app.metrics_url).send().await.unwrap().body().limit(16 << 20).await.unwrap();
        String::from_utf8(body.to_vec()).unwrap()
    };
    let before = series(&scrape().await);
    let paths = ["/api/v1/seckill/goods", "/healthz", "/nope", "/api/v1/orders/1"];
    for batch in 0..100 {
        let requests = (0..100).map(|n| {
            let method = Method::from_bytes(format!("M{batch}X{n}").as_bytes()).unwrap();
            app.client.request(method, app.url(paths[n % paths.len()])).send()
        });
        for response in futures::future::join_all(requests).await {
            assert!(response.is_ok());
        }
    }
    let text = scrape().await;
    let after = series(&text);
    println!("http_requests_total series: {before} before, {after} after 10,000 requests with random methods");
    assert!(after <= before + 8, "{after} series: labels grow with the input");
    assert!(text.contains("method=\"other\""), "unknown methods are labelled `other`");
    app.finish().await;
}

#[actix_web::test]
async fn a_user_who_brushes_three_times_is_blacklisted_until_an_admin_lifts_it() {
    let limits = LimitSettings {
        brush_limit: 2,
        brush_window: Duration::from_millis(700),
        strikes_to_ban: 3,
        ..Options::default().limits
    };
    let app = spawn_app(Options { limits, ..Default::default() }).await;
    let goods_id = app.sale(10).await;
    let (user_id, token) = app.users(1).await.remove(0);
    let mut codes = Vec::new();
    for _window in 0..3 {
        for _ in 0..3 {
            let (status, body) = app.path(goods_id, &token).await;
            codes.push((status, body["code"].as_str().unwrap_or("").to_owned()));
        }
        tokio::time::sleep(Duration::from_millis(800)).await;
    }
    let limited = codes.iter().filter(|(_, code)| code == "RATE_LIMITED").count();
    assert_eq!(limited, 2, "two trips are warnings: {codes:?}");
    assert_eq!(codes.last().unwrap(), &(429, "BLOCKED".to_owned()), "the third trip blacklists: {codes:?}");
    // Blocked in every window now, with a Retry-After of the ban.
    let (status, body) = app.path(goods_id, &token).await;
    assert_eq!((status, body["code"].as_str()), (429, Some("BLOCKED")));
    assert!(body["retry_after"].as_u64().unwrap() > 60, "{body}");
    // An admin sees the entry and lifts it.
    let (status, list) = app.get("/admin/v1/blacklist", Some(&app.admin_token)).await;
    assert_eq!(status, 200);
    let entries = list["entries"].as_array().unwrap();
    assert!(entries.iter().any(|e| e["kind"] == "user" && e["id"].as_str() == Some(&user_id.to_string())), "{list}");
    let (status, _) = app.get("/admin/v1/blacklist", Some(&token)).await;
    assert_eq!(status, 403, "not for buyers");
    let lifted = app
        .client
        .delete(app.url(&format!("/admin/v1/blacklist/user/{user_id}")))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(lifted.status().as_u16(), 204);
    let again = app
        .client
        .delete(app.url(&format!("/admin/v1/blacklist/user/{user_id}")))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 404, "nothing left to lift");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (status, _) = app.path(goods_id, &token).await;
    assert_eq!(status, 200, "buying again after the lift");
    app.finish().await;
}

#[actix_web::test]
async fn an_ip_that_brushes_is_blacklisted_when_ip_limits_are_on() {
    let limits = LimitSettings { ip_brush_limit: 3, strikes_to_ban: 1, ..Options::default().limits };
    let app = spawn_app(Options { limits, ..Default::default() }).await;
    let goods_id = app.sale(10).await;
    // Four different users from the same address: the IP trips, the users do not.
    let users = app.users(4).await;
    let mut statuses = Vec::new();
    for (_, token) in &users {
        statuses.push(app.path(goods_id, token).await.0);
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
    let (_, list) = app.get("/admin/v1/blacklist", Some(&app.admin_token)).await;
    assert!(list["entries"].as_array().unwrap().iter().any(|e| e["kind"] == "ip" && e["id"] == "127.0.0.1"), "{list}");
    let lifted = app
        .client
        .delete(app.url("/admin/v1/blacklist/ip/127.0.0.1"))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(lifted.status().as_u16(), 204);
    app.finish().await;
}

#[actix_web::test]
async fn outside_development_the_gateway_refuses_built_in_secrets_and_test_mode_by_name() {
    let settings = gateway::Settings {
        captcha: gateway::settings::CaptchaSettings { test_answer: Some("k6-test".into()), ..Default::default() },
        without: gateway::settings::Without { captcha_and_path: true, ..Default::default() },
        ..Default::default()
    };
    assert_eq!(settings.env, platform::env::Environment::Production, "production unless told otherwise");
    let refusal = gateway::Application::build(settings).await.err().expect("refused").to_string();
    for setting in
        ["SECKILL_JWT__SECRET", "SECKILL_RPC__KEY", "SECKILL_CAPTCHA__TEST_ANSWER", "SECKILL_WITHOUT__CAPTCHA_AND_PATH"]
    {
        assert!(refusal.contains(setting), "{refusal}");
    }
}
