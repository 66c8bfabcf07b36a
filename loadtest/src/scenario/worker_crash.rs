//! A worker crash: the order worker is killed mid-drain (its tasks aborted and its broker
//! connection dropped, as `kill -9` does) and a new one started. Messages acknowledged after
//! their orders are committed (the default) against acknowledged as delivered
//! (`SECKILL_WITHOUT__ACK_AFTER_COMMIT`): what is redelivered, what is lost, what is written twice.

use std::sync::Arc;
use std::time::Duration;

use super::load::{self, Crowd};
use super::stage::{Stage, counter, figures_of, unlimited};
use super::{Args, Outcome, Scenario};
use crate::sandbox::StackOptions;

pub const SCENARIO: Scenario = Scenario {
    name: "worker-crash",
    title: "Worker crash: acknowledged after the commit, or as delivered",
    problem: "The worker writing orders dies mid-batch. If it acknowledged its messages as they \
              arrived, the broker has forgotten them and the orders it had not written are gone, \
              their tickets accepted. Acknowledged only after the commit, they are delivered again \
              to the next worker, and the ticket's unique constraint makes a message whose order \
              was committed just before the crash a no-op: each written exactly once.",
    fix: &[
        "order-service/src/worker/settle.rs",
        "order-service/src/worker/consumer.rs",
        "migrations/20261122000003_orders.sql",
    ],
};

/// Messages the workers of this process saw delivered again (`order-service/src/worker/batch.rs`).
const REDELIVERED: &str = "order_messages_redelivered_total";
const BUYERS: usize = 3_000;
const RATE: u32 = 1_500;
const CRASH_AFTER: Duration = Duration::from_millis(1000);
const DOWN_FOR: Duration = Duration::from_millis(1500);
const SETTLE: Duration = Duration::from_secs(20);

pub async fn run(args: &Args) -> anyhow::Result<Outcome> {
    anyhow::ensure!(args.gateway.is_none(), "worker-crash kills a worker: it runs on stacks of its own");
    let metrics = platform::metrics::prometheus_handle()?;
    let buyers = args.buyers.unwrap_or(BUYERS);
    let mut variants = Vec::new();
    let mut lost = Vec::new();
    for (name, on_delivery) in
        [("acked as delivered (SECKILL_WITHOUT__ACK_AFTER_COMMIT)", true), ("acked after the commit (default)", false)]
    {
        eprintln!("variant {name}: starting the stack...");
        let order_without = order_service::settings::Without { ack_after_commit: on_delivery, ..Default::default() };
        let mut stage = Stage::own(StackOptions { order_without, ..StackOptions::with_limits(unlimited()) }).await?;
        let tokens = Arc::new(stage.http.users(u32::try_from(buyers)?).await?);
        let goods_id = stage.http.sale(i32::try_from(buyers)?).await?;
        let redelivered_before = counter(&metrics.render(), REDELIVERED, |_| true);
        eprintln!("variant {name}: {buyers} buyers at {RATE}/s; the worker is killed after {CRASH_AFTER:?}...");
        let http = stage.http.clone();
        let crowd = Crowd { rate: RATE, buyers, clicks: 1 };
        let stack = stage.stack_mut().expect("a stack of its own");
        let (load, restarted) = tokio::join!(load::run(&http, goods_id, tokens, crowd), async {
            tokio::time::sleep(CRASH_AFTER).await;
            stack.crash_worker();
            tokio::time::sleep(DOWN_FOR).await;
            stack.start_worker().await
        });
        restarted?;
        let audit = stage.audit_settled(goods_id, SETTLE).await?;
        let redelivered = counter(&metrics.render(), REDELIVERED, |_| true).saturating_sub(redelivered_before);
        let never_written = (load.accepted as i64 - audit.orders).max(0);
        let mut figures = figures_of(name.into(), &audit, 0, &load);
        figures.own = vec![
            ("tickets accepted", load.accepted.to_string()),
            ("messages redelivered after the crash", redelivered.to_string()),
            ("accepted tickets never written", never_written.to_string()),
            ("pending at the end", audit.pending_tickets.to_string()),
        ];
        stage.finish().await;
        lost.push((never_written, redelivered, figures.duplicates));
        variants.push(figures);
    }
    let ((lost_before, _, _), (lost_after, redelivered_after, duplicates_after)) = (lost[0], lost[1]);
    let reproduced = lost_before > 0;
    let fixed = lost_after == 0 && duplicates_after == 0 && redelivered_after > 0;
    let verdict = format!(
        "the worker killed {:.1} s into a burst of {buyers} accepted tickets: acked as delivered, {lost_before} accepted \
         tickets were never written; acked after the commit, {redelivered_after} messages were redelivered, none lost \
         ({lost_after}) and none written twice ({duplicates_after} duplicates).",
        CRASH_AFTER.as_secs_f64()
    );
    Ok(Outcome { variants, reproduced, fixed, verdict, chart: None })
}
