//! The platform's rights in a session's namespace. On the host it holds, cluster-wide, only what
//! makes and removes its namespaces and lets it bind one ClusterRole, the session role
//! (deploy/kubernetes/10-rbac.yaml); each session namespace it makes gets a RoleBinding of that
//! role to the platform's own identity, so Secrets and pods elsewhere stay out of its reach. The
//! host's admission policy lets it bind that role to itself, in its sessions' namespaces, only.

use std::{future::Future, time::Duration};

use k8s_openapi::api::{
    authentication::v1::{SelfSubjectReview, UserInfo},
    rbac::v1::{RoleBinding, RoleRef, Subject},
};
use kube::api::{Api, PostParams};
use tokio::time::Instant;

use super::{objects::meta, Tenant};
use crate::clusters::ClusterError;

/// The RoleBinding in every session namespace.
pub const PLATFORM_BINDING: &str = "ckad-platform";
/// Each API server sees a new binding through its own cache, within moments; this only bounds a
/// broken host.
const RIGHTS_LIMIT: Duration = Duration::from_secs(15);

/// Who the host says the platform is (in the host its ServiceAccount; outside it whoever the
/// kubeconfig names), as a RoleBinding's subject: a `User` of that name, which RBAC matches for a
/// ServiceAccount's token too (`system:serviceaccount:<namespace>:<name>`).
pub async fn own_subject(host: &kube::Client) -> Result<Subject, ClusterError> {
    let review = Api::<SelfSubjectReview>::all(host.clone())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await?;
    subject(&review.status.and_then(|s| s.user_info).unwrap_or_default())
}

fn subject(user: &UserInfo) -> Result<Subject, ClusterError> {
    match user.username.as_deref() {
        Some(name) if !name.is_empty() => Ok(Subject {
            kind: "User".into(),
            api_group: Some("rbac.authorization.k8s.io".into()),
            name: name.into(),
            namespace: None,
        }),
        _ => Err(ClusterError::Unavailable(
            "the host cluster does not say who the platform is (an anonymous client?)".into(),
        )),
    }
}

/// `role` (a ClusterRole) bound to `subject` in the session's namespace, and to nothing else.
pub fn platform_binding(tenant: &Tenant<'_>, role: &str, subject: Subject) -> RoleBinding {
    RoleBinding {
        metadata: meta(tenant, PLATFORM_BINDING, None),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "ClusterRole".into(),
            name: role.into(),
        },
        subjects: Some(vec![subject]),
    }
}

/// The first `call` after the binding was made: refused (403) until the API server's RBAC cache
/// has the binding, so retried while it is, for [`RIGHTS_LIMIT`] at most.
pub async fn once_bound<T, F, Fut>(mut call: F) -> Result<T, ClusterError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let bound = Instant::now();
    let mut refusals = 0u32;
    loop {
        match call().await {
            Ok(done) => {
                tracing::info!(
                    waited_ms = bound.elapsed().as_millis() as u64,
                    refusals,
                    "the platform's rights in the session's namespace hold"
                );
                return Ok(done);
            }
            Err(kube::Error::Api(status)) if status.code == 403 => {
                if bound.elapsed() >= RIGHTS_LIMIT {
                    return Err(ClusterError::Unavailable(format!(
                        "the platform's rights in the session's namespace did not hold within \
                         {RIGHTS_LIMIT:?} of their binding (may the platform bind HOST_SESSION_ROLE?): {}",
                        status.message
                    )));
                }
                refusals += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clusters::ClusterName;

    fn user(name: &str) -> UserInfo {
        UserInfo {
            username: Some(name.into()),
            ..Default::default()
        }
    }

    #[test]
    fn the_platform_binds_itself_by_the_name_the_host_knows_it_by() {
        for name in [
            "system:serviceaccount:ckad-platform:ckad-platform",
            "kubernetes-admin",
        ] {
            assert_eq!(
                subject(&user(name)).unwrap(),
                Subject {
                    kind: "User".into(),
                    name: name.into(),
                    namespace: None,
                    api_group: Some("rbac.authorization.k8s.io".into()),
                }
            );
        }
        assert!(subject(&UserInfo::default()).is_err());
        assert!(subject(&user("")).is_err());
    }

    #[test]
    fn the_binding_grants_the_session_role_to_the_platform_alone_in_its_namespace() {
        let name = ClusterName::generate();
        let tenant = Tenant {
            cluster: &name,
            instance: "test-instance",
        };
        let platform = subject(&user("system:serviceaccount:ckad-platform:ckad-platform")).unwrap();
        let binding = platform_binding(&tenant, "ckad-platform-sessions", platform.clone());

        assert_eq!(binding.metadata.name.as_deref(), Some(PLATFORM_BINDING));
        assert_eq!(binding.metadata.namespace.as_deref(), Some(name.as_str()));
        let labels = binding.metadata.labels.unwrap();
        assert_eq!(labels["ckad.platform"], "kubernetes");
        assert_eq!(labels["ckad.instance"], "test-instance");
        assert_eq!(labels["ckad.cluster"], name.as_str());
        // A ClusterRole (a Role would have to be made in each namespace, which needs `escalate`).
        assert_eq!(
            binding.role_ref,
            RoleRef {
                api_group: "rbac.authorization.k8s.io".into(),
                kind: "ClusterRole".into(),
                name: "ckad-platform-sessions".into(),
            }
        );
        assert_eq!(binding.subjects, Some(vec![platform]));
    }
}
