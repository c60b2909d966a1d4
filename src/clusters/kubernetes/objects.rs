//! The objects of one session's namespace on the host cluster, as typed values: the namespace,
//! its quota and limits, its network policies, the control plane's Service, Secret, kwok stages
//! and Pod, and the Secrets holding the kubeconfigs. Pure builders: [`HostCluster`](super::HostCluster) applies them.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        core::v1::{
            Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource,
            EnvVar, EnvVarSource, HTTPGetAction, KeyToPath, LimitRange, LimitRangeItem, LimitRangeSpec,
            Namespace, ObjectFieldSelector, Pod, PodDNSConfig, PodSecurityContext, PodSpec, Probe,
            ResourceQuota, ResourceQuotaSpec, ResourceRequirements, SeccompProfile, Secret,
            SecretVolumeSource, SecurityContext, Service, ServicePort, ServiceSpec, Volume, VolumeMount,
        },
        networking::v1::{
            NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
            NetworkPolicyPort, NetworkPolicySpec,
        },
    },
    apimachinery::pkg::{
        api::resource::Quantity,
        apis::meta::v1::{LabelSelector, ObjectMeta},
        util::intstr::IntOrString,
    },
};

use super::{
    pki::{Identity, Pki},
    Tenant,
};
use crate::clusters::{lite, ClusterError, Kubeconfig, LiteVersions};

/// Which part of a session an object belongs to; network policies select pods by it.
pub const COMPONENT_LABEL: &str = "ckad.component";
pub const CONTROL_PLANE: &str = "control-plane";
pub const TERMINAL: &str = "terminal";
/// The API's Service, and the port the session's kubeconfigs name.
pub const API_SERVICE: &str = "api";
pub const API_PORT: i32 = 443;
/// kube-apiserver's port in the control-plane pod.
pub const APISERVER_PORT: i32 = 6443;
/// kwok's stand-in kubelet (logs and exec answer "none" as on `lite`); reached by the API server
/// inside the pod only.
const KWOK_PORT: i32 = 10247;
pub const CONTROL_PLANE_SECRET: &str = "control-plane-pki";
/// The platform's own kubeconfig of the session: never mounted, read by any replica.
pub const PLATFORM_SECRET: &str = "platform-kubeconfig";
/// The learner's kubeconfigs, mounted read-only in the terminal's `~/.kube`.
pub const TERMINAL_SECRET: &str = "terminal-kubeconfig";
const KWOK_CONFIG: &str = "kwok-stages";
/// The namespace's ResourceQuota.
pub const QUOTA: &str = "session";
const PKI_DIR: &str = "/etc/ckad/pki";
const KWOK_DIR: &str = "/etc/ckad/kwok";
/// A user with no account in the image: the control plane needs no root.
const CONTROL_PLANE_UID: i64 = 65532;
/// The session cluster's own Service range: virtual (kwok routes nothing), never seen by the host.
pub const SERVICE_CIDR: &str = "10.96.0.0/16";
/// The session cluster's `kubernetes` Service: its first address.
pub const KUBERNETES_SERVICE_IP: &str = "10.96.0.1";

/// What a container asks for and may use at most: memory in MiB, CPU in millicores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resources {
    pub request_mib: i64,
    pub limit_mib: i64,
    pub request_millicpu: i64,
    pub limit_millicpu: i64,
}

impl Resources {
    fn requirements(self) -> ResourceRequirements {
        let pair = |mib: i64, millicpu: i64| {
            BTreeMap::from([
                ("memory".to_owned(), Quantity(format!("{mib}Mi"))),
                ("cpu".to_owned(), Quantity(format!("{millicpu}m"))),
            ])
        };
        ResourceRequirements {
            requests: Some(pair(self.request_mib, self.request_millicpu)),
            limits: Some(pair(self.limit_mib, self.limit_millicpu)),
            ..Default::default()
        }
    }
}

/// The terminal's share, as the Docker terminal's: 512 MiB and half a CPU.
pub const TERMINAL_RESOURCES: Resources = Resources {
    request_mib: 64,
    limit_mib: 512,
    request_millicpu: 50,
    limit_millicpu: 500,
};

/// Each control-plane component's limits are `lite`'s (memory, one CPU); requests are about what
/// each was measured using at idle (docs/lite-clusters.md), so the host's scheduler packs sessions
/// by what they use.
fn control_plane_resources(component: &str) -> Resources {
    let limit_mib = lite::MEMORY_MIB
        .iter()
        .find_map(|(name, mib)| (*name == component).then_some(*mib))
        .expect("every component has a memory limit");
    let (request_mib, request_millicpu) = match component {
        "kube-apiserver" => (192, 100),
        "kube-controller-manager" => (48, 25),
        "etcd" => (32, 25),
        _ => (24, 10),
    };
    Resources {
        request_mib,
        limit_mib,
        request_millicpu,
        limit_millicpu: lite::NANO_CPUS / 1_000_000,
    }
}

/// The images of the control plane: `lite`'s, loaded into the host's nodes (`kind load` in
/// tests) or pushed to the operator's registry under `registry/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlPlaneImages {
    pub etcd: String,
    pub kubernetes: String,
    pub kwok: String,
}

impl ControlPlaneImages {
    /// `lite`'s images by their local names; `registry` (e.g. `registry.example:5000/`) in front.
    pub fn pinned(registry: &str) -> Self {
        let versions = LiteVersions::pinned();
        // One image holds every binary (scripts/build-lite.sh); the tag names the version.
        Self {
            etcd: format!("{registry}{}", lite::image("etcd", &versions.etcd)),
            kubernetes: format!(
                "{registry}{}",
                lite::image("kube-apiserver", &versions.kubernetes)
            ),
            kwok: format!("{registry}{}", lite::image("kwok", &versions.kwok)),
        }
    }

    /// Every image a host node must hold.
    pub fn all(&self) -> [&str; 3] {
        [&self.etcd, &self.kubernetes, &self.kwok]
    }
}

