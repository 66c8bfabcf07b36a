//! `bench drain`: how fast order workers move order messages into PostgreSQL, against the
//! ceiling of plain batched INSERTs of the same rows with the same batch size and parallelism.

use std::sync::Arc;
use std::time::{Duration, Instant};

use contracts::order::OrderMessage;
use contracts::stock::ReserveOutcome;
use futures::{StreamExt, stream};
use order_service::WorkerApplication;
use order_service::broker::Publisher;
use order_service::snowflake::Snowflake;
use testkit::TestDb;
use uuid::Uuid;

use crate::sandbox::Sandbox;

/// Options of `bench drain`.
#[derive(clap::Args)]
pub struct Args {
    /// Order messages to drain.
    #[arg(long, default_value_t = 50_000)]
    orders: usize,
    /// Rows per transaction (workers and the INSERT ceiling alike).
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Consumers in the worker (and parallel connections of the INSERT ceiling).
    #[arg(long, default_value_t = 2)]
    consumers: usize,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let sandbox = Sandbox::start(1).await?;
    let goods = sandbox.sale(i32::try_from(args.orders)?).await?;

    eprintln!("reserving {} units...", args.orders);
    let stock = &sandbox.stock;
    let messages: Vec<OrderMessage> = stream::iter(1..=args.orders as i64)
        .map(|user_id| async move {
            let ticket = Uuid::new_v4();
            match stock.reserve(goods, user_id, ticket).await? {
                ReserveOutcome::Reserved { price_cents, .. } => {
                    Ok(OrderMessage { ticket, user_id, goods_id: goods, price_cents })
                }
                other => anyhow::bail!("unexpected reserve outcome {other:?}"),
            }
        })
        .buffer_unordered(256)
        .collect::<Vec<anyhow::Result<OrderMessage>>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;

    eprintln!("publishing {} messages (publisher confirms)...", messages.len());
    // The same topology the workers declare: one set of queue arguments for every process.
    let publisher = Publisher::connect(&sandbox.order_settings.broker).await?;
    let publishing = Instant::now();
    let published = stream::iter(&messages)
        .map(|message| publisher.publish(message))
        .buffer_unordered(512)
        .filter(|result| std::future::ready(result.is_ok()))
        .count()
        .await;
    anyhow::ensure!(published == messages.len(), "only {published} messages confirmed");
    eprintln!(
        "published {published} in {:.2}s ({:.0}/s, 512 in flight)",
        publishing.elapsed().as_secs_f64(),
        published as f64 / publishing.elapsed().as_secs_f64()
    );
    publisher.close().await;

    eprintln!("draining with {} consumers, batches of {}...", args.consumers, args.batch);
    let mut settings = sandbox.order_settings.clone();
    settings.worker.batch_size = args.batch;
    settings.worker.consumers = args.consumers;
    settings.worker.prefetch = u16::try_from(args.batch * 2).unwrap_or(u16::MAX);
    // The clock starts once the worker process is up (connected, id leased), as in production.
    let worker = WorkerApplication::build(settings).await?;
    let started = Instant::now();
    wait_for_rows(&sandbox.db, "orders", args.orders as i64).await?;
    let drain = started.elapsed();
    worker.stop().await;

    eprintln!("inserting the same rows with plain batched INSERTs...");
    let ceiling = TestDb::create().await;
    let insert = insert_ceiling(&ceiling, &messages, args.batch, args.consumers).await?;
    let drain_per_s = args.orders as f64 / drain.as_secs_f64();
    let insert_per_s = args.orders as f64 / insert.as_secs_f64();
    println!(
        "orders={} batch={} consumers={} drain_s={:.2} insert_s={:.2}",
        args.orders,
        args.batch,
        args.consumers,
        drain.as_secs_f64(),
        insert.as_secs_f64()
    );
    println!("drain_per_s={drain_per_s:.0} insert_per_s={insert_per_s:.0} ratio={:.2}", drain_per_s / insert_per_s);
    sandbox.finish().await;
    Ok(())
}

async fn wait_for_rows(db: &TestDb, table: &str, n: i64) -> anyhow::Result<()> {
    let query = format!("SELECT count(*) FROM {table}");
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(query.clone())).fetch_one(&db.pool).await?;
        if count >= n {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "only {count} of {n} rows after 10 minutes");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The same rows, straight into `orders`: one multi-row INSERT per transaction, `parallel` at a time.
async fn insert_ceiling(
    db: &TestDb,
    messages: &[OrderMessage],
    batch: usize,
    parallel: usize,
) -> anyhow::Result<Duration> {
    // The orders reference a sale: create one with the same id.
    let goods_id = messages.first().map_or(1, |m| m.goods_id);
    sqlx::query("INSERT INTO goods (id, name, price_cents) VALUES ($1, 'ceiling', 1)")
        .bind(goods_id)
        .execute(&db.pool)
        .await?;
    sqlx::query(
        "INSERT INTO seckill_goods (goods_id, seckill_price_cents, initial_stock, stock, start_at, end_at)
         VALUES ($1, 1, $2, $2, now(), now() + interval '1 hour')",
    )
    .bind(goods_id)
    .bind(i32::try_from(messages.len())?)
    .execute(&db.pool)
    .await?;
    let ids = Arc::new(Snowflake::new(1)?);
    let started = Instant::now();
    let results: Vec<sqlx::Result<()>> = stream::iter(messages.chunks(batch))
        .map(|chunk| {
            let (pool, ids) = (db.pool.clone(), ids.clone());
            async move {
                let rows: Vec<(i64, &OrderMessage)> =
                    chunk.iter().map(|m| (ids.next_id().unwrap_or_default(), m)).collect();
                let mut tx = pool.begin().await?;
                order_service::store::insert_orders(&mut tx, &rows).await?;
                tx.commit().await
            }
        })
        .buffer_unordered(parallel)
        .collect()
        .await;
    results.into_iter().collect::<sqlx::Result<()>>()?;
    Ok(started.elapsed())
}
