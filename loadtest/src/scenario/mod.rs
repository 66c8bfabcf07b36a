//! `scenario`: the classic flash-sale problems shown on the real stack, the naive variant and the
//! fix on the same load in the same run, with the figures side by side.
//!
//! ```text
//! cargo run --release -p loadtest -- scenario list
//! cargo run --release -p loadtest -- scenario oversell
//! cargo run --release -p loadtest -- scenario all --report docs/scenarios.md
//! ```
//!
//! Each scenario starts the stack it needs in this process (a throwaway database, Redis prefix and
//! queues: [`crate::sandbox`]), once per variant when the variants are settings of the stack:
//! a "without the fix" variant is an explicit setting of that stack, never a code path only
//! scenarios reach. Scenarios whose variants are per goods (the purchase strategies) can also
//! run against a stack already running (`--gateway URL`).

mod announce;
mod bots;
mod breaker;
mod broker_outage;
mod chart;
mod duplicate_clicks;
mod graceful_shutdown;
mod load;
mod oversell;
mod payment_timeout;
mod peak_shaving;
mod rate_limit;
mod redis_loss;
mod retry_storm;
mod slow_node;
mod sold_out_flag;
pub(crate) mod stage;
mod stampede;
mod stock_buckets;
mod worker_crash;

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context;

/// Options of `scenario`.
#[derive(clap::Args, Clone)]
pub struct Args {
    /// `list`, a scenario's name, or `all`.
    name: String,
    /// Also write every scenario run as markdown to FILE.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Seconds of load per variant (the scenarios that offer load for a time).
    #[arg(long, default_value_t = 8)]
    seconds: u64,
    /// Buyers per variant instead of the scenario's own number (the scenarios with a crowd).
    #[arg(long)]
    buyers: Option<usize>,
    /// Run against this gateway instead of a stack of its own (only the scenarios whose
    /// variants are per goods; the others say so).
    #[arg(long, value_name = "URL")]
    gateway: Option<String>,
    /// With `--gateway`: the admin to log in as (scripts/dev-up creates this one).
    #[arg(long, default_value = "admin")]
    admin_user: String,
    /// With `--gateway`: its password (scripts/dev-up's default).
    #[arg(long, default_value = "seckill-admin")]
    admin_password: String,
}

/// A scenario: what goes wrong, and where the fix lives.
pub struct Scenario {
    name: &'static str,
    title: &'static str,
    /// The problem, in two sentences.
    problem: &'static str,
    /// The files that implement the fix.
    fix: &'static [&'static str],
}

const SCENARIOS: &[Scenario] = &[
    oversell::SCENARIO,
    duplicate_clicks::SCENARIO,
    bots::SCENARIO,
    peak_shaving::SCENARIO,
    sold_out_flag::SCENARIO,
    stampede::SCENARIO,
    rate_limit::SCENARIO,
    breaker::SCENARIO,
    retry_storm::SCENARIO,
    slow_node::SCENARIO,
    worker_crash::SCENARIO,
    broker_outage::SCENARIO,
    redis_loss::SCENARIO,
    stock_buckets::SCENARIO,
    graceful_shutdown::SCENARIO,
    payment_timeout::SCENARIO,
];

