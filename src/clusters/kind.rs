//! `kind`: a full single-node KIND cluster per session: real pods, logs, exec, Services and DNS.
//! It needs privileged containers. The node image is the offline one scripts/build-kind-node.sh
//! builds (`ckad-kind/node:<version>`) unless `KIND_NODE_IMAGE` names another.
//! Follows the first seed's section 5: its config template, ports from the pool (published on
//! 127.0.0.1 only), the cluster on its own Docker network, kubeconfigs written 0600, the
//! `--internal` one for the terminal. On hosts with cgroup v1 or without CAP_SYS_RESOURCE the
//! config carries what the node then needs (see [`HostQuirks`]).

use std::{
    collections::{HashMap, HashSet},
    ffi::OsStr,
    path::{Path, PathBuf},
    time::Duration,
};

use k8s_openapi::api::{apps::v1::Deployment, core::v1::ServiceAccount};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde::Deserialize as _;
use tokio::sync::Mutex;

use super::{
    command,
    network::{revive_cluster, Members, Networks},
    probe_health, settle, wait_until_healthy, Cluster, ClusterError, ClusterHealth, ClusterName,
    ClusterProvider, ClusterSpec, Kubeconfig,
};
use crate::{docker::DockerEngine, domain::PortSet};

const CREATE_LIMIT: Duration = Duration::from_secs(300);
/// The seed's validation: nodes listed within 30 s.
const VALIDATE_LIMIT: Duration = Duration::from_secs(30);
const COMMAND_LIMIT: Duration = Duration::from_secs(120);
/// Removing a node and its `/var` volume (a copy of the preloaded images) took over two minutes
/// at load average ~40 on 2 cores; an ending may wait, a half-removed cluster helps nobody.
const DELETE_LIMIT: Duration = Duration::from_secs(300);
/// For the `default` ServiceAccount and CoreDNS after the node is Ready.
const SETTLE_LIMIT: Duration = Duration::from_secs(120);
const NETWORK_PREFIX: &str = "kind-";
/// The label kind puts on a cluster's node containers.
const KIND_CLUSTER_LABEL: &str = "io.x-k8s.kind.cluster";

#[derive(Debug, Clone, Default)]
pub struct KindConfig {
    /// `kind` binary; found on PATH when unset.
    pub binary: Option<PathBuf>,
    /// A node image to use instead of [`default_node_image`] (e.g. kind's official one).
    pub node_image: Option<String>,
    /// What holds a learner's pods in; without it the platform refuses `kind`.
    pub containment: Option<NodeContainment>,
}

/// A node is a privileged container: a learner's privileged pod on it can reach the host. The
/// operator says which of two answers holds, and the platform refuses `kind` until one does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeContainment {
    /// `KIND_TRUSTED_LEARNERS=true`: the learners are trusted with the host.
    TrustedLearners,
    /// `KIND_NODE_RUNTIME=<name>`: nodes run under this sandboxing runtime of the engine. It
    /// must be the engine's default runtime: kind has no way to ask for another.
    Runtime(String),
}

impl NodeContainment {
    /// From `KIND_TRUSTED_LEARNERS` and `KIND_NODE_RUNTIME`; a runtime, being the stronger
    /// promise, wins when both are set.
    pub fn from_settings(trusted_learners: bool, runtime: Option<String>) -> Option<Self> {
        match runtime {
            Some(name) => Some(Self::Runtime(name)),
            None if trusted_learners => Some(Self::TrustedLearners),
            None => None,
        }
    }

    /// What `/readyz` says is in force.
    pub fn describe(&self) -> String {
        match self {
            Self::TrustedLearners => {
                "privileged nodes, learners trusted by the operator (KIND_TRUSTED_LEARNERS)".into()
            }
            Self::Runtime(name) => format!("nodes under the engine's runtime {name} (KIND_NODE_RUNTIME)"),
        }
    }
}

