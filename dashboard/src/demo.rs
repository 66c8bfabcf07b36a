//! The demo sale the page starts: a sale of `stock` units, `buyers` buyers arriving at `rate`
//! per second, driven by the load tool's crowd (`loadtest::crowd`) against the gateway, as the
//! admin who started it. The gateway must be in captcha test mode (dev-up and compose run it so):
//! the crowd answers every captcha with the test answer.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use loadtest::crowd::Crowd;
use loadtest::http::Http;
use serde::Deserialize;

use crate::snapshot::DemoState;

/// What the form asks for.
#[derive(Clone, Copy, Debug, Deserialize)]
pub struct DemoRequest {
    /// Units on sale (1..=100,000).
    pub stock: i32,
    /// Buyers (1..=100,000).
    pub buyers: u32,
    /// Arrivals per second (1..=20,000).
    pub rate: u32,
}

impl DemoRequest {
    /// Refuses what the page should not be able to start.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=100_000).contains(&self.stock) {
            return Err("stock must be 1..=100000".into());
        }
        if !(1..=100_000).contains(&self.buyers) {
            return Err("buyers must be 1..=100000".into());
        }
        if !(1..=20_000).contains(&self.rate) {
            return Err("rate must be 1..=20000 per second".into());
        }
        Ok(())
    }
}

/// Runs one demo sale at a time; its state is what the page shows.
#[derive(Clone)]
pub(crate) struct DemoRunner {
    pub(crate) state: Arc<Mutex<Option<DemoState>>>,
    gateway_url: String,
    client: reqwest::Client,
}

impl DemoRunner {
    /// Against the gateway at `gateway_url`.
    pub(crate) fn new(gateway_url: String) -> DemoRunner {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap_or_default();
        DemoRunner { state: Arc::new(Mutex::new(None)), gateway_url, client }
    }

    /// Starts a sale unless one runs; `admin_token` is the bearer token it acts with.
    pub(crate) fn start(&self, request: DemoRequest, admin_token: String) -> Result<(), &'static str> {
        {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if state.as_ref().is_some_and(|s| s.phase != "done" && s.phase != "failed") {
                return Err("a demo sale is running");
            }
            *state = Some(DemoState {
                phase: "preparing".into(),
                goods_id: None,
                stock: request.stock,
                buyers: request.buyers as usize,
                rate: request.rate,
                summary: Vec::new(),
            });
        }
        let runner = self.clone();
        tokio::spawn(async move {
            if let Err(err) = runner.run(request, admin_token).await {
                tracing::warn!(%err, "demo sale failed");
                runner.update(|state| {
                    state.phase = "failed".into();
                    state.summary.push(format!("{err:#}"));
                });
            }
        });
        Ok(())
    }

    async fn run(&self, request: DemoRequest, admin: String) -> anyhow::Result<()> {
        let http = Http { client: self.client.clone(), base: self.gateway_url.trim_end_matches('/').to_owned(), admin };
        let goods_id = http.sale(request.stock).await?;
        let tokens = Arc::new(http.users(request.buyers).await?);
        self.update(|state| {
            state.goods_id = Some(goods_id);
            state.phase = "buying".into();
        });
        let crowd = Crowd::run(http.clone(), goods_id, tokens, request.rate, Instant::now()).await;
        self.update(|state| state.phase = "draining".into());
        let drained = drain(&http, goods_id).await;
        let mut summary = vec![
            format!("{} accepted of {} buyers", crowd.accepted(), crowd.outcomes.len()),
            format!(
                "{} told sold out",
                crowd.outcomes.iter().filter(|o| **o == loadtest::crowd::Outcome::SoldOut).count()
            ),
        ];
        summary.extend(crowd.reasons().into_iter().map(|(reason, n)| format!("{n} refused: {reason}")));
        if !drained {
            summary.push("the queue had not drained after 60 s".into());
        }
        self.update(|state| {
            state.phase = "done".into();
            state.summary = summary;
        });
        Ok(())
    }

    fn update(&self, change: impl FnOnce(&mut DemoState)) {
        if let Some(state) = self.state.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            change(state);
        }
    }
}

/// Waits (at most a minute) until no accepted ticket of `goods_id` is still unwritten.
async fn drain(http: &Http, goods_id: i64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok((200, stats)) = http.get(&format!("/admin/v1/goods/{goods_id}/stats"), &http.admin).await {
            if stats["pending_tickets"].as_i64() == Some(0) {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}
