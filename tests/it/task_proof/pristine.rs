//! A cluster put back the way it was made, so that the proof can try one answer after another on
//! it instead of making a cluster per answer (making one costs about ten CPU-seconds, most of the
//! proof's time). What "back" means: every object a fresh cluster did not have is gone, and every
//! object it had carries its first labels, annotations and spec again (an answer may label or
//! taint the node, or label a namespace). An answer that leaves the cluster so that it cannot be
//! put back (it deleted what nothing makes again) gets the worker a fresh cluster instead.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use kube::{
    api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams},
    discovery::{verbs, ApiResource, Discovery},
};
use serde_json::Value;

/// Objects that change by themselves or that nothing grades: never compared, never removed
/// (events in a removed namespace go with it).
const LEFT_ALONE: [&str; 5] = ["Event", "Lease", "Endpoints", "EndpointSlice", "ComponentStatus"];
/// A cluster that is not back within this is replaced.
const LIMIT: Duration = Duration::from_secs(60);

/// Where an object is: its kind's resource, its namespace and name.
type Place = (String, Option<String>, String);

/// What a fresh cluster holds.
pub struct Pristine {
    resources: Vec<ApiResource>,
    /// Each object's labels, annotations and spec, by place.
    objects: HashMap<Place, Value>,
}

/// The parts of an object an answer may change on something the cluster came with.
fn shape(object: &DynamicObject) -> Value {
    serde_json::json!({
        "labels": object.metadata.labels,
        "annotations": object.metadata.annotations,
        "spec": object.data.get("spec"),
    })
}

fn place(resource: &ApiResource, object: &DynamicObject) -> Place {
    (
        resource_key(resource),
        object.metadata.namespace.clone(),
        object.metadata.name.clone().unwrap_or_default(),
    )
}

fn api(client: &kube::Client, resource: &ApiResource, namespace: Option<&str>) -> Api<DynamicObject> {
    match namespace {
        Some(namespace) => Api::namespaced_with(client.clone(), namespace, resource),
        None => Api::all_with(client.clone(), resource),
    }
}

