//! The learner's terminal: one hardened container per session on the session's network, reached
//! through `docker exec` with a TTY, and bridged to the browser by `/ws/terminal`.
//!
//! The shell runs inside tmux in the container, and every connection attaches to the same tmux
//! session: closing a socket (a network blip, a reload) never ends the shell, and reconnecting
//! lands in the same shell with its screen redrawn. tmux over dtach because it redraws the screen
//! for the new client and keeps scrollback; it is invisible otherwise (no status line). Each of
//! the page's terminal tabs is a tmux session of its own in the same container ([`ShellTab`]).

mod docker;
mod firewall;
mod kubernetes;
mod sockets;
mod tickets;

use std::pin::Pin;

use app::api::TERMINAL_TABS;
use bytes::Bytes;
use futures_util::Stream;
use tokio::io::AsyncWrite;

pub use docker::DockerTerminals;
pub use firewall::{EgressProbe, HostFirewall, ProbeTarget, EGRESS_CHAIN};
pub use kubernetes::PodTerminals;
pub use sockets::{CloseReason, SocketGuard, TerminalSockets};
pub use tickets::{Tickets, TICKET_LIFETIME};

use crate::{
    clusters::{ClusterName, Kubeconfig},
    exams::is_host_name,
    tasks::{LearnerFiles, LearnerPath},
};

/// What a session's terminal needs.
#[derive(Debug, Clone)]
pub struct TerminalSpec<'a> {
    pub cluster: &'a ClusterName,
    /// The Docker network of the session, where the cluster's API answers (an exam's first
    /// host's).
    pub network: &'a str,
    /// What kubectl in the terminal reaches.
    pub access: TerminalAccess<'a>,
    pub session_id: &'a str,
    pub user_id: &'a str,
}

/// What kubectl in a terminal reaches; the kubeconfigs are mounted read-only under `~/.kube`.
#[derive(Debug, Clone, Copy)]
pub enum TerminalAccess<'a> {
    /// One cluster, at `~/.kube/config`.
    Cluster(&'a Kubeconfig),
    /// An exam's hosts, each at `~/.kube/hosts/<host>`: the shell starts on a base machine with
    /// no cluster, and the image's `ssh <host>` opens a shell on that host's cluster. The
    /// terminal joins every host's network.
    Hosts(&'a [TerminalHost<'a>]),
}

/// One host of an exam, as its terminal reaches it.
#[derive(Debug, Clone, Copy)]
pub struct TerminalHost<'a> {
    /// Checked by the exam catalog ([`is_host_name`]), and again by [`TerminalAccess::files`].
    pub name: &'a str,
    /// Where the host's cluster API answers: its Docker network, or its namespace on the
    /// `kubernetes` provider.
    pub network: &'a str,
    pub kubeconfig: &'a Kubeconfig,
}

impl<'a> TerminalAccess<'a> {
    /// The kubeconfigs under `~/.kube`, by path there: `config`, or `hosts/<host>` for each of an
    /// exam's hosts (where the terminal image's `ssh` looks). A host's name becomes a path: one
    /// that is no host name is refused, whatever let it through.
    pub fn files(&self) -> Result<Vec<(String, &'a Kubeconfig)>, TerminalError> {
        match *self {
            Self::Cluster(kubeconfig) => Ok(vec![("config".to_owned(), kubeconfig)]),
            Self::Hosts(hosts) => hosts
                .iter()
                .map(|host| match is_host_name(host.name) {
                    true => Ok((format!("{HOSTS_DIR}/{}", host.name), host.kubeconfig)),
                    false => Err(TerminalError::Unavailable(format!(
                        "{:?} is not a host name",
                        host.name
                    ))),
                })
                .collect(),
        }
    }
}

/// The folder of `~/.kube` that holds an exam's hosts' kubeconfigs.
pub const HOSTS_DIR: &str = "hosts";

/// Columns and rows of the browser's terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub struct TermSize {
    pub cols: u16,
    pub rows: u16,
}

