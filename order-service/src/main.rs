//! order-service: places orders and answers where they stand. Configuration: `SECKILL_*`.

use order_service::{Application, Settings, settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings: Settings = platform::load_with(settings::SERVICE_DEFAULTS)?;
    platform::telemetry::init("order-service", settings.node.log_format);
    let app = Application::build(settings).await?;
    app.run_until(platform::shutdown_signal()).await;
    Ok(())
}
