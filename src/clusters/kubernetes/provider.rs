//! `CLUSTER_PROVIDER=kubernetes`: [`HostCluster`] behind [`ClusterProvider`]. In the host (the
//! platform as pods there) a session's API is reached at its Service's address, which its
//! kubeconfig names, from every replica. Outside it (`HOST_KUBECONFIG`) each session gets an
//! [`ApiTunnel`] on the API port the session was given, held while this process lives.

use std::{collections::HashMap, sync::Mutex};

use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::Api;
use tokio::sync::OnceCell;

use super::{
    bring_up, ApiTunnel, ControlPlaneImages, HostCluster, PlatformPeer, CONTROL_PLANE, PLATFORM_SECRET,
};
use crate::clusters::{
    probe_health, settle, Cluster, ClusterError, ClusterHealth, ClusterName, ClusterProvider, ClusterSpec,
    HostSettings, Kubeconfig, Members,
};

pub struct KubernetesProvider {
    settings: HostSettings,
    instance: String,
    /// Made on first use: [`crate::clusters::provider`] cannot wait for a kubeconfig to load.
    host: OnceCell<Host>,
    /// Outside the host: each session's tunnel to its API, by cluster.
    tunnels: Mutex<HashMap<ClusterName, ApiTunnel>>,
}

struct Host {
    client: kube::Client,
    sessions: HostCluster,
}

/// The host's client configuration: the kubeconfig the settings name, or the service account's.
async fn host_config(settings: &HostSettings) -> Result<kube::Config, ClusterError> {
    match &settings.kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| ClusterError::Kubeconfig(format!("{}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(file, &Default::default())
                .await
                .map_err(|e| ClusterError::Kubeconfig(format!("{}: {e}", path.display())))
        }
        None => kube::Config::incluster().map_err(|e| {
            ClusterError::Unavailable(format!(
                "not running in a Kubernetes cluster ({e}); HOST_KUBECONFIG names the host from outside"
            ))
        }),
    }
}

/// A client of the host cluster, for the terminals' pods.
pub async fn host_client(settings: &HostSettings) -> Result<kube::Client, ClusterError> {
    Ok(kube::Client::try_from(host_config(settings).await?)?)
}

impl KubernetesProvider {
    pub fn new(settings: &HostSettings, instance: &str) -> Self {
        Self {
            settings: settings.clone(),
            instance: instance.to_owned(),
            host: OnceCell::new(),
            tunnels: Mutex::default(),
        }
    }

    fn outside(&self) -> bool {
        self.settings.kubeconfig.is_some()
    }

    async fn host(&self) -> Result<&Host, ClusterError> {
        self.host
            .get_or_try_init(|| async {
                let config = host_config(&self.settings).await?;
                // In the host, the sessions' policies let the platform's own pods in.
                let platform = (!self.outside()).then(|| PlatformPeer {
                    namespace: config.default_namespace.clone(),
                    pod_labels: self.settings.platform_pod_labels.clone(),
                });
                let client = kube::Client::try_from(config)?;
                let images = ControlPlaneImages::pinned(&self.settings.image_registry);
                let sessions = HostCluster::new(client.clone(), &self.instance, images, platform)
                    .with_session_role(&self.settings.session_role);
                Ok::<_, ClusterError>(Host { client, sessions })
            })
            .await
    }

    fn tunnel_server(&self, name: &ClusterName) -> Option<String> {
        let tunnels = self.tunnels.lock().expect("tunnels lock");
        tunnels.get(name).map(ApiTunnel::server)
    }

    /// `kubeconfig` (which names the Service) as this process reaches the session's API.
    fn reached(&self, name: &ClusterName, kubeconfig: Kubeconfig) -> Result<Kubeconfig, ClusterError> {
        if !self.outside() {
            return Ok(kubeconfig);
        }
        match self.tunnel_server(name) {
            Some(server) => kubeconfig.with_server(&server),
            // Tunnels end with the process that opened them.
            None => Err(ClusterError::Unavailable(format!(
                "no tunnel to the API of {name} in this process"
            ))),
        }
    }

