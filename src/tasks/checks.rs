//! Declarative checks, evaluated by the server through kube-rs. Each check reads the cluster once
//! within its time limit and, when it fails, says why in words a learner can act on.
//!
//! In a task file a check is a map with one key naming what it checks (`exists`, `absent`,
//! `field`, `labels`, `container`, `replicas`, `pods`, `endpoints`, `access`), and optionally
//! `timeout` and `describe`. Everything a check names is validated when the task loads.

use std::{collections::BTreeMap, fmt, time::Duration};

use k8s_openapi::api::{
    authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec},
    core::v1::Pod,
    discovery::v1::EndpointSlice,
};
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use serde::{
    de::{self, MapAccess, Visitor},
    Deserialize, Deserializer, Serialize,
};
use serde_json::Value;

use super::{
    kinds::{check_name, ObjectRef},
    matching::{contains, holds, same, show},
    path::FieldPath,
    text,
};

/// How long a check may wait for the cluster unless its task says otherwise.
const DEFAULT_LIMIT: Duration = Duration::from_secs(5);
const MAX_LIMIT: Duration = Duration::from_secs(60);

/// What a learner sees of one check after grading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckOutcome {
    pub description: String,
    pub passed: bool,
    /// Why it failed; `None` when it passed.
    pub reason: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Check {
    what: What,
    limit: Duration,
    describe: Option<String>,
}

#[derive(Debug, Clone)]
enum What {
    Exists(ObjectRef),
    Absent(ObjectRef),
    Field(FieldCheck),
    Labels(LabelsCheck),
    Container(ContainerCheck),
    Replicas(ReplicasCheck),
    Pods(PodsCheck),
    Endpoints(EndpointsCheck),
    Access(AccessCheck),
}

impl Check {
    /// What the check asks, in a line.
    pub fn description(&self) -> String {
        if let Some(describe) = &self.describe {
            return describe.clone();
        }
        match &self.what {
            What::Exists(of) => format!("{of} exists"),
            What::Absent(of) => format!("{of} does not exist"),
            What::Field(check) => check.to_string(),
            What::Labels(check) => format!("{} is labelled {}", check.of, labels_text(&check.include)),
            What::Container(check) => {
                let side = if check.init { "init container" } else { "container" };
                format!("{}: {side} {} has {}", check.of, check.name, show(&check.has))
            }
            What::Replicas(check) => format!("{} has {} ready replicas", check.of, check.ready),
            What::Pods(check) => format!(
                "{} Ready pods match {} in namespace {}",
                check.ready, check.selector, check.namespace
            ),
            What::Endpoints(check) => format!("{} has {} ready endpoints", check.of, check.ready),
            What::Access(check) => check.to_string(),
        }
    }

    /// Reads the cluster and judges; a cluster that does not answer within the limit fails the check.
    pub async fn run(&self, client: &kube::Client) -> CheckOutcome {
        let verdict = match tokio::time::timeout(self.limit, self.what.evaluate(client)).await {
            Ok(verdict) => verdict,
            Err(_) => Err(format!(
                "the cluster did not answer within {}",
                humanize(self.limit)
            )),
        };
        CheckOutcome {
            description: self.description(),
            passed: verdict.is_ok(),
            reason: verdict.err(),
        }
    }

    pub fn limit(&self) -> Duration {
        self.limit
    }
}

