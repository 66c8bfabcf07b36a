//! Open-loop load for scenarios: buyers arriving at a fixed rate whatever the answers, as a crowd
//! does, each with a token of its own, each making its purchase attempts (path, then order) one
//! after the other; every attempt's answer and latency is kept. At most [`IN_FLIGHT`] buyers are
//! served at once (the driver's connections): one that arrives when all are busy waits for one,
//! and its latency counts from its arrival, so a system that falls behind shows it in the
//! figures instead of slowing the crowd down.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::Semaphore;

use crate::http::Http;

/// Who comes, how fast, and how often each clicks.
#[derive(Clone, Copy, Debug)]
pub struct Crowd {
    /// Buyers arriving per second.
    pub rate: u32,
    /// Buyers in all (each needs a token).
    pub buyers: usize,
    /// Purchase attempts per buyer, one after the other (2: the buyer clicks again).
    pub clicks: usize,
}

/// What the attempts of one run got.
#[derive(Default)]
pub struct Load {
    /// Attempts made.
    pub attempts: usize,
    /// Tickets accepted (202).
    pub accepted: usize,
    /// Refused as sold out.
    pub sold_out: usize,
    /// Refused as the buyer's second purchase.
    pub duplicates: usize,
    /// Answered 429, and of those how many said when to come back (`Retry-After`).
    pub limited: usize,
    pub limited_with_retry_after: usize,
    /// Anything else (errors, timeouts, other refusals).
    pub other: usize,
    /// Latency of the accepted attempts, in microseconds.
    pub latency: Option<Histogram<u64>>,
    /// Latency of every answer, accepted or not, in microseconds.
    pub answered: Option<Histogram<u64>>,
    /// Seconds the attempts took from the first arrival to the last answer.
    pub seconds: f64,
    /// Seconds from the first arrival to the last accepted answer (to the sell-out, when the
    /// crowd outnumbers the units).
    pub last_accepted_secs: f64,
    /// Accepted attempts per [`super::chart::BUCKET_SECS`] of the run, by when they were answered.
    pub accepted_timeline: Vec<u32>,
}

impl Load {
    /// Median latency of the accepted attempts, ms.
    pub fn p50_ms(&self) -> f64 {
        self.latency.as_ref().map_or(0.0, |h| h.value_at_quantile(0.5) as f64 / 1000.0)
    }

    /// 99th percentile, ms.
    pub fn p99_ms(&self) -> f64 {
        self.latency.as_ref().map_or(0.0, |h| h.value_at_quantile(0.99) as f64 / 1000.0)
    }

    /// 99th percentile of every answer, ms.
    pub fn p99_all_ms(&self) -> f64 {
        self.answered.as_ref().map_or(0.0, |h| h.value_at_quantile(0.99) as f64 / 1000.0)
    }

    /// Accepted attempts / attempts.
    pub fn accepted_rate(&self) -> f64 {
        self.accepted as f64 / self.attempts.max(1) as f64
    }

    fn record(&mut self, answer: Answer, took: Duration) {
        self.attempts += 1;
        if let Some(h) = self.answered.as_mut() {
            h.saturating_record(took.as_micros() as u64);
        }
        match answer {
            Answer::Accepted(took) => {
                self.accepted += 1;
                if let Some(h) = self.latency.as_mut() {
                    h.saturating_record(took.as_micros() as u64);
                }
            }
            Answer::SoldOut => self.sold_out += 1,
            Answer::Duplicate => self.duplicates += 1,
            Answer::Limited { retry_after } => {
                self.limited += 1;
                self.limited_with_retry_after += usize::from(retry_after);
            }
            Answer::Other => self.other += 1,
        }
    }
}

/// One attempt's answer.
enum Answer {
    Accepted(Duration),
    SoldOut,
    Duplicate,
    Limited { retry_after: bool },
    Other,
}

/// Attempts in flight at most: the driver's connections.
const IN_FLIGHT: usize = 256;

