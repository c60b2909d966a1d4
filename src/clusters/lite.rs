//! `lite`: a real control plane per session (etcd, kube-apiserver, kube-controller-manager,
//! kube-scheduler) with kwok simulating a Ready node and pod lifecycles, run by kwokctl's Docker
//! runtime from images built locally from binaries compiled from source (scripts/build-lite.sh).
//!
//! Each cluster lives in containers on its own network `kwok-<name>`, created here first so that
//! it carries our labels and publishes the API on 127.0.0.1 only. The platform reaches the API at
//! 127.0.0.1:<api port>; the session's terminal, joining the same network, at
//! `kwok-<name>-kube-apiserver:6443`. Delete removes the containers, the network and the state.

use std::{
    collections::HashMap,
    ffi::OsStr,
    path::{Path, PathBuf},
    time::Duration,
};

use bollard::{
    models::ContainerUpdateBody,
    query_parameters::{ListContainersOptions, RemoveContainerOptions},
};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, PostParams};

use super::{
    command,
    network::{revive_cluster, Members, Networks},
    probe_health, settle, wait_until_healthy, Cluster, ClusterError, ClusterHealth, ClusterName,
    ClusterProvider, ClusterSpec, Kubeconfig,
};
use crate::docker::DockerEngine;

const CREATE_LIMIT: Duration = Duration::from_secs(120);
const READY_LIMIT: Duration = Duration::from_secs(60);
/// Removing a cluster's containers, however many removals of it run at once.
const REMOVE_LIMIT: Duration = Duration::from_secs(60);
/// kwokctl names a cluster's network, containers and labels after this project name.
const PROJECT_PREFIX: &str = "kwok-";
/// The simulated worker every cluster gets.
const NODE_NAME: &str = "node01";
/// Each control-plane container's ceiling in MiB, so that a learner's cluster cannot take the
/// host's memory (the same for CPU and processes below). Several times what each uses at idle.
pub(super) const MEMORY_MIB: [(&str, i64); 5] = [
    ("etcd", 384),
    ("kube-apiserver", 768),
    ("kube-controller-manager", 256),
    ("kube-scheduler", 128),
    ("kwok-controller", 128),
];
pub(super) const NANO_CPUS: i64 = 1_000_000_000;
const PIDS: i64 = 256;
/// etcd's backend quota (`--quota-backend-bytes`): a learner writing objects in a loop meets it
/// ("database space exceeded") long before the host's disk fills; practice uses a few MiB.
pub(super) const ETCD_QUOTA_BYTES: u64 = 64 * 1024 * 1024;

/// The component versions, shared with the build script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiteVersions {
    pub kubernetes: String,
    pub etcd: String,
    pub kwok: String,
}

impl LiteVersions {
    /// The versions this server was built with (`scripts/lite-versions.env`).
    pub fn pinned() -> Self {
        let file = include_str!("../../scripts/lite-versions.env");
        let values: HashMap<&str, &str> = file
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| line.split_once('='))
            .collect();
        let get = |key: &str| {
            values
                .get(key)
                .expect("lite-versions.env names every version")
                .to_string()
        };
        Self {
            kubernetes: get("KUBERNETES"),
            etcd: get("ETCD"),
            kwok: get("KWOK"),
        }
    }

    /// The image kwokctl runs per component; the tag is the version it reads.
    fn images(&self) -> [(&'static str, String); 5] {
        [
            ("--etcd-image", image("etcd", &self.etcd)),
            (
                "--kube-apiserver-image",
                image("kube-apiserver", &self.kubernetes),
            ),
            (
                "--kube-controller-manager-image",
                image("kube-controller-manager", &self.kubernetes),
            ),
            (
                "--kube-scheduler-image",
                image("kube-scheduler", &self.kubernetes),
            ),
            ("--kwok-controller-image", image("kwok", &self.kwok)),
        ]
    }
}

/// The local name of a component's image (scripts/build-lite.sh): the tag is its version.
pub(super) fn image(component: &str, version: &str) -> String {
    format!("ckad-lite/{component}:{version}")
}

