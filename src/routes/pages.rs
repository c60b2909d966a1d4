//! The pages' server functions ([`Practice`], [`ExamPages`]): the same users, services, answers
//! and refusals as the JSON routes, for the request the page's server function serves.

use app::{
    api::{AdminOverview, CheckReport, ExamSummary, GradedExam, SessionView, TaskDetail, TaskSummary},
    ports::{ExamPages, Practice, Refusal},
};
use axum::http::HeaderMap;

use super::{
    admin::live_sessions,
    extract::{AdminUser, CurrentUser, ProvenUser},
    session::{check_report, exam_summaries, graded_exam, graded_exams, task_detail, task_summary},
    ApiError,
};
use crate::{sessions::SessionError, AppState};

/// What `startup` hands the pages' server functions.
pub struct Pages(pub AppState);

impl Pages {
    fn user(&self, headers: &HeaderMap) -> Result<CurrentUser, Refusal> {
        Ok(CurrentUser::from_headers(&self.0.auth, headers)?)
    }

    async fn admin(&self, headers: &HeaderMap) -> Result<AdminUser, Refusal> {
        Ok(AdminUser::from_headers(&self.0, headers).await?)
    }
}

fn refusal(error: impl Into<ApiError>) -> Refusal {
    error.into().into()
}

#[async_trait::async_trait]
impl Practice for Pages {
    async fn current_session(&self, headers: &HeaderMap) -> Result<Option<SessionView>, Refusal> {
        let user = self.user(headers)?;
        let live = self.0.sessions.live_for_user(&user.id).await.map_err(refusal)?;
        Ok(live.as_ref().map(SessionView::from))
    }

    async fn past_sessions(&self, headers: &HeaderMap) -> Result<Vec<SessionView>, Refusal> {
        let user = self.user(headers)?;
        let past = self.0.sessions.history(&user.id).await.map_err(refusal)?;
        Ok(past.iter().map(SessionView::from).collect())
    }

    async fn start_session(&self, headers: &HeaderMap) -> Result<SessionView, Refusal> {
        let user = ProvenUser::from_headers(&self.0.auth, headers).await?;
        Ok((&self.0.sessions.begin(&user.id).await.map_err(refusal)?).into())
    }

    async fn extend_session(&self, headers: &HeaderMap) -> Result<SessionView, Refusal> {
        let user = self.user(headers)?;
        Ok((&self.0.sessions.extend_for_user(&user.id).await.map_err(refusal)?).into())
    }

    async fn stop_session(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let user = self.user(headers)?;
        self.0.sessions.stop_for_user(&user.id).await.map_err(refusal)
    }

    async fn list_tasks(&self, headers: &HeaderMap) -> Result<Vec<TaskSummary>, Refusal> {
        let user = self.user(headers)?;
        let sessions = &self.0.sessions;
        let live = sessions.exam_under_way(&user.id).await.map_err(refusal)?;
        let catalog = sessions.tasks();
        match live.as_ref().and_then(|session| {
            let exam = sessions.exams().get(session.exam_id.as_deref()?)?;
            Some((session, exam))
        }) {
            // An exam's task says the host it is solved on, and names what it names in this session.
            Some((session, exam)) => exam
                .tasks
                .iter()
                .filter_map(|t| catalog.get(t.id()).map(|task| (t, task)))
                .map(|(t, task)| {
                    let task = sessions.task_in(Some(session), task).map_err(refusal)?;
                    Ok(TaskSummary {
                        host: t.host().map(str::to_owned),
                        ..task_summary(&task)
                    })
                })
                .collect(),
            None => Ok(catalog.list().iter().map(task_summary).collect()),
        }
    }

    async fn read_task(&self, headers: &HeaderMap, task_id: &str) -> Result<TaskDetail, Refusal> {
        let user = self.user(headers)?;
        let sessions = &self.0.sessions;
        let task = sessions
            .tasks()
            .get(task_id)
            .ok_or_else(|| refusal(SessionError::UnknownTask(task_id.to_owned())))?;
        let exam = sessions.exam_under_way(&user.id).await.map_err(refusal)?;
        let task = sessions.task_in(exam.as_ref(), task).map_err(refusal)?;
        Ok(task_detail(&task, exam.is_none()))
    }

    async fn check_task(&self, headers: &HeaderMap, task_id: &str) -> Result<CheckReport, Refusal> {
        let user = self.user(headers)?;
        Ok(check_report(&self.0.sessions, &self.0.checks, &user, task_id.to_owned()).await?)
    }

    async fn list_live_sessions(&self, headers: &HeaderMap) -> Result<AdminOverview, Refusal> {
        self.admin(headers).await?;
        let stats = self.0.sessions.stats().await.map_err(refusal)?;
        Ok(AdminOverview {
            live: live_sessions(&self.0.auth, &self.0.sessions).await?,
            capacity: stats.capacity,
            pool: stats.pool,
        })
    }

    async fn terminate_session(&self, headers: &HeaderMap, session_id: &str) -> Result<(), Refusal> {
        self.admin(headers).await?;
        self.0.sessions.terminate(session_id).await.map_err(refusal)?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl ExamPages for Pages {
    async fn exams(&self, headers: &HeaderMap) -> Result<Vec<ExamSummary>, Refusal> {
        let user = self.user(headers).ok();
        Ok(exam_summaries(&self.0.sessions, user.as_ref(), Default::default()).await?)
    }

    async fn start(&self, headers: &HeaderMap, exam_id: &str) -> Result<(), Refusal> {
        let user = ProvenUser::from_headers(&self.0.auth, headers).await?;
        self.0
            .sessions
            .begin_exam(&user.id, exam_id)
            .await
            .map(drop)
            .map_err(refusal)
    }

    async fn results(&self, headers: &HeaderMap) -> Result<Vec<GradedExam>, Refusal> {
        let user = self.user(headers)?;
        Ok(graded_exams(&self.0.sessions, &user).await?)
    }

    async fn result(&self, headers: &HeaderMap, session_id: &str) -> Result<GradedExam, Refusal> {
        let user = self.user(headers)?;
        Ok(graded_exam(&self.0.sessions, &user, session_id).await?)
    }
}
