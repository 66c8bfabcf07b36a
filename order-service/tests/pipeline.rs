//! The order pipeline end to end: place → RabbitMQ → workers → PostgreSQL, over real services.

mod support;

use std::collections::HashSet;

use contracts::order::{OrderError, OrderMessage, OrderResult, Ticket};
use contracts::stock::ReserveOutcome;
use futures::future::join_all;
use order_service::broker::Publisher;
use rpc::Error;
use support::{Options, Stack};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_buyers_for_three_hundred_units_make_exactly_three_hundred_orders() {
    let stack = Stack::start(Options::default()).await;
    let goods = stack.goods(300).await;
    let attempts = join_all((0..1_000i64).map(|n| stack.place(10_000 + n, goods))).await;
    let tickets: Vec<Ticket> = attempts.iter().filter_map(|a| a.as_ref().ok().cloned()).collect();
    let sold_out = attempts.iter().filter(|a| **a == Err(Error::Application(OrderError::SoldOut))).count();
    assert_eq!((tickets.len(), sold_out), (300, 700), "every attempt is a ticket or sold out");

    let worker = stack.worker().await;
    stack.wait_for_orders(goods, 300).await;
    let rows: Vec<(i64, Uuid)> = sqlx::query_as("SELECT user_id, ticket FROM orders WHERE goods_id = $1")
        .bind(goods)
        .fetch_all(&stack.db.pool)
        .await
        .unwrap();
    assert_eq!(rows.len(), 300);
    assert_eq!(rows.iter().map(|(user, _)| user).collect::<HashSet<_>>().len(), 300, "no user twice");
    let issued: HashSet<Uuid> = tickets.iter().map(|t| t.ticket).collect();
    assert_eq!(rows.iter().map(|(_, ticket)| *ticket).collect::<HashSet<_>>(), issued, "one order per ticket");
    assert_eq!(stack.db_stock(goods).await, 0);

    // Every ticket's result is final, and the others see the sale sold out.
    for ticket in &tickets {
        let result = stack.result(ticket.user_id, goods).await.unwrap();
        assert!(matches!(result, OrderResult::Success { .. }), "{result:?}");
    }
    let loser = (10_000..11_000).find(|user| !tickets.iter().any(|t| t.user_id == *user)).unwrap();
    assert_eq!(stack.result(loser, goods).await.unwrap(), OrderResult::SoldOut);
    let level = stack.stock.stock_level(goods).await.unwrap();
    assert_eq!((level.redis_stock, level.holds), (Some(0), 300));
    worker.stop().await;
    stack.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_stream_loses_nothing_and_writes_nothing_twice() {
    let stack = Stack::start(Options::default()).await;
    let goods = stack.goods(600).await;
    let placed = join_all((0..600i64).map(|n| stack.place(20_000 + n, goods))).await;
    assert!(placed.iter().all(|p| p.is_ok()));

    // Small batches, so the kill lands with most of the stream still to write.
    let mut settings = stack.settings.clone();
    settings.worker.batch_size = 10;
    settings.worker.prefetch = 30;
    let first = order_service::WorkerApplication::build(settings.clone()).await.unwrap();
    stack.wait_for_orders(goods, 50).await;
    first.abort(); // unacknowledged deliveries go back to the queue
    let at_kill = stack.order_count(goods).await;
    assert!(at_kill < 600, "the kill must land mid-stream (written {at_kill})");
    let second = order_service::WorkerApplication::build(settings).await.unwrap();
    stack.wait_for_orders(goods, 600).await;
    let (rows, users, tickets): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT user_id), count(DISTINCT ticket) FROM orders WHERE goods_id = $1",
    )
    .bind(goods)
    .fetch_one(&stack.db.pool)
    .await
    .unwrap();
    assert_eq!((rows, users, tickets), (600, 600, 600));
    assert_eq!(stack.db_stock(goods).await, 0, "the guard counts only rows actually inserted");
    second.stop().await;
    stack.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_message_whose_order_was_committed_is_acknowledged_as_written() {
    // The crash window between COMMIT and ack, reproduced exactly: the order row exists, and
    // its message arrives (again).
    let stack = Stack::start(Options::default()).await;
    let goods = stack.goods(5).await;
    let ticket = Uuid::new_v4();
    assert!(matches!(stack.stock.reserve(goods, 7, ticket).await, Ok(ReserveOutcome::Reserved { .. })));
    stack.stock.claim(goods, vec![(7, ticket)]).await.unwrap();
    sqlx::query("INSERT INTO orders (id, user_id, goods_id, ticket, price_cents) VALUES (4242, 7, $1, $2, 100)")
        .bind(goods)
        .bind(ticket)
        .execute(&stack.db.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE seckill_goods SET stock = stock - 1 WHERE goods_id = $1")
        .bind(goods)
        .execute(&stack.db.pool)
        .await
        .unwrap();
    let publisher = Publisher::connect(&stack.settings.broker).await.unwrap();
    publisher.publish(&OrderMessage { ticket, user_id: 7, goods_id: goods, price_cents: 100 }).await.unwrap();

    let worker = stack.worker().await;
    let settled = testkit::wait_for(std::time::Duration::from_secs(30), || async {
        match stack.result(7, goods).await {
            Ok(OrderResult::Success { order_id }) => Some(order_id),
            _ => None,
        }
    })
    .await;
    assert_eq!(settled, Some(4242), "the existing order is the result");
    assert_eq!(stack.order_count(goods).await, 1);
    assert_eq!(stack.db_stock(goods).await, 4, "stock taken once");
    worker.stop().await;
    stack.finish().await;
}

#[tokio::test]
async fn duplicate_clicks_and_closed_windows_are_refused_at_place() {
    let stack = Stack::start(Options::default()).await;
    let goods = stack.goods(3).await;
    assert!(stack.place(1, goods).await.is_ok());
    assert_eq!(stack.place(1, goods).await, Err(Error::Application(OrderError::Duplicate)));
    assert_eq!(stack.place(1, 999_999).await, Err(Error::Application(OrderError::UnknownGoods(999_999))));
    assert!(matches!(stack.result(1, goods).await, Ok(OrderResult::Queued { .. })));
    assert_eq!(stack.result(2, goods).await, Ok(OrderResult::None));
    assert_eq!(stack.orders_of(1).get_order(123).await, Err(Error::Application(OrderError::NotFound)));
    stack.finish().await;
}

#[tokio::test]
async fn outside_development_both_binaries_refuse_the_built_in_cluster_key_by_name() {
    let mut settings = order_service::Settings {
        node: platform::node::NodeSettings::listening("127.0.0.1:0", None),
        ..Default::default()
    };
    settings.node.env = platform::env::Environment::Production;
    let service = order_service::Application::build(settings.clone()).await.err().expect("refused").to_string();
    let worker = order_service::WorkerApplication::build(settings).await.err().expect("refused").to_string();
    for refusal in [&service, &worker] {
        assert!(refusal.contains("SECKILL_RPC__KEY"), "{refusal}");
    }
    // order-service takes payments: the built-in webhook secret is refused too.
    assert!(service.contains("SECKILL_PAYMENT__WEBHOOK_SECRET"), "{service}");
}

#[tokio::test]
async fn outside_development_the_sandbox_payment_provider_is_refused_by_name() {
    let mut settings = order_service::Settings {
        node: platform::node::NodeSettings::listening("127.0.0.1:0", None),
        ..Default::default()
    };
    settings.node.env = platform::env::Environment::Production;
    settings.payment.provider = order_service::settings::ProviderKind::Sandbox;
    let refusal = order_service::Application::build(settings).await.err().expect("refused").to_string();
    assert!(refusal.contains("SECKILL_PAYMENT__PROVIDER=sandbox"), "{refusal}");
    assert!(!refusal.contains(order_service::settings::DEVELOPMENT_WEBHOOK_SECRET), "never prints the secret");
}

#[tokio::test]
async fn outside_development_fire_and_forget_and_ack_on_delivery_are_refused_by_name() {
    let mut settings = order_service::Settings {
        node: platform::node::NodeSettings::listening("127.0.0.1:0", None),
        without: order_service::settings::Without { publisher_confirms: true, ack_after_commit: true },
        ..Default::default()
    };
    settings.node.env = platform::env::Environment::Production;
    let service = order_service::Application::build(settings.clone()).await.err().expect("refused").to_string();
    assert!(service.contains("SECKILL_WITHOUT__PUBLISHER_CONFIRMS"), "{service}");
    let worker = order_service::WorkerApplication::build(settings).await.err().expect("refused").to_string();
    assert!(worker.contains("SECKILL_WITHOUT__ACK_AFTER_COMMIT"), "{worker}");
}
