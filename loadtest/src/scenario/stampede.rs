//! Cache stampede: a crowd reloading a hot goods' page, served from the gateway's goods cache
//! (refreshed every second). With single flight (one caller reloads, the others wait for it)
//! against without (`SECKILL_WITHOUT__SINGLE_FLIGHT`: every request that finds it expired
//! reloads it). Counted by the gateway's RPC client: every reload is a `list_goods` call to
//! stock-service, each one PostgreSQL query (`stock-service/src/catalog.rs`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::sync::Semaphore;

use contracts::names::STOCK_SERVICE;

use super::stage::{Stage, rpc_counter, unlimited};
use super::{Args, Figures, Outcome, Scenario};
use crate::sandbox::StackOptions;

pub const SCENARIO: Scenario = Scenario {
    name: "stampede",
    title: "Cache stampede: a hot page's cache expiring under a crowd",
    problem: "Everyone reloads the sale page, served from a cache that expires every second. At each \
              expiry every request in flight finds it stale and reloads it, so the database gets a \
              burst of identical queries once a second; single flight lets one request reload \
              while the others wait for its answer.",
    fix: &["gateway/src/goods_cache.rs", "stock-service/src/single_flight.rs"],
};

/// Page views per second.
const RATE: u32 = 3_000;
const IN_FLIGHT: usize = 256;

pub async fn run(args: &Args) -> anyhow::Result<Outcome> {
    anyhow::ensure!(args.gateway.is_none(), "stampede compares two gateway settings: it runs on stacks of its own");
    let metrics = platform::metrics::prometheus_handle()?;
    let views = args.buyers.unwrap_or(RATE as usize * usize::try_from(args.seconds)?);
    let mut variants = Vec::new();
    let mut reloads = Vec::new();
    for (name, off) in [("no single flight (SECKILL_WITHOUT__SINGLE_FLIGHT)", true), ("single flight (default)", false)]
    {
        eprintln!("variant {name}: starting the stack...");
        let without = gateway::settings::Without { single_flight: off, ..Default::default() };
        let stage = Stage::own(StackOptions { without, ..StackOptions::with_limits(unlimited()) }).await?;
        let goods_id = stage.http.sale(100).await?;
        eprintln!("variant {name}: {views} page views at {RATE}/s...");
        let endpoints = stage.stack().expect("a stack of its own").stock_endpoints();
        let list_calls = || rpc_counter(&metrics.render(), "rpc_client_requests_total", STOCK_SERVICE, &endpoints);
        let before = list_calls();
        let (latency, seconds, failed) = page_views(&stage, goods_id, views).await;
        let calls = list_calls().saturating_sub(before);
        let per_sec = calls as f64 / seconds.max(0.001);
        let p = |q: f64| latency.value_at_quantile(q) as f64 / 1000.0;
        let figures = Figures {
            variant: name.into(),
            attempts: 0,
            orders: 0,
            oversold: 0,
            duplicates: 0,
            undersold: 0,
            accepted_rate: 1.0 - failed as f64 / views.max(1) as f64,
            p50_ms: p(0.5),
            p99_ms: p(0.99),
            own: vec![
                ("page views", views.to_string()),
                ("reloads from stock-service (PostgreSQL queries)", calls.to_string()),
                ("reloads per second (the cache expires every second)", format!("{per_sec:.1}")),
                ("failed page views", failed.to_string()),
            ],
            timeline: Vec::new(),
        };
        stage.finish().await;
        variants.push(figures);
        reloads.push(per_sec);
    }
    let (before, after) = (reloads[0], reloads[1]);
    let reproduced = before > 3.0;
    // One reload per expiry, and one more now and then when an expiry falls between two seconds.
    let fixed = after <= 2.0 && after * 2.0 < before;
    let verdict = format!(
        "{views} page views at {RATE}/s of a page cached for a second: without single flight {before:.1} reloads per \
         second reach stock-service and PostgreSQL, with it {after:.1}.",
    );
    Ok(Outcome { variants, reproduced, fixed, verdict, chart: None })
}

/// `views` GETs of the goods' page at [`RATE`]: their latency (µs), the seconds they took, and
/// how many failed.
async fn page_views(stage: &Stage, goods_id: i64, views: usize) -> (Histogram<u64>, f64, usize) {
    let interval = Duration::from_secs_f64(1.0 / f64::from(RATE));
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let started = Instant::now();
    let url = format!("{}/api/v1/seckill/goods/{goods_id}", stage.http.base);
    let tasks: Vec<_> = (0..views)
        .map(|n| {
            let (client, url, slots) = (stage.http.client.clone(), url.clone(), slots.clone());
            let arrival = started + interval.mul_f64(n as f64);
            tokio::spawn(async move {
                tokio::time::sleep_until(arrival.into()).await;
                let _slot = slots.acquire().await;
                let ok = client.get(&url).send().await.is_ok_and(|r| r.status().is_success());
                (ok, arrival.elapsed())
            })
        })
        .collect();
    let mut latency = Histogram::new_with_bounds(1, 60_000_000, 2).expect("bounds");
    let mut failed = 0;
    for task in tasks {
        match task.await {
            Ok((true, took)) => latency.saturating_record(took.as_micros() as u64),
            _ => failed += 1,
        }
    }
    (latency, started.elapsed().as_secs_f64(), failed)
}
