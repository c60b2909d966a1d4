//! The practice session as pages see it: the view types, the server functions the dashboard, the
//! practice page and the admin page call, and the [`ssr::Practice`] trait the server implements
//! over its session domain. Each server function takes the implementation from context, hands it
//! the request's headers (it authorises inside) and returns what it answers.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// The learner's live session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionView {
    pub id: String,
    /// `provisioning` or `started`.
    pub status: String,
    /// When it started, for people ("15:32 UTC").
    pub started: String,
    /// When it ends, in milliseconds since the epoch on the server's clock.
    pub expires_at_ms: i64,
    /// The server's clock when it answered: the countdown runs from `expires_at_ms - server_time_ms`.
    pub server_time_ms: i64,
    /// Whether its one extension has been used.
    pub extended: bool,
    /// A mock exam: its own tasks, no Check, no extension.
    pub exam: bool,
}

impl SessionView {
    pub fn is_started(&self) -> bool {
        self.status == "started"
    }

    /// Milliseconds left when the server answered.
    pub fn millis_left(&self) -> i64 {
        self.expires_at_ms - self.server_time_ms
    }
}

/// A session that is over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PastSession {
    pub id: String,
    /// `ended`, `timeout` or `failed`.
    pub status: String,
    /// When it started ("25 Nov 2026, 15:32 UTC").
    pub started: String,
    /// How long it lasted ("42 min"), when it ended cleanly enough to know.
    pub length: Option<String>,
}

/// A task in the list beside the terminal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSummary {
    pub id: String,
    pub title: String,
    pub domain: String,
    /// `easy`, `medium` or `hard`.
    pub difficulty: String,
    pub weight: u32,
    pub minutes: u32,
}

/// A task's text, rendered from Markdown and sanitized by the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskText {
    pub id: String,
    pub body_html: String,
}

/// One check of a task after grading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    pub description: String,
    pub passed: bool,
    /// Why it failed; `None` when it passed.
    pub reason: Option<String>,
}

/// A live session as an administrator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveSession {
    pub id: String,
    /// Whose it is (their email when known).
    pub user: String,
    pub status: String,
    pub started: String,
    /// Minutes until it expires (0 when due).
    pub minutes_left: i64,
    pub extended: bool,
}

/// The host's sessions and how many more it can take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminOverview {
    pub live: Vec<LiveSession>,
    /// `MAX_CONCURRENT_SESSIONS`.
    pub capacity: usize,
}

#[cfg(feature = "ssr")]
pub mod ssr {
    //! What the server implements for these pages.
    use http::HeaderMap;

    use super::{AdminOverview, CheckResult, PastSession, SessionView, TaskSummary, TaskText};
    use crate::account::ssr::Refusal;

    /// Every method that takes the request's headers finds the signed-in user in them and refuses
    /// (401) without one; the admin methods also refuse (403) anyone not an administrator.
    #[async_trait::async_trait]
    pub trait Practice: Send + Sync {
        async fn current_session(&self, headers: &HeaderMap) -> Result<Option<SessionView>, Refusal>;
        async fn past_sessions(&self, headers: &HeaderMap) -> Result<Vec<PastSession>, Refusal>;
        /// Records a session and provisions it in the background; answers while it is `provisioning`.
        async fn start_session(&self, headers: &HeaderMap) -> Result<SessionView, Refusal>;
        async fn extend_session(&self, headers: &HeaderMap) -> Result<SessionView, Refusal>;
        async fn stop_session(&self, headers: &HeaderMap) -> Result<(), Refusal>;
        async fn list_tasks(&self, headers: &HeaderMap) -> Result<Vec<TaskSummary>, Refusal>;
        async fn read_task(&self, headers: &HeaderMap, task_id: &str) -> Result<TaskText, Refusal>;
        /// Grades the task against the user's started session.
        async fn check_task(&self, headers: &HeaderMap, task_id: &str) -> Result<Vec<CheckResult>, Refusal>;
        async fn list_live_sessions(&self, headers: &HeaderMap) -> Result<AdminOverview, Refusal>;
        async fn terminate_session(&self, headers: &HeaderMap, session_id: &str) -> Result<(), Refusal>;
    }
}

#[cfg(feature = "ssr")]
fn practice() -> Result<std::sync::Arc<dyn ssr::Practice>, ServerFnError> {
    use_context::<std::sync::Arc<dyn ssr::Practice>>()
        .ok_or_else(|| ServerFnError::new("practice sessions are not available"))
}

/// Calls the server's [`ssr::Practice`] with the request's headers; a refusal answers with its
/// status and sentence.
#[cfg(feature = "ssr")]
macro_rules! ask {
    ($method:ident $(, $arg:expr)*) => {
        practice()?
            .$method(&crate::account::server::headers() $(, $arg)*)
            .await
            .map_err(crate::account::server::refuse)
    };
}

#[server(prefix = "/api/pages")]
pub async fn current_session() -> Result<Option<SessionView>, ServerFnError> {
    ask!(current_session)
}

#[server(prefix = "/api/pages")]
pub async fn past_sessions() -> Result<Vec<PastSession>, ServerFnError> {
    ask!(past_sessions)
}

#[server(prefix = "/api/pages")]
pub async fn start_session() -> Result<SessionView, ServerFnError> {
    ask!(start_session)
}

#[server(prefix = "/api/pages")]
pub async fn extend_session() -> Result<SessionView, ServerFnError> {
    ask!(extend_session)
}

#[server(prefix = "/api/pages")]
pub async fn stop_session() -> Result<(), ServerFnError> {
    ask!(stop_session)
}

#[server(prefix = "/api/pages")]
pub async fn list_tasks() -> Result<Vec<TaskSummary>, ServerFnError> {
    ask!(list_tasks)
}

#[server(prefix = "/api/pages")]
pub async fn read_task(task_id: String) -> Result<TaskText, ServerFnError> {
    ask!(read_task, &task_id)
}

#[server(prefix = "/api/pages")]
pub async fn check_task(task_id: String) -> Result<Vec<CheckResult>, ServerFnError> {
    ask!(check_task, &task_id)
}

#[server(prefix = "/api/pages")]
pub async fn list_live_sessions() -> Result<AdminOverview, ServerFnError> {
    ask!(list_live_sessions)
}

#[server(prefix = "/api/pages")]
pub async fn terminate_session(session_id: String) -> Result<(), ServerFnError> {
    ask!(terminate_session, &session_id)
}
