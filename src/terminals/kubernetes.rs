//! Terminals as pods on a host cluster (the `kubernetes` provider): the same tmux shells as the
//! Docker terminals, reached through the host API's exec (WebSocket, kube-rs) instead of
//! `docker exec`. Each lives in its session's namespace (made by
//! `clusters::kubernetes::HostCluster`), hardened as `clusters::kubernetes::terminal_pod` says,
//! with the learner's kubeconfigs from a Secret; pod and container are both named `terminal`. An
//! exam's terminal lives in its first host's namespace and reaches each other host's API in its
//! own namespace through the policies `clusters::kubernetes::host_policies` makes.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt, TryStreamExt};
use k8s_openapi::{
    api::{
        core::v1::{Pod, Secret},
        networking::v1::NetworkPolicy,
    },
    apimachinery::pkg::apis::meta::v1::Status,
};
use kube::api::{Api, AttachParams, DeleteParams, ListParams, PostParams, TerminalSize};
use tokio::{
    io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _},
    sync::mpsc,
};
use tokio_util::io::ReaderStream;

use super::{
    docker::{read_tty, SHELL},
    OutputStream, Ran, Revival, ShellTab, TermSize, TerminalAccess, TerminalControl, TerminalError,
    TerminalIo, TerminalRuntime, TerminalSpec,
};
use crate::clusters::{
    kubernetes::{
        host_policies, terminal_pod, terminal_secret, Tenant, COMPONENT_LABEL, LEARNER_HOME, TERMINAL,
        TERMINAL_SECRET,
    },
    ClusterName, CLUSTER_LABEL, INSTANCE_LABEL,
};

/// A new pod runs, and reaches its API, within this once its image is on the node.
const START_LIMIT: Duration = Duration::from_secs(60);

/// The sessions' terminal pods on the host cluster.
pub struct PodTerminals {
    host: kube::Client,
    image: String,
    instance: String,
}

impl PodTerminals {
    pub fn new(host: kube::Client, image: &str, instance: &str) -> Self {
        Self {
            host,
            image: image.to_owned(),
            instance: instance.to_owned(),
        }
    }

    fn pods(&self, cluster: &ClusterName) -> Api<Pod> {
        Api::namespaced(self.host.clone(), cluster.as_str())
    }

