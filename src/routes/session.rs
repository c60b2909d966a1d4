//! `/api/session/*`: the signed-in user's practice session: start (made in the background; its
//! steps arrive on `events`), status, extend, stop, history; and `/api/tasks/*`: the tasks and
//! their Check.

use std::{convert::Infallible, time::Duration};

use axum::{
    extract::{Path, State},
    http::{header, HeaderValue, StatusCode},
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse, Response,
    },
    routing::{get, post},
    Json, Router,
};
use futures_util::{stream, Stream, StreamExt};
use serde::Serialize;
use tokio_stream::wrappers::{errors::BroadcastStreamRecvError, BroadcastStream};

use super::{auth::AuthUser, ApiError};
use crate::{
    sessions::{SessionError, SessionView, Sessions},
    tasks::{CheckOutcome, TaskView},
    AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/start", post(start))
        .route("/status", get(status))
        .route("/events", get(events))
        .route("/extend", post(extend))
        .route("/stop", post(stop))
        .route("/history", get(history))
}

pub fn tasks_router() -> Router<AppState> {
    Router::new()
        .route("/", get(list_tasks))
        .route("/{id}", get(task))
        .route("/{id}/check", post(check))
}

impl From<SessionError> for ApiError {
    fn from(error: SessionError) -> Self {
        let status = match &error {
            SessionError::AlreadyRunning | SessionError::AlreadyExtended | SessionError::NotStarted => {
                StatusCode::CONFLICT
            }
            SessionError::Full(_) => StatusCode::SERVICE_UNAVAILABLE,
            SessionError::TooManyStarts { .. } => StatusCode::TOO_MANY_REQUESTS,
            SessionError::NoSession | SessionError::UnknownTask(_) => StatusCode::NOT_FOUND,
            SessionError::Cluster(_)
            | SessionError::Tasks(_)
            | SessionError::Terminal(_)
            | SessionError::Files(_) => {
                tracing::error!(%error, "session failed");
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

/// Records the session and answers 202 at once; the start's steps follow on `/events`.
async fn start(user: AuthUser, State(sessions): State<Sessions>) -> Result<Response, ApiError> {
    match sessions.begin(&user.id).await {
        Ok(session) => Ok((StatusCode::ACCEPTED, Json(SessionView::from(&session))).into_response()),
        Err(SessionError::TooManyStarts { retry_after }) => {
            let mut response = ApiError::from(SessionError::TooManyStarts { retry_after }).into_response();
            let seconds = retry_after.as_secs().max(1).to_string();
            if let Ok(value) = HeaderValue::from_str(&seconds) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            Ok(response)
        }
        Err(error) => Err(error.into()),
    }
}

async fn status(user: AuthUser, State(sessions): State<Sessions>) -> Result<Json<SessionView>, ApiError> {
    let session = sessions
        .live_for_user(&user.id)
        .await?
        .ok_or(SessionError::NoSession)?;
    Ok(Json((&session).into()))
}

/// Server-sent events of the user's session: `progress`, `started`, `failed`, `warning`,
/// `extended`, `ended`, each with a JSON body carrying the same `type`.
async fn events(
    user: AuthUser,
    State(sessions): State<Sessions>,
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let received = BroadcastStream::new(sessions.subscribe(&user.id)).filter_map(|event| async move {
        match event {
            Ok(event) => Event::default()
                .event(event.name())
                .json_data(&event)
                .ok()
                .map(Ok),
            // A slow page missed some; the next ones still come.
            Err(BroadcastStreamRecvError::Lagged(_)) => None,
        }
    });
    let stopping = state.stopping.clone();
    let until_shutdown = received.take_until(async move { stopping.cancelled().await });
    let hello = stream::once(async { Ok(Event::default().comment("session events")) });
    Sse::new(hello.chain(until_shutdown)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

async fn extend(user: AuthUser, State(sessions): State<Sessions>) -> Result<Json<SessionView>, ApiError> {
    Ok(Json((&sessions.extend_for_user(&user.id).await?).into()))
}

async fn stop(user: AuthUser, State(sessions): State<Sessions>) -> Result<StatusCode, ApiError> {
    sessions.stop_for_user(&user.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn history(
    user: AuthUser,
    State(sessions): State<Sessions>,
) -> Result<Json<Vec<SessionView>>, ApiError> {
    Ok(Json(
        sessions
            .history(&user.id)
            .await?
            .iter()
            .map(SessionView::from)
            .collect(),
    ))
}

async fn list_tasks(State(sessions): State<Sessions>) -> Json<Vec<TaskView>> {
    Json(sessions.tasks().list().iter().map(|t| t.view().clone()).collect())
}

async fn task(Path(id): Path<String>, State(sessions): State<Sessions>) -> Result<Json<TaskView>, ApiError> {
    let task = sessions.tasks().get(&id).ok_or(SessionError::UnknownTask(id))?;
    Ok(Json(task.view().clone()))
}

#[derive(Serialize)]
struct CheckReport {
    task: String,
    passed: bool,
    checks: Vec<CheckOutcome>,
}

async fn check(
    user: AuthUser,
    Path(id): Path<String>,
    State(sessions): State<Sessions>,
) -> Result<Json<CheckReport>, ApiError> {
    let checks = sessions.check(&user.id, &id).await?;
    Ok(Json(CheckReport {
        passed: checks.iter().all(|c| c.passed),
        task: id,
        checks,
    }))
}
