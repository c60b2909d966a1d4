//! `/healthz` says the process is alive; `/readyz` says whether it can serve learners, and if
//! not, why.

use std::{sync::Arc, time::Duration};

use axum::{extract::State, http::StatusCode, Json};
use serde::Serialize;

use crate::{
    clusters::ClusterProvider,
    docker::DockerEngine,
    store::{SchemaState, Store},
};

/// How long one dependency may take to answer before it counts as down.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
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
) -> (StatusCode, Json<Readiness>) {
    let (database, engine, provider) = tokio::join!(
        probe("database", database_ready(&store)),
        probe("docker", async {
            docker
                .ping()
                .await
                .map_err(|e| format!("engine not answering: {e}"))
        }),
        probe(clusters.kind(), clusters.ready()),
    );
    let checks = vec![database, engine, provider];
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
    }
}