/// What every cluster's components get beyond kwokctl's defaults.
fn kwokctl_config() -> String {
    format!(
        "kind: KwokctlConfiguration
apiVersion: config.kwok.x-k8s.io/v1alpha1
componentsPatches:
  - name: etcd
    extraArgs:
      - key: quota-backend-bytes
        value: \"{ETCD_QUOTA_BYTES}\"
"
    )
}

pub struct LiteProvider {
    docker: DockerEngine,
    networks: Networks,
    /// Holds kwokctl and kubectl (kwokctl probes readiness with kubectl).
    bin_dir: Option<PathBuf>,
    /// kwokctl's work directory: one folder per cluster with its PKI and kubeconfig.
    workdir: PathBuf,
    versions: LiteVersions,
}

impl LiteProvider {
    /// `state_dir` is created private (0700): it will hold every cluster's keys.
    pub fn new(
        docker: DockerEngine,
        bin_dir: Option<PathBuf>,
        state_dir: &Path,
        instance: &str,
    ) -> std::io::Result<Self> {
        let workdir = state_dir.join("lite");
        super::create_private_dir(&workdir)?;
        std::fs::write(workdir.join("kwokctl.yaml"), kwokctl_config())?;
        let networks = Networks::new(docker.clone(), "lite", instance);
        Ok(Self {
            docker,
            networks,
            bin_dir,
            workdir,
            versions: LiteVersions::pinned(),
        })
    }

    /// Session networks take their subnets from `pool` instead of the default one.
    pub fn with_subnet_pool(self, pool: super::SubnetPool) -> Self {
        Self {
            networks: self.networks.with_pool(pool),
            ..self
        }
    }

    fn cluster_dir(&self, name: &ClusterName) -> PathBuf {
        self.workdir.join("clusters").join(name.as_str())
    }

    fn bin_dir(&self) -> Result<&Path, ClusterError> {
        self.bin_dir
            .as_deref()
            .ok_or_else(|| ClusterError::Unavailable("LITE_BIN_DIR is not set".into()))
    }

    async fn kwokctl(&self, args: &[&str], limit: Duration) -> Result<String, ClusterError> {
        let bin_dir = self.bin_dir()?;
        let inherited = std::env::var_os("PATH").unwrap_or_default();
        let path = std::env::join_paths(
            std::iter::once(bin_dir.to_owned()).chain(std::env::split_paths(&inherited)),
        )
        .map_err(|e| ClusterError::Unavailable(format!("LITE_BIN_DIR cannot go on PATH: {e}")))?;
        let envs: [(&str, &OsStr); 2] = [("KWOK_WORKDIR", self.workdir.as_os_str()), ("PATH", &path)];
        command::run(&bin_dir.join("kwokctl"), args, &envs, limit).await
    }

    /// The cluster's network, made before kwokctl (which reuses it) so that ports publish on
    /// loopback only and our labels are on it.
    async fn create_network(&self, name: &ClusterName) -> Result<String, ClusterError> {
        let network = format!("{PROJECT_PREFIX}{name}");
        let labels = [("com.docker.compose.project", network.as_str())];
        let options = [("com.docker.network.bridge.host_binding_ipv4", "127.0.0.1")];
        self.networks.create(&network, name, &labels, &options).await?;
        Ok(network)
    }