impl Pristine {
    /// Records what `client`'s cluster holds now.
    pub async fn record(client: &kube::Client) -> Result<Self, String> {
        let discovery = Discovery::new(client.clone())
            .run()
            .await
            .map_err(|e| format!("discovery: {e}"))?;
        let resources = discovery
            .groups()
            .flat_map(|group| group.recommended_resources())
            .filter(|(resource, can)| {
                can.supports_operation(verbs::LIST)
                    && can.supports_operation(verbs::DELETE)
                    && !LEFT_ALONE.contains(&resource.kind.as_str())
            })
            .map(|(resource, _)| resource)
            .collect();
        let mut pristine = Self {
            resources,
            objects: HashMap::new(),
        };
        // Controllers go on making and marking things for a while after the cluster is healthy
        // (each namespace's root CA and default account, the node's annotations): what it holds
        // is what stays the same for a second once every namespace has both.
        let started = Instant::now();
        loop {
            let now = pristine.shapes(client).await?;
            if now == pristine.objects && every_namespace_made(&now) {
                return Ok(pristine);
            }
            if started.elapsed() > LIMIT {
                return Err(format!("the fresh cluster did not settle within {LIMIT:?}"));
            }
            pristine.objects = now;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn shapes(&self, client: &kube::Client) -> Result<HashMap<Place, Value>, String> {
        Ok(list(client, &self.resources)
            .await?
            .into_iter()
            .map(|(resource, object)| (place(&resource, &object), shape(&object)))
            .collect())
    }

    /// Puts the cluster back: deletes what is new at once (also what is in a new namespace, whose
    /// own clean-up would wait out pods' grace periods), clears the finalizers of what is being
    /// deleted (an answer's own, a claim's protection) and finalizes an emptied namespace, puts
    /// back what changed, and waits until all of it is so and nothing first there is missing.
    /// Between two looks at everything, it watches only the kinds that still had work, since
    /// listing every kind again and again would cost the cluster more than the answers do.
    pub async fn restore(&self, client: &kube::Client) -> Result<(), String> {
        let started = Instant::now();
        let mut watched: Option<Vec<ApiResource>> = None;
        loop {
            let whole = watched.is_none();
            let everything = list(client, watched.as_deref().unwrap_or(&self.resources)).await?;
            let mut left = self.act(client, &everything).await;
            if whole {
                // What an answer deleted comes back only if a controller makes it again.
                let here: HashSet<Place> = everything.iter().map(|(r, o)| place(r, o)).collect();
                left.extend(
                    self.objects
                        .keys()
                        .filter(|at| !here.contains(*at))
                        .map(|at| (at.clone(), "gone".to_owned())),
                );
            }
            if left.is_empty() {
                if whole {
                    return Ok(());
                }
                watched = None;
                continue;
            }
            if started.elapsed() > LIMIT {
                let left: Vec<String> = left
                    .iter()
                    .map(|((kind, ns, name), why)| {
                        format!("{kind} {}/{name}: {why}", ns.as_deref().unwrap_or_default())
                    })
                    .collect();
                return Err(format!("not back after {LIMIT:?}: {}", left.join(", ")));
            }
            let dirty: HashSet<&str> = left.iter().map(|((kind, _, _), _)| kind.as_str()).collect();
            watched = Some(
                self.resources
                    .iter()
                    .filter(|resource| dirty.contains(resource_key(resource).as_str()))
                    .cloned()
                    .collect(),
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Does what each listed object needs and returns those not yet as they were, each with what
    /// was done or went wrong.
    async fn act(
        &self,
        client: &kube::Client,
        everything: &[(ApiResource, DynamicObject)],
    ) -> Vec<(Place, String)> {
        let occupied: HashSet<&str> = everything
            .iter()
            .filter(|(resource, object)| !self.objects.contains_key(&place(resource, object)))
            .filter_map(|(_, object)| object.metadata.namespace.as_deref())
            .collect();
        let mut left = Vec::new();
        for (resource, object) in everything {
            let at = place(resource, object);
            let objects = api(client, resource, at.1.as_deref());
            let deleting = object.metadata.deletion_timestamp.is_some();
            let (done, outcome) = match self.objects.get(&at) {
                Some(first) if *first == shape(object) => continue,
                Some(first) => (
                    "put back",
                    objects
                        .replace(&at.2, &PostParams::default(), &put_back(object.clone(), first))
                        .await
                        .map(drop),
                ),
                // An emptied namespace waits for its controller's next pass, seconds away.
                None if resource.kind == "Namespace" && deleting && !occupied.contains(at.2.as_str()) => {
                    let mut finalized = object.clone();
                    finalized.data["spec"]["finalizers"] = serde_json::json!([]);
                    (
                        "finalized",
                        objects
                            .replace_subresource("finalize", &at.2, &PostParams::default(), &finalized)
                            .await
                            .map(drop),
                    )
                }
                None if deleting && object.metadata.finalizers.as_ref().is_some_and(|f| !f.is_empty()) => {
                    let clear = serde_json::json!({ "metadata": { "finalizers": null } });
                    (
                        "finalizers cleared",
                        objects
                            .patch(&at.2, &PatchParams::default(), &Patch::Merge(&clear))
                            .await
                            .map(drop),
                    )
                }
                None if deleting => ("being deleted", Ok(())),
                None => (
                    "deleted",
                    objects
                        .delete(&at.2, &DeleteParams::background().grace_period(0))
                        .await
                        .map(drop),
                ),
            };
            let why = match outcome {
                Ok(()) => done.to_owned(),
                Err(e) => format!("{done}: {e}"),
            };
            left.push((at, why));
        }
        left
    }
}

/// Every object of these kinds.
async fn list(
    client: &kube::Client,
    resources: &[ApiResource],
) -> Result<Vec<(ApiResource, DynamicObject)>, String> {
    let lists = resources.iter().map(|resource| async move {
        let listed = api(client, resource, None)
            .list(&ListParams::default())
            .await
            .map_err(|e| format!("listing {}: {e}", resource.plural))?;
        Ok::<_, String>(listed.items.into_iter().map(|object| (resource.clone(), object)))
    });
    let all = futures_util::future::try_join_all(lists).await?;
    Ok(all.into_iter().flatten().collect())
}

/// How [`place`] names a resource.
fn resource_key(resource: &ApiResource) -> String {
    format!("{}/{}", resource.group, resource.plural)
}

/// Whether each namespace has what the controllers make in every one.
fn every_namespace_made(objects: &HashMap<Place, Value>) -> bool {
    let has = |resource: &str, namespace: &str, name: &str| {
        let at = (resource.to_owned(), Some(namespace.to_owned()), name.to_owned());
        objects.contains_key(&at)
    };
    objects
        .keys()
        .filter(|(resource, _, _)| resource == "/namespaces")
        .all(|(_, _, namespace)| {
            has("/serviceaccounts", namespace, "default") && has("/configmaps", namespace, "kube-root-ca.crt")
        })
}

/// `object` with the labels, annotations and spec it first had.
fn put_back(mut object: DynamicObject, first: &Value) -> DynamicObject {
    object.metadata.labels = serde_json::from_value(first["labels"].clone()).unwrap_or_default();
    object.metadata.annotations = serde_json::from_value(first["annotations"].clone()).unwrap_or_default();
    if !first["spec"].is_null() {
        object.data["spec"] = first["spec"].clone();
    }
    object
}
