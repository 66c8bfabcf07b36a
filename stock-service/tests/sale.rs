//! stock-service over real RPC, PostgreSQL and Redis: the purchase gate under concurrency.

use contracts::names::STOCK_SERVICE;
use platform::redis::RedisSettings;
use std::collections::HashMap;

use chrono::Utc;
use contracts::stock::{
    ClaimOutcome, NewGoods, ReleaseOutcome, ReleaseScope, ReserveOutcome, RewarmOutcome, StockError, StockServiceClient,
};
use futures::future::join_all;
use platform::node::NodeSettings;
use rpc::{Cluster, ClusterConfig, Error, Registry, StaticRegistry};
use stock_service::settings::WarmUpSettings;
use stock_service::{Application, Settings};
use testkit::TestDb;
use uuid::Uuid;

struct Sale {
    apps: Vec<Application>,
    /// The calls of the system's services (the sale-state operations are internal).
    client: StockServiceClient<Cluster>,
    /// An admin's calls (creating and warming sales).
    admin: StockServiceClient<Cluster>,
    db: TestDb,
    prefix: String,
    redis: deadpool_redis::Pool,
}

/// `instances` stock-services on one database and one Redis prefix, behind a balanced client.
async fn spawn(instances: usize) -> Sale {
    spawn_without(instances, Default::default()).await
}

/// [`spawn`], with `without`'s safeguards off.
async fn spawn_without(instances: usize, without: stock_service::settings::Without) -> Sale {
    let db = TestDb::create().await;
    let prefix = testkit::unique_name();
    let mut apps = Vec::new();
    for _ in 0..instances {
        let settings = Settings {
            node: NodeSettings::listening("127.0.0.1:0", None),
            registry: testkit::static_registry(),
            database: db.settings(),
            redis: RedisSettings::with_prefix(&prefix),
            without: without.clone(),
            // These tests warm up and lose sale states by hand: no scheduler racing them.
            warm_up: WarmUpSettings { enabled: false, ..Default::default() },
        };
        apps.push(Application::build(settings).await.expect("stock-service starts"));
    }
    let addrs: Vec<String> = apps.iter().map(|app| app.address().to_string()).collect();
    let registry = StaticRegistry::single(STOCK_SERVICE, addrs);
    let mut config = ClusterConfig::default();
    config.client.security = testkit::rpc_security();
    let anonymous = StockServiceClient::new(Cluster::new(registry.discover(STOCK_SERVICE), config));
    let client = anonymous.clone().with_credential(testkit::as_service());
    let admin = anonymous.with_credential(testkit::as_admin());
    Sale { apps, client, admin, db, prefix, redis: testkit::redis_pool().await }
}

impl Sale {
    async fn goods(&self, stock: i32) -> i64 {
        let now = Utc::now();
        let goods = NewGoods {
            name: "Flash phone".into(),
            description: String::new(),
            price_cents: 99_900,
            seckill_price_cents: 1_00,
            stock,
            start_at: now - chrono::Duration::hours(1),
            end_at: now + chrono::Duration::hours(1),
            strategy: Default::default(),
            buckets: 1,
            payment_window_secs: contracts::stock::DEFAULT_PAYMENT_WINDOW_SECS,
        };
        let created = self.admin.create_goods(goods).await.unwrap();
        self.admin.warm_up(created.goods_id).await.unwrap();
        created.goods_id
    }

    /// Orders written as order workers would: the rows and the guarded stock.
    async fn write_orders(&self, goods: i64, orders: &[(i64, Uuid)]) {
        for (n, (user, ticket)) in orders.iter().enumerate() {
            sqlx::query("INSERT INTO orders (id, user_id, goods_id, ticket, price_cents) VALUES ($1, $2, $3, $4, 100)")
                .bind(n as i64 + 1)
                .bind(user)
                .bind(goods)
                .bind(ticket)
                .execute(&self.db.pool)
                .await
                .unwrap();
        }
        sqlx::query("UPDATE seckill_goods SET stock = stock - $2 WHERE goods_id = $1")
            .bind(goods)
            .bind(orders.len() as i32)
            .execute(&self.db.pool)
            .await
            .unwrap();
    }

