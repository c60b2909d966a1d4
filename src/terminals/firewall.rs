//! Containers reach any host service bound to 0.0.0.0 through their network's gateway, even on
//! an internal network (measured). Every session network is cut from one pool, so one rule on
//! the host's INPUT chain keeps all of them out: new connections from the pool to the host are
//! dropped, while replies to the platform's own connections (to a published API port) pass.
//! Traffic between a session's containers never crosses INPUT, and Docker's DNS answers inside
//! each container's own namespace, so both keep working.

use std::{path::Path, time::Duration};

use crate::clusters::{command, SubnetPool};

#[derive(Debug, Clone)]
pub struct HostFirewall {
    pool: SubnetPool,
}

impl HostFirewall {
    pub fn new(pool: SubnetPool) -> Self {
        Self { pool }
    }

    fn rule(&self) -> Vec<String> {
        let pool = self.pool.to_string();
        [
            "INPUT",
            "-s",
            &pool,
            "-m",
            "conntrack",
            "!",
            "--ctstate",
            "ESTABLISHED,RELATED",
            "-j",
            "DROP",
        ]
        .map(str::to_owned)
        .to_vec()
    }

    /// Whether the rule is in place.
    pub async fn is_in_place(&self) -> bool {
        iptables("-C", &self.rule()).await.is_ok()
    }

    /// Puts the rule in place once; it stays when the platform stops (sessions outlive it).
    pub async fn ensure(&self) -> Result<(), String> {
        if self.is_in_place().await {
            return Ok(());
        }
        iptables("-I", &self.rule()).await.map(drop).map_err(|e| {
            format!(
                "cannot add the host firewall rule for {} (run as root with iptables, or add it \
                 yourself and set HOST_FIREWALL=external): {e}",
                self.pool
            )
        })
    }
}

async fn iptables(action: &str, rule: &[String]) -> Result<String, crate::clusters::ClusterError> {
    let args = ["-w", "5", action]
        .into_iter()
        .map(str::to_owned)
        .chain(rule.iter().cloned());
    command::run(Path::new("iptables"), args, &[], Duration::from_secs(10)).await
}