/// One variant's figures.
pub struct Figures {
    /// What this variant is ("no limit", "global limit 1,000 req/s").
    pub variant: String,
    pub attempts: usize,
    pub orders: i64,
    pub oversold: i64,
    pub duplicates: i64,
    /// Units left unsold although buyers wanted them.
    pub undersold: i64,
    /// Accepted attempts / attempts.
    pub accepted_rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// The scenario's own measures, by name.
    pub own: Vec<(&'static str, String)>,
    /// Accepted purchases per second over the run, per [`chart::BUCKET_SECS`].
    pub timeline: Vec<f64>,
}

/// A scenario's run: every variant (the naive first, the fix last) and what they show.
pub struct Outcome {
    pub variants: Vec<Figures>,
    /// The naive variant shows the problem, with a number.
    pub reproduced: bool,
    /// The fix removes or bounds it, with a number.
    pub fixed: bool,
    /// One line.
    pub verdict: String,
    /// The scenario's own chart for `--report` (else accepted purchases per second).
    pub chart: Option<chart::Chart>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    if args.name == "list" {
        for scenario in SCENARIOS {
            println!("{:<18} {}", scenario.name, scenario.title);
        }
        return Ok(());
    }
    let chosen: Vec<&Scenario> = if args.name == "all" {
        SCENARIOS.iter().collect()
    } else {
        let scenario = SCENARIOS.iter().find(|s| s.name == args.name);
        vec![scenario.with_context(|| format!("no scenario {:?} (`loadtest scenario list`)", args.name))?]
    };
    let command: Vec<String> = std::env::args().skip(1).collect();
    let mut report = format!(
        "# Scenarios\n\nWritten by `loadtest {}` on {} cores, {}.\n",
        command.join(" "),
        std::thread::available_parallelism().map_or(0, usize::from),
        chrono::Utc::now().format("%Y-%m-%d")
    );
    let all_started = std::time::Instant::now();
    let count = chosen.len();
    let mut failed = Vec::new();
    let announcer = announce::Announcer::connect().await;
    for scenario in chosen {
        eprintln!("\n== scenario {}: {}", scenario.name, scenario.title);
        let started = std::time::Instant::now();
        let status = announcer.started(scenario).await;
        let outcome = match scenario.name {
            "oversell" => oversell::run(&args).await,
            "duplicate-clicks" => duplicate_clicks::run(&args).await,
            "bots" => bots::run(&args).await,
            "peak-shaving" => peak_shaving::run(&args).await,
            "sold-out-flag" => sold_out_flag::run(&args).await,
            "stampede" => stampede::run(&args).await,
            "rate-limit" => rate_limit::run(&args).await,
            "breaker" => breaker::run(&args).await,
            "retry-storm" => retry_storm::run(&args).await,
            "slow-node" => slow_node::run(&args).await,
            "worker-crash" => worker_crash::run(&args).await,
            "broker-outage" => broker_outage::run(&args).await,
            "redis-loss" => redis_loss::run(&args).await,
            "stock-buckets" => stock_buckets::run(&args).await,
            "payment-timeout" => payment_timeout::run(&args).await,
            "graceful-shutdown" => graceful_shutdown::run(&args).await,
            other => unreachable!("scenario {other} has no runner"),
        }
        .with_context(|| format!("scenario {}", scenario.name));
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(err) => {
                announcer.broke(status, &err).await;
                return Err(err);
            }
        };
        announcer.finished(status, &outcome).await;
        eprintln!("   ({:.0} s)", started.elapsed().as_secs_f64());
        let text = render(scenario, &outcome);
        println!("{text}");
        report.push('\n');
        report.push_str(&text);
        if let Some(path) = &args.report {
            // Next to the report: `docs/scenarios/NAME.svg` for `docs/scenarios.md`.
            let dir = path.with_extension("");
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let file = dir.join(format!("{}.svg", scenario.name));
            let accepted;
            let drawn = match &outcome.chart {
                Some(own) => own,
                None => {
                    accepted = chart::Chart::accepted(&outcome.variants);
                    &accepted
                }
            };
            chart::draw(&file, scenario.title, drawn)?;
            let relative = format!("{}/{}.svg", dir.file_name().unwrap_or_default().to_string_lossy(), scenario.name);
            report.push_str(&format!("\n![{}]({relative})\n", drawn.y_desc));
        }
        if !(outcome.reproduced && outcome.fixed) {
            failed.push(scenario.name);
        }
    }
    let _ = writeln!(report, "\n{count} scenarios in {:.0} s.", all_started.elapsed().as_secs_f64());
    if let Some(path) = &args.report {
        std::fs::write(path, report).with_context(|| format!("writing {}", path.display()))?;
    }
    // A naive variant that does not show its problem is a failed scenario, not a pass.
    anyhow::ensure!(failed.is_empty(), "scenarios that did not show the problem and its fix: {}", failed.join(", "));
    Ok(())
}

