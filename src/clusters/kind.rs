//! `kind`: a full single-node KIND cluster per session, for operators' VMs (it needs privileged
//! containers and, unless the node image is already loaded, a registry to pull it from).
//! Follows the first seed's section 5: its config template, ports from the pool, the cluster on
//! its own Docker network, kubeconfigs written 0600, the `--internal` one for the terminal.

use std::{
    ffi::OsStr,
    path::{Path, PathBuf},
    time::Duration,
};

use tokio::sync::Mutex;

use super::{
    command, network::Networks, probe_health, settle, wait_until_healthy, Cluster, ClusterError,
    ClusterHealth, ClusterName, ClusterProvider, ClusterSpec, Kubeconfig,
};
use crate::{docker::DockerEngine, domain::PortSet};

const CREATE_LIMIT: Duration = Duration::from_secs(300);
/// The seed's validation: nodes listed within 30 s.
const VALIDATE_LIMIT: Duration = Duration::from_secs(30);
const COMMAND_LIMIT: Duration = Duration::from_secs(120);
const NETWORK_PREFIX: &str = "kind-";

#[derive(Debug, Clone, Default)]
pub struct KindConfig {
    /// `kind` binary; found on PATH when unset.
    pub binary: Option<PathBuf>,
    /// A node image to use instead of kind's default (e.g. one loaded ahead of time).
    pub node_image: Option<String>,
}

pub struct KindProvider {
    networks: Networks,
    config: KindConfig,
    /// Config files and kubeconfigs, one set per cluster, private to the platform.
    dir: PathBuf,
    /// kind reads its network from the environment of each create; one create at a time keeps
    /// a shared Docker daemon's view simple and memory bounded.
    creating: Mutex<()>,
}

/// The seed's `kind-config-template.yaml`, with the pool's ports.
pub fn render_config(ports: &PortSet) -> String {
    format!(
        r#"kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
    extraPortMappings:
      - containerPort: 6443
        hostPort: {api}
        protocol: TCP
      - containerPort: 80
        hostPort: {ingress}
        protocol: TCP
      - containerPort: 443
        hostPort: {ingress_https}
        protocol: TCP
    kubeadmConfigPatches:
      - |
        kind: InitConfiguration
        nodeRegistration:
          kubeletExtraArgs:
            system-reserved: memory=256Mi
            eviction-hard: memory.available<100Mi
"#,
        api = ports.api,
        ingress = ports.ingress,
        ingress_https = ports.ingress_https,
    )
}

impl KindProvider {
    pub fn new(
        docker: DockerEngine,
        config: KindConfig,
        state_dir: &Path,
        instance: &str,
    ) -> std::io::Result<Self> {
        let dir = state_dir.join("kind");
        super::create_private_dir(&dir)?;
        let networks = Networks::new(docker, "kind", instance);
        Ok(Self {
            networks,
            config,
            dir,
            creating: Mutex::new(()),
        })
    }

    /// Session networks take their subnets from `pool` instead of the default one.
    pub fn with_subnet_pool(self, pool: super::SubnetPool) -> Self {
        Self {
            networks: self.networks.with_pool(pool),
            ..self
        }
    }

    fn binary(&self) -> PathBuf {
        self.config
            .binary
            .clone()
            .unwrap_or_else(|| PathBuf::from("kind"))
    }

    fn file(&self, name: &ClusterName, suffix: &str) -> PathBuf {
        self.dir.join(format!("{name}{suffix}"))
    }

    async fn kind(
        &self,
        args: &[&str],
        envs: &[(&str, &OsStr)],
        limit: Duration,
    ) -> Result<String, ClusterError> {
        command::run(&self.binary(), args, envs, limit).await
    }

    async fn try_create(&self, spec: &ClusterSpec, network: &str) -> Result<Cluster, ClusterError> {
        let name = spec.name.as_str();
        self.networks.create(network, &spec.name, &[], &[]).await?;

        let config = self.file(&spec.name, ".kind-config.yaml");
        write_private(&config, &render_config(&spec.ports)).await?;
        let config_arg = config.to_string_lossy();
        let mut args = vec![
            "create",
            "cluster",
            "--name",
            name,
            "--config",
            &config_arg,
            "--wait",
            "0s",
        ];
        if let Some(image) = &self.config.node_image {
            args.extend(["--image", image]);
        }
        let envs: [(&str, &OsStr); 1] = [("KIND_EXPERIMENTAL_DOCKER_NETWORK", OsStr::new(network))];
        self.kind(&args, &envs, CREATE_LIMIT).await?;

        let admin = self
            .kind(&["get", "kubeconfig", "--name", name], &[], COMMAND_LIMIT)
            .await?;
        let internal = self
            .kind(
                &["get", "kubeconfig", "--internal", "--name", name],
                &[],
                COMMAND_LIMIT,
            )
            .await?;
        write_private(&self.file(&spec.name, ".kubeconfig"), &admin).await?;
        let admin_kubeconfig = Kubeconfig::from_yaml(admin)?;
        let terminal_kubeconfig = Kubeconfig::from_yaml(internal)?;
        let client = admin_kubeconfig.client().await?;
        wait_until_healthy(&client, VALIDATE_LIMIT).await?;
        Ok(Cluster {
            name: spec.name.clone(),
            api_endpoint: admin_kubeconfig.server().unwrap_or_default(),
            admin_kubeconfig,
            terminal_kubeconfig,
            network: network.to_owned(),
        })
    }
}

