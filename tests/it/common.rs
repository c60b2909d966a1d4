//! Shared by the integration tests: settings for a throwaway platform, ports that no other test
//! in this process takes, and Docker look-ups.

pub mod outside;

use std::{
    path::Path,
    sync::atomic::{AtomicU16, Ordering},
    time::Duration,
};

use ckad_platform::{
    clusters::SubnetPool,
    configuration::{
        AuthSettings, ClusterSettings, EmailProvider, FirewallMode, HttpSettings, LogFormat, ProviderKind,
        Settings, TerminalSettings,
    },
    domain::{PortRanges, PortSet},
    sessions::{PoolSettings, SessionSettings},
    store::bound_on_host,
    AppState,
};
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{json, Value};
use tokio::{net::TcpListener, sync::oneshot, time::Instant};
use tokio_tungstenite::{
    tungstenite::{client::IntoClientRequest, protocol::frame::coding::CloseCode, Message},
    MaybeTlsStream, WebSocketStream,
};

/// Built by scripts/build-terminal-image.sh, which scripts/test.sh runs first.
pub const TERMINAL_IMAGE: &str = "ckad-terminal:latest";

/// `LITE_BIN_DIR` as scripts/setup.sh exports it.
pub fn lite_bin_dir() -> std::path::PathBuf {
    std::env::var_os("LITE_BIN_DIR")
        .expect("LITE_BIN_DIR is set by scripts/setup.sh")
        .into()
}

pub fn settings(dir: &Path, docker_host: &str) -> Settings {
    let site = leptos::config::get_config_from_file(concat!(env!("CARGO_MANIFEST_DIR"), "/Leptos.toml"))
        .unwrap()
        .leptos_options;
    Settings {
        database_url: format!("sqlite://{}/ckad.db", dir.display()),
        docker_host: docker_host.into(),
        shutdown_grace: Duration::from_secs(2),
        log_format: LogFormat::Json,
        site,
        clusters: ClusterSettings {
            provider: ProviderKind::Lite,
            // Each test platform has its own clusters, so parallel tests never reconcile each other's.
            instance: instance(dir),
            state_dir: dir.join("state"),
            lite_bin_dir: Some(lite_bin_dir()),
            kind: Default::default(),
            kubernetes: Default::default(),
            // Sessions of parallel test platforms must not pick the same host ports.
            ports: {
                let PortSet {
                    api,
                    ingress,
                    ingress_https,
                } = ports();
                PortRanges {
                    api: api..=api,
                    ingress: ingress..=ingress,
                    ingress_https: ingress_https..=ingress_https,
                }
            },
            reconcile_every: Duration::from_secs(60),
            subnet_pool: SubnetPool::default(),
        },
        terminals: TerminalSettings {
            // As the server reads it (and scripts/build-terminal-image.sh builds it).
            image: std::env::var("TERMINAL_IMAGE").unwrap_or_else(|_| TERMINAL_IMAGE.into()),
            firewall: FirewallMode::Iptables,
            egress_probe_target: None,
        },
        sessions: SessionSettings {
            ttl: Duration::from_secs(60 * 60),
            max_concurrent: 6,
            warnings: [10, 5, 1].map(|m| Duration::from_secs(60 * m)).to_vec(),
            sweep_every: Duration::from_secs(30),
            // No warm pool unless a test asks for one: its clusters would cost every test's
            // platform seconds of CPU and outlive it (tests/it/pool.rs sizes its own).
            pool: PoolSettings {
                size: 0,
                max_age: Duration::from_secs(60 * 60),
            },
        },
        tasks_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/tasks").into(),
        admin_emails: vec!["admin@example.com".into()],
        auth: AuthSettings {
            secret: SecretString::from("a-test-secret-that-is-at-least-32-bytes"),
            email: EmailProvider::Outbox,
            google: None,
        },
        http: HttpSettings {
            public_origin: "http://127.0.0.1:3000".into(),
            trusted_proxies: 0,
            // High enough that only the rate-limit tests meet them.
            auth_per_minute: 1000,
            api_per_minute: 1000,
        },
        billing: Default::default(),
        replays: Default::default(),
    }
}

/// The platform with `settings`, serving on `listener` until the test ends; returns its base URL.
pub async fn serve_on(listener: tokio::net::TcpListener, settings: Settings) -> String {
    Platform::serve_on(listener, AppState::build(settings).await.unwrap()).until_the_test_ends()
}