/// Why the platform will not run `kind` clusters with `containment`, if it will not: none was
/// chosen, or the runtime named is not the engine's default one.
pub async fn refusal(containment: Option<&NodeContainment>, docker: &DockerEngine) -> Option<String> {
    let name = match containment {
        None => {
            return Some(
                "kind nodes are privileged containers, from which a learner's pod can reach the \
                 host: set KIND_TRUSTED_LEARNERS=true if every learner is trusted with it, or \
                 KIND_NODE_RUNTIME to the sandboxing runtime the engine runs containers with"
                    .into(),
            )
        }
        Some(NodeContainment::TrustedLearners) => return None,
        Some(NodeContainment::Runtime(name)) => name,
    };
    let info = match async { docker.client().await?.info().await }.await {
        Ok(info) => info,
        Err(e) => return Some(format!("KIND_NODE_RUNTIME={name}: Docker engine: {e}")),
    };
    let known = info.runtimes.unwrap_or_default();
    let default = info.default_runtime.unwrap_or_default();
    if !known.contains_key(name) {
        let mut names: Vec<_> = known.into_keys().collect();
        names.sort();
        return Some(format!(
            "KIND_NODE_RUNTIME={name}: the engine has no such runtime (it has {})",
            names.join(", ")
        ));
    }
    (default != *name).then(|| {
        format!(
            "KIND_NODE_RUNTIME={name}: the engine's default runtime is {default}, and kind \
             cannot ask for another; make {name} the engine's default-runtime"
        )
    })
}

/// The node image scripts/build-kind-node.sh builds for the versions this server was built with.
pub fn default_node_image() -> String {
    let versions = [
        include_str!("../../scripts/lite-versions.env"),
        include_str!("../../scripts/kind-node-versions.env"),
    ];
    let get = |key: &str| {
        versions
            .iter()
            .flat_map(|file| file.lines())
            .filter(|line| !line.starts_with('#'))
            .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
            .expect("the version files name every version")
    };
    format!(
        "ckad-kind/node:{}-r{}",
        get("KUBERNETES"),
        get("KIND_NODE_REVISION")
    )
}

/// What this host withholds from a node container, which the node's config must then allow for.
/// Neither is needed on an ordinary VM with cgroup v2.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostQuirks {
    /// Kubernetes 1.35's kubelet refuses cgroup v1 unless told `failCgroupV1: false`.
    pub cgroup_v1: bool,
    /// Without CAP_SYS_RESOURCE nothing may lower an oom_score_adj, so containerd must not try
    /// for pod sandboxes (`restrict_oom_score_adj`).
    pub no_sys_resource: bool,
}

impl HostQuirks {
    /// Read from this host: the cgroup mount and the capability bounding set.
    pub fn detect() -> Self {
        const CAP_SYS_RESOURCE: u32 = 24;
        let bounding = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| {
                let hex = status.lines().find_map(|l| l.strip_prefix("CapBnd:"))?;
                u64::from_str_radix(hex.trim(), 16).ok()
            });
        Self {
            cgroup_v1: !Path::new("/sys/fs/cgroup/cgroup.controllers").exists(),
            no_sys_resource: bounding.is_some_and(|caps| caps & (1 << CAP_SYS_RESOURCE) == 0),
        }
    }
}

pub struct KindProvider {
    docker: DockerEngine,
    networks: Networks,
    config: KindConfig,
    /// Config files and kubeconfigs, one set per cluster, private to the platform.
    dir: PathBuf,
    /// kind reads its network from the environment of each create; one create at a time keeps
    /// a shared Docker daemon's view simple and memory bounded.
    creating: Mutex<()>,
    quirks: HostQuirks,
}

