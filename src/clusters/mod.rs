//! One Kubernetes cluster per session, behind [`ClusterProvider`]: `lite` (a real control plane
//! with kwok-simulated nodes, in containers on the session's network), `kind` (full clusters
//! whose pods run, from an offline node image) and `kubernetes` (`lite`'s control plane as a pod
//! in a namespace of a host cluster). Every cluster, network and namespace the platform makes
//! carries its name prefix and labels, so that the reconciler can find what the database no
//! longer owns.

pub(crate) mod command;
mod kind;
mod kubeconfig;
pub mod kubernetes;
mod lite;
mod name;
mod network;
mod settings;

use std::{sync::Arc, time::Duration};

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};

pub use kind::{
    default_node_image, refusal as kind_refusal, HostQuirks, KindConfig, KindProvider, NodeContainment,
};
pub use kubeconfig::Kubeconfig;
pub use lite::{LiteProvider, LiteVersions};
pub use name::{ClusterName, InvalidClusterName};
pub use network::{Members, Networks, SubnetPool, CLUSTER_LABEL, INSTANCE_LABEL, PLATFORM_LABEL};
pub use settings::{ClusterSettings, HostSettings, ProviderKind, SESSION_ROLE};

use crate::{docker::DockerEngine, domain::PortSet};

/// What a new cluster needs: its name and the host ports it may publish.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    pub name: ClusterName,
    pub ports: PortSet,
}

/// A running cluster, as its session needs it.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub name: ClusterName,
    /// For the platform (grader, health) on this host.
    pub admin_kubeconfig: Kubeconfig,
    /// For the session's terminal, from inside the session's Docker network (or namespace).
    pub terminal_kubeconfig: Kubeconfig,
    /// The API as the platform reaches it.
    pub api_endpoint: String,
    /// The Docker network the session's terminal must join; on `kubernetes`, the namespace.
    pub network: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterHealth {
    pub api_ready: bool,
    pub ready_nodes: usize,
}

impl ClusterHealth {
    pub fn is_healthy(&self) -> bool {
        self.api_ready && self.ready_nodes > 0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot run {program}: {source}")]
    Spawn { program: String, source: std::io::Error },
    #[error("{program} failed ({status}): {stderr}")]
    Command {
        program: String,
        status: String,
        stderr: String,
    },
    #[error("{what} did not finish within {}s", .limit.as_secs())]
    Timeout { what: String, limit: Duration },
    #[error("the provider cannot work: {0}")]
    Unavailable(String),
    #[error("cluster {0} does not exist")]
    NotFound(ClusterName),
    #[error("the cluster's kubeconfig is unusable: {0}")]
    Kubeconfig(String),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("Docker: {0}")]
    Docker(#[from] bollard::errors::Error),
    #[error("the session's certificates: {0}")]
    Pki(#[from] rcgen::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Creates, finds and removes the clusters behind sessions. Implementations are chosen by
/// `CLUSTER_PROVIDER`; all are real (see `lite`, `kind` and `kubernetes`).
#[async_trait::async_trait]
pub trait ClusterProvider: Send + Sync {
    /// `lite`, `kind` or `kubernetes`.
    fn kind(&self) -> &'static str;

    /// Whether the cluster's node runs containers, so that checks of real behaviour (logs, exec,
    /// HTTP) apply.
    fn runs_containers(&self) -> bool;

    /// Where the cluster and its session's terminal are: the Docker network they share, or on
    /// `kubernetes` the namespace.
    fn network_of(&self, name: &ClusterName) -> String;

    /// Creates the cluster and waits until its API answers and a node is Ready. On failure
    /// everything it made is removed before the error is returned.
    async fn create(&self, spec: &ClusterSpec) -> Result<Cluster, ClusterError>;

    /// Removes the cluster and all it owns; deleting what is already gone succeeds.
    async fn delete(&self, name: &ClusterName) -> Result<(), ClusterError>;

    /// Every cluster this platform instance owns on this host, whole or partial.
    async fn list(&self) -> Result<Vec<ClusterName>, ClusterError>;

    /// How the cluster is doing right now.
    async fn health(&self, name: &ClusterName) -> Result<ClusterHealth, ClusterError>;

    /// Starts again whatever of the cluster stopped; what it found. A part that cannot start
    /// is an error.
    async fn revive(&self, name: &ClusterName) -> Result<Members, ClusterError>;

    /// Whether the provider can create clusters at all (its tools and images are present);
    /// the reason when not. Shown by `/readyz`.
    async fn ready(&self) -> Result<(), String>;

    /// What holds learners' pods in, when the operator had to choose it; shown by `/readyz`.
    fn containment(&self) -> Option<String> {
        None
    }
}

/// The provider the settings choose.
pub fn provider(
    settings: &ClusterSettings,
    docker: DockerEngine,
) -> Result<Arc<dyn ClusterProvider>, ClusterError> {
    Ok(match settings.provider {
        ProviderKind::Lite => Arc::new(
            LiteProvider::new(
                docker,
                settings.lite_bin_dir.clone(),
                &settings.state_dir,
                &settings.instance,
            )?
            .with_subnet_pool(settings.subnet_pool),
        ),
        ProviderKind::Kind => Arc::new(
            KindProvider::new(
                docker,
                settings.kind.clone(),
                &settings.state_dir,
                &settings.instance,
            )?
            .with_subnet_pool(settings.subnet_pool),
        ),
        ProviderKind::Kubernetes => Arc::new(kubernetes::KubernetesProvider::new(
            &settings.kubernetes,
            &settings.instance,
        )),
    })
}

/// Finishes a create: logs how it went and, when it failed, removes whatever it made before the
/// error goes back to the caller.
async fn settle(
    provider: &(impl ClusterProvider + ?Sized),
    spec: &ClusterSpec,
    started: std::time::Instant,
    created: Result<Cluster, ClusterError>,
) -> Result<Cluster, ClusterError> {
    let (provider_kind, cluster) = (provider.kind(), &spec.name);
    match &created {
        Ok(_) => {
            let elapsed_ms = started.elapsed().as_millis() as u64;
            tracing::info!(provider = provider_kind, %cluster, elapsed_ms, "cluster ready");
        }
        Err(error) => {
            tracing::warn!(provider = provider_kind, %cluster, %error, "cluster failed; removing what was made");
            if let Err(cleanup) = provider.delete(cluster).await {
                tracing::error!(provider = provider_kind, %cluster, error = %cleanup, "rollback failed");
            }
        }
    }
    created
}

/// A provider's state folder: only the platform may read the keys it will hold.
pub(crate) fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// The API's own `/readyz` and the count of Ready nodes, through kube-rs.
pub async fn probe_health(client: &kube::Client) -> ClusterHealth {
    let api_ready = client
        .request_text(
            http::Request::get("/readyz")
                .body(Vec::new())
                .expect("a static request"),
        )
        .await
        .is_ok_and(|body| body.trim() == "ok");
    let ready_nodes = match Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
    {
        Ok(nodes) => nodes.items.iter().filter(|node| node_is_ready(node)).count(),
        Err(_) => 0,
    };
    ClusterHealth {
        api_ready,
        ready_nodes,
    }
}

fn node_is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conds| conds.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Polls until the cluster is healthy, or fails after `limit`.
pub async fn wait_until_healthy(client: &kube::Client, limit: Duration) -> Result<(), ClusterError> {
    let poll = async {
        loop {
            if probe_health(client).await.is_healthy() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::time::timeout(limit, poll)
        .await
        .map_err(|_| ClusterError::Timeout {
            what: "the cluster becoming ready".into(),
            limit,
        })
}
