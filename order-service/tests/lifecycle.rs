//! The sale lifecycle against real PostgreSQL, Redis and RabbitMQ: payment windows closed by
//! broker timers, cancellations returning units to both stores, payments and cancellations
//! racing, late payments refunded, duplicated timers, a worker killed while cancelling.

mod support;

use std::time::Duration;

use contracts::audit::GoodsAudit;
use contracts::order::{CallbackOutcome, ExpiryMessage, OrderResult, SandboxInstructions};
use futures::future::join_all;
use order_service::payment::provider::{PAYMENT_SUCCEEDED, ProviderEvent};
use order_service::payment::signature;
use order_service::settings::DEVELOPMENT_WEBHOOK_SECRET;
use support::{Options, Stack};

/// Every user in `users` buys one unit of `goods_id`; returns (user, order id) of those whose
/// order was written, once every accepted ticket settled.
async fn buy(stack: &Stack, goods_id: i64, users: impl IntoIterator<Item = i64>) -> Vec<(i64, i64)> {
    let users: Vec<i64> = users.into_iter().collect();
    let placed = join_all(users.iter().map(|user| stack.place(*user, goods_id))).await;
    let accepted: Vec<i64> = users.iter().zip(placed).filter(|(_, placed)| placed.is_ok()).map(|(u, _)| *u).collect();
    let mut orders = Vec::new();
    for user in accepted {
        let written = testkit::wait_for(Duration::from_secs(60), || async {
            match stack.result(user, goods_id).await {
                Ok(OrderResult::Success { order_id }) => Some(Some(order_id)),
                Ok(OrderResult::Queued { .. }) => None,
                _ => Some(None),
            }
        })
        .await
        .expect("every accepted ticket settles");
        orders.extend(written.map(|order_id| (user, order_id)));
    }
    orders
}

/// Starts a sandbox payment whose callback the test sends itself; returns (payment id, intent).
async fn start_payment(stack: &Stack, user: i64, order_id: i64) -> (i64, String) {
    // The sandbox would call back in an hour: long after the test.
    let later = SandboxInstructions { succeed: true, callback_after_ms: 3_600_000 };
    let payment = stack.orders_of(user).pay(order_id, format!("pay-{order_id}"), Some(later)).await.unwrap();
    (payment.payment_id, payment.provider_ref.expect("the sandbox gives an intent"))
}

/// The provider's "payment succeeded" callback, signed as the provider signs it.
async fn succeeded(stack: &Stack, payment_id: i64, intent: &str) -> CallbackOutcome {
    let event = ProviderEvent {
        id: format!("evt-{intent}"),
        kind: PAYMENT_SUCCEEDED.into(),
        intent: intent.into(),
        payment_id,
        amount_cents: 100,
    };
    let body = serde_json::to_vec(&event).unwrap();
    let header = signature::sign(DEVELOPMENT_WEBHOOK_SECRET.as_bytes(), &body, chrono::Utc::now().timestamp());
    stack.orders.clone().with_credential(testkit::as_service()).payment_callback(body, header).await.unwrap()
}

async fn audit(stack: &Stack, goods_id: i64) -> GoodsAudit {
    try_audit(stack, goods_id).await.expect("nothing changes the sale now")
}

/// The audit, or `None` while orders change too fast for a consistent reading.
async fn try_audit(stack: &Stack, goods_id: i64) -> Option<GoodsAudit> {
    let orders = stack.orders.clone().with_credential(testkit::as_service());
    match contracts::audit::figures(&stack.stock, &orders, goods_id).await {
        Ok((level, counts)) => Some(GoodsAudit::of(goods_id, &level, &counts)),
        Err(contracts::audit::FiguresError::TooBusy) => None,
        Err(err) => panic!("{err}"),
    }
}

/// Waits until `goods_id` has `cancelled` cancelled orders, every unit back in Redis.
async fn wait_for_cancelled(stack: &Stack, goods_id: i64, cancelled: i64) -> GoodsAudit {
    testkit::wait_for(Duration::from_secs(60), || async {
        let audit = try_audit(stack, goods_id).await?;
        (audit.cancelled >= cancelled && audit.drained).then_some(audit)
    })
    .await
    .unwrap_or_else(|| panic!("{cancelled} orders were never cancelled"))
}

async fn status(stack: &Stack, order_id: i64) -> (String, Option<String>) {
    sqlx::query_as(
        "SELECT o.status, (SELECT p.status FROM payments p WHERE p.order_id = o.id ORDER BY p.id LIMIT 1)
           FROM orders o WHERE o.id = $1",
    )
    .bind(order_id)
    .fetch_one(&stack.db.pool)
    .await
    .unwrap()
}

