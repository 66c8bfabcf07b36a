//! Redis loss: mid-sale the sale's state in Redis (stock, buyers, results) is gone, as after a
//! restart without persistence. Rebuilt from PostgreSQL by the first reserve that misses it
//! (`stock-service/src/service.rs`, the default) against not rebuilt
//! (`SECKILL_WITHOUT__SALE_STATE_REBUILD`): what is kept, what fails, how fast buying resumes.

use std::sync::Arc;
use std::time::Duration;

use contracts::keyspace::Keyspace;

use super::chart::BUCKET_SECS;
use super::load::{self, Crowd};
use super::stage::{Stage, figures_of, unlimited};
use super::{Args, Outcome, Scenario};
use crate::sandbox::{StackOptions, StockNodes};

pub const SCENARIO: Scenario = Scenario {
    name: "redis-loss",
    title: "Redis loss: the sale state rebuilt from PostgreSQL, or the sale stops",
    problem: "Redis restarts without its data in the middle of the sale: the stock counter, who \
              bought and the tickets' results are gone. A sale kept only in Redis stops (or, \
              rebuilt from the initial stock, oversells); rebuilt from PostgreSQL's orders on the \
              first miss, it resumes at once with the units nobody has, and the tickets whose hold \
              was lost fail and their buyers are told.",
    fix: &["stock-service/src/service.rs", "stock-service/src/sale/build.lua", "order-service/src/reconciler.rs"],
};

const RATE: u32 = 300;
const LOSS_AFTER: Duration = Duration::from_secs(3);
const SETTLE: Duration = Duration::from_secs(30);

pub async fn run(args: &Args) -> anyhow::Result<Outcome> {
    anyhow::ensure!(args.gateway.is_none(), "redis-loss deletes a sale's keys: it runs on stacks of its own");
    let buyers = args.buyers.unwrap_or(RATE as usize * usize::try_from(args.seconds)?);
    let mut variants = Vec::new();
    let mut measured = Vec::new();
    for (name, off) in [
        ("no rebuild (SECKILL_WITHOUT__SALE_STATE_REBUILD)", true),
        ("rebuilt from PostgreSQL on the spot (default)", false),
    ] {
        eprintln!("variant {name}: starting the stack...");
        let stock = StockNodes {
            instances: 1,
            without: stock_service::settings::Without { sale_state_rebuild: off },
            ..Default::default()
        };
        let stage = Stage::own(StackOptions { stock, ..StackOptions::with_limits(unlimited()) }).await?;
        let tokens = Arc::new(stage.http.users(u32::try_from(buyers)?).await?);
        let goods_id = stage.http.sale(i32::try_from(buyers)?).await?;
        let sandbox = &stage.stack().expect("a stack of its own").sandbox;
        eprintln!("variant {name}: {RATE} buyers/s; after {LOSS_AFTER:?} the sale's Redis keys are deleted...");
        let crowd = Crowd { rate: RATE, buyers, clicks: 1 };
        let (load, lost_keys) = tokio::join!(load::run(&stage.http, goods_id, tokens, crowd), async {
            tokio::time::sleep(LOSS_AFTER).await;
            lose_sale_state(&sandbox.redis, &sandbox.prefix, goods_id).await
        });
        lost_keys?;
        let audit = stage.audit_settled(goods_id, SETTLE).await?;
        let loss_bucket = (LOSS_AFTER.as_secs_f64() / BUCKET_SECS) as usize;
        let resumed = load.accepted_timeline.iter().enumerate().skip(loss_bucket + 1).find(|(_, n)| **n > 0);
        let resumed_after = resumed.map(|(bucket, _)| (bucket - loss_bucket) as f64 * BUCKET_SECS);
        let arrived_after = buyers.saturating_sub((f64::from(RATE) * LOSS_AFTER.as_secs_f64()) as usize);
        // Ample stock and a healthy stack: every refusal comes from the loss.
        let refused_after = load.attempts - load.accepted;
        let failed = (load.accepted as i64 - audit.orders).max(0);
        let mut figures = figures_of(name.into(), &audit, 0, &load);
        figures.own = vec![
            ("buyers arriving after the loss", arrived_after.to_string()),
            ("of those refused", refused_after.to_string()),
            (
                "buying again after the loss",
                resumed_after.map_or("never, in the run".into(), |secs| format!("within {secs:.2} s")),
            ),
            ("accepted tickets that failed (hold lost, buyer told)", failed.to_string()),
            ("pending at the end", audit.pending_tickets.to_string()),
        ];
        stage.finish().await;
        variants.push(figures);
        measured.push((refused_after as f64 / arrived_after.max(1) as f64, resumed_after));
    }
    let ((refused_before, resumed_before), (refused_after, resumed_after)) = (measured[0], measured[1]);
    let (before, after) = (&variants[0], &variants[1]);
    let reproduced = refused_before > 0.5 && resumed_before.is_none();
    let fixed = resumed_after.is_some_and(|secs| secs <= 1.0)
        && refused_after < 0.05
        && after.oversold == 0
        && after.duplicates == 0;
    let verdict = format!(
        "the sale's Redis state lost {} s into a {RATE} buyers/s sale: without the rebuild {:.0}% of the buyers after \
         the loss were refused and buying never resumed; rebuilt from PostgreSQL, buying resumed {} and {:.1}% were \
         refused, with {} oversold and {} duplicates (before: {} oversold).",
        LOSS_AFTER.as_secs(),
        100.0 * refused_before,
        resumed_after.map_or("never".into(), |secs| format!("within {secs:.2} s")),
        100.0 * refused_after,
        after.oversold,
        after.duplicates,
        before.oversold,
    );
    Ok(Outcome { variants, reproduced, fixed, verdict, chart: None })
}

/// Deletes the sale state of `goods_id` (meta, stock, buyers, results), as a Redis restarted
/// without persistence would have lost it.
async fn lose_sale_state(redis: &deadpool_redis::Pool, prefix: &str, goods_id: i64) -> anyhow::Result<()> {
    let keys = Keyspace::new(prefix).sale(goods_id);
    let mut conn = redis.get().await?;
    let _: i64 = deadpool_redis::redis::cmd("DEL")
        .arg(&keys.meta)
        .arg(&keys.stock)
        .arg(&keys.buyers)
        .arg(&keys.results)
        .query_async(&mut *conn)
        .await?;
    Ok(())
}
