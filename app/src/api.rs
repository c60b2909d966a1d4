//! Every value that crosses the wire, defined once: the JSON API answers with these, the server
//! functions return them and the hydrated pages read them (events included). Serde both ways;
//! enums cross as their serde names, which are also their `as_str` names.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where a session is in its life. Stored, shown and sent under these lowercase names.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    ToSchema,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum SessionStatus {
    Provisioning,
    Started,
    Ended,
    Timeout,
    Failed,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Whether the session still owns (or is acquiring) a cluster and a terminal.
    pub fn is_live(self) -> bool {
        matches!(self, Self::Provisioning | Self::Started)
    }
}

/// Read back from the database's text column.
impl TryFrom<String> for SessionStatus {
    type Error = strum::ParseError;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        name.parse()
    }
}

/// A session as its learner sees it. `server_time` lets a page count down from the server's
/// clock, whatever the browser's says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SessionView {
    pub id: String,
    pub status: SessionStatus,
    pub started_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    /// Whether its one extension has been used.
    pub extended: bool,
    /// The mock exam this session is (its own tasks, no Check, no extension); `None` for practice.
    pub exam: Option<String>,
    pub server_time: DateTime<Utc>,
}

impl SessionView {
    pub fn is_started(&self) -> bool {
        self.status == SessionStatus::Started
    }

    pub fn is_exam(&self) -> bool {
        self.exam.is_some()
    }

    /// Milliseconds left when the server answered.
    pub fn millis_left(&self) -> i64 {
        (self.expires_at - self.server_time).num_milliseconds()
    }

    /// "15:32 UTC"
    pub fn started_time(&self) -> String {
        self.started_at.format("%H:%M UTC").to_string()
    }

    /// "25 Nov 2026, 15:32 UTC"
    pub fn started_day(&self) -> String {
        self.started_at.format("%-d %b %Y, %H:%M UTC").to_string()
    }

    /// "42 min", once it has ended.
    pub fn length(&self) -> Option<String> {
        self.ended_at
            .map(|end| format!("{} min", (end - self.started_at).num_minutes().max(0)))
    }
}

/// The steps of a start, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, strum::IntoStaticStr)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Step {
    Cluster,
    Tasks,
    Terminal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, strum::IntoStaticStr)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum StepState {
    Running,
    Done,
}

/// What happens to a user's session, pushed to their open pages (`GET /api/session/events`): the
/// SSE event's name is the JSON's `type`.
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, strum::IntoStaticStr, strum::VariantNames,
)]
#[serde(tag = "type", rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum SessionEvent {
    Progress { step: Step, state: StepState },
    Started { session: SessionView },
    Failed { message: String },
    Warning { minutes_left: u32 },
    Extended { session: SessionView },
    Ended { status: SessionStatus, message: String },
}

impl SessionEvent {
    /// The SSE event name: the same as the JSON's `type`.
    pub fn name(&self) -> &'static str {
        self.into()
    }
}

/// Live sessions and capacity, for admins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SessionStats {
    pub live: usize,
    /// `MAX_CONCURRENT_SESSIONS`.
    pub capacity: usize,
    pub by_status: Vec<(SessionStatus, i64)>,
    pub pool: PoolView,
}

/// The warm pool of clusters made ahead, for admins.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PoolView {
    /// `WARM_POOL_SIZE`: members kept ready.
    pub size: usize,
    /// Members that a start would claim now.
    pub ready: usize,
    /// Members being made.
    pub filling: usize,
    /// Why the last refill failed, while it does.
    pub failure: Option<String>,
}

/// A session as an admin sees it: whose, and what it runs on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AdminSession {
    #[serde(flatten)]
    pub session: SessionView,
    pub user_id: String,
    /// The user's email, when they still exist.
    #[serde(default)]
    pub email: Option<String>,
    pub cluster: String,
    pub terminal: Option<String>,
    pub notes: String,
}

impl AdminSession {
    /// Whose it is: their email, or their id once they are gone.
    pub fn who(&self) -> &str {
        self.email.as_deref().unwrap_or(&self.user_id)
    }

    /// Whole minutes until it expires (0 when due).
    pub fn minutes_left(&self) -> i64 {
        (self.session.millis_left() / 60_000).max(0)
    }
}

/// The host's live sessions and how many it can take, for the admin page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AdminOverview {
    pub live: Vec<AdminSession>,
    pub capacity: usize,
    pub pool: PoolView,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StatusAnswer {
    pub id: String,
    pub status: SessionStatus,
}

/// Where a session's parts are: its cluster's API (on the host), its terminal and the Docker
/// network they share, as the cluster provider names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Routing {
    pub cluster: String,
    pub api_endpoint: Option<String>,
    pub terminal: Option<String>,
    pub network: String,
}

