//! Prometheus metrics: request counts and latency histograms per matched route, the terminal
//! resizes applied (after coalescing), and the warm pool. `/metrics` serves them to the host alone
//! ([`crate::health::metrics`]).

use std::{sync::Arc, time::Instant};

use axum::{
    extract::{MatchedPath, Request, State},
    middleware::Next,
    response::Response,
};
use prometheus_client::{
    encoding::{text::encode, EncodeLabelSet},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    /// Terminal resizes passed on to the engine.
    pub terminal_resizes: Counter,
    pub pool: PoolMetrics,
}

/// The warm pool, as the sessions service updates it.
#[derive(Clone, Debug)]
pub struct PoolMetrics {
    /// Members ready to be claimed.
    pub ready: Gauge,
    /// Starts that took a ready member.
    pub claims: Counter,
    /// Starts that found none and built their cluster cold.
    pub misses: Counter,
    /// Time to make one member, from its record to ready.
    pub refill_seconds: Histogram,
    /// Members whose making failed.
    pub refill_failures: Counter,
}

impl Default for PoolMetrics {
    fn default() -> Self {
        Self {
            ready: Gauge::default(),
            claims: Counter::default(),
            misses: Counter::default(),
            // 0.5 s to ~2 min: a lite member takes seconds, a kind one about a minute.
            refill_seconds: Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                0.5, 2.0, 9,
            )),
            refill_failures: Counter::default(),
        }
    }
}

impl PoolMetrics {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "pool_ready",
            "Warm pool members ready to be claimed",
            self.ready.clone(),
        );
        registry.register(
            "pool_claims",
            "Session starts that claimed a warm pool member",
            self.claims.clone(),
        );
        registry.register(
            "pool_misses",
            "Session starts that found the warm pool empty and started cold",
            self.misses.clone(),
        );
        registry.register(
            "pool_refill_seconds",
            "Time to make one warm pool member ready",
            self.refill_seconds.clone(),
        );
        registry.register(
            "pool_refill_failures",
            "Warm pool members that could not be made",
            self.refill_failures.clone(),
        );
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("ckad");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            // 1 ms to ~16 s: page renders, API calls and slow cluster operations alike.
            Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                0.001, 2.0, 15,
            ))
        });
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "Time to answer HTTP requests",
            latency.clone(),
        );
        let terminal_resizes = Counter::default();
        registry.register(
            "terminal_resizes",
            "Terminal resizes applied (bursts count once)",
            terminal_resizes.clone(),
        );
        let pool = PoolMetrics::default();
        pool.register(&mut registry);
        Self {
            registry,
            requests,
            latency,
            terminal_resizes,
            pool,
        }
    }
}

impl Metrics {
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

/// Counts and times every request under its matched route (unmatched paths share one label, so
/// a scanner cannot blow up the series count).
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let elapsed = started.elapsed().as_secs_f64();
    metrics
        .latency
        .get_or_create(&RouteLabels {
            method: method.clone(),
            route: route.clone(),
        })
        .observe(elapsed);
    metrics
        .requests
        .get_or_create(&RequestLabels {
            method,
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}
