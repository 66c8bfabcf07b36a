//! Balancer benchmark: each balancer in front of 3 echo servers, and the cost of governance.
//!
//! ```text
//! cargo run --release -p rpc --example balance_bench -- --concurrency 256 --seconds 3 --rounds 3
//! ```
//!
//! Servers and load share one tokio runtime in this process and talk over loopback TCP, so on a
//! small machine three servers do not add capacity: the figures compare client-side costs.
//! Lines:
//! - `balancer=direct`: a plain [`rpc::Channel`] to one server, no governance (the baseline);
//! - `balancer=least_active endpoints=1`: a [`rpc::Cluster`] over that same single server, so the
//!   difference to `direct` is the price of governance itself (pick, breaker, retry budget,
//!   in-flight and latency accounting, metrics calls);
//! - one line per balancer over 3 servers.
//!
//! Each line is the median-QPS run of `--rounds`.
//!
//! The method is idempotent and carries a hash key, so every call takes the full governed path
//! (retry budget deposit, consistent-hash routing).

mod measure;

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use rpc::{BalancerKind, Cluster, ClusterConfig, Registry, StaticRegistry, Transport};
use serde_bytes::ByteBuf;

use self::measure::{Outcome, Window, measure};

#[derive(Parser, Debug, Clone)]
struct Args {
    /// Calls in flight at once (one task each).
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Measured seconds per configuration.
    #[arg(long, default_value_t = 3)]
    seconds: u64,
    /// Unmeasured seconds before measuring.
    #[arg(long, default_value_t = 1)]
    warmup: u64,
    /// Payload bytes per call (echoed back).
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// Connections per endpoint.
    #[arg(long, default_value_t = 2)]
    conns: usize,
    /// Runs per configuration; each line reports the run with the median QPS. The direct and the
    /// single-endpoint governed client alternate, so background load hits both alike.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

#[rpc::service]
trait Echo {
    #[rpc(idempotent, hash_key = key)]
    async fn echo(&self, key: u64, payload: ByteBuf) -> ByteBuf;
}

struct EchoImpl;

impl Echo for EchoImpl {
    async fn echo(&self, _key: u64, payload: ByteBuf) -> ByteBuf {
        payload
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let mut servers = Vec::new();
        for _ in 0..3 {
            let server = rpc::Server::new(rpc::ServerConfig::default())
                .add_service(EchoServer::new(EchoImpl))
                .spawn("127.0.0.1:0");
            servers.push(server.await?);
        }
        let addrs: Vec<String> = servers.iter().map(|s| s.local_addr().to_string()).collect();
        let client_config = rpc::ClientConfig { connections: args.conns, ..Default::default() };

        let config = |balancer| ClusterConfig { balancer, client: client_config.clone(), ..Default::default() };
        let direct = Arc::new(EchoClient::new(rpc::Channel::new(addrs[0].clone(), client_config.clone())));
        let single = StaticRegistry::single("Echo", &addrs[..1]);
        let governed =
            Arc::new(EchoClient::new(Cluster::new(single.discover("Echo"), config(BalancerKind::LeastActive))));
        let (mut direct_runs, mut governed_runs) = (Vec::new(), Vec::new());
        for _ in 0..args.rounds.max(1) {
            direct_runs.push(drive(&args, direct.clone()).await);
            governed_runs.push(drive(&args, governed.clone()).await);
        }
        let (baseline, governed) = (median(direct_runs), median(governed_runs));
        report("balancer=direct endpoints=1", &baseline);
        report("balancer=least_active endpoints=1", &governed);
        println!(
            "governance_overhead qps_pct={:.1} p99_us_delta={}",
            100.0 * (1.0 - governed.qps / baseline.qps),
            governed.p99_us as i64 - baseline.p99_us as i64
        );

        let three = StaticRegistry::single("Echo", &addrs);
        for balancer in BalancerKind::ALL {
            let client = Arc::new(EchoClient::new(Cluster::new(three.discover("Echo"), config(balancer))));
            let mut runs = Vec::new();
            for _ in 0..args.rounds.max(1) {
                runs.push(drive(&args, client.clone()).await);
            }
            report(&format!("balancer={} endpoints=3", balancer.name()), &median(runs));
        }
        for server in servers {
            server.shutdown().await;
        }
        Ok(())
    })
}

fn report(label: &str, outcome: &Outcome) {
    println!("{label} qps={:.0} p50_us={} p99_us={}", outcome.qps, outcome.p50_us, outcome.p99_us);
    if outcome.errors > 0 {
        eprintln!("{label} errors={}", outcome.errors);
    }
}

/// The run with the median QPS.
fn median(mut runs: Vec<Outcome>) -> Outcome {
    runs.sort_by(|a, b| a.qps.total_cmp(&b.qps));
    runs.swap_remove(runs.len() / 2)
}

/// Runs the measurement loop; every call carries its own hash key.
async fn drive<T: Transport>(args: &Args, client: Arc<EchoClient<T>>) -> Outcome {
    let payload = ByteBuf::from(vec![0xAB; args.payload]);
    let window = Window {
        concurrency: args.concurrency,
        warmup: Duration::from_secs(args.warmup),
        measured: Duration::from_secs(args.seconds),
    };
    measure(window, move |task, sequence| {
        let (client, payload) = (client.clone(), payload.clone());
        let key = (task as u64).wrapping_mul(1_000_003).wrapping_add(sequence);
        async move { client.echo(key, payload.clone()).await.is_ok_and(|echoed| echoed.len() == payload.len()) }
    })
    .await
}
