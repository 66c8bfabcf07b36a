//! The Redis registry with real servers: discovery, change notification, crash expiry, and a
//! Redis outage. The shared Redis (127.0.0.1:6379) is used under a unique key prefix per test;
//! the outage test runs a private `redis-server` so it can stop it without disturbing others.
//!
//! Bounds such as "within 3 s" are hang detectors chosen to tell mechanisms apart (e.g. the
//! resync interval is set to 60 s, so a change seen within seconds came from a notification or
//! from the expiry schedule), not speed measurements.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rpc::registry::{RedisRegistryConfig, RegistryError};
use rpc::{Cluster, ClusterConfig, Instance, RedisRegistry, Registration, Registry};
use support::*;

const SHARED_REDIS: &str = "redis://127.0.0.1:6379";

fn unique_prefix(test: &str) -> String {
    format!("test:rpc-governance:{test}:{:016x}", rand::random::<u64>())
}

async fn connect(url: &str, config: &RedisRegistryConfig) -> RedisRegistry {
    let client = redis::Client::open(url).expect("redis url");
    RedisRegistry::connect(client, config.clone()).await.expect("redis reachable")
}

async fn register_all(registry: &RedisRegistry, nodes: &[TestNode]) -> Vec<Registration> {
    let mut registrations = Vec::new();
    for node in nodes {
        registrations.push(registry.register(Instance::new("Lab", node.addr)).await.expect("register"));
    }
    registrations
}

/// Waits until `cluster` lists `n` endpoints.
async fn wait_for_endpoints(cluster: &Cluster, n: usize, limit: Duration) -> bool {
    eventually(limit, || cluster.endpoints().len() == n).await
}

/// Keys left under `prefix` (every test must leave none).
async fn keys_under(prefix: &str) -> Vec<String> {
    let client = redis::Client::open(SHARED_REDIS).expect("redis url");
    let mut conn = client.get_multiplexed_async_connection().await.expect("redis reachable");
    redis::cmd("KEYS").arg(format!("{prefix}*")).query_async(&mut conn).await.expect("KEYS")
}

