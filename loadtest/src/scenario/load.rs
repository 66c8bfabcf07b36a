//! Open-loop load for scenarios: purchase attempts (path, then order) arriving at a fixed rate
//! whatever the answers, as a crowd does, each by a buyer of its own; every attempt's answer and
//! latency is kept. At most [`IN_FLIGHT`] attempts run at once (the driver's connections): one
//! that arrives when all are busy waits for one, and its latency counts from its arrival, so a
//! system that falls behind shows it in the figures instead of slowing the crowd down.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use hdrhistogram::Histogram;

use crate::http::Http;

/// What the attempts of one run got.
#[derive(Default)]
pub struct Load {
    /// Attempts made.
    pub attempts: usize,
    /// Tickets accepted (202).
    pub accepted: usize,
    /// Answered 429, and of those how many said when to come back (`Retry-After`).
    pub limited: usize,
    pub limited_with_retry_after: usize,
    /// Anything else (errors, timeouts, other refusals).
    pub other: usize,
    /// Latency of the accepted attempts, in microseconds.
    pub latency: Option<Histogram<u64>>,
    /// Seconds the attempts took from the first to the last answer.
    pub seconds: f64,
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
}

/// One attempt's answer.
enum Answer {
    Accepted(Duration),
    Limited { retry_after: bool },
    Other,
}

/// `rate` attempts per second for `seconds`, on `goods_id`, each with the next of `tokens`.
pub async fn run(http: &Http, goods_id: i64, tokens: Arc<Vec<String>>, rate: u32, seconds: u64) -> Load {
    let total = (u64::from(rate) * seconds).min(tokens.len() as u64) as usize;
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let started = Instant::now();
    let connections = Arc::new(Semaphore::new(IN_FLIGHT));
    let attempts: Vec<_> = (0..total)
        .map(|n| {
            let (http, tokens, connections) = (http.clone(), tokens.clone(), connections.clone());
            let arrival = started + interval.mul_f64(n as f64);
            tokio::spawn(async move {
                tokio::time::sleep_until(arrival.into()).await;
                let _connection = connections.acquire().await;
                attempt(&http, goods_id, &tokens[n], arrival).await
            })
        })
        .collect();
    let mut load = Load { latency: Histogram::new_with_bounds(1, 120_000_000, 2).ok(), ..Default::default() };
    for attempt in attempts {
        load.attempts += 1;
        match attempt.await.unwrap_or(Answer::Other) {
            Answer::Accepted(took) => {
                load.accepted += 1;
                if let Some(h) = load.latency.as_mut() {
                    h.saturating_record(took.as_micros() as u64);
                }
            }
            Answer::Limited { retry_after } => {
                load.limited += 1;
                load.limited_with_retry_after += usize::from(retry_after);
            }
            Answer::Other => load.other += 1,
        }
    }
    load.seconds = started.elapsed().as_secs_f64();
    load
}

/// Attempts in flight at most: the driver's connections.
const IN_FLIGHT: usize = 256;

async fn attempt(http: &Http, goods_id: i64, token: &str, began: Instant) -> Answer {
    let url = format!("{}/api/v1/seckill/goods/{goods_id}/path", http.base);
    let request = http.client.post(url).bearer_auth(token).json(&serde_json::json!({"captcha": "k6-test"}));
    let Ok(response) = request.send().await else { return Answer::Other };
    let path = match response.status().as_u16() {
        200 => response.json::<serde_json::Value>().await.ok(),
        429 => return limited(&response),
        _ => return Answer::Other,
    };
    let path = path.as_ref().and_then(|body| body["path"].as_str()).unwrap_or_default();
    let url = format!("{}/api/v1/seckill/goods/{goods_id}/{path}/orders", http.base);
    let Ok(response) = http.client.post(url).bearer_auth(token).send().await else { return Answer::Other };
    match response.status().as_u16() {
        202 => Answer::Accepted(began.elapsed()),
        429 => limited(&response),
        _ => Answer::Other,
    }
}

fn limited(response: &reqwest::Response) -> Answer {
    Answer::Limited { retry_after: response.headers().contains_key(reqwest::header::RETRY_AFTER) }
}
