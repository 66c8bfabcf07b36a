//! Where a scenario runs: a stack of its own in this process ([`FullStack`]), or a gateway already
//! running (`--gateway URL`); and how a variant's figures are read back from it: through the
//! gateway's audit, as a user of either would read them.

use std::time::Duration;

use super::load::Load;
use super::{Args, Figures};
use crate::audit::gateway::Gateway;
use crate::audit::report::GoodsAudit;
use crate::http::Http;
use crate::sandbox::{FullStack, StackOptions};

/// A stack to run a variant on.
pub struct Stage {
    /// The gateway's API.
    pub http: Http,
    gateway: Gateway,
    stack: Option<FullStack>,
}

impl Stage {
    /// A stack of its own, started as `options` say.
    pub async fn own(options: StackOptions) -> anyhow::Result<Stage> {
        let stack = FullStack::start(options).await?;
        let http = Http { client: client()?, base: stack.base_url.clone(), admin: stack.admin_token.clone() };
        let gateway = Gateway::with_token(&stack.base_url, stack.admin_token.clone())?;
        Ok(Stage { http, gateway, stack: Some(stack) })
    }

    /// The gateway of `--gateway` if given, else a default stack of its own.
    pub async fn from_args(args: &Args) -> anyhow::Result<Stage> {
        let Some(base) = &args.gateway else {
            return Stage::own(StackOptions::with_limits(unlimited())).await;
        };
        let http = Http::login(client()?, base, &args.admin_user, &args.admin_password).await?;
        let gateway = Gateway::with_token(&http.base, http.admin.clone())?;
        Ok(Stage { http, gateway, stack: None })
    }

    /// The stack, when it is this process's own.
    pub fn stack(&self) -> Option<&FullStack> {
        self.stack.as_ref()
    }

    /// [`Stage::stack`], to change it (crash a worker).
    pub fn stack_mut(&mut self) -> Option<&mut FullStack> {
        self.stack.as_mut()
    }

    /// Waits until no ticket of `goods_id` is pending, then audits it.
    pub async fn audit(&self, goods_id: i64) -> anyhow::Result<GoodsAudit> {
        // Overloaded, the services' breakers may still be open for a few seconds: the audit waits.
        let mut audit = crate::audit::wait_drained(&self.gateway, Some(goods_id), Duration::from_secs(120)).await;
        for _ in 0..30 {
            if audit.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            audit = crate::audit::wait_drained(&self.gateway, Some(goods_id), Duration::from_secs(120)).await;
        }
        let mut report = audit?;
        anyhow::ensure!(report.goods.len() == 1, "no audit of goods {goods_id}");
        Ok(report.goods.remove(0))
    }

    /// Audits `goods_id` once no ticket is pending or `settle` has passed, whichever comes
    /// first: for a variant that loses tickets, whose pending ones never settle.
    pub async fn audit_settled(&self, goods_id: i64, settle: Duration) -> anyhow::Result<GoodsAudit> {
        let started = std::time::Instant::now();
        loop {
            // A breaker opened by the fault may refuse the audit for a few seconds.
            match self.gateway.audit(Some(goods_id)).await {
                Ok(mut report) if report.drained() || started.elapsed() >= settle => {
                    anyhow::ensure!(report.goods.len() == 1, "no audit of goods {goods_id}");
                    return Ok(report.goods.remove(0));
                }
                Err(err) if started.elapsed() >= settle + Duration::from_secs(30) => return Err(err),
                Ok(_) | Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }

    /// The figures of a variant that ran `load` on `goods_id`, whose buyers wanted `wanted`
    /// units in all.
    pub async fn figures(&self, variant: String, goods_id: i64, wanted: i64, load: &Load) -> anyhow::Result<Figures> {
        Ok(figures_of(variant, &self.audit(goods_id).await?, wanted, load))
    }

    /// Stops the stack if it is this process's own.
    pub async fn finish(self) {
        if let Some(stack) = self.stack {
            stack.finish().await;
        }
    }
}

/// A variant's figures, from its goods' audit and its load; the crowd wanted `wanted` units.
pub fn figures_of(variant: String, goods: &GoodsAudit, wanted: i64, load: &Load) -> Figures {
    // Units that could have been sold to someone who wanted one, and were not.
    let undersold = if goods.oversold > 0 { 0 } else { (wanted.min(goods.initial_stock) - goods.orders).max(0) };
    Figures {
        variant,
        attempts: load.attempts,
        orders: goods.orders,
        oversold: goods.oversold,
        duplicates: goods.duplicates,
        undersold,
        accepted_rate: load.accepted_rate(),
        p50_ms: load.p50_ms(),
        p99_ms: load.p99_ms(),
        own: Vec::new(),
        timeline: load.accepted_timeline.iter().map(|n| f64::from(*n) / super::chart::BUCKET_SECS).collect(),
    }
}

/// Limits no scenario crowd reaches: for the scenarios that are not about limits.
pub fn unlimited() -> gateway::settings::LimitSettings {
    gateway::settings::LimitSettings {
        global_per_sec: 10_000_000,
        per_ip_per_sec: 10_000_000,
        per_user_per_sec: 1_000,
        per_user_burst: 1_000,
        brush_limit: 1_000,
        ..Default::default()
    }
}

fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder().timeout(Duration::from_secs(30)).pool_max_idle_per_host(1024).build()?)
}

/// The sum of an RPC client counter (`rpc_client_requests_total`, ...) in Prometheus `text`, over
/// the lines of `service` whose endpoint is one of `endpoints`: this stack's nodes, so that calls
/// still made by an earlier stack in this process are not counted.
pub fn rpc_counter(text: &str, metric: &str, service: &str, endpoints: &[String]) -> u64 {
    let service = format!("service=\"{service}\"");
    let endpoints: Vec<String> = endpoints.iter().map(|e| format!("endpoint=\"{e}\"")).collect();
    counter(text, metric, |labels| labels.contains(&service) && endpoints.iter().any(|e| labels.contains(e.as_str())))
}

/// The sum of counter `metric` in Prometheus `text` over the lines whose labels `keep` accepts.
pub fn counter(text: &str, metric: &str, keep: impl Fn(&str) -> bool) -> u64 {
    text.lines()
        .filter_map(|line| line.strip_prefix(metric))
        .filter(|rest| rest.starts_with('{') || rest.starts_with(' '))
        .filter(|rest| keep(rest))
        .filter_map(|rest| rest.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum::<f64>() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_rpc_counter_sums_one_service_on_the_given_endpoints_only() {
        let text = "# TYPE rpc_client_requests_total counter\n\
            rpc_client_requests_total{service=\"StockService\",endpoint=\"a:1\"} 10\n\
            rpc_client_requests_total{service=\"StockService\",endpoint=\"b:2\"} 5\n\
            rpc_client_requests_total{service=\"StockService\",endpoint=\"old:3\"} 7\n\
            rpc_client_requests_total{service=\"OrderService\",endpoint=\"a:1\"} 99\n\
            rpc_client_retries_total{service=\"StockService\",endpoint=\"b:2\"} 3\n";
        let ours = ["a:1".to_owned(), "b:2".to_owned()];
        assert_eq!(rpc_counter(text, "rpc_client_requests_total", "StockService", &ours), 15);
        assert_eq!(rpc_counter(text, "rpc_client_retries_total", "StockService", &ours), 3);
        assert_eq!(rpc_counter(text, "rpc_client_requests_total", "OrderService", &ours), 99);
    }
}
