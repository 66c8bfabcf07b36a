//! The buyers of a drill: they arrive at a steady rate, each tries once to buy (path, then
//! order; again after a 429, as a person would), and the time of every accepted ticket is kept,
//! so the drill can say when buying worked again after a part came back.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};

use crate::http::Http;

/// How one buyer's attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A ticket was accepted (202), at this time since the sale started.
    Accepted(Duration),
    /// The sale was sold out: an answer, not a failure.
    SoldOut,
    /// "You have bought this already": each buyer tries once, so the first attempt, repeated by
    /// the load balancer after a gateway died under it, went through.
    Duplicate,
    /// Refused for this reason (the problem's code, an HTTP status, or "no answer").
    Rejected(String),
}

/// What the crowd saw.
pub struct Crowd {
    /// Each buyer's outcome, by buyer.
    pub outcomes: Vec<Outcome>,
}

/// Attempts per buyer when rate limited (429), a second apart: as k6's buyers do.
const ATTEMPTS: usize = 5;

impl Crowd {
    /// Buyers with `tokens` arrive at `rate` per second from `started` on, each trying to buy
    /// one unit of `goods_id`; returns when every one has an answer.
    pub async fn run(http: Http, goods_id: i64, tokens: Arc<Vec<String>>, rate: u32, started: Instant) -> Crowd {
        let bar = ProgressBar::new(tokens.len() as u64)
            .with_style(ProgressStyle::with_template("{bar:40} {pos}/{len} buyers [{elapsed}] {msg}").expect("style"));
        let interval = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
        let buyers: Vec<_> = (0..tokens.len())
            .map(|n| {
                let (http, tokens, bar) = (http.clone(), tokens.clone(), bar.clone());
                let arrival = started + interval.mul_f64(n as f64);
                tokio::spawn(async move {
                    tokio::time::sleep_until(arrival.into()).await;
                    let outcome = buy(&http, goods_id, &tokens[n], started).await;
                    bar.inc(1);
                    outcome
                })
            })
            .collect();
        let mut outcomes = Vec::with_capacity(buyers.len());
        for buyer in buyers {
            outcomes.push(buyer.await.unwrap_or_else(|err| Outcome::Rejected(format!("driver: {err}"))));
        }
        bar.finish_and_clear();
        Crowd { outcomes }
    }

    /// Accepted tickets.
    pub fn accepted(&self) -> usize {
        self.outcomes.iter().filter(|o| matches!(o, Outcome::Accepted(_))).count()
    }

    /// Buyers told they had bought already.
    pub fn already_ordered(&self) -> usize {
        self.outcomes.iter().filter(|o| matches!(o, Outcome::Duplicate)).count()
    }

    /// Refused buyers.
    pub fn rejected(&self) -> usize {
        self.outcomes.iter().filter(|o| matches!(o, Outcome::Rejected(_))).count()
    }

    /// Refusals by reason.
    pub fn reasons(&self) -> BTreeMap<String, usize> {
        let mut reasons = BTreeMap::new();
        for outcome in &self.outcomes {
            if let Outcome::Rejected(reason) = outcome {
                *reasons.entry(reason.clone()).or_default() += 1;
            }
        }
        reasons
    }

    /// The first ticket accepted at or after `since` (time since the sale started).
    pub fn first_accepted_after(&self, since: Duration) -> Option<Duration> {
        self.outcomes
            .iter()
            .filter_map(|o| match o {
                Outcome::Accepted(at) if *at >= since => Some(*at),
                _ => None,
            })
            .min()
    }

    /// The final result of every buyer with an accepted ticket (or told they had bought),
    /// asked once everything settled: the statuses other than `success`, counted.
    pub async fn unsuccessful(&self, http: &Http, goods_id: i64, tokens: &[String]) -> BTreeMap<String, usize> {
        let accepted: Vec<&String> = self
            .outcomes
            .iter()
            .zip(tokens)
            .filter(|(o, _)| matches!(o, Outcome::Accepted(_) | Outcome::Duplicate))
            .map(|(_, token)| token)
            .collect();
        let results: Vec<String> = futures::stream::iter(accepted)
            .map(
                |token| async move { http.result(goods_id, token).await.unwrap_or_else(|err| format!("error: {err}")) },
            )
            .buffer_unordered(32)
            .collect()
            .await;
        let mut statuses = BTreeMap::new();
        for status in results.into_iter().filter(|status| status != "success") {
            *statuses.entry(status).or_default() += 1;
        }
        statuses
    }
}

/// One buyer: path, then order; after a 429 again a second later, up to [`ATTEMPTS`] times.
async fn buy(http: &Http, goods_id: i64, token: &str, started: Instant) -> Outcome {
    for _ in 0..ATTEMPTS {
        match http.buy(goods_id, token).await {
            Ok(reply) if reply.status == 202 => return Outcome::Accepted(started.elapsed()),
            Ok(reply) if reply.status == 429 => tokio::time::sleep(Duration::from_secs(1)).await,
            Ok(reply) => {
                let status = reply.status;
                return match reply.code() {
                    Some("SOLD_OUT") => Outcome::SoldOut,
                    Some("DUPLICATE_ORDER") => Outcome::Duplicate,
                    Some(code) => Outcome::Rejected(format!("{status} {code}")),
                    None => Outcome::Rejected(format!("HTTP {status}")),
                };
            }
            Err(err) => return Outcome::Rejected(format!("no answer ({})", short(&err))),
        }
    }
    Outcome::Rejected("429 RATE_LIMITED".into())
}

/// A transport error in a few words (reqwest's are long chains).
fn short(err: &anyhow::Error) -> &'static str {
    match err.downcast_ref::<reqwest::Error>() {
        Some(err) if err.is_timeout() => "timeout",
        Some(err) if err.is_connect() => "connect",
        _ => "connection closed",
    }
}
