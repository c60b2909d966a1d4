//! `/api/session/*`: the signed-in user's practice session: start (made in the background; its
//! steps arrive on `events`), status, extend, stop, history; `/api/tasks/*`: the tasks and
//! their Check; `/api/exams/*`: the mock exams and their results. Thin adapters: each finds the
//! user, calls [`Sessions`] and answers with the wire types of `app::api`.

use std::{convert::Infallible, time::Duration};

use app::api::{
    CheckReport, Difficulty, ErrorBody, ExamCategory, ExamSummary, ExamType, GradedExam, SessionEvent,
    SessionView, Solution, TaskDetail, TaskSummary,
};
use axum::{
    extract::{Path, Query, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse, Response,
    },
    Json,
};
use futures_util::{stream, Stream, StreamExt};
use tokio_stream::wrappers::{errors::BroadcastStreamRecvError, BroadcastStream};
use tokio_util::sync::CancellationToken;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::ratelimit::CheckThrottle;
use super::{
    extract::{CurrentUser, ProvenUser},
    ApiError,
};
use crate::{
    auth::Auth,
    domain::{ExamResult, Session},
    exams::{scores_by_domain, ExamFilter, DEFAULT_PASS_PERCENT},
    sessions::{SessionError, Sessions},
    tasks::{self, Task},
    AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start))
        .routes(routes!(status))
        .routes(routes!(events))
        .routes(routes!(extend))
        .routes(routes!(stop))
        .routes(routes!(history))
}

pub fn exams_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_exams))
        .routes(routes!(start_exam))
        .routes(routes!(results))
        .routes(routes!(result))
}

pub fn tasks_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tasks))
        .routes(routes!(task))
        .routes(routes!(check))
}

/// Records the session and answers 202 at once; the start's steps follow on `/events`.
#[utoipa::path(post, path = "/start", tag = "session", responses(
    (status = 202, description = "Recorded; provisioning in the background", body = SessionView),
    (status = 401, body = ErrorBody), (status = 403, description = "The email is not proven yet", body = ErrorBody),
    (status = 409, body = ErrorBody),
    (status = 429, description = "Too many starts; see Retry-After", body = ErrorBody),
    (status = 503, description = "Every seat is taken", body = ErrorBody),
))]
async fn start(user: ProvenUser, State(sessions): State<Sessions>) -> Result<Response, ApiError> {
    started(sessions.begin(&user.id).await)
}

/// 202 with the recorded session, or the refusal (with `Retry-After` when rate limited).
fn started(begun: Result<Session, SessionError>) -> Result<Response, ApiError> {
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

/// The user's live session.
#[utoipa::path(get, path = "/status", tag = "session", responses(
    (status = 200, body = SessionView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
))]
async fn status(user: CurrentUser, State(sessions): State<Sessions>) -> Result<Json<SessionView>, ApiError> {
    let session = sessions
        .live_for_user(&user.id)
        .await?
        .ok_or(SessionError::NoSession)?;
    Ok(Json((&session).into()))
}

/// Server-sent events of the user's session: `progress`, `started`, `failed`, `warning`,
/// `extended`, `ended`, each with a JSON body carrying the same `type`.
#[utoipa::path(get, path = "/events", tag = "session", responses(
    (status = 200, description = "An event stream", content_type = "text/event-stream", body = SessionEvent),
    (status = 401, body = ErrorBody),
))]
async fn events(
    user: CurrentUser,
    State(sessions): State<Sessions>,
    State(stopping): State<CancellationToken>,
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
    let until_shutdown = received.take_until(async move { stopping.cancelled().await });
    let hello = stream::once(async { Ok(Event::default().comment("session events")) });
    Sse::new(hello.chain(until_shutdown)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// Adds 30 minutes to the started session, once.
#[utoipa::path(post, path = "/extend", tag = "session", responses(
    (status = 200, body = SessionView), (status = 401, body = ErrorBody),
    (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
))]
async fn extend(user: CurrentUser, State(sessions): State<Sessions>) -> Result<Json<SessionView>, ApiError> {
    Ok(Json((&sessions.extend_for_user(&user.id).await?).into()))
}

