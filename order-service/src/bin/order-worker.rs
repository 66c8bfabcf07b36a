//! order-worker: writes order messages to PostgreSQL in batches; runs the reconciler.
//! Scales independently of order-service. Configuration: `SECKILL_*` (order-service's settings).

use order_service::{Settings, WorkerApplication, settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings: Settings = platform::load_with(settings::WORKER_DEFAULTS)?;
    platform::telemetry::init("order-worker", settings.node.log_format);
    let app = WorkerApplication::build(settings).await?;
    app.run_until(platform::shutdown_signal()).await;
    Ok(())
}
