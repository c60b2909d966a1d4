//! Putting a task's objects into a cluster: the setup before the learner starts, and the reference
//! solution when the proof runs it. Manifests go through kube-rs (server-side apply); solution
//! commands run the real `kubectl` and `helm` as argv, never through a shell.

use std::{
    fmt,
    path::{Path, PathBuf},
    time::Duration,
};

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde::{de, Deserialize, Deserializer};
use serde_json::Value;

use super::{
    files::{FileContent, LearnerFiles, LearnerPath},
    kinds::{Kind, ObjectRef},
    local_copy, Answer, Target, Task, TaskError, CHARTS_IN_TERMINAL,
};

const FIELD_MANAGER: &str = "ckad-platform";
/// How long a controller may take to pick up what was applied.
const SETTLE_LIMIT: Duration = Duration::from_secs(30);
const COMMAND_LIMIT: Duration = Duration::from_secs(120);

/// One object to apply, checked when the task loads: a known kind at its apiVersion, a valid
/// name, a namespace exactly when the kind is namespaced.
#[derive(Debug, Clone)]
pub struct Manifest {
    object: ObjectRef,
    /// As the author wrote it, in the author's key order, for showing.
    yaml: serde_yaml::Value,
    json: Value,
}

impl<'de> Deserialize<'de> for Manifest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let yaml = serde_yaml::Value::deserialize(deserializer)?;
        Manifest::new(yaml).map_err(de::Error::custom)
    }
}

impl Manifest {
    fn new(yaml: serde_yaml::Value) -> Result<Self, String> {
        let json = serde_json::to_value(&yaml).map_err(|e| format!("not a Kubernetes object: {e}"))?;
        let text = |pointer: &str| json.pointer(pointer).and_then(Value::as_str);
        let (Some(api_version), Some(kind)) = (text("/apiVersion"), text("/kind")) else {
            return Err("a manifest needs `apiVersion` and `kind`".into());
        };
        let kind = Kind::parse(kind)?;
        if api_version != kind.api_version() {
            return Err(format!(
                "a {} is served as `{}` in Kubernetes 1.35, not `{api_version}`",
                kind.name,
                kind.api_version()
            ));
        }
        let Some(name) = text("/metadata/name") else {
            return Err(format!("the {} needs `metadata.name`", kind.name));
        };
        let namespace = text("/metadata/namespace").map(str::to_owned);
        let object = ObjectRef::new(kind, namespace, name.to_owned())
            .map_err(|e| format!("{e} (set `metadata.namespace` for namespaced kinds)"))?;
        Ok(Self { object, yaml, json })
    }

    /// Server-side apply, then waits for what later steps rely on: a Namespace's default
    /// ServiceAccount (pods are refused without it), a Deployment's controller having seen this
    /// generation (so that the next change makes a new revision), a CustomResourceDefinition
    /// established.
    pub async fn apply(&self, client: &kube::Client) -> Result<(), TaskError> {
        let fail = |message: String| TaskError::Apply {
            object: self.object.to_string(),
            message,
        };
        let api = self.object.api(client);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        api.patch(&self.object.name, &params, &Patch::Apply(&self.json))
            .await
            .map_err(|e| fail(e.to_string()))?;
        let settled = match self.object.kind.name {
            "Namespace" => {
                let accounts = ObjectRef::new(
                    Kind::find("ServiceAccount").expect("a known kind"),
                    Some(self.object.name.clone()),
                    "default".into(),
                )
                .expect("a valid reference");
                wait_for(&accounts.api(client), "default", |_| true).await
            }
            "Deployment" => {
                wait_for(&api, &self.object.name, |deployment| {
                    let observed = deployment
                        .data
                        .pointer("/status/observedGeneration")
                        .and_then(Value::as_i64);
                    observed.is_some() && observed >= deployment.metadata.generation
                })
                .await
            }
            // Its custom resources are refused until the API server serves them.
            "CustomResourceDefinition" => {
                wait_for(&api, &self.object.name, |crd| {
                    crd.data
                        .pointer("/status/conditions")
                        .and_then(Value::as_array)
                        .is_some_and(|conditions| {
                            conditions
                                .iter()
                                .any(|c| c["type"] == "Established" && c["status"] == "True")
                        })
                })
                .await
            }
            _ => Ok(()),
        };
        settled.map_err(fail)
    }

    /// `kubectl apply` of this manifest, as a learner would type it.
    fn script(&self) -> String {
        let yaml = serde_yaml::to_string(&self.yaml).expect("YAML that was read can be written");
        format!("kubectl apply -f - <<'EOF'\n{yaml}EOF\n")
    }
}

