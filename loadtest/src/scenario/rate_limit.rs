//! Rate limiting: the same crowd, larger than the purchase path can serve, against a gateway
//! without a limit and one with its global limit (gateway/src/defences/local_limits.rs).

use std::sync::Arc;
use std::time::Duration;

use super::{Figures, Outcome, Scenario, load};
use crate::audit::gateway::Gateway;
use crate::http::Http;
use crate::sandbox::FullStack;

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
/// serves (about 2,000 purchases/s, `bench gateway`).
const OFFERED_PER_SEC: u32 = 2_500;
/// The fix's global limit, in requests per second (a purchase is two: path and order).
const LIMIT_PER_SEC: u32 = 800;

pub async fn run(seconds: u64) -> anyhow::Result<Outcome> {
    let unlimited = gateway::settings::LimitSettings {
        global_per_sec: 10_000_000,
        per_ip_per_sec: 10_000_000,
        ..Default::default()
    };
    let limited = gateway::settings::LimitSettings { global_per_sec: LIMIT_PER_SEC, ..unlimited.clone() };
    let before = variant("no limit".into(), unlimited, seconds).await?;
    let after = variant(format!("global limit {LIMIT_PER_SEC} requests/s"), limited, seconds).await?;
    let (b99, a99) = (before.1.p99_ms(), after.1.p99_ms());
    let reproduced = b99 > 200.0;
    let fixed = a99 * 5.0 < b99 && after.1.limited > 0 && after.1.limited_with_retry_after == after.1.limited;
    let verdict = format!(
        "offered {OFFERED_PER_SEC} attempts/s: without a limit the accepted buyers' p99 is {b99:.0} ms; with the limit \
         {:.0} attempts/s are let in, {} are told 429 (all with Retry-After), and the p99 of those let in is {a99:.0} ms.",
        (after.1.attempts - after.1.limited) as f64 / after.1.seconds.max(0.001),
        after.1.limited,
    );
    Ok(Outcome { before: before.0, after: after.0, reproduced, fixed, verdict })
}

async fn variant(
    name: String,
    limits: gateway::settings::LimitSettings,
    seconds: u64,
) -> anyhow::Result<(Figures, load::Load)> {
    eprintln!("variant {name}: starting the stack...");
    let stack = FullStack::start(limits).await?;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).pool_max_idle_per_host(1024).build()?;
    let http = Http { client, base: stack.base_url.clone(), admin: stack.admin_token.clone() };
    let buyers = OFFERED_PER_SEC * u32::try_from(seconds)?;
    let tokens = Arc::new(http.users(buyers).await?);
    let goods_id = http.sale(i32::try_from(buyers)?).await?;
    eprintln!("variant {name}: {OFFERED_PER_SEC} attempts/s for {seconds}s...");
    let load = load::run(&http, goods_id, tokens, OFFERED_PER_SEC, seconds).await;
    // Overloaded, the services' breakers may still be open for a few seconds: the audit waits.
    let gateway = Gateway::with_token(&stack.base_url, stack.admin_token.clone())?;
    let mut audit = crate::audit::wait_drained(&gateway, Some(goods_id), Duration::from_secs(120)).await;
    for _ in 0..30 {
        if audit.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        audit = crate::audit::wait_drained(&gateway, Some(goods_id), Duration::from_secs(120)).await;
    }
    let audit = audit?;
    let goods = audit.goods.first().ok_or_else(|| anyhow::anyhow!("no audit of goods {goods_id}"))?;
    let figures = Figures {
        variant: name,
        attempts: load.attempts,
        orders: goods.orders,
        oversold: goods.oversold,
        duplicates: goods.duplicates,
        // Ample stock: every unit a buyer wanted and was not refused is sold.
        undersold: 0,
        accepted_rate: load.accepted as f64 / load.attempts.max(1) as f64,
        p50_ms: load.p50_ms(),
        p99_ms: load.p99_ms(),
        own: vec![
            ("offered attempts/s", format!("{OFFERED_PER_SEC}")),
            (
                "let in attempts/s (not 429)",
                format!("{:.0}", (load.attempts - load.limited) as f64 / load.seconds.max(0.001)),
            ),
            ("429 answers (with Retry-After)", format!("{} ({})", load.limited, load.limited_with_retry_after)),
            ("other failures", load.other.to_string()),
        ],
    };
    stack.finish().await;
    Ok((figures, load))
}
