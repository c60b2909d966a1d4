//! The router and the serve loop.

use std::{
    future::{Future, IntoFuture},
    net::SocketAddr,
    sync::Arc,
    time::Duration,
};

use app::ports::{Accounts, BillingPages, ExamPages, Practice};
use axum::{
    http::{HeaderName, HeaderValue, StatusCode},
    middleware,
    routing::get,
    Router,
};
use leptos::prelude::provide_context;
use leptos_axum::{file_and_error_handler_with_context, generate_route_list, LeptosRoutes};
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::{
    catch_panic::CatchPanicLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    set_header::SetResponseHeaderLayer,
    timeout::TimeoutLayer,
    trace::TraceLayer,
};

use crate::{
    configuration::FirewallMode,
    health, metrics, reconciler,
    routes::{
        self,
        ratelimit::{self, ClientLimit, RateLimiter},
    },
    security, telemetry, AppState,
};

/// The longest any ordinary request may take; long-lived sockets are not bound by it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How often recordings past their retention, or of deleted users, are removed.
const RECORDINGS_SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// The whole application as a router, so tests can drive it without a socket.
pub fn app(state: AppState) -> Router {
    let routes = generate_route_list(app::App);
    let request_id = HeaderName::from_static("x-request-id");

    // What every page render and server function can reach.
    let accounts: Arc<dyn Accounts> = Arc::new(routes::auth::PageAccounts {
        auth: state.auth.clone(),
        events: state.events.clone(),
    });
    let pages = Arc::new(routes::pages::Pages(state.clone()));
    let exams: Arc<dyn ExamPages> = pages.clone();
    let practice: Arc<dyn Practice> = pages.clone();
    let billing: Arc<dyn BillingPages> = pages;
    let page_context = move || {
        security::page_context();
        provide_context(accounts.clone());
        provide_context(exams.clone());
        provide_context(practice.clone());
        provide_context(billing.clone());
    };

    let (api, _) = routes::api();
    let mut router = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .merge(api)
        .leptos_routes_with_context(&state, routes, page_context.clone(), {
            let options = state.leptos_options.clone();
            move || app::shell(options.clone())
        })
        .fallback(file_and_error_handler_with_context::<AppState, _>(
            page_context,
            app::shell,
        ))
        .layer(middleware::from_fn_with_state(
            state.auth.clone(),
            routes::extract::renew_session,
        ))
        .layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::track,
        ));
    // The API (server functions included) is rate limited per client, tighter for sign-in, and
    // answers state-changing requests from the site's own origin only.
    let http = &state.settings.http;
    let per_minute = |scope, limit, accounts| ClientLimit {
        scope,
        limiter: RateLimiter::new(limit, Duration::from_secs(60)),
        trusted_proxies: http.trusted_proxies,
        accounts,
    };
    // Signing in is limited per address (nobody is known yet); the rest of the API per account
    // once the caller is signed in.
    router = router
        .layer(middleware::from_fn_with_state(
            per_minute("/api/auth/", http.auth_per_minute, None),
            ratelimit::limit_clients,
        ))
        .layer(middleware::from_fn_with_state(
            per_minute("/api/", http.api_per_minute, Some(state.auth.clone())),
            ratelimit::limit_clients,
        ))
        .layer(middleware::from_fn_with_state(
            Arc::<str>::from(http.public_origin.as_str()),
            security::check_origin,
        ))
        .layer(security::cors(&http.public_origin))
        .layer(middleware::from_fn(security::no_store));
    if http.public_origin.starts_with("https://") {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            axum::http::header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(security::HSTS),
        ));
    }
    for (name, value) in security::STATIC_HEADERS {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            name,
            HeaderValue::from_static(value),
        ));
    }
    router
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(telemetry::request_span)
                        .on_response(telemetry::record_response),
                )
                .layer(PropagateRequestIdLayer::new(request_id))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    REQUEST_TIMEOUT,
                ))
                .layer(CatchPanicLayer::custom(routes::panicked)),
        )
        .with_state(state)
}

/// Serves (and reconciles clusters with the database) until `shutdown` resolves, then stops
/// accepting, cancels `state.stopping` (open sockets say goodbye), and gives in-flight requests
/// and the sessions' starts and ends in flight the configured grace before returning. Sessions
/// are left running: they resume when the platform comes back.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stopping = state.stopping.clone();
    let grace = state.settings.shutdown_grace;
    // Docker session networks are kept off the host; a host cluster's sessions by its policies.
    if state.settings.clusters.provider.on_docker() {
        match state.settings.terminals.firewall {
            FirewallMode::Iptables => {
                if let Err(error) = state.firewall.ensure().await {
                    tracing::error!(%error, "session networks can reach the host");
                }
            }
            // The first probe starts now, so that readiness has a verdict soon.
            FirewallMode::External => drop(state.egress.verdict()),
        }
    }
    tokio::spawn({
        let (auth, every, stopping) = (
            state.auth.clone(),
            state.settings.sessions.sweep_every,
            stopping.clone(),
        );
        async move { auth.sweep(every, stopping).await }
    });
    let sessions = state.sessions.clone();
    tokio::spawn({
        let sessions = sessions.clone();
        async move { sessions.run_clock().await }
    });
    tokio::spawn(
        state
            .recordings
            .clone()
            .keep_tidy(RECORDINGS_SWEEP_EVERY, stopping.clone()),
    );
    tracing::info!(address = %listener.local_addr()?, "listening");
    // What was recorded before this moment belongs to an earlier run: the reconciler repairs it,
    // and the pool keeps its healthy members. Unless other replicas run: then a start or a
    // removal in flight is theirs, and only the periodic passes' time limits judge it.
    let since = chrono::Utc::now();
    let presence = state.store.join_replicas().await;
    let first = match &presence {
        Ok(presence) if presence.alone => reconciler::Moment::StartUp { since },
        Ok(_) => reconciler::Moment::Periodic,
        Err(error) => {
            tracing::error!(%error, "cannot tell whether other replicas run; taking it that they do");
            reconciler::Moment::Periodic
        }
    };
    tokio::spawn(reconciler::run(
        state.store.clone(),
        state.clusters.clone(),
        state.terminals.clone(),
        state.settings.clusters.reconcile_every,
        first,
        stopping.clone(),
    ));
    sessions.start_pool(since);
    tokio::spawn(reconciler::keep_alive(
        reconciler::Liveness {
            sessions: state.sessions.clone(),
            clusters: state.clusters.clone(),
            terminals: state.terminals.clone(),
        },
        reconciler::LIVENESS_EVERY,
        stopping.clone(),
    ));

    let server = axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown({
        let stopping = stopping.clone();
        async move {
            shutdown.await;
            tracing::info!("shutdown requested: finishing in-flight requests");
            stopping.cancel();
        }
    });
    let deadline = async {
        stopping.cancelled().await;
        tokio::time::sleep(grace).await;
    };
    let finished = async {
        server.into_future().await?;
        sessions.finish_work().await;
        std::io::Result::Ok(())
    };
    tokio::select! {
        finished = finished => finished?,
        () = deadline => tracing::warn!(grace_secs = grace.as_secs(), "requests or session starts still running after the grace period were cut off"),
    }
    // This replica leaves only now: until here its work was in flight.
    drop(presence);
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