/// The host ports a session's cluster publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Ports {
    pub api: u16,
    pub ingress: u16,
    pub ingress_https: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, strum::IntoStaticStr)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Difficulty {
    Easy,
    Medium,
    Hard,
}

/// A task in the list beside the terminal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TaskSummary {
    pub id: String,
    pub title: String,
    /// The CKAD curriculum domain, by its full name.
    pub domain: String,
    pub difficulty: Difficulty,
    /// Points in an exam.
    pub weight: u32,
    /// How long a prepared learner needs.
    pub minutes: u32,
    /// The host an exam's task is solved on (`ssh <host>` in the terminal); none in practice
    /// and in exams without hosts.
    #[serde(default)]
    pub host: Option<String>,
}

/// A task with its text and hints, rendered from Markdown and sanitized by the server; never its
/// checks or its solution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TaskDetail {
    #[serde(flatten)]
    pub summary: TaskSummary,
    pub body_html: String,
    /// Hints in the order to reveal them.
    pub hints_html: Vec<String>,
}

/// One check of a task after grading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckResult {
    pub description: String,
    pub passed: bool,
    /// Why it failed (what was found, never what was expected); `None` when it passed.
    pub reason: Option<String>,
    /// What the check is worth when it passes; 0 for a guard.
    #[serde(default)]
    pub points: u32,
    /// A guard ("left as set up", "not allowed") is worth nothing, and when it fails the task
    /// scores nothing.
    #[serde(default)]
    pub guard: bool,
}

/// A task's Check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckReport {
    pub task: String,
    pub passed: bool,
    pub checks: Vec<CheckResult>,
}

/// Who may take an exam: everyone, or holders of an access pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    Free,
    Pass,
}

/// The certification an exam rehearses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExamType {
    Ckad,
    Cka,
    Cks,
    Docker,
    Helm,
}

/// A short mock exam (a taste, open to visitors' browsing) or a full-length one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExamCategory {
    Mock,
    Full,
}

/// An exam as a learner sees it before taking it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ExamSummary {
    pub id: String,
    pub title: String,
    #[serde(rename = "type")]
    pub exam_type: ExamType,
    pub category: ExamCategory,
    pub minutes: u32,
    pub tasks: usize,
    pub max_score: u32,
    pub access: Access,
    /// The share of the points that passes, in percent.
    pub pass_percent: u32,
    /// Open to every signed-in learner (`access` is `free`).
    pub is_free: bool,
    /// Whether this learner may take it now (never for a visitor who is not signed in).
    pub allowed: bool,
}

/// One task of a graded exam.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GradedTask {
    pub task: String,
    pub title: String,
    /// The task's curriculum domain (empty in results kept before domains were recorded).
    #[serde(default)]
    pub domain: String,
    pub weight: u32,
    /// The weight times the share of checks passed, rounded.
    pub points: u32,
    pub checks: Vec<CheckResult>,
}

/// The points of one curriculum domain in a graded exam.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DomainScore {
    pub domain: String,
    pub points: u32,
    pub weight: u32,
}

/// A graded exam, as kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ExamResult {
    pub session_id: String,
    pub exam_id: String,
    pub score: u32,
    pub max_score: u32,
    pub graded_at: DateTime<Utc>,
    pub tasks: Vec<GradedTask>,
}

/// A task's reference solution, handed out once an exam is graded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Solution {
    pub id: String,
    /// Commands to type into the terminal, in order.
    pub script: String,
    /// The same, rendered as a code block.
    pub html: String,
}

/// A graded exam as its learner sees it: with the exam's title and, when one result is asked
/// for, each task's reference solution (empty in the list of results).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GradedExam {
    #[serde(flatten)]
    pub result: ExamResult,
    pub title: String,
    /// The exam's pass line, in percent of its points, and whether the score reached it.
    pub pass_percent: u32,
    pub passed: bool,
    /// Points earned and available per curriculum domain, in the order the tasks come.
    pub domains: Vec<DomainScore>,
    pub solutions: Vec<Solution>,
}

impl GradedExam {
    /// "25 Nov 2026, 15:32 UTC"
    pub fn graded_day(&self) -> String {
        self.result.graded_at.format("%-d %b %Y, %H:%M UTC").to_string()
    }

    pub fn solution_of(&self, task: &str) -> Option<&Solution> {
        self.solutions.iter().find(|s| s.id == task)
    }
}

/// The signed-in user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub name: String,
}

impl UserView {
    pub fn display_name(&self) -> &str {
        if self.name.is_empty() {
            &self.email
        } else {
            &self.name
        }
    }
}

