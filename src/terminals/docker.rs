//! Terminals as Docker containers, hardened as measured in `notes/docker-terminal.md`: 512 MB
//! with no swap beyond it, half a CPU, 100 processes, a read-only root, tmpfs `/tmp` (noexec) and
//! home, uid 1000, no capabilities, no new privileges, an init process, no Docker socket and no
//! platform variables. The kubeconfig reaches the container through a per-session volume
//! filled by the Engine API (never a bind mount of a platform path, which would not resolve when
//! the platform itself runs in a container) and mounted read-only at `~/.kube`.

use std::collections::HashMap;

use bollard::{
    container::LogOutput,
    exec::{CreateExecOptions, StartExecOptions, StartExecResults},
    models::{
        ContainerCreateBody, HostConfig, HostConfigLogConfig, Mount, MountType, NetworkConnectRequest,
        RestartPolicy, RestartPolicyNameEnum, VolumeCreateRequest,
    },
    query_parameters::{
        CreateContainerOptions, ListContainersOptions, RemoveContainerOptions, RemoveVolumeOptions,
        ResizeExecOptions, UploadToContainerOptions,
    },
    Docker,
};
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use tokio::io::AsyncWriteExt as _;

use super::{
    OutputStream, Ran, Revival, ShellTab, TermSize, TerminalAccess, TerminalControl, TerminalError,
    TerminalIo, TerminalRuntime, TerminalSpec, HOSTS_DIR,
};
use crate::{
    clusters::{ClusterName, CLUSTER_LABEL, INSTANCE_LABEL, PLATFORM_LABEL},
    docker::DockerEngine,
};

const SESSION_LABEL: &str = "ckad.session";
const USER_LABEL: &str = "ckad.user";

/// What a container on a session network may use: memory (no swap beyond it), CPU and processes.
pub(super) struct Limits {
    pub memory_mib: i64,
    pub nano_cpus: i64,
    pub pids: i64,
}

const TERMINAL_LIMITS: Limits = Limits {
    memory_mib: 512,
    nano_cpus: 500_000_000,
    pids: 100,
};

/// How every container the platform runs on a session network starts: within `limits`, on a
/// read-only root, without capabilities or a way to gain any, with no log on the host (what a
/// learner writes to the container's own output, `/proc/1/fd/1`, would fill the host's disk;
/// the shell's output goes through exec streams anyway) and no name outside the session: Docker's
/// DNS in the container answers the session's names itself and sends the rest upstream, and an
/// upstream on loopback, where nothing answers, means no query leaves the machine.
pub(super) fn hardened(network: &str, limits: Limits) -> HostConfig {
    HostConfig {
        memory: Some(limits.memory_mib * 1024 * 1024),
        memory_swap: Some(limits.memory_mib * 1024 * 1024),
        nano_cpus: Some(limits.nano_cpus),
        pids_limit: Some(limits.pids),
        readonly_rootfs: Some(true),
        cap_drop: Some(vec!["ALL".into()]),
        security_opt: Some(vec!["no-new-privileges".into()]),
        log_config: Some(HostConfigLogConfig {
            typ: Some("none".into()),
            config: None,
        }),
        network_mode: Some(network.to_owned()),
        dns: Some(vec!["127.0.0.1".into()]),
        ..Default::default()
    }
}
const HOME: &str = "/home/ckad";
const COURSE: &str = "/opt/course";
/// Every connection to a tab attaches to its tmux session (`$1`), made by the first. The
/// client's TTY is printed first, on a line of its own, so that the connection can be detached by
/// name later; tmux starts only once the platform has read it and sent a line back, because a
/// starting tmux client discards what the TTY holds unread (it flushes its output), which lost
/// the line under load.
pub(super) const SHELL: &str = r#"tty && read -r _ && exec tmux -u new-session -A -s "$1""#;
/// The first line of an attach is its TTY; a shell that has not printed it by then is broken.
const TTY_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

pub struct DockerTerminals {
    docker: DockerEngine,
    image: String,
    instance: String,
}

impl DockerTerminals {
    pub fn new(docker: DockerEngine, image: &str, instance: &str) -> Self {
        Self {
            docker,
            image: image.to_owned(),
            instance: instance.to_owned(),
        }
    }

