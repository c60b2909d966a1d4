//! With `HOST_FIREWALL=external` the operator puts the rules in place, so the platform proves
//! them by their effect rather than reading them: a short-lived container on a network cut from
//! the session pool, hardened as a terminal is, tries the host (its network's gateway) on the
//! platform's own ports and, when the operator names one (`EGRESS_PROBE_TARGET`), an address
//! outside that the host itself reaches. The rules drop new connections, so only silence proves
//! them: any answer (a connection, a refusal, an ICMP error) means a packet got past them.
//!
//! A verdict is kept for a while: readiness is asked often, and a probe costs a network and a
//! container. Callers get the latest verdict at once; a stale one starts a probe in the background.

use std::{
    collections::HashMap,
    fmt,
    net::{Ipv4Addr, SocketAddrV4},
    str::FromStr,
    sync::{Arc, Mutex},
    time::Duration,
};

use bollard::{
    models::ContainerCreateBody,
    query_parameters::{
        AttachContainerOptions, CreateContainerOptions, ListContainersOptions, ListNetworksOptions,
        RemoveContainerOptions,
    },
    Docker,
};
use futures_util::StreamExt;
use tokio::time::Instant;

use crate::{
    clusters::{ClusterError, ClusterName, Networks, SubnetPool, INSTANCE_LABEL, PLATFORM_LABEL},
    docker::DockerEngine,
    terminals::docker::{hardened, Limits},
};

/// The owner label of the probe's network and container: no cluster provider lists them.
const OWNER: &str = "egress-probe";
/// How long a proof stands, and how soon a failed probe is tried again (the operator is fixing it).
const PROVEN_FOR: Duration = Duration::from_secs(60);
const FAILED_FOR: Duration = Duration::from_secs(10);
/// How long a connection attempt may meet silence before it counts as dropped: an answer on
/// this host or near it takes milliseconds; the margin is for a probe started on a loaded machine.
const SILENCE: Duration = Duration::from_secs(5);
/// The whole probe, engine calls included.
const PROBE_LIMIT: Duration = Duration::from_secs(60);
/// Tries each `ip:port` argument at once; one line each: `ip:port connected|silent|answered <why>`.
/// The addresses are arguments, never part of the script.
const SCRIPT: &str = r#"for target; do
  (
    out=$(timeout "$SILENCE" bash -c 'exec 3<>"/dev/tcp/${1%:*}/${1##*:}"' probe "$target" 2>&1)
    case $? in
      0) echo "$target connected" ;;
      124) echo "$target silent" ;;
      *) echo "$target answered ${out##*: }" ;;
    esac
  ) &
done
wait"#;

/// `EGRESS_PROBE_TARGET`: an `ip:port` outside the session pool that the host reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeTarget(SocketAddrV4);

impl ProbeTarget {
    pub fn addr(&self) -> SocketAddrV4 {
        self.0
    }
}

impl FromStr for ProbeTarget {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let addr: SocketAddrV4 = s
            .parse()
            .map_err(|_| format!("expected an IPv4 address and a port, like 203.0.113.7:443: {s}"))?;
        let ip = addr.ip();
        if ip.is_loopback()
            || ip.is_unspecified()
            || ip.is_multicast()
            || ip.is_broadcast()
            || addr.port() == 0
        {
            return Err(format!("{s} is not an address a session could send to"));
        }
        Ok(Self(addr))
    }
}

impl fmt::Display for ProbeTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What a probe found: what it proved, or what got through (or why nothing could be proven).
pub type Verdict = Result<String, String>;

#[derive(Clone)]
pub struct EgressProbe {
    inner: Arc<Inner>,
}

struct Inner {
    docker: DockerEngine,
    networks: Networks,
    image: String,
    instance: String,
    /// The platform's own ports on the host, which no session may reach.
    host_ports: Vec<u16>,
    target: Option<ProbeTarget>,
    latest: Mutex<Latest>,
}

#[derive(Default)]
struct Latest {
    verdict: Option<(Instant, Verdict)>,
    probing: bool,
}

