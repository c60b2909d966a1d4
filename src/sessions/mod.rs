//! A practice session's life: recorded before anything is made, then its cluster, the tasks'
//! setup, its terminal, then `started`; destroyed in the reverse order by whoever ends it first
//! (the user, the clock, an admin). Any failure on the way rolls back what was made and leaves the
//! row `failed` with the reason. Each step is pushed to the user's pages as it happens. With a
//! warm pool (see [`pool`]) the start claims a cluster and terminal made ahead instead.
//!
//! An exam with hosts gets a cluster per host, made side by side and recorded with the session
//! before any is made (the first host's is the session's own); each task is set up and graded on
//! its host's cluster, and the terminal reaches them all through `ssh <host>`.

mod clock;
mod events;
mod pool;
mod queries;

use std::{borrow::Cow, path::PathBuf, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use app::api::{SessionEvent, SessionStats, Step, StepState};
pub use events::SessionEvents;
pub use pool::PoolSettings;

use crate::{
    clusters::{Cluster, ClusterError, ClusterName, ClusterProvider, ClusterSpec, Kubeconfig},
    domain::{ExamResult, PortRanges, Session, SessionStatus},
    exams::{self, Exam, ExamAccess, ExamCatalog, ExamTargets},
    metrics::PoolMetrics,
    store::{bound_on_host, NewSession, Store, StoreError},
    tasks::{CheckResult, Target, Task, TaskCatalog},
    terminals::{
        CloseReason, TerminalAccess, TerminalError, TerminalFiles, TerminalHost, TerminalRuntime,
        TerminalSpec,
    },
};

/// How many starts a user may make in an hour (the first seed's limit).
pub const STARTS_PER_HOUR: usize = 3;
/// An extension adds this much, once.
pub const EXTENSION: Duration = Duration::from_secs(30 * 60);

#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// `SESSION_TTL_MINUTES`: how long a session lives before its extension.
    pub ttl: Duration,
    /// `MAX_CONCURRENT_SESSIONS`: live sessions on this host at most.
    pub max_concurrent: usize,
    /// When the learner is warned, as time left (10, 5 and 1 minutes).
    pub warnings: Vec<Duration>,
    /// How often the sweeper looks for sessions whose time is up (`SWEEP_EVERY_SECS`).
    pub sweep_every: Duration,
    /// The warm pool of clusters made ahead.
    pub pool: PoolSettings,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("you already have a session running")]
    AlreadyRunning,
    #[error("all {0} practice seats are taken; try again in a few minutes")]
    Full(usize),
    #[error("you can start {STARTS_PER_HOUR} sessions an hour; try again later")]
    TooManyStarts { retry_after: Duration },
    #[error("you have no session running")]
    NoSession,
    #[error("your session is still starting")]
    NotStarted,
    #[error("the session was extended already")]
    AlreadyExtended,
    #[error("there is no task {0}")]
    UnknownTask(String),
    #[error("there is no exam {0}")]
    UnknownExam(String),
    #[error("this exam needs an access pass")]
    NoAccess,
    #[error("{0} during an exam")]
    ExamRules(&'static str),
    #[error("the cluster could not start: {0}")]
    Cluster(#[from] ClusterError),
    #[error("the tasks could not be set up: {0}")]
    Tasks(#[from] crate::tasks::TaskError),
    #[error("the terminal could not start: {0}")]
    Terminal(#[from] TerminalError),
    #[error("the session's files: {0}")]
    Files(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Clone)]
pub struct Sessions {
    store: Store,
    clusters: Arc<dyn ClusterProvider>,
    terminals: Arc<dyn TerminalRuntime>,
    tasks: Arc<TaskCatalog>,
    exams: Arc<ExamCatalog>,
    access: Arc<dyn ExamAccess>,
    events: SessionEvents,
    settings: Arc<SessionSettings>,
    ports: Arc<PortRanges>,
    /// Each session's admin kubeconfig, private to the platform, for grading.
    files: Arc<PathBuf>,
    /// The server's shutdown: clocks stop watching (sessions outlive the process).
    stopping: CancellationToken,
    /// Starts, ends and clocks running in the background; shutdown waits for them.
    work: tokio_util::task::TaskTracker,
    pool: Arc<pool::PoolState>,
    metrics: PoolMetrics,
}

/// What a `Sessions` is made of.
pub struct SessionParts {
    pub store: Store,
    pub clusters: Arc<dyn ClusterProvider>,
    pub terminals: Arc<dyn TerminalRuntime>,
    /// Events, sockets to close and starts to stop, told to every replica.
    pub events: SessionEvents,
    pub tasks: Arc<TaskCatalog>,
    pub exams: ExamCatalog,
    pub access: Arc<dyn ExamAccess>,
    pub settings: SessionSettings,
    pub ports: PortRanges,
    pub state_dir: PathBuf,
    pub stopping: CancellationToken,
    pub pool_metrics: PoolMetrics,
}

impl Sessions {
    pub fn new(parts: SessionParts) -> std::io::Result<Self> {
        let files = parts.state_dir.join("sessions");
        crate::clusters::create_private_dir(&files)?;
        Ok(Self {
            store: parts.store,
            clusters: parts.clusters,
            terminals: parts.terminals,
            tasks: parts.tasks,
            exams: Arc::new(parts.exams),
            access: parts.access,
            events: parts.events,
            settings: Arc::new(parts.settings),
            ports: Arc::new(parts.ports),
            files: Arc::new(files),
            stopping: parts.stopping,
            work: tokio_util::task::TaskTracker::new(),
            pool: Arc::default(),
            metrics: parts.pool_metrics,
        })
    }

    pub fn subscribe(&self, user_id: &str) -> tokio::sync::broadcast::Receiver<SessionEvent> {
        self.events.subscribe(user_id)
    }

    pub fn tasks(&self) -> &TaskCatalog {
        &self.tasks
    }

    pub fn exams(&self) -> &ExamCatalog {
        &self.exams
    }

    /// Whether the user may take `exam` (the access hook).
    pub async fn may_take(&self, user_id: &str, exam: &Exam) -> Result<bool, SessionError> {
        Ok(self.access.may_take(user_id, exam).await?)
    }

    /// As [`Sessions::begin`], for a mock exam: its tasks only, its time limit, no Check and no
    /// extension, graded when it ends.
    pub async fn begin_exam(&self, user_id: &str, exam_id: &str) -> Result<Session, SessionError> {
        let exam = self
            .exams
            .get(exam_id)
            .ok_or_else(|| SessionError::UnknownExam(exam_id.to_owned()))?;
        if !self.may_take(user_id, exam).await? {
            return Err(SessionError::NoAccess);
        }
        let (session, origin) = self.record(user_id, Some(exam)).await?;
        self.provision_in_background(session.clone(), origin);
        Ok(session)
    }

    /// The user's graded exam of `session_id`.
    pub async fn exam_result(
        &self,
        user_id: &str,
        session_id: &str,
    ) -> Result<Option<ExamResult>, SessionError> {
        Ok(self.store.exam_result(user_id, session_id).await?)
    }

    /// The user's graded exams, newest first.
    pub async fn exam_results(&self, user_id: &str) -> Result<Vec<ExamResult>, SessionError> {
        Ok(self.store.exam_results(user_id).await?)
    }

    fn exam_of(&self, session: &Session) -> Option<&Exam> {
        session.exam_id.as_deref().and_then(|id| self.exams.get(id))
    }

    /// The tasks a session holds: its exam's, with the names chosen for the session (see
    /// [`Task::for_session`]), or all of them as written for practice.
    fn tasks_of(&self, session: &Session) -> Result<Vec<Cow<'_, Task>>, SessionError> {
        match self.exam_of(session) {
            Some(exam) => exam
                .task_ids()
                .filter_map(|id| self.tasks.get(id))
                .map(|task| self.task_in(Some(session), task))
                .collect(),
            None => Ok(self.tasks.list().iter().map(Cow::Borrowed).collect()),
        }
    }

    /// A task as the session has it: in an exam, with the names chosen for the session; in
    /// practice (or with no session), as written.
    pub fn task_in<'t>(
        &self,
        session: Option<&Session>,
        task: &'t Task,
    ) -> Result<Cow<'t, Task>, SessionError> {
        match session.filter(|s| s.exam_id.is_some()) {
            Some(session) => Ok(task.for_session(&session.id)?),
            None => Ok(Cow::Borrowed(task)),
        }
    }

    /// The tasks set up on one of the session's clusters: those of its host, or all of them.
    fn tasks_on(&self, session: &Session, host: Option<&str>) -> Result<Vec<Cow<'_, Task>>, SessionError> {
        let exam = self.exam_of(session);
        let mut tasks = self.tasks_of(session)?;
        if let Some(host) = host {
            tasks.retain(|task| exam.and_then(|e| e.host_of(&task.view().id)) == Some(host));
        }
        Ok(tasks)
    }

    /// The session's clusters, its own first: one, or one per host of its exam.
    async fn clusters_of(&self, session: &Session) -> Result<Vec<SessionCluster>, SessionError> {
        let own = cluster_of(session)?;
        let hosts = self.store.session_hosts(&session.id).await?;
        if hosts.is_empty() {
            return Ok(vec![SessionCluster {
                host: None,
                name: own,
            }]);
        }
        let mut clusters = hosts
            .into_iter()
            .map(|(host, name)| {
                let name = ClusterName::parse(&name)
                    .map_err(|e| StoreError::Corrupt(format!("session {}: {e}", session.id)))?;
                Ok(SessionCluster {
                    host: Some(host),
                    name,
                })
            })
            .collect::<Result<Vec<_>, SessionError>>()?;
        clusters.sort_by_key(|c| c.name != own);
        Ok(clusters)
    }

    /// Every cluster of the session: its own and, for an exam with hosts, each host's.
    pub async fn cluster_names(&self, session: &Session) -> Result<Vec<ClusterName>, SessionError> {
        Ok(self
            .clusters_of(session)
            .await?
            .into_iter()
            .map(|c| c.name)
            .collect())
    }

    /// Checks that the user may start, records the session `provisioning`, and makes it in the
    /// background; returns the recorded session at once. Progress goes to the user's pages.
    pub async fn begin(&self, user_id: &str) -> Result<Session, SessionError> {
        let (session, origin) = self.record(user_id, None).await?;
        self.provision_in_background(session.clone(), origin);
        Ok(session)
    }

    /// Records the session: a practice session on a warm pool member if one is ready (claimed in
    /// the same transaction), else on a cluster to be built.
    async fn record(&self, user_id: &str, exam: Option<&Exam>) -> Result<(Session, Origin), SessionError> {
        if self.store.live_session_for_user(user_id).await?.is_some() {
            return Err(SessionError::AlreadyRunning);
        }
        let hour = chrono::Duration::hours(1);
        let starts = self
            .store
            .session_starts_since(user_id, Utc::now() - hour)
            .await?;
        if starts.len() >= STARTS_PER_HOUR {
            let next = starts[starts.len() - STARTS_PER_HOUR] + hour;
            let retry_after = (next - Utc::now()).to_std().unwrap_or_default();
            return Err(SessionError::TooManyStarts { retry_after });
        }
        let seats = self.settings.max_concurrent;
        let start_time = Utc::now();
        let cold_name = ClusterName::generate();
        let new = NewSession {
            user_id,
            cluster_name: cold_name.as_str(),
            start_time,
            expires_at: start_time + self.ttl(exam),
            exam_id: exam.map(|e| e.id.as_str()),
        };
        let seats_u32 = seats.try_into().unwrap_or(u32::MAX);
        let already_running = |e| match e {
            StoreError::Conflict(_) => SessionError::AlreadyRunning,
            other => other.into(),
        };
        // Members are practice-ready (every task's setup applied ahead); an exam's cluster holds
        // its own tasks' setup only, so an exam is built cold.
        let claimed = match (self.settings.pool.size, exam) {
            (0, _) | (_, Some(_)) => None,
            _ => self
                .store
                .claim_pool_member(new.clone(), seats_u32, self.settings.pool.fresh_since(start_time))
                .await
                .map_err(already_running)?,
        };
        let (session, origin) = match claimed {
            Some(session) => {
                self.metrics.claims.inc();
                self.metrics.ready.dec();
                (session, Origin::Pool)
            }
            None => {
                let session = self
                    .store
                    .insert_session(new, seats_u32)
                    .await
                    .map_err(already_running)?
                    .ok_or(SessionError::Full(seats))?;
                self.metrics.misses.inc();
                (session, Origin::Cold)
            }
        };
        if let Some(exam) = exam.filter(|e| !e.hosts.is_empty()) {
            self.record_hosts(&session, exam).await?;
        }
        tracing::info!(session = %session.id, user = user_id, cluster = %session.cluster_name, ?origin, "session recorded");
        Ok((session, origin))
    }

    /// Records a cluster per host of the exam before any is made: the first host's is the
    /// session's own, each other's is named after it and the host. A session whose hosts cannot
    /// be recorded fails before anything is made.
    async fn record_hosts(&self, session: &Session, exam: &Exam) -> Result<(), SessionError> {
        let recorded = async {
            let names = exam
                .hosts
                .iter()
                .enumerate()
                .map(|(i, host)| match i {
                    0 => Ok(session.cluster_name.clone()),
                    _ => ClusterName::parse(&format!("{}-{host}", session.cluster_name))
                        .map(|name| name.to_string())
                        .map_err(|e| SessionError::Cluster(ClusterError::Unavailable(e.to_string()))),
                })
                .collect::<Result<Vec<_>, _>>()?;
            let pairs: Vec<(&str, &str)> = exam
                .hosts
                .iter()
                .map(String::as_str)
                .zip(names.iter().map(String::as_str))
                .collect();
            self.store.insert_session_hosts(&session.id, &pairs).await?;
            Ok::<_, SessionError>(())
        }
        .await;
        if let Err(error) = &recorded {
            let note = format!("its hosts could not be recorded: {error}");
            if let Err(error) = self
                .store
                .set_session_status(&session.id, SessionStatus::Failed, &note)
                .await
            {
                tracing::error!(session = %session.id, %error, "could not record the failure");
            }
        }
        recorded
    }

    /// A practice session's configured life, or the exam's time limit.
    fn ttl(&self, exam: Option<&Exam>) -> chrono::Duration {
        match exam {
            Some(exam) => chrono::Duration::minutes(exam.minutes.into()),
            None => chrono::Duration::from_std(self.settings.ttl).unwrap_or(chrono::Duration::hours(1)),
        }
    }

    fn provision_in_background(&self, session: Session, origin: Origin) {
        let this = self.clone();
        self.work
            .spawn(async move { this.provision_or_roll_back(session, origin).await });
    }

    async fn provision_or_roll_back(&self, session: Session, origin: Origin) {
        let started = std::time::Instant::now();
        // A stop, on any replica, cancels the start, which stops making what nobody wants any
        // more (a `kwokctl` or `kind` create is killed) and rolls back at once.
        let start = self.events.starting(&session.id);
        let provisioned = self.provision(&session, origin, &start.stop).await;
        drop(start);
        // The pool refills once the start that took its member is done, never competing with it.
        if origin == Origin::Pool {
            self.pool.wake.notify_one();
        }
        match provisioned {
            Ok(started_session) => {
                let elapsed_ms = started.elapsed().as_millis() as u64;
                tracing::info!(session = %session.id, elapsed_ms, ?origin, "session started");
                self.events
                    .publish(
                        &session.user_id,
                        SessionEvent::Started {
                            session: (&started_session).into(),
                        },
                    )
                    .await;
                clock::watch(self.clone(), started_session);
            }
            // Stopped while it was being made: the stop has told the pages; what was made goes.
            Err(SessionError::NoSession) => {
                self.destroy(&session, SessionStatus::Ended, "stopped while starting")
                    .await;
            }
            Err(error) => {
                // The learner gets a sentence and a reference; the details stay in the log.
                let reference = crate::telemetry::reference();
                tracing::warn!(session = %session.id, %error, %reference, "start failed; rolling back");
                self.destroy(&session, SessionStatus::Failed, &format!("start failed: {error}"))
                    .await;
                self.events.publish(
                    &session.user_id,
                    SessionEvent::Failed {
                        message: format!(
                            "Your practice environment could not start. Nothing was kept; try again (reference {reference})."
                        ),
                    },
                ).await;
            }
        }
    }

    async fn progress(&self, session: &Session, step: Step, state: StepState) {
        self.events
            .publish(&session.user_id, SessionEvent::Progress { step, state })
            .await;
    }

    /// Makes the session's cluster, applies its tasks' setup, makes its terminal and places the
    /// tasks' files, then records it started. A claimed pool member has all of that done ahead
    /// (members are practice-ready), so only its health is looked at; a member found dead is
    /// removed and the start goes on cold. The page sees the same steps either way. A stop cuts
    /// the cluster's making and the setup short (`stop`).
    async fn provision(
        &self,
        session: &Session,
        origin: Origin,
        stop: &CancellationToken,
    ) -> Result<Session, SessionError> {
        let name = cluster_of(session)?;
        let kubeconfig_path = self.kubeconfig_file(&session.id);
        let began = std::time::Instant::now();
        self.progress(session, Step::Cluster, StepState::Running).await;
        let origin = match origin {
            Origin::Pool => match self.member_health(&name).await {
                Ok(()) => Origin::Pool,
                Err(reason) => {
                    tracing::warn!(session = %session.id, cluster = %name, reason, "a claimed warm pool member is dead; starting cold");
                    self.remove_dead_member(session, &name).await?;
                    Origin::Cold
                }
            },
            Origin::Cold => Origin::Cold,
        };
        // The session's own cluster first, then its exam's other hosts'.
        let clusters = self.clusters_of(session).await?;
        let cold = match origin {
            Origin::Pool => None,
            Origin::Cold => {
                let mut specs = Vec::new();
                for cluster in &clusters {
                    let ports = self
                        .store
                        .allocate_ports(&session.id, &self.ports, bound_on_host)
                        .await?;
                    specs.push(ClusterSpec {
                        name: cluster.name.clone(),
                        ports,
                    });
                }
                // Side by side; one that fails cuts the others short, and the roll-back removes
                // whatever of each was made.
                let made = futures_util::future::try_join_all(specs.iter().map(|spec| async move {
                    let cluster = self.clusters.create(spec).await?;
                    write_private(
                        &self.kubeconfig_of(session, &spec.name),
                        cluster.admin_kubeconfig.yaml(),
                    )
                    .await?;
                    Ok::<_, SessionError>(cluster)
                }));
                Some(
                    stop.run_until_cancelled(made)
                        .await
                        .ok_or(SessionError::NoSession)??,
                )
            }
        };
        self.progress(session, Step::Cluster, StepState::Done).await;
        let cluster_ms = began.elapsed().as_millis() as u64;

        self.progress(session, Step::Tasks, StepState::Running).await;
        if let Some(made) = &cold {
            let setups = clusters.iter().zip(made).map(|(cluster, made)| async move {
                let client = made.admin_kubeconfig.client().await?;
                self.apply_setup(&client, &self.tasks_on(session, cluster.host.as_deref())?)
                    .await
            });
            stop.run_until_cancelled(futures_util::future::try_join_all(setups))
                .await
                .ok_or(SessionError::NoSession)??;
        }
        // A terminal is not raced: a create cut off could land after its removal.
        if stop.is_cancelled() {
            return Err(SessionError::NoSession);
        }
        self.progress(session, Step::Tasks, StepState::Done).await;
        let tasks_ms = began.elapsed().as_millis() as u64 - cluster_ms;

        self.progress(session, Step::Terminal, StepState::Running).await;
        if let Some(made) = &cold {
            let own: &Cluster = &made[0];
            let hosts: Vec<TerminalHost> = clusters
                .iter()
                .zip(made)
                .filter_map(|(cluster, made)| {
                    Some(TerminalHost {
                        name: cluster.host.as_deref()?,
                        network: &made.network,
                        kubeconfig: &made.terminal_kubeconfig,
                    })
                })
                .collect();
            let access = match hosts.is_empty() {
                true => TerminalAccess::Cluster(&own.terminal_kubeconfig),
                false => TerminalAccess::Hosts(&hosts),
            };
            self.terminals
                .create(&TerminalSpec {
                    cluster: &name,
                    network: &own.network,
                    access,
                    session_id: &session.id,
                    user_id: &session.user_id,
                })
                .await?;
        }
        self.progress(session, Step::Terminal, StepState::Done).await;
        if cold.is_some() {
            self.place_files(&name, &self.tasks_of(session)?).await?;
        }

        let terminal_ms = began.elapsed().as_millis() as u64 - cluster_ms - tasks_ms;
        // Where a start's time goes, step by step (the terminal's includes the tasks' files).
        tracing::info!(session = %session.id, cluster_ms, tasks_ms, terminal_ms, "session steps");
        let expires_at = Utc::now() + self.ttl(self.exam_of(session));
        let terminal = format!("term-{name}");
        if !self
            .store
            .mark_session_started(
                &session.id,
                &kubeconfig_path.to_string_lossy(),
                &terminal,
                expires_at,
            )
            .await?
        {
            // Stopped while starting: whoever stopped it could not see what we were making.
            return Err(SessionError::NoSession);
        }
        self.store
            .session_by_id(&session.id)
            .await?
            .ok_or(SessionError::NoSession)
    }

    fn kubeconfig_file(&self, session_id: &str) -> PathBuf {
        self.files.join(format!("{session_id}.kubeconfig"))
    }

    /// The admin kubeconfig of one of the session's clusters: its own, or another host's.
    fn kubeconfig_of(&self, session: &Session, cluster: &ClusterName) -> PathBuf {
        match cluster.as_str() == session.cluster_name {
            true => self.kubeconfig_file(&session.id),
            false => self.files.join(format!("{}.{cluster}.kubeconfig", session.id)),
        }
    }

    /// Applies the tasks' setup (namespaces and objects) to a cluster, all tasks at once.
    async fn apply_setup(&self, client: &kube::Client, tasks: &[Cow<'_, Task>]) -> Result<(), SessionError> {
        futures_util::future::try_join_all(tasks.iter().map(|task| task.prepare(client))).await?;
        Ok(())
    }

    /// Writes the tasks' files into a cluster's terminal, which must exist.
    async fn place_files(&self, cluster: &ClusterName, tasks: &[Cow<'_, Task>]) -> Result<(), SessionError> {
        let files = TerminalFiles {
            runtime: self.terminals.as_ref(),
            cluster,
        };
        futures_util::future::try_join_all(tasks.iter().map(|task| task.place_files(&files))).await?;
        Ok(())
    }

    /// The user's provisioning or started session.
    pub async fn live_for_user(&self, user_id: &str) -> Result<Option<Session>, SessionError> {
        Ok(self.store.live_session_for_user(user_id).await?)
    }

    /// The user's sessions that have ended, newest first.
    pub async fn history(&self, user_id: &str) -> Result<Vec<Session>, SessionError> {
        Ok(self.store.session_history(user_id, 20).await?)
    }

    /// The user's session, if it has started.
    pub async fn started_for_user(&self, user_id: &str) -> Result<Session, SessionError> {
        let session = self
            .store
            .live_session_for_user(user_id)
            .await?
            .ok_or(SessionError::NoSession)?;
        if session.status != SessionStatus::Started {
            return Err(SessionError::NotStarted);
        }
        Ok(session)
    }

    /// Adds [`EXTENSION`] to the user's started session, once.
    pub async fn extend_for_user(&self, user_id: &str) -> Result<Session, SessionError> {
        let session = self.started_for_user(user_id).await?;
        if session.exam_id.is_some() {
            return Err(SessionError::ExamRules("no extension"));
        }
        let by = chrono::Duration::from_std(EXTENSION).unwrap_or_default();
        let extended = self
            .store
            .extend_session(&session.id, by)
            .await?
            .ok_or(SessionError::AlreadyExtended)?;
        self.events
            .publish(
                user_id,
                SessionEvent::Extended {
                    session: (&extended).into(),
                },
            )
            .await;
        Ok(extended)
    }

    /// Grades `task_id` against the user's started session.
    pub async fn check(&self, user_id: &str, task_id: &str) -> Result<Vec<CheckResult>, SessionError> {
        let task = self
            .tasks
            .get(task_id)
            .ok_or_else(|| SessionError::UnknownTask(task_id.to_owned()))?;
        let session = self.started_for_user(user_id).await?;
        if session.exam_id.is_some() {
            return Err(SessionError::ExamRules("no Check"));
        }
        self.grade_on(&session, async |target| task.grade(target).await)
            .await
    }

    /// Runs `grade` against the session's cluster and its learner's files.
    async fn grade_on<T>(
        &self,
        session: &Session,
        grade: impl AsyncFnOnce(&Target<'_>) -> T,
    ) -> Result<T, SessionError> {
        let client = self.client_of(session).await?;
        let cluster = cluster_of(session)?;
        let files = TerminalFiles {
            runtime: self.terminals.as_ref(),
            cluster: &cluster,
        };
        let target = Target {
            client: &client,
            files: &files,
            runs_containers: self.clusters.runs_containers(),
        };
        Ok(grade(&target).await)
    }

    async fn client_of(&self, session: &Session) -> Result<kube::Client, SessionError> {
        self.client_on(session, &cluster_of(session)?).await
    }

    async fn client_on(
        &self,
        session: &Session,
        cluster: &ClusterName,
    ) -> Result<kube::Client, SessionError> {
        let yaml = tokio::fs::read_to_string(self.kubeconfig_of(session, cluster)).await?;
        Ok(Kubeconfig::from_yaml(yaml)?.client().await?)
    }

    /// Grades a finished exam while its clusters still stand, each task on its host's, and keeps
    /// the result.
    async fn grade_exam(&self, session: &Session, exam: &Exam) -> Result<(), SessionError> {
        let own = cluster_of(session)?;
        let files = TerminalFiles {
            runtime: self.terminals.as_ref(),
            cluster: &own,
        };
        let mut clients = Vec::new();
        for cluster in self.clusters_of(session).await? {
            clients.push((cluster.host, self.client_on(session, &cluster.name).await?));
        }
        let target = |client| Target {
            client,
            files: &files,
            runs_containers: self.clusters.runs_containers(),
        };
        let targets = ExamTargets {
            session: target(&clients[0].1),
            hosts: clients
                .iter()
                .filter_map(|(host, client)| Some((host.clone()?, target(client))))
                .collect(),
        };
        let result = exams::grade(exam, &self.tasks, &targets, &session.id).await?;
        self.store.insert_exam_result(&result).await?;
        tracing::info!(session = %session.id, exam = %exam.id, score = result.score, max = result.max_score, "exam graded");
        Ok(())
    }

    /// Ends the user's live session (stopped by the user).
    pub async fn stop_for_user(&self, user_id: &str) -> Result<(), SessionError> {
        let session = self
            .store
            .live_session_for_user(user_id)
            .await?
            .ok_or(SessionError::NoSession)?;
        self.end(&session, SessionStatus::Ended, "stopped by the user")
            .await;
        Ok(())
    }

    /// Ends a live session on an admin's word.
    pub async fn terminate(&self, session_id: &str) -> Result<Session, SessionError> {
        let session = self
            .store
            .session_by_id(session_id)
            .await?
            .filter(|s| s.status.is_live())
            .ok_or(SessionError::NoSession)?;
        self.end(&session, SessionStatus::Ended, "terminated by an admin")
            .await;
        Ok(self.store.session_by_id(session_id).await?.unwrap_or(session))
    }

    pub async fn list_live(&self) -> Result<Vec<Session>, SessionError> {
        Ok(self.store.live_sessions().await?)
    }

    pub async fn stats(&self) -> Result<SessionStats, SessionError> {
        Ok(SessionStats {
            live: self.store.count_live_sessions().await? as usize,
            capacity: self.settings.max_concurrent,
            by_status: self.store.count_sessions_by_status().await?,
            pool: self.pool_view().await?,
        })
    }

    /// Closes sockets, removes the terminal and the cluster, the session's files and its
    /// ports, and records how it ended. Every step is idempotent; a step that fails is noted and
    /// the rest still run (the reconciler removes whatever is left). It runs to its end even if
    /// whoever asked goes away first (a closed page, a request's time limit: a `kind` cluster can
    /// take longer to remove than a request may last), so it runs in a task of its own.
    async fn destroy(&self, session: &Session, status: SessionStatus, note: &str) {
        let (this, session, note) = (self.clone(), session.clone(), note.to_owned());
        let ending = self
            .work
            .spawn(async move { this.destroy_now(&session, status, &note).await });
        if let Err(error) = ending.await {
            tracing::error!(%error, "ending a session panicked");
        }
    }

    /// Ends a live session: its removal is claimed first, so of a stop, the clock, an admin and
    /// the liveness watch ending it at once, one removes it and records how it ended.
    pub async fn end(&self, session: &Session, status: SessionStatus, note: &str) {
        if self.claim_ending(session).await {
            // Whichever replica is making it hears, so as to stop; on a started one, no one is.
            if session.status == SessionStatus::Provisioning {
                self.events.stop_start(&session.id).await;
            }
            self.destroy(session, status, note).await;
        }
    }

    async fn claim_ending(&self, session: &Session) -> bool {
        // A database that cannot say is no reason to leave a session running: removal is
        // idempotent, so a second remover costs time, not correctness.
        self.store.begin_ending(&session.id).await.unwrap_or_else(|error| {
            tracing::warn!(session = %session.id, %error, "cannot claim the session's removal; removing it anyway");
            true
        })
    }

    /// Fails a started session that lost its cluster or terminal: recorded failed with the
    /// reason first (so the learner hears at once, however long the removal takes), the page
    /// told why, then its socket closed and what is left of it removed.
    pub async fn fail_lost(&self, session: &Session, reason: &str) {
        // Being removed by someone else already: not lost, just going.
        if !self.claim_ending(session).await {
            return;
        }
        tracing::warn!(session = %session.id, cluster = %session.cluster_name, reason, "session failed");
        let note = format!("reconciler: {reason}");
        match self
            .store
            .set_session_status(&session.id, SessionStatus::Failed, &note)
            .await
        {
            Ok(true) => self.events.publish(
                &session.user_id,
                SessionEvent::Ended {
                    status: SessionStatus::Failed,
                    message: format!(
                        "Your practice environment stopped working ({reason}) and was removed. Start a new session."
                    ),
                },
            ).await,
            // Ended meanwhile by whoever else ends sessions; they remove it.
            Ok(false) => return,
            Err(error) => tracing::error!(session = %session.id, %error, "could not record the failure"),
        }
        self.destroy(session, SessionStatus::Failed, "").await;
    }

    async fn destroy_now(&self, session: &Session, status: SessionStatus, note: &str) {
        self.events
            .close_session_sockets(&session.id, CloseReason::SessionEnded)
            .await;
        let mut notes = vec![note.to_owned()];
        // An exam that ran (stopped or timed out, not failed) is graded before anything goes.
        let ran = session.status == SessionStatus::Started && status != SessionStatus::Failed;
        if let Some(exam) = self.exam_of(session).filter(|_| ran) {
            if let Err(error) = self.grade_exam(session, exam).await {
                notes.push(format!("grading failed: {error}"));
            }
        }
        if let Ok(name) = ClusterName::parse(&session.cluster_name) {
            // The terminal sits on every cluster's network, so it goes first.
            if let Err(error) = self.terminals.remove(&name).await {
                notes.push(format!("terminal removal failed: {error}"));
            }
            let clusters = self.cluster_names(session).await.unwrap_or_else(|error| {
                notes.push(format!(
                    "its hosts are unknown ({error}); their clusters are the reconciler's"
                ));
                vec![name]
            });
            let removals = clusters.iter().map(|cluster| async move {
                let mut failures = Vec::new();
                if let Err(error) = self.clusters.delete(cluster).await {
                    failures.push(format!("cluster removal failed: {error}"));
                }
                match tokio::fs::remove_file(self.kubeconfig_of(session, cluster)).await {
                    Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                        failures.push(format!("kubeconfig removal failed: {error}"));
                    }
                    _ => {}
                }
                failures
            });
            notes.extend(
                futures_util::future::join_all(removals)
                    .await
                    .into_iter()
                    .flatten(),
            );
        } else if let Err(error) = tokio::fs::remove_file(self.kubeconfig_file(&session.id)).await {
            if error.kind() != std::io::ErrorKind::NotFound {
                notes.push(format!("kubeconfig removal failed: {error}"));
            }
        }
        if let Err(error) = self.store.release_ports(&session.id).await {
            notes.push(format!("port release failed: {error}"));
        }
        match self
            .store
            .set_session_status(&session.id, status, &notes.join("; "))
            .await
        {
            Ok(true) => {
                tracing::info!(session = %session.id, status = status.as_str(), "session ended");
                self.events
                    .publish(
                        &session.user_id,
                        SessionEvent::Ended {
                            status,
                            message: ending_message(status).into(),
                        },
                    )
                    .await;
            }
            Ok(false) => {}
            Err(error) => tracing::error!(session = %session.id, %error, "could not record the end"),
        }
    }

    /// Takes up the clocks of started sessions (after a restart) and sweeps expired ones until
    /// the server stops.
    /// Resolves once the starts and ends in flight have finished (a start that was asked for
    /// before a shutdown completes, or rolls back, rather than being cut off half-made).
    pub async fn finish_work(&self) {
        self.work.close();
        self.work.wait().await;
    }

    pub async fn run_clock(&self) {
        clock::run(self.clone(), self.stopping.clone()).await
    }
}

/// One of a session's clusters: for an exam with hosts, the host it is.
#[derive(Debug, Clone)]
struct SessionCluster {
    host: Option<String>,
    name: ClusterName,
}

/// Where a session's cluster and terminal come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// A warm pool member, claimed: both exist with every practice task set up.
    Pool,
    /// Built for this session.
    Cold,
}

fn ending_message(status: SessionStatus) -> &'static str {
    match status {
        SessionStatus::Timeout => "Time is up: the session has ended.",
        SessionStatus::Failed => "The session failed and was removed.",
        _ => "The session has ended.",
    }
}

async fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true).mode(0o600);
    let (path, text) = (path.to_owned(), text.to_owned());
    tokio::task::spawn_blocking(move || std::io::Write::write_all(&mut options.open(path)?, text.as_bytes()))
        .await
        .map_err(std::io::Error::other)?
}

/// Time left on a session at `now`.
fn time_left(session: &Session, now: DateTime<Utc>) -> Duration {
    (session.expires_at - now).to_std().unwrap_or_default()
}

/// The cluster (and terminal) name a session recorded.
fn cluster_of(session: &Session) -> Result<ClusterName, SessionError> {
    ClusterName::parse(&session.cluster_name).map_err(|e| ClusterError::Unavailable(e.to_string()).into())
}
