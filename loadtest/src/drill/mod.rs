//! `drill`: kill -9 one part of the system in the middle of a sale, restart it, and say what the
//! buyers lost and whether the sale stayed correct.
//!
//! Everything runs on infrastructure of the drill's own (a private PostgreSQL, Redis and RabbitMQ
//! on free ports, in temporary directories) under a stack of its own (`scripts/dev-up` with its
//! state in var/drill/stack and every port + 20000): nothing else on the machine is touched, and
//! everything the drill started is stopped at the end. Per drill: a new sale of as many units as
//! buyers; buyers arrive at a steady rate; the part is killed with SIGKILL, left down, restarted;
//! once every buyer has an answer the drill waits until every ticket is settled, asks each
//! accepted buyer for the outcome, and audits the goods.
//!
//! ```text
//! cargo run --release -p loadtest -- drill all
//! cargo run --release -p loadtest -- drill postgres --down 300
//! cargo run --release -p loadtest -- drill order-worker stock-service --buyers 3000 --rate 200
//! ```

mod env;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::ValueEnum;

use self::env::Env;
use crate::audit::gateway::Gateway;
use crate::crowd::Crowd;
use crate::http::Http;

/// Options of `drill`.
#[derive(clap::Args)]
pub struct Args {
    /// The parts to kill, one drill each, in this order (`all`: every one).
    #[arg(required = true, value_enum)]
    parts: Vec<Part>,
    /// Buyers per drill (as many units are on sale, so every buyer could get one).
    #[arg(long, default_value_t = 9_000)]
    buyers: u32,
    /// Buyers arriving per second (the sale lasts buyers / rate seconds).
    #[arg(long, default_value_t = 300)]
    rate: u32,
    /// Seconds into the sale at which the part is killed.
    #[arg(long, default_value_t = 8)]
    kill_after: u64,
    /// Seconds the part stays down: `SECS` for every drill, `PART=SECS` for one (repeatable),
    /// e.g. `--down 4 --down postgres=300`.
    #[arg(long, value_name = "[PART=]SECS", default_values = ["4"])]
    down: Vec<String>,
    /// Instances of stock-service, order-service and order-worker (two gateways behind
    /// HAProxy when more than one).
    #[arg(long, default_value_t = 2)]
    replicas: usize,
    /// Seconds to wait, after the sale, until every ticket is settled.
    #[arg(long, default_value_t = 180)]
    drain_wait: u64,
    /// Fail if a drill of an application process (not of PostgreSQL, Redis or RabbitMQ) rejects
    /// more than PCT % of its buyers.
    #[arg(long, value_name = "PCT")]
    max_rejected: Option<f64>,
    /// Run the drills' Redis with an append-only file (`appendfsync everysec`, as compose's),
    /// so a killed Redis restarts from it; without, it restarts empty (as dev-up's).
    #[arg(long)]
    redis_aof: bool,
    /// Use the release binaries as they are (do not let dev-up build them first).
    #[arg(long)]
    no_build: bool,
    /// Also write the table, with the command and the machine, to FILE (markdown).
    #[arg(long, value_name = "FILE")]
    report: Option<std::path::PathBuf>,
}

/// A part of the system a drill kills.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
enum Part {
    Gateway,
    StockService,
    OrderService,
    OrderWorker,
    Redis,
    Rabbitmq,
    Postgres,
    /// Every part above, in this order.
    All,
}

impl Part {
    const EVERY: [Part; 7] = [
        Part::Gateway,
        Part::StockService,
        Part::OrderService,
        Part::OrderWorker,
        Part::Redis,
        Part::Rabbitmq,
        Part::Postgres,
    ];

    fn name(self) -> &'static str {
        match self {
            Part::Gateway => "gateway",
            Part::StockService => "stock-service",
            Part::OrderService => "order-service",
            Part::OrderWorker => "order-worker",
            Part::Redis => "redis",
            Part::Rabbitmq => "rabbitmq",
            Part::Postgres => "postgres",
            Part::All => "all",
        }
    }

    /// Whether it is one of our processes (replicated), not infrastructure.
    fn is_app(self) -> bool {
        matches!(self, Part::Gateway | Part::StockService | Part::OrderService | Part::OrderWorker)
    }
}

