//! The Docker network of each cluster, made by the platform before the cluster itself and marked
//! with who owns it: the provider, this platform instance, and the cluster. Listing those marks
//! finds every cluster this instance started, however far its create got; other instances on the
//! same engine (a staging beside production, parallel tests) are never touched.

use std::collections::{BTreeSet, HashMap};

use bollard::{models::NetworkCreateRequest, query_parameters::ListNetworksOptions};

use super::{ClusterError, ClusterName};
use crate::docker::DockerEngine;

/// Labels on every network (and, where we make them, container) of the platform.
pub const PLATFORM_LABEL: &str = "ckad.platform";
pub const INSTANCE_LABEL: &str = "ckad.instance";
pub const CLUSTER_LABEL: &str = "ckad.cluster";

pub struct Networks {
    docker: DockerEngine,
    provider: &'static str,
    instance: String,
}

impl Networks {
    pub fn new(docker: DockerEngine, provider: &'static str, instance: &str) -> Self {
        Self {
            docker,
            provider,
            instance: instance.to_owned(),
        }
    }

    /// Creates `network` for `cluster` with our labels plus `labels`, and driver `options`.
    pub async fn create(
        &self,
        network: &str,
        cluster: &ClusterName,
        labels: &[(&str, &str)],
        options: &[(&str, &str)],
    ) -> Result<(), ClusterError> {
        let mut all_labels = HashMap::from([
            (PLATFORM_LABEL.to_owned(), self.provider.to_owned()),
            (INSTANCE_LABEL.to_owned(), self.instance.clone()),
            (CLUSTER_LABEL.to_owned(), cluster.to_string()),
        ]);
        all_labels.extend(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let request = NetworkCreateRequest {
            name: network.to_owned(),
            driver: Some("bridge".into()),
            labels: Some(all_labels),
            options: Some(
                options
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        };
        self.docker.client().await?.create_network(request).await?;
        Ok(())
    }

    /// Removes `network`; one that is already gone is fine.
    pub async fn remove(&self, network: &str) -> Result<(), ClusterError> {
        match self.docker.client().await?.remove_network(network).await {
            Ok(()) | Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The clusters whose networks this instance made.
    pub async fn clusters(&self) -> Result<BTreeSet<ClusterName>, ClusterError> {
        let filters = HashMap::from([(
            "label".to_owned(),
            vec![
                format!("{PLATFORM_LABEL}={}", self.provider),
                format!("{INSTANCE_LABEL}={}", self.instance),
            ],
        )]);
        let networks = self
            .docker
            .client()
            .await?
            .list_networks(Some(ListNetworksOptions {
                filters: Some(filters),
            }))
            .await?;
        Ok(networks
            .into_iter()
            .filter_map(|n| {
                n.labels?
                    .get(CLUSTER_LABEL)
                    .and_then(|c| ClusterName::parse(c).ok())
            })
            .collect())
    }
}