async fn redis_stock(stack: &Stack, goods_id: i64) -> i64 {
    stack.stock.stock_level(goods_id).await.unwrap().redis_stock.expect("warmed up")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unpaid_orders_are_cancelled_when_their_window_closes_and_their_units_sell_again() {
    let stack = Stack::start(Options::default()).await;
    let worker = stack.worker().await;
    // Long enough for 700 payments to land in time on a slow machine.
    let goods_id = stack.goods_with_window(1_000, 10).await;

    let winners = buy(&stack, goods_id, 1..=1_000).await;
    assert_eq!(winners.len(), 1_000);
    // 70% pay, 30% never do.
    let (payers, idlers) = winners.split_at(700);
    let stack_ref = &stack;
    let paid = join_all(payers.iter().map(|(user, order_id)| async move {
        let (payment_id, intent) = start_payment(stack_ref, *user, *order_id).await;
        succeeded(stack_ref, payment_id, &intent).await
    }))
    .await;
    assert!(paid.iter().all(|outcome| *outcome == CallbackOutcome::Paid), "every payment in time pays");

    let after_window = wait_for_cancelled(&stack, goods_id, 300).await;
    assert_eq!((after_window.paid, after_window.unpaid, after_window.cancelled), (700, 0, 300));
    assert_eq!(after_window.db_stock, 300, "the cancelled units are back in PostgreSQL");
    assert_eq!(after_window.redis_stock, Some(300), "and in Redis");
    assert!(after_window.is_clean(), "{:?}", after_window.violations);
    for (user, order_id) in idlers.iter().take(20) {
        assert_eq!(stack.result(*user, goods_id).await.unwrap(), OrderResult::Cancelled { order_id: *order_id });
    }

    // A second crowd: 100 of those who did not pay, and 400 new buyers, for the 300 units.
    let again: Vec<i64> = idlers.iter().take(100).map(|(user, _)| *user).chain(2_001..=2_400).collect();
    let second = buy(&stack, goods_id, again).await;
    assert_eq!(second.len(), 300, "exactly the returned units sell again");
    let end = audit(&stack, goods_id).await;
    assert_eq!((end.orders, end.db_stock, end.redis_stock), (1_000, 0, Some(0)));
    assert!(end.is_clean(), "{:?}", end.violations);
    worker.stop().await;
    stack.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_payment_and_a_cancellation_racing_for_the_same_order_never_both_win() {
    let stack = Stack::start(Options::default()).await;
    let worker = stack.worker().await;
    let goods_id = stack.goods(1_000).await;
    let orders = buy(&stack, goods_id, 1..=1_000).await;
    assert_eq!(orders.len(), 1_000);
    let payments = join_all(orders.iter().map(|(user, order_id)| start_payment(&stack, *user, *order_id))).await;

    // For each order, the provider's success and the buyer's cancel at the same moment.
    let races = orders.iter().zip(&payments).map(|((user, order_id), (payment_id, intent))| {
        let stack = &stack;
        async move {
            let buyer = stack.orders_of(*user);
            let (paid, cancelled) = tokio::join!(succeeded(stack, *payment_id, intent), buyer.cancel(*order_id));
            (*order_id, paid, cancelled.is_ok())
        }
    });
    let outcomes = join_all(races).await;

    let (mut paid, mut cancelled) = (0, 0);
    for (order_id, callback, cancel_won) in outcomes {
        let (order, payment) = status(&stack, order_id).await;
        match order.as_str() {
            "paid" => {
                paid += 1;
                assert_eq!((callback, cancel_won), (CallbackOutcome::Paid, false), "order {order_id}");
                assert_eq!(payment.as_deref(), Some("succeeded"));
            }
            "cancelled" => {
                cancelled += 1;
                assert_eq!((callback, cancel_won), (CallbackOutcome::Refunded, true), "order {order_id}");
                assert_eq!(payment.as_deref(), Some("refunded"), "a cancelled order keeps no money");
            }
            other => panic!("order {order_id} is {other}"),
        }
    }
    assert_eq!(paid + cancelled, 1_000);
    println!("of 1,000 races, payment won {paid}, cancellation won {cancelled}");
    let audit = wait_for_cancelled(&stack, goods_id, cancelled).await;
    assert_eq!((audit.paid, audit.db_stock, audit.redis_stock), (paid, cancelled, Some(cancelled)));
    assert!(audit.is_clean(), "{:?}", audit.violations);
    worker.stop().await;
    stack.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_payment_that_comes_after_the_timeout_is_refunded_and_the_unit_is_not_sold_twice() {
    let stack = Stack::start(Options::default()).await;
    let worker = stack.worker().await;
    let goods_id = stack.goods_with_window(1, 2).await;
    let [(late_payer, order_id)] = buy(&stack, goods_id, [1]).await[..] else { panic!("one winner") };
    let (payment_id, intent) = start_payment(&stack, late_payer, order_id).await;

    // The window closes unpaid: cancelled, and the unit bought by someone else.
    wait_for_cancelled(&stack, goods_id, 1).await;
    let second = buy(&stack, goods_id, [2]).await;
    assert_eq!(second.len(), 1);

    // Then the provider's success arrives.
    assert_eq!(succeeded(&stack, payment_id, &intent).await, CallbackOutcome::Refunded);
    assert_eq!(status(&stack, order_id).await, ("cancelled".to_owned(), Some("refunded".to_owned())));
    assert_eq!(succeeded(&stack, payment_id, &intent).await, CallbackOutcome::Duplicate, "a repeat changes nothing");
    let audit = audit(&stack, goods_id).await;
    assert_eq!((audit.orders, audit.cancelled, audit.db_stock, audit.redis_stock), (1, 1, 0, Some(0)));
    assert!(audit.is_clean(), "{:?}", audit.violations);
    worker.stop().await;
    stack.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_timer_delivered_twice_returns_one_unit() {
    let stack = Stack::start(Options::default()).await;
    let worker = stack.worker().await;
    let goods_id = stack.goods(1).await; // a 15-minute window: its own timer stays out of the way
    let [(_, order_id)] = buy(&stack, goods_id, [1]).await[..] else { panic!("one winner") };
    // The window closes now, and the broker hands its timer over twice.
    sqlx::query("UPDATE orders SET expires_at = now() WHERE id = $1")
        .bind(order_id)
        .execute(&stack.db.pool)
        .await
        .unwrap();
    let connection = order_service::broker::connect(&secrecy::SecretString::from(testkit::amqp_url())).await.unwrap();
    let channel = connection.create_channel().await.unwrap();
    let timer = ExpiryMessage { order_ids: vec![order_id], goods_id, expires_at: chrono::Utc::now() };
    let payload = serde_json::to_vec(&timer).unwrap();
    let exchange = stack.topology().names.expired_exchange;
    for _ in 0..2 {
        channel
            .basic_publish(exchange.as_str().into(), "".into(), Default::default(), &payload, Default::default())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    order_service::broker::close(&connection, channel).await;

    wait_for_cancelled(&stack, goods_id, 1).await;
    // Both copies delivered (none left in the queue), then the worker stops after the ones in hand.
    let delivered = testkit::wait_for(Duration::from_secs(30), || async {
        let connection =
            order_service::broker::connect(&secrecy::SecretString::from(testkit::amqp_url())).await.ok()?;
        let channel = connection.create_channel().await.ok()?;
        let passive = lapin::options::QueueDeclareOptions { passive: true, ..Default::default() };
        let queue = channel
            .queue_declare(stack.topology().names.expired_queue.as_str().into(), passive, Default::default())
            .await
            .ok()?;
        order_service::broker::close(&connection, channel).await;
        (queue.message_count() == 0).then_some(())
    })
    .await;
    assert!(delivered.is_some());
    worker.stop().await;

    assert_eq!(stack.db_stock(goods_id).await, 1, "one unit back in PostgreSQL, not two");
    assert_eq!(redis_stock(&stack, goods_id).await, 1, "one unit back in Redis, not two");
    let worker = stack.worker().await;
    let again = buy(&stack, goods_id, [2, 3, 4]).await;
    assert_eq!(again.len(), 1, "one unit to sell again");
    let audit = audit(&stack, goods_id).await;
    assert!(audit.is_clean(), "{:?}", audit.violations);
    worker.stop().await;
    stack.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_killed_while_cancelling_still_returns_each_unit_once() {
    let stack = Stack::start(Options::default()).await;
    let worker = stack.worker().await;
    let goods_id = stack.goods_with_window(300, 3).await;
    assert_eq!(buy(&stack, goods_id, 1..=300).await.len(), 300);
    // Killed as soon as the first cancellations land, with others in hand.
    let started = testkit::wait_for(Duration::from_secs(60), || async {
        let cancelled: i64 =
            sqlx::query_scalar("SELECT count(*) FROM orders WHERE goods_id = $1 AND status = 'cancelled'")
                .bind(goods_id)
                .fetch_one(&stack.db.pool)
                .await
                .unwrap();
        (cancelled > 0).then_some(cancelled)
    })
    .await;
    worker.abort();
    println!("worker killed with {started:?} of 300 orders cancelled");

    let worker = stack.worker().await;
    let audit = wait_for_cancelled(&stack, goods_id, 300).await;
    assert_eq!((audit.cancelled, audit.orders), (300, 0));
    assert_eq!((audit.db_stock, audit.redis_stock, audit.holds), (300, Some(300), 0), "each unit returned once");
    assert!(audit.is_clean(), "{:?}", audit.violations);
    worker.stop().await;
    stack.finish().await;
}