impl What {
    async fn evaluate(&self, client: &kube::Client) -> Result<(), String> {
        match self {
            What::Exists(of) => fetch(client, of).await.map(drop),
            What::Absent(of) => match of.api(client).get_opt(&of.name).await.map_err(explain)? {
                None => Ok(()),
                Some(_) => Err(format!("{of} still exists")),
            },
            What::Field(check) => check.judge(&fetch(client, &check.of).await?),
            What::Labels(check) => {
                let object = fetch(client, &check.of).await?;
                for (key, wanted) in &check.include {
                    match object.pointer(&format!("/metadata/labels/{}", key.replace('/', "~1"))) {
                        Some(Value::String(found)) if found == wanted => {}
                        Some(found) => {
                            return Err(format!("label {key}: expected {wanted:?}, found {found}"))
                        }
                        None => return Err(format!("label {key}: expected {wanted:?}, found none")),
                    }
                }
                Ok(())
            }
            What::Container(check) => check.judge(&fetch(client, &check.of).await?),
            What::Replicas(check) => {
                let object = fetch(client, &check.of).await?;
                let found = object
                    .pointer("/status/readyReplicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                expect_count(check.ready, found, "ready replicas")
            }
            What::Pods(check) => {
                let pods: Api<Pod> = Api::namespaced(client.clone(), &check.namespace);
                let params = ListParams::default().labels(&check.selector.to_string());
                let pods = pods.list(&params).await.map_err(explain)?.items;
                let ready = pods.iter().filter(|pod| is_ready(pod)).count() as i64;
                expect_count(check.ready, ready, "Ready pods")
                    .map_err(|reason| format!("{reason} (of {} matching pods)", pods.len()))
            }
            What::Endpoints(check) => {
                fetch(client, &check.of).await?;
                let namespace = check.of.namespace.as_deref().expect("a Service is namespaced");
                let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), namespace);
                let params =
                    ListParams::default().labels(&format!("kubernetes.io/service-name={}", check.of.name));
                let ready = slices
                    .list(&params)
                    .await
                    .map_err(explain)?
                    .items
                    .iter()
                    .flat_map(|slice| &slice.endpoints)
                    .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) != Some(false))
                    .count() as i64;
                expect_count(check.ready, ready, "ready endpoints")
            }
            What::Access(check) => check.judge(client).await,
        }
    }
}

fn expect_count(wanted: i64, found: i64, what: &str) -> Result<(), String> {
    if wanted == found {
        Ok(())
    } else {
        Err(format!("expected {wanted} {what}, found {found}"))
    }
}

fn is_ready(pod: &Pod) -> bool {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions.is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The object as JSON, or why it cannot be had.
async fn fetch(client: &kube::Client, of: &ObjectRef) -> Result<Value, String> {
    match of.api(client).get_opt(&of.name).await.map_err(explain)? {
        Some(object) => Ok(serde_json::to_value(object).expect("an object from the API is JSON")),
        None => Err(missing(client, of).await),
    }
}

/// "does not exist", and where an object of that kind and name does exist, since the wrong
/// namespace is the commonest slip.
async fn missing(client: &kube::Client, of: &ObjectRef) -> String {
    let reason = format!("{of} does not exist");
    if of.namespace.is_none() {
        return reason;
    }
    let everywhere: Api<DynamicObject> = Api::all_with(client.clone(), &of.kind.api_resource());
    let params = ListParams::default().fields(&format!("metadata.name={}", of.name));
    let elsewhere: Vec<String> = match everywhere.list(&params).await {
        Ok(list) => list
            .items
            .into_iter()
            .filter_map(|o| o.metadata.namespace)
            .collect(),
        Err(_) => Vec::new(),
    };
    match elsewhere.as_slice() {
        [] => reason,
        [one] => format!("{reason} (there is one in namespace {one})"),
        many => format!("{reason} (there are some in namespaces {})", many.join(", ")),
    }
}

fn explain(error: kube::Error) -> String {
    match error {
        kube::Error::Api(status) => format!("the cluster refused to answer: {}", status.message),
        other => format!("the cluster could not be reached: {other}"),
    }
}

fn humanize(limit: Duration) -> String {
    if limit.subsec_millis() == 0 {
        format!("{}s", limit.as_secs())
    } else {
        format!("{}ms", limit.as_millis())
    }
}

fn labels_text(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A value at a path equals, contains or matches what the task expects.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "FieldCheckFile")]
struct FieldCheck {
    of: ObjectRef,
    path: FieldPath,
    expect: Expectation,
}

