//! `/healthz` says the process is alive; `/readyz` says whether it can serve learners, and if
//! not, why.

use std::{sync::Arc, time::Duration};

use axum::{extract::State, http::StatusCode, Json};
use serde::Serialize;

use crate::{
    clusters::ClusterProvider,
    configuration::{FirewallMode, Settings},
    docker::DockerEngine,
    sessions::Sessions,
    store::{SchemaState, Store},
    terminals::{HostFirewall, TerminalRuntime},
};

/// How long one dependency may take to answer before it counts as down.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What is in force, where the operator chose it (e.g. how `kind` nodes are contained).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Readiness {
    pub ready: bool,
    pub checks: Vec<Check>,
}

pub async fn healthz() -> &'static str {
    "ok"
}

pub async fn readyz(
    State(store): State<Store>,
    State(docker): State<DockerEngine>,
    State(clusters): State<Arc<dyn ClusterProvider>>,
    State(terminals): State<Arc<dyn TerminalRuntime>>,
    State(firewall): State<HostFirewall>,
    State(settings): State<Arc<Settings>>,
    State(sessions): State<Sessions>,
) -> (StatusCode, Json<Readiness>) {
    let firewall_in_place = async {
        match settings.terminals.firewall {
            FirewallMode::External => Ok(()),
            FirewallMode::Iptables if firewall.is_in_place().await => Ok(()),
            FirewallMode::Iptables => Err("the rule keeping session networks off the host is missing".into()),
        }
    };
    // The warm pool's last refill failed: starts fall back to cold ones, which likely fail too.
    let pool = async {
        sessions
            .pool_failure()
            .map_or(Ok(()), |reason| Err(format!("cannot refill: {reason}")))
    };
    let (database, engine, provider, terminal, host_firewall, pool) = tokio::join!(
        probe("database", database_ready(&store)),
        probe("docker", async {
            docker
                .ping()
                .await
                .map_err(|e| format!("engine not answering: {e}"))
        }),
        probe(clusters.kind(), clusters.ready()),
        probe("terminal", terminals.ready()),
        probe("firewall", firewall_in_place),
        probe("pool", pool),
    );
    let provider = Check {
        detail: clusters.containment(),
        ..provider
    };
    let checks = vec![database, engine, provider, terminal, host_firewall, pool];
    let ready = checks.iter().all(|c| c.ok);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(Readiness { ready, checks }))
}

async fn database_ready(store: &Store) -> Result<(), String> {
    match store
        .schema_state()
        .await
        .map_err(|e| format!("unreachable: {e}"))?
    {
        SchemaState::Current => Ok(()),
        SchemaState::Behind { applied, known } => Err(format!("{applied} of {known} migrations applied")),
    }
}

async fn probe(name: &'static str, check: impl std::future::Future<Output = Result<(), String>>) -> Check {
    let outcome = tokio::time::timeout(PROBE_TIMEOUT, check)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {}s", PROBE_TIMEOUT.as_secs())));
    if let Err(reason) = &outcome {
        tracing::warn!(check = name, reason, "not ready");
    }
    Check {
        name,
        ok: outcome.is_ok(),
        reason: outcome.err(),
        detail: None,
    }
}
