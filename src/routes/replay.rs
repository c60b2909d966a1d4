//! `GET /api/replays/{session}`: a session's terminal recording (asciicast v2), for its learner
//! and administrators; anyone else hears that there is none.

use axum::{
    extract::{Path, State},
    http::{header, HeaderMap, StatusCode},
    response::IntoResponse,
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    extract::{AdminUser, CurrentUser},
    ApiError,
};
use crate::{
    replays::{ReplayError, Viewer},
    AppState,
};

/// `/api/replays`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(recording))
}

/// The session's recording as an asciicast v2 file; markers (`"m"`) are the learner's task
/// switches and Checks.
#[utoipa::path(get, path = "/{session}", tag = "replays", params(("session" = String, Path)), responses(
    (status = 200, content_type = "application/x-asciicast", body = String),
    (status = 401, body = app::api::ErrorBody), (status = 404, body = app::api::ErrorBody),
))]
async fn recording(
    user: CurrentUser,
    headers: HeaderMap,
    Path(session): Path<String>,
    State(state): State<AppState>,
) -> Result<impl IntoResponse, ApiError> {
    let viewer = Viewer {
        user_id: &user.id,
        admin: AdminUser::from_headers(&state, &headers).await.is_ok(),
    };
    let cast = state
        .recordings
        .cast(&viewer, &session)
        .await
        .map_err(|error| match error {
            ReplayError::NotFound => ApiError::new(StatusCode::NOT_FOUND, error.to_string()),
            error => ApiError::internal(error),
        })?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-asciicast"),
            (header::CACHE_CONTROL, "private, no-store"),
        ],
        cast,
    ))
}