/// The seed's `kind-config-template.yaml`, with the pool's ports on 127.0.0.1 (the API through
/// kind's own `apiServerPort`), and what the host's quirks ask for. kubeadm leaves CoreDNS to
/// [`install_dns`] (kind's own `preflight` stays skipped).
pub fn render_config(ports: &PortSet, quirks: HostQuirks) -> String {
    let mut config = format!(
        r#"kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
networking:
  apiServerAddress: 127.0.0.1
  apiServerPort: {api}
nodes:
  - role: control-plane
    extraPortMappings:
      - containerPort: 80
        hostPort: {ingress}
        listenAddress: 127.0.0.1
        protocol: TCP
      - containerPort: 443
        hostPort: {ingress_https}
        listenAddress: 127.0.0.1
        protocol: TCP
    kubeadmConfigPatches:
      - |
        kind: InitConfiguration
        skipPhases: [preflight, addon/coredns]
        nodeRegistration:
          kubeletExtraArgs:
            system-reserved: memory=256Mi
            eviction-hard: memory.available<100Mi
"#,
        api = ports.api,
        ingress = ports.ingress,
        ingress_https = ports.ingress_https,
    );
    if quirks.cgroup_v1 {
        config.push_str(
            r#"      - |
        kind: KubeletConfiguration
        failCgroupV1: false
"#,
        );
    }
    if quirks.no_sys_resource {
        config.push_str(
            r#"containerdConfigPatches:
  - |
    [plugins."io.containerd.grpc.v1.cri"]
      restrict_oom_score_adj = true
"#,
        );
    }
    config
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
        let networks = Networks::new(docker.clone(), "kind", instance);
        Ok(Self {
            docker,
            networks,
            config,
            dir,
            creating: Mutex::new(()),
            quirks: HostQuirks::detect(),
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

    fn node_image(&self) -> String {
        self.config.node_image.clone().unwrap_or_else(default_node_image)
    }

    /// Clusters with a node container whose network is gone. A `kind create` killed with the
    /// platform leaves its `docker run` going; the node it makes may appear only after the
    /// reconciler deleted the half-made cluster and its network, and then it can never start.
    /// Such a node is nobody's, whichever platform made it: networks come before nodes.
    async fn stranded_nodes(&self) -> Result<Vec<ClusterName>, ClusterError> {
        use bollard::query_parameters::{ListContainersOptions, ListNetworksOptions};
        let docker = self.docker.client().await?;
        let filters = HashMap::from([("label".to_owned(), vec![KIND_CLUSTER_LABEL.to_owned()])]);
        let nodes = docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters),
                ..Default::default()
            }))
            .await?;
        let networks: HashSet<String> = docker
            .list_networks(None::<ListNetworksOptions>)
            .await?
            .into_iter()
            .filter_map(|n| n.name)
            .collect();
        Ok(nodes
            .into_iter()
            .filter_map(|node| {
                let name = ClusterName::parse(node.labels?.get(KIND_CLUSTER_LABEL)?).ok()?;
                let network = format!("{NETWORK_PREFIX}{name}");
                let on_ours = node.host_config?.network_mode.as_deref() == Some(network.as_str());
                (on_ours && !networks.contains(&network)).then_some(name)
            })
            .collect())
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
        write_private(&config, &render_config(&spec.ports, self.quirks)).await?;
        // kind writes the admin kubeconfig here (0600), never into the operator's ~/.kube.
        let kubeconfig = self.file(&spec.name, ".kubeconfig");
        let (config_arg, kubeconfig_arg) = (config.to_string_lossy(), kubeconfig.to_string_lossy());
        let image = self.node_image();
        let args = [
            "create",
            "cluster",
            "--name",
            name,
            "--config",
            &config_arg,
            "--kubeconfig",
            &kubeconfig_arg,
            "--image",
            &image,
            "--wait",
            "0s",
        ];
        let envs: [(&str, &OsStr); 1] = [("KIND_EXPERIMENTAL_DOCKER_NETWORK", OsStr::new(network))];
        self.kind(&args, &envs, CREATE_LIMIT).await?;

        let internal = self
            .kind(
                &["get", "kubeconfig", "--internal", "--name", name],
                &[],
                COMMAND_LIMIT,
            )
            .await?;
        let admin_kubeconfig = Kubeconfig::from_yaml(tokio::fs::read_to_string(&kubeconfig).await?)?;
        let terminal_kubeconfig = Kubeconfig::from_yaml(internal)?;
        let client = admin_kubeconfig.client().await?;
        wait_until_healthy(&client, VALIDATE_LIMIT).await?;
        install_dns(&client).await?;
        wait_for_accounts_and_dns(&client).await?;
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

    fn runs_containers(&self) -> bool {
        true
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
        let kubeconfig = self.file(name, ".kubeconfig");
        let kubeconfig_arg = kubeconfig.to_string_lossy();
        self.kind(
            &[
                "delete",
                "cluster",
                "--name",
                name.as_str(),
                "--kubeconfig",
                &kubeconfig_arg,
            ],
            &[],
            DELETE_LIMIT,
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
        names.extend(self.stranded_nodes().await?);
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

    fn containment(&self) -> Option<String> {
        self.config.containment.as_ref().map(NodeContainment::describe)
    }

    async fn revive(&self, name: &ClusterName) -> Result<Members, ClusterError> {
        revive_cluster(&self.docker, &self.network_of(name)).await
    }

    async fn ready(&self) -> Result<(), String> {
        self.kind(&["version"], &[], COMMAND_LIMIT)
            .await
            .map_err(|e| e.to_string())?;
        self.networks
            .clusters()
            .await
            .map_err(|e| format!("Docker engine: {e}"))?;
        let image = self.node_image();
        match self.docker.client().await {
            Ok(docker) if docker.inspect_image(&image).await.is_ok() => Ok(()),
            Ok(_) => Err(format!(
                "node image {image} is missing (run scripts/build-kind-node.sh, or load it)"
            )),
            Err(e) => Err(format!("Docker engine: {e}")),
        }
    }
}

/// CoreDNS as kubeadm installs it, but one replica that is Ready within a second of answering
/// (kubeadm's probe runs every ten seconds, and a new cluster waited for it).
const COREDNS: &str = include_str!("kind-coredns.yaml");

/// The objects of [`COREDNS`] (a test reads them all).
fn dns_objects() -> Vec<(DynamicObject, ApiResource)> {
    serde_yaml::Deserializer::from_str(COREDNS)
        .map(|document| {
            let object = DynamicObject::deserialize(document).expect("kind-coredns.yaml is valid");
            let types = object.types.as_ref().expect("each object has a kind");
            let kind = GroupVersionKind::try_from(types).expect("each kind has an apiVersion");
            (object, ApiResource::from_gvk(&kind))
        })
        .collect()
}

async fn install_dns(client: &kube::Client) -> Result<(), ClusterError> {
    for (object, resource) in dns_objects() {
        let api: Api<DynamicObject> = match &object.metadata.namespace {
            Some(namespace) => Api::namespaced_with(client.clone(), namespace, &resource),
            None => Api::all_with(client.clone(), &resource),
        };
        let name = object.metadata.name.clone().unwrap_or_default();
        api.patch(
            &name,
            &PatchParams::apply("ckad-platform"),
            &Patch::Apply(&object),
        )
        .await?;
    }
    Ok(())
}

/// Polls until the `default` ServiceAccount of `default` exists (pods are refused before it)
/// and CoreDNS answers (a learner's first pod may look a Service up by name).
async fn wait_for_accounts_and_dns(client: &kube::Client) -> Result<(), ClusterError> {
    let accounts = Api::<ServiceAccount>::namespaced(client.clone(), "default");
    let deployments = Api::<Deployment>::namespaced(client.clone(), "kube-system");
    let poll = async {
        loop {
            let account = matches!(accounts.get_opt("default").await, Ok(Some(_)));
            let dns = deployments.get_opt("coredns").await.is_ok_and(|d| {
                d.and_then(|d| d.status?.available_replicas)
                    .is_some_and(|n| n > 0)
            });
            if account && dns {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    tokio::time::timeout(SETTLE_LIMIT, poll)
        .await
        .map_err(|_| ClusterError::Timeout {
            what: "the default ServiceAccount and CoreDNS".into(),
            limit: SETTLE_LIMIT,
        })
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
    fn the_config_is_the_seeds_template_with_the_pools_ports_on_loopback() {
        let ports = PortSet {
            api: 30001,
            ingress: 40002,
            ingress_https: 45003,
        };
        let config = render_config(&ports, HostQuirks::default());
        let doc: serde_yaml::Value = serde_yaml::from_str(&config).unwrap();
        assert_eq!(doc["kind"], "Cluster");
        assert_eq!(doc["apiVersion"], "kind.x-k8s.io/v1alpha4");
        assert_eq!(doc["networking"]["apiServerAddress"], "127.0.0.1");
        assert_eq!(doc["networking"]["apiServerPort"], 30001);
        let node = &doc["nodes"][0];
        assert_eq!(node["role"], "control-plane");
        let mappings: Vec<(u64, u64, &str)> = node["extraPortMappings"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["containerPort"].as_u64().unwrap(),
                    m["hostPort"].as_u64().unwrap(),
                    m["listenAddress"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(mappings, [(80, 40002, "127.0.0.1"), (443, 45003, "127.0.0.1")]);
        let patches = node["kubeadmConfigPatches"].as_sequence().unwrap();
        assert_eq!(patches.len(), 1);
        let patch = patches[0].as_str().unwrap();
        assert!(patch.contains("system-reserved: memory=256Mi"));
        assert!(patch.contains("skipPhases: [preflight, addon/coredns]"));
        assert!(patch.contains("eviction-hard: memory.available<100Mi"));
        assert!(doc.get("containerdConfigPatches").is_none());
    }

    #[test]
    fn a_host_with_quirks_gets_what_its_nodes_need() {
        let ports = PortSet {
            api: 1,
            ingress: 2,
            ingress_https: 3,
        };
        let quirks = HostQuirks {
            cgroup_v1: true,
            no_sys_resource: true,
        };
        let doc: serde_yaml::Value = serde_yaml::from_str(&render_config(&ports, quirks)).unwrap();
        let kubelet: serde_yaml::Value =
            serde_yaml::from_str(doc["nodes"][0]["kubeadmConfigPatches"][1].as_str().unwrap()).unwrap();
        assert_eq!(kubelet["kind"], "KubeletConfiguration");
        assert_eq!(kubelet["failCgroupV1"], false);
        let containerd = doc["containerdConfigPatches"][0].as_str().unwrap();
        assert!(
            containerd.contains("restrict_oom_score_adj = true"),
            "{containerd}"
        );
    }

    #[test]
    fn coredns_is_the_preloaded_version_with_one_quick_replica() {
        let objects = dns_objects();
        let kinds: Vec<&str> = objects.iter().map(|(_, r)| r.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "ServiceAccount",
                "ClusterRole",
                "ClusterRoleBinding",
                "ConfigMap",
                "Service",
                "Deployment"
            ]
        );
        let plurals: Vec<&str> = objects.iter().map(|(_, r)| r.plural.as_str()).collect();
        assert_eq!(
            plurals,
            [
                "serviceaccounts",
                "clusterroles",
                "clusterrolebindings",
                "configmaps",
                "services",
                "deployments"
            ]
        );
        let deployment = &objects[5].0.data["spec"];
        assert_eq!(deployment["replicas"], 1);
        let container = &deployment["template"]["spec"]["containers"][0];
        assert_eq!(container["readinessProbe"]["periodSeconds"], 1);
        let versions = include_str!("../../scripts/kind-node-versions.env");
        let coredns = versions.lines().find_map(|l| l.strip_prefix("COREDNS=")).unwrap();
        assert_eq!(
            container["image"],
            format!("registry.k8s.io/coredns/coredns:{coredns}")
        );
    }

    #[test]
    fn the_default_node_image_is_the_one_the_build_script_tags() {
        assert_eq!(
            default_node_image(),
            format!(
                "ckad-kind/node:{}-r3",
                super::super::LiteVersions::pinned().kubernetes
            )
        );
    }
}
