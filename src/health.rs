//! What the operator asks the process: `/healthz` says it is alive; `/readyz` says whether it can
//! serve learners, and, to callers on the host itself, why not (the reasons name internals an
//! outsider has no use for); `/metrics` serves the host alone.

use std::{net::SocketAddr, time::Duration};

use axum::{
    extract::{ConnectInfo, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::Serialize;

use crate::{
    configuration::FirewallMode,
    routes::ratelimit::client_address,
    store::{SchemaState, Store},
    AppState,
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

/// Readiness: the status code for everyone, the checks and their reasons for the host alone.
pub async fn readyz(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let readiness = readiness(&state).await;
    let status = if readiness.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    if from_the_host(&state, peer, &headers) {
        (status, Json(readiness)).into_response()
    } else {
        let word = if readiness.ready { "ready" } else { "not ready" };
        (status, word).into_response()
    }
}

/// Whether the caller is the host itself (a scraper on the machine, or through an SSH tunnel),
/// directly or through the trusted proxies.
fn from_the_host(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> bool {
    client_address(peer, headers, state.settings.http.trusted_proxies)
        .to_canonical()
        .is_loopback()
}

/// Prometheus text for the host; to anyone else, directly or through the proxy, nothing is here.
pub async fn metrics(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if !from_the_host(&state, peer, &headers) {
        return StatusCode::NOT_FOUND.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

async fn readiness(state: &AppState) -> Readiness {
    let (clusters, settings) = (&state.clusters, &state.settings);
    // The operator's rules are proven by a probe's latest verdict (never one probe per request).
    let egress = match settings.terminals.firewall {
        FirewallMode::External => Some(state.egress.verdict()),
        FirewallMode::Iptables => None,
    };
    let firewall_in_place = async {
        match &egress {
            Some(Some(verdict)) => verdict.clone().map(drop),
            Some(None) => Err("not proven yet: the first probe from a session network is running".into()),
            None if state.firewall.is_in_place().await => Ok(()),
            None => Err("the rule keeping session networks off the host is missing".into()),
        }
    };
    // The warm pool's last refill failed: starts fall back to cold ones, which likely fail too.
    let pool = async {
        state
            .sessions
            .pool_failure()
            .map_or(Ok(()), |reason| Err(format!("cannot refill: {reason}")))
    };
    // The engine and the host's firewall hold the Docker providers' sessions; a host cluster's
    // sessions are held by its own policies.
    let on_docker = settings.clusters.provider.on_docker();
    let (database, engine, provider, terminal, host_firewall, pool) = tokio::join!(
        probe("database", database_ready(&state.store)),
        probe_if(on_docker, "docker", async {
            state
                .docker
                .ping()
                .await
                .map_err(|e| format!("engine not answering: {e}"))
        }),
        probe(clusters.kind(), clusters.ready()),
        probe("terminal", state.terminals.ready()),
        probe_if(on_docker, "firewall", firewall_in_place),
        probe("pool", pool),
    );
    let provider = Check {
        detail: clusters.containment(),
        ..provider
    };
    let host_firewall = host_firewall.map(|check| Check {
        detail: egress.flatten().and_then(Result::ok),
        ..check
    });
    let checks: Vec<Check> = [
        Some(database),
        engine,
        Some(provider),
        Some(terminal),
        host_firewall,
        Some(pool),
    ]
    .into_iter()
    .flatten()
    .collect();
    let ready = checks.iter().all(|c| c.ok);
    Readiness { ready, checks }
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

/// [`probe`], where the check applies.
async fn probe_if(
    applies: bool,
    name: &'static str,
    check: impl std::future::Future<Output = Result<(), String>>,
) -> Option<Check> {
    match applies {
        true => Some(probe(name, check).await),
        false => None,
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
