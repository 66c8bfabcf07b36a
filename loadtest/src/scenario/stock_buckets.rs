//! Hot item stock buckets: one goods' stock under one Redis key against the same units split over
//! eight bucket keys, each under a hash tag of its own.
//!
//! Two parts per variant. The reserve script itself, as fast as redis-benchmark sends it, on a
//! private three-primary Redis Cluster this scenario starts (`testkit::private::PrivateRedisCluster`):
//! one key is one slot, so one primary serves every reserve of the goods whatever the cluster's
//! size; eight buckets spread them over the primaries. Then a sale on the stack, the units in one
//! key or eight buckets, to show the buckets sell exactly what the single key does (nothing
//! oversold, nothing left behind by the fall-through between buckets).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use contracts::keyspace::{Keyspace, SaleKeys};
use deadpool_redis::redis::{self, Script, aio::MultiplexedConnection};
use testkit::private::PrivateRedisCluster;
use uuid::Uuid;

use super::chart::Chart;
use super::load::{self, Crowd};
use super::stage::Stage;
use super::{Args, Outcome, Scenario};

pub const SCENARIO: Scenario = Scenario {
    name: "stock-buckets",
    title: "Hot item stock buckets: one stock key against eight",
    problem: "Every buyer of a hot goods runs the reservation on its one stock key, and one key lives \
              in one Redis Cluster slot: one primary serves the whole sale while the others idle, \
              and adding shards adds nothing. Split into buckets under hash tags of their own, the \
              goods' reservations spread over the shards, each buyer deduplicated in their home \
              bucket and a sold-out bucket falling through to the others.",
    fix: &["stock-service/src/sale/mod.rs", "stock-service/src/sale/take.lua", "contracts/src/keyspace.rs"],
};

const BUCKETS: u16 = 8;
const PRIMARIES: usize = 3;
/// Reserve calls per variant against the cluster, by this many redis-benchmark processes (the
/// same in both variants) of so many connections each.
const RESERVES: usize = 400_000;
const DRIVERS: usize = 8;
const CLIENTS_PER_DRIVER: usize = 12;
/// Calls each connection keeps in flight (redis-benchmark `-P`): the driver's cost per call
/// falls, so the primaries are what runs out.
const PIPELINE: usize = 8;
/// The sale on the stack: buyers and units.
const BUYERS: usize = 2_000;
const UNITS: i32 = 500;
const RATE: u32 = 1_000;
/// Width of a sample of the throughput chart, in seconds.
const STEP_SECS: f64 = 0.25;

pub async fn run(args: &Args) -> anyhow::Result<Outcome> {
    eprintln!("starting a private {PRIMARIES}-primary Redis Cluster...");
    let cluster = tokio::task::spawn_blocking(move || PrivateRedisCluster::start(PRIMARIES)).await?;
    let mut hammered = Vec::new();
    for buckets in [1, BUCKETS] {
        eprintln!("{buckets} stock key(s): {RESERVES} reserve scripts on the cluster...");
        hammered.push(hammer(&cluster, buckets).await?);
    }
    drop(cluster);

    let buyers = args.buyers.unwrap_or(BUYERS);
    let units = UNITS.min(i32::try_from(buyers)?);
    let stage = Stage::from_args(args).await?;
    let mut variants = Vec::new();
    for (buckets, run) in [1, BUCKETS].into_iter().zip(&hammered) {
        let name = if buckets == 1 { "one stock key".to_owned() } else { format!("{buckets} stock buckets") };
        eprintln!("{name}: a sale of {units} units to {buyers} buyers on the stack...");
        let goods_id = stage.http.sale_in_buckets(units, buckets).await?;
        let tokens = Arc::new(stage.http.users(u32::try_from(buyers)?).await?);
        let load = load::run(&stage.http, goods_id, tokens, Crowd { rate: RATE, buyers, clicks: 1 }).await;
        let mut figures = stage.figures(name, goods_id, buyers as i64, &load).await?;
        figures.own = vec![
            ("reserves / s on the cluster", format!("{:.0}", run.per_sec())),
            ("busiest primary's share of them", format!("{:.0}%", 100.0 * run.busiest_share())),
            ("primaries serving the goods", run.per_node.iter().filter(|n| **n > 0).count().to_string()),
        ];
        variants.push(figures);
    }
    stage.finish().await;

    let (one, split) = (&hammered[0], &hammered[1]);
    let (before, after) = (&variants[0], &variants[1]);
    let clean = |v: &super::Figures| v.oversold == 0 && v.duplicates == 0 && v.undersold == 0;
    let reproduced = one.busiest_share() > 0.99;
    let speedup = split.per_sec() / one.per_sec().max(1.0);
    let fixed = split.busiest_share() < 0.6 && speedup > 1.1 && clean(before) && clean(after);
    let verdict = format!(
        "on a {PRIMARIES}-primary Redis Cluster one stock key put {:.0}% of the goods' reserves on one primary \
         ({:.0} reserves/s); {BUCKETS} buckets spread them over {} primaries, the busiest taking {:.0}%, for {:.0} \
         reserves/s (x{speedup:.2} on this {}-core machine, the load driver sharing it). On the stack both sold \
         {} and {} of {units} units to {buyers} buyers: {} oversold, {} left unsold.",
        100.0 * one.busiest_share(),
        one.per_sec(),
        split.per_node.iter().filter(|n| **n > 0).count(),
        100.0 * split.busiest_share(),
        split.per_sec(),
        std::thread::available_parallelism().map_or(0, usize::from),
        before.orders,
        after.orders,
        before.oversold + after.oversold,
        before.undersold + after.undersold,
    );
    let chart = Chart {
        y_desc: "reserve scripts / s on the cluster",
        step_secs: STEP_SECS,
        series: variants.iter().zip(&hammered).map(|(v, run)| (v.variant.clone(), run.timeline.clone())).collect(),
    };
    Ok(Outcome { variants, reproduced, fixed, verdict, chart: Some(chart) })
}

