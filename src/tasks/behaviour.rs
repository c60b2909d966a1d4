//! Checks of what running containers do, for clusters that run them (`kind`): a container's log,
//! a command's output inside it, an HTTP answer seen from a throw-away client pod, restarts, and
//! events. On `lite` there are no containers, so a task lists these under `behaviour:` and they
//! run only where pods run.

use std::{collections::BTreeMap, fmt};

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, AttachParams, DeleteParams, ListParams, LogParams, PostParams};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::AsyncReadExt as _;

use super::{
    expect::Count,
    kinds::{check_name, ObjectRef},
    reading::{explain, fetch},
};

/// The image of the client pod an `http` check starts: it carries curl, and every cluster that
/// runs containers has it (the workload images share one userland).
const CLIENT_IMAGE: &str = "nginx:1.27";
/// What a check keeps of an output at most.
const KEPT: usize = 256 * 1024;
/// The lines of a log a check reads: the latest.
const LOG_LINES: i64 = 2000;

/// Text a log, an output or a body must show: `contains: <text>` or `matches: <regex>`, found
/// anywhere (write `(?m)^...$` to match whole lines).
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "TextTestFile")]
pub struct TextTest {
    expect: TextExpectation,
}

#[derive(Debug, Clone)]
enum TextExpectation {
    Contains(String),
    Matches(String, regex::Regex),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TextTestFile {
    contains: Option<String>,
    matches: Option<String>,
}

impl TryFrom<TextTestFile> for TextTest {
    type Error = String;

    fn try_from(file: TextTestFile) -> Result<Self, String> {
        let expect = match (file.contains, file.matches) {
            (Some(text), None) => TextExpectation::Contains(text),
            (None, Some(pattern)) => {
                let regex = regex::Regex::new(&pattern)
                    .map_err(|e| format!("`matches` is not a regular expression: {e}"))?;
                TextExpectation::Matches(pattern, regex)
            }
            _ => return Err("state exactly one of `contains` and `matches`".into()),
        };
        Ok(Self { expect })
    }
}

impl TextTest {
    fn holds(&self, text: &str) -> bool {
        match &self.expect {
            TextExpectation::Contains(wanted) => text.contains(wanted.as_str()),
            TextExpectation::Matches(_, pattern) => pattern.is_match(text),
        }
    }
}

impl fmt::Display for TextTest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.expect {
            TextExpectation::Contains(text) => write!(f, "{text:?}"),
            TextExpectation::Matches(pattern, _) => write!(f, "a match for /{pattern}/"),
        }
    }
}

/// The last line of a text with something on it, shortened: what was found.
fn last_line(text: &str) -> String {
    const SHOWN: usize = 80;
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    if line.is_empty() {
        return "nothing".into();
    }
    match line.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("\"{}…\"", &line[..cut]),
        None => format!("\"{line}\""),
    }
}

/// The pods of a Pod reference (itself) or of a workload (those its selector picks).
#[derive(Debug, Clone)]
pub struct PodsOf(ObjectRef);

impl<'de> Deserialize<'de> for PodsOf {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let of = ObjectRef::deserialize(deserializer)?;
        const WITH_PODS: &[&str] = &[
            "Pod",
            "Deployment",
            "ReplicaSet",
            "StatefulSet",
            "DaemonSet",
            "Job",
        ];
        if !WITH_PODS.contains(&of.kind.name) {
            return Err(serde::de::Error::custom(format!(
                "a {} has no pods of its own to look at",
                of.kind.name
            )));
        }
        Ok(Self(of))
    }
}

impl PodsOf {
    fn api(&self, client: &kube::Client) -> Api<Pod> {
        let namespace = self
            .0
            .namespace
            .as_deref()
            .expect("every kind with pods is namespaced");
        Api::namespaced(client.clone(), namespace)
    }

    /// The pods, oldest first; an error when there are none.
    async fn list(&self, client: &kube::Client) -> Result<Vec<Pod>, String> {
        let api = self.api(client);
        let pods = if self.0.kind.name == "Pod" {
            api.get_opt(&self.0.name)
                .await
                .map_err(explain)?
                .into_iter()
                .collect()
        } else {
            let object = fetch(client, &self.0).await?;
            let labels = object
                .pointer("/spec/selector/matchLabels")
                .and_then(Value::as_object)
                .filter(|labels| !labels.is_empty())
                .ok_or_else(|| format!("{} selects its pods by no labels", self.0))?;
            let selector: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect();
            let params = ListParams::default().labels(&selector.join(","));
            let mut pods = api.list(&params).await.map_err(explain)?.items;
            pods.sort_by_key(|p| p.metadata.creation_timestamp.clone());
            pods
        };
        if pods.is_empty() {
            return Err(format!("{} has no pods", self.0));
        }
        Ok(pods)
    }
}

