//! Duplicate clicks: every buyer clicks "buy" twice. Checking for a repeat buyer after the
//! decrement (`redis_decr`) against before it, in the same atomic step (`lua_mq`).

use std::sync::Arc;

use contracts::stock::PurchaseStrategy;

use super::load::{self, Crowd};
use super::stage::Stage;
use super::{Args, Outcome, Scenario};

pub const SCENARIO: Scenario = Scenario {
    name: "duplicate-clicks",
    title: "Duplicate clicks: the repeat buyer check before or after the decrement",
    problem: "Buyers click twice (a double tap, an impatient retry, a second tab). If the stock is \
              decremented first and the repeat buyer refused after, every second click burns a \
              unit: the sale sells out with units nobody bought, and buyers who wanted them are \
              told it is sold out.",
    fix: &["stock-service/src/sale/reserve.lua", "order-service/src/strategy/lua_mq.rs"],
};

/// Buyers, each wanting one unit and clicking twice; as many units as buyers.
const BUYERS: usize = 1_000;
const RATE: u32 = 500;

pub async fn run(args: &Args) -> anyhow::Result<Outcome> {
    let buyers = args.buyers.unwrap_or(BUYERS);
    let stock = i32::try_from(buyers)?;
    let stage = Stage::from_args(args).await?;
    let crowd = Crowd { rate: RATE, buyers, clicks: 2 };
    let mut variants = Vec::new();
    for (strategy, name) in [
        (PurchaseStrategy::RedisDecr, "dedupe after the decrement (redis_decr)"),
        (PurchaseStrategy::LuaMq, "dedupe before, in the script (lua_mq)"),
    ] {
        eprintln!("{}: {buyers} buyers clicking twice for {stock} units...", strategy.name());
        let goods_id = stage.http.sale_bought_by(stock, strategy).await?;
        // Accounts of their own per variant (the same size, arrivals and clicks): a gateway's
        // per-user limits would otherwise count one variant's calls against the next.
        let tokens = Arc::new(stage.http.users(u32::try_from(buyers)?).await?);
        let load = load::run(&stage.http, goods_id, tokens, crowd).await;
        let mut figures = stage.figures(name.into(), goods_id, buyers as i64, &load).await?;
        let audit = stage.audit(goods_id).await?;
        let burnt = audit.initial_stock - audit.redis_stock.unwrap_or(0) - audit.holds;
        figures.own = vec![
            ("units burnt (gone from Redis, no buyer)", burnt.to_string()),
            ("attempts told sold out", load.sold_out.to_string()),
            ("repeat clicks refused", load.duplicates.to_string()),
        ];
        variants.push(figures);
    }
    stage.finish().await;
    let (before, after) = (&variants[0], &variants[1]);
    let reproduced = before.undersold > 0;
    let fixed = after.undersold == 0 && after.orders == i64::from(stock) && after.duplicates == 0;
    let verdict = format!(
        "{buyers} buyers clicking twice for {stock} units: checking after the decrement sold {} and left {} units \
         unsold (each burnt by a second click); checking before it, in the script, sold {} and refused all {} \
         repeat clicks without taking a unit.",
        before.orders, before.undersold, after.orders, after.own[2].1
    );
    Ok(Outcome { variants, reproduced, fixed, verdict, chart: None })
}
