//! stock-service: the catalogue and the sale state. Configuration: `SECKILL_*` (see settings.rs).

use stock_service::{Application, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings: Settings = common::load()?;
    common::telemetry::init("stock-service", settings.node.log_format);
    let app = Application::build(settings).await?;
    app.run_until(common::shutdown_signal()).await;
    Ok(())
}
