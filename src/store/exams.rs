//! `exam_results`.

use chrono::Utc;

use super::{Store, StoreError};
use crate::domain::{ExamResult, GradedTask};

#[derive(sqlx::FromRow)]
struct ResultRow {
    session_id: String,
    exam_id: String,
    score: i64,
    max_score: i64,
    graded_at: chrono::DateTime<Utc>,
    tasks: String,
}

impl TryFrom<ResultRow> for ExamResult {
    type Error = StoreError;

    fn try_from(row: ResultRow) -> Result<Self, StoreError> {
        let tasks: Vec<GradedTask> = serde_json::from_str(&row.tasks)
            .map_err(|e| StoreError::Corrupt(format!("exam result tasks: {e}")))?;
        Ok(Self {
            session_id: row.session_id,
            exam_id: row.exam_id,
            score: row.score as u32,
            max_score: row.max_score as u32,
            graded_at: row.graded_at,
            tasks,
        })
    }
}

impl Store {
    /// Keeps a graded exam; grading the same session twice keeps the first.
    pub async fn insert_exam_result(&self, result: &ExamResult) -> Result<(), StoreError> {
        let tasks = serde_json::to_string(&result.tasks).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        on!(self.db, |c| sqlx::query(
            "INSERT INTO exam_results (session_id, exam_id, score, max_score, graded_at, tasks)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (session_id) DO NOTHING",
        )
        .bind(&result.session_id)
        .bind(&result.exam_id)
        .bind(i64::from(result.score))
        .bind(i64::from(result.max_score))
        .bind(result.graded_at)
        .bind(&tasks)
        .execute(c)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// The user's exam result for `session_id`.
    pub async fn exam_result(
        &self,
        user_id: &str,
        session_id: &str,
    ) -> Result<Option<ExamResult>, StoreError> {
        let row: Option<ResultRow> = on!(self.db, |c| sqlx::query_as(
            "SELECT r.session_id, r.exam_id, r.score, r.max_score, r.graded_at, r.tasks
             FROM exam_results r JOIN sessions s ON s.id = r.session_id
             WHERE r.session_id = $1 AND s.user_id = $2",
        )
        .bind(session_id)
        .bind(user_id)
        .fetch_optional(c)
        .await)?;
        row.map(ExamResult::try_from).transpose()
    }

    /// The user's exam results, newest first.
    pub async fn exam_results(&self, user_id: &str) -> Result<Vec<ExamResult>, StoreError> {
        let rows: Vec<ResultRow> = on!(self.db, |c| sqlx::query_as(
            "SELECT r.session_id, r.exam_id, r.score, r.max_score, r.graded_at, r.tasks
             FROM exam_results r JOIN sessions s ON s.id = r.session_id
             WHERE s.user_id = $1 ORDER BY s.start_time DESC",
        )
        .bind(user_id)
        .fetch_all(c)
        .await)?;
        rows.into_iter().map(ExamResult::try_from).collect()
    }
}