/// Who besides the terminal may reach a session's API: the platform's pods, by namespace name
/// and labels. `None` when the platform is outside the host cluster (it then goes through the
/// API server's port-forward, which network policies do not see).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformPeer {
    pub namespace: String,
    pub pod_labels: BTreeMap<String, String>,
}

pub(super) fn meta(tenant: &Tenant<'_>, name: &str, component: Option<&str>) -> ObjectMeta {
    let mut labels = tenant.labels();
    if let Some(component) = component {
        labels.insert(COMPONENT_LABEL.to_owned(), component.to_owned());
    }
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(tenant.namespace().to_owned()),
        labels: Some(labels),
        ..Default::default()
    }
}

fn selector(component: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some(BTreeMap::from([(
            COMPONENT_LABEL.to_owned(),
            component.to_owned(),
        )])),
        ..Default::default()
    }
}

/// The session's namespace: our labels (the reconciler finds orphans by them) and Pod Security
/// `restricted` enforced, which every pod of the session meets.
pub fn namespace(tenant: &Tenant<'_>) -> Namespace {
    let mut labels = tenant.labels();
    labels.insert(
        "pod-security.kubernetes.io/enforce".to_owned(),
        "restricted".to_owned(),
    );
    labels.insert(
        "pod-security.kubernetes.io/enforce-version".to_owned(),
        "latest".to_owned(),
    );
    Namespace {
        metadata: ObjectMeta {
            name: Some(tenant.namespace().to_owned()),
            labels: Some(labels),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// What the namespace may hold: its two pods, their Secrets and ConfigMaps (with the
/// `kube-root-ca.crt` every namespace gets), one Service, nothing exposed or stored.
pub fn resource_quota(tenant: &Tenant<'_>) -> ResourceQuota {
    let pods: Vec<Resources> = lite::MEMORY_MIB
        .iter()
        .map(|(component, _)| control_plane_resources(component))
        .chain([TERMINAL_RESOURCES])
        .collect();
    let sum = |f: fn(&Resources) -> i64| pods.iter().map(f).sum::<i64>();
    let hard = [
        ("pods", "2".to_owned()),
        ("requests.memory", format!("{}Mi", sum(|r| r.request_mib))),
        ("limits.memory", format!("{}Mi", sum(|r| r.limit_mib))),
        ("requests.cpu", format!("{}m", sum(|r| r.request_millicpu))),
        ("limits.cpu", format!("{}m", sum(|r| r.limit_millicpu))),
        ("secrets", "3".to_owned()),
        ("configmaps", "2".to_owned()),
        ("services", "1".to_owned()),
        ("services.nodeports", "0".to_owned()),
        ("services.loadbalancers", "0".to_owned()),
        ("persistentvolumeclaims", "0".to_owned()),
    ];
    ResourceQuota {
        metadata: meta(tenant, QUOTA, None),
        spec: Some(ResourceQuotaSpec {
            hard: Some(
                hard.into_iter()
                    .map(|(k, v)| (k.to_owned(), Quantity(v)))
                    .collect(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// No container above the largest component's limits; one that names none gets small ones.
pub fn limit_range(tenant: &Tenant<'_>) -> LimitRange {
    let quantities = |mib: i64, millicpu: i64| {
        BTreeMap::from([
            ("memory".to_owned(), Quantity(format!("{mib}Mi"))),
            ("cpu".to_owned(), Quantity(format!("{millicpu}m"))),
        ])
    };
    let max_mib = lite::MEMORY_MIB.iter().map(|(_, mib)| *mib).max().unwrap_or(0);
    LimitRange {
        metadata: meta(tenant, "session", None),
        spec: Some(LimitRangeSpec {
            limits: vec![LimitRangeItem {
                type_: "Container".into(),
                max: Some(quantities(max_mib, lite::NANO_CPUS / 1_000_000)),
                default: Some(quantities(128, 100)),
                default_request: Some(quantities(32, 10)),
                ..Default::default()
            }],
        }),
    }
}

fn api_port() -> NetworkPolicyPort {
    NetworkPolicyPort {
        port: Some(IntOrString::Int(APISERVER_PORT)),
        protocol: Some("TCP".into()),
        ..Default::default()
    }
}

/// The pods that `pods` selects in the namespace named `namespace`.
fn in_namespace(namespace: &str, pods: LabelSelector) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        namespace_selector: Some(LabelSelector {
            match_labels: Some(BTreeMap::from([(
                "kubernetes.io/metadata.name".to_owned(),
                namespace.to_owned(),
            )])),
            ..Default::default()
        }),
        pod_selector: Some(pods),
        ..Default::default()
    }
}

/// Nothing in the namespace sends or receives, but: the terminal to the API, and the API from the
/// terminal and the platform. No DNS: the kubeconfigs name the Service's address.
pub fn network_policies(tenant: &Tenant<'_>, platform: Option<&PlatformPeer>) -> Vec<NetworkPolicy> {
    let pods = |component: &str| NetworkPolicyPeer {
        pod_selector: Some(selector(component)),
        ..Default::default()
    };
    let mut api_clients = vec![pods(TERMINAL)];
    if let Some(platform) = platform {
        api_clients.push(in_namespace(
            &platform.namespace,
            LabelSelector {
                match_labels: Some(platform.pod_labels.clone()),
                ..Default::default()
            },
        ));
    }
    let policy = |name: &str, spec: NetworkPolicySpec| NetworkPolicy {
        metadata: meta(tenant, name, None),
        spec: Some(spec),
    };
    vec![
        policy(
            "default-deny",
            NetworkPolicySpec {
                pod_selector: Some(LabelSelector::default()),
                policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
                ..Default::default()
            },
        ),
        policy(
            "terminal-to-api",
            NetworkPolicySpec {
                pod_selector: Some(selector(TERMINAL)),
                policy_types: Some(vec!["Egress".into()]),
                egress: Some(vec![NetworkPolicyEgressRule {
                    to: Some(vec![pods(CONTROL_PLANE)]),
                    ports: Some(vec![api_port()]),
                }]),
                ..Default::default()
            },
        ),
        policy(
            "api-from-clients",
            NetworkPolicySpec {
                pod_selector: Some(selector(CONTROL_PLANE)),
                policy_types: Some(vec!["Ingress".into()]),
                ingress: Some(vec![NetworkPolicyIngressRule {
                    from: Some(api_clients),
                    ports: Some(vec![api_port()]),
                }]),
                ..Default::default()
            },
        ),
    ]
}

/// An exam's terminal (in `terminal`'s namespace) beside its own host's API, which
/// [`network_policies`] lets it reach: the egress to every other host's API (`hosts`: their
/// namespaces) on 6443, and in each of those namespaces the ingress of that terminal alone. They
/// carry the terminal's labels (`terminals::PodTerminals` finds and removes them with it) and go
/// with their namespaces. None for a terminal of one cluster: an egress rule naming no peer
/// would let it reach everything.
pub fn host_policies(terminal: &Tenant<'_>, hosts: &[&str]) -> Vec<NetworkPolicy> {
    let others: Vec<&str> = hosts
        .iter()
        .copied()
        .filter(|host| *host != terminal.namespace())
        .collect();
    if others.is_empty() {
        return Vec::new();
    }
    let egress = NetworkPolicy {
        metadata: meta(terminal, "terminal-to-hosts", Some(TERMINAL)),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(selector(TERMINAL)),
            policy_types: Some(vec!["Egress".into()]),
            egress: Some(vec![NetworkPolicyEgressRule {
                to: Some(
                    others
                        .iter()
                        .map(|host| in_namespace(host, selector(CONTROL_PLANE)))
                        .collect(),
                ),
                ports: Some(vec![api_port()]),
            }]),
            ..Default::default()
        }),
    };
    let ingress = others.iter().map(|host| NetworkPolicy {
        metadata: ObjectMeta {
            namespace: Some((*host).to_owned()),
            ..meta(terminal, "api-from-exam-terminal", Some(TERMINAL))
        },
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(selector(CONTROL_PLANE)),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(vec![in_namespace(terminal.namespace(), selector(TERMINAL))]),
                ports: Some(vec![api_port()]),
            }]),
            ..Default::default()
        }),
    });
    std::iter::once(egress).chain(ingress).collect()
}