impl TermSize {
    /// Sizes outside this are a broken or hostile client; the screen is kept as it was.
    pub fn is_sane(self) -> bool {
        (2..=1000).contains(&self.cols) && (2..=500).contains(&self.rows)
    }
}

/// One of a terminal's shells: the page's tab N (from 1 to [`TERMINAL_TABS`]) is the tmux
/// session `ckad` for the first and `ckad-N` for the others, each with its own screen and
/// scroll-back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShellTab(u8);

impl ShellTab {
    pub const FIRST: Self = Self(1);

    pub fn new(number: u8) -> Option<Self> {
        (1..=TERMINAL_TABS).contains(&number).then_some(Self(number))
    }

    /// The tmux session; the first keeps the name it had before there were tabs.
    pub fn tmux_session(self) -> String {
        match self.0 {
            1 => "ckad".to_owned(),
            number => format!("ckad-{number}"),
        }
    }
}

pub type OutputStream = Pin<Box<dyn Stream<Item = Result<Bytes, TerminalError>> + Send>>;

/// One attached shell: the bytes it prints, the keys it reads, and its window and client.
pub struct TerminalIo {
    pub output: OutputStream,
    pub input: Pin<Box<dyn AsyncWrite + Send>>,
    pub control: Box<dyn TerminalControl>,
}

/// What is done to an attached shell beside its bytes.
#[async_trait::async_trait]
pub trait TerminalControl: Send + Sync {
    async fn resize(&self, size: TermSize) -> Result<(), TerminalError>;

    /// Has tmux draw this connection's whole screen again (into its output), so that a recording
    /// that starts following it has the screen from the first frame.
    async fn redraw(&self);

    /// Ends this connection's tmux client from outside it, so that it exits now: dropping the
    /// stream leaves a process on a TTY running (one more per reconnect, counted against the
    /// terminal's 100 processes). Nothing is typed into the shell, which stays.
    async fn detach(&self);
}