/// How one address met a connection attempt from the session network.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Connected,
    Silent,
    Answered(String),
}

impl EgressProbe {
    /// A probe that runs `image` (the terminal image: it has bash and coreutils) on networks cut
    /// from `pool`, labelled for `instance`.
    pub fn new(
        docker: DockerEngine,
        image: &str,
        instance: &str,
        pool: SubnetPool,
        host_ports: Vec<u16>,
        target: Option<ProbeTarget>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                networks: Networks::new(docker.clone(), OWNER, instance).with_pool(pool),
                docker,
                image: image.to_owned(),
                instance: instance.to_owned(),
                host_ports,
                target,
                latest: Mutex::default(),
            }),
        }
    }

    /// The latest verdict (none before the first probe ends). When it is stale and no probe is
    /// running, one starts in a task of its own, so that a caller who gives up never leaves a
    /// container behind, and callers never wait for a container.
    pub fn verdict(&self) -> Option<Verdict> {
        let mut latest = self.inner.latest.lock().expect("never held across a panic");
        let stale = latest.verdict.as_ref().is_none_or(|(at, verdict)| {
            at.elapsed() >= if verdict.is_ok() { PROVEN_FOR } else { FAILED_FOR }
        });
        if stale && !latest.probing {
            latest.probing = true;
            let inner = self.inner.clone();
            tokio::spawn(async move {
                let verdict = inner.probe().await;
                match &verdict {
                    Ok(proof) => tracing::debug!(proof, "session networks are kept in"),
                    Err(reason) => tracing::warn!(reason, "session networks are not proven kept in"),
                }
                let mut latest = inner.latest.lock().expect("never held across a panic");
                *latest = Latest {
                    verdict: Some((Instant::now(), verdict)),
                    probing: false,
                };
            });
        }
        latest.verdict.as_ref().map(|(_, verdict)| verdict.clone())
    }
}

impl Inner {
    async fn probe(&self) -> Verdict {
        if let Some(target) = self.target {
            // Silence from a target that the host cannot reach either would prove nothing.
            target_answers(target.addr())
                .await
                .map_err(|why| format!("EGRESS_PROBE_TARGET {target} does not answer the host itself ({why}), so it cannot prove the rule"))?;
        }
        let docker = self
            .docker
            .client()
            .await
            .map_err(|e| format!("the probe cannot run: {e}"))?;
        // What an earlier probe left when the platform stopped in the middle of it.
        self.remove_leftovers(&docker)
            .await
            .map_err(|e| format!("the probe cannot run: {e}"))?;
        let name = ClusterName::generate();
        let network = format!("{name}-egress-probe");
        let outcomes = tokio::time::timeout(PROBE_LIMIT, self.run(&docker, &name, &network)).await;
        let removed = self.remove(&docker, &network).await;
        let outcomes = outcomes
            .unwrap_or_else(|_| Err(format!("no answer within {}s", PROBE_LIMIT.as_secs())))
            .map_err(|e| format!("the probe cannot run: {e}"))?;
        if let Err(e) = removed {
            tracing::warn!(error = %e, network, "the egress probe's container or network is left");
        }
        judge(&outcomes)
    }

