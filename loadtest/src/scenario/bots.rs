//! Bots: a script with a few hundred accounts fires at the order endpoint the moment the sale
//! opens, while people buy the way the page makes them (captcha, then the hidden path, then the
//! order). With the captcha and the single-use path against without them
//! (`SECKILL_WITHOUT__CAPTCHA_AND_PATH`): how many units the script takes.

use std::sync::Arc;

use futures::future::join_all;
use serde_json::json;

use super::load::{self, Crowd};
use super::stage::{Stage, unlimited};
use super::{Args, Outcome, Scenario};
use crate::http::Http;
use crate::sandbox::StackOptions;

pub const SCENARIO: Scenario = Scenario {
    name: "bots",
    title: "Bots: a script against the captcha and the hidden path",
    problem: "A script with many accounts calls the order endpoint the instant the sale opens, \
              faster than any person can click, and takes the units before people arrive. The \
              captcha makes every purchase need an answer only a person reads off an image, and \
              the single-use path makes the order URL unknowable without it.",
    fix: &["gateway/src/defences/captcha.rs", "gateway/src/defences/path_token.rs", "gateway/src/routes/seckill.rs"],
};

const STOCK: i32 = 200;
/// The script's accounts, each trying a few times.
const BOTS: usize = 300;
const BOT_TRIES: usize = 3;
/// People, arriving over two seconds (they answer the captcha: the test-mode answer stands in
/// for a person reading the image).
const PEOPLE: usize = 1_000;
const RATE: u32 = 500;

pub async fn run(args: &Args) -> anyhow::Result<Outcome> {
    anyhow::ensure!(args.gateway.is_none(), "bots compares two gateway settings: it runs on stacks of its own");
    let people = args.buyers.unwrap_or(PEOPLE);
    let mut variants = Vec::new();
    let mut taken = Vec::new();
    for (name, off) in [
        ("no captcha, no path (SECKILL_WITHOUT__CAPTCHA_AND_PATH)", true),
        ("captcha and single-use path (default)", false),
    ] {
        eprintln!("variant {name}: starting the stack...");
        let without = gateway::settings::Without { captcha_and_path: off, ..Default::default() };
        let stage = Stage::own(StackOptions { without, ..StackOptions::with_limits(unlimited()) }).await?;
        let bots = stage.http.users(u32::try_from(BOTS)?).await?;
        let tokens = Arc::new(stage.http.users(u32::try_from(people)?).await?);
        let goods_id = stage.http.sale(STOCK).await?;
        eprintln!("variant {name}: {BOTS} bot accounts and {people} people...");
        let crowd = Crowd { rate: RATE, buyers: people, clicks: 1 };
        let (load, bot_orders) = tokio::join!(
            load::run(&stage.http, goods_id, tokens, crowd),
            join_all(bots.iter().map(|token| bot(&stage.http, goods_id, token)))
        );
        let bot_orders = bot_orders.iter().filter(|got| **got).count();
        let mut figures = stage.figures(name.into(), goods_id, people as i64, &load).await?;
        figures.own = vec![
            ("units taken by the script", bot_orders.to_string()),
            ("units bought by people", load.accepted.to_string()),
            ("people who got one", super::percent(load.accepted as f64 / people.max(1) as f64)),
        ];
        stage.finish().await;
        variants.push(figures);
        taken.push((bot_orders, load.accepted));
    }
    let ((bots_before, people_before), (bots_after, people_after)) = (taken[0], taken[1]);
    let stock = STOCK as usize;
    let reproduced = bots_before * 2 > stock;
    let fixed = bots_after == 0 && people_after == stock;
    let verdict = format!(
        "{stock} units, {BOTS} bot accounts firing at the opening and {people} people: without the captcha and path \
         the script took {bots_before} units and people {people_before}; with them the script took {bots_after} \
         and people all {people_after}.",
    );
    Ok(Outcome { variants, reproduced, fixed, verdict, chart: None })
}

/// One bot account: guesses a captcha answer, orders with the path it got or one it made up, a
/// few times. Whether it got a unit.
async fn bot(http: &Http, goods_id: i64, token: &str) -> bool {
    for _ in 0..BOT_TRIES {
        let path_url = format!("/api/v1/seckill/goods/{goods_id}/path");
        let path = match http.post(&path_url, token, json!({"captcha": "0000"})).await {
            Ok((200, body)) => body["path"].as_str().unwrap_or("guess").to_owned(),
            _ => uuid::Uuid::new_v4().to_string(),
        };
        match http.post(&format!("/api/v1/seckill/goods/{goods_id}/{path}/orders"), token, json!({})).await {
            Ok((202, _)) => return true,
            Ok((409, body)) if body["code"] == "SOLD_OUT" => return false,
            _ => {}
        }
    }
    false
}