#[derive(Debug, Clone)]
enum Expectation {
    Equals(Value),
    Contains(Value),
    /// The pattern as written, and anchored to the whole value.
    Matches(String, regex::Regex),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldCheckFile {
    of: ObjectRef,
    path: FieldPath,
    equals: Option<Value>,
    contains: Option<Value>,
    matches: Option<String>,
}

impl TryFrom<FieldCheckFile> for FieldCheck {
    type Error = String;

    fn try_from(file: FieldCheckFile) -> Result<Self, String> {
        let FieldCheckFile {
            of,
            path,
            equals,
            contains,
            matches,
        } = file;
        if !of.kind.has_field(path.first_field()) {
            return Err(format!(
                "path `{path}` does not start with a field of {} ({})",
                of.kind.name,
                of.kind.top_level_fields()
            ));
        }
        let expect = match (equals, contains, matches) {
            (Some(value), None, None) => Expectation::Equals(value),
            (None, Some(value), None) => Expectation::Contains(value),
            (None, None, Some(pattern)) => {
                let anchored = format!("^(?:{pattern})$");
                let regex = regex::Regex::new(&anchored)
                    .map_err(|e| format!("`matches` is not a regular expression: {e}"))?;
                Expectation::Matches(pattern, regex)
            }
            _ => return Err("a field check needs exactly one of `equals`, `contains`, `matches`".into()),
        };
        Ok(Self { of, path, expect })
    }
}

impl FieldCheck {
    fn judge(&self, object: &Value) -> Result<(), String> {
        let Some(found) = self.path.lookup(object) else {
            return Err(format!("{} is not set", self.path));
        };
        let passed = match &self.expect {
            Expectation::Equals(wanted) => same(wanted, found),
            Expectation::Contains(wanted) => contains(wanted, found),
            Expectation::Matches(_, pattern) => match found {
                Value::String(text) => pattern.is_match(text),
                Value::Number(_) | Value::Bool(_) => pattern.is_match(&found.to_string()),
                _ => false,
            },
        };
        if passed {
            Ok(())
        } else {
            Err(format!(
                "{}: expected {}, found {}",
                self.path,
                self.expect,
                show(found)
            ))
        }
    }
}

impl fmt::Display for Expectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expectation::Equals(value) => write!(f, "{}", show(value)),
            Expectation::Contains(value) => write!(f, "something containing {}", show(value)),
            Expectation::Matches(pattern, _) => write!(f, "a match for /{pattern}/"),
        }
    }
}

impl fmt::Display for FieldCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} is {}", self.of, self.path, self.expect)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct LabelsCheck {
    of: ObjectRef,
    include: BTreeMap<String, String>,
}

/// The fields of a container a check may state; anything else is a typo.
const CONTAINER_FIELDS: &[&str] = &[
    "args",
    "command",
    "env",
    "envFrom",
    "image",
    "imagePullPolicy",
    "lifecycle",
    "livenessProbe",
    "ports",
    "readinessProbe",
    "resources",
    "restartPolicy",
    "securityContext",
    "startupProbe",
    "volumeMounts",
    "workingDir",
];

/// A container of a workload holds (at least) the fields given in `has`.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "ContainerCheckFile")]
struct ContainerCheck {
    of: ObjectRef,
    name: String,
    init: bool,
    has: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContainerCheckFile {
    of: ObjectRef,
    name: String,
    #[serde(default)]
    init: bool,
    has: serde_json::Map<String, Value>,
}

impl TryFrom<ContainerCheckFile> for ContainerCheck {
    type Error = String;

