//! order-worker: writes order messages to PostgreSQL in batches; runs the reconciler.
//! Scales independently of order-service. Configuration: `SECKILL_*` (order-service's settings).

use order_service::{Settings, WorkerApplication};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut settings: Settings = common::load()?;
    if settings.node.metrics_listen == Settings::default().node.metrics_listen {
        // Next to an order-service on the same host, do not collide on its metrics port.
        settings.node.metrics_listen = "0.0.0.0:9104".parse().ok();
    }
    common::telemetry::init("order-worker", settings.node.log_format);
    let app = WorkerApplication::build(settings).await?;
    app.run_until(common::shutdown_signal()).await;
    Ok(())
}