/// What one drill measured.
struct Figures {
    part: Part,
    down: u64,
    buyers: usize,
    accepted: usize,
    /// Buyers told they had bought already (their attempt was repeated by the load balancer).
    already_ordered: usize,
    rejected: usize,
    reasons: BTreeMap<String, usize>,
    /// Seconds from the restart until the part answered again.
    back: f64,
    /// Seconds from then until a ticket was accepted again (None: none was, the sale had ended).
    buying_again: Option<f64>,
    /// Accepted tickets that ended `failed`: the buyer was told, polling (what a Redis loss
    /// can still fail: docs/decisions.md).
    failed: usize,
    /// Accepted tickets that ended neither an order nor `failed`, with their statuses: lost.
    lost: usize,
    lost_statuses: BTreeMap<String, usize>,
    orders: i64,
    oversold: i64,
    duplicates: i64,
    pending: i64,
    audit_ok: bool,
    violations: Vec<String>,
    /// Instances that died although nobody killed them.
    collateral: Vec<String>,
}

impl Figures {
    fn rejected_pct(&self) -> f64 {
        100.0 * self.rejected as f64 / self.buyers.max(1) as f64
    }

    /// Every accepted ticket is an order or a failure its buyer was told of, nothing oversold
    /// or duplicated, nothing pending, nothing else died.
    fn clean(&self) -> bool {
        self.audit_ok
            && self.lost == 0
            && self.oversold == 0
            && self.duplicates == 0
            && self.pending == 0
            && self.orders == (self.accepted + self.already_ordered - self.failed) as i64
            && self.collateral.is_empty()
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let parts: Vec<Part> = if args.parts.contains(&Part::All) { Part::EVERY.to_vec() } else { args.parts.clone() };
    let downs = parse_downs(&args.down)?;
    anyhow::ensure!(args.replicas >= 1, "--replicas must be at least 1");
    let mut env = Env::start(args.replicas, args.redis_aof, !args.no_build)?;
    let outcome = drills(&args, &mut env, &parts, &downs).await;
    env.stop();
    drop(env);
    let figures = outcome?;

    let table = table(&figures);
    println!("\n{table}");
    if let Some(path) = &args.report {
        let command: Vec<String> = std::env::args().skip(1).collect();
        let report = format!(
            "`loadtest {}` on {} cores, {}:\n\n{table}",
            command.join(" "),
            std::thread::available_parallelism().map_or(0, usize::from),
            chrono::Utc::now().format("%Y-%m-%d")
        );
        std::fs::write(path, report).with_context(|| format!("writing {}", path.display()))?;
    }
    let failed: Vec<&str> = figures.iter().filter(|f| !f.clean()).map(|f| f.part.name()).collect();
    anyhow::ensure!(failed.is_empty(), "not clean after the drill of {}", failed.join(", "));
    if let Some(max) = args.max_rejected {
        let over: Vec<String> = figures
            .iter()
            .filter(|f| f.part.is_app() && f.rejected_pct() > max)
            .map(|f| format!("{} {:.2}%", f.part.name(), f.rejected_pct()))
            .collect();
        anyhow::ensure!(over.is_empty(), "more than {max}% of the buyers rejected: {}", over.join(", "));
    }
    Ok(())
}

async fn drills(
    args: &Args,
    env: &mut Env,
    parts: &[Part],
    downs: &BTreeMap<Option<Part>, u64>,
) -> anyhow::Result<Vec<Figures>> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).pool_max_idle_per_host(512).build()?;
    let mut figures = Vec::new();
    for &part in parts {
        let down = downs.get(&Some(part)).or_else(|| downs.get(&None)).copied().unwrap_or(4);
        eprintln!(
            "\n== drill {}: {} buyers at {}/s, kill -9 after {}s, down {down}s",
            part.name(),
            args.buyers,
            args.rate,
            args.kill_after
        );
        let drill =
            drill(args, env, &client, part, down).await.with_context(|| format!("the drill of {}", part.name()))?;
        eprintln!("{}", summary(&drill));
        figures.push(drill);
        // Whatever died (the killed part, or anything it took with it) is started again.
        env.heal()?;
    }
    Ok(figures)
}

