//! Graceful shutdown during a deploy: two gateways share the crowd (each request routed as a
//! load balancer would); mid-sale one is taken out of the balancer and, 20 ms later, stopped, as
//! a rolling deploy does. Stopped gracefully (it stops
//! accepting and finishes the requests it has: actix's graceful stop, what SIGTERM does in the
//! binary) against killed (its requests dropped at once, as `kill -9` or a too-short
//! termination grace period does). Each purchase takes about 100 ms here (a fault proxy delays
//! stock-service 50 ms each way), so a gateway always has requests in flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use testkit::fault_proxy::Fault;

use super::load::{self, Crowd};
use super::stage::{Stage, unlimited};
use super::{Args, Outcome, Scenario};
use crate::http::Http;
use crate::sandbox::{StackOptions, StockNodes};

pub const SCENARIO: Scenario = Scenario {
    name: "graceful-shutdown",
    title: "Graceful shutdown against kill during a deploy",
    problem: "A deploy replaces the instances one by one. An instance killed while it serves drops \
              every request in flight: those buyers get a broken connection, not knowing whether \
              they bought. Taken out of the balancer first and stopped gracefully, it finishes \
              what it started and nobody notices.",
    fix: &["gateway/src/startup.rs", "platform/src/shutdown.rs", "rpc/src/server/mod.rs"],
};

const RATE: u32 = 600;
const STOP_AFTER: Duration = Duration::from_secs(2);
const DELAY: Duration = Duration::from_millis(50);
/// Between taking the gateway out of the balancer and stopping it, as a deploy waits for what was
/// already routed to it to arrive (a load balancer's deregistration delay).
const DEREGISTRATION_DELAY: Duration = Duration::from_millis(20);

pub async fn run(args: &Args) -> anyhow::Result<Outcome> {
    anyhow::ensure!(args.gateway.is_none(), "graceful-shutdown stops a gateway: it runs on stacks of its own");
    let buyers = args.buyers.unwrap_or(RATE as usize * usize::try_from(args.seconds.max(4))?);
    let mut variants = Vec::new();
    let mut lost = Vec::new();
    for (name, graceful) in [("killed (dropped at once)", false), ("stopped gracefully (default on SIGTERM)", true)] {
        eprintln!("variant {name}: starting the stack (two gateways)...");
        let stock = StockNodes { instances: 1, proxied: 1, ..Default::default() };
        let stage = Stage::own(StackOptions { stock, gateways: 2, ..StackOptions::with_limits(unlimited()) }).await?;
        let stack = stage.stack().expect("a stack of its own");
        stack.sandbox.stock_proxies[0].set(Fault::Latency(DELAY));
        let tokens = Arc::new(stage.http.users(u32::try_from(buyers)?).await?);
        let goods_id = stage.http.sale(i32::try_from(buyers)?).await?;
        let gateways: Vec<Http> =
            stack.base_urls.iter().map(|base| Http { base: base.clone(), ..stage.http.clone() }).collect();
        let drained = Arc::new(AtomicBool::new(false));
        eprintln!("variant {name}: {RATE} buyers/s over two gateways; after {STOP_AFTER:?} the second one goes...");
        let crowd = Crowd { rate: RATE, buyers, clicks: 1 };
        let (load, ()) =
            tokio::join!(load::run_across(&gateways, Some(drained.clone()), goods_id, tokens, crowd), async {
                tokio::time::sleep(STOP_AFTER).await;
                drained.store(true, Ordering::Release);
                tokio::time::sleep(DEREGISTRATION_DELAY).await;
                stack.stop_gateway(1, graceful).await;
            });
        let mut figures = stage.figures(name.into(), goods_id, 0, &load).await?;
        // A dropped request may still have bought: its buyer just never heard.
        let bought_unknowingly = (figures.orders - load.accepted as i64).max(0);
        figures.own = vec![
            ("requests lost with the stopped gateway", load.other.to_string()),
            ("of the buyers", super::percent(load.other as f64 / buyers.max(1) as f64)),
            ("of those, bought without being told", bought_unknowingly.to_string()),
        ];
        stage.finish().await;
        variants.push(figures);
        lost.push(load.other);
    }
    let (before, after) = (lost[0], lost[1]);
    let reproduced = before > 0;
    let fixed = after == 0;
    let verdict = format!(
        "one of two gateways replaced {} s into a {RATE} buyers/s sale: killed, it dropped {before} requests in flight \
         (and {} of those buyers had bought without being told); stopped gracefully, {after}.",
        STOP_AFTER.as_secs(),
        variants[0].own[2].1
    );
    Ok(Outcome { variants, reproduced, fixed, verdict, chart: None })
}
