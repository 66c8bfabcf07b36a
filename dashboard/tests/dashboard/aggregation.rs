//! What the dashboard gathers matches the system: after a sale, its goods panel says what the
//! gateway's audit says, its queue is empty, and while the sale ran its funnel and node grid
//! saw the traffic.

use std::sync::Arc;
use std::time::{Duration, Instant};

use loadtest::crowd::Crowd;
use serde_json::Value;

use crate::support::{TestStack, goods};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_dashboard_agrees_with_the_audit_after_a_sale() {
    let stack = TestStack::start(1).await;
    let http = stack.gateway();
    let goods_id = http.sale(40).await.unwrap();
    let tokens = Arc::new(http.users(400).await.unwrap());

    // Snapshots are polled while the crowd buys, to see the traffic as it happened.
    let sale = tokio::spawn(Crowd::run(http.clone(), goods_id, tokens, 400, Instant::now()));
    let mut seen: Vec<Value> = Vec::new();
    while !sale.is_finished() {
        seen.push(stack.snapshot().await);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let crowd = sale.await.unwrap();
    assert_eq!(crowd.accepted(), 40, "every unit sold: {:?}", crowd.reasons());

    let settled = stack
        .snapshot_until(Duration::from_secs(30), |s| {
            goods(s, goods_id).is_some_and(|g| g["pending_tickets"] == 0 && g["orders"] == 40)
                && s["queue"]["ok"]["depth"] == 0
        })
        .await
        .expect("the sale drains within 30 s");
    seen.push(settled.clone());

    let (status, audit) = http.get(&format!("/admin/v1/goods/{goods_id}/audit"), &http.admin).await.unwrap();
    assert_eq!(status, 200);
    let audited = &audit["goods"][0];
    let shown = goods(&settled, goods_id).unwrap();
    for field in ["initial_stock", "db_stock", "redis_stock", "holds", "orders", "pending_tickets"] {
        assert_eq!(shown[field], audited[field], "{field}: dashboard {shown} vs audit {audited}");
    }
    assert_eq!(shown["redis_stock"], 0);
    assert!(shown["sold_out"].as_bool().unwrap());
    assert_eq!(settled["audit"]["ok"]["clean"], true, "{}", settled["audit"]);
    assert!(settled["queue"]["ok"]["consumers"].as_u64().unwrap() >= 1, "the worker consumes: {}", settled["queue"]);

    // Per second, over the rounds: the accepted orders add up to the units sold (each round's
    // rate times its interval; rounds are about half a second apart).
    let accepted_peak = seen.iter().map(|s| s["funnel"]["accepted"].as_f64().unwrap()).fold(0.0, f64::max);
    let order_peak = seen.iter().map(|s| s["funnel"]["order"].as_f64().unwrap()).fold(0.0, f64::max);
    assert!(accepted_peak > 0.0 && order_peak >= accepted_peak, "accepted {accepted_peak}/s, orders {order_peak}/s");
    // Both stock-service nodes on the grid, up, and the calls to them counted (which node gets
    // the few reserves of a one-second sale is the balancer's choice).
    let stock_tiles: Vec<Value> = seen
        .iter()
        .flat_map(|s| s["nodes"]["ok"].as_array().cloned().unwrap_or_default())
        .filter(|n| n["service"] == "StockService")
        .collect();
    for addr in stack.stack.stock_endpoints() {
        assert!(stock_tiles.iter().any(|n| n["addr"] == addr.as_str() && n["status"] == "up"), "{addr} on the grid");
    }
    let stock_calls: f64 = stock_tiles.iter().filter_map(|n| n["qps"].as_f64()).sum();
    assert!(stock_calls > 0.0, "calls to stock-service counted: {stock_tiles:?}");
    let tps_peak = seen.iter().filter_map(|s| s["postgres"]["ok"]["transactions_per_sec"].as_f64()).fold(0.0, f64::max);
    assert!(tps_peak > 0.0, "PostgreSQL transactions were counted");
    let written: f64 = seen.iter().filter_map(|s| s["workers"]["written_per_sec"].as_f64()).fold(0.0, f64::max);
    assert!(written > 0.0, "the workers' drain was seen");
    stack.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_that_is_down_shows_as_unreachable_and_the_rest_still_shows() {
    let closed = testkit::private::free_port();
    let stack = TestStack::start_with(1, |settings| {
        settings.scrape.insert("order_worker".into(), vec![format!("http://127.0.0.1:{closed}/metrics")]);
        settings.broker.management_url = Some(format!("http://guest:guest@127.0.0.1:{closed}").into());
    })
    .await;
    let snapshot = stack
        .snapshot_until(Duration::from_secs(10), |s| s["programs"].as_array().is_some_and(|p| p.len() == 2))
        .await
        .unwrap();
    let programs = snapshot["programs"].as_array().unwrap();
    let state = |program: &str| programs.iter().find(|p| p["program"] == program).map(|p| p["up"].clone());
    assert_eq!(state("order_worker"), Some(Value::Bool(false)), "{programs:?}");
    assert_eq!(state("gateway"), Some(Value::Bool(true)), "{programs:?}");
    let rates = &snapshot["queue"]["ok"]["rates"]["unreachable"];
    assert!(rates.as_str().is_some_and(|r| r.contains("management API")), "{}", snapshot["queue"]);
    // Everything else still shows.
    assert!(snapshot["queue"]["ok"]["depth"].is_u64(), "{}", snapshot["queue"]);
    assert!(snapshot["goods"]["ok"].is_array(), "{}", snapshot["goods"]);
    assert!(snapshot["rules"]["ok"]["version"].is_u64(), "{}", snapshot["rules"]);
    let nodes = snapshot["nodes"]["ok"].as_array().unwrap();
    assert_eq!(nodes.iter().filter(|n| n["service"] == "StockService" && n["status"] == "up").count(), 2, "{nodes:?}");

    // Without a token, nothing is shown.
    let anonymous = stack.client.get(format!("{}/api/snapshot", stack.dashboard)).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.headers()["content-type"], "application/problem+json");
    stack.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scenario_loadtest_announces_is_shown() {
    use deadpool_redis::redis::AsyncCommands;
    let stack = TestStack::start(1).await;
    let status = contracts::scenario::ScenarioStatus {
        name: "oversell".into(),
        title: "Oversell".into(),
        phase: "done".into(),
        started_at_ms: 1,
        verdict: Some("3,000 oversold → 0".into()),
        variants: vec![contracts::scenario::VariantFigures {
            variant: "lua_mq".into(),
            orders: 1000,
            oversold: 0,
            accepted_rate: 0.25,
            p99_ms: 12.5,
            own: vec![("units unsold".into(), "0".into())],
        }],
    };
    let key = contracts::keyspace::Keyspace::new(stack.stack.sandbox.prefix.clone()).scenario();
    let mut conn = stack.stack.sandbox.redis.get().await.unwrap();
    let _: () = conn.set(&key, serde_json::to_string(&status).unwrap()).await.unwrap();
    let shown = stack.snapshot_until(Duration::from_secs(10), |s| !s["scenario"]["ok"].is_null()).await.unwrap();
    let parsed: contracts::scenario::ScenarioStatus = serde_json::from_value(shown["scenario"]["ok"].clone()).unwrap();
    assert_eq!(parsed, status);
    stack.finish().await;
}