async fn drill(args: &Args, env: &mut Env, client: &reqwest::Client, part: Part, down: u64) -> anyhow::Result<Figures> {
    // Logged in every drill: the previous drill may have lost the session with Redis.
    let http = Http::login(client.clone(), &env.gateway_url(), "admin", "seckill-admin").await?;
    let tokens = Arc::new(http.users(args.buyers).await?);
    let goods_id = http.sale(i32::try_from(args.buyers)?).await?;
    let before: Vec<_> = env.instances()?.into_iter().filter(|i| i.pid().is_some()).collect();

    let started = Instant::now();
    let crowd = tokio::spawn(Crowd::run(http.clone(), goods_id, tokens.clone(), args.rate, started));
    tokio::time::sleep(Duration::from_secs(args.kill_after)).await;
    let killed = kill(env, part)?;
    eprintln!("{:>6.1}s kill -9 {killed}", started.elapsed().as_secs_f64());
    tokio::time::sleep(Duration::from_secs(down)).await;
    let restart = Instant::now();
    eprintln!("{:>6.1}s restarting {}", started.elapsed().as_secs_f64(), part.name());
    let back = restart_part(env, part).await?;
    eprintln!("{:>6.1}s {} answers again", (back - started).as_secs_f64(), part.name());
    let crowd: Crowd = crowd.await?;

    let collateral = before.iter().filter(|i| i.pid().is_none() && i.name != killed).map(|i| i.name.clone()).collect();
    let gateway = Gateway::with_token(&env.gateway_url(), http.admin.clone())?;
    let audit = crate::audit::wait_drained(&gateway, Some(goods_id), Duration::from_secs(args.drain_wait)).await?;
    let goods = audit.goods.first().context("the audit has no such goods")?;
    let mut lost_statuses = crowd.unsuccessful(&http, goods_id, &tokens).await;
    let failed = lost_statuses.remove("failed").unwrap_or(0);
    let lost = lost_statuses.values().sum();
    Ok(Figures {
        part,
        down,
        buyers: crowd.outcomes.len(),
        accepted: crowd.accepted(),
        already_ordered: crowd.already_ordered(),
        rejected: crowd.rejected(),
        reasons: crowd.reasons(),
        back: (back - restart).as_secs_f64(),
        buying_again: crowd.first_accepted_after(back - started).map(|at| (at - (back - started)).as_secs_f64()),
        failed,
        lost,
        lost_statuses,
        orders: goods.orders,
        oversold: goods.oversold,
        duplicates: goods.duplicates,
        pending: goods.pending_tickets,
        audit_ok: audit.passed() && goods.violations.is_empty(),
        violations: goods.violations.clone(),
        collateral,
    })
}

/// Kills `part` (the first instance, for a replicated program): the instance name killed.
fn kill(env: &mut Env, part: Part) -> anyhow::Result<String> {
    match part {
        Part::Redis => env.redis.kill(),
        Part::Rabbitmq => tokio::task::block_in_place(|| env.rabbitmq.kill()),
        Part::Postgres => tokio::task::block_in_place(|| env.postgres.kill()),
        Part::All => unreachable!("expanded before the drills"),
        app => {
            let instance = env.instance(app.name())?;
            let pid = instance.kill()?;
            eprintln!("        {} had pid {pid}", instance.name);
            return Ok(instance.name);
        }
    }
    Ok(part.name().to_owned())
}

