//! The sold-out flag: after a sell-out, the crowd keeps coming. With the gateway's in-process
//! flag (`gateway/src/defences/sold_out.rs`) against without it, on one stack: the "without" run
//! turns the flag off with the live rule `switches.sold_out_flag_off`, as an operator would on
//! the dashboard, and the "with" run turns it back on. Measured: Redis commands and order RPCs
//! per attempt once nothing is left, counted by Redis itself (`INFO stats`) and by the gateway's
//! RPC client (`rpc_client_requests_total`).

use std::sync::Arc;

use super::load::{self, Crowd};
use contracts::names::ORDER_SERVICE;

use super::stage::{Stage, rpc_counter, unlimited};
use super::{Args, Outcome, Scenario};
use crate::sandbox::StackOptions;
use platform::rules::Rules;

pub const SCENARIO: Scenario = Scenario {
    name: "sold-out-flag",
    title: "Sold-out flag: what an attempt costs once nothing is left",
    problem: "A sale sells out in a second; the crowd keeps clicking for minutes. Without a local \
              flag every one of those attempts still runs the per-user gate, the captcha, the path \
              and an order RPC that runs the reservation script, all to learn \"sold out\" again; \
              with it, the gateway answers from memory.",
    fix: &["gateway/src/defences/sold_out.rs", "gateway/src/routes/seckill.rs"],
};

const STOCK: i32 = 100;
/// Buyers who sell it out, then the crowd that comes after.
const FIRST: usize = 300;
const AFTER: usize = 3_000;
const RATE: u32 = 1_000;

pub async fn run(args: &Args) -> anyhow::Result<Outcome> {
    anyhow::ensure!(
        args.gateway.is_none(),
        "sold-out-flag counts every Redis command and RPC of its stack: it runs on a stack of its own"
    );
    let metrics = platform::metrics::prometheus_handle()?;
    let after = args.buyers.unwrap_or(AFTER);
    let redis = testkit::redis_pool().await;
    let mut variants = Vec::new();
    let mut costs = Vec::new();
    eprintln!("starting the stack...");
    let stage = Stage::own(StackOptions::with_limits(unlimited())).await?;
    let stack = stage.stack().expect("a stack of its own");
    for (name, off) in
        [("no flag (rule switches.sold_out_flag_off)", true), ("in-process sold-out flag (default)", false)]
    {
        let mut rules = Rules::default();
        rules.switches.sold_out_flag_off = off;
        let version = stack.set_rules(rules, "scenario:sold-out-flag").await?;
        eprintln!("variant {name}: rules v{version} followed everywhere");
        let tokens = stage.http.users(u32::try_from(FIRST + after)?).await?;
        let (first, rest) = tokens.split_at(FIRST);
        let goods_id = stage.http.sale(STOCK).await?;
        eprintln!("variant {name}: {FIRST} buyers sell out {STOCK} units...");
        let sell_out = Crowd { rate: RATE, buyers: FIRST, clicks: 1 };
        load::run(&stage.http, goods_id, Arc::new(first.to_vec()), sell_out).await;
        stage.audit(goods_id).await?;
        eprintln!("variant {name}: {after} more buyers after the sell-out...");
        let endpoints = stack.order_endpoints();
        let order_calls = || rpc_counter(&metrics.render(), "rpc_client_requests_total", ORDER_SERVICE, &endpoints);
        let (redis_before, rpc_before) = (commands(&redis).await?, order_calls());
        let crowd = Crowd { rate: RATE, buyers: after, clicks: 1 };
        let load = load::run(&stage.http, goods_id, Arc::new(rest.to_vec()), crowd).await;
        // Less the INFO call itself.
        let redis_commands = commands(&redis).await?.saturating_sub(redis_before + 1);
        let rpcs = order_calls().saturating_sub(rpc_before);
        let per_attempt = |n: u64| n as f64 / load.attempts.max(1) as f64;
        let mut figures = stage.figures(name.into(), goods_id, 0, &load).await?;
        figures.own = vec![
            ("attempts after the sell-out", load.attempts.to_string()),
            ("answered sold out", load.sold_out.to_string()),
            ("Redis commands per attempt", format!("{:.2}", per_attempt(redis_commands))),
            ("order RPCs per attempt", format!("{:.2}", per_attempt(rpcs))),
            ("p99 of the answers", format!("{:.1} ms", load.p99_all_ms())),
        ];
        variants.push(figures);
        costs.push((per_attempt(redis_commands), per_attempt(rpcs), load.p99_all_ms(), load.sold_out == load.attempts));
    }
    stage.finish().await;
    let ((redis_off, rpc_off, p99_off, all_off), (redis_on, rpc_on, p99_on, all_on)) = (costs[0], costs[1]);
    let reproduced = redis_off >= 2.0 && rpc_off >= 0.9 && all_off;
    let fixed = redis_on < 0.1 && rpc_on < 0.01 && all_on;
    let verdict = format!(
        "{after} attempts after the sell-out, all answered sold out in both: without the flag each cost {redis_off:.1} \
         Redis commands and {rpc_off:.2} order RPCs (p99 {p99_off:.1} ms); with it {redis_on:.2} and {rpc_on:.2} \
         (p99 {p99_on:.1} ms).",
    );
    Ok(Outcome { variants, reproduced, fixed, verdict, chart: None })
}

/// Commands Redis has processed since it started (`INFO stats`).
async fn commands(redis: &deadpool_redis::Pool) -> anyhow::Result<u64> {
    let mut conn = redis.get().await?;
    let info: String = deadpool_redis::redis::cmd("INFO").arg("stats").query_async(&mut *conn).await?;
    info.lines()
        .find_map(|line| line.strip_prefix("total_commands_processed:"))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no total_commands_processed in INFO stats"))
}
