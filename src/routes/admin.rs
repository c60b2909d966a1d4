//! `/api/v1/sessions/*` (second seed, phase 2): every live session, capacity, one session's
//! status, routing and ports, and terminating it. For admins only (`ADMIN_EMAILS`).

use axum::{
    extract::{FromRef, FromRequestParts, Path, State},
    http::{request::Parts, StatusCode},
    routing::get,
    Json, Router,
};
use serde::Serialize;

use super::{auth::AuthUser, ApiError};
use crate::{
    configuration::Settings,
    sessions::{SessionError, SessionStats, SessionView, Sessions},
    store::{PortSet, Session, Store},
    AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(list))
        .route("/stats", get(stats))
        .route("/{id}", get(one).delete(terminate))
        .route("/{id}/status", get(status))
        .route("/{id}/routing", get(routing))
        .route("/{id}/ports", get(ports))
}

/// A signed-in user whose email is in `ADMIN_EMAILS`.
pub struct AdminUser;

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        let settings = std::sync::Arc::<Settings>::from_ref(state);
        let found = state
            .store
            .user_by_id(&user.id)
            .await
            .map_err(ApiError::internal)?;
        match found {
            Some(found) if settings.admin_emails.contains(&found.email.to_lowercase()) => Ok(Self),
            _ => Err(ApiError::new(StatusCode::FORBIDDEN, "this is for admins only")),
        }
    }
}

/// A session as an admin sees it: whose, and what it runs on.
#[derive(Serialize)]
struct AdminSessionView {
    #[serde(flatten)]
    session: SessionView,
    user_id: String,
    cluster: String,
    terminal: Option<String>,
    notes: String,
}

impl From<&Session> for AdminSessionView {
    fn from(session: &Session) -> Self {
        Self {
            session: session.into(),
            user_id: session.user_id.clone(),
            cluster: session.cluster_name.clone(),
            terminal: session.terminal_container_id.clone(),
            notes: session.notes.clone(),
        }
    }
}

async fn find(store: &Store, id: &str) -> Result<Session, ApiError> {
    store
        .session_by_id(id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such session"))
}

async fn list(
    _: AdminUser,
    State(sessions): State<Sessions>,
) -> Result<Json<Vec<AdminSessionView>>, ApiError> {
    Ok(Json(
        sessions
            .list_live()
            .await?
            .iter()
            .map(AdminSessionView::from)
            .collect(),
    ))
}

async fn stats(_: AdminUser, State(sessions): State<Sessions>) -> Result<Json<SessionStats>, ApiError> {
    Ok(Json(sessions.stats().await?))
}

async fn one(
    _: AdminUser,
    Path(id): Path<String>,
    State(store): State<Store>,
) -> Result<Json<AdminSessionView>, ApiError> {
    Ok(Json((&find(&store, &id).await?).into()))
}

#[derive(Serialize)]
struct StatusView {
    id: String,
    status: &'static str,
}

async fn status(
    _: AdminUser,
    Path(id): Path<String>,
    State(store): State<Store>,
) -> Result<Json<StatusView>, ApiError> {
    let session = find(&store, &id).await?;
    Ok(Json(StatusView {
        id: session.id,
        status: session.status.as_str(),
    }))
}

/// Where the session's parts are: its cluster's API (on the host) and its terminal.
#[derive(Serialize)]
struct RoutingView {
    cluster: String,
    api_endpoint: Option<String>,
    terminal: Option<String>,
    network: String,
}

async fn routing(
    _: AdminUser,
    Path(id): Path<String>,
    State(store): State<Store>,
) -> Result<Json<RoutingView>, ApiError> {
    let session = find(&store, &id).await?;
    let ports = store.ports_of(&id).await.map_err(ApiError::internal)?;
    Ok(Json(RoutingView {
        api_endpoint: ports.map(|p| format!("https://127.0.0.1:{}", p.api)),
        network: format!("kwok-{}", session.cluster_name),
        cluster: session.cluster_name,
        terminal: session.terminal_container_id,
    }))
}

#[derive(Serialize)]
struct PortsView {
    api: u16,
    ingress: u16,
    ingress_https: u16,
}

async fn ports(
    _: AdminUser,
    Path(id): Path<String>,
    State(store): State<Store>,
) -> Result<Json<PortsView>, ApiError> {
    find(&store, &id).await?;
    let PortSet {
        api,
        ingress,
        ingress_https,
    } = store
        .ports_of(&id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "the session holds no ports"))?;
    Ok(Json(PortsView {
        api,
        ingress,
        ingress_https,
    }))
}

async fn terminate(
    _: AdminUser,
    Path(id): Path<String>,
    State(sessions): State<Sessions>,
) -> Result<Json<AdminSessionView>, ApiError> {
    match sessions.terminate(&id).await {
        Ok(session) => Ok(Json((&session).into())),
        Err(SessionError::NoSession) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no live session with that id",
        )),
        Err(error) => Err(error.into()),
    }
}
