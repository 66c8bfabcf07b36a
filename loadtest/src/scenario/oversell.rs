//! Overselling: the seven purchase strategies (`order-service/src/strategy/`) on the same crowd
//! (its size, arrivals and clicks; fresh accounts each),
//! one goods each, on one stack: which oversell, which undersell, what each costs.

use std::sync::Arc;

use contracts::stock::PurchaseStrategy;

use super::load::{self, Crowd};
use super::stage::Stage;
use super::{Args, Figures, Outcome, Scenario};

pub const SCENARIO: Scenario = Scenario {
    name: "oversell",
    title: "Overselling: seven ways to take a unit, on the same crowd",
    problem: "A flash sale has fewer units than buyers, all arriving at once. Read the stock, then \
              write it back minus one, and concurrent purchases overwrite each other: more orders \
              than units. Decrement first and check for a repeat buyer after, and every repeat \
              click burns a unit nobody gets; lock the row, and every buyer waits for it.",
    fix: &[
        "stock-service/src/sale/reserve.lua",
        "order-service/src/strategy/lua_mq.rs",
        "order-service/src/strategy/db_guarded_update.rs",
    ],
};

/// Units per goods.
const STOCK: i32 = 1_000;
/// Buyers per goods (each clicks twice), and how fast they come: faster than the database
/// strategies sell.
const BUYERS: usize = 4_000;
const RATE: u32 = 2_000;

pub async fn run(args: &Args) -> anyhow::Result<Outcome> {
    let buyers = args.buyers.unwrap_or(BUYERS);
    let stock = STOCK.min(i32::try_from(buyers / 4)?.max(1));
    let stage = Stage::from_args(args).await?;
    let crowd = Crowd { rate: RATE, buyers, clicks: 2 };
    let mut variants = Vec::new();
    let mut optimistic_conflicts = 0;
    for strategy in PurchaseStrategy::ALL {
        eprintln!("{}: {buyers} buyers clicking twice for {stock} units, {RATE}/s...", strategy.name());
        let goods_id = stage.http.sale_bought_by(stock, strategy).await?;
        // Accounts of their own per variant (the same size, arrivals and clicks): a gateway's
        // per-user limits would otherwise count one variant's calls against the next.
        let tokens = Arc::new(stage.http.users(u32::try_from(buyers)?).await?);
        let load = load::run(&stage.http, goods_id, tokens, crowd).await;
        let mut figures = stage.figures(strategy.name().into(), goods_id, buyers as i64, &load).await?;
        let audit = stage.audit(goods_id).await?;
        let in_redis = !strategy.name().starts_with("db_");
        figures.own = vec![
            ("sold out after", format!("{:.2} s", load.last_accepted_secs)),
            ("stock left in PostgreSQL", audit.db_stock.to_string()),
            (
                "stock left in Redis (+ holds)",
                match (in_redis, audit.redis_stock) {
                    (true, Some(left)) => format!("{left} (+{})", audit.holds),
                    _ => "not used".into(),
                },
            ),
            ("refused: sold out / repeat / other", format!("{} / {} / {}", load.sold_out, load.duplicates, load.other)),
        ];
        if strategy == PurchaseStrategy::DbOptimistic {
            optimistic_conflicts = load.other;
        }
        eprintln!(
            "  {} orders for {stock} units, {} oversold, {} undersold",
            figures.orders, figures.oversold, figures.undersold
        );
        variants.push(figures);
    }
    stage.finish().await;
    let of = |strategy: PurchaseStrategy| -> &Figures {
        variants.iter().find(|v| v.variant == strategy.name()).expect("every strategy ran")
    };
    let naive = of(PurchaseStrategy::DbCheckThenUpdate);
    let decr = of(PurchaseStrategy::RedisDecr);
    let optimistic = of(PurchaseStrategy::DbOptimistic);
    let guarded = of(PurchaseStrategy::DbGuardedUpdate);
    let ours = of(PurchaseStrategy::LuaMq);
    let correct = [
        PurchaseStrategy::DbGuardedUpdate,
        PurchaseStrategy::DbForUpdate,
        PurchaseStrategy::RedisLuaSyncDb,
        PurchaseStrategy::LuaMq,
    ]
    .into_iter()
    .all(|s| {
        let v = of(s);
        v.oversold == 0 && v.duplicates == 0 && v.undersold == 0 && v.orders == i64::from(stock)
    });
    let reproduced = naive.oversold > 0 && decr.undersold > 0;
    let verdict = format!(
        "{stock} units, {buyers} buyers clicking twice: `db_check_then_update` took {} orders ({} oversold, lost \
         updates); `redis_decr` left {} units unsold (burnt by repeat clicks); `db_optimistic` turned {} attempts \
         away after conflicts and left {} unsold; the row-lock strategies, `redis_lua_sync_db` and `lua_mq` \
         sold exactly {stock}: `lua_mq` with a p99 of {:.1} ms, `db_guarded_update` {:.1} ms.",
        naive.orders,
        naive.oversold,
        decr.undersold,
        optimistic_conflicts,
        optimistic.undersold,
        ours.p99_ms,
        guarded.p99_ms
    );
    Ok(Outcome { variants, reproduced, fixed: correct, verdict, chart: None })
}
