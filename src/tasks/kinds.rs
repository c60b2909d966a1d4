//! The kinds tasks may use, and references to one object of them (`Deployment shop/catalog`).
//! A fixed table rather than discovery: a typo in a kind, an apiVersion or a path's first field is
//! caught when the task loads, not when a learner presses Check.

use std::fmt;

use kube::{
    api::{Api, DynamicObject},
    core::{ApiResource, GroupVersionKind},
};
use serde::{Deserialize, Deserializer};

pub struct Kind {
    pub name: &'static str,
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    pub namespaced: bool,
    /// Its top-level fields besides `apiVersion`, `kind` and `metadata`.
    fields: &'static [&'static str],
    /// Where its pod spec lives, for kinds that run pods.
    pub pod_spec: Option<&'static [&'static str]>,
}

const OBJECT: &[&str] = &["spec", "status"];
const POD: Option<&[&str]> = Some(&["spec"]);
const TEMPLATE: Option<&[&str]> = Some(&["spec", "template", "spec"]);

#[rustfmt::skip]
static KINDS: &[Kind] = &[
    Kind { name: "Namespace", group: "", version: "v1", plural: "namespaces", namespaced: false, fields: OBJECT, pod_spec: None },
    Kind { name: "Node", group: "", version: "v1", plural: "nodes", namespaced: false, fields: OBJECT, pod_spec: None },
    Kind { name: "Pod", group: "", version: "v1", plural: "pods", namespaced: true, fields: OBJECT, pod_spec: POD },
    Kind { name: "Service", group: "", version: "v1", plural: "services", namespaced: true, fields: OBJECT, pod_spec: None },
    Kind { name: "ConfigMap", group: "", version: "v1", plural: "configmaps", namespaced: true, fields: &["data", "binaryData", "immutable"], pod_spec: None },
    Kind { name: "Secret", group: "", version: "v1", plural: "secrets", namespaced: true, fields: &["data", "stringData", "type", "immutable"], pod_spec: None },
    Kind { name: "ServiceAccount", group: "", version: "v1", plural: "serviceaccounts", namespaced: true, fields: &["automountServiceAccountToken", "imagePullSecrets", "secrets"], pod_spec: None },
    Kind { name: "PersistentVolume", group: "", version: "v1", plural: "persistentvolumes", namespaced: false, fields: OBJECT, pod_spec: None },
    Kind { name: "PersistentVolumeClaim", group: "", version: "v1", plural: "persistentvolumeclaims", namespaced: true, fields: OBJECT, pod_spec: None },
    Kind { name: "ResourceQuota", group: "", version: "v1", plural: "resourcequotas", namespaced: true, fields: OBJECT, pod_spec: None },
    Kind { name: "LimitRange", group: "", version: "v1", plural: "limitranges", namespaced: true, fields: &["spec"], pod_spec: None },
    Kind { name: "Deployment", group: "apps", version: "v1", plural: "deployments", namespaced: true, fields: OBJECT, pod_spec: TEMPLATE },
    Kind { name: "ReplicaSet", group: "apps", version: "v1", plural: "replicasets", namespaced: true, fields: OBJECT, pod_spec: TEMPLATE },
    Kind { name: "StatefulSet", group: "apps", version: "v1", plural: "statefulsets", namespaced: true, fields: OBJECT, pod_spec: TEMPLATE },
    Kind { name: "DaemonSet", group: "apps", version: "v1", plural: "daemonsets", namespaced: true, fields: OBJECT, pod_spec: TEMPLATE },
    Kind { name: "Job", group: "batch", version: "v1", plural: "jobs", namespaced: true, fields: OBJECT, pod_spec: TEMPLATE },
    Kind { name: "CronJob", group: "batch", version: "v1", plural: "cronjobs", namespaced: true, fields: OBJECT, pod_spec: Some(&["spec", "jobTemplate", "spec", "template", "spec"]) },
    Kind { name: "HorizontalPodAutoscaler", group: "autoscaling", version: "v2", plural: "horizontalpodautoscalers", namespaced: true, fields: OBJECT, pod_spec: None },
    Kind { name: "PodDisruptionBudget", group: "policy", version: "v1", plural: "poddisruptionbudgets", namespaced: true, fields: OBJECT, pod_spec: None },
    Kind { name: "NetworkPolicy", group: "networking.k8s.io", version: "v1", plural: "networkpolicies", namespaced: true, fields: OBJECT, pod_spec: None },
    Kind { name: "Ingress", group: "networking.k8s.io", version: "v1", plural: "ingresses", namespaced: true, fields: OBJECT, pod_spec: None },
    Kind { name: "IngressClass", group: "networking.k8s.io", version: "v1", plural: "ingressclasses", namespaced: false, fields: &["spec"], pod_spec: None },
    Kind { name: "EndpointSlice", group: "discovery.k8s.io", version: "v1", plural: "endpointslices", namespaced: true, fields: &["addressType", "endpoints", "ports"], pod_spec: None },
    Kind { name: "Role", group: "rbac.authorization.k8s.io", version: "v1", plural: "roles", namespaced: true, fields: &["rules"], pod_spec: None },
    Kind { name: "ClusterRole", group: "rbac.authorization.k8s.io", version: "v1", plural: "clusterroles", namespaced: false, fields: &["rules", "aggregationRule"], pod_spec: None },
    Kind { name: "RoleBinding", group: "rbac.authorization.k8s.io", version: "v1", plural: "rolebindings", namespaced: true, fields: &["roleRef", "subjects"], pod_spec: None },
    Kind { name: "ClusterRoleBinding", group: "rbac.authorization.k8s.io", version: "v1", plural: "clusterrolebindings", namespaced: false, fields: &["roleRef", "subjects"], pod_spec: None },
    Kind { name: "CustomResourceDefinition", group: "apiextensions.k8s.io", version: "v1", plural: "customresourcedefinitions", namespaced: false, fields: OBJECT, pod_spec: None },
    // The custom resources of the CRDs that tasks define (design-custom-resource.md).
    Kind { name: "Backup", group: "ops.example.com", version: "v1", plural: "backups", namespaced: true, fields: OBJECT, pod_spec: None },
];