/// The session API's stable address: the terminal's and the platform's kubeconfigs name its
/// ClusterIP, and the serving certificate does too.
pub fn api_service(tenant: &Tenant<'_>) -> Service {
    Service {
        metadata: meta(tenant, API_SERVICE, Some(CONTROL_PLANE)),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(BTreeMap::from([(
                COMPONENT_LABEL.to_owned(),
                CONTROL_PLANE.to_owned(),
            )])),
            ports: Some(vec![ServicePort {
                name: Some("https".into()),
                port: API_PORT,
                target_port: Some(IntOrString::Int(APISERVER_PORT)),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The names the API server answers to, for its serving certificate: the Service's address and
/// names on the host, the session cluster's own `kubernetes` Service, and loopback (its own
/// components, and a port-forward from the platform).
pub fn api_addresses(tenant: &Tenant<'_>, service_ip: std::net::IpAddr) -> super::ApiAddresses {
    let namespace = tenant.namespace();
    let mut dns_names = vec![
        API_SERVICE.to_owned(),
        format!("{API_SERVICE}.{namespace}"),
        format!("{API_SERVICE}.{namespace}.svc"),
        format!("{API_SERVICE}.{namespace}.svc.cluster.local"),
        "localhost".to_owned(),
    ];
    dns_names.extend(
        [
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ]
        .map(str::to_owned),
    );
    super::ApiAddresses {
        ips: vec![
            service_ip,
            "127.0.0.1".parse().expect("an address"),
            KUBERNETES_SERVICE_IP.parse().expect("an address"),
        ],
        dns_names,
    }
}

/// What the control plane mounts: the CA, the API's serving pair, the service-account keys and
/// the components' kubeconfigs (which reach the API on loopback, inside the pod).
pub fn control_plane_secret(tenant: &Tenant<'_>, pki: &Pki) -> Result<Secret, ClusterError> {
    use secrecy::ExposeSecret;
    let local = format!("https://127.0.0.1:{APISERVER_PORT}");
    let kubeconfig = |identity| pki.kubeconfig(identity, &local).map(|k| k.yaml().to_owned());
    let data = BTreeMap::from([
        ("ca.crt".to_owned(), pki.ca_cert.clone()),
        ("apiserver.crt".to_owned(), pki.apiserver.cert.clone()),
        (
            "apiserver.key".to_owned(),
            pki.apiserver.key.expose_secret().to_owned(),
        ),
        (
            "sa.key".to_owned(),
            pki.service_account_key.expose_secret().to_owned(),
        ),
        ("sa.pub".to_owned(), pki.service_account_public.clone()),
        (
            "controller-manager.kubeconfig".to_owned(),
            kubeconfig(Identity::ControllerManager)?,
        ),
        (
            "scheduler.kubeconfig".to_owned(),
            kubeconfig(Identity::Scheduler)?,
        ),
        ("kwok.kubeconfig".to_owned(), kubeconfig(Identity::Kwok)?),
    ]);
    Ok(secret(tenant, CONTROL_PLANE_SECRET, CONTROL_PLANE, data))
}

/// The learner's kubeconfigs, by their paths under `~/.kube` (`terminals::TerminalAccess::files`),
/// each under the key [`kube_key`] names.
pub fn terminal_secret(tenant: &Tenant<'_>, files: &[(String, &Kubeconfig)]) -> Secret {
    let data = files
        .iter()
        .map(|(path, kubeconfig)| (kube_key(path), kubeconfig.yaml().to_owned()))
        .collect();
    secret(tenant, TERMINAL_SECRET, TERMINAL, data)
}

/// A Secret's key for a file of the terminal's `~/.kube`: keys hold no '/'; the terminal's
/// volume puts each back at its path.
fn kube_key(path: &str) -> String {
    path.replace('/', ".")
}

/// A Secret holding one kubeconfig as `config`.
pub fn kubeconfig_secret(
    tenant: &Tenant<'_>,
    name: &str,
    component: &str,
    kubeconfig: &Kubeconfig,
) -> Secret {
    let data = BTreeMap::from([("config".to_owned(), kubeconfig.yaml().to_owned())]);
    secret(tenant, name, component, data)
}

fn secret(tenant: &Tenant<'_>, name: &str, component: &str, data: BTreeMap<String, String>) -> Secret {
    Secret {
        metadata: meta(tenant, name, Some(component)),
        type_: Some("Opaque".into()),
        string_data: Some(data),
        // Made once per session; an immutable Secret is not watched by the kubelet.
        immutable: Some(true),
        ..Default::default()
    }
}

/// kwok's stages (nodes Ready, pods Running, Jobs' pods Succeeded), as kwokctl writes them.
pub fn kwok_config(tenant: &Tenant<'_>) -> ConfigMap {
    ConfigMap {
        metadata: meta(tenant, KWOK_CONFIG, Some(CONTROL_PLANE)),
        data: Some(BTreeMap::from([(
            "kwok.yaml".to_owned(),
            include_str!("kwok-stages.yaml").to_owned(),
        )])),
        immutable: Some(true),
        ..Default::default()
    }
}

/// How every container of a session runs: not as root, on a read-only root, with no
/// capabilities and no way to gain any, under the runtime's default seccomp profile.
pub fn hardened(uid: i64) -> SecurityContext {
    SecurityContext {
        run_as_user: Some(uid),
        run_as_group: Some(uid),
        run_as_non_root: Some(true),
        read_only_root_filesystem: Some(true),
        allow_privilege_escalation: Some(false),
        privileged: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Default::default()
        }),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The pod-level half of [`hardened`]: files of mounted volumes belong to the pod's group, no
/// service-account token of the host cluster, no Service variables in the environment.
pub fn hardened_pod(uid: i64, spec: PodSpec) -> PodSpec {
    PodSpec {
        security_context: Some(PodSecurityContext {
            run_as_user: Some(uid),
            run_as_group: Some(uid),
            run_as_non_root: Some(true),
            fs_group: Some(uid),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        restart_policy: Some("Always".into()),
        ..spec
    }
}

fn mount(volume: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: volume.into(),
        mount_path: path.into(),
        read_only: Some(read_only),
        ..Default::default()
    }
}

fn empty_dir(name: &str, size_mib: i64) -> Volume {
    Volume {
        name: name.into(),
        empty_dir: Some(EmptyDirVolumeSource {
            size_limit: Some(Quantity(format!("{size_mib}Mi"))),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The session's control plane as one pod: etcd on the pod's loopback only and kube-apiserver on
/// 6443 (RBAC, admission as on a real cluster) as sidecars, then the controller manager and the
/// scheduler with identities of their own and no ports, and kwok keeping a simulated node Ready.
pub fn control_plane_pod(tenant: &Tenant<'_>, images: &ControlPlaneImages) -> Pod {
    let pki = |file: &str| format!("{PKI_DIR}/{file}");
    let pod_ip = EnvVar {
        name: "POD_IP".into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: "status.podIP".into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    // `lite`'s images have each binary on PATH under its own name and no entrypoint.
    let container = |name: &str, binary: &str, image: &str, args: Vec<String>| Container {
        name: name.into(),
        image: Some(image.into()),
        image_pull_policy: Some("IfNotPresent".into()),
        command: Some(vec![binary.into()]),
        args: Some(args),
        resources: Some(control_plane_resources(name).requirements()),
        security_context: Some(hardened(CONTROL_PLANE_UID)),
        volume_mounts: Some(vec![mount("pki", PKI_DIR, true), mount("tmp", "/tmp", false)]),
        ..Default::default()
    };

    let mut etcd = container(
        "etcd",
        "etcd",
        &images.etcd,
        [
            "--name=session",
            "--data-dir=/var/lib/etcd/data",
            "--listen-client-urls=http://127.0.0.1:2379",
            "--advertise-client-urls=http://127.0.0.1:2379",
            "--listen-peer-urls=http://127.0.0.1:2380",
            "--initial-advertise-peer-urls=http://127.0.0.1:2380",
            "--initial-cluster=session=http://127.0.0.1:2380",
            "--auto-compaction-retention=1",
        ]
        .map(str::to_owned)
        .into_iter()
        .chain([format!("--quota-backend-bytes={}", lite::ETCD_QUOTA_BYTES)])
        .collect(),
    );
    etcd.volume_mounts = Some(vec![
        mount("etcd", "/var/lib/etcd", false),
        mount("tmp", "/tmp", false),
    ]);

    let mut apiserver = container(
        "kube-apiserver",
        "kube-apiserver",
        &images.kubernetes,
        vec![
            "--advertise-address=$(POD_IP)".into(),
            "--bind-address=0.0.0.0".into(),
            format!("--secure-port={APISERVER_PORT}"),
            "--etcd-servers=http://127.0.0.1:2379".into(),
            format!("--client-ca-file={}", pki("ca.crt")),
            format!("--tls-cert-file={}", pki("apiserver.crt")),
            format!("--tls-private-key-file={}", pki("apiserver.key")),
            format!("--service-account-key-file={}", pki("sa.pub")),
            format!("--service-account-signing-key-file={}", pki("sa.key")),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
            format!("--service-cluster-ip-range={SERVICE_CIDR}"),
            "--authorization-mode=Node,RBAC".into(),
            // kwok's node names itself `kwok-controller`, which no DNS knows: its address is the
            // pod's IP (so `kubectl logs`/`exec` answer "none found" as on `lite`).
            "--kubelet-preferred-address-types=InternalIP".into(),
            // Learners may ask for privileged pods: kwok runs none of them.
            "--allow-privileged=true".into(),
            "--profiling=false".into(),
        ],
    );
    apiserver.env = Some(vec![pod_ip.clone()]);
    apiserver.ports = Some(vec![ContainerPort {
        name: Some("https".into()),
        container_port: APISERVER_PORT,
        protocol: Some("TCP".into()),
        ..Default::default()
    }]);
    let probe = |path: &str, period: i32, failures: i32| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::Int(APISERVER_PORT),
            scheme: Some("HTTPS".into()),
            ..Default::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        timeout_seconds: Some(5),
        ..Default::default()
    };
    // The controllers start once the API is up (they give up on one that is not, and restart):
    // etcd and the API server are sidecars, started in order before them, and the API server's
    // start counts as done when it is ready.
    apiserver.startup_probe = Some(probe("/readyz", 1, 120));
    apiserver.readiness_probe = Some(probe("/readyz", 2, 3));
    apiserver.liveness_probe = Some(probe("/livez", 10, 6));
    for sidecar in [&mut etcd, &mut apiserver] {
        sidecar.restart_policy = Some("Always".into());
    }

    let controller_manager = container(
        "kube-controller-manager",
        "kube-controller-manager",
        &images.kubernetes,
        vec![
            format!("--kubeconfig={}", pki("controller-manager.kubeconfig")),
            "--secure-port=0".into(),
            "--leader-elect=false".into(),
            "--use-service-account-credentials=true".into(),
            format!("--root-ca-file={}", pki("ca.crt")),
            format!("--service-account-private-key-file={}", pki("sa.key")),
        ],
    );
    let scheduler = container(
        "kube-scheduler",
        "kube-scheduler",
        &images.kubernetes,
        vec![
            format!("--kubeconfig={}", pki("scheduler.kubeconfig")),
            "--secure-port=0".into(),
            "--leader-elect=false".into(),
        ],
    );
    let mut kwok = container(
        "kwok-controller",
        "kwok",
        &images.kwok,
        vec![
            format!("--kubeconfig={}", pki("kwok.kubeconfig")),
            format!("--config={KWOK_DIR}/kwok.yaml"),
            "--manage-all-nodes=true".into(),
            "--node-ip=$(POD_IP)".into(),
            "--node-name=kwok-controller".into(),
            format!("--node-port={KWOK_PORT}"),
            format!("--server-address=$(POD_IP):{KWOK_PORT}"),
            format!("--tls-cert-file={}", pki("apiserver.crt")),
            format!("--tls-private-key-file={}", pki("apiserver.key")),
            "--node-lease-duration-seconds=40".into(),
        ],
    );
    kwok.env = Some(vec![pod_ip]);
    kwok.volume_mounts
        .get_or_insert_with(Vec::new)
        .push(mount("kwok", KWOK_DIR, true));

    Pod {
        metadata: meta(tenant, CONTROL_PLANE, Some(CONTROL_PLANE)),
        spec: Some(hardened_pod(
            CONTROL_PLANE_UID,
            PodSpec {
                init_containers: Some(vec![etcd, apiserver]),
                containers: vec![controller_manager, scheduler, kwok],
                // Nothing to save: the session's state dies with it.
                termination_grace_period_seconds: Some(5),
                volumes: Some(vec![
                    Volume {
                        name: "pki".into(),
                        secret: Some(SecretVolumeSource {
                            secret_name: Some(CONTROL_PLANE_SECRET.into()),
                            default_mode: Some(0o440),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                    Volume {
                        name: "kwok".into(),
                        config_map: Some(ConfigMapVolumeSource {
                            name: KWOK_CONFIG.into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                    // Twice etcd's quota: it compacts within it.
                    empty_dir("etcd", 2 * (lite::ETCD_QUOTA_BYTES as i64) / (1024 * 1024)),
                    empty_dir("tmp", 16),
                ]),
                ..Default::default()
            },
        )),
        ..Default::default()
    }
}

/// The learner's uid in the terminal image.
const LEARNER_UID: i64 = 1000;
/// The learner's home in the terminal image.
pub const LEARNER_HOME: &str = "/home/ckad";

/// The learner's terminal, hardened as the Docker terminal is: uid 1000, read-only root, no
/// capabilities, 512 MiB and half a CPU, memory-backed `/tmp`, home and `/opt/course`, the
/// kubeconfigs of [`terminal_secret`] read-only at their paths under `~/.kube` (`config`, or an
/// exam's `hosts/<host>`, and nothing else). The pod's pause process is PID 1 and reaps, as
/// Docker's `--init` does; no name resolves (nothing leaves it but the API connection, which
/// the kubeconfig names by address). A process limit is the host's kubelet's (`podPidsLimit`):
/// a pod cannot set its own.
pub fn terminal_pod(tenant: &Tenant<'_>, image: &str, files: &[(String, &Kubeconfig)]) -> Pod {
    let memory_dir = |name: &str, size_mib: i64| Volume {
        empty_dir: Some(EmptyDirVolumeSource {
            medium: Some("Memory".into()),
            ..empty_dir(name, size_mib).empty_dir.expect("an emptyDir")
        }),
        ..empty_dir(name, size_mib)
    };
    let container = Container {
        name: TERMINAL.into(),
        image: Some(image.into()),
        image_pull_policy: Some("IfNotPresent".into()),
        resources: Some(TERMINAL_RESOURCES.requirements()),
        security_context: Some(hardened(LEARNER_UID)),
        volume_mounts: Some(vec![
            mount("tmp", "/tmp", false),
            mount("home", LEARNER_HOME, false),
            mount("course", "/opt/course", false),
            mount("kube", &format!("{LEARNER_HOME}/.kube"), true),
        ]),
        ..Default::default()
    };
    Pod {
        metadata: meta(tenant, TERMINAL, Some(TERMINAL)),
        spec: Some(hardened_pod(
            LEARNER_UID,
            PodSpec {
                containers: vec![container],
                hostname: Some("ckad".into()),
                share_process_namespace: Some(true),
                dns_policy: Some("None".into()),
                dns_config: Some(PodDNSConfig {
                    nameservers: Some(vec!["127.0.0.1".into()]),
                    ..Default::default()
                }),
                // Its command sleeps; nothing in it needs time to stop.
                termination_grace_period_seconds: Some(1),
                volumes: Some(vec![
                    memory_dir("tmp", 100),
                    memory_dir("home", 64),
                    memory_dir("course", 16),
                    Volume {
                        name: "kube".into(),
                        secret: Some(SecretVolumeSource {
                            secret_name: Some(TERMINAL_SECRET.into()),
                            default_mode: Some(0o440),
                            items: Some(
                                files
                                    .iter()
                                    .map(|(path, _)| KeyToPath {
                                        key: kube_key(path),
                                        path: path.clone(),
                                        mode: None,
                                    })
                                    .collect(),
                            ),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                ]),
                ..Default::default()
            },
        )),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clusters::ClusterName;

    fn tenant(name: &ClusterName) -> Tenant<'_> {
        Tenant {
            cluster: name,
            instance: "test-instance",
        }
    }

    fn parse_mib(q: &Quantity) -> i64 {
        q.0.strip_suffix("Mi").unwrap().parse().unwrap()
    }

    fn parse_millicpu(q: &Quantity) -> i64 {
        q.0.strip_suffix('m').unwrap().parse().unwrap()
    }

    fn limits(r: &ResourceRequirements) -> &BTreeMap<String, Quantity> {
        r.limits.as_ref().unwrap()
    }

    fn requests(r: &ResourceRequirements) -> &BTreeMap<String, Quantity> {
        r.requests.as_ref().unwrap()
    }

    #[test]
    fn every_object_is_in_the_sessions_namespace_and_labelled_as_ours() {
        let name = ClusterName::generate();
        let tenant = tenant(&name);
        let namespace = namespace(&tenant);
        assert_eq!(namespace.metadata.name.as_deref(), Some(name.as_str()));
        let labels = namespace.metadata.labels.unwrap();
        assert_eq!(labels["ckad.platform"], "kubernetes");
        assert_eq!(labels["ckad.instance"], "test-instance");
        assert_eq!(labels["ckad.cluster"], name.as_str());
        assert_eq!(labels["pod-security.kubernetes.io/enforce"], "restricted");

        let images = ControlPlaneImages::pinned("");
        let metas = [
            resource_quota(&tenant).metadata,
            limit_range(&tenant).metadata,
            api_service(&tenant).metadata,
            kwok_config(&tenant).metadata,
            control_plane_pod(&tenant, &images).metadata,
        ]
        .into_iter()
        .chain(network_policies(&tenant, None).into_iter().map(|p| p.metadata));
        for meta in metas {
            assert_eq!(meta.namespace.as_deref(), Some(name.as_str()), "{meta:?}");
            let labels = meta.labels.unwrap();
            assert_eq!(labels["ckad.instance"], "test-instance");
            assert_eq!(labels["ckad.cluster"], name.as_str());
        }
    }

    #[test]
    fn the_control_plane_runs_hardened_within_lites_limits() {
        let name = ClusterName::generate();
        let pod = control_plane_pod(&tenant(&name), &ControlPlaneImages::pinned("registry.test/"));
        let spec = pod.spec.unwrap();
        assert_eq!(spec.automount_service_account_token, Some(false));
        assert_eq!(spec.enable_service_links, Some(false));
        assert_ne!(spec.host_network, Some(true));
        let pod_security = spec.security_context.unwrap();
        assert_eq!(pod_security.run_as_non_root, Some(true));
        // etcd, then the API server, start first and keep running (sidecars); the rest after.
        let sidecars = spec.init_containers.unwrap();
        let names: Vec<_> = sidecars.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["etcd", "kube-apiserver"]);
        assert!(sidecars
            .iter()
            .all(|c| c.restart_policy.as_deref() == Some("Always")));
        assert!(sidecars[1].startup_probe.is_some());
        let names: Vec<_> = spec.containers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["kube-controller-manager", "kube-scheduler", "kwok-controller"]
        );
        for container in sidecars.iter().chain(&spec.containers) {
            let security = container.security_context.as_ref().unwrap();
            assert_eq!(
                security.read_only_root_filesystem,
                Some(true),
                "{}",
                container.name
            );
            assert_eq!(security.allow_privilege_escalation, Some(false));
            assert_eq!(security.run_as_non_root, Some(true));
            assert!(security.run_as_user.unwrap() > 0);
            let caps = security.capabilities.as_ref().unwrap();
            assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_owned()][..]));
            assert_eq!(caps.add, None);
            let limits = limits(container.resources.as_ref().unwrap());
            let lite_mib = lite::MEMORY_MIB
                .iter()
                .find(|(n, _)| *n == container.name)
                .unwrap()
                .1;
            assert_eq!(parse_mib(&limits["memory"]), lite_mib, "{}", container.name);
            assert_eq!(parse_millicpu(&limits["cpu"]), 1000);
            assert!(container
                .image
                .as_ref()
                .unwrap()
                .starts_with("registry.test/ckad-lite/"));
        }
        let etcd = &sidecars[0];
        let args = etcd.args.as_ref().unwrap();
        assert!(args.contains(&"--listen-client-urls=http://127.0.0.1:2379".to_owned()));
        assert!(args.contains(&format!("--quota-backend-bytes={}", lite::ETCD_QUOTA_BYTES)));
        let apiserver = &sidecars[1];
        let args = apiserver.args.as_ref().unwrap();
        assert!(args.contains(&"--authorization-mode=Node,RBAC".to_owned()));
        assert!(args.contains(&"--kubelet-preferred-address-types=InternalIP".to_owned()));
    }

    #[test]
    fn the_quota_holds_the_sessions_pods_and_the_limit_range_admits_each_container() {
        let name = ClusterName::generate();
        let tenant = tenant(&name);
        let quota = resource_quota(&tenant).spec.unwrap().hard.unwrap();
        let pod = control_plane_pod(&tenant, &ControlPlaneImages::pinned(""));
        let spec = pod.spec.unwrap();
        let mut containers: Vec<ResourceRequirements> = spec
            .init_containers
            .unwrap()
            .into_iter()
            .chain(spec.containers)
            .map(|c| c.resources.unwrap())
            .collect();
        containers.push(TERMINAL_RESOURCES.requirements());
        let sum = |side: fn(&ResourceRequirements) -> &BTreeMap<String, Quantity>,
                   key: &str,
                   parse: fn(&Quantity) -> i64| {
            containers.iter().map(|r| parse(&side(r)[key])).sum::<i64>()
        };
        assert!(sum(limits, "memory", parse_mib) <= parse_mib(&quota["limits.memory"]));
        assert!(sum(requests, "memory", parse_mib) <= parse_mib(&quota["requests.memory"]));
        assert!(sum(limits, "cpu", parse_millicpu) <= parse_millicpu(&quota["limits.cpu"]));
        assert!(sum(requests, "cpu", parse_millicpu) <= parse_millicpu(&quota["requests.cpu"]));
        assert_eq!(quota["pods"].0, "2");
        assert_eq!(quota["services.nodeports"].0, "0");
        assert_eq!(quota["persistentvolumeclaims"].0, "0");

        let range = limit_range(&tenant).spec.unwrap().limits[0].clone();
        let max = range.max.unwrap();
        for r in &containers {
            assert!(parse_mib(&limits(r)["memory"]) <= parse_mib(&max["memory"]));
            assert!(parse_millicpu(&limits(r)["cpu"]) <= parse_millicpu(&max["cpu"]));
        }
    }

    #[test]
    fn the_network_denies_everything_but_the_terminal_and_the_platform_to_the_api() {
        let name = ClusterName::generate();
        let platform = PlatformPeer {
            namespace: "ckad".into(),
            pod_labels: BTreeMap::from([("app".into(), "ckad-platform".into())]),
        };
        let policies = network_policies(&tenant(&name), Some(&platform));
        let deny = policies[0].spec.as_ref().unwrap();
        assert_eq!(deny.pod_selector, Some(LabelSelector::default()));
        assert_eq!(
            deny.policy_types.as_deref(),
            Some(&["Ingress".to_owned(), "Egress".to_owned()][..])
        );
        assert_eq!((&deny.ingress, &deny.egress), (&None, &None));

        let terminal = policies[1].spec.as_ref().unwrap();
        assert_eq!(terminal.pod_selector, Some(selector(TERMINAL)));
        let egress = terminal.egress.as_ref().unwrap();
        assert_eq!(egress.len(), 1);
        let to = egress[0].to.as_ref().unwrap();
        assert_eq!(to.len(), 1);
        assert_eq!(to[0].pod_selector, Some(selector(CONTROL_PLANE)));
        assert_eq!(to[0].namespace_selector, None, "its own namespace only");
        assert_eq!(
            egress[0].ports.as_ref().unwrap()[0].port,
            Some(IntOrString::Int(APISERVER_PORT))
        );

        let api = policies[2].spec.as_ref().unwrap();
        assert_eq!(api.pod_selector, Some(selector(CONTROL_PLANE)));
        let from = api.ingress.as_ref().unwrap()[0].from.as_ref().unwrap();
        assert_eq!(from.len(), 2);
        assert_eq!(from[0].pod_selector, Some(selector(TERMINAL)));
        let platform_ns = from[1].namespace_selector.as_ref().unwrap();
        assert_eq!(
            platform_ns.match_labels.as_ref().unwrap()["kubernetes.io/metadata.name"],
            "ckad"
        );
        // Without a platform in the host cluster, only the terminal.
        let policies = network_policies(&tenant(&name), None);
        let from = policies[2].spec.as_ref().unwrap().ingress.as_ref().unwrap()[0]
            .from
            .as_ref()
            .unwrap();
        assert_eq!(from.len(), 1);
    }

    #[test]
    fn the_service_reaches_the_api_server_of_its_own_session() {
        let name = ClusterName::generate();
        let service = api_service(&tenant(&name)).spec.unwrap();
        assert_eq!(service.type_.as_deref(), Some("ClusterIP"));
        assert_eq!(service.selector.unwrap()[COMPONENT_LABEL], CONTROL_PLANE);
        let port = &service.ports.unwrap()[0];
        assert_eq!(
            (port.port, port.target_port.clone()),
            (443, Some(IntOrString::Int(6443)))
        );
    }

    const KUBECONFIG: &str = "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n";

    #[test]
    fn the_terminal_is_hardened_like_the_docker_terminal_and_mounts_its_kubeconfig_read_only() {
        let name = ClusterName::generate();
        let kubeconfig = Kubeconfig::from_yaml(KUBECONFIG).unwrap();
        let files = [("config".to_owned(), &kubeconfig)];
        let pod = terminal_pod(&tenant(&name), "ckad/terminal:test", &files);
        assert_eq!(pod.metadata.labels.unwrap()[COMPONENT_LABEL], TERMINAL);
        let spec = pod.spec.unwrap();
        assert_eq!(spec.automount_service_account_token, Some(false));
        assert_eq!(spec.enable_service_links, Some(false));
        assert_eq!(spec.share_process_namespace, Some(true));
        assert_eq!(spec.dns_policy.as_deref(), Some("None"));
        let container = &spec.containers[0];
        let security = container.security_context.as_ref().unwrap();
        assert_eq!(security.run_as_user, Some(1000));
        assert_eq!(security.read_only_root_filesystem, Some(true));
        assert_eq!(security.allow_privilege_escalation, Some(false));
        assert_eq!(
            security.capabilities.as_ref().unwrap().drop.as_deref(),
            Some(&["ALL".to_owned()][..])
        );
        let resources = container.resources.as_ref().unwrap();
        assert_eq!(limits(resources)["memory"].0, "512Mi");
        assert_eq!(limits(resources)["cpu"].0, "500m");
        let mounts = container.volume_mounts.as_ref().unwrap();
        let kube = mounts.iter().find(|m| m.name == "kube").unwrap();
        assert_eq!(
            (kube.mount_path.as_str(), kube.read_only),
            ("/home/ckad/.kube", Some(true))
        );
        let volumes = spec.volumes.unwrap();
        let secret = volumes.iter().find_map(|v| v.secret.as_ref()).unwrap();
        assert_eq!(secret.secret_name.as_deref(), Some(TERMINAL_SECRET));
        let items = secret.items.as_ref().unwrap();
        assert_eq!(
            items.iter().map(|i| (&*i.key, &*i.path)).collect::<Vec<_>>(),
            [("config", "config")]
        );
        for scratch in ["tmp", "home", "course"] {
            let volume = volumes.iter().find(|v| v.name == scratch).unwrap();
            let dir = volume.empty_dir.as_ref().unwrap();
            assert_eq!(dir.medium.as_deref(), Some("Memory"), "{scratch}");
            assert!(dir.size_limit.is_some(), "{scratch}");
        }
    }

    #[test]
    fn an_exams_terminal_finds_each_hosts_kubeconfig_at_its_path_and_no_config() {
        let name = ClusterName::generate();
        let kubeconfig = Kubeconfig::from_yaml(KUBECONFIG).unwrap();
        let files = [
            ("hosts/ckad7326".to_owned(), &kubeconfig),
            ("hosts/ckad5601".to_owned(), &kubeconfig),
        ];
        let secret = terminal_secret(&tenant(&name), &files);
        let keys: Vec<&String> = secret.string_data.as_ref().unwrap().keys().collect();
        assert_eq!(keys, ["hosts.ckad5601", "hosts.ckad7326"]);
        let pod = terminal_pod(&tenant(&name), "ckad/terminal:test", &files);
        let volumes = pod.spec.unwrap().volumes.unwrap();
        let items = volumes
            .iter()
            .find_map(|v| v.secret.as_ref()?.items.clone())
            .unwrap();
        assert_eq!(
            items.iter().map(|i| (&*i.key, &*i.path)).collect::<Vec<_>>(),
            [
                ("hosts.ckad7326", "hosts/ckad7326"),
                ("hosts.ckad5601", "hosts/ckad5601")
            ]
        );
    }

    #[test]
    fn an_exams_terminal_reaches_its_other_hosts_apis_and_they_admit_it_alone() {
        let (own, other, third) = (
            ClusterName::generate(),
            ClusterName::generate(),
            ClusterName::generate(),
        );
        let terminal = tenant(&own);
        let hosts = [own.as_str(), other.as_str(), third.as_str()];
        let policies = host_policies(&terminal, &hosts);
        assert_eq!(policies.len(), 3);
        // All of them the terminal's, wherever they are: removed with it.
        for policy in &policies {
            let labels = policy.metadata.labels.as_ref().unwrap();
            assert_eq!(labels["ckad.cluster"], own.as_str());
            assert_eq!(labels[COMPONENT_LABEL], TERMINAL);
        }
        let namespace_of = |peer: &NetworkPolicyPeer| {
            peer.namespace_selector
                .as_ref()
                .unwrap()
                .match_labels
                .as_ref()
                .unwrap()["kubernetes.io/metadata.name"]
                .clone()
        };

        let egress = &policies[0];
        assert_eq!(egress.metadata.namespace.as_deref(), Some(own.as_str()));
        let spec = egress.spec.as_ref().unwrap();
        assert_eq!(spec.pod_selector, Some(selector(TERMINAL)));
        let rules = spec.egress.as_ref().unwrap();
        assert_eq!(rules.len(), 1);
        let to = rules[0].to.as_ref().unwrap();
        // Its own host's API is the namespace's own policy's; the others' by namespace and pod.
        assert_eq!(
            to.iter().map(namespace_of).collect::<Vec<_>>(),
            [other.as_str(), third.as_str()]
        );
        assert!(to
            .iter()
            .all(|peer| peer.pod_selector == Some(selector(CONTROL_PLANE))));
        assert_eq!(rules[0].ports, Some(vec![api_port()]));

        for (policy, host) in policies[1..].iter().zip([&other, &third]) {
            assert_eq!(policy.metadata.namespace.as_deref(), Some(host.as_str()));
            let spec = policy.spec.as_ref().unwrap();
            assert_eq!(spec.pod_selector, Some(selector(CONTROL_PLANE)));
            let rules = spec.ingress.as_ref().unwrap();
            let from = rules[0].from.as_ref().unwrap();
            assert_eq!(from.len(), 1);
            assert_eq!(namespace_of(&from[0]), own.as_str());
            assert_eq!(from[0].pod_selector, Some(selector(TERMINAL)));
            assert_eq!(rules[0].ports, Some(vec![api_port()]));
        }
        // A terminal of one host needs none: an egress rule without peers would open everything.
        assert!(host_policies(&terminal, &[own.as_str()]).is_empty());
    }

    #[test]
    fn kwok_gets_the_five_stages_kwokctl_writes() {
        use serde::Deserialize;
        let config = kwok_config(&tenant(&ClusterName::generate())).data.unwrap();
        let names: Vec<String> = serde_yaml::Deserializer::from_str(&config["kwok.yaml"])
            .map(|document| {
                let stage = serde_yaml::Value::deserialize(document).unwrap();
                assert_eq!(stage["apiVersion"].as_str(), Some("kwok.x-k8s.io/v1alpha1"));
                assert_eq!(stage["kind"].as_str(), Some("Stage"));
                stage["metadata"]["name"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(
            names,
            [
                "node-initialize",
                "node-heartbeat-with-lease",
                "pod-ready",
                "pod-complete",
                "pod-delete"
            ]
        );
    }
}
