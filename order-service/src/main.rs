//! order-service: places orders and answers where they stand. Configuration: `SECKILL_*`.

use order_service::{Application, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings: Settings = common::load()?;
    common::telemetry::init("order-service", settings.node.log_format);
    let app = Application::build(settings).await?;
    app.run_until(common::shutdown_signal()).await;
    Ok(())
}
