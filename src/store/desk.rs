//! `session_notepads` and `session_flags`: the learner's notepad and review flags, per session.

use chrono::Utc;

use super::{Store, StoreError};

impl Store {
    /// The session's notepad ("" when never written) and its flagged tasks, in task-id order.
    pub async fn desk(&self, session_id: &str) -> Result<(String, Vec<String>), StoreError> {
        let text: Option<String> = on!(self.db, |c| sqlx::query_scalar(
            "SELECT text FROM session_notepads WHERE session_id = $1"
        )
        .bind(session_id)
        .fetch_optional(c)
        .await)?;
        let flagged = on!(self.db, |c| sqlx::query_scalar(
            "SELECT task_id FROM session_flags WHERE session_id = $1 ORDER BY task_id"
        )
        .bind(session_id)
        .fetch_all(c)
        .await)?;
        Ok((text.unwrap_or_default(), flagged))
    }

    pub async fn save_notepad(&self, session_id: &str, text: &str) -> Result<(), StoreError> {
        on!(self.db, |c| sqlx::query(
            "INSERT INTO session_notepads (session_id, text, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (session_id) DO UPDATE SET text = excluded.text, updated_at = excluded.updated_at",
        )
        .bind(session_id)
        .bind(text)
        .bind(Utc::now())
        .execute(c)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    pub async fn set_flag(&self, session_id: &str, task_id: &str, flagged: bool) -> Result<(), StoreError> {
        let statement = if flagged {
            "INSERT INTO session_flags (session_id, task_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM session_flags WHERE session_id = $1 AND task_id = $2"
        };
        on!(self.db, |c| sqlx::query(statement)
            .bind(session_id)
            .bind(task_id)
            .execute(c)
            .await
            .map(|_| ()))?;
        Ok(())
    }
}
