//! `session_notepads` and `session_flags`: the learner's notepad and review flags, per session.

use chrono::Utc;

use super::{Store, StoreError};

impl Store {
    /// The session's notepad ("" when never written) and its flagged tasks, in task-id order.
    pub async fn desk(&self, session_id: &str) -> Result<(String, Vec<String>), StoreError> {
        let text: Option<String> =
            sqlx::query_scalar("SELECT text FROM session_notepads WHERE session_id = ?")
                .bind(session_id)
                .fetch_optional(&self.pool)
                .await?;
        let flagged =
            sqlx::query_scalar("SELECT task_id FROM session_flags WHERE session_id = ? ORDER BY task_id")
                .bind(session_id)
                .fetch_all(&self.pool)
                .await?;
        Ok((text.unwrap_or_default(), flagged))
    }

    pub async fn save_notepad(&self, session_id: &str, text: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO session_notepads (session_id, text, updated_at) VALUES (?, ?, ?)
             ON CONFLICT (session_id) DO UPDATE SET text = excluded.text, updated_at = excluded.updated_at",
        )
        .bind(session_id)
        .bind(text)
        .bind(Utc::now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn set_flag(&self, session_id: &str, task_id: &str, flagged: bool) -> Result<(), StoreError> {
        let statement = if flagged {
            "INSERT OR IGNORE INTO session_flags (session_id, task_id) VALUES (?, ?)"
        } else {
            "DELETE FROM session_flags WHERE session_id = ? AND task_id = ?"
        };
        sqlx::query(statement)
            .bind(session_id)
            .bind(task_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