/// What the reserve script did on the cluster in one variant.
struct Hammered {
    reserves: u64,
    seconds: f64,
    /// Reserves served by each primary.
    per_node: Vec<u64>,
    /// Reserves per second, per [`STEP_SECS`] (all primaries).
    timeline: Vec<f64>,
}

impl Hammered {
    fn per_sec(&self) -> f64 {
        self.reserves as f64 / self.seconds.max(f64::EPSILON)
    }

    fn busiest_share(&self) -> f64 {
        self.per_node.iter().copied().max().unwrap_or(0) as f64 / self.reserves.max(1) as f64
    }
}

/// Runs the reserve script on a goods of `buckets` stock keys (as many units as it takes never
/// to sell out): [`DRIVERS`] redis-benchmark processes (C, so that the servers, not the driver,
/// are what is measured), driver `i` on bucket `i % buckets`, each sending `EVALSHA reserve` to
/// the primary that owns its bucket's slot, random users. The servers' own counters
/// (`INFO commandstats`) say who served what, sampled every [`STEP_SECS`].
async fn hammer(cluster: &PrivateRedisCluster, buckets: u16) -> anyhow::Result<Hammered> {
    let keys = Keyspace::new(testkit::unique_name());
    let goods_id = 1;
    let owners = slot_owners(cluster).await?;
    let mut nodes = Vec::new();
    for url in cluster.urls() {
        nodes.push(redis::Client::open(url.as_str())?.get_multiplexed_async_connection().await?);
    }
    let script = Script::new(stock_service::RESERVE_SCRIPT);
    for conn in &mut nodes {
        let _: String = script.prepare_invoke().load_async(conn).await?;
    }
    let now_ms = chrono::Utc::now().timestamp_millis();
    let mut routes: Vec<(SaleKeys, usize)> = Vec::new();
    for bucket in 0..buckets {
        let bucket_keys = keys.stock_bucket(goods_id, bucket, buckets);
        let node = owner_of(&mut nodes[0], &owners, &bucket_keys.meta).await?;
        let window = [("start_ms", now_ms - 60_000), ("end_ms", now_ms + 3_600_000), ("price_cents", 1)];
        let () = redis::pipe()
            .hset_multiple(&bucket_keys.meta, &window)
            .ignore()
            .set(&bucket_keys.stock, 1_000_000_000)
            .ignore()
            .query_async(&mut nodes[node])
            .await?;
        routes.push((bucket_keys, node));
    }
    let before = evalsha_calls(&mut nodes).await?;
    let ports = cluster.ports();
    let mut drivers = Vec::new();
    for driver in 0..DRIVERS {
        let (bucket_keys, node) = &routes[driver % routes.len()];
        let child = tokio::process::Command::new("redis-benchmark")
            .args(["-p", &ports[*node].to_string(), "-c", &CLIENTS_PER_DRIVER.to_string()])
            .args(["-n", &(RESERVES / DRIVERS).to_string(), "-r", "1000000000", "-P", &PIPELINE.to_string(), "-q"])
            .args(["EVALSHA", script.get_hash(), "3", &bucket_keys.meta, &bucket_keys.stock, &bucket_keys.buyers])
            // Users of their own per driver (drivers started together may draw the same numbers).
            .arg(format!("{}__rand_int__", driver + 1))
            .arg(Uuid::new_v4().to_string())
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("cannot run redis-benchmark (apt-get install redis-tools)")?;
        drivers.push(child);
    }
    let started = Instant::now();
    let mut timeline = Vec::new();
    let mut last = before.iter().sum::<u64>();
    let mut all_done = false;
    while !all_done {
        tokio::time::sleep(Duration::from_secs_f64(STEP_SECS)).await;
        all_done = drivers.iter_mut().all(|child| matches!(child.try_wait(), Ok(Some(_))));
        let now: u64 = evalsha_calls(&mut nodes).await?.iter().sum();
        timeline.push((now - last) as f64 / STEP_SECS);
        last = now;
        anyhow::ensure!(started.elapsed() < Duration::from_secs(60), "redis-benchmark did not finish in a minute");
    }
    for child in &mut drivers {
        let status = child.wait().await?;
        anyhow::ensure!(status.success(), "redis-benchmark failed: {status}");
    }
    let seconds = started.elapsed().as_secs_f64();
    let after = evalsha_calls(&mut nodes).await?;
    let per_node: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    // Every call reserved (a random user seen twice is a duplicate, rarely): the stock says so.
    let mut reserved = 0;
    for (bucket_keys, node) in &routes {
        let left: i64 = redis::cmd("GET").arg(&bucket_keys.stock).query_async(&mut nodes[*node]).await?;
        reserved += 1_000_000_000 - left;
    }
    let reserves = per_node.iter().sum();
    anyhow::ensure!(reserved as u64 * 100 >= reserves * 99, "only {reserved} of {reserves} reserve calls reserved");
    Ok(Hammered { reserves, seconds, per_node, timeline })
}

