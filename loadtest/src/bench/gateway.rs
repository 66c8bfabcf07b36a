//! `bench gateway`: the gateway under load from a Rust driver, against a bare actix-web handler
//! on the same machine in the same run.
//!
//! Two ways to run it:
//! - in process (the default): the whole stack (user-, stock-, order-service, one worker, the
//!   gateway) starts inside this process on throwaway state, next to the driver;
//! - `--external`: against a stack already running as separate processes (`scripts/dev-up`), the
//!   driver alone in this process, so that each part's CPU shows on its own (`cpu=` lines).
//!
//! Either way the bare handler runs as a process of its own (this binary, `bench bare`).
//!
//! Phases, each measured for `--seconds` with `--connections` keep-alive connections:
//! - `sale`: complete purchase attempts (path, then order) by distinct users, ample stock;
//! - `sold_out`: order attempts on a sold-out goods (answered by the in-process flag);
//! - `bare`: `GET /ping` on a bare actix-web server with the same worker count;
//! - `sale_half_rate`: purchase attempts paced at half the measured `sale` rate (latency under
//!   a sustainable load).

use std::io::BufRead as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use hdrhistogram::Histogram;
use serde_json::json;

use super::{commandstats, processes};
use crate::audit::AdminLogin;
use crate::http::Http;
use crate::sandbox::FullStack;

/// Options of `bench gateway`.
#[derive(clap::Args)]
pub struct Args {
    /// Seconds per phase.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrent keep-alive connections of the driver.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Load-test users to create for the sale phases (each buys once).
    #[arg(long, default_value_t = 100_000)]
    users: u32,
    /// Drive the stack running at `--gateway` as separate processes (`scripts/dev-up`, its rate
    /// limits raised: see docs/benchmarks.md) instead of starting one in this process.
    #[arg(long)]
    external: bool,
    #[command(flatten)]
    login: AdminLogin,
    /// With `--external`: every program's `/metrics`, whose Redis round trips are added up
    /// (scripts/dev-up's, by default).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "http://127.0.0.1:9100/metrics,http://127.0.0.1:9101/metrics,http://127.0.0.1:9102/metrics,http://127.0.0.1:9103/metrics,http://127.0.0.1:9104/metrics"
    )]
    metrics: Vec<String>,
}

/// Options of `bench bare`, the bare handler's own process.
#[derive(clap::Args)]
pub struct BareArgs {
    /// Where to listen (port 0: any free one); the URL is printed on the first line.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: std::net::SocketAddr,
}

/// What one phase measured.
struct Figures {
    /// How long the phase took.
    seconds: f64,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Attempts that succeeded.
    ok: usize,
    errors: usize,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = reqwest::Client::builder().pool_max_idle_per_host(args.connections).build()?;
    let (stack, http, metrics) = if args.external {
        let admin = args.login.gateway().await?.http();
        (None, Http { client: client.clone(), ..admin }, args.metrics.clone())
    } else {
        let limits = gateway::settings::LimitSettings {
            global_per_sec: 10_000_000,
            per_ip_per_sec: 10_000_000,
            ..Default::default()
        };
        let stack = FullStack::start(crate::sandbox::StackOptions::with_limits(limits)).await?;
        let http = Http { client: client.clone(), base: stack.base_url.clone(), admin: stack.admin_token.clone() };
        // One process, one registry: every gateway's /metrics renders all of it.
        let metrics = stack.metrics_urls.iter().take(1).cloned().collect();
        (Some(stack), http, metrics)
    };

    eprintln!("creating {} users and two sales...", args.users);
    let tokens = Arc::new(http.users(args.users).await?);
    let open = http.sale(i32::try_from(args.users)?).await?;
    let sold_out = http.sale(1).await?;
    let status = http.buy(sold_out, &tokens[0]).await?.status;
    anyhow::ensure!(status == 202, "the only unit could not be bought");
    // The next attempt learns "sold out" from stock-service and sets the gateway's flag.
    let status = http.buy(sold_out, &tokens[1]).await?.status;
    anyhow::ensure!(status == 409, "the second attempt should have found the sale sold out");
    let next_user = Arc::new(AtomicUsize::new(2));

    eprintln!("phase sale...");
    let redis = testkit::redis_pool().await;
    let (before, trips_before, cpu_before) =
        (commandstats::calls(&redis).await?, round_trips(&client, &metrics).await?, processes::cpu_ticks());
    let sale = drive(args.connections, args.seconds, None, purchases(&http, &tokens, &next_user, open)).await;
    let (after, trips_after, cpu_after) =
        (commandstats::calls(&redis).await?, round_trips(&client, &metrics).await?, processes::cpu_ticks());
    report("sale", &sale);
    // Every program's commands during the phase (they share this Redis), per purchase made.
    println!("phase=sale redis_commands_per_purchase={}", commandstats::per(&before, &after, sale.ok));
    // Commands and pipelines sent on the programs' shared connections, the workers' included.
    println!("phase=sale redis_round_trips_per_purchase={:.2}", (trips_after - trips_before) / sale.ok.max(1) as f64);
    println!("phase=sale cpu={}", processes::shares(&cpu_before, &cpu_after, sale.seconds));

    eprintln!("phase sold_out...");
    let sold_out_phase = drive(args.connections, args.seconds, None, {
        let (http, tokens) = (http.clone(), tokens.clone());
        let url = format!("{}/api/v1/seckill/goods/{sold_out}/{}/orders", http.base, uuid::Uuid::new_v4());
        move || {
            let (client, token, url) = (http.client.clone(), tokens[0].clone(), url.clone());
            async move {
                let response = client.post(&url).bearer_auth(token).send().await.map_err(|e| e.to_string())?;
                if response.status() == 409 { Ok(()) } else { Err(format!("status {}", response.status())) }
            }
        }
    })
    .await;
    report("sold_out", &sold_out_phase);