#[async_trait::async_trait]
impl ClusterProvider for KindProvider {
    fn kind(&self) -> &'static str {
        "kind"
    }

    fn network_of(&self, name: &ClusterName) -> String {
        format!("{NETWORK_PREFIX}{name}")
    }

    async fn create(&self, spec: &ClusterSpec) -> Result<Cluster, ClusterError> {
        let _one_at_a_time = self.creating.lock().await;
        let started = std::time::Instant::now();
        let created = self
            .try_create(spec, &format!("{NETWORK_PREFIX}{}", spec.name))
            .await;
        settle(self, spec, started, created).await
    }

    async fn delete(&self, name: &ClusterName) -> Result<(), ClusterError> {
        // kind deletes a cluster that does not exist without complaint.
        self.kind(
            &["delete", "cluster", "--name", name.as_str()],
            &[],
            COMMAND_LIMIT,
        )
        .await?;
        self.networks.remove(&format!("{NETWORK_PREFIX}{name}")).await?;
        for suffix in [".kind-config.yaml", ".kubeconfig"] {
            match tokio::fs::remove_file(self.file(name, suffix)).await {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        }
        Ok(())
    }

    async fn list(&self) -> Result<Vec<ClusterName>, ClusterError> {
        // Our networks (made before `kind create`) and our files; `kind get clusters` would also
        // name clusters that are not ours.
        let mut names = self.networks.clusters().await?;
        let mut files = tokio::fs::read_dir(&self.dir).await?;
        while let Some(entry) = files.next_entry().await? {
            let file = entry.file_name().to_string_lossy().into_owned();
            let stem = file
                .strip_suffix(".kind-config.yaml")
                .or_else(|| file.strip_suffix(".kubeconfig"));
            names.extend(stem.and_then(|n| ClusterName::parse(n).ok()));
        }
        Ok(names.into_iter().collect())
    }

    async fn health(&self, name: &ClusterName) -> Result<ClusterHealth, ClusterError> {
        let yaml = match tokio::fs::read_to_string(self.file(name, ".kubeconfig")).await {
            Ok(yaml) => yaml,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ClusterError::NotFound(name.clone()))
            }
            Err(e) => return Err(e.into()),
        };
        let client = Kubeconfig::from_yaml(yaml)?.client().await?;
        Ok(probe_health(&client).await)
    }

    async fn ready(&self) -> Result<(), String> {
        self.kind(&["version"], &[], COMMAND_LIMIT)
            .await
            .map_err(|e| e.to_string())?;
        self.networks
            .clusters()
            .await
            .map(drop)
            .map_err(|e| format!("Docker engine: {e}"))
    }
}

/// Writes a file only its owner can read (configs and kubeconfigs carry keys and ports).
async fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .await?;
    file.write_all(contents.as_bytes()).await?;
    file.sync_all().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_is_the_seeds_template_with_the_pools_ports() {
        let config = render_config(&PortSet {
            api: 30001,
            ingress: 40002,
            ingress_https: 45003,
        });
        let doc: serde_yaml::Value = serde_yaml::from_str(&config).unwrap();
        assert_eq!(doc["kind"], "Cluster");
        assert_eq!(doc["apiVersion"], "kind.x-k8s.io/v1alpha4");
        let node = &doc["nodes"][0];
        assert_eq!(node["role"], "control-plane");
        let mappings: Vec<(u64, u64)> = node["extraPortMappings"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["containerPort"].as_u64().unwrap(),
                    m["hostPort"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(mappings, [(6443, 30001), (80, 40002), (443, 45003)]);
        let patch = node["kubeadmConfigPatches"][0].as_str().unwrap();
        assert!(patch.contains("system-reserved: memory=256Mi"));
        assert!(patch.contains("eviction-hard: memory.available<100Mi"));
    }
}