    async fn try_create(&self, spec: &ClusterSpec) -> Result<Cluster, ClusterError> {
        let name = &spec.name;
        let network = self.create_network(name).await?;
        let api_port = spec.ports.api.to_string();
        let images = self.versions.images();
        let mut args = vec![
            "create",
            "cluster",
            "--name",
            name.as_str(),
            "--runtime",
            "docker",
            "--kube-apiserver-port",
            &api_port,
            // RBAC and admission (quotas, limit ranges) as on a real cluster: CKAD tasks use both.
            "--kube-authorization",
            "--kube-admission",
            "--quiet-pull",
            "--wait",
            "0s",
            // Never touch the operator's own ~/.kube/config.
            "--kubeconfig",
            "",
        ];
        for (flag, image) in &images {
            args.extend([*flag, image.as_str()]);
        }
        let config = self.workdir.join("kwokctl.yaml");
        let config = config.to_string_lossy();
        args.extend(["--config", &config]);
        self.kwokctl(&args, CREATE_LIMIT).await?;
        self.limit_containers(name).await?;

        let written = tokio::fs::read_to_string(self.cluster_dir(name).join("kubeconfig.yaml")).await?;
        let api_endpoint = format!("https://127.0.0.1:{}", spec.ports.api);
        let admin_kubeconfig = Kubeconfig::from_yaml(written)?
            .with_files_embedded()?
            .with_server(&api_endpoint)?;
        let client = admin_kubeconfig.client().await?;
        wait_until_api_answers(&client).await?;
        add_simulated_node(&client).await?;
        wait_until_healthy(&client, READY_LIMIT).await?;

        let terminal_kubeconfig =
            admin_kubeconfig.with_server(&format!("https://{PROJECT_PREFIX}{name}-kube-apiserver:6443"))?;
        Ok(Cluster {
            name: name.clone(),
            admin_kubeconfig,
            terminal_kubeconfig,
            api_endpoint,
            network,
        })
    }

    /// Caps each control-plane container's memory, CPU and processes (kwokctl sets none).
    async fn limit_containers(&self, name: &ClusterName) -> Result<(), ClusterError> {
        let docker = self.docker.client().await?;
        for (component, mib) in MEMORY_MIB {
            let limits = ContainerUpdateBody {
                memory: Some(mib * 1024 * 1024),
                memory_swap: Some(mib * 1024 * 1024),
                nano_cpus: Some(NANO_CPUS),
                pids_limit: Some(PIDS),
                ..Default::default()
            };
            docker
                .update_container(&format!("{PROJECT_PREFIX}{name}-{component}"), limits)
                .await?;
        }
        Ok(())
    }