/// The platform with `settings` on a fresh loopback port until the test ends; returns its base URL.
pub async fn serve(settings: Settings) -> String {
    Platform::serve(AppState::build(settings).await.unwrap())
        .await
        .until_the_test_ends()
}

/// A process of the real `ckad-platform` binary; killed (SIGKILL) and reaped if the test drops it.
pub struct Process(pub std::process::Child);

impl Process {
    /// The binary run from the repository on 127.0.0.1:`port`, with `dir`'s database, state and
    /// instance name (so it never reconciles another test's clusters), logging warnings as JSON.
    pub fn command(port: u16, dir: &Path) -> std::process::Command {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_ckad-platform"));
        command
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
            .env("DATABASE_URL", format!("sqlite://{}/ckad.db", dir.display()))
            .env("STATE_DIR", dir.join("state"))
            .env("PLATFORM_INSTANCE", instance(dir))
            .env("RUST_LOG", "warn")
            // As in `settings`: a test that wants a warm pool says so.
            .env("WARM_POOL_SIZE", "0")
            .stdout(std::process::Stdio::null());
        command
    }

    pub fn spawn(command: &mut std::process::Command) -> Self {
        Self(command.spawn().unwrap())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A platform instance name unique to a test's directory.
pub fn instance(dir: &Path) -> String {
    let name = dir.file_name().unwrap().to_string_lossy().to_lowercase();
    format!(
        "test-{}",
        name.chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
    )
}

/// The label of a session's containers (its terminal's).
pub fn containers_of(session: &Value) -> String {
    format!("ckad.session={}", session["id"].as_str().unwrap())
}

/// What is left of a `lite` session: its cluster's containers and network, its terminal.
pub async fn left_of(cluster: &str, session: &Value) -> Vec<String> {
    let mut left = containers_labelled(&format!("com.docker.compose.project=kwok-{cluster}")).await;
    left.extend(containers_labelled(&containers_of(session)).await);
    if network_exists(&format!("kwok-{cluster}")).await {
        left.push(format!("network kwok-{cluster}"));
    }
    left
}

/// Stops the learner's session through the platform started in `dir`, and checks that neither its
/// terminal nor any cluster of that platform is left.
pub async fn stop_leaving_nothing(platform: &Platform, token: &str, session: &Value, dir: &Path) {
    assert_eq!(
        platform.post("/api/session/stop", token).await.0,
        StatusCode::NO_CONTENT
    );
    assert!(containers_labelled(&containers_of(session)).await.is_empty());
    assert!(clusters_of_instance(&instance(dir)).await.is_empty());
}

/// Waits (a minute at most) until nothing is left of a `lite` session.
pub async fn wait_until_nothing_left(cluster: &str, session: &Value) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !left_of(cluster, session).await.is_empty() {
        assert!(
            Instant::now() < deadline,
            "left behind: {:?}",
            left_of(cluster, session).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Port ranges of a test's own, far above `ports`: `sets` ports of each kind from `first`, for a
/// platform that holds several clusters at once (a warm pool, an exam with hosts).
pub fn port_block(first: u16, sets: u16) -> PortRanges {
    let kind = |offset: u16| first + offset..=first + offset + sets - 1;
    PortRanges {
        api: kind(0),
        ingress: kind(100),
        ingress_https: kind(200),
    }
}

/// Free host ports, never the same twice in one test process (tests run in parallel threads).
pub fn ports() -> PortSet {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let free = || loop {
        let port = 36000 + NEXT.fetch_add(1, Ordering::Relaxed);
        if !bound_on_host(port) {
            return port;
        }
    };
    PortSet {
        api: free(),
        ingress: free(),
        ingress_https: free(),
    }
}

/// A port free right now (the kernel's pick), for a server under test.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub async fn docker() -> bollard::Docker {
    bollard::Docker::connect_with_local_defaults()
        .unwrap()
        .negotiate_version()
        .await
        .unwrap()
}

/// Names of containers carrying `label` (`key=value`), running or not.
pub async fn containers_labelled(label: &str) -> Vec<String> {
    use std::collections::HashMap;
    let filters = HashMap::from([("label".to_owned(), vec![label.to_owned()])]);
    let options = bollard::query_parameters::ListContainersOptions {
        all: true,
        filters: Some(filters),
        ..Default::default()
    };
    docker()
        .await
        .list_containers(Some(options))
        .await
        .unwrap()
        .into_iter()
        .flat_map(|c| c.names.unwrap_or_default())
        .collect()
}

pub async fn network_exists(name: &str) -> bool {
    docker()
        .await
        .inspect_network(name, None::<bollard::query_parameters::InspectNetworkOptions>)
        .await
        .is_ok()
}

/// The clusters whose networks carry `instance`'s label.
pub async fn clusters_of_instance(instance: &str) -> Vec<String> {
    use std::collections::HashMap;
    let filters = HashMap::from([("label".to_owned(), vec![format!("ckad.instance={instance}")])]);
    let options = bollard::query_parameters::ListNetworksOptions {
        filters: Some(filters),
    };
    let networks = docker().await.list_networks(Some(options)).await.unwrap();
    networks
        .into_iter()
        .filter_map(|n| n.labels?.get("ckad.cluster").cloned())
        .collect()
}

/// A platform on a loopback port with its own database and clusters: in this process (stoppable
/// like SIGTERM), or a process of the real binary at an address.
pub struct Platform {
    pub base: String,
    pub client: reqwest::Client,
    running: Option<(oneshot::Sender<()>, tokio::task::JoinHandle<std::io::Result<()>>)>,
    /// Where its sign-in codes arrive.
    pub mailbox: Option<Mailbox>,
    /// The database of a platform this process started: where a test failure reads why a session
    /// ended.
    database_url: Option<String>,
}

impl Platform {
    /// A platform whose mail (unless the settings name a service) goes to a real SMTP server.
    pub async fn start(mut settings: Settings) -> Self {
        let mut mailbox = None;
        if matches!(
            settings.auth.email,
            ckad_platform::configuration::EmailProvider::Outbox
        ) {
            let sink = SmtpSink::start();
            settings.auth.email = sink.provider();
            mailbox = Some(Mailbox::Smtp(sink));
        }
        let database_url = settings.database_url.clone();
        let mut platform = Self::serve(AppState::build(settings).await.unwrap()).await;
        platform.mailbox = mailbox;
        platform.database_url = Some(database_url);
        platform
    }

    /// Serves a state the test has built (and perhaps changed) on a fresh loopback port.
    pub async fn serve(state: AppState) -> Self {
        Self::serve_on(TcpListener::bind("127.0.0.1:0").await.unwrap(), state)
    }

    /// The one way tests run the platform in-process. `TEST_LOG=1` shows its logs.
    pub fn serve_on(listener: TcpListener, state: AppState) -> Self {
        if std::env::var_os("TEST_LOG").is_some() {
            ckad_platform::telemetry::init(ckad_platform::configuration::LogFormat::Pretty);
        }
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(ckad_platform::run(listener, state, async {
            let _ = stopped.await;
        }));
        Self {
            base,
            client: reqwest::Client::new(),
            running: Some((stop, server)),
            mailbox: None,
            database_url: None,
        }
    }

    /// Leaves the platform serving until the test's runtime ends (dropping `Platform` stops it).
    pub fn until_the_test_ends(mut self) -> String {
        std::mem::forget(self.running.take());
        self.base.clone()
    }

    /// A platform running elsewhere (a process of the binary) at `base`, mailing to `mailbox`.
    pub fn at(base: &str, mailbox: Option<Mailbox>) -> Self {
        Self {
            base: base.to_owned(),
            client: reqwest::Client::new(),
            running: None,
            mailbox,
            database_url: None,
        }
    }

    /// Waits until `/readyz` says ready.
    pub async fn wait_until_ready(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let ready = self.client.get(format!("{}/readyz", self.base)).send().await;
            if ready.is_ok_and(|r| r.status() == StatusCode::OK) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{} never became ready",
                self.base
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn shut_down(self) {
        let (stop, server) = self.running.expect("a platform of this process");
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, token, None).await
    }

    /// A new learner's access token: registered, and proven by the code mailed to the email.
    pub async fn learner(&self, email: &str) -> String {
        let account = json!({ "email": email, "password": "correct horse battery", "name": "Ada" });
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/api/auth/register",
                "",
                Some(account.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        let mailbox = self.mailbox.as_ref().expect("a platform whose mail can be read");
        let mut proven = account;
        proven["code"] = mailbox.code_for(email).await.into();
        let (status, body) = self
            .call(reqwest::Method::POST, "/api/auth/password", "", Some(proven))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, token, None).await
    }

    /// Starts the learner's session and waits until it is started; its JSON.
    pub async fn start_session(&self, token: &str) -> Value {
        let (status, session) = self.post("/api/session/start", token).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{session}");
        assert_eq!(session["status"], "provisioning");
        self.wait_started(token).await
    }

    /// Waits until the learner's session is started; its JSON.
    pub async fn wait_started(&self, token: &str) -> Value {
        // Generous: an exam's three clusters, made side by side on a loaded machine.
        let deadline = std::time::Instant::now() + Duration::from_secs(300);
        loop {
            let (status, now) = self.get("/api/session/status", token).await;
            if status != StatusCode::OK {
                panic!(
                    "the session did not start ({status} {now}): {}",
                    self.why_the_last_session_ended(token).await
                );
            }
            match now["status"].as_str() {
                Some("started") => return now,
                // Once a second: the platform's default limit (100 API calls a minute) holds.
                Some("provisioning") if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_secs(1)).await
                }
                _ => panic!("the session did not start in time: {now}"),
            }
        }
    }
}

impl Platform {
    /// The notes the platform recorded on the learner's last session (how it failed or ended).
    async fn why_the_last_session_ended(&self, token: &str) -> String {
        let (_, history) = self.get("/api/session/history", token).await;
        let last = history.as_array().and_then(|h| h.first()).cloned();
        let (Some(url), Some(last)) = (&self.database_url, last) else {
            return format!("no notes to read; the learner's sessions: {history}");
        };
        let store = ckad_platform::store::Store::connect(url).await.unwrap();
        let id = last["id"].as_str().unwrap_or_default();
        match store.session_by_id(id).await.unwrap() {
            Some(session) => format!("session {id} is {:?}: {}", session.status, session.notes),
            None => format!("session {id} is not recorded"),
        }
    }
}

/// The site's origin in the test settings: the only one whose sockets are accepted.
pub const ORIGIN: &str = "http://127.0.0.1:3000";

/// What these tests do with a platform: tickets and sockets.
pub trait Terminals {
    async fn ticket(&self, token: &str) -> String;
    fn socket_url(&self, ticket: &str) -> String;
    async fn connect(&self, ticket: &str, origin: &str) -> Result<Shell, StatusCode>;
    /// As `connect`, to the terminal's tab `tab` (the page's `tab` query), from the site's origin.
    async fn connect_tab(&self, ticket: &str, tab: u8) -> Result<Shell, StatusCode>;
}

/// A terminal socket at `url` once `prompt` shows (`ckad@ckad`; `ckad@base` in an exam with
/// hosts); or the status it was refused with.
pub async fn open_shell(url: String, origin: &str, prompt: &str) -> Result<Shell, StatusCode> {
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert("origin", origin.parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => {
            let mut shell = Shell {
                socket,
                seen: String::new(),
            };
            shell.read_until(prompt).await;
            Ok(shell)
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(response.status()),
        Err(other) => panic!("handshake: {other}"),
    }
}

impl Terminals for Platform {
    async fn ticket(&self, token: &str) -> String {
        let (status, body) = self.post("/api/terminal/ticket", token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["expires_in"], 30);
        body["ticket"].as_str().unwrap().to_owned()
    }

    fn socket_url(&self, ticket: &str) -> String {
        format!(
            "{}/ws/terminal?ticket={ticket}&cols=100&rows=30",
            self.base.replace("http://", "ws://")
        )
    }

    /// Opens a socket and waits for the prompt, as a learner would before typing (keys sent while
    /// tmux is still attaching may be taken for its terminal queries' answers).
    async fn connect(&self, ticket: &str, origin: &str) -> Result<Shell, StatusCode> {
        open_shell(self.socket_url(ticket), origin, "ckad@ckad").await
    }

    async fn connect_tab(&self, ticket: &str, tab: u8) -> Result<Shell, StatusCode> {
        open_shell(
            format!("{}&tab={tab}", self.socket_url(ticket)),
            ORIGIN,
            "ckad@ckad",
        )
        .await
    }
}

/// Terminal output without its cursor and mode controls (CSI sequences), which draw nothing.
fn on_screen(output: &str) -> std::borrow::Cow<'_, str> {
    static CONTROLS: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"\x1b\[[0-9;?]*[hlJK]").unwrap());
    CONTROLS.replace_all(output, "")
}

