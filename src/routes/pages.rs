//! The pages' view of sessions and tasks ([`Practice`]): the same domain calls as the JSON routes,
//! answered with the view types of `app::session` and refusals in the same words.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};

use app::{
    account::{
        ssr::{Accounts, Refusal},
        UserView,
    },
    session::{
        ssr::Practice, AdminOverview, CheckResult, LiveSession, PastSession, SessionView, TaskSummary,
        TaskText,
    },
};

use super::ApiError;
use crate::{
    configuration::Settings,
    sessions::{SessionError, Sessions},
    store::{Session, Store},
    AppState,
};

struct PagePractice {
    accounts: Arc<dyn Accounts>,
    sessions: Sessions,
    /// For the admin page: whose each session is.
    store: Store,
    settings: Arc<Settings>,
}

/// What the pages' server functions call, as `startup` provides it to them.
pub fn practice(state: &AppState, accounts: Arc<dyn Accounts>) -> Arc<dyn Practice> {
    Arc::new(PagePractice {
        accounts,
        sessions: state.sessions.clone(),
        store: state.store.clone(),
        settings: state.settings.clone(),
    })
}

impl PagePractice {
    async fn user(&self, headers: &HeaderMap) -> Result<UserView, Refusal> {
        self.accounts.current_user(headers).await.ok_or_else(|| Refusal {
            status: StatusCode::UNAUTHORIZED,
            message: "sign in first".into(),
        })
    }

    async fn admin(&self, headers: &HeaderMap) -> Result<UserView, Refusal> {
        let user = self.user(headers).await?;
        if !self.settings.admin_emails.contains(&user.email.to_lowercase()) {
            return Err(Refusal {
                status: StatusCode::FORBIDDEN,
                message: "only administrators can see the sessions of others".into(),
            });
        }
        Ok(user)
    }
}

fn refusal(error: SessionError) -> Refusal {
    let ApiError { status, message } = error.into();
    Refusal { status, message }
}

/// "15:32 UTC"
fn time_of_day(at: DateTime<Utc>) -> String {
    at.format("%H:%M UTC").to_string()
}

fn session_view(session: Session) -> SessionView {
    SessionView {
        status: session.status.as_str().to_owned(),
        started: time_of_day(session.start_time),
        expires_at_ms: session.expires_at.timestamp_millis(),
        server_time_ms: Utc::now().timestamp_millis(),
        extended: session.extended,
        exam: session.exam_id.is_some(),
        id: session.id,
    }
}

fn past_session(session: Session) -> PastSession {
    PastSession {
        status: session.status.as_str().to_owned(),
        started: session.start_time.format("%-d %b %Y, %H:%M UTC").to_string(),
        length: session
            .end_time
            .map(|end| format!("{} min", (end - session.start_time).num_minutes().max(0))),
        id: session.id,
    }
}

#[async_trait::async_trait]
impl Practice for PagePractice {
    async fn current_session(&self, headers: &HeaderMap) -> Result<Option<SessionView>, Refusal> {
        let user = self.user(headers).await?;
        let live = self.sessions.live_for_user(&user.id).await.map_err(refusal)?;
        Ok(live.map(session_view))
    }

    async fn past_sessions(&self, headers: &HeaderMap) -> Result<Vec<PastSession>, Refusal> {
        let user = self.user(headers).await?;
        let past = self.sessions.history(&user.id).await.map_err(refusal)?;
        Ok(past.into_iter().map(past_session).collect())
    }

    async fn start_session(&self, headers: &HeaderMap) -> Result<SessionView, Refusal> {
        let user = self.user(headers).await?;
        Ok(session_view(
            self.sessions.begin(&user.id).await.map_err(refusal)?,
        ))
    }

    async fn extend_session(&self, headers: &HeaderMap) -> Result<SessionView, Refusal> {
        let user = self.user(headers).await?;
        Ok(session_view(
            self.sessions.extend_for_user(&user.id).await.map_err(refusal)?,
        ))
    }

    async fn stop_session(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let user = self.user(headers).await?;
        self.sessions.stop_for_user(&user.id).await.map_err(refusal)
    }

    /// Every task, or during a mock exam the exam's, in its order.
    async fn list_tasks(&self, headers: &HeaderMap) -> Result<Vec<TaskSummary>, Refusal> {
        let user = self.user(headers).await?;
        let live = self.sessions.live_for_user(&user.id).await.map_err(refusal)?;
        let catalog = self.sessions.tasks();
        let tasks: Vec<_> = match live
            .and_then(|session| session.exam_id)
            .and_then(|exam| self.sessions.exams().get(&exam))
        {
            Some(exam) => exam.tasks.iter().filter_map(|id| catalog.get(id)).collect(),
            None => catalog.list().iter().collect(),
        };
        Ok(tasks
            .into_iter()
            .map(|task| {
                let view = task.view();
                TaskSummary {
                    id: view.id.clone(),
                    title: view.title.clone(),
                    domain: view.domain.name().to_owned(),
                    difficulty: format!("{:?}", view.difficulty).to_lowercase(),
                    weight: view.weight,
                    minutes: view.minutes,
                }
            })
            .collect())
    }

    async fn read_task(&self, headers: &HeaderMap, task_id: &str) -> Result<TaskText, Refusal> {
        self.user(headers).await?;
        let task = self.sessions.tasks().get(task_id).ok_or_else(|| Refusal {
            status: StatusCode::NOT_FOUND,
            message: format!("there is no task {task_id:?}"),
        })?;
        Ok(TaskText {
            id: task.id().to_owned(),
            body_html: task.view().body_html.clone(),
        })
    }

    async fn check_task(&self, headers: &HeaderMap, task_id: &str) -> Result<Vec<CheckResult>, Refusal> {
        let user = self.user(headers).await?;
        let outcomes = self.sessions.check(&user.id, task_id).await.map_err(refusal)?;
        Ok(outcomes
            .into_iter()
            .map(|outcome| CheckResult {
                description: outcome.description,
                passed: outcome.passed,
                reason: outcome.reason,
            })
            .collect())
    }

    async fn list_live_sessions(&self, headers: &HeaderMap) -> Result<AdminOverview, Refusal> {
        self.admin(headers).await?;
        let now = Utc::now();
        let mut live = Vec::new();
        for session in self.sessions.list_live().await.map_err(refusal)? {
            let user = match self.store.user_by_id(&session.user_id).await {
                Ok(Some(user)) => user.email,
                _ => session.user_id.clone(),
            };
            live.push(LiveSession {
                user,
                status: session.status.as_str().to_owned(),
                started: time_of_day(session.start_time),
                minutes_left: (session.expires_at - now).num_minutes().max(0),
                extended: session.extended,
                id: session.id,
            });
        }
        Ok(AdminOverview {
            live,
            capacity: self.sessions.stats().await.map_err(refusal)?.capacity,
        })
    }

    async fn terminate_session(&self, headers: &HeaderMap, session_id: &str) -> Result<(), Refusal> {
        self.admin(headers).await?;
        self.sessions.terminate(session_id).await.map_err(refusal)?;
        Ok(())
    }
}
