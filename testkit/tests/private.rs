//! The private infrastructure drills and fault tests start: really private (their own port and
//! data), really killed, and durable across the kill as the real servers are.

use sqlx::{Connection, PgConnection};
use testkit::private::{PrivatePostgres, PrivateRabbitMq};

#[tokio::test]
async fn a_private_postgres_keeps_committed_rows_across_a_kill() {
    let postgres = PrivatePostgres::start().expect("a private PostgreSQL");
    assert_ne!(postgres.port(), 5432);
    let url = postgres.url("postgres");
    let mut conn = PgConnection::connect(&url).await.expect("connect");
    sqlx::query("CREATE TABLE kept (n int)").execute(&mut conn).await.unwrap();
    sqlx::query("INSERT INTO kept VALUES ($1)").bind(7).execute(&mut conn).await.unwrap();
    drop(conn);

    let pid = postgres.pid().expect("running");
    postgres.kill();
    let gone =
        testkit::wait_for(std::time::Duration::from_secs(10), || async { postgres.pid().is_none().then_some(()) })
            .await;
    assert!(gone.is_some(), "the postmaster {pid} survived SIGKILL");
    assert!(PgConnection::connect(&url).await.is_err(), "a killed server still answers");

    postgres.restart().expect("restart");
    let mut conn = PgConnection::connect(&url).await.expect("connect after the restart");
    let kept: i32 = sqlx::query_scalar("SELECT n FROM kept").fetch_one(&mut conn).await.unwrap();
    assert_eq!(kept, 7);
}

#[tokio::test]
async fn a_private_rabbitmq_is_its_own_node_and_comes_back_after_a_kill() {
    let mut rabbitmq = PrivateRabbitMq::start().expect("a private RabbitMQ");
    assert_ne!(rabbitmq.port(), 5672);
    rabbitmq.ctl(&["set_policy", "drill-test", "^drill$", r#"{"max-length": 5}"#, "--apply-to", "queues"]).unwrap();
    let pid = rabbitmq.pid().expect("running");
    rabbitmq.kill();
    assert!(std::net::TcpStream::connect(("127.0.0.1", rabbitmq.port())).is_err(), "{pid} still listens");

    rabbitmq.restart().expect("restart");
    let policies = rabbitmq.ctl(&["list_policies"]).unwrap();
    assert!(policies.contains("drill-test"), "the policy was lost with the kill: {policies}");
    // The machine's node was never this one.
    let system_policies = std::process::Command::new("rabbitmqctl").args(["-q", "list_policies"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&system_policies.stdout).contains("drill-test"));
}

#[test]
fn a_private_redis_cluster_shares_every_slot_out_over_its_primaries() {
    let cluster = testkit::private::PrivateRedisCluster::start(3);
    assert_eq!(cluster.pids().len(), 3);
    for port in cluster.ports() {
        assert_ne!(port, 6379);
        let info = std::process::Command::new("redis-cli")
            .args(["-p", &port.to_string(), "cluster", "info"])
            .output()
            .unwrap();
        let info = String::from_utf8_lossy(&info.stdout);
        assert!(info.contains("cluster_state:ok"), "{info}");
        assert!(info.contains("cluster_slots_assigned:16384") && info.contains("cluster_known_nodes:3"), "{info}");
    }
}