/// `crowd` buying `goods_id`, buyer `n` with `tokens[n]`.
pub async fn run(http: &Http, goods_id: i64, tokens: Arc<Vec<String>>, crowd: Crowd) -> Load {
    run_across(std::slice::from_ref(http), None, goods_id, tokens, crowd).await
}

/// [`run`] over several gateways, buyer `n` through `gateways[n % len]`, as a load balancer
/// spreads them; once `drained` is set, every buyer who starts goes to the first (the others are
/// taken out of the balancer, as before a deploy).
pub async fn run_across(
    gateways: &[Http],
    drained: Option<Arc<AtomicBool>>,
    goods_id: i64,
    tokens: Arc<Vec<String>>,
    crowd: Crowd,
) -> Load {
    let gateways = Arc::new(gateways.to_vec());
    let buyers = crowd.buyers.min(tokens.len());
    let bar = ProgressBar::new((buyers * crowd.clicks) as u64)
        .with_style(ProgressStyle::with_template("  {bar:40} {pos}/{len} attempts [{elapsed}]").expect("style"));
    let interval = Duration::from_secs_f64(1.0 / f64::from(crowd.rate.max(1)));
    let started = Instant::now();
    let connections = Arc::new(Semaphore::new(IN_FLIGHT));
    let tasks: Vec<_> = (0..buyers)
        .map(|n| {
            let (gateways, drained) = (gateways.clone(), drained.clone());
            let (tokens, connections, bar) = (tokens.clone(), connections.clone(), bar.clone());
            let arrival = started + interval.mul_f64(n as f64);
            tokio::spawn(async move {
                tokio::time::sleep_until(arrival.into()).await;
                let _connection = connections.acquire().await;
                // Like a load balancer, per request: buyer n's gateway, or the first once drained.
                let route = || {
                    let only_first = drained.as_ref().is_some_and(|drained| drained.load(Ordering::Acquire));
                    gateways[if only_first { 0 } else { n % gateways.len() }].clone()
                };
                let mut answers = Vec::with_capacity(crowd.clicks);
                let mut began = arrival;
                for _ in 0..crowd.clicks {
                    let answer = attempt(route, goods_id, &tokens[n], began).await;
                    answers.push((answer, started.elapsed(), began.elapsed()));
                    bar.inc(1);
                    began = Instant::now();
                }
                answers
            })
        })
        .collect();
    let histogram = || Histogram::new_with_bounds(1, 120_000_000, 2).ok();
    let mut load = Load { latency: histogram(), answered: histogram(), ..Default::default() };
    for task in tasks {
        match task.await {
            Ok(answers) => {
                for (answer, at, took) in answers {
                    if matches!(answer, Answer::Accepted(_)) {
                        load.last_accepted_secs = load.last_accepted_secs.max(at.as_secs_f64());
                        let bucket = (at.as_secs_f64() / super::chart::BUCKET_SECS) as usize;
                        if load.accepted_timeline.len() <= bucket {
                            load.accepted_timeline.resize(bucket + 1, 0);
                        }
                        load.accepted_timeline[bucket] += 1;
                    }
                    load.record(answer, took);
                }
            }
            Err(_) => (0..crowd.clicks).for_each(|_| load.record(Answer::Other, Duration::ZERO)),
        }
    }
    bar.finish_and_clear();
    load.seconds = started.elapsed().as_secs_f64();
    load
}

/// One purchase, each of its requests sent where `route` says when it is sent.
async fn attempt(route: impl Fn() -> Http, goods_id: i64, token: &str, began: Instant) -> Answer {
    let http = route();
    let Ok(reply) = http.buy_routed(goods_id, token, route).await else { return Answer::Other };
    match (reply.status, reply.code()) {
        (202, _) => Answer::Accepted(began.elapsed()),
        (429, _) => Answer::Limited { retry_after: reply.retry_after },
        (_, Some("SOLD_OUT")) => Answer::SoldOut,
        (_, Some("DUPLICATE_ORDER")) => Answer::Duplicate,
        _ => Answer::Other,
    }
}
