//! A kubeconfig held as text. It carries client keys, so it never prints.

use std::{fmt, sync::Arc};

use kube::config::{KubeConfigOptions, Kubeconfig as KubeconfigFile};

use super::ClusterError;

#[derive(Clone, PartialEq, Eq)]
pub struct Kubeconfig(Arc<str>);

impl fmt::Debug for Kubeconfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Kubeconfig(<redacted>)")
    }
}

impl Kubeconfig {
    pub fn from_yaml(yaml: impl Into<Arc<str>>) -> Result<Self, ClusterError> {
        let yaml = yaml.into();
        KubeconfigFile::from_yaml(&yaml).map_err(|e| ClusterError::Kubeconfig(e.to_string()))?;
        Ok(Self(yaml))
    }

    /// The file's text, for where it must be written (a terminal's read-only volume).
    pub fn yaml(&self) -> &str {
        &self.0
    }

    fn parsed(&self) -> KubeconfigFile {
        KubeconfigFile::from_yaml(&self.0).expect("checked when made")
    }

    /// The API server address of its current context.
    pub fn server(&self) -> Option<String> {
        self.parsed()
            .clusters
            .into_iter()
            .find_map(|c| c.cluster.and_then(|c| c.server))
    }

    /// The same credentials, pointed at another address of the same API server.
    pub fn with_server(&self, server: &str) -> Result<Self, ClusterError> {
        let mut file = self.parsed();
        for named in &mut file.clusters {
            if let Some(cluster) = named.cluster.as_mut() {
                cluster.server = Some(server.to_owned());
            }
        }
        let yaml = serde_yaml::to_string(&file).map_err(|e| ClusterError::Kubeconfig(e.to_string()))?;
        Self::from_yaml(yaml)
    }

    /// A kube-rs client for its current context.
    pub async fn client(&self) -> Result<kube::Client, ClusterError> {
        let config = kube::Config::from_custom_kubeconfig(self.parsed(), &KubeConfigOptions::default())
            .await
            .map_err(|e| ClusterError::Kubeconfig(e.to_string()))?;
        Ok(kube::Client::try_from(config)?)
    }
}
