//! `/api/desk`: the notepad and review flags of the signed-in user's started session.

use app::api::{DeskView, ErrorBody, NotepadText, TaskFlag};
use axum::{
    extract::{Path, State},
    http::StatusCode,
    Json,
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{extract::CurrentUser, ApiError, ApiJson};
use crate::{
    desk::{Desk, DeskError},
    AppState,
};

/// `/api/desk`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(desk))
        .routes(routes!(notepad))
        .routes(routes!(flag))
}

impl From<DeskError> for ApiError {
    fn from(error: DeskError) -> Self {
        let status = match &error {
            DeskError::NoSession | DeskError::UnknownTask(_) => StatusCode::NOT_FOUND,
            DeskError::TooLong => StatusCode::PAYLOAD_TOO_LARGE,
            DeskError::Store(_) => return ApiError::internal(error),
        };
        ApiError::new(status, error.to_string())
    }
}

/// The notepad and the flagged tasks of the started session.
#[utoipa::path(get, path = "", tag = "desk", responses(
    (status = 200, body = DeskView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
))]
async fn desk(user: CurrentUser, State(desk): State<Desk>) -> Result<Json<DeskView>, ApiError> {
    Ok(Json(desk.view(&user.id).await?))
}

/// Replaces the notepad's text.
#[utoipa::path(put, path = "/notepad", tag = "desk", request_body = NotepadText, responses(
    (status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 413, body = ErrorBody),
))]
async fn notepad(
    user: CurrentUser,
    State(desk): State<Desk>,
    ApiJson(body): ApiJson<NotepadText>,
) -> Result<StatusCode, ApiError> {
    desk.save_notepad(&user.id, &body.text).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Flags the task for review, or clears its flag.
#[utoipa::path(put, path = "/flags/{task}", tag = "desk", params(("task" = String, Path)),
    request_body = TaskFlag, responses(
    (status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
))]
async fn flag(
    user: CurrentUser,
    Path(task): Path<String>,
    State(desk): State<Desk>,
    ApiJson(body): ApiJson<TaskFlag>,
) -> Result<StatusCode, ApiError> {
    desk.flag(&user.id, &task, body.flagged).await?;
    Ok(StatusCode::NO_CONTENT)
}