/// `POST /api/auth/email/otp`, and the email in the other sign-in bodies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EmailBody {
    pub email: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CodeBody {
    pub email: String,
    pub code: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RegisterBody {
    pub email: String,
    pub password: String,
    #[serde(default)]
    pub name: String,
}

/// `POST /api/auth/password`: a password set with the code mailed to the email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PasswordBody {
    pub email: String,
    pub code: String,
    pub password: String,
    /// Used when the account is new.
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LoginBody {
    pub email: String,
    pub password: String,
}

/// API clients send the refresh token in the body; browsers send none (the cookie has it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RefreshBody {
    pub refresh_token: Option<String>,
}

/// The answer to a code request: always the same, known email or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CodeSent {
    /// `sent`
    pub status: String,
}

/// The answer to a sign-in, for API clients (browsers get the same tokens as cookies).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SignInAnswer {
    pub user: UserView,
    pub access_token: String,
    /// `Bearer`
    pub token_type: String,
    /// Seconds the access token lives.
    pub expires_in: i64,
    pub refresh_token: String,
}

/// A single-use ticket to open the terminal socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TerminalTicket {
    pub ticket: String,
    /// Seconds it stays valid.
    pub expires_in: u64,
}

/// The largest message (and frame) the terminal socket takes from a client: a bigger paste is
/// sent in pieces of this size, and a bigger message closes the socket.
pub const TERMINAL_MESSAGE_LIMIT: usize = 64 * 1024;

/// The most shells a session's terminal page opens side by side (its tabs), as the real exam
/// allows several terminals; `/ws/terminal?tab=N` attaches to shell N, from 1.
pub const TERMINAL_TABS: u8 = 3;

/// A text frame from the terminal's client: the rest of the socket is the keys, as bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum TerminalControl {
    Resize {
        cols: u16,
        rows: u16,
    },
    /// Answered with [`TerminalNotice::Pong`].
    Ping,
    /// A chapter in the session's recording: the learner switched task or pressed Check.
    Marker {
        label: String,
    },
    /// This socket's tab is the one in front: the session's recording follows its screen.
    Front,
}

/// A text frame from the server's end of the terminal socket; the rest is the screen, as bytes.
/// The server sends one of the ends just before it closes the socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TerminalNotice {
    Pong,
    /// The session is over: the client does not reconnect.
    SessionEnded {
        message: String,
    },
    /// The user signed out: the client does not reconnect.
    SignedOut {
        message: String,
    },
    /// The server is restarting: the client reconnects.
    ServerShutdown {
        message: String,
    },
}

/// The most characters a session's notepad keeps.
pub const NOTEPAD_LIMIT: usize = 20_000;

/// What the learner keeps beside their live session (`GET /api/desk`): the notepad and the tasks
/// flagged for review, by id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeskView {
    pub notepad: String,
    pub flagged: Vec<String>,
}

/// `PUT /api/desk/notepad`: the notepad's whole text, saved as the learner types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NotepadText {
    pub text: String,
}

/// `PUT /api/desk/flags/{task}`: whether the task is flagged for review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TaskFlag {
    pub flagged: bool,
}

/// The first line of a terminal recording: an asciicast v2 file, as `GET /api/replays/{session}`
/// serves it and asciinema-player plays it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CastHeader {
    /// 2
    pub version: u8,
    pub width: u16,
    pub height: u16,
    /// Unix seconds when the recording started.
    pub timestamp: u64,
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
}

/// Every further line of a recording: seconds since its start, what happened (`"o"` output,
/// `"r"` a resize to `"COLSxROWS"`, `"m"` a marker, which the player shows as a chapter) and its
/// text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CastEvent(pub f64, pub String, pub String);

/// Where an access pass is in its life: bought or granted (`unused`), `active` from its
/// activation until it expires (`expired`), or taken back (`revoked`: a refund, a dispute, an
/// admin).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, strum::IntoStaticStr)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum PassStatus {
    Unused,
    Active,
    Expired,
    Revoked,
}

/// A plan on the pricing page: a pass type. The free trial (no duration) opens the mock exams
/// only and is not sold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PlanView {
    pub id: String,
    pub name: String,
    pub price_cents: u32,
    /// ISO 4217, lower case (`usd`).
    pub currency: String,
    /// How long the pass lasts once activated; 0 for the free trial.
    pub hours: u32,
}

impl PlanView {
    pub fn is_free(&self) -> bool {
        self.hours == 0
    }

    /// "$4.99" (other currencies by their code: "4.99 EUR").
    pub fn price_text(&self) -> String {
        let amount = format!("{}.{:02}", self.price_cents / 100, self.price_cents % 100);
        match self.currency.as_str() {
            "usd" => format!("${amount}"),
            other => format!("{amount} {}", other.to_uppercase()),
        }
    }