    async fn admin_kubeconfig(&self, name: &ClusterName) -> Result<Kubeconfig, ClusterError> {
        match tokio::fs::read_to_string(self.cluster_dir(name).join("kubeconfig.yaml")).await {
            Ok(yaml) => Kubeconfig::from_yaml(yaml),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ClusterError::NotFound(name.clone())),
            Err(e) => Err(e.into()),
        }
    }

    /// Containers of the cluster's project, found by kwokctl's project label. A create killed
    /// half way may have a `docker create` of its own still landing, so removal repeats until the
    /// label finds nothing twice in a row. Another removal of the same cluster (a session's end
    /// and the reconciler's) makes Docker answer 409 at once while its own takes seconds on a
    /// loaded host, so the rounds are paced and bounded by time, not by count.
    async fn remove_containers(&self, name: &ClusterName) -> Result<(), ClusterError> {
        let docker = self.docker.client().await?;
        let filters = HashMap::from([(
            "label".to_owned(),
            vec![format!("com.docker.compose.project={PROJECT_PREFIX}{name}")],
        )]);
        let deadline = tokio::time::Instant::now() + REMOVE_LIMIT;
        let mut quiet_rounds = 0;
        while tokio::time::Instant::now() < deadline {
            let options = ListContainersOptions {
                all: true,
                filters: Some(filters.clone()),
                ..Default::default()
            };
            let containers = docker.list_containers(Some(options)).await?;
            if containers.is_empty() {
                quiet_rounds += 1;
                if quiet_rounds == 2 {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
                continue;
            }
            quiet_rounds = 0;
            for id in containers.into_iter().filter_map(|c| c.id) {
                let options = RemoveContainerOptions {
                    force: true,
                    v: true,
                    ..Default::default()
                };
                // 404: gone already; 409: another removal of it is under way (the next round
                // sees whether it finished).
                match docker.remove_container(&id, Some(options)).await {
                    Ok(())
                    | Err(bollard::errors::Error::DockerResponseServerError {
                        status_code: 404 | 409,
                        ..
                    }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Err(ClusterError::Unavailable(format!(
            "containers of {name} are still there after {REMOVE_LIMIT:?}"
        )))
    }
}

#[async_trait::async_trait]
impl ClusterProvider for LiteProvider {
    fn kind(&self) -> &'static str {
        "lite"
    }

    fn runs_containers(&self) -> bool {
        // kwok simulates the node: pods are Running, nothing runs in them.
        false
    }

    fn network_of(&self, name: &ClusterName) -> String {
        format!("{PROJECT_PREFIX}{name}")
    }

    async fn create(&self, spec: &ClusterSpec) -> Result<Cluster, ClusterError> {
        let started = std::time::Instant::now();
        let created = self.try_create(spec).await;
        settle(self, spec, started, created).await
    }

    /// Removes the containers by label (kwokctl's own delete needs state a killed create may not
    /// have written), then the network and the cluster's folder of keys.
    async fn delete(&self, name: &ClusterName) -> Result<(), ClusterError> {
        self.remove_containers(name).await?;
        self.networks.remove(&format!("{PROJECT_PREFIX}{name}")).await?;
        match tokio::fs::remove_dir_all(self.cluster_dir(name)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    async fn list(&self) -> Result<Vec<ClusterName>, ClusterError> {
        // Our networks (made before anything else of a cluster) and kwokctl's folders.
        let mut names = self.networks.clusters().await?;
        if let Ok(mut dirs) = tokio::fs::read_dir(self.workdir.join("clusters")).await {
            while let Some(entry) = dirs.next_entry().await? {
                names.extend(ClusterName::parse(&entry.file_name().to_string_lossy()).ok());
            }
        }
        Ok(names.into_iter().collect())
    }

    async fn health(&self, name: &ClusterName) -> Result<ClusterHealth, ClusterError> {
        let client = self.admin_kubeconfig(name).await?.client().await?;
        Ok(probe_health(&client).await)
    }

    async fn revive(&self, name: &ClusterName) -> Result<Members, ClusterError> {
        revive_cluster(&self.docker, &self.network_of(name)).await
    }

    async fn ready(&self) -> Result<(), String> {
        let bin_dir = self.bin_dir().map_err(|e| e.to_string())?;
        for tool in ["kwokctl", "kubectl"] {
            if !bin_dir.join(tool).is_file() {
                return Err(format!(
                    "{tool} not found in {} (run scripts/build-lite.sh)",
                    bin_dir.display()
                ));
            }
        }
        let docker = self
            .docker
            .client()
            .await
            .map_err(|e| format!("Docker engine: {e}"))?;
        for (_, image) in self.versions.images() {
            if docker.inspect_image(&image).await.is_err() {
                return Err(format!("image {image} is missing (run scripts/build-lite.sh)"));
            }
        }
        Ok(())
    }
}

/// The API's first answer can take a few seconds after kwokctl returns.
pub(super) async fn wait_until_api_answers(client: &kube::Client) -> Result<(), ClusterError> {
    let poll = async {
        while client.apiserver_version().await.is_err() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(READY_LIMIT, poll)
        .await
        .map_err(|_| ClusterError::Timeout {
            what: "the API server answering".into(),
            limit: READY_LIMIT,
        })
}

/// A worker node that kwok keeps Ready and runs pods on (without containers).
pub(super) async fn add_simulated_node(client: &kube::Client) -> Result<(), ClusterError> {
    let node: Node = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": NODE_NAME,
            "annotations": { "kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0" },
            "labels": {
                "kubernetes.io/hostname": NODE_NAME,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok"
            }
        },
        "status": {
            "allocatable": { "cpu": "16", "memory": "32Gi", "pods": "110" },
            "capacity": { "cpu": "16", "memory": "32Gi", "pods": "110" },
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "kubeletVersion": "kwok",
                "kubeProxyVersion": "kwok"
            }
        }
    }))
    .expect("a valid Node");
    match Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &node)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pinned_versions_follow_the_curriculum() {
        let versions = LiteVersions::pinned();
        assert!(versions.kubernetes.starts_with("v1.35."), "{versions:?}");
        let images = versions.images();
        assert_eq!(
            images[1],
            (
                "--kube-apiserver-image",
                format!("ckad-lite/kube-apiserver:{}", versions.kubernetes)
            )
        );
    }
}