/// Ends the user's session and removes everything it had.
#[utoipa::path(post, path = "/stop", tag = "session", responses(
    (status = 204, description = "Stopped"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
))]
async fn stop(user: CurrentUser, State(sessions): State<Sessions>) -> Result<StatusCode, ApiError> {
    sessions.stop_for_user(&user.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The user's sessions that have ended, newest first.
#[utoipa::path(get, path = "/history", tag = "session", responses(
    (status = 200, body = Vec<SessionView>), (status = 401, body = ErrorBody),
))]
async fn history(
    user: CurrentUser,
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

/// A task as the list beside the terminal shows it.
pub(crate) fn task_summary(task: &Task) -> TaskSummary {
    let view = task.view();
    TaskSummary {
        id: view.id.clone(),
        title: view.title.clone(),
        domain: view.domain.name().to_owned(),
        difficulty: match view.difficulty {
            tasks::Difficulty::Easy => Difficulty::Easy,
            tasks::Difficulty::Medium => Difficulty::Medium,
            tasks::Difficulty::Hard => Difficulty::Hard,
        },
        weight: view.weight,
        minutes: view.minutes,
        host: None,
    }
}

/// A task's text, with its hints unless `hints_allowed` is false (a mock exam under way).
pub(crate) fn task_detail(task: &Task, hints_allowed: bool) -> TaskDetail {
    TaskDetail {
        summary: task_summary(task),
        body_html: task.view().body_html.clone(),
        hints_html: if hints_allowed {
            task.view().hints_html.clone()
        } else {
            Vec::new()
        },
    }
}

/// Every task, without its checks or its solution; while the user sits an exam, hints withheld
/// and names as chosen for the exam.
#[utoipa::path(get, path = "/", tag = "tasks", responses(
    (status = 200, body = Vec<TaskDetail>), (status = 401, body = ErrorBody),
))]
async fn list_tasks(
    user: CurrentUser,
    State(sessions): State<Sessions>,
) -> Result<Json<Vec<TaskDetail>>, ApiError> {
    let exam = sessions.exam_under_way(&user.id).await?;
    let details = sessions
        .tasks()
        .list()
        .iter()
        .map(|task| {
            let task = sessions.task_in(exam.as_ref(), task)?;
            Ok(task_detail(&task, exam.is_none()))
        })
        .collect::<Result<_, SessionError>>()?;
    Ok(Json(details))
}

#[utoipa::path(get, path = "/{id}", tag = "tasks", params(("id" = String, Path)), responses(
    (status = 200, body = TaskDetail), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
))]
async fn task(
    user: CurrentUser,
    Path(id): Path<String>,
    State(sessions): State<Sessions>,
) -> Result<Json<TaskDetail>, ApiError> {
    let task = sessions.tasks().get(&id).ok_or(SessionError::UnknownTask(id))?;
    let exam = sessions.exam_under_way(&user.id).await?;
    let task = sessions.task_in(exam.as_ref(), task)?;
    Ok(Json(task_detail(&task, exam.is_none())))
}

/// Grades the task against the user's started session.
pub(crate) async fn check_report(
    sessions: &Sessions,
    throttle: &CheckThrottle,
    user: &CurrentUser,
    task: String,
) -> Result<CheckReport, ApiError> {
    throttle.admit(&user.id, &task)?;
    let checks = sessions.check(&user.id, &task).await?;
    Ok(CheckReport {
        passed: checks.iter().all(|c| c.passed),
        task,
        checks,
    })
}

/// Grades the task against the user's started session.
#[utoipa::path(post, path = "/{id}/check", tag = "tasks", params(("id" = String, Path)), responses(
    (status = 200, body = CheckReport), (status = 401, body = ErrorBody),
    (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 429, body = ErrorBody),
))]
async fn check(
    user: CurrentUser,
    Path(id): Path<String>,
    State(sessions): State<Sessions>,
    State(throttle): State<CheckThrottle>,
) -> Result<Json<CheckReport>, ApiError> {
    Ok(Json(check_report(&sessions, &throttle, &user, id).await?))
}

/// The exams `filter` shows, and whether this learner may take each now. A visitor who is not
/// signed in sees the mock exams only, none of which they may start before signing in.
pub(crate) async fn exam_summaries(
    sessions: &Sessions,
    user: Option<&CurrentUser>,
    filter: ExamFilter,
) -> Result<Vec<ExamSummary>, ApiError> {
    let mut summaries = Vec::new();
    let shown = sessions
        .exams()
        .list()
        .iter()
        .filter(|exam| filter.shows(exam) && (user.is_some() || exam.category == ExamCategory::Mock));
    for exam in shown {
        let allowed = match user {
            Some(user) => sessions.may_take(&user.id, exam).await?,
            None => false,
        };
        summaries.push(ExamSummary {
            id: exam.id.clone(),
            title: exam.title.clone(),
            exam_type: exam.exam_type,
            category: exam.category,
            minutes: exam.minutes,
            tasks: exam.tasks.len(),
            max_score: exam.max_score(sessions.tasks()),
            access: exam.access,
            pass_percent: exam.pass_percent,
            is_free: exam.is_free(),
            allowed,
        });
    }
    Ok(summaries)
}