    /// The probe's network and container, run to the end; how each address met it, and what it
    /// stands for.
    async fn run(
        &self,
        docker: &Docker,
        name: &ClusterName,
        network: &str,
    ) -> Result<Vec<(String, SocketAddrV4, Outcome)>, String> {
        self.networks
            .create(network, name, &[], &[])
            .await
            .map_err(|e| e.to_string())?;
        let gateway = gateway_of(docker, network).await?;
        let mut targets: Vec<(String, SocketAddrV4)> = self
            .host_ports
            .iter()
            .map(|port| ("the host".to_owned(), SocketAddrV4::new(gateway, *port)))
            .collect();
        targets.extend(self.target.map(|t| ("EGRESS_PROBE_TARGET".to_owned(), t.addr())));
        let mut cmd = vec![
            "bash".to_owned(),
            "-c".to_owned(),
            SCRIPT.to_owned(),
            "probe".to_owned(),
        ];
        cmd.extend(targets.iter().map(|(_, addr)| addr.to_string()));
        // Hardened as a terminal is; its output is read through the attach stream.
        let limits = Limits {
            memory_mib: 64,
            nano_cpus: 250_000_000,
            pids: 32,
        };
        let host_config = hardened(network, limits);
        docker
            .create_container(
                Some(CreateContainerOptions {
                    name: Some(network.to_owned()),
                    ..Default::default()
                }),
                ContainerCreateBody {
                    image: Some(self.image.clone()),
                    user: Some("1000:1000".into()),
                    cmd: Some(cmd),
                    env: Some(vec![format!("SILENCE={}", SILENCE.as_secs())]),
                    labels: Some(self.labels()),
                    host_config: Some(host_config),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| e.to_string())?;
        // Attached before it starts, so that no line is missed.
        let mut output = docker
            .attach_container(
                network,
                Some(AttachContainerOptions {
                    stdout: true,
                    stderr: true,
                    stream: true,
                    ..Default::default()
                }),
            )
            .await
            .map_err(|e| e.to_string())?
            .output;
        docker
            .start_container(network, None)
            .await
            .map_err(|e| e.to_string())?;
        let mut text = String::new();
        while let Some(chunk) = output.next().await {
            text.push_str(&chunk.map_err(|e| e.to_string())?.to_string());
        }
        targets
            .into_iter()
            .map(|(what, addr)| {
                let outcome = outcome_of(&text, addr)
                    .ok_or_else(|| format!("no outcome for {addr} in the probe's output: {text}"))?;
                Ok((what, addr, outcome))
            })
            .collect()
    }

    fn labels(&self) -> HashMap<String, String> {
        HashMap::from([
            (PLATFORM_LABEL.to_owned(), OWNER.to_owned()),
            (INSTANCE_LABEL.to_owned(), self.instance.clone()),
        ])
    }

    async fn remove(&self, docker: &Docker, name: &str) -> Result<(), ClusterError> {
        let options = RemoveContainerOptions {
            force: true,
            ..Default::default()
        };
        match docker.remove_container(name, Some(options)).await {
            Ok(()) | Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {}
            Err(e) => return Err(e.into()),
        }
        self.networks.remove(name).await
    }

    async fn remove_leftovers(&self, docker: &Docker) -> Result<(), ClusterError> {
        let filters = HashMap::from([(
            "label".to_owned(),
            vec![
                format!("{PLATFORM_LABEL}={OWNER}"),
                format!("{INSTANCE_LABEL}={}", self.instance),
            ],
        )]);
        let containers = docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters.clone()),
                ..Default::default()
            }))
            .await?;
        let networks = docker
            .list_networks(Some(ListNetworksOptions {
                filters: Some(filters),
            }))
            .await?;
        // A probe's container and network share its name.
        let names = containers
            .into_iter()
            .filter_map(|c| c.names?.into_iter().next())
            .map(|n| n.trim_start_matches('/').to_owned())
            .chain(networks.into_iter().filter_map(|n| n.name));
        for name in names {
            self.remove(docker, &name).await?;
        }
        Ok(())
    }
}

/// Whether `addr` answers the host: a connection or a refusal both say a packet got there.
async fn target_answers(addr: SocketAddrV4) -> Result<(), String> {
    match tokio::time::timeout(SILENCE, tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("silent for {}s", SILENCE.as_secs())),
    }
}

async fn gateway_of(docker: &Docker, network: &str) -> Result<Ipv4Addr, String> {
    let inspected = docker
        .inspect_network(network, None)
        .await
        .map_err(|e| e.to_string())?;
    inspected
        .ipam
        .and_then(|ipam| ipam.config)
        .into_iter()
        .flatten()
        .find_map(|config| {
            // Some engines name no gateway when the subnet was given: theirs is its first address.
            let first = || {
                config
                    .subnet
                    .as_deref()?
                    .parse::<ipnet::Ipv4Net>()
                    .ok()?
                    .hosts()
                    .next()
            };
            config
                .gateway
                .as_deref()
                .and_then(|g| g.parse().ok())
                .or_else(first)
        })
        .ok_or_else(|| format!("the network {network} has no IPv4 subnet"))
}

