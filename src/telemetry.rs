//! Structured logs through `tracing`: JSON lines by default, one span per HTTP request.

use std::{str::FromStr, time::Duration};

use axum::{
    extract::MatchedPath,
    http::{Request, Response},
};
use tracing::Span;
use tracing_subscriber::{fmt, layer::SubscriberExt, util::SubscriberInitExt, EnvFilter};

/// How log lines are written (`LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json" => Ok(Self::Json),
            "pretty" => Ok(Self::Pretty),
            _ => Err("expected `json` or `pretty`".into()),
        }
    }
}

/// A short id that ties what a person is told ("… reference 7f3a9c01") to the log line holding
/// the details, which are never shown to them.
pub fn reference() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}

/// kube-rs logs every 5xx answer of a learner's cluster at ERROR with no context (each start's
/// readiness poll meets several); the platform logs the failures that matter itself, with the
/// session. A `RUST_LOG` that names `kube_client` brings them back.
const CONTEXTLESS: &str = "kube_client::client::builder=off";

/// Installs the global subscriber; `RUST_LOG` filters (default `info`).
pub fn init(format: LogFormat) {
    let directives = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
    let filter = if directives.contains("kube_client") {
        EnvFilter::new(directives)
    } else {
        EnvFilter::new(format!("{directives},{CONTEXTLESS}"))
    };
    let registry = tracing_subscriber::registry().with(filter);
    // A second call (tests spawning several apps) keeps the first subscriber.
    let _ = match format {
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .try_init(),
        LogFormat::Pretty => registry.with(fmt::layer()).try_init(),
    };
}

/// The span every request runs in: its matched route (not the raw path, which may carry ids)
/// and its request id, with status and latency recorded when the response is ready.
pub fn request_span<B>(request: &Request<B>) -> Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
        .unwrap_or("unmatched");
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        method = %request.method(),
        route,
        request_id,
        status = tracing::field::Empty,
        latency_ms = tracing::field::Empty,
    )
}

pub fn record_response<B>(response: &Response<B>, latency: Duration, span: &Span) {
    span.record("status", response.status().as_u16());
    span.record("latency_ms", latency.as_secs_f64() * 1000.0);
    tracing::info!("request finished");
}
