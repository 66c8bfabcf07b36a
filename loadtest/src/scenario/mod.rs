//! `scenario`: the classic flash-sale problems shown on the real stack, the naive variant and the
//! fix on the same load in the same run, with the figures side by side.
//!
//! ```text
//! cargo run --release -p loadtest -- scenario list
//! cargo run --release -p loadtest -- scenario rate-limit
//! cargo run --release -p loadtest -- scenario all --report docs/scenarios.md
//! ```
//!
//! Each scenario starts the stack it needs in this process (a throwaway database, Redis prefix and
//! queues: [`crate::sandbox`]), once per variant, with the variant's settings: a "without the
//! fix" variant is an explicit setting of that stack, never a code path only scenarios reach.

mod load;
mod rate_limit;

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context;

/// Options of `scenario`.
#[derive(clap::Args)]
pub struct Args {
    /// `list`, a scenario's name, or `all`.
    name: String,
    /// Also write every scenario run as markdown to FILE.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Seconds of load per variant.
    #[arg(long, default_value_t = 8)]
    seconds: u64,
}

/// A scenario: what goes wrong, and where the fix lives.
struct Scenario {
    name: &'static str,
    title: &'static str,
    /// The problem, in two sentences.
    problem: &'static str,
    /// The files that implement the fix.
    fix: &'static [&'static str],
}

const SCENARIOS: &[Scenario] = &[rate_limit::SCENARIO];

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
}

/// A scenario's run: both variants and what they show.
pub struct Outcome {
    pub before: Figures,
    pub after: Figures,
    /// The naive variant shows the problem, with a number.
    pub reproduced: bool,
    /// The fix removes or bounds it, with a number.
    pub fixed: bool,
    /// One line.
    pub verdict: String,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    if args.name == "list" {
        for scenario in SCENARIOS {
            println!("{:<14} {}", scenario.name, scenario.title);
        }
        return Ok(());
    }
    let chosen: Vec<&Scenario> = if args.name == "all" {
        SCENARIOS.iter().collect()
    } else {
        let scenario = SCENARIOS.iter().find(|s| s.name == args.name);
        vec![scenario.with_context(|| format!("no scenario {:?} (`loadtest scenario list`)", args.name))?]
    };
    let mut report = String::from("# Scenarios\n\nWritten by `loadtest scenario all --report docs/scenarios.md`.\n");
    let mut failed = Vec::new();
    for scenario in chosen {
        eprintln!("\n== scenario {}: {}", scenario.name, scenario.title);
        let outcome = match scenario.name {
            "rate-limit" => rate_limit::run(args.seconds).await,
            other => unreachable!("scenario {other} has no runner"),
        }
        .with_context(|| format!("scenario {}", scenario.name))?;
        let text = render(scenario, &outcome);
        println!("{text}");
        report.push('\n');
        report.push_str(&text);
        if !(outcome.reproduced && outcome.fixed) {
            failed.push(scenario.name);
        }
    }
    if let Some(path) = &args.report {
        std::fs::write(path, report).with_context(|| format!("writing {}", path.display()))?;
    }
    // A naive variant that does not show its problem is a failed scenario, not a pass.
    anyhow::ensure!(failed.is_empty(), "scenarios that did not show the problem and its fix: {}", failed.join(", "));
    Ok(())
}

/// A scenario's run as markdown: the problem, the figures side by side, the verdict, the files.
fn render(scenario: &Scenario, outcome: &Outcome) -> String {
    let (b, a) = (&outcome.before, &outcome.after);
    let mut out = format!("## {} (`{}`)\n\n{}\n\n", scenario.title, scenario.name, scenario.problem);
    let _ = writeln!(out, "| | before: {} | after: {} |\n|---|--:|--:|", b.variant, a.variant);
    let mut row = |name: &str, before: String, after: String| {
        let _ = writeln!(out, "| {name} | {before} | {after} |");
    };
    row("purchase attempts", b.attempts.to_string(), a.attempts.to_string());
    row("orders", b.orders.to_string(), a.orders.to_string());
    row("oversold", b.oversold.to_string(), a.oversold.to_string());
    row("duplicates", b.duplicates.to_string(), a.duplicates.to_string());
    row("undersold units", b.undersold.to_string(), a.undersold.to_string());
    row("accepted", percent(b.accepted_rate), percent(a.accepted_rate));
    row("p50 of accepted", format!("{:.1} ms", b.p50_ms), format!("{:.1} ms", a.p50_ms));
    row("p99 of accepted", format!("{:.1} ms", b.p99_ms), format!("{:.1} ms", a.p99_ms));
    for ((name, before), (_, after)) in b.own.iter().zip(&a.own) {
        row(name, before.clone(), after.clone());
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
        }
    }

    #[test]
    fn a_scenario_renders_both_variants_side_by_side_and_says_when_it_failed() {
        let scenario = &SCENARIOS[0];
        let outcome = Outcome {
            before: figures("naive", 900.0),
            after: figures("fixed", 9.0),
            reproduced: false,
            fixed: true,
            verdict: "p99 900 ms → 9 ms".into(),
        };
        let text = render(scenario, &outcome);
        assert!(text.contains("| p99 of accepted | 900.0 ms | 9.0 ms |"), "{text}");
        assert!(text.contains("| 429 answers | 0 | 0 |"), "{text}");
        assert!(text.contains("FAILED, the problem did not show"), "{text}");
    }
}
