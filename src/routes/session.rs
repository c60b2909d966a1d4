//! `/api/session/*`: start, status and stop of the signed-in user's practice session.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{auth::AuthUser, ApiError};
use crate::{
    sessions::{SessionError, Sessions},
    store::{Session, Store},
    AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/start", post(start))
        .route("/status", get(status))
        .route("/stop", post(stop))
}

/// A session as its learner sees it.
#[derive(Debug, Serialize)]
pub struct SessionView {
    pub id: String,
    pub status: String,
    pub started_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub extended: bool,
}

impl From<Session> for SessionView {
    fn from(session: Session) -> Self {
        Self {
            id: session.id,
            status: format!("{:?}", session.status).to_lowercase(),
            started_at: session.start_time,
            expires_at: session.expires_at,
            extended: session.extended,
        }
    }
}

impl From<SessionError> for ApiError {
    fn from(error: SessionError) -> Self {
        let status = match &error {
            SessionError::AlreadyRunning => StatusCode::CONFLICT,
            SessionError::Full(_) => StatusCode::SERVICE_UNAVAILABLE,
            SessionError::NoSession => StatusCode::NOT_FOUND,
            SessionError::Cluster(_) | SessionError::Terminal(_) => {
                tracing::error!(%error, "session start failed");
                return ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "your practice environment could not start; nothing was kept, try again",
                );
            }
            SessionError::Store(store) => return ApiError::internal(store),
        };
        ApiError::new(status, error.to_string())
    }
}

async fn start(user: AuthUser, State(sessions): State<Sessions>) -> Result<Response, ApiError> {
    let session = sessions.start(&user.id).await?;
    Ok((StatusCode::CREATED, Json(SessionView::from(session))).into_response())
}

async fn status(user: AuthUser, State(store): State<Store>) -> Result<Json<SessionView>, ApiError> {
    let session = store
        .live_session_for_user(&user.id)
        .await
        .map_err(ApiError::internal)?
        .ok_or(SessionError::NoSession)?;
    Ok(Json(session.into()))
}

async fn stop(user: AuthUser, State(sessions): State<Sessions>) -> Result<StatusCode, ApiError> {
    sessions.stop_for_user(&user.id).await?;
    Ok(StatusCode::NO_CONTENT)
}
