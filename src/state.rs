//! What every handler can reach.

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use tokio_util::sync::CancellationToken;

use crate::{
    clusters::{self, ClusterProvider},
    configuration::Settings,
    docker::DockerEngine,
    metrics::Metrics,
    store::Store,
};

#[derive(Clone, FromRef)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub leptos_options: LeptosOptions,
    pub store: Store,
    pub docker: DockerEngine,
    pub clusters: Arc<dyn ClusterProvider>,
    pub metrics: Arc<Metrics>,
    /// Cancelled when the server begins to shut down; long-lived connections watch it.
    pub stopping: CancellationToken,
}

impl AppState {
    /// Opens and migrates the database and sets up the cluster provider; the Docker engine is
    /// reached lazily.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let store = Store::open(&settings.database_url)
            .await
            .with_context(|| format!("opening the database at {}", settings.database_url))?;
        let docker = DockerEngine::new(&settings.docker_host);
        let clusters = clusters::provider(&settings.clusters, docker.clone()).with_context(|| {
            format!(
                "preparing the state directory {}",
                settings.clusters.state_dir.display()
            )
        })?;
        Ok(Self {
            leptos_options: settings.site.clone(),
            docker,
            clusters,
            settings: Arc::new(settings),
            store,
            metrics: Arc::default(),
            stopping: CancellationToken::new(),
        })
    }
}