    async fn finish(self) {
        for app in self.apps {
            app.stop().await;
        }
        testkit::clear_redis_prefix(&self.redis, &self.prefix).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_buyers_for_a_hundred_units_through_three_instances_never_oversell() {
    let sale = spawn(3).await;
    let goods = sale.goods(100).await;
    let attempts = (0..2_000i64).map(|user| sale.client.reserve(goods, 10_000 + user, Uuid::new_v4()));
    let outcomes = join_all(attempts).await;
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for outcome in &outcomes {
        let kind = match outcome {
            Ok(ReserveOutcome::Reserved { .. }) => "reserved",
            Ok(ReserveOutcome::SoldOut) => "sold_out",
            other => panic!("unexpected {other:?}"),
        };
        *counts.entry(kind).or_default() += 1;
    }
    assert_eq!(counts.get("reserved"), Some(&100));
    assert_eq!(counts.get("sold_out"), Some(&1_900));
    let level = sale.client.stock_level(goods).await.unwrap();
    assert_eq!((level.redis_stock, level.holds), (Some(0), 100));
    assert_eq!(level.db_stock, 100, "only order workers touch the database stock");
    sale.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_user_clicking_fifty_times_at_once_gets_one_unit() {
    let sale = spawn(2).await;
    let goods = sale.goods(10).await;
    let outcomes = join_all((0..50).map(|_| sale.client.reserve(goods, 77, Uuid::new_v4()))).await;
    let reserved = outcomes.iter().filter(|o| matches!(o, Ok(ReserveOutcome::Reserved { .. }))).count();
    let duplicates = outcomes.iter().filter(|o| matches!(o, Ok(ReserveOutcome::Duplicate))).count();
    assert_eq!((reserved, duplicates), (1, 49));
    let level = sale.client.stock_level(goods).await.unwrap();
    assert_eq!(level.redis_stock, Some(9), "a repeat click must never burn stock");
    sale.finish().await;
}

#[tokio::test]
async fn a_retried_ticket_is_the_same_reservation() {
    let sale = spawn(1).await;
    let goods = sale.goods(5).await;
    let ticket = Uuid::new_v4();
    let first = sale.client.reserve(goods, 1, ticket).await.unwrap();
    let again = sale.client.reserve(goods, 1, ticket).await.unwrap();
    assert_eq!(first, ReserveOutcome::Reserved { stock_left: 4, price_cents: 100 });
    assert_eq!(again, first);
    assert_eq!(sale.client.stock_level(goods).await.unwrap().redis_stock, Some(4));
    sale.finish().await;
}

#[tokio::test]
async fn the_window_is_enforced() {
    let sale = spawn(1).await;
    let now = Utc::now();
    let mut ids = Vec::new();
    for (start, end) in [
        (now + chrono::Duration::hours(1), now + chrono::Duration::hours(2)),
        (now - chrono::Duration::hours(2), now - chrono::Duration::hours(1)),
    ] {
        let goods = NewGoods {
            name: "Window".into(),
            description: String::new(),
            price_cents: 10,
            seckill_price_cents: 5,
            stock: 3,
            start_at: start,
            end_at: end,
            strategy: Default::default(),
            buckets: 1,
            payment_window_secs: contracts::stock::DEFAULT_PAYMENT_WINDOW_SECS,
        };
        let id = sale.admin.create_goods(goods).await.unwrap().goods_id;
        sale.admin.warm_up(id).await.unwrap();
        ids.push(id);
    }
    assert!(matches!(sale.client.reserve(ids[0], 1, Uuid::new_v4()).await, Ok(ReserveOutcome::NotStarted { .. })));
    assert_eq!(sale.client.reserve(ids[1], 1, Uuid::new_v4()).await, Ok(ReserveOutcome::Ended));
    sale.finish().await;
}

#[tokio::test]
async fn release_is_idempotent_and_claims_protect_reservations() {
    let sale = spawn(1).await;
    let goods = sale.goods(1).await;
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    sale.client.reserve(goods, 1, alice).await.unwrap();
    assert_eq!(sale.client.reserve(goods, 2, bob).await.unwrap(), ReserveOutcome::SoldOut);

    assert_eq!(
        sale.client.release(goods, 1, Uuid::new_v4(), ReleaseScope::AnyHold).await,
        Ok(ReleaseOutcome::NotHeld),
        "another ticket releases nothing"
    );
    assert_eq!(sale.client.release(goods, 1, alice, ReleaseScope::Unclaimed).await, Ok(ReleaseOutcome::Released));
    assert_eq!(sale.client.release(goods, 1, alice, ReleaseScope::Unclaimed).await, Ok(ReleaseOutcome::NotHeld));
    assert_eq!(sale.client.stock_level(goods).await.unwrap().redis_stock, Some(1));

    // Bob gets the unit; a worker claims it; the reconciler's scope can no longer release it.
    assert!(matches!(sale.client.reserve(goods, 2, bob).await, Ok(ReserveOutcome::Reserved { .. })));
    let claims = sale.client.claim(goods, vec![(2, bob), (2, bob), (3, Uuid::new_v4())]).await.unwrap();
    assert_eq!(claims, vec![ClaimOutcome::Claimed, ClaimOutcome::AlreadyClaimed, ClaimOutcome::Lost]);
    assert_eq!(sale.client.release(goods, 2, bob, ReleaseScope::Unclaimed).await, Ok(ReleaseOutcome::Claimed));
    assert!(sale.client.stale_reservations(goods, 0).await.unwrap().is_empty(), "claimed holds are not stale");
    assert_eq!(sale.client.release(goods, 2, bob, ReleaseScope::AnyHold).await, Ok(ReleaseOutcome::Released));
    assert_eq!(sale.client.stock_level(goods).await.unwrap().redis_stock, Some(1));
    // Discard drops a hold without putting a unit back (the database refused the order).
    let carol = Uuid::new_v4();
    assert!(matches!(sale.client.reserve(goods, 3, carol).await, Ok(ReserveOutcome::Reserved { .. })));
    assert_eq!(sale.client.release(goods, 3, carol, ReleaseScope::Discard).await, Ok(ReleaseOutcome::Released));
    let level = sale.client.stock_level(goods).await.unwrap();
    assert_eq!((level.redis_stock, level.holds), (Some(0), 0));
    sale.finish().await;
}

#[tokio::test]
async fn a_lost_sale_state_is_rebuilt_from_postgresql() {
    let sale = spawn(1).await;
    let goods = sale.goods(10).await;
    // Two orders written (as order workers would: row + guarded stock), then Redis loses everything.
    let written = [(501i64, Uuid::new_v4()), (502, Uuid::new_v4())];
    sale.write_orders(goods, &written).await;
    sale.client.reserve(goods, 503, Uuid::new_v4()).await.unwrap();
    testkit::clear_redis_prefix(&sale.redis, &sale.prefix).await;
    // The next reserve finds no sale state and rebuilds it from PostgreSQL (8 units) first.
    assert!(matches!(
        sale.client.reserve(goods, 504, Uuid::new_v4()).await,
        Ok(ReserveOutcome::Reserved { stock_left: 7, .. })
    ));
    assert_eq!(sale.client.rewarm(goods).await, Ok(RewarmOutcome::Present), "nothing left for the reconciler");
    let level = sale.client.stock_level(goods).await.unwrap();
    assert_eq!((level.redis_stock, level.holds, level.db_stock), (Some(7), 3, 8));
    // Users with orders are buyers again; the lost reservation's unit is back on sale.
    assert_eq!(sale.client.reserve(goods, 501, Uuid::new_v4()).await, Ok(ReserveOutcome::Duplicate));
    assert!(matches!(
        sale.client.reserve(goods, 503, Uuid::new_v4()).await,
        Ok(ReserveOutcome::Reserved { stock_left: 6, .. })
    ));
    testkit::clear_redis_prefix(&sale.redis, &sale.prefix).await;
    assert_eq!(
        sale.client.rewarm(goods).await,
        Ok(RewarmOutcome::Rebuilt { stock: 8 }),
        "the reconciler's way still works"
    );
    sale.finish().await;
}

#[tokio::test]
async fn only_admins_create_and_warm_goods_and_bad_goods_are_refused() {
    let sale = spawn(1).await;
    let buyer = testkit::as_user(9);
    let now = Utc::now();
    let goods = NewGoods {
        name: "X".into(),
        description: String::new(),
        price_cents: 1,
        seckill_price_cents: 1,
        stock: 1,
        start_at: now,
        end_at: now + chrono::Duration::minutes(5),
        strategy: Default::default(),
        buckets: 1,
        payment_window_secs: contracts::stock::DEFAULT_PAYMENT_WINDOW_SECS,
    };
    assert_eq!(
        sale.client.clone().with_credential(buyer.clone()).create_goods(goods.clone()).await,
        Err(Error::Application(StockError::Forbidden))
    );
    let backwards = NewGoods { end_at: now - chrono::Duration::minutes(5), ..goods.clone() };
    assert!(matches!(sale.admin.create_goods(backwards).await, Err(Error::Application(StockError::Invalid(_)))));
    let created = sale.admin.create_goods(goods).await.unwrap();
    assert!(!created.warmed);
    assert_eq!(
        sale.client.clone().with_credential(buyer).warm_up(created.goods_id).await,
        Err(Error::Application(StockError::Forbidden))
    );
    assert_eq!(
        sale.client.reserve(created.goods_id, 1, Uuid::new_v4()).await,
        Err(Error::Application(StockError::NotWarmed(created.goods_id)))
    );
    assert_eq!(
        sale.client.reserve(424_242, 1, Uuid::new_v4()).await,
        Err(Error::Application(StockError::UnknownGoods(424_242)))
    );
    let warmed = sale.admin.warm_up(created.goods_id).await.unwrap();
    assert!(warmed.warmed && warmed.stock_left == 1);
    let listed = sale.client.list_goods().await.unwrap();
    assert_eq!(listed.len(), 1);
    sale.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reserve_that_finds_the_sale_state_lost_rebuilds_it_on_the_spot_once() {
    let sale = spawn(2).await;
    let goods = sale.goods(100).await;
    for user in 1..=3 {
        sale.client.reserve(goods, user, Uuid::new_v4()).await.unwrap();
    }
    // Redis restarts empty: no sale state at all.
    testkit::clear_redis_prefix(&sale.redis, &sale.prefix).await;
    // The crowd arrives: the first reserves rebuild it from PostgreSQL, once; every one is served.
    let outcomes = join_all((0..50i64).map(|n| sale.client.reserve(goods, 1_000 + n, Uuid::new_v4()))).await;
    let reserved = outcomes.iter().filter(|o| matches!(o, Ok(ReserveOutcome::Reserved { .. }))).count();
    assert_eq!(reserved, 50, "{:?}", outcomes.iter().find(|o| !matches!(o, Ok(ReserveOutcome::Reserved { .. }))));
    let level = sale.client.stock_level(goods).await.unwrap();
    // The three holds Redis lost are gone (their orders will fail); their units are on sale again.
    assert_eq!((level.redis_stock, level.holds), (Some(50), 50));
    sale.finish().await;
}

#[tokio::test]
async fn without_the_rebuild_a_lost_sale_stops_until_it_is_warmed_up_again() {
    let without = stock_service::settings::Without { sale_state_rebuild: true };
    let sale = spawn_without(1, without).await;
    let goods = sale.goods(100).await;
    sale.client.reserve(goods, 1, Uuid::new_v4()).await.unwrap();
    testkit::clear_redis_prefix(&sale.redis, &sale.prefix).await;
    assert_eq!(
        sale.client.reserve(goods, 2, Uuid::new_v4()).await,
        Err(rpc::Error::Application(StockError::NotWarmed(goods)))
    );
    sale.admin.warm_up(goods).await.unwrap();
    assert!(matches!(sale.client.reserve(goods, 2, Uuid::new_v4()).await, Ok(ReserveOutcome::Reserved { .. })));
    sale.finish().await;
}

#[tokio::test]
async fn a_resync_merges_the_orders_postgresql_has_into_the_holds_redis_kept() {
    let sale = spawn(1).await;
    let goods = sale.goods(10).await;
    for user in 1..=3 {
        sale.client.reserve(goods, user, Uuid::new_v4()).await.unwrap();
    }
    // User 4's order was claimed and committed, but Redis came back from its append-only file
    // without that last second: no trace of user 4 in Redis.
    sqlx::query("INSERT INTO orders (id, user_id, goods_id, ticket, price_cents) VALUES (1, 4, $1, $2, 100)")
        .bind(goods)
        .bind(Uuid::new_v4())
        .execute(&sale.db.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE seckill_goods SET stock = stock - 1 WHERE goods_id = $1")
        .bind(goods)
        .execute(&sale.db.pool)
        .await
        .unwrap();
    assert_eq!(sale.client.stock_level(goods).await.unwrap().redis_stock, Some(7), "one unit too many on sale");
    assert_eq!(sale.client.resync(goods).await, Ok(RewarmOutcome::Rebuilt { stock: 6 }));
    let level = sale.client.stock_level(goods).await.unwrap();
    assert_eq!((level.redis_stock, level.holds, level.db_stock), (Some(6), 4, 9));
    // User 4 is a buyer again in Redis: a second purchase is a duplicate.
    assert_eq!(sale.client.reserve(goods, 4, Uuid::new_v4()).await, Ok(ReserveOutcome::Duplicate));
    sale.finish().await;
}

#[tokio::test]
async fn stale_reservations_are_aged_by_redis_clock_not_the_callers() {
    let sale = spawn(1).await;
    let goods = sale.goods(10).await;
    let buyers = contracts::keyspace::Keyspace::new(&sale.prefix).sale(goods).buyers;
    let mut conn = sale.redis.get().await.unwrap();
    let (seconds, micros): (i64, i64) = deadpool_redis::redis::cmd("TIME").query_async(&mut *conn).await.unwrap();
    let redis_now = seconds * 1000 + micros / 1000;
    let (old, young) = (Uuid::new_v4(), Uuid::new_v4());
    // Two reservations as Redis stamped them: two minutes ago, and a second ago.
    for (user, ticket, at) in [(1, old, redis_now - 120_000), (2, young, redis_now - 1_000)] {
        let _: () = deadpool_redis::redis::cmd("HSET")
            .arg(&buyers)
            .arg(user)
            .arg(format!("r:{ticket}:{at}"))
            .query_async(&mut *conn)
            .await
            .unwrap();
    }
    let stale = sale.client.stale_reservations(goods, 60_000).await.unwrap();
    assert_eq!(stale.iter().map(|hold| hold.ticket).collect::<Vec<_>>(), vec![old]);
    sale.finish().await;
}

#[tokio::test]
async fn outside_development_the_built_in_cluster_key_is_refused_by_name() {
    let mut settings = Settings { node: NodeSettings::listening("127.0.0.1:0", None), ..Default::default() };
    settings.node.env = platform::env::Environment::Production;
    let refusal = Application::build(settings).await.expect_err("refused").to_string();
    assert!(refusal.contains("SECKILL_RPC__KEY"), "{refusal}");
}

/// Users whose home is bucket `bucket` of `buckets`, from `from` on.
fn users_at_home(bucket: u16, buckets: u16, from: i64, count: usize) -> Vec<i64> {
    (from..).filter(|user| contracts::keyspace::home_bucket(*user, buckets) == bucket).take(count).collect()
}

impl Sale {
    async fn goods_in_buckets(&self, stock: i32, buckets: u16) -> i64 {
        let now = Utc::now();
        let goods = NewGoods {
            name: "Hot phone".into(),
            description: String::new(),
            price_cents: 99_900,
            seckill_price_cents: 1_00,
            stock,
            start_at: now - chrono::Duration::hours(1),
            end_at: now + chrono::Duration::hours(1),
            strategy: Default::default(),
            buckets,
            payment_window_secs: contracts::stock::DEFAULT_PAYMENT_WINDOW_SECS,
        };
        let created = self.admin.create_goods(goods).await.unwrap();
        assert_eq!(created.buckets, buckets);
        self.admin.warm_up(created.goods_id).await.unwrap();
        created.goods_id
    }

    /// Each bucket's Redis stock and buyers.
    async fn buckets(&self, goods: i64, buckets: u16) -> Vec<(i64, usize)> {
        let keys = contracts::keyspace::Keyspace::new(&self.prefix);
        let mut conn = self.redis.get().await.unwrap();
        let mut out = Vec::new();
        for bucket in 0..buckets {
            let bucket = keys.stock_bucket(goods, bucket, buckets);
            let (stock, buyers): (i64, usize) = deadpool_redis::redis::pipe()
                .get(&bucket.stock)
                .hlen(&bucket.buyers)
                .query_async(&mut *conn)
                .await
                .unwrap();
            out.push((stock, buyers));
        }
        out
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_buyers_for_a_hundred_units_in_eight_buckets_buy_exactly_a_hundred() {
    let sale = spawn(3).await;
    let goods = sale.goods_in_buckets(100, 8).await;
    assert_eq!(sale.buckets(goods, 8).await.iter().map(|b| b.0).collect::<Vec<_>>(), [13, 13, 13, 13, 12, 12, 12, 12]);
    let attempts = (0..2_000i64).map(|user| sale.client.reserve(goods, 10_000 + user, Uuid::new_v4()));
    let outcomes = join_all(attempts).await;
    let reserved = outcomes.iter().filter(|o| matches!(o, Ok(ReserveOutcome::Reserved { .. }))).count();
    let sold_out = outcomes.iter().filter(|o| matches!(o, Ok(ReserveOutcome::SoldOut))).count();
    assert_eq!((reserved, sold_out), (100, 1_900), "every answer is a reservation or sold out");
    let level = sale.client.stock_level(goods).await.unwrap();
    assert_eq!((level.redis_stock, level.holds), (Some(0), 100), "the audit's figures are the buckets' sums");
    assert!(sale.buckets(goods, 8).await.iter().all(|b| b.0 == 0), "no unit left in any bucket");
    assert_eq!(sale.client.get_goods(goods).await.unwrap().stock_left, 0);
    sale.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sold_out_bucket_falls_through_and_its_buyers_stay_deduplicated_at_home() {
    let sale = spawn(2).await;
    // One unit per bucket; five buyers all at home in bucket 0.
    let goods = sale.goods_in_buckets(4, 4).await;
    let buyers = users_at_home(0, 4, 1, 5);
    for (n, user) in buyers[..4].iter().enumerate() {
        let outcome = sale.client.reserve(goods, *user, Uuid::new_v4()).await.unwrap();
        assert!(matches!(outcome, ReserveOutcome::Reserved { .. }), "buyer {n}: {outcome:?}");
    }
    assert_eq!(sale.client.reserve(goods, buyers[4], Uuid::new_v4()).await, Ok(ReserveOutcome::SoldOut));
    // Their holds are all at home, the units came from every bucket.
    assert_eq!(sale.buckets(goods, 4).await, [(0, 4), (0, 0), (0, 0), (0, 0)]);
    for user in &buyers[..4] {
        assert_eq!(sale.client.reserve(goods, *user, Uuid::new_v4()).await, Ok(ReserveOutcome::Duplicate));
    }
    // A unit given back goes home; a buyer clicking fifty times at once gets it once.
    let released_user = buyers[0];
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let holds = sale.client.stale_reservations(goods, 0).await.unwrap();
    let held = holds.iter().find(|h| h.user_id == released_user).expect("held");
    assert_eq!(
        sale.client.release(goods, released_user, held.ticket, ReleaseScope::AnyHold).await,
        Ok(ReleaseOutcome::Released)
    );
    let clicks = join_all((0..50).map(|_| sale.client.reserve(goods, buyers[4], Uuid::new_v4()))).await;
    let reserved = clicks.iter().filter(|o| matches!(o, Ok(ReserveOutcome::Reserved { .. }))).count();
    let duplicates = clicks.iter().filter(|o| matches!(o, Ok(ReserveOutcome::Duplicate))).count();
    assert_eq!((reserved, duplicates), (1, 49));
    let level = sale.client.stock_level(goods).await.unwrap();
    assert_eq!((level.redis_stock, level.holds), (Some(0), 4));
    sale.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buyers_racing_for_the_last_units_of_other_buckets_never_oversell() {
    let sale = spawn(2).await;
    // 2,000 buyers at home in bucket 0: all but its 3 units come from the other 7 buckets.
    let goods = sale.goods_in_buckets(24, 8).await;
    let buyers = users_at_home(0, 8, 1, 2_000);
    let outcomes = join_all(buyers.iter().map(|user| sale.client.reserve(goods, *user, Uuid::new_v4()))).await;
    let reserved = outcomes.iter().filter(|o| matches!(o, Ok(ReserveOutcome::Reserved { .. }))).count();
    let sold_out = outcomes.iter().filter(|o| matches!(o, Ok(ReserveOutcome::SoldOut))).count();
    assert_eq!((reserved, sold_out), (24, 1_976));
    let buckets = sale.buckets(goods, 8).await;
    assert_eq!(buckets[0], (0, 24));
    assert!(buckets[1..].iter().all(|b| *b == (0, 0)), "{buckets:?}");
    sale.finish().await;
}

#[tokio::test]
async fn claims_and_stale_reservations_span_every_bucket() {
    let sale = spawn(1).await;
    let goods = sale.goods_in_buckets(20, 4).await;
    let mut holds = Vec::new();
    for bucket in 0..4 {
        for user in users_at_home(bucket, 4, 1, 2) {
            let ticket = Uuid::new_v4();
            assert!(matches!(sale.client.reserve(goods, user, ticket).await, Ok(ReserveOutcome::Reserved { .. })));
            holds.push((user, ticket));
        }
    }
    // Reservations strictly older than Redis's clock now: let it tick past the last one.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert_eq!(sale.client.stale_reservations(goods, 0).await.unwrap().len(), 8);
    let mut batch = holds.clone();
    batch.insert(3, (999_999, Uuid::new_v4()));
    let outcomes = sale.client.claim(goods, batch).await.unwrap();
    let mut expected = vec![ClaimOutcome::Claimed; 8];
    expected.insert(3, ClaimOutcome::Lost);
    assert_eq!(outcomes, expected, "one answer per hold, in the order asked");
    assert_eq!(sale.client.claim(goods, holds.clone()).await.unwrap(), vec![ClaimOutcome::AlreadyClaimed; 8]);
    assert!(sale.client.stale_reservations(goods, 0).await.unwrap().is_empty(), "claimed holds are not stale");
    let (user, ticket) = holds[5];
    assert_eq!(sale.client.release(goods, user, ticket, ReleaseScope::Unclaimed).await, Ok(ReleaseOutcome::Claimed));
    sale.finish().await;
}

#[tokio::test]
async fn a_bucketed_sale_lost_from_redis_is_rebuilt_with_every_order_at_home() {
    let sale = spawn(1).await;
    let goods = sale.goods_in_buckets(10, 4).await;
    let written: Vec<(i64, Uuid)> = users_at_home(2, 4, 1, 3).into_iter().map(|user| (user, Uuid::new_v4())).collect();
    sale.write_orders(goods, &written).await;
    testkit::clear_redis_prefix(&sale.redis, &sale.prefix).await;
    let buyer = users_at_home(0, 4, 1, 1)[0];
    assert!(matches!(sale.client.reserve(goods, buyer, Uuid::new_v4()).await, Ok(ReserveOutcome::Reserved { .. })));
    // 7 units left were shared out (2, 2, 2+3 orders, 1); then one was reserved in bucket 0.
    assert_eq!(sale.buckets(goods, 4).await, [(1, 1), (2, 0), (2, 3), (1, 0)]);
    let level = sale.client.stock_level(goods).await.unwrap();
    assert_eq!((level.redis_stock, level.holds, level.db_stock), (Some(6), 4, 7));
    for (user, _) in &written {
        assert_eq!(sale.client.reserve(goods, *user, Uuid::new_v4()).await, Ok(ReserveOutcome::Duplicate));
    }
    sale.finish().await;
}

#[tokio::test]
async fn a_bucketed_resync_recounts_each_bucket_from_its_own_ledger() {
    let sale = spawn(1).await;
    let goods = sale.goods_in_buckets(8, 2).await;
    // Bucket 1's buyers take its 4 units and 2 of bucket 0's.
    for user in users_at_home(1, 2, 1, 6) {
        assert!(matches!(sale.client.reserve(goods, user, Uuid::new_v4()).await, Ok(ReserveOutcome::Reserved { .. })));
    }
    assert_eq!(sale.buckets(goods, 2).await, [(2, 0), (0, 6)]);
    // An order of a bucket-0 buyer that Redis no longer has (restored from an older AOF).
    let missing = users_at_home(0, 2, 1, 1)[0];
    sqlx::query("INSERT INTO orders (id, user_id, goods_id, ticket, price_cents) VALUES (1, $1, $2, $3, 100)")
        .bind(missing)
        .bind(goods)
        .bind(Uuid::new_v4())
        .execute(&sale.db.pool)
        .await
        .unwrap();
    assert_eq!(sale.client.resync(goods).await, Ok(RewarmOutcome::Rebuilt { stock: 1 }));
    assert_eq!(sale.buckets(goods, 2).await, [(1, 1), (0, 6)], "the moved units stay counted where they went");
    assert_eq!(sale.client.reserve(goods, missing, Uuid::new_v4()).await, Ok(ReserveOutcome::Duplicate));
    sale.finish().await;
}

#[tokio::test]
async fn stock_buckets_are_refused_out_of_range_or_with_a_strategy_that_cannot_use_them() {
    let sale = spawn(1).await;
    let now = Utc::now();
    let goods = |buckets, strategy| NewGoods {
        name: "Hot phone".into(),
        description: String::new(),
        price_cents: 100,
        seckill_price_cents: 1,
        stock: 10,
        start_at: now,
        end_at: now + chrono::Duration::hours(1),
        strategy,
        buckets,
        payment_window_secs: contracts::stock::DEFAULT_PAYMENT_WINDOW_SECS,
    };
    for buckets in [0, 65] {
        let refused = sale.admin.create_goods(goods(buckets, Default::default())).await;
        assert!(
            matches!(refused, Err(Error::Application(StockError::Invalid(ref what))) if what.contains("buckets")),
            "{refused:?}"
        );
    }
    let refused = sale.admin.create_goods(goods(4, contracts::stock::PurchaseStrategy::DbGuardedUpdate)).await;
    assert!(
        matches!(refused, Err(Error::Application(StockError::Invalid(ref what))) if what.contains("db_guarded_update")),
        "{refused:?}"
    );
    let fine = sale.admin.create_goods(goods(64, contracts::stock::PurchaseStrategy::RedisLuaSyncDb)).await.unwrap();
    assert_eq!(fine.buckets, 64);
    sale.finish().await;
}
