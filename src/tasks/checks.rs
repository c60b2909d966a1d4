//! Declarative checks, evaluated by the server through kube-rs. Each check reads the cluster once
//! within its time limit and, when it fails, says what it found, in words a learner can act on,
//! never the value it expected (that may be the answer the learner must find).
//!
//! In a task file a check is a map with one key naming what it checks (see [`CHECK_KINDS`]), and
//! optionally `points`, `timeout`, `describe` and `secret`. Everything a check names is
//! validated when the task loads.

use std::{collections::BTreeMap, fmt, time::Duration};

use k8s_openapi::api::{
    authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec},
    core::v1::Pod,
    discovery::v1::EndpointSlice,
};
use kube::api::{Api, ListParams, PostParams};
use serde::{
    de::{self, MapAccess, Visitor},
    Deserialize, Deserializer,
};
use serde_json::Value;

use super::{
    behaviour::{EventCheck, ExecCheck, HttpCheck, LogsCheck, RestartsCheck},
    container::ContainerCheck,
    expect::{Count, ValueTest, ValueTestFile},
    files::FileCheck,
    kinds::{check_name, ObjectRef},
    path::FieldPath,
    reading::{explain, fetch},
    service::PortCheck,
    text, Target,
};

/// How long a check may wait for the cluster unless its task says otherwise.
const DEFAULT_LIMIT: Duration = Duration::from_secs(5);
const MAX_LIMIT: Duration = Duration::from_secs(60);
const HTTP_LIMIT: Duration = Duration::from_secs(30);
const CONTAINER_LIMIT: Duration = Duration::from_secs(10);

/// What a learner sees of one check after grading: the wire type itself.
pub use app::api::CheckResult;

/// A task's score from its graded checks: the points of the checks that pass, or nothing when a
/// guard fails.
pub fn score(outcomes: &[CheckResult]) -> u32 {
    if outcomes.iter().any(|o| o.guard && !o.passed) {
        return 0;
    }
    outcomes.iter().filter(|o| o.passed).map(|o| o.points).sum()
}

#[derive(Debug, Clone)]
pub struct Check {
    what: What,
    limit: Duration,
    describe: Option<String>,
    points: Option<u32>,
}

#[derive(Debug, Clone)]
enum What {
    Exists(ObjectRef),
    Absent(ObjectRef),
    Field(FieldCheck),
    Labels(LabelsCheck),
    Container(ContainerCheck),
    Port(PortCheck),
    Replicas(ReplicasCheck),
    RolledOut(RolledOut),
    Revision(RevisionCheck),
    Pods(PodsCheck),
    Endpoints(EndpointsCheck),
    Access(AccessCheck),
    File(FileCheck),
    Logs(LogsCheck),
    Exec(ExecCheck),
    Http(HttpCheck),
    Restarts(RestartsCheck),
    Event(EventCheck),
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
            What::Container(check) => check.to_string(),
            What::Port(check) => check.to_string(),
            What::Replicas(check) => format!("{} has {} ready replicas", check.of, check.ready),
            What::RolledOut(check) => format!("{} is rolled out", check.0),
            What::Revision(check) => format!("{} is at revision {}", check.of, check.is),
            What::Pods(check) => format!(
                "{} Ready pods match {} in namespace {}",
                check.ready, check.selector, check.namespace
            ),
            What::Endpoints(check) => format!("{} has {} ready endpoints", check.of, check.ready),
            What::Access(check) => check.to_string(),
            What::File(check) => check.to_string(),
            What::Logs(check) => check.to_string(),
            What::Exec(check) => check.to_string(),
            What::Http(check) => check.to_string(),
            What::Restarts(check) => check.to_string(),
            What::Event(check) => check.to_string(),
        }
    }

    /// The points the check states, if it states any (a guard must not).
    pub(super) fn stated_points(&self) -> Option<u32> {
        self.points
    }

    /// Whether the check looks at running containers, which only clusters that run them have.
    pub(super) fn needs_containers(&self) -> bool {
        matches!(
            self.what,
            What::Logs(_) | What::Exec(_) | What::Http(_) | What::Restarts(_) | What::Event(_)
        )
    }

    /// Whether the check reads the learner's files.
    pub(super) fn reads_files(&self) -> bool {
        matches!(self.what, What::File(_))
    }

    /// What the check is worth when it passes.
    pub fn points(&self) -> u32 {
        self.points.unwrap_or(1)
    }

    /// Reads the cluster and judges; a cluster that does not answer within the limit fails the
    /// check. A guard's outcome is worth no points.
    pub async fn run(&self, target: &Target<'_>, guard: bool) -> CheckResult {
        let verdict = match tokio::time::timeout(self.limit, self.what.evaluate(target)).await {
            Ok(verdict) => verdict,
            Err(_) => Err(format!(
                "the cluster did not answer within {}",
                humanize(self.limit)
            )),
        };
        CheckResult {
            description: self.description(),
            passed: verdict.is_ok(),
            reason: verdict.err(),
            points: if guard { 0 } else { self.points() },
            guard,
        }
    }

    pub fn limit(&self) -> Duration {
        self.limit
    }
}

