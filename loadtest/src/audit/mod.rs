//! `audit`: asks a running gateway whether any sale broke an invariant (oversold, a user buying
//! twice, stock that does not add up), prints one line per goods and fails if any did.
//!
//! ```text
//! cargo run --release -p loadtest -- audit --wait-drained 60
//! ```

pub(crate) mod gateway;
pub(crate) mod report;

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use self::gateway::Gateway;
use self::report::AuditReport;

/// A running gateway and the admin who talks to it (`audit`, `buyers`).
#[derive(clap::Args)]
pub struct AdminLogin {
    /// The gateway's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub gateway: String,
    /// Admin to log in as (scripts/dev-up creates this one).
    #[arg(long, default_value = "admin")]
    admin_user: String,
    /// Its password (scripts/dev-up's default).
    #[arg(long, default_value = "seckill-admin")]
    admin_password: String,
    /// An admin bearer token to use instead of logging in.
    #[arg(long, conflicts_with_all = ["admin_user", "admin_password"])]
    token: Option<String>,
}

impl AdminLogin {
    /// The gateway, as that admin.
    pub async fn gateway(self) -> anyhow::Result<Gateway> {
        match self.token {
            Some(token) => Gateway::with_token(&self.gateway, token),
            None => Gateway::login(&self.gateway, &self.admin_user, &self.admin_password).await,
        }
    }
}

/// Options of `audit`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    login: AdminLogin,
    /// Audit this goods only.
    #[arg(long, value_name = "GOODS_ID")]
    goods: Option<i64>,
    /// First wait up to SECS seconds until no ticket is pending, so every invariant can be checked;
    /// fails if tickets are still pending then.
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    wait_drained: u64,
}

/// Runs the audit: Ok if every invariant holds.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let gateway = args.login.gateway().await?;
    let report = if args.wait_drained > 0 {
        wait_drained(&gateway, args.goods, Duration::from_secs(args.wait_drained)).await?
    } else {
        gateway.audit(args.goods).await?
    };
    print!("{}", report.render());
    if !report.passed() {
        anyhow::bail!("the audit failed");
    }
    if args.wait_drained > 0 && !report.drained() {
        anyhow::bail!("{} tickets still pending after {}s", report.pending_tickets(), args.wait_drained);
    }
    Ok(())
}

/// Polls the audit until no ticket is pending or `limit` has passed, and returns the last one.
pub(crate) async fn wait_drained(
    gateway: &Gateway,
    goods: Option<i64>,
    limit: Duration,
) -> anyhow::Result<AuditReport> {
    let started = Instant::now();
    // Hidden when stderr is not a terminal (CI logs), so the outcome is also said in plain text.
    let spinner = ProgressBar::new_spinner().with_style(ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")?);
    spinner.enable_steady_tick(Duration::from_millis(100));
    let mut report = gateway.audit(goods).await?;
    let waited = !report.drained();
    while !report.drained() && started.elapsed() < limit {
        spinner.set_message(format!("waiting for {} pending tickets to settle", report.pending_tickets()));
        tokio::time::sleep(Duration::from_millis(500)).await;
        report = gateway.audit(goods).await?;
    }
    spinner.finish_and_clear();
    if waited && report.drained() {
        eprintln!("drained after {:.1}s", started.elapsed().as_secs_f64());
    }
    Ok(report)
}