    fn container(cluster: &ClusterName) -> String {
        format!("term-{cluster}")
    }

    fn volume(cluster: &ClusterName) -> String {
        format!("term-{cluster}-kube")
    }

    fn labels(&self, spec: &TerminalSpec<'_>) -> HashMap<String, String> {
        HashMap::from([
            (PLATFORM_LABEL.to_owned(), "terminal".to_owned()),
            (INSTANCE_LABEL.to_owned(), self.instance.clone()),
            (CLUSTER_LABEL.to_owned(), spec.cluster.to_string()),
            (SESSION_LABEL.to_owned(), spec.session_id.to_owned()),
            (USER_LABEL.to_owned(), spec.user_id.to_owned()),
        ])
    }

    async fn try_create(&self, docker: &Docker, spec: &TerminalSpec<'_>) -> Result<(), TerminalError> {
        let labels = self.labels(spec);
        let volume = Self::volume(spec.cluster);
        docker
            .create_volume(VolumeCreateRequest {
                name: Some(volume.clone()),
                labels: Some(labels.clone()),
                ..Default::default()
            })
            .await?;
        self.fill_volume(docker, &volume, spec).await?;

        let tmpfs = HashMap::from([
            ("/tmp".to_owned(), "rw,noexec,nosuid,nodev,size=100m".to_owned()),
            (
                HOME.to_owned(),
                "rw,nosuid,nodev,size=64m,uid=1000,gid=1000,mode=0700".to_owned(),
            ),
            // Where exam-style tasks ask for answers (`/opt/course/<task>/...`), as in the exam.
            (
                COURSE.to_owned(),
                "rw,noexec,nosuid,nodev,size=16m,uid=1000,gid=1000,mode=0755".to_owned(),
            ),
        ]);
        let host_config = HostConfig {
            tmpfs: Some(tmpfs),
            init: Some(true),
            // A terminal that dies (its init killed, an engine restart) comes back by itself.
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                maximum_retry_count: None,
            }),
            mounts: Some(vec![Mount {
                target: Some(format!("{HOME}/.kube")),
                source: Some(volume),
                typ: Some(MountType::VOLUME),
                read_only: Some(true),
                ..Default::default()
            }]),
            ..hardened(spec.network, TERMINAL_LIMITS)
        };
        let name = Self::container(spec.cluster);
        docker
            .create_container(
                Some(CreateContainerOptions {
                    name: Some(name.clone()),
                    ..Default::default()
                }),
                ContainerCreateBody {
                    image: Some(self.image.clone()),
                    user: Some("1000:1000".into()),
                    hostname: Some("ckad".into()),
                    labels: Some(labels),
                    host_config: Some(host_config),
                    ..Default::default()
                },
            )
            .await?;
        // An exam's other hosts: their clusters answer on networks of their own.
        if let TerminalAccess::Hosts(hosts) = spec.access {
            for host in hosts.iter().filter(|h| h.network != spec.network) {
                let request = NetworkConnectRequest {
                    container: name.clone(),
                    endpoint_config: None,
                };
                docker.connect_network(host.network, request).await?;
            }
        }
        docker.start_container(&name, None).await?;
        Ok(())
    }

    /// Writes the kubeconfig into the session's volume through a container that is created,
    /// never started, and removed: the Engine API refuses to write into a read-only mount.
    async fn fill_volume(
        &self,
        docker: &Docker,
        volume: &str,
        spec: &TerminalSpec<'_>,
    ) -> Result<(), TerminalError> {
        let filler = format!("{}-fill", Self::container(spec.cluster));
        docker
            .create_container(
                Some(CreateContainerOptions {
                    name: Some(filler.clone()),
                    ..Default::default()
                }),
                ContainerCreateBody {
                    image: Some(self.image.clone()),
                    labels: Some(self.labels(spec)),
                    network_disabled: Some(true),
                    host_config: Some(HostConfig {
                        mounts: Some(vec![Mount {
                            target: Some("/kube".into()),
                            source: Some(volume.to_owned()),
                            typ: Some(MountType::VOLUME),
                            ..Default::default()
                        }]),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )
            .await?;
        let uploaded = docker
            .upload_to_container(
                &filler,
                Some(UploadToContainerOptions {
                    path: "/kube".into(),
                    ..Default::default()
                }),
                bollard::body_full(kubeconfig_archive(spec.access)?.into()),
            )
            .await;
        remove_container(docker, &filler).await?;
        Ok(uploaded?)
    }
}

/// A tar holding `config` (one cluster) or `hosts/<host>` (an exam's hosts), readable by the
/// learner (uid 1000) and writable by no one.
fn kubeconfig_archive(access: TerminalAccess<'_>) -> Result<Vec<u8>, TerminalError> {
    let files = access.files()?;
    let mut archive = tar::Builder::new(Vec::new());
    let folder = match access {
        TerminalAccess::Cluster(_) => Ok(()),
        TerminalAccess::Hosts(_) => append(&mut archive, HOSTS_DIR, None),
    };
    folder
        .and_then(|()| {
            files
                .iter()
                .try_for_each(|(path, kubeconfig)| append(&mut archive, path, Some(kubeconfig.yaml())))
        })
        .and_then(|()| archive.into_inner())
        .map_err(|e| TerminalError::Unavailable(format!("packing the kubeconfig: {e}")))
}

/// Adds a file of `content` readable by all, or a folder (`None`) that all may enter, owned by
/// root and the learner's group.
fn append(archive: &mut tar::Builder<Vec<u8>>, path: &str, content: Option<&str>) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    let (kind, mode, data) = match content {
        Some(text) => (tar::EntryType::Regular, 0o444, text.as_bytes()),
        None => (tar::EntryType::Directory, 0o555, &[][..]),
    };
    header.set_entry_type(kind);
    header.set_size(data.len() as u64);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(1000);
    header.set_mtime(0);
    archive.append_data(&mut header, path, data)
}

/// An exec refused because the terminal's container does not exist is the terminal missing.
fn not_found(error: bollard::errors::Error, cluster: &ClusterName) -> TerminalError {
    match error {
        bollard::errors::Error::DockerResponseServerError { status_code: 404, .. } => {
            TerminalError::NotFound(cluster.clone())
        }
        other => other.into(),
    }
}

async fn remove_container(docker: &Docker, name: &str) -> Result<(), TerminalError> {
    let options = RemoveContainerOptions {
        force: true,
        ..Default::default()
    };
    match docker.remove_container(name, Some(options)).await {
        Ok(()) | Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

async fn remove_volume(docker: &Docker, name: &str) -> Result<(), TerminalError> {
    let options = RemoveVolumeOptions { force: true };
    match docker.remove_volume(name, Some(options)).await {
        Ok(()) | Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// One attach: its exec (resized) and its tmux client's TTY (detached by name).
struct ExecControl {
    docker: Docker,
    exec: String,
    container: String,
    tty: String,
}

#[async_trait::async_trait]
impl TerminalControl for ExecControl {
    async fn resize(&self, size: TermSize) -> Result<(), TerminalError> {
        let options = ResizeExecOptions {
            h: size.rows.into(),
            w: size.cols.into(),
        };
        Ok(self.docker.resize_exec(&self.exec, options).await?)
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

impl ExecControl {
    /// Runs `tmux <command> -t <this client>` in an exec of its own, from outside the shell.
    async fn tmux(&self, command: &str) -> Result<(), bollard::errors::Error> {
        let exec = self
            .docker
            .create_exec(
                &self.container,
                CreateExecOptions {
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    cmd: Some(vec!["tmux", command, "-t", &self.tty]),
                    ..Default::default()
                },
            )
            .await?
            .id;
        // Attached, so that this returns once tmux has done it.
        if let StartExecResults::Attached { mut output, .. } = self.docker.start_exec(&exec, None).await? {
            while output.next().await.is_some() {}
        }
        Ok(())
    }
}

/// Splits the attach's first line, its TTY (`/dev/pts/N`), from the rest of its output.
pub(super) async fn read_tty(output: &mut OutputStream) -> Result<(String, Bytes), TerminalError> {
    let mut seen = Vec::new();
    let read = async {
        while let Some(chunk) = output.next().await {
            seen.extend_from_slice(&chunk?);
            // Whatever blank lines come first (none, usually), the TTY's is the first with text.
            while let Some(end) = seen.iter().position(|&b| b == b'\n') {
                let line = String::from_utf8_lossy(&seen[..end]).trim().to_owned();
                if line.is_empty() {
                    seen.drain(..=end);
                    continue;
                }
                let is_pty = line
                    .strip_prefix("/dev/pts/")
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
                return match is_pty {
                    true => Ok((line, Bytes::copy_from_slice(&seen[end + 1..]))),
                    false => Err(TerminalError::Unavailable(format!(
                        "the shell has no TTY: {line:?}"
                    ))),
                };
            }
            if seen.len() > 256 {
                break;
            }
        }
        Err(TerminalError::Unavailable("the shell did not start".into()))
    };
    tokio::time::timeout(TTY_LIMIT, read).await.unwrap_or_else(|_| {
        Err(TerminalError::Unavailable(
            "the shell did not start in time".into(),
        ))
    })
}

#[async_trait::async_trait]
impl TerminalRuntime for DockerTerminals {
    async fn create(&self, spec: &TerminalSpec<'_>) -> Result<(), TerminalError> {
        let docker = self.docker.client().await?;
        let created = self.try_create(&docker, spec).await;
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
        let docker = self.docker.client().await?;
        let container = Self::container(cluster);
        let session = tab.tmux_session();
        let shell = CreateExecOptions {
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(true),
            env: Some(vec!["TERM=xterm-256color"]),
            cmd: Some(vec!["sh", "-c", SHELL, "sh", &session]),
            ..Default::default()
        };
        let exec = match docker.create_exec(&container, shell.clone()).await {
            // A stopped terminal (409) is started again rather than refused: the learner gets a
            // fresh shell instead of an error.
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 409, .. }) => {
                if self.revive(cluster).await? == Revival::Gone {
                    return Err(TerminalError::NotFound(cluster.clone()));
                }
                docker.create_exec(&container, shell).await
            }
            created => created,
        }
        .map_err(|e| not_found(e, cluster))?
        .id;
        let options = StartExecOptions {
            tty: true,
            ..Default::default()
        };
        let StartExecResults::Attached { output, mut input } =
            docker.start_exec(&exec, Some(options)).await?
        else {
            return Err(TerminalError::Unavailable("the exec started detached".into()));
        };

        let mut output: OutputStream = output
            .map_ok(LogOutput::into_bytes)
            .map_err(TerminalError::from)
            .boxed();
        let (tty, rest) = read_tty(&mut output).await?;
        let go_on = async {
            input.write_all(b"\n").await?;
            input.flush().await
        };
        go_on
            .await
            .map_err(|e| TerminalError::Unavailable(format!("the shell takes no input: {e}")))?;
        let control = ExecControl {
            docker,
            exec,
            container,
            tty,
        };
        // Docker ignores a size given at create time (API 1.41): resize right after start.
        control.resize(size).await?;
        let output = futures_util::stream::iter((!rest.is_empty()).then_some(Ok(rest)))
            .chain(output)
            .boxed();
        Ok(TerminalIo {
            output,
            input,
            control: Box::new(control),
        })
    }

    async fn run(&self, cluster: &ClusterName, argv: Vec<String>) -> Result<Ran, TerminalError> {
        let docker = self.docker.client().await?;
        let exec = docker
            .create_exec(
                &Self::container(cluster),
                CreateExecOptions {
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    cmd: Some(argv),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| not_found(e, cluster))?
            .id;
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        if let StartExecResults::Attached { mut output, .. } = docker.start_exec(&exec, None).await? {
            while let Some(chunk) = output.next().await {
                match chunk? {
                    LogOutput::StdOut { message } => stdout.extend_from_slice(&message),
                    other => stderr.extend_from_slice(&other.into_bytes()),
                }
            }
        }
        Ok(Ran {
            status: docker.inspect_exec(&exec).await?.exit_code.unwrap_or(-1),
            stdout,
            stderr: String::from_utf8_lossy(&stderr).trim().to_owned(),
        })
    }

    async fn remove(&self, cluster: &ClusterName) -> Result<(), TerminalError> {
        let docker = self.docker.client().await?;
        let container = Self::container(cluster);
        remove_container(&docker, &format!("{container}-fill")).await?;
        remove_container(&docker, &container).await?;
        remove_volume(&docker, &Self::volume(cluster)).await
    }

    async fn list(&self) -> Result<Vec<ClusterName>, TerminalError> {
        let filters = HashMap::from([(
            "label".to_owned(),
            vec![
                format!("{PLATFORM_LABEL}=terminal"),
                format!("{INSTANCE_LABEL}={}", self.instance),
            ],
        )]);
        let containers = self
            .docker
            .client()
            .await?
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters),
                ..Default::default()
            }))
            .await?;
        let mut clusters: Vec<ClusterName> = containers
            .into_iter()
            .filter_map(|c| {
                c.labels?
                    .get(CLUSTER_LABEL)
                    .and_then(|n| ClusterName::parse(n).ok())
            })
            .collect();
        clusters.sort();
        clusters.dedup();
        Ok(clusters)
    }

    async fn ready(&self) -> Result<(), String> {
        let docker = self.docker.client().await.map_err(|e| e.to_string())?;
        match docker.inspect_image(&self.image).await {
            Ok(_) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Err(format!(
                "the terminal image {} is missing (scripts/build-terminal-image.sh builds it)",
                self.image
            )),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn revive(&self, cluster: &ClusterName) -> Result<Revival, TerminalError> {
        let docker = self.docker.client().await?;
        let container = Self::container(cluster);
        let running = match docker.inspect_container(&container, None).await {
            Ok(inspected) => inspected.state.and_then(|s| s.running).unwrap_or(false),
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {
                return Ok(Revival::Gone)
            }
            Err(e) => return Err(e.into()),
        };
        if running {
            return Ok(Revival::Running);
        }
        match docker.start_container(&container, None).await {
            // 304: started by someone else meanwhile.
            Ok(()) | Err(bollard::errors::Error::DockerResponseServerError { status_code: 304, .. }) => {
                tracing::warn!(%cluster, "the terminal had stopped; started it again");
                Ok(Revival::Restarted)
            }
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {
                Ok(Revival::Gone)
            }
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_terminal_on_kubernetes_gets_what_a_docker_terminal_gets() {
        use crate::clusters::kubernetes::TERMINAL_RESOURCES;
        assert_eq!(TERMINAL_RESOURCES.limit_mib, TERMINAL_LIMITS.memory_mib);
        assert_eq!(
            TERMINAL_RESOURCES.limit_millicpu * 1_000_000,
            TERMINAL_LIMITS.nano_cpus
        );
    }

    /// Each entry's path, mode and size.
    fn entries(bytes: &[u8]) -> Vec<(String, u32, u64)> {
        let mut archive = tar::Archive::new(bytes);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.mode().unwrap(),
                    h.size().unwrap(),
                )
            })
            .collect()
    }

    const KUBECONFIG: &str = "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n";

    #[test]
    fn the_kubeconfig_archive_holds_one_read_only_file() {
        let kubeconfig = crate::clusters::Kubeconfig::from_yaml(KUBECONFIG).unwrap();
        let bytes = kubeconfig_archive(TerminalAccess::Cluster(&kubeconfig)).unwrap();
        assert_eq!(
            entries(&bytes),
            [("config".to_owned(), 0o444, KUBECONFIG.len() as u64)]
        );
    }

    #[test]
    fn an_exams_hosts_get_a_read_only_kubeconfig_each_and_no_config() {
        let kubeconfig = crate::clusters::Kubeconfig::from_yaml(KUBECONFIG).unwrap();
        let host = |name| super::super::TerminalHost {
            name,
            network: "kwok-x",
            kubeconfig: &kubeconfig,
        };
        let hosts = [host("ckad7326"), host("ckad5601")];
        let bytes = kubeconfig_archive(TerminalAccess::Hosts(&hosts)).unwrap();
        let size = KUBECONFIG.len() as u64;
        assert_eq!(
            entries(&bytes),
            [
                ("hosts".to_owned(), 0o555, 0),
                ("hosts/ckad7326".to_owned(), 0o444, size),
                ("hosts/ckad5601".to_owned(), 0o444, size),
            ]
        );
        let odd = [host("../config")];
        assert!(kubeconfig_archive(TerminalAccess::Hosts(&odd)).is_err());
    }
}
