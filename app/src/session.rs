//! The server functions the dashboard, the practice page and the admin page call. Each takes the
//! server's [`crate::ports::Practice`] from context, hands it the request's headers (it
//! authorises inside) and returns what it answers.

use crate::api::{AdminOverview, CheckReport, SessionView, TaskDetail, TaskSummary};
use leptos::prelude::*;

#[cfg(feature = "ssr")]
fn practice() -> Result<std::sync::Arc<dyn crate::ports::Practice>, ServerFnError> {
    use_context::<std::sync::Arc<dyn crate::ports::Practice>>()
        .ok_or_else(|| ServerFnError::new("practice sessions are not available"))
}

/// Calls the server's [`crate::ports::Practice`] with the request's headers; a refusal answers with its
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
pub async fn past_sessions() -> Result<Vec<SessionView>, ServerFnError> {
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
pub async fn read_task(task_id: String) -> Result<TaskDetail, ServerFnError> {
    ask!(read_task, &task_id)
}

#[server(prefix = "/api/pages")]
pub async fn check_task(task_id: String) -> Result<CheckReport, ServerFnError> {
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
