//! The `port` check: a Service port and where it forwards, with a named `targetPort` resolved
//! through the pod template of the workload behind the Service, as Kubernetes resolves it.

use std::fmt;

use serde::Deserialize;
use serde_json::Value;

use super::{kinds::ObjectRef, path::FieldPath, reading::fetch};

#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "PortCheckFile")]
pub struct PortCheck {
    of: ObjectRef,
    port: i64,
    protocol: String,
    /// The container port it must reach, and the workload whose pod template names it.
    target: Option<(i64, ObjectRef)>,
    node_port: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PortCheckFile {
    of: ObjectRef,
    port: i64,
    #[serde(default = "tcp")]
    protocol: String,
    target: Option<i64>,
    template: Option<ObjectRef>,
    node_port: Option<i64>,
}

fn tcp() -> String {
    "TCP".into()
}

impl TryFrom<PortCheckFile> for PortCheck {
    type Error = String;

    fn try_from(file: PortCheckFile) -> Result<Self, String> {
        if file.of.kind.name != "Service" {
            return Err(format!(
                "ports of a {} are not checked this way; use `field`",
                file.of.kind.name
            ));
        }
        let target = match (file.target, file.template) {
            (Some(target), Some(template)) if template.kind.pod_spec.is_some() => Some((target, template)),
            (Some(_), Some(template)) => return Err(format!("a {} has no pod template", template.kind.name)),
            (Some(_), None) => {
                return Err(
                    "`target` needs `template`: the workload whose pod template resolves a named port".into(),
                )
            }
            (None, Some(_)) => return Err("`template` goes with `target`".into()),
            (None, None) => None,
        };
        Ok(Self {
            of: file.of,
            port: file.port,
            protocol: file.protocol,
            target,
            node_port: file.node_port,
        })
    }
}

impl PortCheck {
    pub async fn judge(&self, client: &kube::Client) -> Result<(), String> {
        let service = fetch(client, &self.of).await?;
        let template = match &self.target {
            Some((_, workload)) => Some(fetch(client, workload).await?),
            None => None,
        };
        self.judge_objects(&service, template.as_ref())
    }

