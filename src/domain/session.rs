//! A practice session as the platform records it: one row per session, written before any side
//! effect is made so that a crash at any point can be repaired from it.

use chrono::{DateTime, Utc};

use super::SessionStatus;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Session {
    pub id: String,
    pub user_id: String,
    #[sqlx(try_from = "String")]
    pub status: SessionStatus,
    pub start_time: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub end_time: Option<DateTime<Utc>>,
    pub cluster_name: String,
    pub kubeconfig_path: Option<String>,
    pub terminal_container_id: Option<String>,
    pub extended: bool,
    pub notes: String,
    /// The exam this session is; `None` for practice.
    pub exam_id: Option<String>,
    /// Since when it is being removed (it stays live until its removal is recorded).
    pub ending_since: Option<DateTime<Utc>>,
}

/// The session as its learner sees it, stamped with the server's clock now.
impl From<&Session> for app::api::SessionView {
    fn from(session: &Session) -> Self {
        Self {
            id: session.id.clone(),
            status: session.status,
            started_at: session.start_time,
            expires_at: session.expires_at,
            ended_at: session.end_time,
            extended: session.extended,
            exam: session.exam_id.clone(),
            server_time: Utc::now(),
        }
    }
}
