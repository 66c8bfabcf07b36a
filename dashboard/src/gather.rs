//! Once a second: read every source, make one [`Snapshot`], keep the funnel's history (bounded),
//! and hand the snapshot to every open page.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use platform::rules::RuleStore;
use tokio::sync::watch;

use crate::snapshot::{DemoState, FunnelPoint, ProgramTile, Snapshot, Source, WorkerPanel};
use crate::sources::nodes::NodeSource;
use crate::sources::postgres::PostgresSource;
use crate::sources::prometheus::{self, Rates};
use crate::sources::queue::QueueSource;
use crate::sources::sale::SaleSource;
use crate::sources::scenario::ScenarioSource;

/// The latest snapshot as the page receives it (JSON), and the funnel's recent history.
#[derive(Debug, Default)]
pub(crate) struct Published {
    /// The latest snapshot, serialized once for every page.
    pub(crate) snapshot: String,
    /// The funnel points of the last few minutes, oldest first (JSON array).
    pub(crate) history: String,
}

/// Every source, and what the gathering keeps between rounds.
pub(crate) struct Gatherer {
    pub(crate) http: reqwest::Client,
    pub(crate) scrape: BTreeMap<String, Vec<String>>,
    pub(crate) nodes: NodeSource,
    pub(crate) sale: SaleSource,
    pub(crate) queue: QueueSource,
    pub(crate) postgres: PostgresSource,
    pub(crate) rules: RuleStore,
    pub(crate) scenario: ScenarioSource,
    pub(crate) demo: Arc<Mutex<Option<DemoState>>>,
    pub(crate) interval: Duration,
    /// Funnel points kept (history / interval).
    pub(crate) keep: usize,
}

impl Gatherer {
    /// Gathers every `interval` until every receiver is gone.
    pub(crate) async fn run(self, sender: watch::Sender<Arc<Published>>) {
        let mut rates = Rates::default();
        let mut history: VecDeque<FunnelPoint> = VecDeque::with_capacity(self.keep + 1);
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last = Instant::now();
        loop {
            ticker.tick().await;
            let snapshot = self.gather(&mut rates, &mut last).await;
            history.push_back(snapshot.funnel);
            while history.len() > self.keep {
                history.pop_front();
            }
            let published = Published {
                snapshot: serde_json::to_string(&snapshot).unwrap_or_default(),
                history: serde_json::to_string(&history).unwrap_or_default(),
            };
            if sender.send(Arc::new(published)).is_err() {
                return;
            }
        }
    }

    /// One round.
    pub(crate) async fn gather(&self, rates: &mut Rates, last: &mut Instant) -> Snapshot {
        let scraped = self.scrape_all();
        let sale = self.sale.read();
        let queue = self.queue.read(&self.http);
        let postgres = self.postgres.read();
        let rules = self.rules.current();
        let scenario = self.scenario.read();
        let ((targets, reads), (goods, audit), queue, postgres, rules, scenario) =
            tokio::join!(scraped, sale, queue, postgres, rules, scenario);
        let now = Instant::now();
        rates.next_round(reads, now.duration_since(*last));
        *last = now;
        let programs = targets
            .into_iter()
            .map(|(program, url)| ProgramTile {
                up: rates.answered(&url),
                rules_version: rates
                    .current_of(&url)
                    .and_then(|samples| samples.matching("seckill_rules_version", &[]).next().map(|s| s.value as u64)),
                program,
                url,
            })
            .collect();
        Snapshot {
            at_ms: chrono::Utc::now().timestamp_millis(),
            funnel: funnel(rates),
            goods,
            audit,
            queue,
            workers: workers(rates),
            postgres,
            nodes: Source::Ok(self.nodes.read(rates).await),
            programs,
            rules: Source::from_result(rules),
            demo: self.demo.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            scenario,
        }
    }

    /// Every metrics endpoint (host names expanded to every address), read at once.
    async fn scrape_all(&self) -> (Vec<(String, String)>, HashMap<String, prometheus::Samples>) {
        let mut targets = Vec::new();
        for (program, urls) in &self.scrape {
            for url in urls {
                for expanded in prometheus::expand(url).await {
                    targets.push((program.clone(), expanded));
                }
            }
        }
        let reads = futures::future::join_all(targets.iter().map(|(_, url)| prometheus::scrape(&self.http, url))).await;
        let answered =
            targets.iter().zip(reads).filter_map(|((_, url), read)| Some((url.clone(), read.ok()?))).collect();
        (targets, answered)
    }
}

/// The gateways' funnel from their request counters.
fn funnel(rates: &Rates) -> FunnelPoint {
    let requests = "http_requests_total";
    FunnelPoint {
        at_ms: chrono::Utc::now().timestamp_millis(),
        captcha: rates.per_sec(requests, &[("route", "captcha")]),
        path: rates.per_sec(requests, &[("route", "path")]),
        order: rates.per_sec(requests, &[("route", "place_order")]),
        accepted: rates.per_sec(requests, &[("route", "place_order"), ("status", "202")]),
        sold_out: rates.per_sec("gateway_problems_total", &[("code", "SOLD_OUT")]),
        limited: rates.per_sec(requests, &[("status", "429")]) + rates.per_sec("http_rate_limited_total", &[]),
        unavailable: rates.per_sec(requests, &[("status", "503")]),
    }
}

/// The workers' drain from their counters.
fn workers(rates: &Rates) -> WorkerPanel {
    let batches = rates.increase("order_batch_size_count", &[], |_| true);
    let batched = rates.increase("order_batch_size_sum", &[], |_| true);
    WorkerPanel {
        drained_per_sec: rates.per_sec("order_messages_total", &[]),
        written_per_sec: rates.per_sec("order_messages_total", &[("outcome", "written")]),
        batches_per_sec: rates.per_sec("order_batch_size_count", &[]),
        mean_batch: (batches > 0.0).then(|| batched / batches),
        redelivered_per_sec: rates.per_sec("order_messages_redelivered_total", &[]),
    }
}