    fn try_from(file: ContainerCheckFile) -> Result<Self, String> {
        if file.of.kind.pod_spec.is_none() {
            return Err(format!("a {} has no containers", file.of.kind.name));
        }
        if let Some(unknown) = file.has.keys().find(|k| !CONTAINER_FIELDS.contains(&k.as_str())) {
            return Err(format!(
                "`{unknown}` is not a container field; use one of {}",
                CONTAINER_FIELDS.join(", ")
            ));
        }
        if file.has.is_empty() {
            return Err("`has` states at least one field".into());
        }
        Ok(Self {
            of: file.of,
            name: file.name,
            init: file.init,
            has: Value::Object(file.has),
        })
    }
}

impl ContainerCheck {
    fn judge(&self, object: &Value) -> Result<(), String> {
        let pod_spec = FieldPath::of_fields(self.of.kind.pod_spec.expect("checked at load"));
        let list = if self.init { "initContainers" } else { "containers" };
        let containers = pod_spec
            .lookup(object)
            .and_then(|spec| spec.get(list))
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let side = if self.init { "init container" } else { "container" };
        let Some(container) = containers
            .iter()
            .find(|c| c.get("name").and_then(Value::as_str) == Some(&self.name))
        else {
            let names: Vec<_> = containers
                .iter()
                .filter_map(|c| c.get("name")?.as_str())
                .collect();
            return Err(if names.is_empty() {
                format!("{} has no {side}s", self.of)
            } else {
                format!(
                    "{} has no {side} named {} (it has {})",
                    self.of,
                    self.name,
                    names.join(", ")
                )
            });
        };
        holds(&self.has, container, "").map_err(|m| format!("{side} {}: {}", self.name, m.0))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "ReplicasCheckFile")]
struct ReplicasCheck {
    of: ObjectRef,
    ready: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplicasCheckFile {
    of: ObjectRef,
    ready: i64,
}

impl TryFrom<ReplicasCheckFile> for ReplicasCheck {
    type Error = String;

