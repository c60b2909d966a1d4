//! The Docker engine, reached through bollard. The API version is negotiated on first use:
//! Debian's engine speaks API 1.41 and refuses newer clients.

use std::sync::Arc;

use bollard::Docker;
use tokio::sync::OnceCell;

#[derive(Clone)]
pub struct DockerEngine {
    host: Arc<str>,
    client: Arc<OnceCell<Docker>>,
}

impl DockerEngine {
    /// An engine at `host` (`unix://` or `tcp://`); nothing is contacted yet.
    pub fn new(host: &str) -> Self {
        Self {
            host: host.into(),
            client: Arc::default(),
        }
    }

    /// A client speaking the engine's version; retried on the next call if the engine was down.
    pub async fn client(&self) -> Result<Docker, bollard::errors::Error> {
        self.client
            .get_or_try_init(|| async { Docker::connect_with_host(&self.host)?.negotiate_version().await })
            .await
            .cloned()
    }

    /// Whether the engine answers a ping.
    pub async fn ping(&self) -> Result<(), bollard::errors::Error> {
        self.client().await?.ping().await.map(drop)
    }
}
