//! Session containers (terminals, control planes, kind nodes) reach their own session network
//! and nothing else. Every session network is cut from one pool, so two rules for the pool do it:
//!
//! - **The host.** Containers reach any host service bound to 0.0.0.0 through their network's
//!   gateway, even on an internal network (measured): on INPUT, new connections from the pool
//!   are dropped, while replies to the platform's own connections (to a published API port) pass.
//! - **Everything beyond it** (the internet, 169.254.169.254, private ranges): forwarded traffic
//!   from the pool to an address outside it is dropped, in a chain of ours (`CKAD-EGRESS`) that
//!   Docker's `DOCKER-USER` jumps to, so that Docker leaves it alone and an operator sees it.
//!
//! Traffic between a session's containers stays inside the pool; other sessions' networks are
//! kept apart by Docker's own isolation; and the terminal resolves no name outside its session
//! (see `docker.rs`).
//!
//! When the operator puts the rules in place instead (`HOST_FIREWALL=external`), `probe` proves
//! them by their effect.

mod probe;

use std::{path::Path, time::Duration};

pub use probe::{EgressProbe, ProbeTarget};

use crate::clusters::{command, SubnetPool};

/// Our chain, jumped to from `DOCKER-USER`; it holds one rule per session pool on this host.
pub const EGRESS_CHAIN: &str = "CKAD-EGRESS";

#[derive(Debug, Clone)]
pub struct HostFirewall {
    pool: SubnetPool,
}

impl HostFirewall {
    pub fn new(pool: SubnetPool) -> Self {
        Self { pool }
    }

    /// Each rule as `iptables` arguments after the action: the chain, then the match.
    fn rules(&self) -> [Vec<String>; 3] {
        let pool = self.pool.to_string();
        let new_only = ["-m", "conntrack", "!", "--ctstate", "ESTABLISHED,RELATED"];
        let args = |parts: &[&str]| parts.iter().map(|p| (*p).to_owned()).collect::<Vec<_>>();
        [
            args(&[&["INPUT", "-s", &pool][..], &new_only, &["-j", "DROP"]].concat()),
            args(
                &[
                    &[EGRESS_CHAIN, "-s", &pool, "!", "-d", &pool][..],
                    &new_only,
                    &["-j", "DROP"],
                ]
                .concat(),
            ),
            args(&["DOCKER-USER", "-j", EGRESS_CHAIN]),
        ]
    }

    /// Whether every rule is in place.
    pub async fn is_in_place(&self) -> bool {
        for rule in self.rules() {
            if iptables("-C", &rule).await.is_err() {
                return false;
            }
        }
        true
    }

    /// Puts the rules in place once; they stay when the platform stops (sessions outlive it).
    pub async fn ensure(&self) -> Result<(), String> {
        let explain = |e: crate::clusters::ClusterError| {
            format!(
                "cannot add the host firewall rules for {} (run as root with iptables beside \
                 Docker, or add them yourself and set HOST_FIREWALL=external): {e}",
                self.pool
            )
        };
        if iptables("-L", &[EGRESS_CHAIN.to_owned(), "-n".to_owned()])
            .await
            .is_err()
        {
            iptables("-N", &[EGRESS_CHAIN.to_owned()])
                .await
                .map_err(explain)?;
        }
        for rule in self.rules() {
            if iptables("-C", &rule).await.is_err() {
                iptables("-I", &rule).await.map_err(explain)?;
            }
        }
        Ok(())
    }
}

async fn iptables(action: &str, rule: &[String]) -> Result<String, crate::clusters::ClusterError> {
    let args = ["-w", "5", action]
        .into_iter()
        .map(str::to_owned)
        .chain(rule.iter().cloned());
    command::run(Path::new("iptables"), args, &[], Duration::from_secs(10)).await
}
