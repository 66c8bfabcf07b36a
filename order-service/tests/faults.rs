//! Faults: poison messages, a broker that goes away, Redis losing its data, orphaned reservations.

mod support;

use contracts::keyspace::{Keyspace, OrderQueues};
use std::time::Duration;

use contracts::order::{OrderError, OrderMessage, OrderResult};
use contracts::stock::ReserveOutcome;
use futures::future::join_all;
use lapin::BasicProperties;
use lapin::options::{BasicPublishOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use order_service::WorkerApplication;
use order_service::broker::Publisher;
use order_service::reconciler::{Pass, Reconciler};
use order_service::results::Results;
use rpc::Error;
use secrecy::SecretString;
use support::{BrokerProxy, Options, Stack};
use testkit::fault_proxy::{Fault, FaultProxy};
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
    // Both reach the dead-letter queue, whose consumer keeps them for operators and empties it.
    let letters = kept_dead_letters(&stack, 2).await;
    assert_eq!(
        letters,
        vec![
            (Some(ticket), "rejected".to_owned(), "failed".to_owned()),
            (None, "rejected".to_owned(), "undecodable".to_owned())
        ]
    );
    let drained =
        testkit::wait_for(Duration::from_secs(30), || async { (stack.dead_letters().await == 0).then_some(()) }).await;
    assert!(drained.is_some(), "the dead-letter queue is emptied");
    stack.wait_for_orders(goods, 1).await;
    assert!(matches!(stack.result(good.user_id, goods).await, Ok(OrderResult::Success { .. })));
    assert!(matches!(stack.result(5, goods).await, Ok(OrderResult::Failed { .. })));
    let level = stack.stock.stock_level(goods).await.unwrap();
    assert_eq!((level.redis_stock, level.holds), (Some(9), 1), "the poison order's unit is back on sale");
    worker.stop().await;
    stack.finish().await;
}

/// Waits for `n` rows in `order_dead_letters`: (ticket, reason, outcome), tickets first.
async fn kept_dead_letters(stack: &Stack, n: usize) -> Vec<(Option<Uuid>, String, String)> {
    let query = || async {
        let rows: Vec<(Option<Uuid>, String, String)> =
            sqlx::query_as("SELECT ticket, reason, outcome FROM order_dead_letters ORDER BY ticket NULLS LAST")
                .fetch_all(&stack.db.pool)
                .await
                .unwrap();
        (rows.len() >= n).then_some(rows)
    };
    testkit::wait_for(Duration::from_secs(30), query).await.expect("the dead letters are kept")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_the_broker_dead_lettered_untouched_is_finished_by_the_dead_letter_consumer() {
    let stack = Stack::start(Options::default()).await;
    let goods = stack.goods(10).await;
    // A reservation whose message ran out of deliveries (say, it killed its worker each time):
    // the broker moved it to the dead-letter queue and nobody released its unit.
    let ticket = Uuid::new_v4();
    assert!(matches!(stack.stock.reserve(goods, 7, ticket).await, Ok(ReserveOutcome::Reserved { .. })));
    let message = OrderMessage { ticket, user_id: 7, goods_id: goods, price_cents: 100 };
    let connection = order_service::broker::connect(&SecretString::from(testkit::amqp_url())).await.unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .basic_publish(
            stack.topology().names.dead_exchange.as_str().into(),
            "".into(),
            BasicPublishOptions::default(),
            &serde_json::to_vec(&message).unwrap(),
            BasicProperties::default(),
        )
        .await
        .unwrap();
    order_service::broker::close(&connection, channel).await;

    let worker = stack.worker().await;
    let letters = kept_dead_letters(&stack, 1).await;
    assert_eq!(letters, vec![(Some(ticket), "unknown".to_owned(), "failed".to_owned())]);
    assert!(matches!(stack.result(7, goods).await, Ok(OrderResult::Failed { .. })), "the buyer learns it");
    let level = stack.stock.stock_level(goods).await.unwrap();
    assert_eq!((level.redis_stock, level.holds), (Some(10), 0), "its unit is back on sale");
    assert_eq!(stack.order_count(goods).await, 0);
    worker.stop().await;
    stack.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_holds_batches_in_hand_and_dead_letters_nothing() {
    let stack = Stack::start(Options::default()).await;
    let goods = stack.goods(50).await;
    // The order queue as an earlier version declared it, with a delivery limit of 1: a message
    // handed back to the queue even once is dead-lettered. The worker must start on it anyway
    // (it declares other arguments) and never hand a message back during the outage.
    let topology = stack.topology();
    let connection = order_service::broker::connect(&SecretString::from(testkit::amqp_url())).await.unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel.queue_delete(topology.names.queue.as_str().into(), Default::default()).await.unwrap();
    let mut arguments = FieldTable::default();
    arguments.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
    arguments.insert("x-delivery-limit".into(), AMQPValue::LongInt(1));
    arguments
        .insert("x-dead-letter-exchange".into(), AMQPValue::LongString(topology.names.dead_exchange.as_str().into()));
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    channel.queue_declare(topology.names.queue.as_str().into(), durable, arguments).await.unwrap();
    order_service::broker::close(&connection, channel).await;

    // The worker reaches PostgreSQL through a fault proxy.
    let proxy = FaultProxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let mut settings = stack.settings.clone();
    let url = stack.db.url.replace("127.0.0.1:5432", &proxy.addr().to_string());
    assert_ne!(url, stack.db.url, "the test database is on 127.0.0.1:5432");
    settings.database.url = SecretString::from(url);
    let worker = WorkerApplication::build(settings).await.expect("the worker starts on the old queue");

    proxy.set(Fault::Reset);
    let tickets = join_all((0..20).map(|user| stack.place(1000 + user, goods))).await;
    assert!(tickets.iter().all(Result::is_ok), "placing needs no worker: {tickets:?}");
    // Down long enough for many retries (each would have been a delivery, and the first one
    // fatal with this queue's limit).
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(stack.order_count(goods).await, 0, "nothing is written while the database is unreachable");
    assert_eq!(stack.dead_letters().await, 0, "nothing is dead-lettered for the outage");

    proxy.set(Fault::None);
    stack.wait_for_orders(goods, 20).await;
    for user in 0..20 {
        assert!(matches!(stack.result(1000 + user, goods).await, Ok(OrderResult::Success { .. })));
    }
    let kept: i64 =
        sqlx::query_scalar("SELECT count(*) FROM order_dead_letters").fetch_one(&stack.db.pool).await.unwrap();
    assert_eq!((kept, stack.dead_letters().await), (0, 0));
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
        Results::new(testkit::redis_shared().await, Keyspace::new(&stack.prefix)),
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
        Results::new(testkit::redis_shared().await, Keyspace::new(&stack.prefix)),
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
