//! A slow node and balancing: one of two stock-service nodes answers 50 ms late (a fault proxy
//! holds every packet 25 ms each way), nothing fails; round robin against the balancers that
//! watch the nodes (`least_active`, `peak_ewma`).

use std::sync::Arc;
use std::time::Duration;

use testkit::fault_proxy::Fault;

use super::load::{self, Crowd};
use super::stage::{Stage, unlimited};
use super::{Args, Outcome, Scenario};
use crate::sandbox::{StackOptions, StockNodes};

pub const SCENARIO: Scenario = Scenario {
    name: "slow-node",
    title: "A slow node: round robin against load-aware balancing",
    problem: "One of two stock-service nodes is slow (a noisy neighbour, a long GC pause, a bad \
              disk) but answers, so no breaker trips. Round robin keeps giving it half the calls, \
              and half the buyers wait for it; a balancer that watches in-flight calls or \
              latency sends it only what it serves fast.",
    fix: &["rpc/src/cluster/balance", "rpc/src/cluster/peak_ewma.rs"],
};

const RATE: u32 = 300;
/// Each way: the slow node's calls take twice this longer.
const DELAY: Duration = Duration::from_millis(25);

pub async fn run(args: &Args) -> anyhow::Result<Outcome> {
    anyhow::ensure!(args.gateway.is_none(), "slow-node slows one node down: it runs on stacks of its own");
    let buyers = args.buyers.unwrap_or(RATE as usize * usize::try_from(args.seconds)?);
    let mut variants = Vec::new();
    for balancer in [rpc::BalancerKind::SmoothRoundRobin, rpc::BalancerKind::LeastActive, rpc::BalancerKind::PeakEwma] {
        let name = balancer.name();
        let stock_cluster = rpc::ClusterConfig { balancer, ..Default::default() };
        eprintln!("variant {name}: starting the stack (two stock-service nodes, one {:?} slower)...", DELAY * 2);
        let options = StackOptions {
            stock: StockNodes { instances: 2, proxied: 1, ..Default::default() },
            stock_cluster,
            ..StackOptions::with_limits(unlimited())
        };
        let stage = Stage::own(options).await?;
        let tokens = Arc::new(stage.http.users(u32::try_from(buyers)?).await?);
        let goods_id = stage.http.sale(i32::try_from(buyers)?).await?;
        let proxy = stage.stack().and_then(|stack| stack.sandbox.stock_proxies.first()).expect("the stack has a proxy");
        proxy.set(Fault::Latency(DELAY));
        let load = load::run(&stage.http, goods_id, tokens, Crowd { rate: RATE, buyers, clicks: 1 }).await;
        let mut figures = stage.figures(name.into(), goods_id, 0, &load).await?;
        figures.own = vec![("failed attempts", load.other.to_string())];
        stage.finish().await;
        variants.push(figures);
    }
    let (round_robin, least_active, peak_ewma) = (&variants[0], &variants[1], &variants[2]);
    let best = least_active.p99_ms.min(peak_ewma.p99_ms);
    let reproduced = round_robin.p99_ms >= (DELAY * 2).as_secs_f64() * 1000.0;
    let fixed = best * 2.0 < round_robin.p99_ms && variants.iter().all(|v| v.own[0].1 == "0");
    let verdict = format!(
        "one of two nodes {} ms slower: p99 {:.1} ms with round robin, {:.1} ms with least_active, {:.1} ms with \
         peak_ewma (p50 {:.1} / {:.1} / {:.1} ms); nothing failed in any.",
        (DELAY * 2).as_millis(),
        round_robin.p99_ms,
        least_active.p99_ms,
        peak_ewma.p99_ms,
        round_robin.p50_ms,
        least_active.p50_ms,
        peak_ewma.p50_ms
    );
    Ok(Outcome { variants, reproduced, fixed, verdict, chart: None })
}