    /// "38 hours", "1 week", "2 weeks", "Mock exams only".
    pub fn duration_text(&self) -> String {
        match self.hours {
            0 => "Mock exams only".into(),
            h if h % 168 == 0 && h / 168 == 1 => "1 week".into(),
            h if h % 168 == 0 => format!("{} weeks", h / 168),
            h if h % 24 == 0 && h / 24 == 1 => "1 day".into(),
            h if h % 24 == 0 => format!("{} days", h / 24),
            h => format!("{h} hours"),
        }
    }
}

/// `GET /api/v1/billing/plans`: the plans, and whether they can be bought on this site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Plans {
    /// False when the operator has not set up Stripe: the plans are shown, nothing is sold.
    pub billing_enabled: bool,
    pub plans: Vec<PlanView>,
}

/// `POST /api/v1/billing/checkout`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckoutBody {
    /// A plan's id.
    pub plan: String,
}

/// A Stripe Checkout Session made for the learner: the browser goes to `url`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckoutStarted {
    pub id: String,
    pub url: String,
}

/// A pass a learner holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PassView {
    pub id: String,
    pub plan: String,
    pub name: String,
    pub hours: u32,
    pub status: PassStatus,
    pub created_at: DateTime<Utc>,
    pub activated_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The Stripe Checkout Session that paid for it, if one did.
    pub checkout_session: Option<String>,
}

/// `GET /api/v1/access/status`: whether full exams are open to the learner now, by which pass
/// and until when (`server_time` to count down from the server's clock; the count is cosmetic,
/// the server checks on every start).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AccessStatus {
    pub full_access: bool,
    pub active: Option<PassView>,
    /// Passes bought or granted and not yet activated.
    pub unused: Vec<PassView>,
    pub server_time: DateTime<Utc>,
}

impl AccessStatus {
    /// Milliseconds the active pass has left when the server answered.
    pub fn millis_left(&self) -> Option<i64> {
        let expires = self.active.as_ref()?.expires_at?;
        Some((expires - self.server_time).num_milliseconds().max(0))
    }
}

/// `POST /api/v1/access/grant` (admins): a pass of `plan` for the user with `email`, unused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GrantBody {
    pub email: String,
    pub plan: String,
}

/// What the webhook answers Stripe: received, and whether it had been processed before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WebhookReceipt {
    pub received: bool,
    pub duplicate: bool,
}

/// An error as a client sees it: a sentence a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_cross_as_json_with_their_type_and_come_back_whole() {
        let progress = SessionEvent::Progress {
            step: Step::Cluster,
            state: StepState::Done,
        };
        let json = serde_json::to_value(&progress).unwrap();
        assert_eq!(
            json,
            serde_json::json!({ "type": "progress", "step": "cluster", "state": "done" })
        );
        assert_eq!(progress.name(), "progress");
        assert_eq!(serde_json::from_value::<SessionEvent>(json).unwrap(), progress);
        let ended: SessionEvent =
            serde_json::from_str(r#"{"type":"ended","status":"timeout","message":"time is up"}"#).unwrap();
        assert_eq!(
            ended,
            SessionEvent::Ended {
                status: SessionStatus::Timeout,
                message: "time is up".into()
            }
        );
        assert!(serde_json::from_str::<SessionEvent>(r#"{"type":"other"}"#).is_err());
        assert!(<SessionEvent as strum::VariantNames>::VARIANTS.contains(&"warning"));
    }

    #[test]
    fn plans_read_as_prices_and_durations() {
        let plan = |price_cents, currency: &str, hours| PlanView {
            id: "p".into(),
            name: "P".into(),
            price_cents,
            currency: currency.into(),
            hours,
        };
        let read = |p: PlanView| (p.price_text(), p.duration_text());
        assert_eq!(read(plan(499, "usd", 38)), ("$4.99".into(), "38 hours".into()));
        assert_eq!(read(plan(1999, "usd", 168)), ("$19.99".into(), "1 week".into()));
        assert_eq!(read(plan(2999, "usd", 336)), ("$29.99".into(), "2 weeks".into()));
        assert_eq!(
            read(plan(0, "usd", 0)),
            ("$0.00".into(), "Mock exams only".into())
        );
        assert_eq!(read(plan(1005, "eur", 48)), ("10.05 EUR".into(), "2 days".into()));
        assert!(plan(0, "usd", 0).is_free());
    }

    #[test]
    fn a_status_has_one_name_everywhere() {
        for status in [
            SessionStatus::Provisioning,
            SessionStatus::Started,
            SessionStatus::Ended,
            SessionStatus::Timeout,
            SessionStatus::Failed,
        ] {
            let json = serde_json::to_value(status).unwrap();
            assert_eq!(json, status.as_str());
            assert_eq!(SessionStatus::try_from(status.as_str().to_owned()), Ok(status));
        }
        assert!(SessionStatus::try_from("Started".to_owned()).is_err());
    }
}
