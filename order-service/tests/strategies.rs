//! The purchase strategies (`order-service/src/strategy/`) on real PostgreSQL, Redis and
//! RabbitMQ: the correct ones sell every unit exactly once to a crowd that clicks twice; the
//! naive ones fail the way their files say. (How badly `db_check_then_update` oversells under a
//! crowd depends on timing, so it is measured by `loadtest scenario oversell`, not asserted here.)

mod support;

use std::collections::HashSet;

use contracts::order::OrderError;
use contracts::stock::PurchaseStrategy;
use futures::future::join_all;
use rpc::Error;
use support::{Options, Stack};

/// The orders' buyers of `goods`.
async fn buyers(stack: &Stack, goods: i64) -> Vec<i64> {
    sqlx::query_scalar("SELECT user_id FROM orders WHERE goods_id = $1")
        .bind(goods)
        .fetch_all(&stack.db.pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_correct_strategy_sells_each_unit_once_to_a_crowd_that_clicks_twice() {
    let stack = Stack::start(Options::default()).await;
    let worker = stack.worker().await;
    for strategy in [
        PurchaseStrategy::DbGuardedUpdate,
        PurchaseStrategy::DbForUpdate,
        PurchaseStrategy::RedisLuaSyncDb,
        PurchaseStrategy::LuaMq,
    ] {
        let goods = stack.goods_bought_by(50, strategy).await;
        // 400 buyers, each clicking twice at once: 800 concurrent purchases of 50 units.
        let attempts = join_all((0..800i64).map(|n| stack.place(30_000 + n / 2, goods))).await;
        let accepted = attempts.iter().filter(|a| a.is_ok()).count();
        let refused = attempts
            .iter()
            .filter(|a| matches!(a, Err(Error::Application(OrderError::SoldOut | OrderError::Duplicate))))
            .count();
        assert_eq!(
            (accepted, refused),
            (50, 750),
            "{}: every attempt is a ticket, sold out or a duplicate",
            strategy.name()
        );
        stack.wait_for_orders(goods, 50).await;
        let buyers = buyers(&stack, goods).await;
        assert_eq!(buyers.len(), 50, "{}", strategy.name());
        assert_eq!(buyers.iter().collect::<HashSet<_>>().len(), 50, "{}: no buyer twice", strategy.name());
        assert_eq!(stack.db_stock(goods).await, 0, "{}", strategy.name());
    }
    worker.stop().await;
    stack.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optimistic_locking_never_oversells_and_accepts_only_what_it_wrote() {
    let stack = Stack::start(Options::default()).await;
    let goods = stack.goods_bought_by(50, PurchaseStrategy::DbOptimistic).await;
    let attempts = join_all((0..800i64).map(|n| stack.place(40_000 + n / 2, goods))).await;
    let accepted = attempts.iter().filter(|a| a.is_ok()).count() as i64;
    let others_failed = attempts
        .iter()
        .filter(|a| {
            !matches!(
                a,
                Ok(_)
                    | Err(Error::Application(OrderError::SoldOut | OrderError::Duplicate | OrderError::Unavailable(_)))
            )
        })
        .count();
    assert_eq!(others_failed, 0, "refusals are sold out, duplicates, or conflicts that ran out of retries");
    let buyers = buyers(&stack, goods).await;
    assert_eq!(buyers.len() as i64, accepted, "every accepted purchase is an order, written in the request");
    assert_eq!(buyers.iter().collect::<HashSet<_>>().len(), buyers.len(), "no buyer twice");
    assert_eq!(accepted + stack.db_stock(goods).await, 50, "orders and stock add up");
    stack.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_decr_burns_a_unit_on_every_repeat_click() {
    let stack = Stack::start(Options::default()).await;
    let worker = stack.worker().await;
    let goods = stack.goods_bought_by(100, PurchaseStrategy::RedisDecr).await;
    for user in 50_000..50_020i64 {
        assert!(stack.place(user, goods).await.is_ok(), "the first click buys");
        assert_eq!(stack.place(user, goods).await, Err(Error::Application(OrderError::Duplicate)));
    }
    stack.wait_for_orders(goods, 20).await;
    let level = stack.stock.stock_level(goods).await.unwrap();
    // 20 units sold and 20 more gone from Redis with nobody's order behind them.
    assert_eq!((level.redis_stock, level.holds, level.db_stock), (Some(60), 20, 80));
    worker.stop().await;
    stack.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_then_update_looks_right_when_buyers_come_one_at_a_time() {
    let stack = Stack::start(Options::default()).await;
    let goods = stack.goods_bought_by(5, PurchaseStrategy::DbCheckThenUpdate).await;
    let mut accepted = 0;
    for user in 60_000..60_010i64 {
        match stack.place(user, goods).await {
            Ok(_) => accepted += 1,
            Err(err) => assert_eq!(err, Error::Application(OrderError::SoldOut)),
        }
    }
    // Its bug needs concurrency: one at a time, it sells exactly the stock.
    assert_eq!((accepted, buyers(&stack, goods).await.len(), stack.db_stock(goods).await), (5, 5, 0));
    assert_eq!(stack.place(60_000, goods).await, Err(Error::Application(OrderError::SoldOut)));
    stack.finish().await;
}
