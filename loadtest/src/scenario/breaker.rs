//! Circuit breaking: one of two stock-service nodes turns slow past the callers' timeout (a
//! fault proxy between order-service and that node holds every packet 400 ms), with the
//! per-node breaker off and on (`rpc/src/cluster/breaker.rs`), on one stack: the "without" run
//! turns breaking off with the live rule `breaker.enabled = false`, the "with" run clears it.

use std::sync::Arc;
use std::time::Duration;

use testkit::fault_proxy::Fault;

use super::load::{self, Crowd};
use super::stage::{Stage, unlimited};
use super::{Args, Outcome, Scenario};
use crate::sandbox::{StackOptions, StockNodes};
use platform::rules::Rules;

pub const SCENARIO: Scenario = Scenario {
    name: "breaker",
    title: "Circuit breaker: one node fails, the others are fine",
    problem: "One of two stock-service nodes stops answering in time. Without a breaker every other \
              reserve still goes to it, waits out the timeout and fails; retries within their budget \
              save only a few, so a large share of buyers is refused although a healthy node has \
              room for all. A per-node breaker stops sending to the failing node after a few \
              failures and probes it now and then.",
    fix: &["rpc/src/cluster/breaker.rs", "rpc/src/cluster/mod.rs"],
};

/// Buyers per second; the fault starts after [`FAULT_AFTER`].
const RATE: u32 = 300;
const FAULT_AFTER: Duration = Duration::from_secs(1);
/// Each way: a call round trip to the failing node takes twice this, over the timeout.
const DELAY: Duration = Duration::from_millis(400);
/// order-service's timeout of a stock-service call, in both variants.
const TIMEOUT: Duration = Duration::from_millis(250);

pub async fn run(args: &Args) -> anyhow::Result<Outcome> {
    anyhow::ensure!(args.gateway.is_none(), "breaker injects a fault next to a node: it runs on stacks of its own");
    let buyers = args.buyers.unwrap_or(RATE as usize * usize::try_from(args.seconds)?);
    let mut variants = Vec::new();
    let mut cluster = rpc::ClusterConfig {
        // Round robin in both variants, so the balancer does not hide the failing node.
        balancer: rpc::BalancerKind::SmoothRoundRobin,
        ..Default::default()
    };
    cluster.client.default_timeout = TIMEOUT;
    eprintln!("starting the stack (two stock-service nodes, one behind a fault proxy)...");
    let options = StackOptions {
        stock: StockNodes { instances: 2, proxied: 1, ..Default::default() },
        stock_cluster: cluster,
        ..StackOptions::with_limits(unlimited())
    };
    let stage = Stage::own(options).await?;
    let stack = stage.stack().expect("a stack of its own");
    for (name, breaker) in [("no breaker (rule breaker.enabled = false)", false), ("per-node breaker (default)", true)]
    {
        let mut rules = Rules::default();
        rules.breaker.enabled = (!breaker).then_some(false);
        let version = stack.set_rules(rules, "scenario:breaker").await?;
        eprintln!("variant {name}: rules v{version} followed everywhere");
        let tokens = Arc::new(stage.http.users(u32::try_from(buyers)?).await?);
        let goods_id = stage.http.sale(i32::try_from(buyers)?).await?;
        let proxy = stack.sandbox.stock_proxies.first().expect("the stack has a proxy");
        eprintln!(
            "variant {name}: {RATE} buyers/s; after {FAULT_AFTER:?} the second node answers {:?} late...",
            DELAY * 2
        );
        let crowd = Crowd { rate: RATE, buyers, clicks: 1 };
        let (load, ()) = tokio::join!(load::run(&stage.http, goods_id, tokens, crowd), async {
            tokio::time::sleep(FAULT_AFTER).await;
            proxy.set(Fault::Latency(DELAY));
        });
        proxy.set(Fault::None);
        let mut figures = stage.figures(name.into(), goods_id, 0, &load).await?;
        figures.own = vec![
            ("buyers refused (not sold out)", load.other.to_string()),
            ("buyer error rate", super::percent(load.other as f64 / load.attempts.max(1) as f64)),
        ];
        variants.push((figures, load));
    }
    stage.finish().await;
    let error_rate = |load: &load::Load| load.other as f64 / load.attempts.max(1) as f64;
    let (before, after) = (error_rate(&variants[0].1), error_rate(&variants[1].1));
    let reproduced = before > 0.05;
    // Bounded: only calls sent before the first failures were seen (one timeout's worth) can fail.
    let fixed = after * 10.0 < before;
    let verdict = format!(
        "with one of two nodes answering {} ms late (timeout {} ms): {:.1}% of buyers refused without a breaker, \
         {:.2}% with the per-node breaker ({} and {} of {} buyers).",
        (DELAY * 2).as_millis(),
        TIMEOUT.as_millis(),
        100.0 * before,
        100.0 * after,
        variants[0].1.other,
        variants[1].1.other,
        buyers
    );
    let variants = variants.into_iter().map(|(figures, _)| figures).collect();
    Ok(Outcome { variants, reproduced, fixed, verdict, chart: None })
}
