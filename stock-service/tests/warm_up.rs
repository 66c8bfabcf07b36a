//! The warm-up scheduler over real RPC, PostgreSQL and Redis: sales warmed up ahead of their
//! start with no admin call, exactly once across instances, and rebuilt when Redis loses them.

use std::time::Duration;

use chrono::Utc;
use contracts::keyspace::{Keyspace, SaleLock};
use contracts::names::STOCK_SERVICE;
use contracts::stock::{NewGoods, ReserveOutcome, StockError, StockServiceClient};
use platform::node::NodeSettings;
use platform::redis::RedisSettings;
use rpc::{Cluster, ClusterConfig, Registry, StaticRegistry};
use stock_service::settings::WarmUpSettings;
use stock_service::{Application, Settings};
use testkit::TestDb;
use uuid::Uuid;

/// How long a test waits for what the scheduler should do within a few seconds.
const PATIENCE: Duration = Duration::from_secs(15);

struct Instances {
    apps: Vec<Application>,
    /// The calls of the system's services (reserve, stock levels).
    client: StockServiceClient<Cluster>,
    /// An admin's calls (creating goods; never a warm-up here).
    admin: StockServiceClient<Cluster>,
    db: TestDb,
    prefix: String,
    redis: deadpool_redis::Pool,
}

/// `count` stock-services on one database and Redis prefix, scheduling warm-ups 1 s ahead and
/// looking every 200 ms.
async fn spawn(count: usize) -> Instances {
    let db = TestDb::create().await;
    let prefix = testkit::unique_name();
    let mut apps = Vec::new();
    for _ in 0..count {
        let settings = Settings {
            node: NodeSettings::listening("127.0.0.1:0", None),
            registry: testkit::static_registry(),
            database: db.settings(),
            redis: RedisSettings::with_prefix(&prefix),
            warm_up: WarmUpSettings {
                enabled: true,
                lead: Duration::from_secs(1),
                interval: Duration::from_millis(200),
            },
            ..Default::default()
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
    Instances { apps, client, admin, db, prefix, redis: testkit::redis_pool().await }
}

impl Instances {
    /// Creates (and does not warm up) a sale of 10 units starting `in_secs` from now.
    async fn sale_starting_in(&self, in_secs: i64) -> i64 {
        let now = Utc::now();
        let goods = NewGoods {
            name: "Scheduled phone".into(),
            description: String::new(),
            price_cents: 99_900,
            seckill_price_cents: 1_00,
            stock: 10,
            start_at: now + chrono::Duration::seconds(in_secs),
            end_at: now + chrono::Duration::hours(1),
            strategy: Default::default(),
            buckets: 1,
            payment_window_secs: contracts::stock::DEFAULT_PAYMENT_WINDOW_SECS,
        };
        let created = self.admin.create_goods(goods).await.expect("goods created");
        assert!(!created.warmed, "nobody warms a sale up at creation");
        created.goods_id
    }

    /// Reserves until the answer is neither "not warmed up" nor "not started": that answer.
    async fn reserve_once_open(&self, goods: i64) -> Result<ReserveOutcome, rpc::Error<StockError>> {
        testkit::wait_for(PATIENCE, || async {
            match self.client.reserve(goods, 1, Uuid::new_v4()).await {
                Err(rpc::Error::Application(StockError::NotWarmed(_))) | Ok(ReserveOutcome::NotStarted { .. }) => None,
                other => Some(other),
            }
        })
        .await
        .expect("the sale never opened: the scheduler did not warm it up")
    }

    /// Waits until Redis holds `goods`' sale state: its stock there.
    async fn redis_stock(&self, goods: i64) -> i64 {
        testkit::wait_for(PATIENCE, || async { self.client.stock_level(goods).await.ok()?.redis_stock })
            .await
            .expect("the sale state never appeared in Redis")
    }

    /// The scheduled warm-ups of every instance, summed.
    fn scheduled_warm_ups(&self) -> u64 {
        self.apps.iter().map(Application::scheduled_warm_ups).sum()
    }

    async fn warmed_at_is_set(&self, goods: i64) -> bool {
        let (set,): (bool,) = sqlx::query_as("SELECT warmed_at IS NOT NULL FROM seckill_goods WHERE goods_id = $1")
            .bind(goods)
            .fetch_one(&self.db.pool)
            .await
            .unwrap();
        set
    }

    async fn finish(self) {
        for app in self.apps {
            app.stop().await;
        }
        testkit::clear_redis_prefix(&self.redis, &self.prefix).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_warm_a_sale_up_before_it_opens_exactly_once_with_no_admin_call() {
    let instances = spawn(3).await;
    let goods = instances.sale_starting_in(3).await;

    let outcome = instances.reserve_once_open(goods).await;

    assert!(matches!(outcome, Ok(ReserveOutcome::Reserved { stock_left: 9, .. })), "{outcome:?}");
    assert_eq!(instances.scheduled_warm_ups(), 1, "one warm-up among the three instances");
    assert!(instances.warmed_at_is_set(goods).await, "the scheduled warm-up is recorded as the first one");
    instances.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_that_waited_on_the_goods_lock_find_the_sale_warmed_and_do_nothing() {
    let instances = spawn(3).await;
    let goods = instances.sale_starting_in(3).await;
    // Hold the goods' advisory lock (as a long build would) across the moment the sale is due,
    // until every instance's scheduler is queued behind it with `warmed_at` read as NULL.
    let mut holder = instances.db.pool.begin().await.unwrap();
    sqlx::query(SaleLock::EXCLUSIVE).bind(SaleLock::of(goods).id()).execute(&mut *holder).await.unwrap();
    let queued = testkit::wait_for(PATIENCE, || async {
        let (waiting,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
              WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = current_database()",
        )
        .fetch_one(&instances.db.pool)
        .await
        .ok()?;
        (waiting == 3).then_some(())
    })
    .await;
    assert!(queued.is_some(), "the three schedulers never queued on the goods' lock");

    holder.rollback().await.unwrap();
    let outcome = instances.reserve_once_open(goods).await;

    assert!(matches!(outcome, Ok(ReserveOutcome::Reserved { stock_left: 9, .. })), "{outcome:?}");
    assert_eq!(instances.scheduled_warm_ups(), 1, "the two that waited saw `warmed_at` set under the lock");
    instances.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_sale_that_redis_lost_before_it_opens_is_rebuilt_with_no_admin_call() {
    let instances = spawn(2).await;
    let goods = instances.sale_starting_in(4).await;
    assert_eq!(instances.redis_stock(goods).await, 10, "warmed up by the scheduler");

    // Redis loses the sale state (no reserve is sent: a reserve would rebuild it itself).
    let keys = Keyspace::new(&instances.prefix).sale(goods);
    let mut conn = instances.redis.get().await.unwrap();
    let deleted: i64 = deadpool_redis::redis::cmd("DEL")
        .arg(&keys.meta)
        .arg(&keys.stock)
        .arg(&keys.buyers)
        .arg(&keys.results)
        .query_async(&mut *conn)
        .await
        .unwrap();
    assert!(deleted >= 2, "the sale's meta and stock were in Redis and are gone ({deleted} keys deleted)");

    assert_eq!(instances.redis_stock(goods).await, 10, "rebuilt from PostgreSQL by the scheduler");
    assert_eq!(instances.scheduled_warm_ups(), 1, "a rebuild is not another first warm-up");
    let outcome = instances.reserve_once_open(goods).await;
    assert!(matches!(outcome, Ok(ReserveOutcome::Reserved { stock_left: 9, .. })), "{outcome:?}");
    instances.finish().await;
}
