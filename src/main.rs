use ckad_platform::{configuration::Settings, run, shutdown_signal, telemetry, AppState};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::load()?;
    telemetry::init(settings.log_format);
    let listener = tokio::net::TcpListener::bind(settings.site.site_addr).await?;
    let state = AppState::build(settings).await?;
    run(listener, state, shutdown_signal()).await?;
    Ok(())
}