impl What {
    async fn evaluate(&self, target: &Target<'_>) -> Result<(), String> {
        let client = target.client;
        match self {
            What::Exists(of) => fetch(client, of).await.map(drop),
            What::Absent(of) => match of.api(client).get_opt(&of.name).await.map_err(explain)? {
                None => Ok(()),
                Some(_) => Err(format!("{of} still exists")),
            },
            What::Field(check) => check.judge(&fetch(client, &check.of).await?),
            What::Labels(check) => check.judge(&fetch(client, &check.of).await?),
            What::Container(check) => check.judge(&fetch(client, &check.of).await?),
            What::Port(check) => check.judge(client).await,
            What::Replicas(check) => {
                let object = fetch(client, &check.of).await?;
                let found = object
                    .pointer("/status/readyReplicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                check.ready.judge(found, "ready replicas")
            }
            What::RolledOut(check) => check.judge(&fetch(client, &check.0).await?),
            What::Revision(check) => {
                let object = fetch(client, &check.of).await?;
                let revision = object
                    .pointer("/metadata/annotations/deployment.kubernetes.io~1revision")
                    .and_then(Value::as_str)
                    .and_then(|r| r.parse().ok())
                    .unwrap_or(0);
                check
                    .is
                    .judge(revision, "")
                    .map_err(|_| format!("{} is at revision {revision}", check.of))
            }
            What::Pods(check) => {
                let pods: Api<Pod> = Api::namespaced(client.clone(), &check.namespace);
                let params = ListParams::default().labels(&check.selector.to_string());
                let pods = pods.list(&params).await.map_err(explain)?.items;
                let ready = pods.iter().filter(|pod| is_ready(pod)).count() as i64;
                check
                    .ready
                    .judge(ready, "Ready pods")
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
                check.ready.judge(ready, "ready endpoints")
            }
            What::Access(check) => check.judge(client).await,
            What::File(check) => check.evaluate(target.files).await,
            What::Logs(check) => check.evaluate(client).await,
            What::Exec(check) => check.evaluate(client).await,
            What::Http(check) => check.evaluate(client).await,
            What::Restarts(check) => check.evaluate(client).await,
            What::Event(check) => check.evaluate(client).await,
        }
    }
}

fn is_ready(pod: &Pod) -> bool {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions.is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
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

/// A value at a path of an object equals, contains or matches what the task expects.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "FieldCheckFile")]
struct FieldCheck {
    of: ObjectRef,
    test: ValueTest,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldCheckFile {
    of: ObjectRef,
    path: FieldPath,
    equals: Option<Value>,
    contains: Option<Value>,
    matches: Option<String>,
    unset: Option<bool>,
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
            unset,
        } = file;
        if !of.kind.has_field(path.first_field()) {
            return Err(format!(
                "path `{path}` does not start with a field of {} ({})",
                of.kind.name,
                of.kind.top_level_fields()
            ));
        }
        let test = ValueTest::try_from(ValueTestFile {
            path,
            equals,
            contains,
            matches,
            unset,
        })?;
        Ok(Self { of, test })
    }
}

impl FieldCheck {
    fn judge(&self, object: &Value) -> Result<(), String> {
        self.test.judge(object)
    }
}

impl fmt::Display for FieldCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.of, self.test)
    }
}