impl fmt::Display for PodsOf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.kind.name == "Pod" {
            write!(f, "{}", self.0)
        } else {
            write!(f, "a pod of {}", self.0)
        }
    }
}

fn pod_name(pod: &Pod) -> &str {
    pod.metadata.name.as_deref().unwrap_or("?")
}

/// A container's log (of any of the pods) shows a text.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "LogsCheckFile")]
pub struct LogsCheck {
    of: PodsOf,
    container: Option<String>,
    text: TextTest,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogsCheckFile {
    of: PodsOf,
    container: Option<String>,
    contains: Option<String>,
    matches: Option<String>,
}

impl TryFrom<LogsCheckFile> for LogsCheck {
    type Error = String;

    fn try_from(file: LogsCheckFile) -> Result<Self, String> {
        let text = TextTest::try_from(TextTestFile {
            contains: file.contains,
            matches: file.matches,
        })?;
        Ok(Self {
            of: file.of,
            container: file.container,
            text,
        })
    }
}

impl LogsCheck {
    pub async fn evaluate(&self, client: &kube::Client) -> Result<(), String> {
        let api = self.of.api(client);
        let mut found = String::new();
        for pod in self.of.list(client).await? {
            let params = LogParams {
                container: self.container.clone(),
                tail_lines: Some(LOG_LINES),
                ..Default::default()
            };
            match api.logs(pod_name(&pod), &params).await {
                Ok(log) if self.text.holds(&log) => return Ok(()),
                Ok(log) => {
                    found = format!("the log of {} ends with {}", pod_name(&pod), last_line(&log));
                }
                Err(e) => found = explain(e),
            }
        }
        Err(found)
    }
}

impl fmt::Display for LogsCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let container = self
            .container
            .as_deref()
            .map(|c| format!(" (container {c})"))
            .unwrap_or_default();
        write!(f, "the log of {}{container} shows {}", self.of, self.text)
    }
}

/// A command run in a container prints a text (the first Running pod's).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecCheck {
    of: PodsOf,
    container: Option<String>,
    command: Vec<String>,
    output: TextTest,
}

impl ExecCheck {
    pub async fn evaluate(&self, client: &kube::Client) -> Result<(), String> {
        let pods = self.of.list(client).await?;
        let running = pods
            .iter()
            .find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .ok_or_else(|| format!("{} is not running", self.of))?;
        let mut params = AttachParams::default().stderr(false);
        if let Some(container) = &self.container {
            params = params.container(container);
        }
        let mut attached = self
            .of
            .api(client)
            .exec(pod_name(running), self.command.clone(), &params)
            .await
            .map_err(|e| format!("`{}` could not run: {}", self.command_line(), explain(e)))?;
        let mut output = String::new();
        if let Some(stdout) = attached.stdout() {
            let mut bytes = Vec::new();
            stdout
                .take(KEPT as u64)
                .read_to_end(&mut bytes)
                .await
                .map_err(|e| format!("reading what `{}` printed: {e}", self.command_line()))?;
            output = String::from_utf8_lossy(&bytes).into_owned();
        }
        let _ = attached.join().await;
        if self.output.holds(&output) {
            Ok(())
        } else {
            Err(format!(
                "`{}` printed {}",
                self.command_line(),
                last_line(&output)
            ))
        }
    }

    fn command_line(&self) -> String {
        self.command.join(" ")
    }
}