#[derive(Debug, thiserror::Error)]
pub enum TerminalError {
    #[error("the terminal of cluster {0} does not exist")]
    NotFound(ClusterName),
    #[error("the terminal cannot work: {0}")]
    Unavailable(String),
    #[error("Docker: {0}")]
    Docker(#[from] bollard::errors::Error),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

/// Makes, attaches to and removes sessions' terminals: Docker containers or pods of a host
/// cluster.
#[async_trait::async_trait]
pub trait TerminalRuntime: Send + Sync {
    /// Creates and starts the terminal; on failure nothing of it is left.
    async fn create(&self, spec: &TerminalSpec<'_>) -> Result<(), TerminalError>;

    /// Attaches a new TTY to the terminal's shell `tab` (the same shell every time), sized `size`.
    async fn attach(
        &self,
        cluster: &ClusterName,
        tab: ShellTab,
        size: TermSize,
    ) -> Result<TerminalIo, TerminalError>;

    /// Runs `argv` in the terminal as the learner's user, without a TTY or a shell of the
    /// learner's, until it ends.
    async fn run(&self, cluster: &ClusterName, argv: Vec<String>) -> Result<Ran, TerminalError>;

    /// At most `limit` bytes of the file at `path`, read as the learner's user; `None` when
    /// nothing is there. For the grader: nothing the learner types takes part.
    async fn read_file(
        &self,
        cluster: &ClusterName,
        path: &str,
        limit: usize,
    ) -> Result<Option<Vec<u8>>, TerminalError> {
        let argv = ["sh", "-c", READ_FILE, "sh", path, &limit.to_string()];
        match self.run(cluster, argv.map(str::to_owned).to_vec()).await? {
            Ran {
                status: 0, stdout, ..
            } => Ok(Some(stdout)),
            Ran { status: NO_FILE, .. } => Ok(None),
            Ran { stderr, .. } => Err(TerminalError::Unavailable(stderr)),
        }
    }

    /// Writes `content` to `path` as the learner's own file, making its folder.
    async fn write_file(
        &self,
        cluster: &ClusterName,
        path: &str,
        content: &str,
    ) -> Result<(), TerminalError> {
        let argv = ["sh", "-c", WRITE_FILE, "sh", path, content];
        match self.run(cluster, argv.map(str::to_owned).to_vec()).await? {
            Ran { status: 0, .. } => Ok(()),
            Ran { stderr, .. } => Err(TerminalError::Unavailable(stderr)),
        }
    }

    /// Removes the terminal and its kubeconfig; removing what is gone succeeds.
    async fn remove(&self, cluster: &ClusterName) -> Result<(), TerminalError>;

    /// The clusters whose terminals this platform instance holds.
    async fn list(&self) -> Result<Vec<ClusterName>, TerminalError>;

    /// Whether terminals can be made (the image is present); the reason when not.
    async fn ready(&self) -> Result<(), String>;

    /// Starts the terminal again if it stopped (a `docker stop`, an engine restart with the
    /// container stopped): what was found. A terminal that cannot start is an error.
    async fn revive(&self, cluster: &ClusterName) -> Result<Revival, TerminalError>;
}

/// How a [`TerminalRuntime::run`] ended: its exit status (-1 when none was told), its output and
/// its error output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran {
    pub status: i64,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

/// Reads a file for the grader: exit 3 when nothing is there, else at most `$2` bytes of `$1`.
/// The path is an argument, never part of the script.
const READ_FILE: &str = r#"[ -e "$1" ] || [ -L "$1" ] || exit 3; exec head -c "$2" -- "$1""#;
/// Writes `$2` to `$1`, making its folder.
const WRITE_FILE: &str = r#"mkdir -p -- "${1%/*}" && printf %s "$2" > "$1""#;
/// Exit status of [`READ_FILE`] when the file does not exist.
const NO_FILE: i64 = 3;

/// What [`TerminalRuntime::revive`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revival {
    Running,
    /// It had stopped and runs again (a new shell: the old one died with it).
    Restarted,
    Gone,
}

/// A session's terminal as the place where tasks put and look for the learner's files.
pub struct TerminalFiles<'a> {
    pub runtime: &'a dyn TerminalRuntime,
    pub cluster: &'a ClusterName,
}

#[async_trait::async_trait]
impl LearnerFiles for TerminalFiles<'_> {
    async fn read(&self, path: &LearnerPath, limit: usize) -> Result<Option<Vec<u8>>, String> {
        self.runtime
            .read_file(self.cluster, path.as_str(), limit)
            .await
            .map_err(|e| format!("the terminal could not be read: {e}"))
    }

    async fn write(&self, path: &LearnerPath, content: &str) -> Result<(), String> {
        self.runtime
            .write_file(self.cluster, path.as_str(), content)
            .await
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tabs_are_numbered_from_one_to_the_limit_and_the_first_keeps_its_shell() {
        assert_eq!(ShellTab::new(0), None);
        assert_eq!(ShellTab::new(TERMINAL_TABS + 1), None);
        assert_eq!(ShellTab::FIRST.tmux_session(), "ckad");
        assert_eq!(
            ShellTab::new(2).map(ShellTab::tmux_session).as_deref(),
            Some("ckad-2")
        );
    }

    #[test]
    fn a_terminal_finds_its_cluster_at_config_or_each_host_at_its_name() {
        let kubeconfig =
            Kubeconfig::from_yaml("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
                .unwrap();
        let paths = |access: TerminalAccess<'_>| {
            access
                .files()
                .map(|files| files.into_iter().map(|(path, _)| path).collect::<Vec<_>>())
        };
        assert_eq!(paths(TerminalAccess::Cluster(&kubeconfig)).unwrap(), ["config"]);
        let host = |name| TerminalHost {
            name,
            network: "ns",
            kubeconfig: &kubeconfig,
        };
        let hosts = [host("ckad7326"), host("ckad5601")];
        assert_eq!(
            paths(TerminalAccess::Hosts(&hosts)).unwrap(),
            ["hosts/ckad7326", "hosts/ckad5601"]
        );
        // A name is a path here: whatever passed the catalog, nothing but a host name is one.
        for odd in ["../config", "", "a/b", "Upper", "base"] {
            assert!(paths(TerminalAccess::Hosts(&[host(odd)])).is_err(), "{odd:?}");
        }
    }
}
