//! The small holes a review found, each closed and shown closed on the real services.

mod support;

use std::time::Duration;

use contracts::keyspace::Keyspace;
use contracts::order::{OrderError, OrderMessage, OrderResult};
use deadpool_redis::redis;
use rpc::Error;
use support::{Options, Stack};
use testkit::fault_proxy::Fault;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_placed_twice_takes_one_unit_and_makes_one_order() {
    let stack = Stack::start(Options::default()).await;
    let goods = stack.goods(5).await;
    let ticket = Uuid::new_v4();
    // The same attempt twice, as a retry on another order-service node would send it.
    let first = stack.orders_of(7).place(goods, ticket).await.unwrap();
    let again = stack.orders_of(7).place(goods, ticket).await.unwrap();
    assert_eq!((first.ticket, again.ticket), (ticket, ticket));
    let level = stack.stock.stock_level(goods).await.unwrap();
    assert_eq!((level.redis_stock, level.holds), (Some(4), 1), "one unit for the ticket, however often placed");
    let worker = stack.worker().await;
    stack.wait_for_orders(goods, 1).await;
    let settled = testkit::wait_for(Duration::from_secs(20), || async {
        matches!(stack.result(7, goods).await, Ok(OrderResult::Success { .. })).then_some(())
    })
    .await;
    assert!(settled.is_some(), "the ticket ends as its order");
    tokio::time::sleep(Duration::from_millis(300)).await; // the second message settles too
    assert_eq!(stack.order_count(goods).await, 1, "the second message of the ticket made no second order");
    assert_eq!(stack.db_stock(goods).await, 4);
    let level = stack.stock.stock_level(goods).await.unwrap();
    assert_eq!((level.redis_stock, level.holds), (Some(4), 1), "and stranded no unit");
    assert_eq!(stack.dead_letters().await, 0);
    // Another ticket of the same user is a duplicate, not a second unit.
    assert_eq!(stack.place(7, goods).await, Err(Error::Application(OrderError::Duplicate)));
    worker.stop().await;
    stack.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_stuck_at_queued_whose_order_is_committed_reads_success() {
    let stack = Stack::start(Options::default()).await;
    let goods = stack.goods(5).await;
    let ticket = Uuid::new_v4();
    // The order was committed, but the worker's write of the result never reached Redis: the
    // entry still says "queued", since long ago.
    sqlx::query("INSERT INTO orders (id, user_id, goods_id, ticket, price_cents) VALUES (4242, 9, $1, $2, 100)")
        .bind(goods)
        .bind(ticket)
        .execute(&stack.db.pool)
        .await
        .unwrap();
    let results_key = Keyspace::new(&stack.prefix).sale(goods).results;
    let mut conn = stack.redis.get().await.unwrap();
    let _: () = redis::cmd("HSET")
        .arg(&results_key)
        .arg(9)
        .arg(format!("q:{ticket}:1000"))
        .query_async(&mut *conn)
        .await
        .unwrap();
    assert_eq!(stack.result(9, goods).await, Ok(OrderResult::Success { order_id: 4242 }));
    let repaired: String = redis::cmd("HGET").arg(&results_key).arg(9).query_async(&mut *conn).await.unwrap();
    assert_eq!(repaired, format!("s:{ticket}:4242"), "the entry is repaired");
    stack.finish().await;
}

#[tokio::test]
async fn an_order_id_that_collides_is_an_error_never_taken_for_already_ordered() {
    let stack = Stack::start(Options::default()).await;
    let goods = stack.goods(5).await;
    let message = |user_id| OrderMessage { ticket: Uuid::new_v4(), user_id, goods_id: goods, price_cents: 100 };
    let mut conn = stack.db.pool.acquire().await.unwrap();
    let first = message(1);
    let inserted = order_service::store::insert_orders(&mut conn, &[(77, &first)]).await.unwrap();
    assert_eq!(inserted.len(), 1);
    // The same user again (a redelivery, another ticket): skipped, as "already ordered".
    let retry = message(1);
    assert!(order_service::store::insert_orders(&mut conn, &[(78, &retry)]).await.unwrap().is_empty());
    // Another user with a colliding id: an error, not a silent skip that would resell the unit.
    let collision = order_service::store::insert_orders(&mut conn, &[(77, &message(2))]).await;
    let constraint = match collision {
        Err(sqlx::Error::Database(db)) => db.constraint().map(str::to_owned),
        other => panic!("a colliding id must fail, got {other:?}"),
    };
    assert_eq!(constraint.as_deref(), Some("orders_pkey"));
    drop(conn);
    assert_eq!(stack.order_count(goods).await, 1);
    stack.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reserve_whose_answer_is_lost_gives_its_unit_back_without_the_reconciler() {
    let options = Options {
        stock_through_proxy: Some(Duration::from_millis(300)),
        orphan_check: Duration::from_millis(1_500),
        ..Default::default()
    };
    let stack = Stack::start(options).await;
    let goods = stack.goods(5).await;
    let proxy = stack.stock_proxy.as_ref().unwrap();
    // A purchase opens order-service's connection to stock-service through the proxy.
    assert!(stack.place(2, goods).await.is_ok());
    // stock-service reserves, but its answer arrives after order-service stopped waiting.
    proxy.set(Fault::Latency(Duration::from_millis(700)));
    assert!(matches!(stack.place(3, goods).await, Err(Error::Application(OrderError::Unavailable(_)))));
    let reserved = testkit::wait_for(Duration::from_secs(5), || async {
        (stack.stock.stock_level(goods).await.unwrap().holds == 2).then_some(())
    })
    .await;
    assert!(reserved.is_some(), "the reserve did happen, late");
    proxy.set(Fault::None);
    // No reconciler runs in this stack: order-service itself gives the orphaned unit back.
    let released = testkit::wait_for(Duration::from_secs(15), || async {
        let level = stack.stock.stock_level(goods).await.unwrap();
        (level.holds == 1 && level.redis_stock == Some(4)).then_some(())
    })
    .await;
    assert!(released.is_some(), "the unit came back");
    // And the buyer can buy it.
    assert!(stack.place(3, goods).await.is_ok());
    stack.finish().await;
}
