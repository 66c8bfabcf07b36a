//! `dashboard`: the live page of a running Seckill system (see the crate's library).

use dashboard::{Application, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings: Settings = platform::load()?;
    platform::telemetry::init("dashboard", settings.log_format);
    let app = Application::build(settings).await?;
    tracing::info!(url = %format!("http://127.0.0.1:{}/", app.port()), "dashboard ready");
    app.run_until(platform::shutdown_signal()).await?;
    Ok(())
}
