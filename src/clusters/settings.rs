//! The clusters' own settings; `configuration` reads them from the environment.

use std::{collections::BTreeMap, path::PathBuf, str::FromStr, time::Duration};

use super::{KindConfig, SubnetPool};
use crate::domain::PortRanges;

/// Which [`ClusterProvider`](super::ClusterProvider) makes sessions' clusters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    Lite,
    Kind,
    Kubernetes,
}

impl ProviderKind {
    /// Whether sessions are containers of this machine's Docker engine, kept off the host by its
    /// firewall (`lite`, `kind`), rather than tenants of a host cluster held by its policies.
    pub fn on_docker(self) -> bool {
        !matches!(self, Self::Kubernetes)
    }
}

impl FromStr for ProviderKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "lite" => Ok(Self::Lite),
            "kind" => Ok(Self::Kind),
            "kubernetes" => Ok(Self::Kubernetes),
            _ => Err("expected `lite`, `kind` or `kubernetes`".into()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ClusterSettings {
    pub provider: ProviderKind,
    /// `PLATFORM_INSTANCE`: which of the engine's clusters are this platform's. Unset, it is
    /// empty here and the database's own name is taken when the state is built
    /// ([`crate::store::Store::platform_instance`]).
    pub instance: String,
    /// Clusters' keys and kubeconfigs (`STATE_DIR`), kept private (0700).
    pub state_dir: PathBuf,
    /// Where kwokctl and kubectl for `lite` live (`LITE_BIN_DIR`; scripts/setup.sh sets it).
    pub lite_bin_dir: Option<PathBuf>,
    pub kind: KindConfig,
    pub kubernetes: HostSettings,
    pub ports: PortRanges,
    /// How often the reconciler compares clusters with the database.
    pub reconcile_every: Duration,
    /// `SESSION_SUBNET_POOL`: the private range session networks are cut from.
    pub subnet_pool: SubnetPool,
}

/// The ClusterRole a session's namespace binds to the platform (deploy/kubernetes/10-rbac.yaml).
pub const SESSION_ROLE: &str = "ckad-platform-sessions";

/// The `kubernetes` provider's host cluster.
#[derive(Debug, Clone)]
pub struct HostSettings {
    /// `HOST_KUBECONFIG`: the host's kubeconfig, for a platform outside the host (a developer's
    /// machine, the tests), which reaches sessions' APIs through port-forwards. Unset, the
    /// platform runs in the host with its service account and reaches them at their Services.
    pub kubeconfig: Option<PathBuf>,
    /// `HOST_IMAGE_REGISTRY`: the prefix of `lite`'s images on the host's nodes
    /// (`registry.example:5000/`); empty when they were loaded onto the nodes.
    pub image_registry: String,
    /// `PLATFORM_POD_LABELS` (`key=value,...`): in the host, the labels of the platform's pods,
    /// the only pods of its namespace that sessions' network policies let reach their APIs
    /// (empty: every pod of the platform's namespace).
    pub platform_pod_labels: BTreeMap<String, String>,
    /// `HOST_SESSION_ROLE`: the ClusterRole of what a session is made of, which the platform
    /// binds to itself in each session namespace it makes (it holds it nowhere else).
    pub session_role: String,
}

impl Default for HostSettings {
    fn default() -> Self {
        Self {
            kubeconfig: None,
            image_registry: String::new(),
            platform_pod_labels: BTreeMap::new(),
            session_role: SESSION_ROLE.to_owned(),
        }
    }
}