/// The browser's side of one terminal socket.
pub struct Shell {
    pub socket: WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>,
    /// Everything the terminal printed so far.
    pub seen: String,
}

impl Shell {
    pub async fn type_line(&mut self, line: &str) {
        self.socket
            .send(Message::binary(format!("{line}\r").into_bytes()))
            .await
            .unwrap();
    }

    pub async fn control(&mut self, frame: Value) {
        self.socket.send(Message::text(frame.to_string())).await.unwrap();
    }

    /// Reads until the screen shows `wanted` (after what was seen before); the text frames met.
    /// The text is read as a learner sees it: tmux may draw a line in pieces with cursor moves
    /// between them (`\e[?25l`), which are no characters on the screen.
    pub async fn read_until(&mut self, wanted: &str) -> Vec<Value> {
        let from = self.seen.len();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut texts = Vec::new();
        while !on_screen(&self.seen[from..]).contains(wanted) {
            let message = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("{wanted:?} not shown; screen: {:?}", &self.seen[from..]));
            match message.expect("socket open").unwrap() {
                Message::Binary(bytes) => self.seen.push_str(&String::from_utf8_lossy(&bytes)),
                Message::Text(text) => texts.push(serde_json::from_str(&text).unwrap()),
                _ => {}
            }
        }
        texts
    }

    /// Reads to the end: the last JSON text frame and the close frame's code and reason.
    pub async fn closing(&mut self) -> (Option<Value>, Option<(CloseCode, String)>) {
        let mut goodbye = None;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .expect("closed in time")
            {
                Some(Ok(Message::Text(text))) => goodbye = Some(serde_json::from_str(&text).unwrap()),
                Some(Ok(Message::Close(frame))) => {
                    return (goodbye, frame.map(|f| (f.code, f.reason.to_string())));
                }
                Some(Ok(_)) => {}
                None => return (goodbye, None),
                Some(Err(error)) => panic!("socket failed: {error}; after {goodbye:?}"),
            }
        }
    }
}