    fn judge_objects(&self, service: &Value, workload: Option<&Value>) -> Result<(), String> {
        let ports = service
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let protocol = |p: &Value| {
            p.get("protocol")
                .and_then(Value::as_str)
                .unwrap_or("TCP")
                .to_owned()
        };
        let Some(port) = ports.iter().find(|p| {
            p.get("port").and_then(Value::as_i64) == Some(self.port) && protocol(p) == self.protocol
        }) else {
            let found: Vec<String> = ports
                .iter()
                .map(|p| {
                    format!(
                        "{}/{}",
                        p.get("port").map_or("?".into(), Value::to_string),
                        protocol(p)
                    )
                })
                .collect();
            return Err(format!(
                "{} has no port {}/{} (its ports: {})",
                self.of,
                self.port,
                self.protocol,
                if found.is_empty() {
                    "none".into()
                } else {
                    found.join(", ")
                }
            ));
        };
        if let Some(wanted) = self.node_port {
            match port.get("nodePort").and_then(Value::as_i64) {
                Some(found) if found == wanted => {}
                Some(found) => return Err(format!("port {} has node port {found}", self.port)),
                None => return Err(format!("port {} has no node port", self.port)),
            }
        }
        let Some((wanted, workload_ref)) = &self.target else {
            return Ok(());
        };
        let target = port.get("targetPort").cloned().unwrap_or(Value::from(self.port));
        let resolved = match &target {
            Value::String(name) => {
                let spec_path = FieldPath::of_fields(workload_ref.kind.pod_spec.expect("checked at load"));
                let spec = workload.and_then(|w| spec_path.lookup(w));
                match spec.and_then(|s| named_port(s, name)) {
                    Some(number) => number,
                    None => {
                        return Err(format!(
                            "port {} forwards to the port named {name}, which no container of {workload_ref} declares",
                            self.port
                        ))
                    }
                }
            }
            other => other.as_i64().unwrap_or(-1),
        };
        if resolved == *wanted {
            Ok(())
        } else if target.is_string() {
            Err(format!(
                "port {} forwards to {target} (port {resolved} of the pods)",
                self.port
            ))
        } else {
            Err(format!("port {} forwards to port {resolved}", self.port))
        }
    }
}

/// The number of the container port called `name` in a pod spec (containers and init containers).
fn named_port(spec: &Value, name: &str) -> Option<i64> {
    ["containers", "initContainers"]
        .iter()
        .filter_map(|list| spec.get(list)?.as_array())
        .flatten()
        .filter_map(|c| c.get("ports")?.as_array())
        .flatten()
        .find(|p| p.get("name").and_then(Value::as_str) == Some(name))?
        .get("containerPort")?
        .as_i64()
}

impl fmt::Display for PortCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} has port {}/{}", self.of, self.port, self.protocol)?;
        if let Some(node_port) = self.node_port {
            write!(f, " on node port {node_port}")?;
        }
        if let Some((target, workload)) = &self.target {
            write!(f, " forwarding to port {target} of the pods of {workload}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(yaml: &str) -> Result<PortCheck, String> {
        serde_yaml::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn a_named_target_port_is_resolved_through_the_pod_template() {
        let check =
            check("{ of: Service a/web, port: 80, target: 8080, template: Deployment a/web }").unwrap();
        let deployment = json!({ "spec": { "template": { "spec": { "containers": [
            { "name": "web", "ports": [{ "name": "http", "containerPort": 8080 }, { "name": "admin", "containerPort": 9000 }] }
        ] } } } });
        let service = |target: Value| json!({ "spec": { "ports": [{ "port": 80, "protocol": "TCP", "targetPort": target }] } });
        assert_eq!(
            check.judge_objects(&service(json!(8080)), Some(&deployment)),
            Ok(())
        );
        assert_eq!(
            check.judge_objects(&service(json!("http")), Some(&deployment)),
            Ok(())
        );
        assert_eq!(
            check.judge_objects(&service(json!("admin")), Some(&deployment)),
            Err("port 80 forwards to \"admin\" (port 9000 of the pods)".into())
        );
        assert_eq!(
            check.judge_objects(&service(json!("web")), Some(&deployment)),
            Err(
                "port 80 forwards to the port named web, which no container of Deployment a/web declares"
                    .into()
            )
        );
        assert_eq!(
            check.judge_objects(&service(json!(8081)), Some(&deployment)),
            Err("port 80 forwards to port 8081".into())
        );
        let elsewhere = json!({ "spec": { "ports": [{ "port": 8080, "targetPort": 8080 }] } });
        assert_eq!(
            check.judge_objects(&elsewhere, Some(&deployment)),
            Err("Service a/web has no port 80/TCP (its ports: 8080/TCP)".into())
        );
    }

    #[test]
    fn node_ports_are_compared_and_mistakes_named() {
        let check_node = check("{ of: Service a/web, port: 80, node_port: 30080 }").unwrap();
        let service = json!({ "spec": { "ports": [{ "port": 80, "targetPort": 80, "nodePort": 31000 }] } });
        assert_eq!(
            check_node.judge_objects(&service, None),
            Err("port 80 has node port 31000".into())
        );
        for (yaml, why) in [
            ("{ of: Pod a/b, port: 80 }", "use `field`"),
            (
                "{ of: Service a/b, port: 80, target: 80 }",
                "`target` needs `template`",
            ),
            (
                "{ of: Service a/b, port: 80, target: 80, template: Service a/c }",
                "no pod template",
            ),
        ] {
            let error = check(yaml).unwrap_err();
            assert!(error.contains(why), "{yaml}: {error}");
        }
    }
}