    async fn try_create(&self, spec: &TerminalSpec<'_>) -> Result<(), TerminalError> {
        let files = spec.access.files()?;
        let tenant = Tenant {
            cluster: spec.cluster,
            instance: &self.instance,
        };
        let post = PostParams::default();
        // An exam's other hosts are namespaces of their own: the terminal's way to their APIs
        // first, as the namespace's own fences come before any pod.
        if let TerminalAccess::Hosts(hosts) = spec.access {
            let namespaces: Vec<&str> = hosts.iter().map(|host| host.network).collect();
            for policy in host_policies(&tenant, &namespaces) {
                let namespace = policy.metadata.namespace.as_deref().unwrap_or_default();
                Api::<NetworkPolicy>::namespaced(self.host.clone(), namespace)
                    .create(&post, &policy)
                    .await?;
            }
        }
        Api::<Secret>::namespaced(self.host.clone(), tenant.namespace())
            .create(&post, &terminal_secret(&tenant, &files))
            .await?;
        let mut pod = terminal_pod(&tenant, &self.image, &files);
        pod.metadata.annotations = Some(
            [("ckad.session", spec.session_id), ("ckad.user", spec.user_id)]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .into(),
        );
        let pods = self.pods(spec.cluster);
        pods.create(&post, &pod).await?;
        let running = async {
            loop {
                let phase = pods.get(TERMINAL).await?.status.and_then(|s| s.phase);
                match phase.as_deref() {
                    Some("Running") => break,
                    Some("Failed" | "Succeeded") => {
                        return Err(TerminalError::Unavailable("the terminal pod ended".into()))
                    }
                    _ => tokio::time::sleep(Duration::from_millis(250)).await,
                }
            }
            // A new pod's traffic passes once the host's policy controller has seen it (a run's
            // first kubectl a moment after the start reached nothing): ready means reaching every
            // API its kubeconfigs name.
            for (path, _) in &files {
                let probe = [
                    "kubectl",
                    &format!("--kubeconfig={LEARNER_HOME}/.kube/{path}"),
                    "--request-timeout=2s",
                    "get",
                    "--raw",
                    "/livez",
                ]
                .map(str::to_owned);
                while self.run(spec.cluster, probe.to_vec()).await?.status != 0 {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
            Ok(())
        };
        tokio::time::timeout(START_LIMIT, running)
            .await
            .unwrap_or_else(|_| {
                Err(TerminalError::Unavailable(
                    "the terminal pod did not start and reach its APIs in time".into(),
                ))
            })
    }

    /// Attaches a new TTY to the terminal's shell `tab` (the same shell every time), sized
    /// `size`.
    async fn attach_shell(
        &self,
        cluster: &ClusterName,
        tab: ShellTab,
        size: TermSize,
    ) -> Result<TerminalIo, TerminalError> {
        let pods = self.pods(cluster);
        let session = tab.tmux_session();
        // The exec API takes no environment: `env` sets the terminal type tmux needs.
        let command = ["env", "TERM=xterm-256color", "sh", "-c", SHELL, "sh", &session];
        let params = AttachParams::interactive_tty().container(TERMINAL);
        let mut attached = pods
            .exec(TERMINAL, command, &params)
            .await
            .map_err(|e| not_found(e, cluster))?;
        let (Some(mut input), Some(stdout), Some(mut sizes)) =
            (attached.stdin(), attached.stdout(), attached.terminal_size())
        else {
            return Err(TerminalError::Unavailable("the exec has no TTY".into()));
        };
        let mut output: OutputStream = ReaderStream::new(stdout)
            .map_err(|e| TerminalError::Unavailable(format!("the shell's output: {e}")))
            .boxed();
        let (tty, rest) = read_tty(&mut output).await?;
        let go_on = async {
            input.write_all(b"\n").await?;
            input.flush().await
        };
        go_on
            .await
            .map_err(|e| TerminalError::Unavailable(format!("the shell takes no input: {e}")))?;

        // The exec lives as long as its control: this task owns it and relays resizes to it, and
        // ends (closing the exec) when the control is dropped.
        let (resize, mut resizes) = mpsc::channel::<TermSize>(4);
        tokio::spawn(async move {
            let _attached = attached;
            while let Some(size) = resizes.recv().await {
                let size = TerminalSize {
                    width: size.cols,
                    height: size.rows,
                };
                if sizes.send(size).await.is_err() {
                    break;
                }
            }
        });
        let control = PodControl { pods, tty, resize };
        control.resize(size).await?;
        let output = futures_util::stream::iter((!rest.is_empty()).then_some(Ok(rest)))
            .chain(output)
            .boxed();
        Ok(TerminalIo {
            output,
            input: Box::pin(input),
            control: Box::new(control),
        })
    }
}

/// One attach: its window size (through the exec's resize channel) and its tmux client's TTY.
struct PodControl {
    pods: Api<Pod>,
    tty: String,
    resize: mpsc::Sender<TermSize>,
}

#[async_trait::async_trait]
impl TerminalControl for PodControl {
    async fn resize(&self, size: TermSize) -> Result<(), TerminalError> {
        self.resize
            .send(size)
            .await
            .map_err(|_| TerminalError::Unavailable("the shell has ended".into()))
    }

    async fn redraw(&self) {
        if let Err(error) = self.tmux("refresh-client").await {
            tracing::debug!(%error, tty = %self.tty, "could not redraw a terminal client");
        }
    }

    async fn detach(&self) {
        if let Err(error) = self.tmux("detach-client").await {
            tracing::debug!(%error, tty = %self.tty, "could not detach a terminal client (the terminal may be gone)");
        }
    }
}

impl PodControl {
    /// Runs `tmux <command> -t <this client>` in an exec of its own, and waits for its end.
    async fn tmux(&self, command: &str) -> Result<(), kube::Error> {
        let params = AttachParams::default().container(TERMINAL).stderr(false);
        let mut attached = self
            .pods
            .exec(TERMINAL, ["tmux", command, "-t", &self.tty], &params)
            .await?;
        if let Some(stdout) = attached.stdout() {
            let mut drained = ReaderStream::new(stdout);
            while drained.next().await.is_some() {}
        }
        attached
            .join()
            .await
            .map_err(|e| kube::Error::Service(Box::new(e)))
    }
}

fn not_found(error: kube::Error, cluster: &ClusterName) -> TerminalError {
    match error {
        kube::Error::Api(status) if status.code == 404 => TerminalError::NotFound(cluster.clone()),
        other => other.into(),
    }
}

async fn read_all(stream: Option<impl AsyncRead + Unpin>) -> Vec<u8> {
    let mut bytes = Vec::new();
    if let Some(mut stream) = stream {
        // A broken stream ends what was read: the exit status tells whether it mattered.
        let _ = stream.read_to_end(&mut bytes).await;
    }
    bytes
}

/// The exec API's verdict as an exit status: `Success`, or the `ExitCode` cause of a failure;
/// -1 when it gave none.
fn exit_code(status: Option<Status>) -> i64 {
    let Some(status) = status else { return -1 };
    if status.status.as_deref() == Some("Success") {
        return 0;
    }
    status
        .details
        .and_then(|d| d.causes)
        .into_iter()
        .flatten()
        .find(|cause| cause.reason.as_deref() == Some("ExitCode"))
        .and_then(|cause| cause.message?.parse().ok())
        .unwrap_or(-1)
}

async fn ignore_missing<T>(deleted: Result<T, kube::Error>) -> Result<(), TerminalError> {
    match deleted {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[async_trait::async_trait]
impl TerminalRuntime for PodTerminals {
    /// The pod and its kubeconfig Secret in the session's namespace, once the pod runs and
    /// reaches its APIs; for an exam, the policies that let it reach its other hosts' APIs (each
    /// host's `network` is its namespace). The spec's own `network` has no meaning here: the
    /// namespaces' network policies say what the terminal reaches.
    async fn create(&self, spec: &TerminalSpec<'_>) -> Result<(), TerminalError> {
        let created = self.try_create(spec).await;
        if let Err(error) = &created {
            tracing::warn!(cluster = %spec.cluster, %error, "terminal failed; removing what was made");
            if let Err(cleanup) = self.remove(spec.cluster).await {
                tracing::error!(cluster = %spec.cluster, error = %cleanup, "could not remove a failed terminal");
            }
        }
        created
    }

    async fn attach(
        &self,
        cluster: &ClusterName,
        tab: ShellTab,
        size: TermSize,
    ) -> Result<TerminalIo, TerminalError> {
        self.attach_shell(cluster, tab, size).await
    }

    async fn run(&self, cluster: &ClusterName, argv: Vec<String>) -> Result<Ran, TerminalError> {
        let params = AttachParams::default().container(TERMINAL);
        let mut attached = self
            .pods(cluster)
            .exec(TERMINAL, argv, &params)
            .await
            .map_err(|e| not_found(e, cluster))?;
        let (stdout, stderr, status) = (attached.stdout(), attached.stderr(), attached.take_status());
        let (stdout, stderr) = tokio::join!(read_all(stdout), read_all(stderr));
        let status = match status {
            Some(status) => status.await,
            None => None,
        };
        Ok(Ran {
            status: exit_code(status),
            stdout,
            stderr: String::from_utf8_lossy(&stderr).trim().to_owned(),
        })
    }

    /// Deletes the pod, its Secret and an exam terminal's policies in its hosts' namespaces
    /// (found by the terminal's labels); the namespaces going takes them anyway.
    async fn remove(&self, cluster: &ClusterName) -> Result<(), TerminalError> {
        let delete = DeleteParams::default();
        ignore_missing(self.pods(cluster).delete(TERMINAL, &delete).await).await?;
        let secrets = Api::<Secret>::namespaced(self.host.clone(), cluster.as_str());
        ignore_missing(secrets.delete(TERMINAL_SECRET, &delete).await).await?;
        let selector = format!(
            "{COMPONENT_LABEL}={TERMINAL},{INSTANCE_LABEL}={},{CLUSTER_LABEL}={cluster}",
            self.instance
        );
        let policies = Api::<NetworkPolicy>::all(self.host.clone())
            .list(&ListParams::default().labels(&selector))
            .await?;
        for policy in policies.items {
            let (Some(namespace), Some(name)) = (policy.metadata.namespace, policy.metadata.name) else {
                continue;
            };
            let policies = Api::<NetworkPolicy>::namespaced(self.host.clone(), &namespace);
            ignore_missing(policies.delete(&name, &delete).await).await?;
        }
        Ok(())
    }

    async fn list(&self) -> Result<Vec<ClusterName>, TerminalError> {
        let selector = format!("{COMPONENT_LABEL}={TERMINAL},{INSTANCE_LABEL}={}", self.instance);
        let pods = Api::<Pod>::all(self.host.clone())
            .list(&ListParams::default().labels(&selector))
            .await?;
        let mut clusters: Vec<ClusterName> = pods
            .items
            .iter()
            .filter_map(|pod| pod.metadata.labels.as_ref()?.get(CLUSTER_LABEL))
            .filter_map(|name| ClusterName::parse(name).ok())
            .collect();
        clusters.sort();
        clusters.dedup();
        Ok(clusters)
    }

    /// Whether the host's API answers; its nodes' images cannot be seen from here.
    async fn ready(&self) -> Result<(), String> {
        self.host
            .apiserver_version()
            .await
            .map(|_| ())
            .map_err(|e| format!("the host cluster's API: {e}"))
    }

    /// The kubelet restarts a terminal's container by itself; a pod that is gone (deleted,
    /// evicted) is not made again here.
    async fn revive(&self, cluster: &ClusterName) -> Result<Revival, TerminalError> {
        let pod = self.pods(cluster).get_opt(TERMINAL).await?;
        let phase = pod.and_then(|p| p.status).and_then(|s| s.phase);
        Ok(match phase.as_deref() {
            Some("Running" | "Pending") => Revival::Running,
            _ => Revival::Gone,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{StatusCause, StatusDetails};

    #[test]
    fn an_execs_status_becomes_its_exit_code() {
        let success = Status {
            status: Some("Success".into()),
            ..Default::default()
        };
        assert_eq!(exit_code(Some(success)), 0);
        let missing = Status {
            status: Some("Failure".into()),
            reason: Some("NonZeroExitCode".into()),
            details: Some(StatusDetails {
                causes: Some(vec![StatusCause {
                    reason: Some("ExitCode".into()),
                    message: Some("3".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(exit_code(Some(missing)), super::super::NO_FILE);
        assert_eq!(exit_code(None), -1);
    }
}
