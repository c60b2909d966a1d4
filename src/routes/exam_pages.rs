//! The server side of the exam pages (`app::exams`): the same domain calls as `/api/exams/*`, for
//! the user the page's cookie signs in.

use app::exams::{ssr::ExamPages, ExamResultView, ExamSummary, GradedCheck, GradedTask, ResultSummary};
use axum::http::HeaderMap;

use super::{auth::page_user, ApiError};
use crate::{auth::Auth, exams::ExamResult, sessions::Sessions};

pub struct PageExams {
    pub auth: Auth,
    pub sessions: Sessions,
}

impl PageExams {
    fn user(&self, headers: &HeaderMap) -> Result<String, String> {
        page_user(&self.auth, headers).ok_or_else(|| "Sign in to take an exam.".to_owned())
    }

    fn summary(&self, result: &ExamResult) -> ResultSummary {
        ResultSummary {
            session_id: result.session_id.clone(),
            title: self
                .sessions
                .exams()
                .get(&result.exam_id)
                .map_or_else(|| result.exam_id.clone(), |e| e.title.clone()),
            score: result.score,
            max_score: result.max_score,
            graded: result.graded_at.format("%-d %b %Y, %H:%M UTC").to_string(),
        }
    }
}

#[async_trait::async_trait]
impl ExamPages for PageExams {
    async fn exams(&self, headers: &HeaderMap) -> Result<Vec<ExamSummary>, String> {
        let user = self.user(headers)?;
        let mut listed = Vec::new();
        for exam in self.sessions.exams().list() {
            listed.push(ExamSummary {
                id: exam.id.clone(),
                title: exam.title.clone(),
                minutes: exam.minutes,
                tasks: exam.tasks.len(),
                max_score: exam.max_score(self.sessions.tasks()),
                allowed: self
                    .sessions
                    .may_take(&user, exam)
                    .await
                    .map_err(|e| ApiError::from(e).message)?,
            });
        }
        Ok(listed)
    }

    async fn start(&self, headers: &HeaderMap, exam_id: &str) -> Result<(), String> {
        let user = self.user(headers)?;
        self.sessions
            .begin_exam(&user, exam_id)
            .await
            .map(drop)
            .map_err(|e| ApiError::from(e).message)
    }

    async fn results(&self, headers: &HeaderMap) -> Result<Vec<ResultSummary>, String> {
        let user = self.user(headers)?;
        let results = self
            .sessions
            .exam_results(&user)
            .await
            .map_err(|e| ApiError::from(e).message)?;
        Ok(results.iter().map(|r| self.summary(r)).collect())
    }

    async fn result(&self, headers: &HeaderMap, session_id: &str) -> Result<ExamResultView, String> {
        let user = self.user(headers)?;
        let result = self
            .sessions
            .exam_result(&user, session_id)
            .await
            .map_err(|e| ApiError::from(e).message)?
            .ok_or_else(|| "There is no graded exam with that id.".to_owned())?;
        let tasks = result
            .tasks
            .iter()
            .map(|task| GradedTask {
                title: task.title.clone(),
                weight: task.weight,
                points: task.points,
                checks: task
                    .checks
                    .iter()
                    .map(|c| GradedCheck {
                        description: c.description.clone(),
                        passed: c.passed,
                        reason: c.reason.clone(),
                    })
                    .collect(),
                solution_html: self
                    .sessions
                    .tasks()
                    .get(&task.task)
                    .map(|t| t.solution().html)
                    .unwrap_or_default(),
            })
            .collect();
        Ok(ExamResultView {
            summary: self.summary(&result),
            tasks,
        })
    }
}