/// Polls until the object exists and `ready` holds, for at most [`SETTLE_LIMIT`].
async fn wait_for(
    api: &Api<DynamicObject>,
    name: &str,
    ready: impl Fn(&DynamicObject) -> bool,
) -> Result<(), String> {
    let poll = async {
        loop {
            if let Ok(Some(object)) = api.get_opt(name).await {
                if ready(&object) {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::time::timeout(SETTLE_LIMIT, poll).await.map_err(|_| {
        format!(
            "the cluster did not take it up within {}s",
            SETTLE_LIMIT.as_secs()
        )
    })
}

/// One step of a reference solution: `apply: <manifest>`, `run: [kubectl, ...]` or
/// `write: { path, content }` (a file in the learner's terminal).
#[derive(Debug, Clone)]
pub enum SolutionStep {
    Apply(Manifest),
    Run(Command),
    Write(FileContent),
}

impl<'de> Deserialize<'de> for SolutionStep {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(StepVisitor)
    }
}

struct StepVisitor;

impl<'de> de::Visitor<'de> for StepVisitor {
    type Value = SolutionStep;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(
            "a solution step: `apply: <manifest>`, `run: [kubectl|helm, args...]` or `write: { path, content }`",
        )
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<SolutionStep, A::Error> {
        let step = match map.next_key::<String>()?.as_deref() {
            Some("apply") => SolutionStep::Apply(map.next_value()?),
            Some("run") => SolutionStep::Run(map.next_value()?),
            Some("write") => SolutionStep::Write(map.next_value()?),
            Some(other) => {
                return Err(de::Error::custom(format!(
                    "unknown step `{other}`; use `apply`, `run` or `write`"
                )))
            }
            None => return Err(de::Error::custom("an empty step; use `apply`, `run` or `write`")),
        };
        match map.next_key::<String>()? {
            None => Ok(step),
            Some(_) => Err(de::Error::custom(
                "one step does one thing: `apply`, `run` or `write`",
            )),
        }
    }
}

impl SolutionStep {
    pub fn script(&self) -> String {
        match self {
            SolutionStep::Apply(manifest) => manifest.script(),
            SolutionStep::Run(command) => format!("{command}\n"),
            SolutionStep::Write(file) => file.script(),
        }
    }
}

/// A `kubectl` or `helm` command line as its arguments.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "Vec<String>")]
pub struct Command {
    tool: Tool,
    args: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
enum Tool {
    Kubectl,
    Helm,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Kubectl => "kubectl",
            Tool::Helm => "helm",
        }
    }
}

impl TryFrom<Vec<String>> for Command {
    type Error = String;

    fn try_from(argv: Vec<String>) -> Result<Self, String> {
        let tool = match argv.first().map(String::as_str) {
            Some("kubectl") => Tool::Kubectl,
            Some("helm") => Tool::Helm,
            Some(other) => return Err(format!("a solution runs kubectl or helm, not `{other}`")),
            None => return Err("a command needs at least its program".into()),
        };
        if argv.iter().any(|arg| arg.contains('\0')) {
            return Err("an argument holds a NUL byte".into());
        }
        Ok(Self {
            tool,
            args: argv[1..].to_vec(),
        })
    }
}

impl fmt::Display for Command {
    /// As a learner would type it into a POSIX shell.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tool.name())?;
        for arg in &self.args {
            let plain = !arg.is_empty()
                && arg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c));
            if plain {
                write!(f, " {arg}")?;
            } else {
                write!(f, " '{}'", arg.replace('\'', r"'\''"))?;
            }
        }
        Ok(())
    }
}

/// Runs reference solutions: manifests through kube-rs, commands with the real tools and the
/// cluster's admin kubeconfig, files through the learner's terminal. Chart paths under `/opt/charts` (where the terminal image carries
/// them) are read from the catalog's `charts` folder instead.
pub struct SolutionRunner {
    tools_dir: PathBuf,
    kubeconfig: PathBuf,
    charts_dir: PathBuf,
}

impl SolutionRunner {
    pub fn new(
        tools_dir: impl Into<PathBuf>,
        kubeconfig: impl Into<PathBuf>,
        charts_dir: impl Into<PathBuf>,
    ) -> Self {
        Self {
            tools_dir: tools_dir.into(),
            kubeconfig: kubeconfig.into(),
            charts_dir: charts_dir.into(),
        }
    }

    /// Runs the task's reference solution.
    pub async fn run(&self, target: &Target<'_>, task: &Task) -> Result<(), TaskError> {
        self.run_steps(target, task.solution_steps()).await
    }

    /// Runs one of the task's accepted or rejected answers.
    pub async fn run_answer(&self, target: &Target<'_>, answer: &Answer) -> Result<(), TaskError> {
        self.run_steps(target, &answer.steps).await
    }

