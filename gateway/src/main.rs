//! gateway: the public HTTP API. Configuration: `SECKILL_*` (see settings.rs).

use gateway::{Application, Settings, settings};

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let settings: Settings = platform::load_with(settings::BINARY_DEFAULTS)?;
    platform::telemetry::init("gateway", settings.log_format);
    let app = Application::build(settings).await?;
    app.run_until(platform::shutdown_signal()).await?;
    Ok(())
}