    fn try_from(file: ReplicasCheckFile) -> Result<Self, String> {
        if !["Deployment", "ReplicaSet", "StatefulSet"].contains(&file.of.kind.name) {
            return Err(format!("a {} has no ready replicas to count", file.of.kind.name));
        }
        Ok(Self {
            of: file.of,
            ready: file.ready,
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PodsCheck {
    namespace: Namespace,
    selector: Selector,
    ready: i64,
}

#[derive(Debug, Clone)]
struct Namespace(String);

impl TryFrom<&str> for Namespace {
    type Error = String;

    fn try_from(name: &str) -> Result<Self, String> {
        check_name("namespace", name)?;
        Ok(Self(name.to_owned()))
    }
}

impl<'de> Deserialize<'de> for Namespace {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        text::parse(deserializer)
    }
}

impl std::ops::Deref for Namespace {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Equality-based label selector: `app=web,tier=front`.
#[derive(Debug, Clone)]
struct Selector(String);

impl<'de> Deserialize<'de> for Selector {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        text::parse(deserializer)
    }
}

impl TryFrom<&str> for Selector {
    type Error = String;

    fn try_from(text: &str) -> Result<Self, String> {
        let valid_part = |part: &str| {
            part.split_once('=').is_some_and(|(k, v)| {
                !k.is_empty()
                    && k.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
                    && v.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            })
        };
        if text.split(',').all(valid_part) {
            Ok(Self(text.to_owned()))
        } else {
            Err(format!("selector `{text}` is not `key=value[,key=value...]`"))
        }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "EndpointsCheckFile")]
struct EndpointsCheck {
    of: ObjectRef,
    ready: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointsCheckFile {
    of: ObjectRef,
    ready: i64,
}

impl TryFrom<EndpointsCheckFile> for EndpointsCheck {
    type Error = String;

    fn try_from(file: EndpointsCheckFile) -> Result<Self, String> {
        if file.of.kind.name != "Service" {
            return Err(format!(
                "endpoints belong to a Service, not a {}",
                file.of.kind.name
            ));
        }
        Ok(Self {
            of: file.of,
            ready: file.ready,
        })
    }
}

/// Whether a user may do something, asked of the cluster's authorizer (SubjectAccessReview).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessCheck {
    user: String,
    #[serde(default)]
    groups: Vec<String>,
    verb: String,
    resource: String,
    #[serde(default)]
    group: String,
    subresource: Option<String>,
    namespace: Option<Namespace>,
    name: Option<String>,
    allowed: bool,
}

impl AccessCheck {
    async fn judge(&self, client: &kube::Client) -> Result<(), String> {
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(self.user.clone()),
                groups: (!self.groups.is_empty()).then(|| self.groups.clone()),
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(self.verb.clone()),
                    resource: Some(self.resource.clone()),
                    group: Some(self.group.clone()),
                    subresource: self.subresource.clone(),
                    namespace: self.namespace.as_ref().map(|n| n.0.clone()),
                    name: self.name.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let reviews: Api<SubjectAccessReview> = Api::all(client.clone());
        let answer = reviews
            .create(&PostParams::default(), &review)
            .await
            .map_err(explain)?;
        let allowed = answer.status.is_some_and(|s| s.allowed);
        match (self.allowed, allowed) {
            (true, false) => Err(format!("{} is not allowed to {}", self.user, self.action())),
            (false, true) => Err(format!(
                "{} is allowed to {}, and should not be",
                self.user,
                self.action()
            )),
            _ => Ok(()),
        }
    }

    fn action(&self) -> String {
        let mut resource = self.resource.clone();
        if let Some(sub) = &self.subresource {
            resource = format!("{resource}/{sub}");
        }
        if let Some(name) = &self.name {
            resource = format!("{resource} {name}");
        }
        match &self.namespace {
            Some(namespace) => format!("{} {resource} in namespace {namespace}", self.verb),
            None => format!("{} {resource} cluster-wide", self.verb),
        }
    }
}

impl fmt::Display for AccessCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let may = if self.allowed { "can" } else { "cannot" };
        write!(f, "{} {may} {}", self.user, self.action())
    }
}

/// A check's time limit: `5s`, `1500ms`; at most a minute.
fn parse_limit(text: &str) -> Result<Duration, String> {
    let limit = if let Some(ms) = text.strip_suffix("ms") {
        ms.parse().ok().map(Duration::from_millis)
    } else if let Some(s) = text.strip_suffix('s') {
        s.parse().ok().map(Duration::from_secs)
    } else {
        None
    };
    match limit {
        Some(limit) if !limit.is_zero() && limit <= MAX_LIMIT => Ok(limit),
        Some(_) => Err(format!("timeout `{text}` is not between 1ms and 60s")),
        None => Err(format!("timeout `{text}` is not like `5s` or `500ms`")),
    }
}

const CHECK_KINDS: &[&str] = &[
    "exists",
    "absent",
    "field",
    "labels",
    "container",
    "replicas",
    "pods",
    "endpoints",
    "access",
];

impl<'de> Deserialize<'de> for Check {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(CheckVisitor)
    }
}

struct CheckVisitor;

impl<'de> Visitor<'de> for CheckVisitor {
    type Value = Check;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a check: a map with one of {}", CHECK_KINDS.join(", "))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Check, A::Error> {
        let (mut what, mut limit, mut describe) = (None::<(String, What)>, None, None);
        while let Some(key) = map.next_key::<String>()? {
            let found = match key.as_str() {
                "timeout" => {
                    limit = Some(parse_limit(&map.next_value::<String>()?).map_err(de::Error::custom)?);
                    continue;
                }
                "describe" => {
                    describe = Some(map.next_value::<String>()?);
                    continue;
                }
                "exists" => What::Exists(map.next_value()?),
                "absent" => What::Absent(map.next_value()?),
                "field" => What::Field(map.next_value()?),
                "labels" => What::Labels(map.next_value()?),
                "container" => What::Container(map.next_value()?),
                "replicas" => What::Replicas(map.next_value()?),
                "pods" => What::Pods(map.next_value()?),
                "endpoints" => What::Endpoints(map.next_value()?),
                "access" => What::Access(map.next_value()?),
                other => {
                    let mut keys = CHECK_KINDS.to_vec();
                    keys.extend(["timeout", "describe"]);
                    return Err(de::Error::custom(format!(
                        "unknown check key `{other}`; expected one of {}",
                        keys.join(", ")
                    )));
                }
            };
            if let Some((first, _)) = &what {
                return Err(de::Error::custom(format!(
                    "one check checks one thing: found both `{first}` and `{key}`"
                )));
            }
            what = Some((key, found));
        }
        let Some((_, what)) = what else {
            return Err(de::Error::custom(format!(
                "a check needs one of {}",
                CHECK_KINDS.join(", ")
            )));
        };
        Ok(Check {
            what,
            limit: limit.unwrap_or(DEFAULT_LIMIT),
            describe,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(yaml: &str) -> Result<Check, String> {
        serde_yaml::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn checks_describe_themselves() {
        let described = |yaml: &str| check(yaml).unwrap().description();
        assert_eq!(
            described("exists: Deployment shop/catalog"),
            "Deployment shop/catalog exists"
        );
        assert_eq!(
            described("replicas: { of: Deployment shop/catalog, ready: 3 }"),
            "Deployment shop/catalog has 3 ready replicas"
        );
        assert_eq!(
            described("field: { of: Service web/front, path: spec.type, equals: NodePort }"),
            "Service web/front: spec.type is \"NodePort\""
        );
        assert_eq!(
            described("access: { user: jane, verb: list, resource: pods, namespace: dev, allowed: false }"),
            "jane cannot list pods in namespace dev"
        );
        assert_eq!(
            described("{ exists: Namespace shop, describe: The namespace is there }"),
            "The namespace is there"
        );
    }

    #[test]
    fn mistakes_in_a_check_are_named() {
        for (yaml, why) in [
            ("exist: Pod a/b", "unknown check key `exist`"),
            (
                "{ exists: Pod a/b, absent: Pod a/b }",
                "found both `exists` and `absent`",
            ),
            ("timeout: 5s", "a check needs one of"),
            ("{ exists: Pod a/b, timeout: 5 minutes }", "timeout `5 minutes`"),
            (
                "field: { of: Deployment a/b, path: sepc.replicas, equals: 3 }",
                "does not start with a field of Deployment",
            ),
            (
                "field: { of: Deployment a/b, path: spec.replicas }",
                "exactly one of",
            ),
            (
                "field: { of: Deployment a/b, path: spec..replicas, equals: 1 }",
                "malformed path",
            ),
            (
                "field: { of: Pod a/b, path: spec.x, matches: '(' }",
                "not a regular expression",
            ),
            (
                "container: { of: Service a/b, name: c, has: { image: x } }",
                "a Service has no containers",
            ),
            (
                "container: { of: Pod a/b, name: c, has: { imgae: x } }",
                "`imgae` is not a container field",
            ),
            ("replicas: { of: Job a/b, ready: 1 }", "no ready replicas"),
            (
                "pods: { namespace: a, selector: 'app in (x)', ready: 1 }",
                "is not `key=value",
            ),
            ("endpoints: { of: Pod a/b, ready: 1 }", "belong to a Service"),
            ("exists: { of: Pod a/b }", "invalid type"),
        ] {
            let error = check(yaml).unwrap_err();
            assert!(error.contains(why), "{yaml}: {error}");
        }
    }

    #[test]
    fn field_checks_explain_what_they_found() {
        let object = json!({ "spec": { "replicas": 2, "type": "ClusterIP" } });
        let judged = |yaml: &str| match check(yaml).unwrap().what {
            What::Field(field) => field.judge(&object),
            _ => unreachable!(),
        };
        assert_eq!(
            judged("field: { of: Deployment a/b, path: spec.replicas, equals: 3 }"),
            Err("spec.replicas: expected 3, found 2".into())
        );
        assert_eq!(
            judged("field: { of: Deployment a/b, path: spec.paused, equals: true }"),
            Err("spec.paused is not set".into())
        );
        assert_eq!(
            judged("field: { of: Service a/b, path: spec.type, matches: 'Cluster.*' }"),
            Ok(())
        );
        assert_eq!(
            judged("field: { of: Service a/b, path: spec.type, matches: 'Node.*' }"),
            Err("spec.type: expected a match for /Node.*/, found \"ClusterIP\"".into())
        );
    }
}
