//! The `container` check: one container of a workload's pod template, found among the regular
//! containers and the native sidecars (init containers with `restartPolicy: Always`), or among
//! the init containers that run to completion; what it runs, compared as a command line; and the
//! fields it holds, with probes' named ports resolved to numbers.

use std::fmt;

use serde::Deserialize;
use serde_json::Value;

use super::{
    command::CommandLine,
    kinds::ObjectRef,
    matching::{holds, readable},
    path::FieldPath,
};

/// The fields of a container a check may state in `has`; anything else is a typo. What a
/// container runs is stated with `runs`, never `command`/`args`, which spell it one way.
const CONTAINER_FIELDS: &[&str] = &[
    "env",
    "envFrom",
    "image",
    "imagePullPolicy",
    "lifecycle",
    "livenessProbe",
    "ports",
    "readinessProbe",
    "resources",
    "securityContext",
    "startupProbe",
    "volumeMounts",
    "workingDir",
];

/// Where in the pod a container may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Running beside the others for the pod's life: a regular container or a native sidecar.
    #[default]
    Running,
    /// In `containers`.
    Regular,
    /// A native sidecar: in `initContainers` with `restartPolicy: Always`.
    Sidecar,
    /// An init container that runs to completion before the others start.
    Init,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Running => "container",
            Role::Regular => "regular container",
            Role::Sidecar => "native sidecar container",
            Role::Init => "init container",
        }
    }

    fn admits(self, found: Role) -> bool {
        self == found || (self == Role::Running && matches!(found, Role::Regular | Role::Sidecar))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "ContainerCheckFile")]