impl fmt::Display for ExecCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` in {} prints {}",
            self.command_line(),
            self.of,
            self.output
        )
    }
}

/// Where an `http` check's client pod runs: its namespace, and the labels it carries (network
/// policies select clients by them).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Client {
    namespace: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// What a URL answers to a client pod started for the check and removed after it: the status
/// (any 2xx or 3xx unless stated) and the body. `status: 0` means "no answer at all" (a network
/// policy that must block).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, try_from = "HttpCheckFile")]
pub struct HttpCheck {
    from: Client,
    url: String,
    status: Option<u16>,
    body: Option<TextTest>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpCheckFile {
    from: Client,
    url: String,
    status: Option<u16>,
    body: Option<TextTest>,
}

impl TryFrom<HttpCheckFile> for HttpCheck {
    type Error = String;

    fn try_from(file: HttpCheckFile) -> Result<Self, String> {
        check_name("namespace", &file.from.namespace)?;
        let plain = file.url.chars().all(|c| c.is_ascii_graphic());
        let host = file
            .url
            .strip_prefix("http://")
            .or_else(|| file.url.strip_prefix("https://"));
        if !plain || host.is_none_or(|h| h.is_empty() || h.starts_with('/')) {
            return Err(format!("`{}` is not an http(s) URL", file.url));
        }
        Ok(Self {
            from: file.from,
            url: file.url,
            status: file.status,
            body: file.body,
        })
    }
}

/// Deletes the client pod however its check ends, even when its time limit drops it.
struct Removal {
    api: Api<Pod>,
    name: String,
}

impl Drop for Removal {
    fn drop(&mut self) {
        let (api, name) = (self.api.clone(), std::mem::take(&mut self.name));
        tokio::spawn(async move {
            let now = DeleteParams {
                grace_period_seconds: Some(0),
                ..Default::default()
            };
            if let Err(error) = api.delete(&name, &now).await {
                tracing::warn!(pod = %name, %error, "a check's client pod was not deleted");
            }
        });
    }
}

impl HttpCheck {
    pub async fn evaluate(&self, client: &kube::Client) -> Result<(), String> {
        let api: Api<Pod> = Api::namespaced(client.clone(), &self.from.namespace);
        let mut labels = self.from.labels.clone();
        labels.insert("ckad.check".into(), "http".into());
        let pod: Pod = serde_json::from_value(json!({
            "metadata": { "generateName": "ckad-check-", "labels": labels },
            "spec": {
                "restartPolicy": "Never",
                "terminationGracePeriodSeconds": 0,
                "automountServiceAccountToken": false,
                "containers": [{
                    "name": "client",
                    "image": CLIENT_IMAGE,
                    "command": ["curl", "-s", "--max-time", "5", "-w", "\n%{http_code}", &self.url],
                }]
            }
        }))
        .expect("a valid pod");
        let created = api.create(&PostParams::default(), &pod).await.map_err(|e| {
            format!(
                "no client pod could start in {}: {}",
                self.from.namespace,
                explain(e)
            )
        })?;
        let name = created.metadata.name.unwrap_or_default();
        let _removal = Removal {
            api: api.clone(),
            name: name.clone(),
        };
        loop {
            let phase = api
                .get(&name)
                .await
                .map_err(explain)?
                .status
                .and_then(|s| s.phase);
            if matches!(phase.as_deref(), Some("Succeeded" | "Failed")) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
        let log = api.logs(&name, &LogParams::default()).await.map_err(explain)?;
        let (body, status) = log.rsplit_once('\n').unwrap_or(("", log.as_str()));
        let status: u16 = status.trim().parse().unwrap_or(0);
        self.judge(status, body)
    }

    fn judge(&self, status: u16, body: &str) -> Result<(), String> {
        let status_holds = match self.status {
            Some(wanted) => status == wanted,
            None => (200..400).contains(&status),
        };
        if !status_holds {
            return Err(match status {
                0 => format!("{} did not answer", self.url),
                _ => format!("{} answered with status {status}", self.url),
            });
        }
        match &self.body {
            Some(test) if !test.holds(body) => Err(format!(
                "{} answered with a body ending {}",
                self.url,
                last_line(body)
            )),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for HttpCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let from = if self.from.labels.is_empty() {
            format!("a pod in namespace {}", self.from.namespace)
        } else {
            let labels: Vec<String> = self.from.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!(
                "a pod labelled {} in namespace {}",
                labels.join(","),
                self.from.namespace
            )
        };
        match (self.status, &self.body) {
            (Some(0), _) => write!(f, "{} gets no answer from {from}", self.url),
            (status, body) => {
                let status = status.map_or("success".to_owned(), |s| format!("status {s}"));
                let body = body
                    .as_ref()
                    .map(|b| format!(" and a body with {b}"))
                    .unwrap_or_default();
                write!(f, "{} answers {from} with {status}{body}", self.url)
            }
        }
    }
}

/// How often the containers of the pods have restarted: every pod's count must hold.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartsCheck {
    of: PodsOf,
    container: Option<String>,
    is: Count,
}

impl RestartsCheck {
    pub async fn evaluate(&self, client: &kube::Client) -> Result<(), String> {
        for pod in self.of.list(client).await? {
            let statuses = pod.status.as_ref().and_then(|s| s.container_statuses.clone());
            let restarts: i64 = statuses
                .unwrap_or_default()
                .iter()
                .filter(|s| self.container.as_ref().is_none_or(|c| *c == s.name))
                .map(|s| i64::from(s.restart_count))
                .sum();
            self.is
                .judge(restarts, "")
                .map_err(|_| format!("{} restarted {restarts} times", pod_name(&pod)))?;
        }
        Ok(())
    }
}

impl fmt::Display for RestartsCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let container = self
            .container
            .as_deref()
            .map(|c| format!(" (container {c})"))
            .unwrap_or_default();
        write!(f, "each {}{container} restarted {} times", self.of, self.is)
    }
}

/// An event in a namespace with a reason, about a kind of object, whose message shows a text.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventCheck {
    namespace: String,
    reason: String,
    about: Option<String>,
    message: Option<TextTest>,
}

impl EventCheck {
    pub async fn evaluate(&self, client: &kube::Client) -> Result<(), String> {
        let api: Api<Event> = Api::namespaced(client.clone(), &self.namespace);
        let events = api.list(&ListParams::default()).await.map_err(explain)?.items;
        let about = |e: &Event| {
            self.about
                .as_ref()
                .is_none_or(|k| e.involved_object.kind.as_ref() == Some(k))
        };
        let found = events.iter().any(|e| {
            e.reason.as_deref() == Some(self.reason.as_str())
                && about(e)
                && self
                    .message
                    .as_ref()
                    .is_none_or(|m| m.holds(e.message.as_deref().unwrap_or("")))
        });
        if found {
            return Ok(());
        }
        let mut reasons: Vec<&str> = events
            .iter()
            .filter(|e| about(e))
            .filter_map(|e| e.reason.as_deref())
            .collect();
        reasons.sort_unstable();
        reasons.dedup();
        Err(match reasons.as_slice() {
            [] => format!("namespace {} has no such events", self.namespace),
            some => format!(
                "the events of namespace {} give the reasons {}",
                self.namespace,
                some.join(", ")
            ),
        })
    }
}

impl fmt::Display for EventCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let about = self
            .about
            .as_deref()
            .map(|k| format!(" about a {k}"))
            .unwrap_or_default();
        let message = self
            .message
            .as_ref()
            .map(|m| format!(" saying {m}"))
            .unwrap_or_default();
        write!(
            f,
            "namespace {} has a {} event{about}{message}",
            self.namespace, self.reason
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaviour_checks_are_checked_when_read() {
        let http = |yaml: &str| serde_yaml::from_str::<HttpCheck>(yaml).map_err(|e| e.to_string());
        assert!(http("{ from: { namespace: web }, url: 'ftp://x/' }")
            .unwrap_err()
            .contains("not an http"));
        assert!(http("{ from: { namespace: Web }, url: 'http://x/' }")
            .unwrap_err()
            .contains("not a valid"));
        let logs = |yaml: &str| serde_yaml::from_str::<LogsCheck>(yaml).map_err(|e| e.to_string());
        assert!(logs("{ of: ConfigMap a/b, contains: x }")
            .unwrap_err()
            .contains("no pods of its own"));
        assert!(logs("{ of: Pod a/b }").unwrap_err().contains("exactly one of"));
    }

    #[test]
    fn http_answers_are_judged_by_status_and_body_and_say_what_came() {
        let check = |yaml: &str| serde_yaml::from_str::<HttpCheck>(yaml).unwrap();
        let any = check("{ from: { namespace: web }, url: 'http://web/' }");
        assert_eq!(any.judge(200, "<h1>hi</h1>"), Ok(()));
        assert_eq!(any.judge(0, ""), Err("http://web/ did not answer".into()));
        let page = check(
            "{ from: { namespace: web }, url: 'http://web/', status: 200, body: { contains: Welcome } }",
        );
        assert_eq!(
            page.judge(404, "gone"),
            Err("http://web/ answered with status 404".into())
        );
        assert_eq!(
            page.judge(200, "It works!\n"),
            Err("http://web/ answered with a body ending \"It works!\"".into())
        );
        let blocked =
            check("{ from: { namespace: web, labels: { app: x } }, url: 'http://db:5432/', status: 0 }");
        assert_eq!(blocked.judge(0, ""), Ok(()));
        assert_eq!(
            blocked.to_string(),
            "http://db:5432/ gets no answer from a pod labelled app=x in namespace web"
        );
    }
}
