//! What the server implements for the pages' server functions. Every method that takes the
//! request's headers finds the signed-in user in them and refuses (401) without one; the admin
//! methods also refuse (403) anyone not an administrator. Answers are the wire types of
//! [`crate::api`]; a refusal carries the HTTP status and a sentence for the person.

use http::{HeaderMap, HeaderValue, StatusCode};

use crate::api::{
    AccessStatus, AdminOverview, CheckReport, CheckoutStarted, ExamSummary, GradedExam, PassView, Plans,
    SessionView, TaskDetail, TaskSummary, UserView,
};

/// Why a request was turned down: the HTTP status, and a sentence for the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub message: String,
}

/// The outcome of a sign-in: who, and the cookies that keep them signed in.
pub struct SignedIn {
    pub user: UserView,
    pub cookies: Vec<HeaderValue>,
}

#[async_trait::async_trait]
pub trait Accounts: Send + Sync {
    /// The user the request signs in, if any.
    async fn current_user(&self, headers: &HeaderMap) -> Option<UserView>;
    async fn request_code(&self, email: &str) -> Result<(), Refusal>;
    async fn verify_code(&self, email: &str, code: &str) -> Result<SignedIn, Refusal>;
    async fn log_in(&self, email: &str, password: &str) -> Result<SignedIn, Refusal>;
    /// Checks the password's length and mails a code; nobody is signed in yet.
    async fn register(&self, email: &str, password: &str) -> Result<(), Refusal>;
    /// Sets the password with the mailed code (a registration's end, or a reset) and signs in.
    async fn set_password(
        &self,
        email: &str,
        code: &str,
        password: &str,
        name: &str,
    ) -> Result<SignedIn, Refusal>;
    /// Ends every sign-in of the request's user; returns the cookies that clear this one.
    async fn sign_out_everywhere(&self, headers: &HeaderMap) -> Result<Vec<HeaderValue>, Refusal>;
    /// Ends the request's sign-in; returns the cookies that clear it.
    async fn sign_out(&self, headers: &HeaderMap) -> Vec<HeaderValue>;
}

#[async_trait::async_trait]
pub trait Practice: Send + Sync {
    async fn current_session(&self, headers: &HeaderMap) -> Result<Option<SessionView>, Refusal>;
    async fn past_sessions(&self, headers: &HeaderMap) -> Result<Vec<SessionView>, Refusal>;
    /// Records a session and provisions it in the background; answers while it is `provisioning`.
    async fn start_session(&self, headers: &HeaderMap) -> Result<SessionView, Refusal>;
    async fn extend_session(&self, headers: &HeaderMap) -> Result<SessionView, Refusal>;
    async fn stop_session(&self, headers: &HeaderMap) -> Result<(), Refusal>;
    /// Every task, or during a mock exam the exam's, in its order.
    async fn list_tasks(&self, headers: &HeaderMap) -> Result<Vec<TaskSummary>, Refusal>;
    async fn read_task(&self, headers: &HeaderMap, task_id: &str) -> Result<TaskDetail, Refusal>;
    /// Grades the task against the user's started session.
    async fn check_task(&self, headers: &HeaderMap, task_id: &str) -> Result<CheckReport, Refusal>;
    async fn list_live_sessions(&self, headers: &HeaderMap) -> Result<AdminOverview, Refusal>;
    async fn terminate_session(&self, headers: &HeaderMap, session_id: &str) -> Result<(), Refusal>;
}

#[async_trait::async_trait]
pub trait ExamPages: Send + Sync {
    async fn exams(&self, headers: &HeaderMap) -> Result<Vec<ExamSummary>, Refusal>;
    async fn start(&self, headers: &HeaderMap, exam_id: &str) -> Result<(), Refusal>;
    /// The learner's graded exams, newest first, without solutions.
    async fn results(&self, headers: &HeaderMap) -> Result<Vec<GradedExam>, Refusal>;
    /// One graded exam with every task's reference solution.
    async fn result(&self, headers: &HeaderMap, session_id: &str) -> Result<GradedExam, Refusal>;
}

#[async_trait::async_trait]
pub trait BillingPages: Send + Sync {
    /// The plans, and whether payments are on (no sign-in needed).
    async fn plans(&self) -> Result<Plans, Refusal>;
    async fn access_status(&self, headers: &HeaderMap) -> Result<AccessStatus, Refusal>;
    async fn activate_pass(&self, headers: &HeaderMap, pass_id: &str) -> Result<PassView, Refusal>;
    /// A Stripe Checkout Session for the plan; the page sends the browser to its URL.
    async fn start_checkout(&self, headers: &HeaderMap, plan: &str) -> Result<CheckoutStarted, Refusal>;
    /// The user's pass bought by that Checkout Session, once its webhook has arrived.
    async fn checkout_pass(
        &self,
        headers: &HeaderMap,
        checkout_session: &str,
    ) -> Result<Option<PassView>, Refusal>;
}
