//! `/api/v1/sessions/*`: every live session, capacity, one session's status, routing and ports,
//! and terminating it. For administrators only (`ADMIN_EMAILS`).

use app::api::{AdminSession, ErrorBody, Ports, Routing, SessionStats, StatusAnswer};
use axum::{
    extract::{Path, State},
    http::StatusCode,
    Json,
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{extract::AdminUser, ApiError};
use crate::{
    auth::Auth,
    domain::Session,
    sessions::{SessionError, Sessions},
    AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(stats))
        .routes(routes!(one, terminate))
        .routes(routes!(status))
        .routes(routes!(routing))
        .routes(routes!(ports))
}

/// A session as an admin sees it, with its owner's email when they still exist.
pub(crate) async fn admin_session(auth: &Auth, session: &Session) -> Result<AdminSession, ApiError> {
    Ok(AdminSession {
        session: session.into(),
        user_id: session.user_id.clone(),
        email: auth.user(&session.user_id).await?.map(|u| u.email),
        cluster: session.cluster_name.clone(),
        terminal: session.terminal_container_id.clone(),
        notes: session.notes.clone(),
    })
}

/// Every live session, oldest first.
pub(crate) async fn live_sessions(auth: &Auth, sessions: &Sessions) -> Result<Vec<AdminSession>, ApiError> {
    let mut live = Vec::new();
    for session in sessions.list_live().await? {
        live.push(admin_session(auth, &session).await?);
    }
    Ok(live)
}

/// 404 in the words of this API when the id names no session.
fn not_found(error: SessionError) -> ApiError {
    match error {
        SessionError::NoSession => ApiError::new(StatusCode::NOT_FOUND, "no such session"),
        error => error.into(),
    }
}

/// Every live session, oldest first.
#[utoipa::path(get, path = "/", tag = "admin", responses(
    (status = 200, body = Vec<AdminSession>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
))]
async fn list(
    _: AdminUser,
    State(auth): State<Auth>,
    State(sessions): State<Sessions>,
) -> Result<Json<Vec<AdminSession>>, ApiError> {
    Ok(Json(live_sessions(&auth, &sessions).await?))
}

/// Live sessions, capacity and every session's count by status.
#[utoipa::path(get, path = "/stats", tag = "admin", responses(
    (status = 200, body = SessionStats), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
))]
async fn stats(_: AdminUser, State(sessions): State<Sessions>) -> Result<Json<SessionStats>, ApiError> {
    Ok(Json(sessions.stats().await?))
}

#[utoipa::path(get, path = "/{id}", tag = "admin", params(("id" = String, Path)), responses(
    (status = 200, body = AdminSession), (status = 401, body = ErrorBody),
    (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
))]
async fn one(
    _: AdminUser,
    Path(id): Path<String>,
    State(auth): State<Auth>,
    State(sessions): State<Sessions>,
) -> Result<Json<AdminSession>, ApiError> {
    let session = sessions.find(&id).await.map_err(not_found)?;
    Ok(Json(admin_session(&auth, &session).await?))
}

#[utoipa::path(get, path = "/{id}/status", tag = "admin", params(("id" = String, Path)), responses(
    (status = 200, body = StatusAnswer), (status = 401, body = ErrorBody),
    (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
))]
async fn status(
    _: AdminUser,
    Path(id): Path<String>,
    State(sessions): State<Sessions>,
) -> Result<Json<StatusAnswer>, ApiError> {
    let session = sessions.find(&id).await.map_err(not_found)?;
    Ok(Json(StatusAnswer {
        id: session.id,
        status: session.status,
    }))
}

/// Where the session's parts are: its cluster's API (on the host), its terminal, and the network
/// its provider put them on.
#[utoipa::path(get, path = "/{id}/routing", tag = "admin", params(("id" = String, Path)), responses(
    (status = 200, body = Routing), (status = 401, body = ErrorBody),
    (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
))]
async fn routing(
    _: AdminUser,
    Path(id): Path<String>,
    State(sessions): State<Sessions>,
) -> Result<Json<Routing>, ApiError> {
    Ok(Json(sessions.routing(&id).await.map_err(not_found)?))
}

/// The host ports the session's cluster publishes.
#[utoipa::path(get, path = "/{id}/ports", tag = "admin", params(("id" = String, Path)), responses(
    (status = 200, body = Ports), (status = 401, body = ErrorBody),
    (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
))]
async fn ports(
    _: AdminUser,
    Path(id): Path<String>,
    State(sessions): State<Sessions>,
) -> Result<Json<Ports>, ApiError> {
    let held = sessions
        .ports_of(&id)
        .await
        .map_err(not_found)?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "the session holds no ports"))?;
    Ok(Json(Ports {
        api: held.api,
        ingress: held.ingress,
        ingress_https: held.ingress_https,
    }))
}

/// Ends a live session now: its terminal closes and its cluster is deleted.
#[utoipa::path(delete, path = "/{id}", tag = "admin", params(("id" = String, Path)), responses(
    (status = 200, body = AdminSession), (status = 401, body = ErrorBody),
    (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
))]
async fn terminate(
    _: AdminUser,
    Path(id): Path<String>,
    State(auth): State<Auth>,
    State(sessions): State<Sessions>,
) -> Result<Json<AdminSession>, ApiError> {
    let session = sessions.terminate(&id).await.map_err(|error| match error {
        SessionError::NoSession => ApiError::new(StatusCode::NOT_FOUND, "no live session with that id"),
        error => error.into(),
    })?;
    Ok(Json(admin_session(&auth, &session).await?))
}
