//! `kubernetes`: each session a tenant of an existing host cluster (docs/kubernetes-provider.md).
//! Its namespace holds `lite`'s control plane as one pod behind a Service, the Secrets of a PKI
//! the platform makes, and the policies that keep it in: Pod Security `restricted`, a
//! default-deny network with the terminal let through to its own API only (an exam's terminal to
//! its hosts' too), a quota and limits.
//! Deleting the namespace deletes the session; the namespace's labels find orphans.
//! [`KubernetesProvider`] is the [`ClusterProvider`](super::ClusterProvider) over it.

mod access;
mod objects;
mod pki;
mod provider;
mod tunnel;

use std::{collections::BTreeMap, net::IpAddr, time::Duration};

use k8s_openapi::api::core::v1::{ConfigMap, LimitRange, Namespace, Pod, ResourceQuota, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{RoleBinding, Subject};
use kube::{
    api::{Api, DeleteParams, ListParams, PostParams},
    Resource,
};

pub use access::{platform_binding, PLATFORM_BINDING};
pub use objects::{
    api_service, control_plane_pod, control_plane_secret, hardened, hardened_pod, host_policies,
    kubeconfig_secret, kwok_config, limit_range, namespace, network_policies, resource_quota, terminal_pod,
    terminal_secret, ControlPlaneImages, PlatformPeer, Resources, APISERVER_PORT, API_PORT, API_SERVICE,
    COMPONENT_LABEL, CONTROL_PLANE, CONTROL_PLANE_SECRET, LEARNER_HOME, PLATFORM_SECRET, QUOTA, TERMINAL,
    TERMINAL_RESOURCES, TERMINAL_SECRET,
};
pub use pki::{ApiAddresses, Identity, KeyedCert, Pki};
pub use provider::{host_client, KubernetesProvider};
pub use tunnel::ApiTunnel;

use super::{
    lite, wait_until_healthy, ClusterError, ClusterName, Kubeconfig, CLUSTER_LABEL, INSTANCE_LABEL,
    PLATFORM_LABEL, SESSION_ROLE,
};

/// The value of [`PLATFORM_LABEL`] on a session's namespace.
const PROVIDER: &str = "kubernetes";
/// The host's controllers count a new quota and give a Service its address within moments; this
/// is only a bound on a broken host.
const SETTLE_LIMIT: Duration = Duration::from_secs(30);
/// A namespace goes once its pods have ended (5 s of grace for the control plane).
const DELETE_LIMIT: Duration = Duration::from_secs(120);
const READY_LIMIT: Duration = Duration::from_secs(60);

/// One session on the host cluster, and the platform instance that owns it.
#[derive(Debug, Clone, Copy)]
pub struct Tenant<'a> {
    pub cluster: &'a ClusterName,
    pub instance: &'a str,
}

impl Tenant<'_> {
    /// The namespace is the cluster's name (`ckad-` and ten hex digits: a valid DNS label).
    pub fn namespace(&self) -> &str {
        self.cluster.as_str()
    }

    /// The labels every object of the session carries.
    pub fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (PLATFORM_LABEL.to_owned(), PROVIDER.to_owned()),
            (INSTANCE_LABEL.to_owned(), self.instance.to_owned()),
            (CLUSTER_LABEL.to_owned(), self.cluster.to_string()),
        ])
    }
}

/// A session's control plane as made on the host.
#[derive(Debug, Clone)]
pub struct SessionControlPlane {
    pub namespace: String,
    /// The API's Service address; both kubeconfigs name it.
    pub service_ip: IpAddr,
    /// The platform's (also in the Secret [`PLATFORM_SECRET`], for every replica).
    pub platform_kubeconfig: Kubeconfig,
    /// The learner's, for the terminal runtime (`terminals::PodTerminals` mounts it from the
    /// Secret [`TERMINAL_SECRET`]).
    pub terminal_kubeconfig: Kubeconfig,
}

