//! user-service: accounts, passwords and sessions. Configuration: `SECKILL_*` (see settings.rs).

use user_service::{Application, Settings, settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings: Settings = platform::load_with(settings::BINARY_DEFAULTS)?;
    platform::telemetry::init("user-service", settings.node.log_format);
    let app = Application::build(settings).await?;
    app.run_until(platform::shutdown_signal()).await;
    Ok(())
}