    eprintln!("phase bare...");
    let (bare_url, mut bare_server) = bare_process()?;
    let bare = drive(args.connections, args.seconds, None, {
        let client = client.clone();
        move || {
            let (client, url) = (client.clone(), bare_url.clone());
            async move {
                let response = client.get(&url).send().await.map_err(|e| e.to_string())?;
                response.bytes().await.map_err(|e| e.to_string())?;
                Ok(())
            }
        }
    })
    .await;
    report("bare", &bare);
    bare_server.kill().ok();
    bare_server.wait().ok();

    eprintln!("phase sale_half_rate...");
    let half =
        drive(args.connections, args.seconds, Some(sale.rps / 2.0), purchases(&http, &tokens, &next_user, open)).await;
    report("sale_half_rate", &half);
    println!("ratio_sale={:.2} ratio_sold_out={:.2}", sale.rps / bare.rps, sold_out_phase.rps / bare.rps);
    if let Some(stack) = stack {
        stack.finish().await;
    }
    Ok(())
}

/// The sum of `redis_round_trips_total` over the programs' `/metrics`.
async fn round_trips(client: &reqwest::Client, urls: &[String]) -> anyhow::Result<f64> {
    let mut total = 0.0;
    for url in urls {
        let text = client.get(url).send().await?.error_for_status()?.text().await.with_context(|| url.clone())?;
        total += crate::scenario::stage::counter(&text, "redis_round_trips_total", |_| true) as f64;
    }
    Ok(total)
}

/// One purchase attempt (path, then order) per call, each by the next unused user.
fn purchases(
    http: &Http,
    tokens: &Arc<Vec<String>>,
    next_user: &Arc<AtomicUsize>,
    goods_id: i64,
) -> impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>> + Clone + Send + 'static
{
    let (http, tokens, next_user) = (http.clone(), tokens.clone(), next_user.clone());
    move || {
        let (http, tokens, next_user) = (http.clone(), tokens.clone(), next_user.clone());
        Box::pin(async move {
            let token = tokens.get(next_user.fetch_add(1, Ordering::Relaxed)).ok_or("out of users")?;
            let status = http.buy(goods_id, token).await.map_err(|e| e.to_string())?.status;
            if status == 202 { Ok(()) } else { Err(format!("status {status}")) }
        })
    }
}

fn report(phase: &str, figures: &Figures) {
    println!("phase={phase} rps={:.0} p50_ms={:.2} p99_ms={:.2}", figures.rps, figures.p50_ms, figures.p99_ms);
    if figures.errors > 0 {
        eprintln!("phase={phase} errors={}", figures.errors);
    }
}

/// Runs `connections` loops of `attempt` for `seconds`, paced to `rate` attempts per second in
/// total when given.
async fn drive<F, Fut>(connections: usize, seconds: u64, rate: Option<f64>, attempt: F) -> Figures
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let interval = rate.map(|rate| Duration::from_secs_f64(connections as f64 / rate.max(1.0)));
    let tasks: Vec<_> = (0..connections)
        .map(|n| {
            let attempt = attempt.clone();
            tokio::spawn(async move {
                let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 2).expect("bounds");
                let (mut ok, mut errors) = (0usize, 0usize);
                let mut next =
                    Instant::now() + interval.map_or(Duration::ZERO, |i| i.mul_f64(n as f64 / connections as f64));
                while Instant::now() < until {
                    if let Some(interval) = interval {
                        tokio::time::sleep_until(next.into()).await;
                        next += interval;
                    }
                    let began = Instant::now();
                    match attempt().await {
                        Ok(()) => {
                            ok += 1;
                            histogram.saturating_record(began.elapsed().as_micros() as u64);
                        }
                        Err(err) if err == "out of users" => break,
                        Err(_) => errors += 1,
                    }
                }
                (ok, errors, histogram)
            })
        })
        .collect();
    let mut merged = Histogram::<u64>::new_with_bounds(1, 60_000_000, 2).expect("bounds");
    let (mut ok, mut errors) = (0, 0);
    for task in tasks {
        if let Ok((n, e, histogram)) = task.await {
            ok += n;
            errors += e;
            let _ = merged.add(histogram);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    Figures {
        seconds: elapsed,
        rps: ok as f64 / elapsed,
        p50_ms: merged.value_at_quantile(0.5) as f64 / 1000.0,
        p99_ms: merged.value_at_quantile(0.99) as f64 / 1000.0,
        ok,
        errors,
    }
}

/// Starts `bench bare` as a process of its own: its URL and the child (to kill).
fn bare_process() -> anyhow::Result<(String, std::process::Child)> {
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args(["bench", "bare"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("starting the bare handler's process")?;
    // Its log may come first on the same stdout; after the URL, the rest is read and dropped.
    let mut lines = std::io::BufReader::new(child.stdout.take().context("its stdout")?).lines();
    let url = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| line.strip_prefix("url=").map(str::to_owned))
        .context("the bare handler printed no url")?;
    std::thread::spawn(move || lines.for_each(drop));
    Ok((url, child))
}

/// `bench bare`: a bare actix-web server, one handler, as many workers as the gateway (one per
/// core), until killed.
pub async fn bare(args: BareArgs) -> anyhow::Result<()> {
    let listener = std::net::TcpListener::bind(args.listen)?;
    println!("url=http://{}/ping", listener.local_addr()?);
    HttpServer::new(|| {
        App::new().route("/ping", web::get().to(|| async { HttpResponse::Ok().json(json!({"ok": true})) }))
    })
    .listen(listener)?
    .run()
    .await?;
    Ok(())
}
