//! Faults: poison messages, a broker that goes away, Redis losing its data, orphaned reservations.

mod support;

use contracts::keyspace::{Keyspace, OrderQueues};
use std::time::Duration;

use contracts::order::{OrderError, OrderMessage, OrderResult};
use contracts::stock::ReserveOutcome;
use futures::future::join_all;
use lapin::BasicProperties;
use lapin::options::BasicPublishOptions;
use order_service::broker::Publisher;
use order_service::reconciler::{Pass, Reconciler};
use order_service::results::Results;
use rpc::Error;
use secrecy::SecretString;
use support::{BrokerProxy, Options, Stack};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_is_dead_lettered_and_its_unit_released() {
    let stack = Stack::start(Options::default()).await;
    let goods = stack.goods(10).await;
    let ticket = Uuid::new_v4();
    assert!(matches!(stack.stock.reserve(goods, 5, ticket).await, Ok(ReserveOutcome::Reserved { .. })));
    // A message the database will always refuse (negative price violates a CHECK), and one that
    // is not even JSON.
    let publisher = Publisher::connect(&stack.settings.broker).await.unwrap();
    publisher.publish(&OrderMessage { ticket, user_id: 5, goods_id: goods, price_cents: -5 }).await.unwrap();
    let connection = order_service::broker::connect(&SecretString::from(testkit::amqp_url())).await.unwrap();
    let channel = connection.create_channel().await.unwrap();
    let topology = stack.topology();
    channel
        .basic_publish(
            topology.names.exchange.as_str().into(),
            OrderQueues::ROUTING_KEY.into(),
            BasicPublishOptions::default(),
            b"not json",
            BasicProperties::default(),
        )
        .await
        .unwrap();
    order_service::broker::close(&connection, channel).await;
    // A good order in the same stream is written regardless.
    let good = stack.place(6, goods).await.unwrap();

    let worker = stack.worker().await;
    let dead =
        testkit::wait_for(Duration::from_secs(30), || async { (stack.dead_letters().await == 2).then_some(()) }).await;
    assert!(dead.is_some(), "both poison messages must reach the dead-letter queue");
    stack.wait_for_orders(goods, 1).await;
    assert!(matches!(stack.result(good.user_id, goods).await, Ok(OrderResult::Success { .. })));
    assert!(matches!(stack.result(5, goods).await, Ok(OrderResult::Failed { .. })));
    let level = stack.stock.stock_level(goods).await.unwrap();
    assert_eq!((level.redis_stock, level.holds), (Some(9), 1), "the poison order's unit is back on sale");
    worker.stop().await;
    stack.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_broker_unreachable_no_ticket_is_accepted_and_stock_is_released() {
    let proxy = BrokerProxy::start().await;
    let stack = Stack::start(Options { amqp_url: proxy.url.clone(), ..Default::default() }).await;
    let goods = stack.goods(10).await;
    assert!(stack.place(1, goods).await.is_ok(), "works while the broker is reachable");
    proxy.cut();
    let attempts = join_all((2..7i64).map(|user| stack.place(user, goods))).await;
    for attempt in &attempts {
        assert!(matches!(attempt, Err(Error::Application(OrderError::Unavailable(_)))), "{attempt:?}");
    }
    let level = stack.stock.stock_level(goods).await.unwrap();
    assert_eq!((level.redis_stock, level.holds), (Some(9), 1), "only the confirmed order holds a unit");
    assert_eq!(stack.result(2, goods).await, Ok(OrderResult::None));
    stack.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_redis_loses_a_sale_mid_flight_the_reconciler_restores_it_and_the_invariants_hold() {
    let stack = Stack::start(Options::default()).await;
    let goods = stack.goods(200).await;
    let first_wave = join_all((0..120i64).map(|n| stack.place(30_000 + n, goods))).await;
    let mut accepted: Vec<(i64, Uuid)> =
        first_wave.iter().filter_map(|r| r.as_ref().ok()).map(|t| (t.user_id, t.ticket)).collect();
    let worker = stack.worker().await;
    stack.wait_for_orders(goods, 40).await;

    // Redis restarts empty (it keeps nothing on disk here).
    testkit::clear_redis_prefix(&stack.redis, &stack.prefix).await;
    let reconciler = Reconciler::new(
        stack.stock.clone(),
        Results::new(stack.redis.clone(), Keyspace::new(&stack.prefix)),
        stack.redis.clone(),
        Keyspace::new(&stack.prefix),
        Duration::from_secs(60),
    );
    let pass = reconciler.pass().await.unwrap();
    assert_eq!(pass.rewarmed, 1);

    let second_wave = join_all((0..200i64).map(|n| stack.place(40_000 + n, goods))).await;
    accepted.extend(second_wave.iter().filter_map(|r| r.as_ref().ok()).map(|t| (t.user_id, t.ticket)));

    // Drain: every accepted ticket ends as an order or an explicit failure.
    let settled = testkit::wait_for(Duration::from_secs(60), || async {
        let mut pending = 0;
        for (user, _) in &accepted {
            if matches!(stack.result(*user, goods).await, Ok(OrderResult::Queued { .. }) | Ok(OrderResult::None)) {
                pending += 1;
            }
        }
        (pending == 0).then_some(())
    })
    .await;
    assert!(settled.is_some(), "some accepted tickets never settled");

    let orders = stack.order_count(goods).await;
    let (users, initial, db_stock): (i64, i32, i32) = sqlx::query_as(
        "SELECT (SELECT count(DISTINCT user_id) FROM orders WHERE goods_id = $1), initial_stock, stock
           FROM seckill_goods WHERE goods_id = $1",
    )
    .bind(goods)
    .fetch_one(&stack.db.pool)
    .await
    .unwrap();
    let level = stack.stock.stock_level(goods).await.unwrap();
    assert!(orders <= i64::from(initial), "oversold: {orders} orders for {initial}");
    assert_eq!(users, orders, "no user ordered twice");
    assert_eq!(i64::from(db_stock) + orders, i64::from(initial), "DB stock + orders = initial");
    assert_eq!(level.redis_stock.unwrap() + level.holds, i64::from(initial), "Redis stock + holds = initial");
    assert_eq!(level.holds, orders, "after the drain, every hold is an order");
    assert_eq!(Pass::default(), reconciler.pass().await.unwrap(), "nothing left to repair");
    worker.stop().await;
    stack.finish().await;
}

#[tokio::test]
async fn the_reconciler_releases_orphans_but_not_ticketed_reservations() {
    let stack = Stack::start(Options::default()).await;
    let goods = stack.goods(5).await;
    // A crash between reserve and publish leaves a reservation nobody will ever order.
    let orphan = Uuid::new_v4();
    stack.stock.reserve(goods, 1, orphan).await.unwrap();
    // A confirmed order whose message is still queued (no worker runs) is not an orphan.
    stack.place(2, goods).await.unwrap();
    let reconciler = Reconciler::new(
        stack.stock.clone(),
        Results::new(stack.redis.clone(), Keyspace::new(&stack.prefix)),
        stack.redis.clone(),
        Keyspace::new(&stack.prefix),
        Duration::ZERO,
    );
    tokio::time::sleep(Duration::from_millis(5)).await; // both reservations are now older than the grace
    let pass = reconciler.pass_if_leader(Duration::from_secs(5)).await.unwrap();
    assert_eq!(pass, Some(Pass { rewarmed: 0, resynced: 0, released: 1 }));
    let level = stack.stock.stock_level(goods).await.unwrap();
    assert_eq!((level.redis_stock, level.holds), (Some(4), 1));
    assert!(matches!(stack.result(2, goods).await, Ok(OrderResult::Queued { .. })));
    stack.finish().await;
}