impl Kind {
    pub fn find(name: &str) -> Option<&'static Kind> {
        KINDS.iter().find(|k| k.name == name)
    }

    pub fn api_version(&self) -> String {
        match self.group {
            "" => self.version.to_owned(),
            group => format!("{group}/{}", self.version),
        }
    }

    pub fn api_resource(&self) -> ApiResource {
        let gvk = GroupVersionKind::gvk(self.group, self.version, self.name);
        ApiResource::from_gvk_with_plural(&gvk, self.plural)
    }

    /// Whether `field` can start a path into an object of this kind.
    pub fn has_field(&self, field: &str) -> bool {
        ["apiVersion", "kind", "metadata"].contains(&field) || self.fields.contains(&field)
    }

    pub fn top_level_fields(&self) -> String {
        let mut all = vec!["metadata"];
        all.extend(self.fields);
        all.join(", ")
    }

    fn list() -> String {
        KINDS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
    }

    /// The kind named, or an error listing those that exist.
    pub fn parse(name: &str) -> Result<&'static Kind, String> {
        Kind::find(name).ok_or_else(|| format!("unknown kind `{name}`; known kinds: {}", Kind::list()))
    }
}

impl fmt::Debug for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// One object: `Kind namespace/name`, or `Kind name` for cluster-scoped kinds.
#[derive(Debug, Clone)]
pub struct ObjectRef {
    pub kind: &'static Kind,
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    pub fn new(kind: &'static Kind, namespace: Option<String>, name: String) -> Result<Self, String> {
        match (&namespace, kind.namespaced) {
            (None, true) => {
                return Err(format!(
                    "a {} is namespaced: write `{} <namespace>/{name}`",
                    kind.name, kind.name
                ))
            }
            (Some(_), false) => {
                return Err(format!(
                    "a {} is not namespaced: write `{} {name}`",
                    kind.name, kind.name
                ))
            }
            _ => {}
        }
        if let Some(namespace) = &namespace {
            check_name("namespace", namespace)?;
        }
        check_name("name", &name)?;
        Ok(Self {
            kind,
            namespace,
            name,
        })
    }

    pub fn api(&self, client: &kube::Client) -> Api<DynamicObject> {
        let resource = self.kind.api_resource();
        match &self.namespace {
            Some(namespace) => Api::namespaced_with(client.clone(), namespace, &resource),
            None => Api::all_with(client.clone(), &resource),
        }
    }
}

/// Names as Kubernetes allows them (RBAC names may also hold `:`).
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-.:".contains(c));
    if valid {
        Ok(())
    } else {
        Err(format!("`{name}` is not a valid {what}"))
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(namespace) => write!(f, "{} {namespace}/{}", self.kind.name, self.name),
            None => write!(f, "{} {}", self.kind.name, self.name),
        }
    }
}

impl TryFrom<&str> for ObjectRef {
    type Error = String;

    fn try_from(text: &str) -> Result<Self, String> {
        let Some((kind, object)) = text.trim().split_once(' ') else {
            return Err(format!("`{text}` is not `Kind namespace/name` or `Kind name`"));
        };
        let kind = Kind::parse(kind)?;
        match object.trim().split_once('/') {
            Some((namespace, name)) => ObjectRef::new(kind, Some(namespace.into()), name.into()),
            None => ObjectRef::new(kind, None, object.trim().into()),
        }
    }
}

impl<'de> Deserialize<'de> for ObjectRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        super::text::parse(deserializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_name_a_known_kind_and_the_right_scope() {
        let deployment = ObjectRef::try_from("Deployment shop/catalog").unwrap();
        assert_eq!(deployment.to_string(), "Deployment shop/catalog");
        let namespace = ObjectRef::try_from("Namespace shop").unwrap();
        assert_eq!(namespace.namespace, None);

        let typo = ObjectRef::try_from("Deploymnet shop/catalog").unwrap_err();
        assert!(typo.starts_with("unknown kind `Deploymnet`"), "{typo}");
        let unscoped = ObjectRef::try_from("Pod front").unwrap_err();
        assert!(unscoped.contains("namespaced"), "{unscoped}");
        let scoped = ObjectRef::try_from("ClusterRole ns/reader").unwrap_err();
        assert!(scoped.contains("not namespaced"), "{scoped}");
        let bad = ObjectRef::try_from("Pod web/Front").unwrap_err();
        assert!(bad.contains("not a valid name"), "{bad}");
    }
}
