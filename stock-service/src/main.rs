//! stock-service: the catalogue and the sale state. Configuration: `SECKILL_*` (see settings.rs).

use stock_service::{Application, Settings, settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings: Settings = platform::load_with(settings::BINARY_DEFAULTS)?;
    platform::telemetry::init("stock-service", settings.node.log_format);
    let app = Application::build(settings).await?;
    app.run_until(platform::shutdown_signal()).await;
    Ok(())
}