pub struct ContainerCheck {
    pub(super) of: ObjectRef,
    name: String,
    role: Role,
    /// The command lines accepted (any one); empty when what it runs is not checked.
    runs: Vec<CommandLine>,
    /// Fields it holds at least; `Value::Null` when none are stated.
    has: Value,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMore {
    One(String),
    More(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContainerCheckFile {
    of: ObjectRef,
    name: String,
    #[serde(default)]
    role: Role,
    runs: Option<OneOrMore>,
    #[serde(default)]
    has: serde_json::Map<String, Value>,
}

impl TryFrom<ContainerCheckFile> for ContainerCheck {
    type Error = String;

    fn try_from(file: ContainerCheckFile) -> Result<Self, String> {
        if file.of.kind.pod_spec.is_none() {
            return Err(format!("a {} has no containers", file.of.kind.name));
        }
        if let Some(unknown) = file.has.keys().find(|k| !CONTAINER_FIELDS.contains(&k.as_str())) {
            let instead = if ["command", "args"].contains(&unknown.as_str()) {
                " (state what it runs with `runs`)".to_owned()
            } else if unknown == "restartPolicy" {
                " (a native sidecar is `role: sidecar`)".to_owned()
            } else {
                String::new()
            };
            return Err(format!(
                "`{unknown}` is not a container field a check may state{instead}; use one of {}",
                CONTAINER_FIELDS.join(", ")
            ));
        }
        let runs = match file.runs {
            None => Vec::new(),
            Some(OneOrMore::One(line)) => vec![CommandLine::parse(&line)?],
            Some(OneOrMore::More(lines)) => lines
                .iter()
                .map(|line| CommandLine::parse(line))
                .collect::<Result<_, _>>()?,
        };
        if file.has.is_empty() && runs.is_empty() && file.role == Role::Running {
            return Err("a container check states `has`, `runs` or `role`".into());
        }
        Ok(Self {
            of: file.of,
            name: file.name,
            role: file.role,
            runs,
            has: if file.has.is_empty() {
                Value::Null
            } else {
                Value::Object(file.has)
            },
        })
    }
}

impl ContainerCheck {
    pub fn judge(&self, object: &Value) -> Result<(), String> {
        let pod_spec = FieldPath::of_fields(self.of.kind.pod_spec.expect("checked at load"));
        let spec = pod_spec.lookup(object).cloned().unwrap_or(Value::Null);
        let (container, found) = self.find(&spec)?;
        if !self.role.admits(found) {
            let article = if found == Role::Init { "an" } else { "a" };
            return Err(format!("{} is {article} {}", self.name, found.name()));
        }
        if !self.runs.is_empty() {
            match CommandLine::of_container(container) {
                Some(line) if self.runs.contains(&line) => {}
                Some(line) => return Err(format!("{} runs `{line}`", self.name)),
                None => {
                    return Err(format!(
                        "{} states no command: it runs its image's default",
                        self.name
                    ))
                }
            }
        }
        if self.has.is_null() {
            return Ok(());
        }
        holds(&self.has, &with_probe_ports_resolved(container), &self.name).map_err(|m| m.0)
    }

    /// The container named, and where it was found.
    fn find<'s>(&self, spec: &'s Value) -> Result<(&'s Value, Role), String> {
        let list = |key: &str| {
            spec.get(key)
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
        };
        let regular = list("containers").iter().map(|c| (c, Role::Regular));
        let init = list("initContainers").iter().map(|c| {
            let sidecar = c.get("restartPolicy").and_then(Value::as_str) == Some("Always");
            (c, if sidecar { Role::Sidecar } else { Role::Init })
        });
        let all: Vec<(&Value, Role)> = regular.chain(init).collect();
        if let Some(found) = all
            .iter()
            .find(|(c, _)| c.get("name").and_then(Value::as_str) == Some(&self.name))
        {
            return Ok(*found);
        }
        let names: Vec<&str> = all.iter().filter_map(|(c, _)| c.get("name")?.as_str()).collect();
        Err(format!(
            "{} has no container named {} (it has {})",
            self.of,
            self.name,
            names.join(", ")
        ))
    }
}

/// The container with its probes' named ports (`port: http`) replaced by the numbers its
/// `ports` give them, so that a probe on the named port and one on the number compare equal.
fn with_probe_ports_resolved(container: &Value) -> Value {
    let mut resolved = container.clone();
    let named = |name: &str| {
        container
            .get("ports")?
            .as_array()?
            .iter()
            .find(|p| p.get("name").and_then(Value::as_str) == Some(name))?
            .get("containerPort")
            .cloned()
    };
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        for handler in ["httpGet", "tcpSocket", "grpc"] {
            let Some(port) = resolved.pointer_mut(&format!("/{probe}/{handler}/port")) else {
                continue;
            };
            if let Some(number) = port.as_str().and_then(named) {
                *port = number;
            }
        }
    }
    resolved
}

impl fmt::Display for ContainerCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} {}", self.of, self.role.name(), self.name)?;
        let mut parts = Vec::new();
        if !self.runs.is_empty() {
            let lines: Vec<String> = self.runs.iter().map(|l| format!("`{l}`")).collect();
            parts.push(format!("runs {}", lines.join(" or ")));
        }
        if !self.has.is_null() {
            parts.push(format!("has {}", readable(&self.has)));
        }
        if !parts.is_empty() {
            write!(f, " {}", parts.join(" and "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(yaml: &str) -> Result<ContainerCheck, String> {
        serde_yaml::from_str(yaml).map_err(|e| e.to_string())
    }

    fn deployment(spec: Value) -> Value {
        json!({ "spec": { "template": { "spec": spec } } })
    }

    #[test]
    fn a_native_sidecar_counts_as_a_running_container_unless_a_role_is_required() {
        let shipper = json!({ "name": "shipper", "image": "busybox:1.36", "args": ["tail", "-F", "/log"] });
        let mut sidecar = shipper.clone();
        sidecar["restartPolicy"] = json!("Always");
        let as_regular = deployment(json!({ "containers": [{ "name": "app" }, shipper] }));
        let as_sidecar =
            deployment(json!({ "containers": [{ "name": "app" }], "initContainers": [sidecar] }));
        let as_init = deployment(json!({ "containers": [{ "name": "app" }], "initContainers": [shipper] }));
        let any = check("{ of: Deployment a/b, name: shipper, runs: 'tail -F /log' }").unwrap();
        assert_eq!(any.judge(&as_regular), Ok(()));
        assert_eq!(any.judge(&as_sidecar), Ok(()));
        assert_eq!(any.judge(&as_init), Err("shipper is an init container".into()));
        let sidecar_only = check("{ of: Deployment a/b, name: shipper, role: sidecar }").unwrap();
        assert_eq!(sidecar_only.judge(&as_sidecar), Ok(()));
        assert_eq!(
            sidecar_only.judge(&as_regular),
            Err("shipper is a regular container".into())
        );
        let regular_only = check("{ of: Deployment a/b, name: shipper, role: regular }").unwrap();
        assert_eq!(
            regular_only.judge(&as_sidecar),
            Err("shipper is a native sidecar container".into())
        );
        assert_eq!(
            any.judge(&deployment(json!({ "containers": [{ "name": "app" }] }))),
            Err("Deployment a/b has no container named shipper (it has app)".into())
        );
    }

    #[test]
    fn what_a_container_runs_is_compared_as_a_command_line() {
        let sleeper =
            check("{ of: Pod a/b, name: c, runs: sleep 3600, has: { image: 'busybox:1.36' } }").unwrap();
        let pod = |container: Value| json!({ "spec": { "containers": [container] } });
        for accepted in [
            json!({ "name": "c", "image": "busybox:1.36", "args": ["sleep", "3600"] }),
            json!({ "name": "c", "image": "busybox:1.36", "command": ["/bin/sh", "-c", "sleep 3600"] }),
        ] {
            assert_eq!(sleeper.judge(&pod(accepted.clone())), Ok(()), "{accepted}");
        }
        assert_eq!(
            sleeper.judge(&pod(
                json!({ "name": "c", "image": "busybox:1.36", "command": ["3600", "sleep"] })
            )),
            Err("c runs `3600 sleep`".into())
        );
        assert_eq!(
            sleeper.judge(&pod(json!({ "name": "c", "image": "busybox:1.36" }))),
            Err("c states no command: it runs its image's default".into())
        );
        assert_eq!(
            sleeper.judge(&pod(
                json!({ "name": "c", "image": "busybox:1.37", "args": ["sleep", "3600"] })
            )),
            Err("c.image is \"busybox:1.37\"".into())
        );
        let either =
            check("{ of: Pod a/b, name: c, runs: ['tail -n+1 -F /l', 'tail -n +1 -F /l'] }").unwrap();
        assert_eq!(
            either.judge(&pod(
                json!({ "name": "c", "command": ["tail", "-n", "+1", "-F", "/l"] })
            )),
            Ok(())
        );
    }

    #[test]
    fn probes_on_a_named_port_equal_probes_on_its_number() {
        let probed = check(
            "{ of: Pod a/b, name: c, has: { readinessProbe: { httpGet: { path: /ready, port: 8080 } } } }",
        )
        .unwrap();
        let pod = json!({ "spec": { "containers": [{
            "name": "c", "ports": [{ "name": "http", "containerPort": 8080 }],
            "readinessProbe": { "httpGet": { "path": "/ready", "port": "http", "scheme": "HTTP" } }
        }] } });
        assert_eq!(probed.judge(&pod), Ok(()));
    }

    #[test]
    fn mistakes_in_a_container_check_are_named() {
        for (yaml, why) in [
            (
                "{ of: Service a/b, name: c, has: { image: x } }",
                "a Service has no containers",
            ),
            (
                "{ of: Pod a/b, name: c, has: { imgae: x } }",
                "`imgae` is not a container field",
            ),
            (
                "{ of: Pod a/b, name: c, has: { command: [x] } }",
                "state what it runs with `runs`",
            ),
            (
                "{ of: Pod a/b, name: c, has: { restartPolicy: Always } }",
                "`role: sidecar`",
            ),
            ("{ of: Pod a/b, name: c }", "states `has`, `runs` or `role`"),
            (
                "{ of: Pod a/b, name: c, runs: \"sh -c 'x\" }",
                "not a command line",
            ),
        ] {
            let error = check(yaml).unwrap_err();
            assert!(error.contains(why), "{yaml}: {error}");
        }
    }
}
