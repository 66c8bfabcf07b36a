//! A retry storm: all three stock-service nodes are overloaded (their Redis turns slow, through a
//! fault proxy, and each node runs at most a few calls at once, answering `Overloaded` past
//! that: load shedding); calls are retried up to 3 times on the other nodes, without a retry
//! budget and with the default 10% one (`rpc/src/cluster/retry.rs`; its floor for quiet clients,
//! `budget_min_per_sec`, set to 0 so the bound is the ratio alone), on one stack whose retry
//! rules the live rules change between the runs (`retry.budget_percent`,
//! `retry.budget_min_per_sec`). The breakers are off in both variants, to show the retries alone. What is measured is what the overloaded service is
//! sent: RPC attempts per call asked for, from the clients' own counters
//! (`rpc_client_requests_total`, `rpc_client_retries_total`).

use std::sync::Arc;
use std::time::Duration;

use testkit::fault_proxy::Fault;

use super::load::{self, Crowd};
use super::stage::{Stage, rpc_counter, unlimited};
use super::{Args, Outcome, Scenario};
use crate::sandbox::{StackOptions, StockNodes};
use platform::rules::{RetryRules, Rules};

pub const SCENARIO: Scenario = Scenario {
    name: "retry-storm",
    title: "Retry storm: retries without a budget multiply the load on a failing service",
    problem: "Every node of a service is overloaded and sheds calls. Each caller retries on \
              another node, which is overloaded too, and again: the service that needs less load \
              gets up to three times more, and cannot recover. A retry budget lets retries add a \
              bounded share of the calls (10%, plus a few per second), then fails fast.",
    fix: &["rpc/src/cluster/retry.rs", "rpc/src/cluster/config.rs"],
};

/// Buyers per second: more than the three nodes serve while their Redis is slow.
const RATE: u32 = 800;
const NODES: usize = 3;
/// Calls a node runs at once; past it, `Overloaded`.
const IN_FLIGHT: usize = 4;
/// Each way, between the nodes and Redis: a node then serves at most `IN_FLIGHT / 2 DELAY`.
const DELAY: Duration = Duration::from_millis(10);

pub async fn run(args: &Args) -> anyhow::Result<Outcome> {
    anyhow::ensure!(args.gateway.is_none(), "retry-storm slows every node down: it runs on stacks of its own");
    // Before any stack: the clusters resolve their counters when they are built.
    let metrics = platform::metrics::prometheus_handle()?;
    let buyers = args.buyers.unwrap_or(RATE as usize * usize::try_from(args.seconds)?);
    let defaults = rpc::ClusterConfig::default().retry;
    let no_budget =
        RetryRules { budget_percent: Some(100_000), budget_min_per_sec: Some(1_000_000), ..Default::default() };
    // The floor for quiet clients (`budget_min_per_sec`, 10/s by default) is set to 0, so the
    // bound is the ratio alone.
    let budget = RetryRules { budget_min_per_sec: Some(0), ..Default::default() };
    let ratio = f64::from(defaults.budget_ratio);
    let mut variants = Vec::new();
    let mut amplification = Vec::new();
    let mut stock_cluster = rpc::ClusterConfig::default();
    stock_cluster.breaker.enabled = false;
    eprintln!("starting the stack ({NODES} stock-service nodes, {IN_FLIGHT} calls at once each)...");
    let server = rpc::ServerConfig { max_in_flight: IN_FLIGHT, ..Default::default() };
    let stock = StockNodes { instances: NODES, redis_through_proxy: true, server: Some(server), ..Default::default() };
    let stage = Stage::own(StackOptions { stock, stock_cluster, ..StackOptions::with_limits(unlimited()) }).await?;
    let stack = stage.stack().expect("a stack of its own");
    for (name, retry) in [
        ("no retry budget (rule retry.budget_percent = 100000)".to_owned(), no_budget),
        (format!("retry budget {:.0}% (rule retry.budget_min_per_sec = 0)", ratio * 100.0), budget),
    ] {
        let version = stack.set_rules(Rules { retry, ..Default::default() }, "scenario:retry-storm").await?;
        eprintln!("variant {name}: rules v{version} followed everywhere");
        let tokens = Arc::new(stage.http.users(u32::try_from(buyers)?).await?);
        let goods_id = stage.http.sale(i32::try_from(buyers)?).await?;
        let redis = stack.sandbox.stock_redis_proxy.as_ref().expect("a Redis proxy");
        eprintln!("variant {name}: {RATE} buyers/s while Redis answers the nodes {:?} late...", DELAY * 2);
        // Overloaded from the first buyer on: the budget has only the overload's calls to draw on.
        redis.set(Fault::Latency(DELAY));
        let endpoints = stack.stock_endpoints();
        let before = Counters::read(&metrics.render(), &endpoints);
        let load = load::run(&stage.http, goods_id, tokens, Crowd { rate: RATE, buyers, clicks: 1 }).await;
        let sent = Counters::read(&metrics.render(), &endpoints).since(&before);
        redis.set(Fault::None);
        let attempts_per_call = sent.requests as f64 / sent.asked().max(1) as f64;
        let mut figures = stage.figures(name, goods_id, 0, &load).await?;
        figures.own = vec![
            ("calls to stock-service asked for", sent.asked().to_string()),
            ("retries sent", sent.retries.to_string()),
            ("attempts per call", format!("×{attempts_per_call:.2}")),
            ("failed purchases", load.other.to_string()),
        ];
        variants.push(figures);
        amplification.push(attempts_per_call);
    }
    stage.finish().await;
    let (before, after) = (amplification[0], amplification[1]);
    let reproduced = before > 2.0;
    // Every retry withdraws what a tenth of a call deposited: retries ≤ 10% of the calls.
    let fixed = after <= 1.0 + ratio + 0.005;
    let verdict = format!(
        "every node overloaded, up to {} attempts per call: without a budget the overloaded service is sent \
         ×{before:.2} the calls asked for; with a {:.0}% budget ×{after:.2}.",
        defaults.max_attempts,
        ratio * 100.0
    );
    Ok(Outcome { variants, reproduced, fixed, verdict, chart: None })
}

/// The stock-service clients' counters, summed over their nodes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counters {
    requests: u64,
    retries: u64,
}

impl Counters {
    /// From Prometheus text: `rpc_client_requests_total` and `rpc_client_retries_total` of
    /// stock-service on `endpoints`.
    fn read(text: &str, endpoints: &[String]) -> Counters {
        let service = contracts::names::STOCK_SERVICE;
        Counters {
            requests: rpc_counter(text, "rpc_client_requests_total", service, endpoints),
            retries: rpc_counter(text, "rpc_client_retries_total", service, endpoints),
        }
    }

    /// Calls asked for (first attempts).
    fn asked(self) -> u64 {
        self.requests.saturating_sub(self.retries)
    }

    fn since(self, earlier: &Counters) -> Counters {
        Counters {
            requests: self.requests.saturating_sub(earlier.requests),
            retries: self.retries.saturating_sub(earlier.retries),
        }
    }
}
