//! What every handler can reach.

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use tokio_util::sync::CancellationToken;

use crate::{
    auth::{Auth, Google},
    billing::Billing,
    clusters::{self, ClusterProvider, ProviderKind},
    configuration::{EmailProvider, Settings},
    desk::Desk,
    docker::DockerEngine,
    exams::ExamCatalog,
    mail::{DevOutbox, MailApi, Mailer, Smtp},
    metrics::Metrics,
    replays::Recordings,
    routes::ratelimit::CheckThrottle,
    sessions::{SessionEvents, SessionParts, Sessions},
    store::Store,
    tasks::TaskCatalog,
    terminals::{
        DockerTerminals, EgressProbe, HostFirewall, PodTerminals, TerminalRuntime, TerminalSockets, Tickets,
    },
};

#[derive(Clone, FromRef)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub leptos_options: LeptosOptions,
    pub store: Store,
    pub docker: DockerEngine,
    pub clusters: Arc<dyn ClusterProvider>,
    pub terminals: Arc<dyn TerminalRuntime>,
    /// Open terminal sockets, to close them when their session ends or their user signs out.
    pub sockets: TerminalSockets,
    /// Session events, sockets to close and starts to stop, told to every replica.
    pub events: SessionEvents,
    pub tickets: Tickets,
    /// What terminals showed, for replay.
    pub recordings: Recordings,
    /// The notepads and review flags of live sessions.
    pub desk: Desk,
    pub firewall: HostFirewall,
    /// Proves the operator's rules (`HOST_FIREWALL=external`) by their effect.
    pub egress: EgressProbe,
    pub sessions: Sessions,
    pub auth: Auth,
    /// Plans, passes, payments and who may take a full exam.
    pub billing: Billing,
    pub checks: CheckThrottle,
    pub metrics: Arc<Metrics>,
    /// Cancelled when the server begins to shut down; long-lived connections watch it.
    pub stopping: CancellationToken,
}

impl AppState {
    /// Opens and migrates the database and sets up the cluster provider; the Docker engine is
    /// reached lazily.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let store = Store::open(&settings.database_url)
            .await
            .with_context(|| format!("opening the database at {}", settings.database_url))?;
        let mut settings = settings;
        if settings.clusters.instance.is_empty() {
            settings.clusters.instance = store
                .platform_instance()
                .await
                .context("reading the platform's instance name")?;
        }
        if let Some(types) = &settings.billing.pass_types {
            store
                .replace_pass_types(types)
                .await
                .context("setting the pass types from PASS_TYPES_FILE")?;
        }
        let billing = Billing::new(store.clone(), &settings.billing, &settings.http.public_origin)
            .context("preparing the client for Stripe")?;
        if !billing.enabled() {
            tracing::info!("payments are off: STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET are not set");
        }
        let docker = DockerEngine::new(&settings.docker_host);
        let clusters = clusters::provider(&settings.clusters, docker.clone()).with_context(|| {
            format!(
                "preparing the state directory {}",
                settings.clusters.state_dir.display()
            )
        })?;
        if settings.clusters.provider == ProviderKind::Kind {
            if let Some(reason) =
                clusters::kind_refusal(settings.clusters.kind.containment.as_ref(), &docker).await
            {
                anyhow::bail!("CLUSTER_PROVIDER=kind refused: {reason}");
            }
        }
        let mailer: Arc<dyn Mailer> = match &settings.auth.email {
            EmailProvider::Outbox => Arc::new(DevOutbox),
            EmailProvider::Smtp(smtp) => Arc::new(Smtp::new(smtp).context("configuring SMTP")?),
            EmailProvider::Api(api) => {
                Arc::new(MailApi::new(api.clone()).context("configuring the mail API")?)
            }
        };
        let google = settings
            .auth
            .google
            .clone()
            .map(Google::new)
            .transpose()
            .map_err(anyhow::Error::msg)?;
        let auth = Auth::new(store.clone(), settings.auth.secret.clone(), mailer, google);
        // Terminals live where their sessions' clusters do.
        let terminals: Arc<dyn TerminalRuntime> = match settings.clusters.provider {
            ProviderKind::Lite | ProviderKind::Kind => Arc::new(DockerTerminals::new(
                docker.clone(),
                &settings.terminals.image,
                &settings.clusters.instance,
            )),
            ProviderKind::Kubernetes => Arc::new(PodTerminals::new(
                clusters::kubernetes::host_client(&settings.clusters.kubernetes)
                    .await
                    .context("reaching the host cluster (CLUSTER_PROVIDER=kubernetes)")?,
                &settings.terminals.image,
                &settings.clusters.instance,
            )),
        };
        let sockets = TerminalSockets::default();
        let tasks = TaskCatalog::load(&settings.tasks_dir).context("loading the tasks")?;
        let stopping = CancellationToken::new();
        let events = SessionEvents::connect(&store, sockets.clone(), stopping.clone())
            .await
            .context("listening for the other replicas' notices")?;
        let metrics = Arc::new(Metrics::default());
        let sessions = Sessions::new(SessionParts {
            store: store.clone(),
            clusters: clusters.clone(),
            terminals: terminals.clone(),
            events: events.clone(),
            exams: ExamCatalog::load(&settings.tasks_dir.join("exams.yaml"), &tasks)
                .context("loading the exams")?,
            access: Arc::new(billing.clone()),
            tasks: Arc::new(tasks),
            settings: settings.sessions.clone(),
            ports: settings.clusters.ports.clone(),
            state_dir: settings.clusters.state_dir.clone(),
            stopping: stopping.clone(),
            pool_metrics: metrics.pool.clone(),
        })
        .context("preparing the sessions' directory")?;
        let recordings = Recordings::new(
            settings.clusters.state_dir.join("replays"),
            settings.replays.clone(),
            store.clone(),
        );
        Ok(Self {
            auth,
            recordings,
            desk: Desk::new(store.clone(), sessions.clone()),
            billing,
            terminals,
            sockets,
            events,
            tickets: Tickets::new(store.clone()),
            checks: CheckThrottle::default(),
            firewall: HostFirewall::new(settings.clusters.subnet_pool),
            egress: EgressProbe::new(
                docker.clone(),
                &settings.terminals.image,
                &settings.clusters.instance,
                settings.clusters.subnet_pool,
                settings.platform_ports(),
                settings.terminals.egress_probe_target,
            ),
            sessions,
            leptos_options: settings.site.clone(),
            docker,
            clusters,
            settings: Arc::new(settings),
            store,
            metrics,
            stopping,
        })
    }
}
