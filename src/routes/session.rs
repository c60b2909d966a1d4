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
    exams::ExamResult,
    sessions::{SessionError, SessionView, Sessions},
    tasks::{CheckOutcome, TaskSolution, TaskView},
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

pub fn exams_router() -> Router<AppState> {
    Router::new()
        .route("/", get(list_exams))
        .route("/{id}/start", post(start_exam))
        .route("/results", get(results))
        .route("/results/{session_id}", get(result))
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
            SessionError::NoSession | SessionError::UnknownTask(_) | SessionError::UnknownExam(_) => {
                StatusCode::NOT_FOUND
            }
            SessionError::NoAccess => StatusCode::FORBIDDEN,
            SessionError::ExamRules(_) => StatusCode::CONFLICT,
            SessionError::Cluster(_)
            | SessionError::Tasks(_)
            | SessionError::Terminal(_)
            | SessionError::Files(_) => {
                let reference = crate::telemetry::reference();
                tracing::error!(%error, %reference, "session failed");
                return ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("your practice environment could not start; nothing was kept, try again (reference {reference})"),
                );
            }
            SessionError::Store(store) => return ApiError::internal(store),
        };
        ApiError::new(status, error.to_string())
    }
}

/// Records the session and answers 202 at once; the start's steps follow on `/events`.
async fn start(user: AuthUser, State(sessions): State<Sessions>) -> Result<Response, ApiError> {
    started(sessions.begin(&user.id).await)
}

/// 202 with the recorded session, or the refusal (with `Retry-After` when rate limited).
fn started(begun: Result<crate::store::Session, SessionError>) -> Result<Response, ApiError> {
    match begun {
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

/// An exam as a learner sees it before taking it.
#[derive(Serialize)]
struct ExamView {
    id: String,
    title: String,
    minutes: u32,
    tasks: usize,
    max_score: u32,
    access: crate::exams::Access,
    /// Whether this learner may take it now.
    allowed: bool,
}

async fn list_exams(
    user: AuthUser,
    State(sessions): State<Sessions>,
) -> Result<Json<Vec<ExamView>>, ApiError> {
    let mut views = Vec::new();
    for exam in sessions.exams().list() {
        views.push(ExamView {
            id: exam.id.clone(),
            title: exam.title.clone(),
            minutes: exam.minutes,
            tasks: exam.tasks.len(),
            max_score: exam.max_score(sessions.tasks()),
            access: exam.access,
            allowed: sessions.may_take(&user.id, exam).await?,
        });
    }
    Ok(Json(views))
}

async fn start_exam(
    user: AuthUser,
    Path(id): Path<String>,
    State(sessions): State<Sessions>,
) -> Result<Response, ApiError> {
    started(sessions.begin_exam(&user.id, &id).await)
}

async fn results(
    user: AuthUser,
    State(sessions): State<Sessions>,
) -> Result<Json<Vec<ExamResult>>, ApiError> {
    Ok(Json(sessions.exam_results(&user.id).await?))
}

/// A graded exam with every check's outcome and, now earned, each task's reference solution.
#[derive(Serialize)]
struct ResultView {
    #[serde(flatten)]
    result: ExamResult,
    solutions: Vec<TaskSolution>,
}

async fn result(
    user: AuthUser,
    Path(session_id): Path<String>,
    State(sessions): State<Sessions>,
) -> Result<Json<ResultView>, ApiError> {
    let result = sessions
        .exam_result(&user.id, &session_id)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no graded exam with that id"))?;
    let solutions = result
        .tasks
        .iter()
        .filter_map(|t| sessions.tasks().get(&t.task))
        .map(|t| t.solution())
        .collect();
    Ok(Json(ResultView { result, solutions }))
}
