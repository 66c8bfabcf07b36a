//! Peak shaving: a surge of buyers who all get a unit, so every purchase is an order to write.
//! The orders written in the request (`redis_lua_sync_db`) against queued for the batched
//! workers (`lua_mq`), on one stack, sampled every 100 ms: PostgreSQL connections busy (in a
//! statement or a transaction, `pg_stat_activity`) and orders accepted but not yet written (the queue's depth, from the
//! gateway's `/admin/v1/goods/{id}/stats`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use contracts::stock::PurchaseStrategy;

use super::chart::Chart;
use super::load::{self, Crowd};
use super::stage::Stage;
use super::{Args, Outcome, Scenario};

pub const SCENARIO: Scenario = Scenario {
    name: "peak-shaving",
    title: "Peak shaving: a surge of orders, written in the request or queued",
    problem: "At the opening every buyer with a unit needs an order written. Written in the request, \
              the surge goes straight to PostgreSQL: every purchase holds a connection and waits \
              for its own commit, and the buyers wait with it. Queued, the request ends at the \
              broker's confirm and the workers write the same orders in batches, at the rate \
              PostgreSQL takes them: the queue absorbs the peak.",
    fix: &["order-service/src/strategy/lua_mq.rs", "order-service/src/worker/batch.rs", "order-service/src/broker.rs"],
};

const BUYERS: usize = 3_000;
const RATE: u32 = 1_500;
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

pub async fn run(args: &Args) -> anyhow::Result<Outcome> {
    anyhow::ensure!(
        args.gateway.is_none(),
        "peak-shaving samples the database's connections: it runs on a stack of its own"
    );
    let buyers = args.buyers.unwrap_or(BUYERS);
    let stage = Stage::from_args(args).await?;
    let pool = stage.stack().expect("a stack of its own").sandbox.db.pool.clone();
    let mut variants = Vec::new();
    let mut series = Vec::new();
    let mut peaks = Vec::new();
    for (strategy, name) in [
        (PurchaseStrategy::RedisLuaSyncDb, "written in the request (redis_lua_sync_db)"),
        (PurchaseStrategy::LuaMq, "queued for the workers (lua_mq)"),
    ] {
        let tokens = Arc::new(stage.http.users(u32::try_from(buyers)?).await?);
        let goods_id = stage.http.sale_bought_by(i32::try_from(buyers)?, strategy).await?;
        eprintln!("{}: {buyers} buyers at {RATE}/s, one unit each...", strategy.name());
        let done = AtomicBool::new(false);
        let started = Instant::now();
        let crowd = Crowd { rate: RATE, buyers, clicks: 1 };
        let (load, samples) = tokio::join!(
            async {
                let load = load::run(&stage.http, goods_id, tokens, crowd).await;
                done.store(true, Ordering::Release);
                load
            },
            sample(&stage, &pool, goods_id, &done)
        );
        let written_after = started.elapsed();
        let mut figures = stage.figures(name.into(), goods_id, buyers as i64, &load).await?;
        let peak_connections = samples.iter().map(|s| s.connections).max().unwrap_or(0);
        let mean_connections = samples.iter().map(|s| s.connections as f64).sum::<f64>() / samples.len().max(1) as f64;
        let peak_queue = samples.iter().map(|s| s.pending).max().unwrap_or(0);
        figures.own = vec![
            ("PostgreSQL connections busy, peak (mean)", format!("{peak_connections} ({mean_connections:.1})")),
            ("orders waiting in the queue, peak", peak_queue.to_string()),
            ("every order written after", format!("{:.1} s", written_after.as_secs_f64())),
        ];
        series.push((format!("{name}: queue depth"), samples.iter().map(|s| s.pending as f64).collect()));
        series.push((
            format!("{name}: PostgreSQL connections busy × 10"),
            samples.iter().map(|s| 10.0 * s.connections as f64).collect(),
        ));
        peaks.push((peak_connections, peak_queue, load.p99_ms()));
        variants.push(figures);
    }
    stage.finish().await;
    let ((sync_connections, _, sync_p99), (queued_connections, queued_peak, queued_p99)) = (peaks[0], peaks[1]);
    let (sync, queued) = (&variants[0], &variants[1]);
    let reproduced = sync_p99 > 2.0 * queued_p99 && sync.orders == buyers as i64;
    let fixed = queued.orders == buyers as i64 && queued_peak > 0 && queued_p99 * 2.0 < sync_p99;
    let verdict = format!(
        "{buyers} buyers at {RATE}/s, each with a unit: written in the request, the buyers' p99 is {sync_p99:.0} ms with \
         up to {sync_connections} PostgreSQL connections busy; queued, it is {queued_p99:.0} ms, the queue peaks at \
         {queued_peak} orders and PostgreSQL sees at most {queued_connections} busy connections; both wrote all {buyers}.",
    );
    let chart = Chart { y_desc: "orders waiting / connections × 10", step_secs: SAMPLE_EVERY.as_secs_f64(), series };
    Ok(Outcome { variants, reproduced, fixed, verdict, chart: Some(chart) })
}

/// One sample.
struct Sample {
    /// Connections of the sale's database in a statement or a transaction (the sampler's own
    /// excluded).
    connections: i64,
    /// Accepted tickets whose order is not written yet.
    pending: i64,
}

/// Samples until `done` and nothing is pending (at most two minutes).
async fn sample(stage: &Stage, pool: &sqlx::PgPool, goods_id: i64, done: &AtomicBool) -> Vec<Sample> {
    let mut samples = Vec::new();
    let started = Instant::now();
    let mut ticker = tokio::time::interval(SAMPLE_EVERY);
    while started.elapsed() < Duration::from_secs(120) {
        ticker.tick().await;
        let connections: i64 = sqlx::query_scalar(
            "SELECT count(*) - 1 FROM pg_stat_activity WHERE datname = current_database() AND state <> 'idle'",
        )
        .fetch_one(pool)
        .await
        .unwrap_or(0);
        let path = format!("/admin/v1/goods/{goods_id}/stats");
        let pending = match stage.http.get(&path, &stage.http.admin).await {
            Ok((200, body)) => body["pending_tickets"].as_i64().unwrap_or(0),
            _ => 0,
        };
        samples.push(Sample { connections, pending });
        if done.load(Ordering::Acquire) && pending == 0 {
            break;
        }
    }
    samples
}