/// An object carries (at least) these labels.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct LabelsCheck {
    of: ObjectRef,
    include: BTreeMap<String, String>,
}

impl LabelsCheck {
    fn judge(&self, object: &Value) -> Result<(), String> {
        for (key, wanted) in &self.include {
            match object.pointer(&format!("/metadata/labels/{}", key.replace('/', "~1"))) {
                Some(Value::String(found)) if found == wanted => {}
                Some(found) => return Err(format!("label {key} is {found}")),
                None => return Err(format!("label {key} is not set")),
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "ReplicasCheckFile")]
struct ReplicasCheck {
    of: ObjectRef,
    ready: Count,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplicasCheckFile {
    of: ObjectRef,
    ready: Count,
}

const SCALED_KINDS: &[&str] = &["Deployment", "ReplicaSet", "StatefulSet"];

impl TryFrom<ReplicasCheckFile> for ReplicasCheck {
    type Error = String;

    fn try_from(file: ReplicasCheckFile) -> Result<Self, String> {
        if !SCALED_KINDS.contains(&file.of.kind.name) {
            return Err(format!("a {} has no ready replicas to count", file.of.kind.name));
        }
        Ok(Self {
            of: file.of,
            ready: file.ready,
        })
    }
}

/// A Deployment or StatefulSet whose latest change has fully rolled out: the controller has seen
/// it, and every wanted replica is updated and available.
#[derive(Debug, Clone)]
struct RolledOut(ObjectRef);

impl<'de> Deserialize<'de> for RolledOut {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let of = ObjectRef::deserialize(deserializer)?;
        if !["Deployment", "StatefulSet"].contains(&of.kind.name) {
            return Err(de::Error::custom(format!("a {} does not roll out", of.kind.name)));
        }
        Ok(Self(of))
    }
}

impl RolledOut {
    fn judge(&self, object: &Value) -> Result<(), String> {
        let number = |pointer: &str| object.pointer(pointer).and_then(Value::as_i64);
        let status = |field: &str| number(&format!("/status/{field}")).unwrap_or(0);
        if number("/status/observedGeneration") < number("/metadata/generation") {
            return Err("the controller has not yet taken up its latest change".into());
        }
        let wanted = number("/spec/replicas").unwrap_or(1);
        let (replicas, updated, available) = (
            status("replicas"),
            status("updatedReplicas"),
            status("availableReplicas"),
        );
        if replicas == wanted && updated == wanted && available == wanted {
            Ok(())
        } else {
            Err(format!(
                "{updated} of {wanted} replicas are updated, {available} available, {replicas} in all"
            ))
        }
    }
}

/// A Deployment's revision (`deployment.kubernetes.io/revision`): how many rollouts it has had.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RevisionCheckFile")]
struct RevisionCheck {
    of: ObjectRef,
    is: Count,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevisionCheckFile {
    of: ObjectRef,
    is: Count,
}

impl TryFrom<RevisionCheckFile> for RevisionCheck {
    type Error = String;

    fn try_from(file: RevisionCheckFile) -> Result<Self, String> {
        if file.of.kind.name != "Deployment" {
            return Err(format!("a {} has no revision annotation", file.of.kind.name));
        }
        Ok(Self {
            of: file.of,
            is: file.is,
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PodsCheck {
    namespace: Namespace,
    selector: Selector,
    ready: Count,
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
    ready: Count,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointsCheckFile {
    of: ObjectRef,
    ready: Count,
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
            (false, true) => Err(format!("{} is allowed to {}", self.user, self.action())),
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
    "port",
    "replicas",
    "rolled_out",
    "revision",
    "pods",
    "endpoints",
    "access",
    "file",
    "logs",
    "exec",
    "http",
    "restarts",
    "event",
];
const CHECK_OPTIONS: &[&str] = &["points", "timeout", "describe", "secret"];

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
        let (mut points, mut secret) = (None, false);
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
                "points" => {
                    let worth: u32 = map.next_value()?;
                    if !(1..=20).contains(&worth) {
                        return Err(de::Error::custom(
                            "a check is worth 1 to 20 points (a check worth nothing is a guard)",
                        ));
                    }
                    points = Some(worth);
                    continue;
                }
                "secret" => {
                    secret = map.next_value()?;
                    continue;
                }
                "exists" => What::Exists(map.next_value()?),
                "absent" => What::Absent(map.next_value()?),
                "field" => What::Field(map.next_value()?),
                "labels" => What::Labels(map.next_value()?),
                "container" => What::Container(map.next_value()?),
                "port" => What::Port(map.next_value()?),
                "replicas" => What::Replicas(map.next_value()?),
                "rolled_out" => What::RolledOut(map.next_value()?),
                "revision" => What::Revision(map.next_value()?),
                "pods" => What::Pods(map.next_value()?),
                "endpoints" => What::Endpoints(map.next_value()?),
                "access" => What::Access(map.next_value()?),
                "file" => What::File(map.next_value()?),
                "logs" => What::Logs(map.next_value()?),
                "exec" => What::Exec(map.next_value()?),
                "http" => What::Http(map.next_value()?),
                "restarts" => What::Restarts(map.next_value()?),
                "event" => What::Event(map.next_value()?),
                other => {
                    let mut keys = CHECK_KINDS.to_vec();
                    keys.extend(CHECK_OPTIONS);
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
        if secret && describe.is_none() {
            return Err(de::Error::custom(
                "a secret check needs `describe`: its generated description would give the answer away",
            ));
        }
        // A client pod must start before an HTTP answer comes; a command or a log takes a moment.
        let default_limit = match what {
            What::Http(_) => HTTP_LIMIT,
            What::Exec(_) | What::Logs(_) => CONTAINER_LIMIT,
            _ => DEFAULT_LIMIT,
        };
        Ok(Check {
            what,
            limit: limit.unwrap_or(default_limit),
            describe,
            points,
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
            described("replicas: { of: Deployment shop/catalog, ready: { at_least: 2 } }"),
            "Deployment shop/catalog has at least 2 ready replicas"
        );
        assert_eq!(
            described("revision: { of: Deployment shop/catalog, is: { at_least: 2, at_most: 4 } }"),
            "Deployment shop/catalog is at revision between 2 and 4"
        );
        assert_eq!(
            described("rolled_out: Deployment shop/catalog"),
            "Deployment shop/catalog is rolled out"
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
                "{ exists: Pod a/b, points: 0 }",
                "a check worth nothing is a guard",
            ),
            (
                "{ exists: Pod a/b, secret: true }",
                "a secret check needs `describe`",
            ),
            (
                "field: { of: Deployment a/b, path: sepc.replicas, equals: 3 }",
                "does not start with a field of Deployment",
            ),
            (
                "field: { of: Deployment a/b, path: spec.replicas }",
                "exactly one of",
            ),
            (
                "field: { of: Deployment a/b, path: spec.replicas, unset: false }",
                "`unset: true`",
            ),
            (
                "field: { of: Deployment a/b, path: spec..replicas, equals: 1 }",
                "malformed path",
            ),
            (
                "field: { of: Pod a/b, path: spec.x, matches: '(' }",
                "not a regular expression",
            ),
            ("replicas: { of: Job a/b, ready: 1 }", "no ready replicas"),
            (
                "replicas: { of: Deployment a/b, ready: { at_least: 3, at_most: 2 } }",
                "above at_most",
            ),
            (
                "replicas: { of: Deployment a/b, ready: {} }",
                "needs `at_least` or `at_most`",
            ),
            (
                "replicas: { of: Deployment a/b, ready: many }",
                "a count is a number",
            ),
            ("rolled_out: Job a/b", "a Job does not roll out"),
            (
                "revision: { of: StatefulSet a/b, is: 2 }",
                "no revision annotation",
            ),
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
    fn field_checks_say_what_they_found_and_never_what_they_expected() {
        let object = json!({ "spec": { "replicas": 2, "type": "ClusterIP", "podSelector": {
            "matchExpressions": [{ "key": "tier", "operator": "In", "values": ["db"] }]
        } } });
        let judged = |yaml: &str| match check(yaml).unwrap().what {
            What::Field(field) => field.judge(&object),
            _ => unreachable!(),
        };
        assert_eq!(
            judged("field: { of: Deployment a/b, path: spec.replicas, equals: 3 }"),
            Err("spec.replicas is 2".into())
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
            judged("field: { of: Deployment a/b, path: spec.paused, unset: true }"),
            Ok(())
        );
        assert_eq!(
            judged("field: { of: Deployment a/b, path: spec.replicas, unset: true }"),
            Err("spec.replicas is 2".into())
        );
        assert_eq!(
            judged("field: { of: Service a/b, path: spec.type, matches: 'Node.*' }"),
            Err("spec.type is \"ClusterIP\"".into())
        );
        assert_eq!(
            judged("field: { of: NetworkPolicy a/b, path: spec.podSelector, equals: { matchLabels: { tier: db } } }"),
            Ok(())
        );
        assert_eq!(
            judged("field: { of: NetworkPolicy a/b, path: spec, contains: { podSelector: { matchLabels: { tier: db } } } }"),
            Ok(())
        );
        assert_eq!(
            judged("field: { of: NetworkPolicy a/b, path: spec.podSelector, equals: { matchLabels: { tier: api } } }"),
            Err("spec.podSelector is \"tier=db\"".into())
        );
    }

    #[test]
    fn a_rollout_is_done_when_every_replica_is_updated_and_available() {
        let rolled = RolledOut(ObjectRef::try_from("Deployment a/b").unwrap());
        let deployment = |generation: i64, observed: i64, updated: i64, available: i64| {
            json!({ "metadata": { "generation": generation }, "spec": { "replicas": 3 },
                "status": { "observedGeneration": observed, "replicas": 3,
                    "updatedReplicas": updated, "availableReplicas": available } })
        };
        assert_eq!(rolled.judge(&deployment(2, 2, 3, 3)), Ok(()));
        assert_eq!(
            rolled.judge(&deployment(3, 2, 3, 3)),
            Err("the controller has not yet taken up its latest change".into())
        );
        assert_eq!(
            rolled.judge(&deployment(2, 2, 1, 3)),
            Err("1 of 3 replicas are updated, 3 available, 3 in all".into())
        );
    }

    #[test]
    fn a_failed_guard_takes_every_point_and_guards_are_worth_none() {
        let outcome = |passed: bool, points: u32, guard: bool| CheckResult {
            description: "a check".into(),
            passed,
            reason: (!passed).then(|| "found something else".into()),
            points,
            guard,
        };
        assert_eq!(
            score(&[
                outcome(true, 2, false),
                outcome(false, 3, false),
                outcome(true, 0, true)
            ]),
            2
        );
        assert_eq!(
            score(&[
                outcome(true, 2, false),
                outcome(true, 3, false),
                outcome(false, 0, true)
            ]),
            0
        );
        assert_eq!(score(&[outcome(false, 2, false), outcome(true, 0, true)]), 0);
        assert_eq!(score(&[]), 0);
    }
}