/// A scenario's run as markdown: the problem, the figures side by side, the verdict, the files.
fn render(scenario: &Scenario, outcome: &Outcome) -> String {
    let variants = &outcome.variants;
    let mut out = format!("## {} (`{}`)\n\n{}\n\n", scenario.title, scenario.name, scenario.problem);
    let header: Vec<String> = match variants.as_slice() {
        [before, after] => vec![format!("before: {}", before.variant), format!("after: {}", after.variant)],
        all => all.iter().map(|v| v.variant.clone()).collect(),
    };
    let _ = writeln!(out, "| | {} |\n|---|{}", header.join(" | "), "--:|".repeat(header.len()));
    let mut row = |name: &str, cells: Vec<String>| {
        let _ = writeln!(out, "| {name} | {} |", cells.join(" | "));
    };
    // A scenario without purchases (page views) has only its served share and latency.
    let purchases = variants.iter().any(|v| v.attempts > 0);
    if purchases {
        row("purchase attempts", variants.iter().map(|v| v.attempts.to_string()).collect());
        row("orders", variants.iter().map(|v| v.orders.to_string()).collect());
        row("oversold", variants.iter().map(|v| v.oversold.to_string()).collect());
        row("duplicates", variants.iter().map(|v| v.duplicates.to_string()).collect());
        row("undersold units", variants.iter().map(|v| v.undersold.to_string()).collect());
    }
    let what = if purchases { "accepted" } else { "served" };
    row(what, variants.iter().map(|v| percent(v.accepted_rate)).collect());
    row(&format!("p50 of {what}"), variants.iter().map(|v| format!("{:.1} ms", v.p50_ms)).collect());
    row(&format!("p99 of {what}"), variants.iter().map(|v| format!("{:.1} ms", v.p99_ms)).collect());
    for (i, (name, _)) in variants.first().map(|v| v.own.as_slice()).unwrap_or_default().iter().enumerate() {
        row(name, variants.iter().map(|v| v.own.get(i).map(|(_, value)| value.clone()).unwrap_or_default()).collect());
    }
    let _ = writeln!(
        out,
        "\n**{}** {}\n\nThe fix: {}.",
        match (outcome.reproduced, outcome.fixed) {
            (true, true) => "Verdict:",
            (false, _) => "FAILED, the problem did not show:",
            (true, false) => "FAILED, the fix did not fix it:",
        },
        outcome.verdict,
        scenario.fix.iter().map(|f| format!("[`{f}`](../{f})")).collect::<Vec<_>>().join(", ")
    );
    out
}

fn percent(rate: f64) -> String {
    format!("{:.1}%", 100.0 * rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(variant: &str, p99_ms: f64) -> Figures {
        Figures {
            variant: variant.into(),
            attempts: 100,
            orders: 90,
            oversold: 0,
            duplicates: 0,
            undersold: 0,
            accepted_rate: 0.9,
            p50_ms: 1.0,
            p99_ms,
            own: vec![("429 answers", "0".into())],
            timeline: vec![10.0, 20.0],
        }
    }

    #[test]
    fn a_scenario_renders_both_variants_side_by_side_and_says_when_it_failed() {
        let scenario = &SCENARIOS[0];
        let outcome = Outcome {
            variants: vec![figures("naive", 900.0), figures("fixed", 9.0)],
            reproduced: false,
            fixed: true,
            verdict: "p99 900 ms → 9 ms".into(),
            chart: None,
        };
        let text = render(scenario, &outcome);
        assert!(text.contains("| | before: naive | after: fixed |\n|---|--:|--:|\n"), "{text}");
        assert!(text.contains("| p99 of accepted | 900.0 ms | 9.0 ms |"), "{text}");
        assert!(text.contains("| 429 answers | 0 | 0 |"), "{text}");
        assert!(text.contains("FAILED, the problem did not show"), "{text}");
    }

    #[test]
    fn more_than_two_variants_get_a_column_each() {
        let outcome = Outcome {
            variants: vec![figures("a", 1.0), figures("b", 2.0), figures("c", 3.0)],
            reproduced: true,
            fixed: true,
            verdict: "fine".into(),
            chart: None,
        };
        let text = render(&SCENARIOS[0], &outcome);
        assert!(text.contains("| | a | b | c |\n|---|--:|--:|--:|\n"), "{text}");
        assert!(text.contains("| p99 of accepted | 1.0 ms | 2.0 ms | 3.0 ms |"), "{text}");
        assert!(text.contains("**Verdict:** fine"), "{text}");
    }

    #[test]
    fn every_scenario_names_its_problem_and_fix_files_that_exist() {
        for scenario in SCENARIOS {
            assert!(!scenario.problem.is_empty() && !scenario.fix.is_empty(), "{}", scenario.name);
            for file in scenario.fix {
                let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(file);
                assert!(path.exists(), "{}: {file} does not exist", scenario.name);
            }
        }
    }
}
