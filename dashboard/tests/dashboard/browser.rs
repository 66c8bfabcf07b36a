//! The page in a real browser (headless Chromium through chromedriver): a person logs in, runs a
//! small sale from the form, and sees the orders reach the stock, the Redis stock reach 0, the
//! queue empty again and the audit green; a stock-service replica stops and its tile turns red;
//! a rate-limit rule changed on the page takes effect on every gateway. Screenshots go to
//! `target/dashboard/`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::support::TestStack;

/// How long anything a person waits for on the page may take.
const PATIENCE: Duration = Duration::from_secs(60);

/// chromedriver on a free port, killed when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start() -> Driver {
        let port = testkit::private::free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is installed (Debian: chromium chromium-driver; scripts/test installs them)");
        let until = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < until, "chromedriver did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver { child, port }
    }

    async fn browser(&self) -> Client {
        let mut options = json!({"args": ["--headless", "--no-sandbox", "--disable-gpu", "--window-size=1440,1500"]});
        if std::path::Path::new("/usr/bin/chromium").exists() {
            options["binary"] = json!("/usr/bin/chromium");
        }
        let capabilities = serde_json::Map::from_iter([("goog:chromeOptions".to_owned(), options)]);
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a headless Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The text of element `id`, once `check` accepts it (at most [`PATIENCE`]).
async fn text_until(browser: &Client, id: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + PATIENCE;
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Ok(element) = browser.find(Locator::Id(id)).await {
            last = element.text().await.unwrap_or_default();
            if check(&last) {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("#{id} never showed what was expected; last: {last:?}");
}

/// Attribute `name` of the element `css` finds, once `check` accepts it (at most [`PATIENCE`]).
async fn attribute_until(browser: &Client, css: &str, name: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + PATIENCE;
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Ok(element) = browser.find(Locator::Css(css)).await {
            last = element.attr(name).await.ok().flatten().unwrap_or_default();
            if check(&last) {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{css} [{name}] never showed what was expected; last: {last:?}");
}

/// Opens the page at `url`, logs in with the development login, and waits for the stream.
async fn log_in(browser: &Client, url: &str) {
    browser.goto(url).await.unwrap();
    let login = browser.wait().at_most(PATIENCE).for_element(Locator::Css("#dev-login:not([hidden])")).await.unwrap();
    login.click().await.unwrap();
    browser.wait().at_most(PATIENCE).for_element(Locator::Css("#main:not([hidden])")).await.unwrap();
    text_until(browser, "stream-state", |s| s == "live").await;
}

async fn type_into(browser: &Client, id: &str, text: &str) {
    let input = browser.find(Locator::Id(id)).await.unwrap();
    input.clear().await.unwrap();
    input.send_keys(text).await.unwrap();
}

async fn screenshot(browser: &Client, name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/dashboard");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, browser.screenshot().await.unwrap()).unwrap();
    println!("screenshot: {}", path.display());
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_person_watches_a_sale_a_replica_fail_and_a_rule_change_on_the_page() {
    let mut stack = TestStack::start(2).await;
    let driver = Driver::start();
    let browser = driver.browser().await;

    // Log in (the development login: this stack runs in development).
    log_in(&browser, &stack.dashboard).await;

    // A small sale from the form.
    type_into(&browser, "demo-stock", "30").await;
    type_into(&browser, "demo-buyers", "300").await;
    type_into(&browser, "demo-rate", "300").await;
    browser.find(Locator::Id("demo-start")).await.unwrap().click().await.unwrap();
    let phase = attribute_until(&browser, "#demo-phase", "data-phase", |p| p == "done" || p == "failed").await;
    let demo = browser.find(Locator::Id("demo-state")).await.unwrap().text().await.unwrap();
    assert_eq!(phase, "done", "{demo}");
    let goods_id: i64 =
        attribute_until(&browser, "#goods .goods", "data-goods-id", |id| !id.is_empty()).await.parse().unwrap();
    text_until(&browser, &format!("goods-{goods_id}-orders"), |t| t.starts_with("30 / 30")).await;
    text_until(&browser, &format!("goods-{goods_id}-redis-stock"), |t| t.starts_with('0')).await;
    text_until(&browser, &format!("goods-{goods_id}-pending"), |t| t.starts_with('0')).await;
    text_until(&browser, "queue-depth", |t| t.starts_with('0')).await;
    attribute_until(&browser, "#audit-badge", "class", |c| c.contains("ok")).await;
    assert!(demo.contains("30 accepted of 300 buyers"), "{demo}");
    screenshot(&browser, "sale.png").await;

    // One stock-service replica stops: its tile turns red.
    let stopped = stack.stack.sandbox.stock_apps.pop().expect("two stock-services");
    let addr = stopped.address().to_string();
    stopped.stop().await;
    let tile = format!("#nodes .node[data-addr='{addr}']");
    let status = attribute_until(&browser, &tile, "data-status", |s| s == "down" || s == "gone" || s == "open").await;
    let colour = browser.find(Locator::Css(&tile)).await.unwrap().css_value("background-color").await.unwrap();
    assert_eq!(colour, "rgba(218, 54, 51, 1)", "the {status} tile is red");

    // A rate-limit rule changed on the page: a burst of 2 per buyer, on every gateway.
    let buyers_goods = stack.gateway().sale(10).await.unwrap();
    type_into(&browser, "rule-per_user_burst", "2").await;
    type_into(&browser, "rule-per_user_per_sec", "1").await;
    let saved = Instant::now();
    browser.find(Locator::Id("rules-save")).await.unwrap().click().await.unwrap();
    text_until(&browser, "rules-status", |s| s.starts_with("saved as v1")).await;
    testkit::wait_for(Duration::from_secs(10), || async {
        stack.gateway_rules_versions().await.iter().all(|v| *v == 1).then_some(())
    })
    .await
    .expect("every gateway follows the rule");
    let followed = saved.elapsed();
    for gateway in 0..2 {
        assert_eq!(stack.path_statuses(gateway, buyers_goods, 3).await, [200, 200, 429], "gateway {gateway}");
    }
    println!("the rule saved on the page was in force on both gateways {followed:?} after the click");
    text_until(&browser, "rules-version", |s| s == "rules v1").await;
    screenshot(&browser, "final.png").await;

    browser.close().await.unwrap();
    drop(driver);
    stack.finish().await;
}

/// On demand, not in CI: watches a running dashboard's page (`SECKILL_WATCH_URL`, e.g. dev-up's
/// http://127.0.0.1:8090, in development) for `SECKILL_WATCH_SECONDS` (120) while a sale runs
/// against that system, and prints how often the page updated, its longest gap, the browser's
/// JavaScript heap and the page's element count. Fails if the page stopped updating altogether
/// or its element count grew without bound.
///
/// `SECKILL_WATCH_URL=http://127.0.0.1:8090 cargo test -p dashboard --test dashboard watch -- --ignored --nocapture`
#[tokio::test]
#[ignore = "watches a running system on demand: SECKILL_WATCH_URL"]
async fn watch_a_running_dashboard_through_a_sale() {
    let url = std::env::var("SECKILL_WATCH_URL").expect("SECKILL_WATCH_URL: the dashboard to watch");
    let seconds: u64 = std::env::var("SECKILL_WATCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(120);
    let driver = Driver::start();
    let browser = driver.browser().await;
    log_in(&browser, &url).await;
    let probe = "return [document.getElementById('updated').textContent, \
                 performance.memory ? performance.memory.usedJSHeapSize : 0, \
                 document.getElementsByTagName('*').length]";
    let (mut updates, mut last_text, mut last_change) = (0u64, String::new(), Instant::now());
    let (mut longest_gap, mut heaps, mut elements) = (Duration::ZERO, Vec::new(), Vec::new());
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(seconds) {
        let reading = browser.execute(probe, vec![]).await.unwrap();
        let text = reading[0].as_str().unwrap_or_default().to_owned();
        if text != last_text {
            updates += 1;
            longest_gap = longest_gap.max(last_change.elapsed());
            last_change = Instant::now();
            last_text = text;
        }
        heaps.push(reading[1].as_f64().unwrap_or(0.0) / 1e6);
        elements.push(reading[2].as_u64().unwrap_or(0));
        if heaps.len() % 10 == 0 {
            println!(
                "{:>4} s: {updates} updates, heap {:.1} MB, {} elements",
                started.elapsed().as_secs(),
                heaps.last().unwrap(),
                elements.last().unwrap()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let max_heap = heaps.iter().copied().fold(0.0, f64::max);
    println!(
        "watched {seconds} s: {updates} updates (page clock changes), longest gap {longest_gap:?}; JS heap {:.1} → {:.1} MB (max {max_heap:.1}); elements {} → {}",
        heaps[0],
        heaps.last().unwrap(),
        elements[0],
        elements.last().unwrap()
    );
    screenshot(&browser, "watch.png").await;
    assert!(updates > 0, "the page never updated");
    // The panels are redrawn in place: their element count follows the goods and nodes shown (at
    // most 6 goods), it does not grow with time.
    let (first, last) = (elements[0], *elements.last().unwrap());
    assert!(last <= 2 * first + 500, "the page grew from {first} to {last} elements");
    browser.close().await.unwrap();
}
