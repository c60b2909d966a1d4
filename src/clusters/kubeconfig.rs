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

    /// The same file with every certificate and key it names by path carried inline, so that it
    /// works where those paths do not exist (a terminal container, another host).
    pub fn with_files_embedded(&self) -> Result<Self, ClusterError> {
        use base64::{engine::general_purpose::STANDARD, Engine as _};
        let read = |path: &str| -> Result<String, ClusterError> {
            let bytes = std::fs::read(path)
                .map_err(|e| ClusterError::Kubeconfig(format!("cannot read {path}: {e}")))?;
            Ok(STANDARD.encode(bytes))
        };
        let mut file = self.parsed();
        for cluster in file.clusters.iter_mut().filter_map(|n| n.cluster.as_mut()) {
            if let Some(path) = cluster.certificate_authority.take() {
                cluster.certificate_authority_data = Some(read(&path)?);
            }
        }
        for user in file.auth_infos.iter_mut().filter_map(|n| n.auth_info.as_mut()) {
            if let Some(path) = user.client_certificate.take() {
                user.client_certificate_data = Some(read(&path)?);
            }
            if let Some(path) = user.client_key.take() {
                user.client_key_data = Some(secrecy::SecretString::from(read(&path)?));
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