/// Starts `part` again and waits until it answers: when it did.
async fn restart_part(env: &mut Env, part: Part) -> anyhow::Result<Instant> {
    let limit = Duration::from_secs(120);
    match part {
        // The stores are started in place (blocking this worker thread, not the buyers') and
        // answer when their start returns.
        Part::Redis => tokio::task::block_in_place(|| env.redis.restart()),
        Part::Rabbitmq => tokio::task::block_in_place(|| env.rabbitmq.restart())?,
        Part::Postgres => tokio::task::block_in_place(|| env.postgres.restart())?,
        Part::All => unreachable!("expanded before the drills"),
        app => {
            tokio::task::block_in_place(|| env.heal())?;
            return env.instance(app.name())?.wait_up(limit).await;
        }
    }
    Ok(Instant::now())
}

/// `--down` values: `SECS` (every drill) and `PART=SECS`.
fn parse_downs(values: &[String]) -> anyhow::Result<BTreeMap<Option<Part>, u64>> {
    values
        .iter()
        .map(|value| {
            let (part, secs) = match value.split_once('=') {
                Some((part, secs)) => {
                    let part = Part::from_str(part, true).map_err(|err| anyhow::anyhow!("--down {value}: {err}"))?;
                    (Some(part), secs)
                }
                None => (None, value.as_str()),
            };
            let secs = secs.parse().with_context(|| format!("--down {value}: not a number of seconds"))?;
            Ok((part, secs))
        })
        .collect()
}

/// One drill in a few lines.
fn summary(f: &Figures) -> String {
    let mut out = format!(
        "buyers {}, accepted {}{}, rejected {} ({:.2}%), orders {}; back {:.1}s after the restart, buying again {}",
        f.buyers,
        f.accepted,
        match f.already_ordered {
            0 => String::new(),
            n => format!(" (and {n} told they had bought already)"),
        },
        f.rejected,
        f.rejected_pct(),
        f.orders,
        f.back,
        f.buying_again.map_or("never (the sale had ended)".to_owned(), |s| format!("{s:.2}s after that")),
    );
    if !f.reasons.is_empty() {
        let _ = write!(out, "\n  rejected: {}", list(&f.reasons));
    }
    let _ = write!(
        out,
        "\n  audit: {}; accepted then failed {}, lost {}, oversold {}, duplicates {}, pending {}",
        if f.audit_ok { "clean" } else { "VIOLATED" },
        f.failed,
        f.lost,
        f.oversold,
        f.duplicates,
        f.pending
    );
    for violation in &f.violations {
        let _ = write!(out, "\n  violated: {violation}");
    }
    if !f.lost_statuses.is_empty() {
        let _ = write!(out, " (lost tickets' results: {})", list(&f.lost_statuses));
    }
    if !f.collateral.is_empty() {
        let _ = write!(out, "\n  DIED WITHOUT BEING KILLED: {}", f.collateral.join(", "));
    }
    out
}

fn list(counts: &BTreeMap<String, usize>) -> String {
    counts.iter().map(|(reason, n)| format!("{reason} × {n}")).collect::<Vec<_>>().join(", ")
}

/// Every drill as a markdown table.
fn table(figures: &[Figures]) -> String {
    let mut out = String::from(
        "| killed | down | buyers | orders | rejected | back after restart | buying again after back | accepted, then failed | lost | oversold | duplicates | pending | audit |\n\
         |---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n",
    );
    for f in figures {
        let _ = writeln!(
            out,
            "| {} | {} s | {} | {} | {} ({:.2}%) | {:.1} s | {} | {} | {} | {} | {} | {} | {} |",
            f.part.name(),
            f.down,
            f.buyers,
            f.orders,
            f.rejected,
            f.rejected_pct(),
            f.back,
            f.buying_again.map_or("–".to_owned(), |s| format!("{s:.2} s")),
            f.failed,
            f.lost,
            f.oversold,
            f.duplicates,
            f.pending,
            if f.clean() { "clean" } else { "FAILED" },
        );
    }
    let reasons: Vec<String> = figures
        .iter()
        .filter(|f| !f.reasons.is_empty())
        .map(|f| format!("{}: {}", f.part.name(), list(&f.reasons)))
        .collect();
    if !reasons.is_empty() {
        let _ = write!(out, "\nRejections by answer — {}.\n", reasons.join("; "));
    }
    out
}
