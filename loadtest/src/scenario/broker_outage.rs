//! A broker outage: the link between order-service and RabbitMQ goes silent for three seconds
//! mid-sale (a fault proxy holds everything), then dies (reset, as a missed heartbeat ends it),
//! and order-service connects again. Tickets accepted only once
//! the broker confirmed their message (the default) against fire and forget
//! (`SECKILL_WITHOUT__PUBLISHER_CONFIRMS`): how many accepted tickets never became an order.

use std::sync::Arc;
use std::time::Duration;

use testkit::fault_proxy::Fault;

use super::load::{self, Crowd};
use super::stage::{Stage, figures_of, unlimited};
use super::{Args, Outcome, Scenario};
use crate::sandbox::StackOptions;

pub const SCENARIO: Scenario = Scenario {
    name: "broker-outage",
    title: "Broker outage: publisher confirms against fire and forget",
    problem: "The link to the broker fails mid-sale. A service that accepts a ticket as soon as \
              it has handed the message to its connection tells buyers \"queued\" for messages the \
              broker never got: accepted purchases that never become orders. With publisher \
              confirms a ticket is accepted only once the broker has stored it; without a \
              confirm the unit goes back and the buyer is told to try again.",
    fix: &["order-service/src/broker.rs", "order-service/src/strategy/lua_mq.rs"],
};

const RATE: u32 = 300;
const FAULT_AFTER: Duration = Duration::from_millis(1500);
const FAULT_FOR: Duration = Duration::from_secs(3);
/// How long accepted tickets are given to become orders after the load.
const SETTLE: Duration = Duration::from_secs(20);

pub async fn run(args: &Args) -> anyhow::Result<Outcome> {
    anyhow::ensure!(
        args.gateway.is_none(),
        "broker-outage cuts order-service's broker link: it runs on stacks of its own"
    );
    let buyers = args.buyers.unwrap_or(RATE as usize * usize::try_from(args.seconds.max(6))?);
    let mut variants = Vec::new();
    let mut lost = Vec::new();
    for (name, fire_and_forget) in
        [("fire and forget (SECKILL_WITHOUT__PUBLISHER_CONFIRMS)", true), ("publisher confirms (default)", false)]
    {
        eprintln!("variant {name}: starting the stack (order-service reaches RabbitMQ through a fault proxy)...");
        let order_without =
            order_service::settings::Without { publisher_confirms: fire_and_forget, ..Default::default() };
        let options =
            StackOptions { order_without, broker_through_proxy: true, ..StackOptions::with_limits(unlimited()) };
        let stage = Stage::own(options).await?;
        let tokens = Arc::new(stage.http.users(u32::try_from(buyers)?).await?);
        let goods_id = stage.http.sale(i32::try_from(buyers)?).await?;
        let proxy = stage.stack().and_then(|stack| stack.broker_proxy.as_ref()).expect("a broker proxy");
        eprintln!(
            "variant {name}: {RATE} buyers/s; from {FAULT_AFTER:?} on the broker link is silent for {FAULT_FOR:?}, then cut..."
        );
        let crowd = Crowd { rate: RATE, buyers, clicks: 1 };
        let (load, ()) = tokio::join!(load::run(&stage.http, goods_id, tokens, crowd), async {
            tokio::time::sleep(FAULT_AFTER).await;
            proxy.set(Fault::Blackhole);
            tokio::time::sleep(FAULT_FOR).await;
            // The silent link ends as a dead one: what it held is lost with it.
            proxy.set(Fault::Reset);
            tokio::time::sleep(Duration::from_millis(200)).await;
            proxy.set(Fault::None);
        });
        let audit = stage.audit_settled(goods_id, SETTLE).await?;
        let never_written = (load.accepted as i64 - audit.orders).max(0);
        let mut figures = figures_of(name.into(), &audit, 0, &load);
        figures.own = vec![
            ("tickets accepted", load.accepted.to_string()),
            ("accepted tickets never written", never_written.to_string()),
            ("of those still queued after the settle", audit.pending_tickets.to_string()),
            ("buyers told to try again", load.other.to_string()),
        ];
        stage.finish().await;
        variants.push(figures);
        lost.push((never_written, load.accepted));
    }
    let ((lost_before, accepted_before), (lost_after, accepted_after)) = (lost[0], lost[1]);
    let reproduced = lost_before > 0;
    let fixed = lost_after == 0;
    let verdict = format!(
        "the broker link silent for {} s mid-sale, then cut: fire and forget accepted {accepted_before} tickets and {lost_before} \
         of them never became orders; with publisher confirms {accepted_after} accepted and {lost_after} lost (the \
         buyers caught in the outage were told to try again, their units given back).",
        FAULT_FOR.as_secs()
    );
    Ok(Outcome { variants, reproduced, fixed, verdict, chart: None })
}