async fn delete_keys(prefix: &str) {
    let keys = keys_under(prefix).await;
    if !keys.is_empty() {
        let client = redis::Client::open(SHARED_REDIS).expect("redis url");
        let mut conn = client.get_multiplexed_async_connection().await.expect("redis reachable");
        let _: () = redis::cmd("DEL").arg(keys).query_async(&mut conn).await.expect("DEL");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_are_discovered_through_notifications_warm_up_and_a_graceful_stop_deregisters_at_once() {
    let prefix = unique_prefix("notify");
    let config = RedisRegistryConfig {
        prefix: prefix.clone(),
        ttl: Duration::from_secs(60),
        resync_interval: Duration::from_secs(60),
        ..Default::default()
    };
    let servers = connect(SHARED_REDIS, &config).await;
    let clients = connect(SHARED_REDIS, &config).await;
    let cluster =
        Cluster::new(clients.discover("Lab"), ClusterConfig { warmup: Duration::from_secs(60), ..Default::default() });
    let lab = LabClient::new(cluster.clone());

    // Discover first, register after: only the change notification can bring them in time.
    let nodes = TestNode::spawn_many(3).await;
    let mut registrations = register_all(&servers, &nodes).await;
    assert!(wait_for_endpoints(&cluster, 3, Duration::from_secs(5)).await, "{:?}", cluster.endpoints());
    for endpoint in cluster.endpoints() {
        assert!(
            endpoint.effective_weight < endpoint.weight / 10,
            "a node that just started is warming up: {endpoint:?}"
        );
    }
    for _ in 0..30 {
        lab.whoami().await.expect("call");
    }

    // Graceful stop: deregister first, then shut the server down.
    let leaving = registrations.remove(0);
    let leaving_addr = leaving.instance().addr.clone();
    leaving.deregister().await;
    assert!(wait_for_endpoints(&cluster, 2, Duration::from_secs(5)).await, "{:?}", cluster.endpoints());
    assert!(cluster.endpoints().iter().all(|e| e.addr != leaving_addr));
    let mut nodes = nodes.into_iter();
    nodes.next().expect("three nodes").handle.shutdown().await;
    for _ in 0..100 {
        assert_ne!(lab.record().await.expect("no call may fail"), 1);
    }

    for registration in registrations {
        registration.deregister().await;
    }
    assert_eq!(keys_under(&prefix).await, Vec::<String>::new(), "deregistering the last entry leaves no key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_node_leaves_every_client_within_the_ttl_and_then_no_call_fails() {
    let prefix = unique_prefix("crash");
    let ttl = Duration::from_secs(1);
    let config = RedisRegistryConfig {
        prefix: prefix.clone(),
        ttl,
        heartbeat_interval: Duration::from_millis(250),
        resync_interval: Duration::from_secs(60),
        ..Default::default()
    };
    let servers = connect(SHARED_REDIS, &config).await;
    // Two client processes, each with its own registry client.
    let mut clusters = Vec::new();
    for _ in 0..2 {
        let registry = connect(SHARED_REDIS, &config).await;
        clusters.push(Cluster::new(registry.discover("Lab"), ClusterConfig::default()));
    }
    let nodes = TestNode::spawn_many(3).await;
    let mut registrations = register_all(&servers, &nodes).await;
    for cluster in &clusters {
        assert!(wait_for_endpoints(cluster, 3, Duration::from_secs(5)).await);
    }

    // Crash node 3: no deregistration, the port goes dead, heartbeats stop.
    let mut nodes = nodes;
    let crashed = nodes.pop().expect("three nodes");
    registrations.pop().expect("three registrations").abort();
    crashed.handle.abort();
    let crashed_at = Instant::now();
    for cluster in &clusters {
        // Resync is 60 s away: only the client's own expiry schedule can drop it this soon.
        assert!(wait_for_endpoints(cluster, 2, ttl * 3).await, "{:?}", cluster.endpoints());
    }
    eprintln!("crashed node left both clients after {:?} (TTL {ttl:?})", crashed_at.elapsed());
    for cluster in &clusters {
        let lab = LabClient::new(cluster.clone());
        for _ in 0..200 {
            assert_ne!(lab.record().await.expect("no call may fail once the node is gone"), 3);
        }
    }
    for registration in registrations {
        registration.deregister().await;
    }
    delete_keys(&prefix).await;
}

/// A `redis-server` of our own, so that the test can stop and restart it.
struct PrivateRedis {
    port: u16,
    child: Option<Child>,
    extra: Vec<String>,
}

impl PrivateRedis {
    fn start() -> PrivateRedis {
        PrivateRedis::start_with(&[])
    }

    /// With extra `redis-server` arguments (a password, say).
    fn start_with(extra: &[&str]) -> PrivateRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let extra = extra.iter().map(|arg| arg.to_string()).collect();
        let mut redis = PrivateRedis { port, child: None, extra };
        redis.restart();
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(&self.extra)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < until, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        // Whatever answers must be our child, not another process that took the port meanwhile.
        let exited = self.child.as_mut().map(|child| child.try_wait());
        assert!(matches!(exited, Some(Ok(None))), "redis-server exited: {exited:?}");
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_go_on_over_the_cached_list_while_redis_is_down_and_discovery_recovers() {
    let mut redis = PrivateRedis::start();
    let config = RedisRegistryConfig {
        prefix: unique_prefix("outage"),
        ttl: Duration::from_secs(2),
        heartbeat_interval: Duration::from_millis(200),
        resync_interval: Duration::from_millis(200),
        command_timeout: Duration::from_millis(300),
        register_attempts: 3,
        register_backoff: Duration::from_millis(50),
    };
    let servers = connect(&redis.url(), &config).await;
    let clients = connect(&redis.url(), &config).await;
    let cluster = Cluster::new(clients.discover("Lab"), ClusterConfig::default());
    let lab = LabClient::new(cluster.clone());
    let nodes = TestNode::spawn_many(3).await;
    let _registrations = register_all(&servers, &nodes[..2]).await;
    assert!(wait_for_endpoints(&cluster, 2, Duration::from_secs(5)).await);
    assert!(cluster.discovery().is_live());

    redis.stop();
    assert!(eventually(Duration::from_secs(5), || !cluster.discovery().is_live()).await, "the outage went unnoticed");
    for _ in 0..200 {
        lab.record().await.expect("calls go on over the cached list");
    }
    assert_eq!(cluster.endpoints().len(), 2);
    match servers.register(Instance::new("Lab", nodes[2].addr)).await {
        Err(RegistryError::Unreachable { attempts: 3, .. }) => {}
        other => panic!("registering without Redis must fail after 3 attempts, got {other:?}"),
    }

    // Redis comes back empty (no persistence): heartbeats re-register, discovery is live again.
    redis.restart();
    assert!(eventually(Duration::from_secs(10), || cluster.discovery().is_live()).await, "discovery did not recover");
    let _third = servers.register(Instance::new("Lab", nodes[2].addr)).await.expect("register after recovery");
    assert!(wait_for_endpoints(&cluster, 3, Duration::from_secs(5)).await, "{:?}", cluster.endpoints());
    for _ in 0..100 {
        lab.record().await.expect("call");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_redis_with_a_password_or_an_acl_user_works_through_the_url() {
    let redis = PrivateRedis::start_with(&["--requirepass", "default-secret"]);
    let config = RedisRegistryConfig { prefix: unique_prefix("auth"), ..Default::default() };
    let url = |userinfo: &str| format!("redis://{userinfo}@127.0.0.1:{}", redis.port);
    // Without the password the registry cannot even connect.
    let refused = RedisRegistry::connect(redis::Client::open(redis.url()).unwrap(), config.clone()).await;
    assert!(refused.is_err(), "an unauthenticated registry must not connect");
    // The default user's password, then an ACL user of its own with only what a registry needs.
    let admin = connect(&url(":default-secret"), &config).await;
    let mut conn =
        redis::Client::open(url(":default-secret")).unwrap().get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("ACL")
        .arg(&["SETUSER", "registry", "on", ">registry-secret", "resetkeys", &format!("~{}:*", config.prefix)])
        .arg(&["resetchannels", &format!("&{}:*", config.prefix), "+@all", "-@dangerous"])
        .query_async(&mut conn)
        .await
        .unwrap();
    let scoped = connect(&url("registry:registry-secret"), &config).await;
    let node = TestNode::spawn(1).await;
    let _registration = scoped.register(Instance::new("Lab", node.addr)).await.expect("register as the ACL user");
    let mut discovery = admin.discover("Lab");
    discovery.ready().await;
    assert_eq!(discovery.instances().len(), 1);
    // The ACL user is confined to the registry's keys.
    let mut scoped_conn =
        redis::Client::open(url("registry:registry-secret")).unwrap().get_multiplexed_async_connection().await.unwrap();
    let outside: redis::RedisResult<Option<String>> =
        redis::cmd("GET").arg("sk:restock").query_async(&mut scoped_conn).await;
    assert!(outside.is_err(), "a key outside the registry's prefix is refused");
}
