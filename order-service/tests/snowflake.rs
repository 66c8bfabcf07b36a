//! Snowflake ids from generators whose worker ids are leased from the real Redis.

use contracts::keyspace::Keyspace;
use std::collections::HashSet;
use std::time::Duration;

use order_service::worker_lease::WorkerLease;
use secrecy::SecretString;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_ids_from_four_leased_generators_are_unique_and_increasing_per_generator() {
    let redis = platform::redis::connect(&SecretString::from("redis://127.0.0.1:6379"), 4).await.unwrap();
    let prefix = Keyspace::new(testkit::unique_name());
    let mut leases = Vec::new();
    for _ in 0..4 {
        leases.push(WorkerLease::acquire(&redis, &prefix, Duration::from_secs(30)).await.unwrap());
    }
    let worker_ids: HashSet<u16> = leases.iter().map(|lease| lease.worker_id()).collect();
    assert_eq!(worker_ids.len(), 4, "each lease holds a distinct worker id");

    let generators: Vec<_> = leases
        .iter()
        .map(|lease| {
            let ids = lease.snowflake().unwrap();
            std::thread::spawn(move || (0..250_000).map(|_| ids.next_id().unwrap()).collect::<Vec<i64>>())
        })
        .collect();
    let mut all = HashSet::with_capacity(1_000_000);
    for generator in generators {
        let ids = generator.join().unwrap();
        assert!(ids.windows(2).all(|pair| pair[1] > pair[0]), "ids must increase per generator");
        all.extend(ids);
    }
    assert_eq!(all.len(), 1_000_000, "every id is unique");

    for lease in leases {
        lease.release().await;
    }
    // Released ids are free again: leasing 1024 works.
    let mut again = Vec::new();
    for _ in 0..1024 {
        again.push(WorkerLease::acquire(&redis, &prefix, Duration::from_secs(30)).await.unwrap());
    }
    assert!(matches!(
        WorkerLease::acquire(&redis, &prefix, Duration::from_secs(30)).await,
        Err(order_service::worker_lease::LeaseError::Exhausted)
    ));
    for lease in again {
        lease.release().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_lost_with_redis_data_is_taken_back_and_ids_keep_coming() {
    let redis = platform::redis::connect(&SecretString::from("redis://127.0.0.1:6379"), 4).await.unwrap();
    let prefix = Keyspace::new(testkit::unique_name());
    let lease = WorkerLease::acquire(&redis, &prefix, Duration::from_millis(900)).await.unwrap();
    let ids = lease.snowflake().unwrap();
    let key = prefix.worker_lease(lease.worker_id());
    let mut conn = redis.get().await.unwrap();
    // Redis restarts empty: the lease key is gone.
    let _: i64 = deadpool_redis::redis::cmd("DEL").arg(&key).query_async(&mut *conn).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let exists: bool = deadpool_redis::redis::cmd("EXISTS").arg(&key).query_async(&mut *conn).await.unwrap();
    assert!(exists, "the renewal must take the lease back");
    assert!(ids.next_id().is_ok(), "ids keep coming once the lease is back");
    // Another process holding the id is different: then it is lost for good.
    let _: () = deadpool_redis::redis::cmd("SET").arg(&key).arg("someone-else").query_async(&mut *conn).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!(ids.next_id(), Err(order_service::snowflake::SnowflakeError::LeaseLost));
    let _: i64 = deadpool_redis::redis::cmd("DEL").arg(&key).query_async(&mut *conn).await.unwrap();
}

/// The uptime of the Redis at `url`, in seconds.
async fn uptime_secs(pool: &deadpool_redis::Pool) -> u64 {
    let mut conn = pool.get().await.unwrap();
    let info: String = deadpool_redis::redis::cmd("INFO").arg("server").query_async(&mut *conn).await.unwrap();
    info.lines().find_map(|line| line.strip_prefix("uptime_in_seconds:")).unwrap().trim().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_redis_restart_no_id_is_issued_before_earlier_holders_can_have_stopped() {
    const TTL: Duration = Duration::from_secs(2);
    let mut private = testkit::private::PrivateRedis::start();
    let redis = platform::redis::connect(&SecretString::from(private.url()), 4).await.unwrap();
    let keys = Keyspace::new(testkit::unique_name());
    // Redis just started: whoever held worker ids before it did may still be issuing them.
    let lease = WorkerLease::acquire(&redis, &keys, TTL).await.unwrap();
    let ids = lease.snowflake().unwrap();
    let issue_when_allowed = || async {
        let refused = std::sync::atomic::AtomicUsize::new(0);
        let issued = testkit::wait_for(Duration::from_secs(15), || async {
            match ids.next_id() {
                Ok(id) => Some(id),
                Err(order_service::snowflake::SnowflakeError::LeaseNotYetValid(_)) => {
                    refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    None
                }
                Err(other) => panic!("{other}"),
            }
        })
        .await;
        (issued.expect("ids come once the wait is over"), refused.into_inner())
    };
    let (_, refused) = issue_when_allowed().await;
    assert!(refused > 0, "no id right after Redis started");
    assert!(uptime_secs(&redis).await >= TTL.as_secs(), "the first id came after Redis had been up a TTL");
    // Redis crashes and comes back empty: the renewal takes the lease back and waits again.
    private.kill();
    private.restart();
    let taken_back = testkit::wait_for(Duration::from_secs(10), || async {
        matches!(ids.next_id(), Err(order_service::snowflake::SnowflakeError::LeaseNotYetValid(_))).then_some(())
    })
    .await;
    assert!(taken_back.is_some(), "after the restart the generator pauses");
    let (_, refused) = issue_when_allowed().await;
    assert!(refused > 0);
    assert!(uptime_secs(&redis).await >= TTL.as_secs(), "ids resume only once earlier holders are over");
    lease.release().await;
}