/// The host cluster, as the platform instance `instance` uses it.
pub struct HostCluster {
    client: kube::Client,
    instance: String,
    images: ControlPlaneImages,
    platform: Option<PlatformPeer>,
    /// The ClusterRole bound to the platform in each session namespace.
    session_role: String,
    /// The platform's identity on the host, asked once.
    subject: tokio::sync::OnceCell<Subject>,
}

impl HostCluster {
    pub fn new(
        client: kube::Client,
        instance: &str,
        images: ControlPlaneImages,
        platform: Option<PlatformPeer>,
    ) -> Self {
        Self {
            client,
            instance: instance.to_owned(),
            images,
            platform,
            session_role: SESSION_ROLE.to_owned(),
            subject: tokio::sync::OnceCell::new(),
        }
    }

    /// Binds `role` in session namespaces instead of [`SESSION_ROLE`] (`HOST_SESSION_ROLE`).
    pub fn with_session_role(mut self, role: &str) -> Self {
        role.clone_into(&mut self.session_role);
        self
    }

    fn tenant<'a>(&'a self, name: &'a ClusterName) -> Tenant<'a> {
        Tenant {
            cluster: name,
            instance: &self.instance,
        }
    }

    fn api<K>(&self, name: &ClusterName) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), name.as_str())
    }

    /// Makes the session's namespace and control plane; on failure the namespace (and so
    /// everything made in it) is deleted before the error returns. The pod is started, not
    /// awaited: [`bring_up`] waits for its API from wherever the platform reaches it.
    pub async fn create(&self, name: &ClusterName) -> Result<SessionControlPlane, ClusterError> {
        let created = self.try_create(name).await;
        if created.is_err() {
            if let Err(error) = self.delete(name).await {
                tracing::error!(cluster = %name, %error, "rollback of a session namespace failed");
            }
        }
        created
    }

    async fn try_create(&self, name: &ClusterName) -> Result<SessionControlPlane, ClusterError> {
        let tenant = self.tenant(name);
        let post = PostParams::default();
        Api::<Namespace>::all(self.client.clone())
            .create(&post, &namespace(&tenant))
            .await?;
        // The platform's rights here: the session role, which it holds nowhere but in its sessions.
        let subject = self
            .subject
            .get_or_try_init(|| access::own_subject(&self.client))
            .await?;
        let binding = platform_binding(&tenant, &self.session_role, subject.clone());
        self.api::<RoleBinding>(name).create(&post, &binding).await?;
        // The fences first, so that no pod ever exists without them.
        let quotas = self.api::<ResourceQuota>(name);
        let quota = resource_quota(&tenant);
        access::once_bound(|| quotas.create(&post, &quota)).await?;
        self.wait_for_quota(name).await?;
        self.api::<LimitRange>(name)
            .create(&post, &limit_range(&tenant))
            .await?;
        let policies = self.api::<NetworkPolicy>(name);
        for policy in network_policies(&tenant, self.platform.as_ref()) {
            policies.create(&post, &policy).await?;
        }

        let service = self
            .api::<Service>(name)
            .create(&post, &api_service(&tenant))
            .await?;
        let service_ip = match service_ip(&service) {
            Some(ip) => ip,
            None => self.wait_for_service_ip(name).await?,
        };
        let pki = Pki::generate(&objects::api_addresses(&tenant, service_ip))?;
        let server = format!(
            "https://{}",
            std::net::SocketAddr::new(service_ip, API_PORT as u16)
        );
        let platform_kubeconfig = pki.kubeconfig(Identity::Platform, &server)?;
        let terminal_kubeconfig = pki.kubeconfig(Identity::Learner, &server)?;

        let secrets = self.api::<Secret>(name);
        secrets
            .create(&post, &control_plane_secret(&tenant, &pki)?)
            .await?;
        secrets
            .create(
                &post,
                &kubeconfig_secret(&tenant, PLATFORM_SECRET, CONTROL_PLANE, &platform_kubeconfig),
            )
            .await?;
        self.api::<ConfigMap>(name)
            .create(&post, &kwok_config(&tenant))
            .await?;
        self.api::<Pod>(name)
            .create(&post, &control_plane_pod(&tenant, &self.images))
            .await?;
        Ok(SessionControlPlane {
            namespace: tenant.namespace().to_owned(),
            service_ip,
            platform_kubeconfig,
            terminal_kubeconfig,
        })
    }

    /// Until the quota controller has counted the namespace, the API refuses every object the
    /// quota counts ("status unknown for quota").
    async fn wait_for_quota(&self, name: &ClusterName) -> Result<(), ClusterError> {
        let quotas = self.api::<ResourceQuota>(name);
        let poll = async {
            loop {
                let quota = quotas.get(QUOTA).await?;
                if quota.status.and_then(|s| s.hard).is_some_and(|h| !h.is_empty()) {
                    return Ok::<_, ClusterError>(());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        tokio::time::timeout(SETTLE_LIMIT, poll)
            .await
            .map_err(|_| ClusterError::Timeout {
                what: "the namespace's quota being counted".into(),
                limit: SETTLE_LIMIT,
            })?
    }

    async fn wait_for_service_ip(&self, name: &ClusterName) -> Result<IpAddr, ClusterError> {
        let services = self.api::<Service>(name);
        let poll = async {
            loop {
                if let Some(ip) = service_ip(&services.get(API_SERVICE).await?) {
                    return Ok::<_, ClusterError>(ip);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        };
        tokio::time::timeout(SETTLE_LIMIT, poll)
            .await
            .map_err(|_| ClusterError::Timeout {
                what: "the API Service's address".into(),
                limit: SETTLE_LIMIT,
            })?
    }

    /// Deletes the session's namespace, and with it everything of the session, and waits until
    /// it is gone; deleting what is gone succeeds.
    pub async fn delete(&self, name: &ClusterName) -> Result<(), ClusterError> {
        let namespaces = Api::<Namespace>::all(self.client.clone());
        match namespaces.get_opt(name.as_str()).await? {
            None => return Ok(()),
            // Never a namespace that is not this instance's session.
            Some(found) if !self.owns(&found) => {
                return Err(ClusterError::Unavailable(format!(
                    "namespace {name} is not a session of this platform"
                )))
            }
            Some(_) => {}
        }
        match namespaces.delete(name.as_str(), &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        let gone = async {
            while namespaces.get_opt(name.as_str()).await?.is_some() {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Ok::<_, ClusterError>(())
        };
        tokio::time::timeout(DELETE_LIMIT, gone)
            .await
            .map_err(|_| ClusterError::Timeout {
                what: format!("namespace {name} going away"),
                limit: DELETE_LIMIT,
            })?
    }

    fn owns(&self, namespace: &Namespace) -> bool {
        let labels = namespace.metadata.labels.as_ref();
        let label = |key: &str| labels.and_then(|l| l.get(key)).map(String::as_str);
        label(PLATFORM_LABEL) == Some(PROVIDER) && label(INSTANCE_LABEL) == Some(&self.instance)
    }

    /// The sessions this instance has on the host, by their namespaces' labels, however far
    /// their create got (a namespace being deleted included).
    pub async fn list(&self) -> Result<Vec<ClusterName>, ClusterError> {
        let selector = format!("{PLATFORM_LABEL}={PROVIDER},{INSTANCE_LABEL}={}", self.instance);
        let namespaces = Api::<Namespace>::all(self.client.clone())
            .list(&ListParams::default().labels(&selector))
            .await?;
        Ok(namespaces
            .items
            .iter()
            .filter_map(|ns| ns.metadata.name.as_deref())
            .filter_map(|name| ClusterName::parse(name).ok())
            .collect())
    }
}

fn service_ip(service: &Service) -> Option<IpAddr> {
    service.spec.as_ref()?.cluster_ip.as_deref()?.parse().ok()
}

/// Once the session's API answers through `session` (a client of the platform's kubeconfig,
/// however it is reached): its simulated node, then a Ready node, as for `lite`.
pub async fn bring_up(session: &kube::Client) -> Result<(), ClusterError> {
    lite::wait_until_api_answers(session).await?;
    lite::add_simulated_node(session).await?;
    wait_until_healthy(session, READY_LIMIT).await
}
