//! Rate limiting: the same crowd, larger than the purchase path can serve, against a gateway
//! without a limit and one with its global limit (gateway/src/defences/local_limits.rs), on one
//! stack configured with the limit: the "without" run lifts it by the live rule
//! `limits.global_per_sec`, the "with" run clears the rule.

use std::sync::Arc;

use super::load::{self, Crowd};
use super::stage::{Stage, unlimited};
use super::{Args, Outcome, Scenario};
use crate::sandbox::StackOptions;
use platform::rules::Rules;

pub const SCENARIO: Scenario = Scenario {
    name: "rate-limit",
    title: "Rate limiting: a crowd larger than the system can serve",
    problem: "The crowd arrives faster than the purchase path can serve it. Without a limit every \
              request is let in and queues inside the gateway and the services, so every buyer \
              waits longer and longer; with a limit the excess is refused at once with `429` and \
              `Retry-After`, and the buyers let in are served fast.",
    fix: &["gateway/src/defences/local_limits.rs", "gateway/src/defences/user_gate.rs"],
};

/// Purchase attempts offered per second, in both variants: above what this 2-core machine
/// serves (from under 1,000 to about 3,000 purchases/s, depending on the day of the VM:
/// `bench gateway`).
const OFFERED_PER_SEC: u32 = 5_000;
/// The fix's global limit, in requests per second (a purchase is two: path and order).
const LIMIT_PER_SEC: u32 = 800;

pub async fn run(args: &Args) -> anyhow::Result<Outcome> {
    anyhow::ensure!(args.gateway.is_none(), "rate-limit compares two gateway settings: it runs on stacks of its own");
    // The stack is configured with the fix; the "without" run lifts the limit by a live rule.
    let limited = gateway::settings::LimitSettings { global_per_sec: LIMIT_PER_SEC, ..unlimited() };
    let mut variants = Vec::new();
    let mut loads = Vec::new();
    eprintln!("starting the stack (global limit {LIMIT_PER_SEC} requests/s)...");
    let stage = Stage::own(StackOptions::with_limits(limited)).await?;
    let stack = stage.stack().expect("a stack of its own");
    for (name, lifted) in [
        ("no limit (rule limits.global_per_sec = 10000000)".to_owned(), Some(unlimited().global_per_sec)),
        (format!("global limit {LIMIT_PER_SEC} requests/s (configured)"), None),
    ] {
        let mut rules = Rules::default();
        rules.limits.global_per_sec = lifted;
        let version = stack.set_rules(rules, "scenario:rate-limit").await?;
        eprintln!("variant {name}: rules v{version} followed everywhere");
        let buyers = OFFERED_PER_SEC as usize * usize::try_from(args.seconds)?;
        let tokens = Arc::new(stage.http.users(u32::try_from(buyers)?).await?);
        let goods_id = stage.http.sale(i32::try_from(buyers)?).await?;
        eprintln!("variant {name}: {OFFERED_PER_SEC} attempts/s for {}s...", args.seconds);
        let crowd = Crowd { rate: OFFERED_PER_SEC, buyers, clicks: 1 };
        let load = load::run(&stage.http, goods_id, tokens, crowd).await;
        // Ample stock: every unit a buyer wanted and was not refused is sold.
        let mut figures = stage.figures(name, goods_id, 0, &load).await?;
        figures.own = vec![
            ("offered attempts/s", format!("{OFFERED_PER_SEC}")),
            ("let in attempts/s (not 429)", format!("{:.0}", let_in_per_sec(&load))),
            ("429 answers (with Retry-After)", format!("{} ({})", load.limited, load.limited_with_retry_after)),
            ("other failures", load.other.to_string()),
        ];
        variants.push(figures);
        loads.push(load);
    }
    stage.finish().await;
    let (b99, a99) = (loads[0].p99_ms(), loads[1].p99_ms());
    let after = &loads[1];
    let reproduced = b99 > 200.0;
    let fixed = a99 * 5.0 < b99 && after.limited > 0 && after.limited_with_retry_after == after.limited;
    let verdict = format!(
        "offered {OFFERED_PER_SEC} attempts/s: without a limit the accepted buyers' p99 is {b99:.0} ms; with the limit \
         {:.0} attempts/s are let in, {} are told 429 (all with Retry-After), and the p99 of those let in is {a99:.0} ms.",
        let_in_per_sec(after),
        after.limited,
    );
    Ok(Outcome { variants, reproduced, fixed, verdict, chart: None })
}

fn let_in_per_sec(load: &load::Load) -> f64 {
    (load.attempts - load.limited) as f64 / load.seconds.max(0.001)
}