/// The exams, filtered by `type` (ckad, cka, cks, docker, helm) and `category` (mock, full);
/// visitors who are not signed in may browse the mock exams.
#[utoipa::path(get, path = "/", tag = "exams", params(
    ("type" = Option<ExamType>, Query), ("category" = Option<ExamCategory>, Query),
), responses(
    (status = 200, body = Vec<ExamSummary>), (status = 400, description = "an unknown type or category"),
))]
async fn list_exams(
    headers: HeaderMap,
    State(auth): State<Auth>,
    State(sessions): State<Sessions>,
    Query(filter): Query<ExamFilter>,
) -> Result<Json<Vec<ExamSummary>>, ApiError> {
    let user = CurrentUser::from_headers(&auth, &headers).ok();
    Ok(Json(exam_summaries(&sessions, user.as_ref(), filter).await?))
}

/// Starts a mock exam session; answered like a practice start.
#[utoipa::path(post, path = "/{id}/start", tag = "exams", params(("id" = String, Path)), responses(
    (status = 202, body = SessionView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 429, body = ErrorBody),
))]
async fn start_exam(
    user: ProvenUser,
    Path(id): Path<String>,
    State(sessions): State<Sessions>,
) -> Result<Response, ApiError> {
    started(sessions.begin_exam(&user.id, &id).await)
}

/// A graded exam with its exam's title and, when asked, each task's reference solution (with the
/// names chosen for that exam session).
fn graded(sessions: &Sessions, result: ExamResult, with_solutions: bool) -> Result<GradedExam, ApiError> {
    let exam = sessions.exams().get(&result.exam_id);
    let title = exam.map_or_else(|| result.exam_id.clone(), |e| e.title.clone());
    let pass_percent = exam.map_or(DEFAULT_PASS_PERCENT, |e| e.pass_percent);
    let passed = exam.is_some_and(|e| e.passes(result.score, result.max_score));
    let mut solutions = Vec::new();
    if with_solutions {
        for task in result.tasks.iter().filter_map(|t| sessions.tasks().get(&t.task)) {
            let solution = task
                .for_session(&result.session_id)
                .map_err(SessionError::from)?
                .solution();
            solutions.push(Solution {
                id: solution.id,
                script: solution.script,
                html: solution.html,
            });
        }
    }
    let domains = scores_by_domain(&result);
    Ok(GradedExam {
        result,
        title,
        pass_percent,
        passed,
        domains,
        solutions,
    })
}

pub(crate) async fn graded_exams(
    sessions: &Sessions,
    user: &CurrentUser,
) -> Result<Vec<GradedExam>, ApiError> {
    let results = sessions.exam_results(&user.id).await?;
    results.into_iter().map(|r| graded(sessions, r, false)).collect()
}

pub(crate) async fn graded_exam(
    sessions: &Sessions,
    user: &CurrentUser,
    session_id: &str,
) -> Result<GradedExam, ApiError> {
    let result = sessions
        .exam_result(&user.id, session_id)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "there is no graded exam with that id"))?;
    graded(sessions, result, true)
}

/// The user's graded exams, without solutions.
#[utoipa::path(get, path = "/results", tag = "exams", responses(
    (status = 200, body = Vec<GradedExam>), (status = 401, body = ErrorBody),
))]
async fn results(
    user: CurrentUser,
    State(sessions): State<Sessions>,
) -> Result<Json<Vec<GradedExam>>, ApiError> {
    Ok(Json(graded_exams(&sessions, &user).await?))
}

/// One graded exam with every task's reference solution.
#[utoipa::path(get, path = "/results/{session_id}", tag = "exams", params(("session_id" = String, Path)), responses(
    (status = 200, body = GradedExam), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
))]
async fn result(
    user: CurrentUser,
    Path(session_id): Path<String>,
    State(sessions): State<Sessions>,
) -> Result<Json<GradedExam>, ApiError> {
    Ok(Json(graded_exam(&sessions, &user, &session_id).await?))
}
