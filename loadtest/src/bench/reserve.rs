//! `bench reserve`: `stock.reserve` through our RPC and stock-service, against redis-benchmark
//! running the very same Lua script at the same concurrency.

use std::time::Instant;

use contracts::stock::ReserveOutcome;
use futures::{StreamExt, stream};
use uuid::Uuid;

use crate::sandbox::Sandbox;

/// Options of `bench reserve`.
#[derive(clap::Args)]
pub struct Args {
    /// Reserve calls to make.
    #[arg(long, default_value_t = 200_000)]
    requests: usize,
    /// Calls in flight at once (redis-benchmark clients, likewise).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// stock-service instances behind the client.
    #[arg(long, default_value_t = 1)]
    instances: usize,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let sandbox = Sandbox::start(args.instances).await?;
    // Enough stock that every call decrements (the full path of the script).
    let goods = sandbox.sale(i32::MAX / 2).await?;
    let stock = &sandbox.stock;
    // Warm the connections.
    stock.reserve(goods, 0, Uuid::new_v4()).await?;

    let started = Instant::now();
    let reserved = stream::iter(1..=args.requests as i64)
        .map(|user_id| async move { stock.reserve(goods, user_id, Uuid::new_v4()).await })
        .buffer_unordered(args.concurrency)
        .filter(|outcome| std::future::ready(matches!(outcome, Ok(ReserveOutcome::Reserved { .. }))))
        .count()
        .await;
    let ours = args.requests as f64 / started.elapsed().as_secs_f64();
    anyhow::ensure!(reserved == args.requests, "only {reserved} of {} reserved", args.requests);

    let baseline = redis_benchmark(&sandbox.prefix, goods, args.requests, args.concurrency).await?;
    println!("requests={} concurrency={} instances={}", args.requests, args.concurrency, args.instances);
    println!("reserve_rpc_per_s={ours:.0} redis_benchmark_per_s={baseline:.0} ratio={:.2}", ours / baseline);
    sandbox.finish().await;
    Ok(())
}

/// Runs redis-benchmark with `EVAL <reserve.lua>` on the sale's keys, users random in a huge
/// keyspace (so almost every call reserves), and returns its requests per second.
async fn redis_benchmark(prefix: &str, goods: i64, requests: usize, concurrency: usize) -> anyhow::Result<f64> {
    let keys = contracts::keyspace::Keyspace::new(prefix).sale(goods);
    let script = stock_service::RESERVE_SCRIPT;
    let output = tokio::process::Command::new("redis-benchmark")
        .args(["-n", &requests.to_string(), "-c", &concurrency.to_string(), "-r", "1000000000", "-q"])
        .args(["EVAL", script, "3", &keys.meta, &keys.stock, &keys.buyers, "__rand_int__"])
        .arg(Uuid::new_v4().to_string())
        .output()
        .await
        .map_err(|err| anyhow::anyhow!("cannot run redis-benchmark (apt-get install redis-tools): {err}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    // "EVAL ...: 123456.79 requests per second, p50=0.191 msec"
    let rate = text
        .split(':')
        .filter_map(|part| part.split_whitespace().next()?.parse::<f64>().ok())
        .next_back()
        .ok_or_else(|| anyhow::anyhow!("unexpected redis-benchmark output: {text}"))?;
    Ok(rate)
}
