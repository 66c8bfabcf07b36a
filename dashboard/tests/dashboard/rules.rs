//! Live rules: changed through the dashboard's API, versioned and logged with who changed them,
//! followed by every gateway; a store that goes away leaves the last rules in force.

use std::time::{Duration, Instant};

use platform::rules::{LiveRules, RuleSet, RuleStore, Rules};
use serde_json::json;

use crate::support::TestStack;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rule_changed_on_the_dashboard_reaches_every_gateway() {
    let stack = TestStack::start(2).await;
    let goods_id = stack.gateway().sale(10).await.unwrap();
    assert_eq!(stack.path_statuses(1, goods_id, 4).await, [200, 200, 200, 200], "the configured burst is 5");
    let (status, before) = stack.get("/api/rules").await;
    assert_eq!(status, 200);
    assert_eq!(before["current"]["version"], 0);

    let tighter = json!({"limits": {"per_user_burst": 2, "per_user_per_sec": 1}});
    let changed = Instant::now();
    let (status, set) = stack.put("/api/rules", json!({"version": 0, "rules": tighter})).await;
    assert_eq!(status, 200, "{set}");
    assert_eq!(set["version"], 1);
    let followed = testkit::wait_for(Duration::from_secs(10), || async {
        stack.gateway_rules_versions().await.iter().all(|v| *v == 1).then_some(())
    })
    .await;
    assert!(followed.is_some(), "every gateway follows version 1: {:?}", stack.gateway_rules_versions().await);
    println!("rule change followed by both gateways after {:?}", changed.elapsed());
    // Their metrics say so too: the page's program tiles show the version each follows.
    let shown = stack.snapshot_until(Duration::from_secs(10), |s| s["programs"][0]["rules_version"] == 1).await;
    assert!(shown.is_some(), "the gateway's tile shows rules v1");
    for gateway in 0..2 {
        assert_eq!(stack.path_statuses(gateway, goods_id, 3).await, [200, 200, 429], "gateway {gateway}: burst 2");
    }

    // A change based on an old version is refused, and so is a limit of zero.
    let (status, stale) = stack.put("/api/rules", json!({"version": 0, "rules": {}})).await;
    assert_eq!((status, stale["code"].as_str()), (409, Some("CONFLICT")), "{stale}");
    let (status, zero) =
        stack.put("/api/rules", json!({"version": 1, "rules": {"limits": {"per_user_burst": 0}}})).await;
    assert_eq!((status, zero["code"].as_str()), (400, Some("VALIDATION")), "{zero}");
    let (status, misspelt) = stack.put("/api/rules", json!({"version": 1, "rules": {"limit": {}}})).await;
    assert_eq!(status, 400, "{misspelt}");

    // Closing the sales: both steps of the purchase are refused on every gateway.
    let (status, _) =
        stack.put("/api/rules", json!({"version": 1, "rules": {"switches": {"sales_closed": true}}})).await;
    assert_eq!(status, 200);
    testkit::wait_for(Duration::from_secs(10), || async {
        stack.gateway_rules_versions().await.iter().all(|v| *v == 2).then_some(())
    })
    .await
    .expect("every gateway follows version 2");
    let closed = stack.gateway().buy(goods_id, &stack.gateway().users(1).await.unwrap()[0]).await.unwrap();
    assert_eq!((closed.status, closed.code()), (403, Some("SALE_CLOSED")), "{:?}", closed.body);

    let (_, after) = stack.get("/api/rules").await;
    let log = after["log"].as_array().unwrap();
    assert_eq!(log.iter().map(|set| set["version"].as_u64().unwrap()).collect::<Vec<_>>(), [2, 1], "newest first");
    assert!(log.iter().all(|set| set["changed_by"].as_str().unwrap().starts_with("user:")), "{log:?}");
    assert_eq!(log[1]["rules"]["limits"]["per_user_burst"], 2);
    stack.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_rule_store_goes_away_the_last_rules_stay_in_force() {
    let mut redis = testkit::private::PrivateRedis::start();
    let url = secrecy::SecretString::from(redis.url());
    let pool = platform::redis::connect(&url, 4).await.unwrap();
    let store = RuleStore::new(pool, contracts::keyspace::Keyspace::new("rules-test").rules());
    let mut live = LiveRules::follow(store.clone(), url).await;
    assert_eq!(*live.current(), RuleSet::initial());

    let mut rules = Rules::default();
    rules.switches.captchas_off = true;
    store.change(0, rules.clone(), "user:7").await.unwrap();
    let followed = tokio::time::timeout(Duration::from_secs(5), live.changed()).await.unwrap().unwrap();
    assert_eq!((followed.version, &followed.rules, followed.changed_by.as_str()), (1, &rules, "user:7"));

    redis.kill();
    // Past a re-read (every 5 s) and a few reconnection attempts.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(live.current().version, 1);
    assert!(live.current().rules.switches.captchas_off);

    // Back, but empty (no persistence): an empty store is not an operator's change.
    redis.restart();
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(live.current().version, 1, "the last rules stay until someone changes them");
    store.change(0, Rules::default(), "user:8").await.unwrap();
    let followed = tokio::time::timeout(Duration::from_secs(10), live.changed()).await.unwrap().unwrap();
    assert_eq!((followed.version, followed.changed_by.as_str()), (1, "user:8"));
    assert!(!followed.rules.switches.captchas_off);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn breaker_and_retry_rules_reach_the_services_rpc_clients_and_clearing_them_restores_the_configuration() {
    let stack = TestStack::start(1).await;
    let cluster = stack.stack.order_stock_cluster().clone();
    let (configured_breaker, configured_retry) = (cluster.breaker_config(), cluster.retry_config());
    assert!(configured_breaker.enabled);

    let rules = json!({
        "breaker": {"enabled": false, "failure_percent": 30, "open_for_ms": 1500},
        "retry": {"max_attempts": 1, "budget_percent": 25}
    });
    let (status, set) = stack.put("/api/rules", json!({"version": 0, "rules": rules})).await;
    assert_eq!(status, 200, "{set}");
    stack.stack.follow_rules(1).await.expect("gateway, order-service and worker follow v1");
    let live = testkit::wait_for(Duration::from_secs(10), || async {
        let breaker = cluster.breaker_config();
        (!breaker.enabled).then_some((breaker, cluster.retry_config()))
    })
    .await
    .expect("order-service's stock-service client takes the breaker rules");
    assert_eq!(live.0.failure_ratio, 0.3);
    assert_eq!(live.0.open_for, Duration::from_millis(1500));
    assert_eq!(live.0.min_calls, configured_breaker.min_calls, "what no rule sets stays configured");
    assert_eq!((live.1.max_attempts, live.1.budget_ratio), (1, 0.25));

    let (status, out_of_range) =
        stack.put("/api/rules", json!({"version": 1, "rules": {"breaker": {"failure_percent": 150}}})).await;
    assert_eq!((status, out_of_range["code"].as_str()), (400, Some("VALIDATION")), "{out_of_range}");

    let (status, _) = stack.put("/api/rules", json!({"version": 1, "rules": {}})).await;
    assert_eq!(status, 200);
    stack.stack.follow_rules(2).await.expect("everyone follows v2");
    let restored = testkit::wait_for(Duration::from_secs(10), || async {
        (cluster.breaker_config() == configured_breaker && cluster.retry_config() == configured_retry).then_some(())
    })
    .await;
    assert!(restored.is_some(), "an empty rule set gives the configuration back");
    stack.finish().await;
}