/// The learner's way through the task `pod-with-labels`: Check fails first, the answer typed in
/// `shell` makes the pod, and Check pressed again (a 429 says too soon) passes within `limit`,
/// once the pod is Ready.
pub async fn answer_pod_with_labels(platform: &Platform, token: &str, shell: &mut Shell, limit: Duration) {
    let check = || platform.post("/api/tasks/pod-with-labels/check", token);
    let (code, report) = check().await;
    assert_eq!(
        (code, &report["passed"]),
        (StatusCode::OK, &json!(false)),
        "{report}"
    );
    shell
        .type_line("kubectl run front -n web --image=nginx:1.27 --labels=app=front,tier=web --port=80")
        .await;
    shell.read_until("pod/front created").await;
    let deadline = Instant::now() + limit;
    loop {
        let (code, report) = check().await;
        if code != StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(code, StatusCode::OK, "{report}");
            if report["passed"] == true {
                return;
            }
        }
        assert!(Instant::now() < deadline, "never passed: {report}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// A cluster of a fresh name on ports no other test in this process takes.
pub fn spec() -> ckad_platform::clusters::ClusterSpec {
    ckad_platform::clusters::ClusterSpec {
        name: ckad_platform::clusters::ClusterName::generate(),
        ports: ports(),
    }
}

/// Polls `check` until it holds or `limit` passes.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The learner's files where a test started no terminal: tasks without files never ask.
pub struct NoTerminal;

#[async_trait::async_trait]
impl ckad_platform::tasks::LearnerFiles for NoTerminal {
    async fn read(
        &self,
        path: &ckad_platform::tasks::LearnerPath,
        _: usize,
    ) -> Result<Option<Vec<u8>>, String> {
        Err(format!("{path}: no terminal was started"))
    }

    async fn write(&self, path: &ckad_platform::tasks::LearnerPath, _: &str) -> Result<(), String> {
        Err(format!("{path}: no terminal was started"))
    }
}

/// A `kind` provider of this test's own instance, from the offline node image unless it names one.
pub fn kind(state: &Path, node_image: Option<&str>) -> ckad_platform::clusters::KindProvider {
    let config = ckad_platform::clusters::KindConfig {
        binary: Some(lite_bin_dir().join("kind")),
        node_image: node_image.map(str::to_owned),
        ..Default::default()
    };
    let docker = ckad_platform::docker::DockerEngine::new("unix:///var/run/docker.sock");
    ckad_platform::clusters::KindProvider::new(docker, config, state, &instance(state)).unwrap()
}

/// Copies `images` from the local engine into the `kind` cluster's node, as an operator without a
/// registry would (`kind load docker-image`); manifests with `IfNotPresent` then pull nothing.
pub fn load_images(cluster: &ckad_platform::clusters::ClusterName, images: &[&str]) {
    // kind saves the images to one archive first, as large as they are: in memory where the
    // machine has it, beside the disk the node's copy of them fills.
    let shm = Path::new("/dev/shm");
    let archive_dir = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
    .unwrap();
    let out = std::process::Command::new(lite_bin_dir().join("kind"))
        .args(["load", "docker-image", "--name", cluster.as_str()])
        .args(images)
        .env("TMPDIR", archive_dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kind load failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A real SMTP server on loopback, writing what it receives to a mailbox file.
pub struct SmtpSink {
    child: std::process::Child,
    pub port: u16,
    mailbox: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl SmtpSink {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mailbox = dir.path().join("mailbox.jsonl");
        let python = std::env::var("CKAD_PYTHON").expect("CKAD_PYTHON is set by scripts/setup.sh");
        let mut child = std::process::Command::new(python)
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_sink.py"))
            .args([port.to_string(), mailbox.display().to_string()])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut ready = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
            &mut ready,
        )
        .unwrap();
        assert_eq!(ready.trim(), "ready");
        Self {
            child,
            port,
            mailbox,
            _dir: dir,
        }
    }

    /// The platform's mail settings for this server.
    pub fn provider(&self) -> ckad_platform::configuration::EmailProvider {
        ckad_platform::configuration::EmailProvider::Smtp(ckad_platform::mail::SmtpSettings {
            host: "127.0.0.1".into(),
            port: self.port,
            security: ckad_platform::mail::SmtpSecurity::None,
            username: None,
            password: None,
            from: "CKAD Practice <noreply@ckad.test>".into(),
        })
    }

    /// The same settings as a platform process reads them.
    pub fn env(&self) -> [(&'static str, String); 4] {
        [
            ("EMAIL_PROVIDER", "smtp".into()),
            ("SMTP_HOST", "127.0.0.1".into()),
            ("SMTP_PORT", self.port.to_string()),
            ("SMTP_SECURITY", "none".into()),
        ]
    }

    pub fn messages(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.mailbox)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    /// The code in the last mail to `to`.
    pub fn code_for(&self, to: &str) -> String {
        self.codes_for(to).pop().expect("a mail was sent")
    }

    /// The codes mailed to `to`, oldest first.
    pub fn codes_for(&self, to: &str) -> Vec<String> {
        // Addresses are stored and mailed lower-case.
        let to = to.trim().to_lowercase();
        self.messages()
            .into_iter()
            .filter(|m| m["to"][0] == to.as_str())
            .map(|message| {
                let data = message["data"].as_str().unwrap();
                let at = data
                    .find("Your sign-in code is ")
                    .expect("the body names the code")
                    + 21;
                data[at..at + 6].to_owned()
            })
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where a platform's sign-in codes can be read: a real SMTP server's mailbox, or the development
/// outbox's lines in a platform process's log.
pub enum Mailbox {
    Smtp(SmtpSink),
    Log(std::sync::Arc<std::sync::Mutex<String>>),
}

impl Mailbox {
    /// The newest code mailed to `to`, waiting a little for it to arrive.
    pub async fn code_for(&self, to: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found = match self {
                Self::Smtp(sink) => sink.codes_for(to).pop(),
                Self::Log(log) => log.lock().unwrap().lines().rev().find_map(|line| {
                    // One JSON object per line, the event's fields beside its message.
                    let line: Value = serde_json::from_str(line).ok()?;
                    (line["to"] == to.to_lowercase().as_str())
                        .then(|| line["code"].as_str().map(str::to_owned))
                        .flatten()
                }),
            };
            if let Some(code) = found {
                return code;
            }
            assert!(Instant::now() < deadline, "no code was mailed to {to}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