    async fn run_steps(&self, target: &Target<'_>, steps: &[SolutionStep]) -> Result<(), TaskError> {
        for step in steps {
            match step {
                SolutionStep::Apply(manifest) => manifest.apply(target.client).await?,
                SolutionStep::Run(command) => self.execute(command, target.files).await?,
                SolutionStep::Write(file) => file.write(target.files).await?,
            }
        }
        Ok(())
    }

    /// Runs the tool. Files of the learner's terminal among the arguments (`kubectl apply -f
    /// /home/ckad/pdb.yaml`, `--from-file=key=/home/ckad/app.conf`) and kustomization folders
    /// (`kubectl apply -k /home/ckad/shop`) are copied through the terminal into a local folder,
    /// and the tool reads them there.
    async fn execute(&self, command: &Command, files: &dyn LearnerFiles) -> Result<(), TaskError> {
        let fail = |message: String| TaskError::Command {
            command: command.to_string(),
            message,
        };
        let local = tempfile::tempdir().map_err(|e| fail(e.to_string()))?;
        let mut args = Vec::with_capacity(command.args.len());
        let mut after_kustomize = false;
        for arg in &command.args {
            // The path is the argument itself, or what follows the last `=` of an option.
            let (prefix, value) = match arg.starts_with('-') {
                true => arg.rsplit_once('=').map_or((arg.as_str(), ""), |(p, v)| (p, v)),
                false => ("", arg.as_str()),
            };
            let folder = after_kustomize || prefix == "--kustomize" || prefix == "-k";
            after_kustomize = arg == "-k" || arg == "--kustomize";
            let Ok(path) = LearnerPath::try_from(value) else {
                args.push(self.local_path(arg));
                continue;
            };
            let copied = match folder {
                true => local_copy::folder(files, &path, local.path()).await,
                false => local_copy::file(files, &path, local.path()).await,
            }
            .map_err(&fail)?;
            args.push(match prefix {
                "" => copied.to_string_lossy().into_owned(),
                prefix => format!("{prefix}={}", copied.display()),
            });
        }
        let child = tokio::process::Command::new(self.tools_dir.join(command.tool.name()))
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| fail(e.to_string()))?;
        let output = tokio::time::timeout(COMMAND_LIMIT, child.wait_with_output())
            .await
            .map_err(|_| fail(format!("no result within {}s", COMMAND_LIMIT.as_secs())))?
            .map_err(|e| fail(e.to_string()))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(fail(String::from_utf8_lossy(&output.stderr).trim().to_owned()))
        }
    }

    fn local_path(&self, arg: &str) -> String {
        match Path::new(arg).strip_prefix(CHARTS_IN_TERMINAL) {
            Ok(rest) => self.charts_dir.join(rest).to_string_lossy().into_owned(),
            Err(_) => arg.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(yaml: &str) -> Result<Manifest, String> {
        serde_yaml::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn manifests_name_a_served_kind_and_its_scope() {
        let ok =
            manifest("{ apiVersion: apps/v1, kind: Deployment, metadata: { name: web, namespace: shop } }");
        assert_eq!(ok.unwrap().object.to_string(), "Deployment shop/web");
        for (yaml, why) in [
            (
                "{ apiVersion: extensions/v1beta1, kind: Ingress, metadata: { name: a, namespace: b } }",
                "served as `networking.k8s.io/v1`",
            ),
            (
                "{ apiVersion: v1, kind: Pod, metadata: { name: a } }",
                "set `metadata.namespace`",
            ),
            (
                "{ apiVersion: v1, kind: Pdo, metadata: { name: a } }",
                "unknown kind `Pdo`",
            ),
            (
                "{ kind: Pod, metadata: { name: a } }",
                "needs `apiVersion` and `kind`",
            ),
        ] {
            let error = manifest(yaml).unwrap_err();
            assert!(error.contains(why), "{yaml}: {error}");
        }
    }

    #[test]
    fn commands_are_kubectl_or_helm_and_show_as_a_shell_would_read_them() {
        let command: Command =
            serde_yaml::from_str("[kubectl, -n, web, label, pod, front, 'note=it''s here']").unwrap();
        assert_eq!(
            command.to_string(),
            r"kubectl -n web label pod front 'note=it'\''s here'"
        );
        let error = serde_yaml::from_str::<Command>("[bash, -c, 'rm -rf /']")
            .unwrap_err()
            .to_string();
        assert!(error.contains("runs kubectl or helm, not `bash`"), "{error}");
        let runner = SolutionRunner::new("/tools", "/kubeconfig", "/repo/tasks/charts");
        assert_eq!(
            runner.local_path("/opt/charts/webapp"),
            "/repo/tasks/charts/webapp"
        );
        assert_eq!(runner.local_path("/opt/chartsx"), "/opt/chartsx");
    }
}
