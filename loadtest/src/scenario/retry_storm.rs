//! A retry storm: all three stock-service nodes are overloaded (their Redis turns slow, through a
//! fault proxy, and each node runs at most a few calls at once, answering `Overloaded` past
//! that: load shedding); calls are retried up to 3 times on the other nodes, without a retry
//! budget and with the default one (`rpc/src/cluster/retry.rs`). The breakers are off in both
//! variants, to show the retries alone. What is measured is what the overloaded service is
//! sent: RPC attempts per call asked for, from the clients' own counters
//! (`rpc_client_requests_total`, `rpc_client_retries_total`).

use std::sync::Arc;
use std::time::Duration;

use testkit::fault_proxy::Fault;

use super::load::{self, Crowd};
use super::stage::{Stage, unlimited};
use super::{Args, Outcome, Scenario};
use crate::sandbox::{StackOptions, StockNodes};

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
/// When the overload starts and how long it lasts.
const FAULT_AFTER: Duration = Duration::from_secs(1);
const FAULT_FOR: Duration = Duration::from_secs(4);
/// Clients of stock-service with a retry budget of their own: order-service and the worker.
const BUDGETS: f64 = 2.0;

pub async fn run(args: &Args) -> anyhow::Result<Outcome> {
    anyhow::ensure!(args.gateway.is_none(), "retry-storm slows every node down: it runs on stacks of its own");
    // Before any stack: the clusters resolve their counters when they are built.
    let metrics = platform::metrics::prometheus_handle()?;
    let buyers = args.buyers.unwrap_or(RATE as usize * usize::try_from(args.seconds)?);
    let defaults = rpc::ClusterConfig::default().retry;
    let no_budget =
        rpc::cluster::RetryConfig { budget_ratio: 1000.0, budget_min_per_sec: 1_000_000, ..defaults.clone() };
    let mut variants = Vec::new();
    let mut amplification = Vec::new();
    for (name, retry) in [
        ("no retry budget (budget_ratio = 1000)".to_owned(), no_budget),
        (
            format!("retry budget {:.0}% + {}/s (default)", defaults.budget_ratio * 100.0, defaults.budget_min_per_sec),
            defaults.clone(),
        ),
    ] {
        let mut stock_cluster = rpc::ClusterConfig { retry, ..Default::default() };
        stock_cluster.breaker.enabled = false;
        eprintln!(
            "variant {name}: starting the stack ({NODES} stock-service nodes, {IN_FLIGHT} calls at once each)..."
        );
        let server = rpc::ServerConfig { max_in_flight: IN_FLIGHT, ..Default::default() };
        let stock =
            StockNodes { instances: NODES, redis_through_proxy: true, server: Some(server), ..Default::default() };
        let stage = Stage::own(StackOptions { stock, stock_cluster, ..StackOptions::with_limits(unlimited()) }).await?;
        let tokens = Arc::new(stage.http.users(u32::try_from(buyers)?).await?);
        let goods_id = stage.http.sale(i32::try_from(buyers)?).await?;
        let redis = stage.stack().and_then(|stack| stack.sandbox.stock_redis_proxy.as_ref()).expect("a Redis proxy");
        eprintln!(
            "variant {name}: {RATE} buyers/s; from {FAULT_AFTER:?} on, for {FAULT_FOR:?}, Redis answers the nodes {:?} late...",
            DELAY * 2
        );
        let crowd = Crowd { rate: RATE, buyers, clicks: 1 };
        // The counters are read over the overload only (and the calls before it, which fill the budget).
        let start = Counters::read(&metrics.render());
        let (load, (earlier, sent)) = tokio::join!(load::run(&stage.http, goods_id, tokens, crowd), async {
            tokio::time::sleep(FAULT_AFTER).await;
            let before = Counters::read(&metrics.render());
            redis.set(Fault::Latency(DELAY));
            tokio::time::sleep(FAULT_FOR).await;
            let sent = Counters::read(&metrics.render()).since(&before);
            redis.set(Fault::None);
            (before.since(&start), sent)
        });
        let ratio = sent.requests as f64 / sent.asked().max(1) as f64;
        let mut figures = stage.figures(name, goods_id, 0, &load).await?;
        figures.own = vec![
            ("calls to stock-service asked for, during the overload", sent.asked().to_string()),
            ("retries sent, during the overload", sent.retries.to_string()),
            ("attempts per call, during the overload", format!("×{ratio:.2}")),
            ("failed purchases", load.other.to_string()),
        ];
        stage.finish().await;
        variants.push(figures);
        amplification.push((ratio, earlier.asked(), sent.asked()));
    }
    let ((before, _, _), (after, earlier, during)) = (amplification[0], amplification[1]);
    // What the default budget allows: per client (order-service and the worker hold one each),
    // 10% of the calls of the last `budget_window` (the overload's and those just before it)
    // plus `budget_min_per_sec` over that window.
    let window = defaults.budget_window.as_secs_f64();
    let allowed = f64::from(defaults.budget_ratio) * (earlier + during) as f64
        + BUDGETS * f64::from(defaults.budget_min_per_sec) * window;
    let bound = 1.0 + allowed / during.max(1) as f64;
    let reproduced = before > 2.0;
    let fixed = after <= bound;
    let verdict = format!(
        "every node overloaded, up to {} attempts per call: without a budget the overloaded service is sent \
         ×{before:.2} the calls asked for; with the default budget ×{after:.2}, within its bound of ×{bound:.2} \
         ({:.0}% of the last {window:.0} s of calls plus {} retries/s, per client).",
        defaults.max_attempts,
        defaults.budget_ratio * 100.0,
        defaults.budget_min_per_sec
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
    /// From Prometheus text: every `rpc_client_requests_total` and `rpc_client_retries_total`
    /// line of stock-service.
    fn read(text: &str) -> Counters {
        let mut counters = Counters::default();
        let service = format!("service=\"{}\"", contracts::names::STOCK_SERVICE);
        for line in text.lines().filter(|line| line.contains(&service)) {
            let value = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) as u64;
            if line.starts_with("rpc_client_requests_total{") {
                counters.requests += value;
            } else if line.starts_with("rpc_client_retries_total{") {
                counters.retries += value;
            }
        }
        counters
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_sum_the_stock_service_lines_only() {
        let text = "# TYPE rpc_client_requests_total counter\n\
            rpc_client_requests_total{service=\"StockService\",endpoint=\"a\"} 10\n\
            rpc_client_requests_total{service=\"StockService\",endpoint=\"b\"} 5\n\
            rpc_client_requests_total{service=\"OrderService\",endpoint=\"c\"} 99\n\
            rpc_client_retries_total{service=\"StockService\",endpoint=\"b\"} 3\n";
        assert_eq!(Counters::read(text), Counters { requests: 15, retries: 3 });
        assert_eq!(
            Counters::read(text).since(&Counters { requests: 5, retries: 1 }),
            Counters { requests: 10, retries: 2 }
        );
    }
}