/// `EVALSHA` calls each node has served so far.
async fn evalsha_calls(nodes: &mut [MultiplexedConnection]) -> anyhow::Result<Vec<u64>> {
    let mut calls = Vec::new();
    for conn in nodes {
        let info: String = redis::cmd("INFO").arg("commandstats").query_async(conn).await?;
        // cmdstat_evalsha:calls=123,usec=...
        let count = info
            .lines()
            .find_map(|line| line.strip_prefix("cmdstat_evalsha:calls="))
            .and_then(|rest| rest.split(',').next())
            .map_or(Ok(0), str::parse)?;
        calls.push(count);
    }
    Ok(calls)
}

/// (first slot, last slot, node index) of every slot range, from `CLUSTER SLOTS`.
async fn slot_owners(cluster: &PrivateRedisCluster) -> anyhow::Result<Vec<(i64, i64, usize)>> {
    let ports = cluster.ports();
    let client = redis::Client::open(cluster.urls()[0].as_str())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    // Each range: first slot, last slot, [ip, port, id, ...] of its primary, then its replicas.
    let ranges: Vec<Vec<redis::Value>> = redis::cmd("CLUSTER").arg("SLOTS").query_async(&mut conn).await?;
    ranges
        .into_iter()
        .map(|range| {
            anyhow::ensure!(range.len() >= 3, "unexpected CLUSTER SLOTS entry {range:?}");
            let first: i64 = redis::from_redis_value(range[0].clone())?;
            let last: i64 = redis::from_redis_value(range[1].clone())?;
            let primary: Vec<redis::Value> = redis::from_redis_value(range[2].clone())?;
            let port: u16 = redis::from_redis_value(primary.get(1).context("no port")?.clone())?;
            let node = ports.iter().position(|p| *p == port).context("CLUSTER SLOTS names a node not ours")?;
            Ok((first, last, node))
        })
        .collect()
}

/// The node whose slot range holds `key` (asked with `CLUSTER KEYSLOT`).
async fn owner_of(conn: &mut MultiplexedConnection, owners: &[(i64, i64, usize)], key: &str) -> anyhow::Result<usize> {
    let slot: i64 = redis::cmd("CLUSTER").arg("KEYSLOT").arg(key).query_async(conn).await?;
    owners
        .iter()
        .find(|(first, last, _)| (*first..=*last).contains(&slot))
        .map(|(_, _, node)| *node)
        .with_context(|| format!("no node owns slot {slot}"))
}