    async fn try_create(&self, spec: &ClusterSpec) -> Result<Cluster, ClusterError> {
        let host = self.host().await?;
        let made = host.sessions.create(&spec.name).await?;
        if self.outside() {
            let tunnel = ApiTunnel::open(host.client.clone(), &made.namespace, spec.ports.api).await?;
            let mut tunnels = self.tunnels.lock().expect("tunnels lock");
            tunnels.insert(spec.name.clone(), tunnel);
        }
        let admin_kubeconfig = self.reached(&spec.name, made.platform_kubeconfig)?;
        bring_up(&admin_kubeconfig.client().await?).await?;
        Ok(Cluster {
            name: spec.name.clone(),
            api_endpoint: admin_kubeconfig.server().unwrap_or_default(),
            admin_kubeconfig,
            terminal_kubeconfig: made.terminal_kubeconfig,
            network: made.namespace,
        })
    }
}

#[async_trait::async_trait]
impl ClusterProvider for KubernetesProvider {
    fn kind(&self) -> &'static str {
        "kubernetes"
    }

    fn runs_containers(&self) -> bool {
        // kwok simulates the session's node, as on `lite`.
        false
    }

    /// The session's namespace, where its control plane and terminal are.
    fn network_of(&self, name: &ClusterName) -> String {
        name.to_string()
    }

    async fn create(&self, spec: &ClusterSpec) -> Result<Cluster, ClusterError> {
        let started = std::time::Instant::now();
        let created = self.try_create(spec).await;
        settle(self, spec, started, created).await
    }

    async fn delete(&self, name: &ClusterName) -> Result<(), ClusterError> {
        // Dropped here, the tunnel closes.
        self.tunnels.lock().expect("tunnels lock").remove(name);
        self.host().await?.sessions.delete(name).await
    }

    async fn list(&self) -> Result<Vec<ClusterName>, ClusterError> {
        self.host().await?.sessions.list().await
    }

    /// Through the platform's kubeconfig in the session's namespace, which every replica reads.
    async fn health(&self, name: &ClusterName) -> Result<ClusterHealth, ClusterError> {
        let secrets = Api::<Secret>::namespaced(self.host().await?.client.clone(), name.as_str());
        let secret = secrets
            .get_opt(PLATFORM_SECRET)
            .await?
            .ok_or_else(|| ClusterError::NotFound(name.clone()))?;
        let yaml = secret
            .data
            .and_then(|mut data| data.remove("config"))
            .ok_or_else(|| ClusterError::Kubeconfig(format!("{PLATFORM_SECRET} of {name} holds none")))?;
        let yaml = String::from_utf8(yaml.0).map_err(|e| ClusterError::Kubeconfig(e.to_string()))?;
        let client = self.reached(name, Kubeconfig::from_yaml(yaml)?)?.client().await?;
        Ok(probe_health(&client).await)
    }

    async fn ready(&self) -> Result<(), String> {
        let host = self.host().await.map_err(|e| e.to_string())?;
        host.client
            .apiserver_version()
            .await
            .map(drop)
            .map_err(|e| format!("the host cluster's API: {e}"))
    }

    /// The host's kubelet restarts the control plane's containers by itself; a pod that is gone
    /// or ended is not made again.
    async fn revive(&self, name: &ClusterName) -> Result<Members, ClusterError> {
        let pods = Api::<Pod>::namespaced(self.host().await?.client.clone(), name.as_str());
        let Some(pod) = pods.get_opt(CONTROL_PLANE).await? else {
            return Ok(Members::Gone);
        };
        let phase = pod.status.and_then(|s| s.phase);
        if pod.metadata.deletion_timestamp.is_some()
            || matches!(phase.as_deref(), Some("Failed" | "Succeeded"))
        {
            return Ok(Members::Gone);
        }
        if self.outside() && self.tunnel_server(name).is_none() {
            return Err(ClusterError::Unavailable(
                "its API tunnel ended with an earlier run of the platform".into(),
            ));
        }
        Ok(Members::Running)
    }
}
