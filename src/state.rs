//! What every handler can reach.

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use tokio_util::sync::CancellationToken;

use crate::{configuration::Settings, docker::DockerEngine, metrics::Metrics, store::Store};

#[derive(Clone, FromRef)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub leptos_options: LeptosOptions,
    pub store: Store,
    pub docker: DockerEngine,
    pub metrics: Arc<Metrics>,
    /// Cancelled when the server begins to shut down; long-lived connections watch it.
    pub stopping: CancellationToken,
}

impl AppState {
    /// Opens and migrates the database; the Docker engine is reached lazily.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let store = Store::open(&settings.database_url)
            .await
            .with_context(|| format!("opening the database at {}", settings.database_url))?;
        Ok(Self {
            leptos_options: settings.site.clone(),
            docker: DockerEngine::new(&settings.docker_host),
            settings: Arc::new(settings),
            store,
            metrics: Arc::default(),
            stopping: CancellationToken::new(),
        })
    }
}
