//! Payment timeout: winners who never pay. An order that holds its unit until paid, with no
//! payment window, against a window that cancels it and puts the unit back on sale.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;

use super::load::{self, Crowd};
use super::stage::Stage;
use super::{Args, Outcome, Scenario};

pub const SCENARIO: Scenario = Scenario {
    name: "payment-timeout",
    title: "Payment timeout: units won by buyers who never pay",
    problem: "Some winners never pay (a bot, a change of mind, a lost tab). If a won unit is held until \
              it is paid, with no window, every such unit is gone from the sale for good: buyers who \
              would pay are told it is sold out while units sit unpaid.",
    fix: &[
        "order-service/src/lifecycle/mod.rs",
        "order-service/src/worker/expiries.rs",
        "order-service/src/broker.rs",
        "order-service/src/payment/mod.rs",
    ],
};

/// Units on sale; a first crowd of as many buyers; 30% of the winners never pay; then a second
/// crowd of as many buyers again.
const UNITS: usize = 300;
const NEVER_PAY: f64 = 0.3;
/// The fix's payment window, in seconds; the naive variant's is a day (in effect: none).
const WINDOW_SECS: u32 = 5;
const RATE: u32 = 300;

pub async fn run(args: &Args) -> anyhow::Result<Outcome> {
    let units = args.buyers.unwrap_or(UNITS);
    let stage = Stage::from_args(args).await?;
    let mut variants = Vec::new();
    for (window, name) in [
        (contracts::stock::MAX_PAYMENT_WINDOW_SECS, "held until paid (no window)"),
        (WINDOW_SECS, "5 s payment window, then cancelled"),
    ] {
        eprintln!("{name}: {units} units, {units} buyers, {:.0}% of winners never pay...", NEVER_PAY * 100.0);
        let goods_id = stage.http.sale_with_window(i32::try_from(units)?, window).await?;
        let crowd = Crowd { rate: RATE, buyers: units, clicks: 1 };
        let first = Arc::new(stage.http.users(u32::try_from(units)?).await?);
        let first_load = load::run(&stage.http, goods_id, first.clone(), crowd).await;
        let orders = join_all(first.iter().map(|token| stage.http.order_of(goods_id, token))).await;
        let winners: Vec<(&String, String)> =
            first.iter().zip(orders).filter_map(|(token, order)| order.ok().flatten().map(|o| (token, o))).collect();
        let payers = winners.len() - (winners.len() as f64 * NEVER_PAY).round() as usize;
        let paid = join_all(winners[..payers].iter().map(|(token, order)| stage.http.pay(order, token))).await;
        anyhow::ensure!(paid.iter().all(Result::is_ok), "every payment starts: {:?}", paid.iter().find(|p| p.is_err()));
        // The window closes (or would), with a margin for the timers' delivery.
        tokio::time::sleep(Duration::from_secs(u64::from(WINDOW_SECS) + 3)).await;
        let after_window = stage.audit_settled(goods_id, Duration::from_secs(30)).await?;
        // A second crowd wants the units nobody paid for.
        let second = Arc::new(stage.http.users(u32::try_from(units)?).await?);
        let second_load = load::run(&stage.http, goods_id, second, crowd).await;
        let mut figures = stage.figures(name.into(), goods_id, units as i64, &second_load).await?;
        let audit = stage.audit(goods_id).await?;
        figures.attempts += first_load.attempts;
        figures.own = vec![
            ("first crowd's winners", winners.len().to_string()),
            ("winners who paid", payers.to_string()),
            ("units held unpaid after the window", after_window.unpaid.to_string()),
            ("orders cancelled, units back on sale", after_window.cancelled.to_string()),
            ("units sold to the second crowd", second_load.accepted.to_string()),
            ("second crowd told sold out", second_load.sold_out.to_string()),
            ("audit", if audit.violations.is_empty() { "clean".into() } else { audit.violations.join("; ") }),
        ];
        variants.push(figures);
    }
    stage.finish().await;
    let own = |variant: usize, row: usize| variants[variant].own[row].1.parse::<i64>().unwrap_or(-1);
    let reproduced = own(0, 2) > 0 && own(0, 4) == 0;
    let fixed = own(1, 2) == 0 && own(1, 3) == own(1, 0) - own(1, 1) && own(1, 4) == own(1, 3) && own(1, 3) > 0;
    let verdict = format!(
        "{units} units, {:.0}% of the winners never paying: held until paid, {} units stayed held unpaid and the \
         second crowd bought {}; with a {WINDOW_SECS} s window, {} unpaid orders were cancelled on time, their \
         units went back in both stores, and the second crowd bought exactly those {}.",
        NEVER_PAY * 100.0,
        own(0, 2),
        own(0, 4),
        own(1, 3),
        own(1, 4)
    );
    Ok(Outcome { variants, reproduced, fixed, verdict, chart: None })
}