/// The outcome the script printed for `addr`.
fn outcome_of(output: &str, addr: SocketAddrV4) -> Option<Outcome> {
    let prefix = format!("{addr} ");
    output.lines().find_map(|line| {
        let rest = line.trim_end().strip_prefix(&prefix)?;
        Some(match rest {
            "connected" => Outcome::Connected,
            "silent" => Outcome::Silent,
            _ => Outcome::Answered(rest.strip_prefix("answered ").unwrap_or(rest).to_owned()),
        })
    })
}

/// Proven when every address met silence; else what got through, by name.
fn judge(outcomes: &[(String, SocketAddrV4, Outcome)]) -> Verdict {
    let leaks: Vec<String> = outcomes
        .iter()
        .filter_map(|(what, addr, outcome)| match outcome {
            Outcome::Silent => None,
            Outcome::Connected => Some(format!("{what} at {addr} (connected)")),
            Outcome::Answered(why) => Some(format!("{what} at {addr} (answered: {why})")),
        })
        .collect();
    if !leaks.is_empty() {
        return Err(format!(
            "the no-egress rule is not in force: from a session network, a probe reached {}",
            leaks.join(", ")
        ));
    }
    let silent: Vec<String> = outcomes
        .iter()
        .map(|(what, addr, _)| format!("{what} at {addr}"))
        .collect();
    let mut proof = format!(
        "proven by a probe from a session network: no answer from {}",
        silent.join(", ")
    );
    if !outcomes.iter().any(|(what, ..)| what == "EGRESS_PROBE_TARGET") {
        proof.push_str(
            "; egress beyond the host is unproven until EGRESS_PROBE_TARGET names an outside address",
        );
    }
    Ok(proof)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_is_an_ipv4_address_a_session_could_send_to() {
        assert_eq!(
            "203.0.113.7:443".parse::<ProbeTarget>().unwrap().to_string(),
            "203.0.113.7:443"
        );
        for bad in [
            "203.0.113.7",
            "example.com:443",
            "127.0.0.1:80",
            "0.0.0.0:80",
            "203.0.113.7:0",
            "[::1]:80",
        ] {
            assert!(bad.parse::<ProbeTarget>().is_err(), "{bad}");
        }
    }

    #[test]
    fn only_silence_everywhere_proves_the_rule() {
        let output = "10.213.0.1:3000 answered Connection refused\n198.18.20.2:8080 silent\n";
        let host: SocketAddrV4 = "10.213.0.1:3000".parse().unwrap();
        let outside: SocketAddrV4 = "198.18.20.2:8080".parse().unwrap();
        assert_eq!(
            outcome_of(output, host),
            Some(Outcome::Answered("Connection refused".into()))
        );
        assert_eq!(outcome_of(output, outside), Some(Outcome::Silent));
        assert_eq!(outcome_of(output, "10.213.0.1:443".parse().unwrap()), None);

        let leaked = judge(&[
            (
                "the host".into(),
                host,
                Outcome::Answered("Connection refused".into()),
            ),
            ("EGRESS_PROBE_TARGET".into(), outside, Outcome::Connected),
        ])
        .unwrap_err();
        assert!(
            leaked.contains("the host at 10.213.0.1:3000 (answered: Connection refused)")
                && leaked.contains("EGRESS_PROBE_TARGET at 198.18.20.2:8080 (connected)"),
            "{leaked}"
        );
        let proven = judge(&[
            ("the host".into(), host, Outcome::Silent),
            ("EGRESS_PROBE_TARGET".into(), outside, Outcome::Silent),
        ])
        .unwrap();
        assert!(!proven.contains("unproven"), "{proven}");
        let half = judge(&[("the host".into(), host, Outcome::Silent)]).unwrap();
        assert!(half.contains("unproven until EGRESS_PROBE_TARGET"), "{half}");
    }
}
