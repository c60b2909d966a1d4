//! The operator's deployment against real parts: the offline-built app image on the local Docker
//! engine (its socket mounted, the host's network, the state directory at the same path inside and
//! out), the compose project brought up by Debian's docker-compose with the systemd unit's clean-up
//! and the cron's backup run as written, and Caddy proxying pages, the API and a WebSocket upgrade
//! to a running app.
//!
//! The image is built before the tests by scripts/build-app-image.sh (scripts/test.sh does it and
//! exports `CKAD_APP_IMAGE`).

use crate::common;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    time::{Duration, Instant},
};

use ckad_platform::clusters::ClusterName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// What the app answers to a WebSocket upgrade of `/ws/terminal` from the site with an unknown
/// ticket, through Caddy: the terminal handler's own refusal (tests/it/terminal.rs opens real ones).
const TERMINAL_UPGRADE_STATUS: u16 = 401;

fn app_image() -> String {
    std::env::var("CKAD_APP_IMAGE").expect(
        "CKAD_APP_IMAGE names the image built by scripts/build-app-image.sh (scripts/test.sh exports it)",
    )
}

fn output(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

/// Runs `command`, asserting success; returns its stdout.
fn run(command: &mut Command) -> String {
    let out = output(command);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{command:?} failed\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn docker(args: &[&str]) -> String {
    run(Command::new("docker").args(args))
}

/// A container this test started, removed when the test ends however it ends.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = output(Command::new("docker").args(["rm", "-f", "-v", &self.0]));
    }
}

/// Polls `url` until it answers 200, or panics after `limit` with the last answer.
fn wait_for_ok(url: &str, limit: Duration) -> reqwest::blocking::Response {
    let started = Instant::now();
    loop {
        let last = reqwest::blocking::get(url);
        match last {
            Ok(response) if response.status() == 200 => return response,
            _ if started.elapsed() > limit => panic!("{url} did not answer 200 within {limit:?}: {last:?}"),
            _ => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

fn backups_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| entries.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}

#[test]
fn the_offline_image_serves_the_platform_and_runs_lite_clusters_through_the_host_engine() {
    let dir = tempfile::tempdir().unwrap();
    let dir_path = dir.path().to_str().unwrap();
    let port = common::free_port();
    let instance = common::instance(dir.path());
    let name = format!("ckad-deploy-{instance}");
    // As docker-compose.yml runs it: the host's network and engine, the state at the same path.
    let env = [
        format!("DATABASE_URL=sqlite://{dir_path}/data/ckad.db"),
        format!("STATE_DIR={dir_path}/state"),
        format!("BACKUP_DIR={dir_path}/backups"),
        format!("PLATFORM_INSTANCE={instance}"),
        // The clusters this test makes belong to no session: no reconciliation while it runs.
        "RECONCILE_EVERY_SECS=3600".to_owned(),
        // Nor a warm pool, whose clusters the clean-up below would count.
        "WARM_POOL_SIZE=0".to_owned(),
        // As compose sets it: the host, not the container, holds the firewall rule.
        "HOST_FIREWALL=external".to_owned(),
    ];
    // As the systemd unit does first: the host's rules for the pool (the default: this .env names
    // none), which the app's /readyz proves with a probe container.
    let env_file = dir.path().join(".env");
    std::fs::write(&env_file, "").unwrap();
    run(Command::new("sh")
        .arg(format!("{REPO}/deploy/host-firewall.sh"))
        .arg(&env_file));
    let mut args = vec!["run", "-d", "--name", &name, "--network", "host"];
    let (socket, state) = (
        "/var/run/docker.sock:/var/run/docker.sock".to_owned(),
        format!("{dir_path}:{dir_path}"),
    );
    args.extend(["-v", &socket, "-v", &state]);
    for pair in &env {
        args.extend(["-e", pair]);
    }
    let site_addr = format!("LEPTOS_SITE_ADDR=127.0.0.1:{port}");
    let image = app_image();
    args.extend(["-e", &site_addr, &image]);
    docker(&args);
    let container = Container(name);

    let base = format!("http://127.0.0.1:{port}");
    assert_eq!(
        wait_for_ok(&format!("{base}/healthz"), Duration::from_secs(30))
            .text()
            .unwrap(),
        "ok"
    );
    let readiness: serde_json::Value = wait_for_ok(&format!("{base}/readyz"), Duration::from_secs(30))
        .json()
        .unwrap();
    assert_eq!(readiness["ready"], true, "{readiness}");
    let checks: Vec<&str> = readiness["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        checks,
        ["database", "docker", "lite", "terminal", "firewall", "pool"],
        "{readiness}"
    );

    // The hydrated page and its bundle come from the image's site directory.
    let page = reqwest::blocking::get(&base).unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().unwrap().contains("/pkg/ckad.wasm"));
    let wasm = reqwest::blocking::get(format!("{base}/pkg/ckad.wasm")).unwrap();
    assert_eq!(wasm.status(), 200);
    assert_eq!(wasm.headers()["content-type"], "application/wasm");

    // A cluster made from inside the container answers: kwokctl's bind mounts of the state
    // directory resolve on the host because the path is the same there.
    let cluster = ClusterName::generate();
    let ports = common::ports();
    let created = docker(&[
        "exec",
        &container.0,
        "ckad-clusters",
        "create",
        cluster.as_str(),
        &ports.api.to_string(),
        &ports.ingress.to_string(),
        &ports.ingress_https.to_string(),
    ]);
    assert!(
        created.contains(&format!("{cluster} https://127.0.0.1:{}", ports.api)),
        "{created}"
    );
    let health = docker(&["exec", &container.0, "ckad-clusters", "health", cluster.as_str()]);
    assert!(
        health.contains("ClusterHealth { api_ready: true, ready_nodes: 1 }"),
        "{health}"
    );

    // The systemd unit's clean-up, in a container of its own as `docker-compose run` makes it:
    // no session owns the cluster, so it goes.
    let mut cleanup = vec!["run", "--rm", "--network", "host", "-v", &socket, "-v", &state];
    for pair in &env {
        cleanup.extend(["-e", pair]);
    }
    cleanup.extend([image.as_str(), "/app/scripts/cleanup-orphans.sh"]);
    let cleaned = docker(&cleanup);
    assert!(
        cleaned.contains(&format!("removed lite cluster {cluster} (5 containers")),
        "{cleaned}"
    );
    let cluster_dir = dir.path().join("state/lite/clusters").join(cluster.as_str());
    assert!(!cluster_dir.exists(), "its keys are gone");

    // A backup made inside the container lands on the host and restores there.
    let backup = docker(&["exec", &container.0, "/app/scripts/backup-db.sh"]);
    assert!(backup.starts_with("backup-db: wrote "), "{backup}");
    let copies = backups_in(&dir.path().join("backups"));
    assert_eq!(copies.len(), 1, "{copies:?}");
    let restored = run(Command::new(format!("{REPO}/scripts/restore-db.sh"))
        .arg(&copies[0])
        .arg(dir.path().join("restored")));
    assert!(restored.contains("passed its integrity check"), "{restored}");
    let migrations = ckad_platform::store::MIGRATOR.iter().count();
    assert!(
        restored.contains(&format!("\n_sqlx_migrations {migrations}\n")),
        "{restored}"
    );

    // SIGTERM reaches the server through tini: a graceful stop, well within compose's grace.
    let stopping = Instant::now();
    docker(&["stop", "--time", "20", &container.0]);
    assert!(
        stopping.elapsed() < Duration::from_secs(10),
        "{:?}",
        stopping.elapsed()
    );
    let exit = docker(&["inspect", "--format", "{{.State.ExitCode}}", &container.0]);
    assert_eq!(exit.trim(), "0");
}

/// A compose project of its own, in a fresh directory named after the test, taken down with its
/// volumes when the test ends.
struct ComposeProject {
    dir: tempfile::TempDir,
}

impl ComposeProject {
    /// docker-compose.yml and the Caddyfile as shipped, and a `.env` made from `.env.example`
    /// plus `extra` lines.
    fn new(extra: &str) -> Self {
        let dir = tempfile::Builder::new().prefix("ckaddeploy").tempdir().unwrap();
        for file in ["docker-compose.yml", "Caddyfile"] {
            std::fs::copy(Path::new(REPO).join(file), dir.path().join(file)).unwrap();
        }
        let example = std::fs::read_to_string(Path::new(REPO).join(".env.example")).unwrap();
        std::fs::write(dir.path().join(".env"), format!("{example}\n{extra}")).unwrap();
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn compose(&self, args: &[&str]) -> Output {
        output(Command::new("docker-compose").args(args).current_dir(self.path()))
    }

    /// Runs a command line from the operator's files (the unit, the cron file) with `sh`, in the
    /// project directory, as systemd and cron would.
    fn shell(&self, line: &str) -> Output {
        output(Command::new("sh").args(["-c", line]).current_dir(self.path()))
    }
}

impl Drop for ComposeProject {
    fn drop(&mut self) {
        let _ = self.compose(&["down", "-v", "--remove-orphans", "--timeout", "5"]);
    }
}

fn stdout_of(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The value of `key=` in the unit file (the first such line).
/// The unit's `key=` lines' values, in order.
fn unit_settings(key: &str) -> Vec<String> {
    let unit = std::fs::read_to_string(format!("{REPO}/deploy/ckad-platform.service")).unwrap();
    let values: Vec<String> = unit
        .lines()
        .filter_map(|line| line.strip_prefix(&format!("{key}=")))
        .map(str::to_owned)
        .collect();
    assert!(!values.is_empty(), "{key}= missing from the unit");
    values
}

fn unit_setting(key: &str) -> String {
    let mut values = unit_settings(key);
    assert_eq!(values.len(), 1, "one {key}= in the unit");
    values.remove(0)
}

/// The unit's start-up step that runs `what`.
fn unit_step(what: &str) -> String {
    unit_settings("ExecStartPre")
        .into_iter()
        .find(|line| line.contains(what))
        .unwrap_or_else(|| panic!("no ExecStartPre runs {what}"))
}

#[test]
fn the_compose_file_validates_and_names_what_each_service_may_touch() {
    let project = ComposeProject::new("DOMAIN=ckad.example.com\nACME_EMAIL=ops@example.com\n");
    let config: serde_yaml::Value = serde_yaml::from_str(&stdout_of(&project.compose(&["config"]))).unwrap();
    let services = config["services"].as_mapping().unwrap();
    let names: Vec<&str> = services.keys().map(|k| k.as_str().unwrap()).collect();
    assert_eq!(names, ["app", "caddy"]);
    let (app, caddy) = (&config["services"]["app"], &config["services"]["caddy"]);
    let volumes = |service: &serde_yaml::Value| -> Vec<String> {
        service["volumes"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    let socket = "/var/run/docker.sock:/var/run/docker.sock:rw";
    assert!(volumes(app).contains(&socket.to_owned()));
    assert!(
        volumes(caddy).iter().all(|v| !v.contains("docker.sock")),
        "only the app holds the engine's socket"
    );
    assert!(volumes(app).contains(&"data:/data:rw".to_owned()));
    assert!(volumes(app).contains(&"/var/lib/ckad-platform:/var/lib/ckad-platform:rw".to_owned()));
    assert!(
        config["volumes"]["data"].is_mapping(),
        "the database is on a named volume"
    );
    for service in [app, caddy] {
        assert_eq!(service["restart"], "unless-stopped");
        assert_eq!(service["network_mode"], "host");
    }
    assert!(app["healthcheck"]["test"][1]
        .as_str()
        .unwrap()
        .contains("/healthz"));
    assert_eq!(caddy["depends_on"]["app"]["condition"], "service_healthy");
    // The container's layout wins over the operator's .env (which .env.example fills).
    let env = &app["environment"];
    assert_eq!(env["DATABASE_URL"], "sqlite:///data/ckad.db");
    assert_eq!(env["STATE_DIR"], "/var/lib/ckad-platform/state");
    assert_eq!(env["LEPTOS_SITE_ADDR"], "127.0.0.1:3000");
    assert_eq!(env["PUBLIC_URL"], "https://ckad.example.com");
    assert_eq!(env["TRUSTED_PROXIES"], "1");
    assert_eq!(caddy["environment"]["APP_UPSTREAM"], "127.0.0.1:3000");

    // Without a domain the project refuses to start, and says why.
    std::fs::write(project.path().join("bare.env"), "ACME_EMAIL=ops@example.com\n").unwrap();
    let refused = project.compose(&["--env-file", "bare.env", "config"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("set DOMAIN in .env"));
}

#[test]
fn the_unit_file_verifies_with_systemd() {
    // systemd-analyze reads the unit type from the file name.
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("ckad-platform.service");
    std::fs::copy(format!("{REPO}/deploy/ckad-platform.service"), &unit).unwrap();
    let verified = output(Command::new("systemd-analyze").arg("verify").arg(&unit));
    let complaints = String::from_utf8_lossy(&verified.stderr);
    assert!(verified.status.success() && complaints.is_empty(), "{complaints}");
    assert_eq!(unit_setting("Restart"), "always");
    assert!(unit_step("cleanup-orphans").ends_with("/app/scripts/cleanup-orphans.sh"));
    // The host keeps session networks in, for the pool the operator's .env names; the step is
    // idempotent (run twice). A pool of this test's own: its rules are taken out afterwards.
    let firewall = unit_step("host-firewall.sh");
    assert_eq!(
        firewall,
        "/bin/sh /opt/ckad-platform/deploy/host-firewall.sh /opt/ckad-platform/.env"
    );
    let env = dir.path().join(".env");
    std::fs::write(
        &env,
        "DOMAIN=ckad.example.com\nSESSION_SUBNET_POOL=10.217.0.0/16\n",
    )
    .unwrap();
    for _ in 0..2 {
        let added = output(
            Command::new("sh")
                .arg(format!("{REPO}/deploy/host-firewall.sh"))
                .arg(&env),
        );
        assert!(
            added.status.success(),
            "{}",
            String::from_utf8_lossy(&added.stderr)
        );
    }
    let new_only = "-m conntrack ! --ctstate ESTABLISHED,RELATED -j DROP";
    let pool = "10.217.0.0/16";
    let rules = [
        format!("INPUT -s {pool} {new_only}"),
        format!("CKAD-EGRESS -s {pool} ! -d {pool} {new_only}"),
    ];
    let iptables = |action: &str, rule: &str| {
        output(Command::new("iptables").arg(action).args(rule.split(' ')))
            .status
            .success()
    };
    assert!(iptables("-C", "DOCKER-USER -j CKAD-EGRESS"));
    for rule in &rules {
        assert!(iptables("-C", rule), "{rule}");
        assert!(iptables("-D", rule), "once only: {rule}");
        assert!(!iptables("-C", rule), "{rule}");
    }
    // A pool that is not a network is refused, not passed to iptables.
    std::fs::write(&env, "SESSION_SUBNET_POOL=10.0.0.0/8;reboot\n").unwrap();
    let refused = output(
        Command::new("sh")
            .arg(format!("{REPO}/deploy/host-firewall.sh"))
            .arg(&env),
    );
    assert!(!refused.status.success());
}

#[test]
fn the_compose_project_runs_healthy_with_the_units_cleanup_and_the_crons_backup() {
    let host_dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let instance = common::instance(host_dir.path());
    // No warm pool: its members outlive the project's `down` (as they outlive any stop of the
    // platform), and each run of this test left the members made by then behind.
    let project = ComposeProject::new(&format!(
        "DOMAIN=ckad.example.com\nACME_EMAIL=ops@example.com\nAPP_IMAGE={}\nAPP_PORT={port}\n\
         CKAD_HOST_DIR={}\nPLATFORM_INSTANCE={instance}\nEMAIL_OUTBOX_ALLOWED=true\n\
         WARM_POOL_SIZE=0\n",
        app_image(),
        host_dir.path().display()
    ));

    // systemd's start: the host's rules for the pool its .env names (proven by /readyz below),
    // the clean-up (nothing to remove on a fresh project), then the app. (Caddy's image cannot
    // be pulled here; the Caddy test runs Debian's caddy instead.)
    let rules = unit_step("host-firewall.sh")
        .replace("/opt/ckad-platform/deploy/", &format!("{REPO}/deploy/"))
        .replace("/opt/ckad-platform/.env", ".env");
    stdout_of(&project.shell(&rules));
    let cleaned = stdout_of(&project.shell(&unit_step("cleanup-orphans")));
    assert!(
        cleaned.ends_with("cleanup-orphans: 0 orphaned clusters removed\n"),
        "{cleaned}"
    );
    stdout_of(&project.compose(&["up", "-d", "--no-build", "app"]));
    let container = stdout_of(&project.compose(&["ps", "-q", "app"]));
    let started = Instant::now();
    loop {
        let health = docker(&[
            "inspect",
            "--format",
            "{{.State.Health.Status}}",
            container.trim(),
        ]);
        if health.trim() == "healthy" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the app's health check never passed: {health}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let readiness = wait_for_ok(
        &format!("http://127.0.0.1:{port}/readyz"),
        Duration::from_secs(10),
    );
    assert_eq!(readiness.status(), 200);
    let data = stdout_of(&project.compose(&["exec", "-T", "app", "ls", "/data"]));
    assert!(data.lines().any(|f| f == "ckad.db"), "{data}");

    // The cron line as shipped, pointed at this project and a log of its own.
    let cron = std::fs::read_to_string(format!("{REPO}/deploy/ckad-backup.cron")).unwrap();
    let entry = cron
        .lines()
        .find(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .unwrap();
    let fields: Vec<&str> = entry.splitn(7, ' ').collect();
    assert_eq!(
        fields[..6],
        ["0", "*/6", "*", "*", "*", "root"],
        "every 6 hours, as root"
    );
    let log = project.path().join("backup.log");
    let command = fields[6]
        .replace("/opt/ckad-platform", project.path().to_str().unwrap())
        .replace("/var/log/ckad-backup.log", log.to_str().unwrap());
    stdout_of(&project.shell(&command));
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.starts_with("backup-db: wrote "), "{logged}");
    assert_eq!(backups_in(&host_dir.path().join("backups")).len(), 1);
}

/// Caddy (Debian's) on a loopback port, plain HTTP, with the shipped Caddyfile in front of `app`.
struct Caddy {
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Caddy {
    async fn start(port: u16, app: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new("caddy")
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(format!("{REPO}/Caddyfile"))
            .env("DOMAIN", format!("http://127.0.0.1:{port}"))
            .env("ACME_EMAIL", "ops@example.com")
            .env("APP_UPSTREAM", app)
            .env("CADDY_ADMIN", "off")
            .env("HOME", dir.path())
            .env("XDG_DATA_HOME", dir.path().join("data"))
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("caddy.log")).unwrap())
            .spawn()
            .expect("Debian's caddy (scripts/setup.sh installs it)");
        // Ready when the app answers through it: a port that merely accepts may still be
        // Caddy's listener before its server runs (or, freed and taken again, someone else's).
        let started = Instant::now();
        let health = format!("http://127.0.0.1:{port}/healthz");
        loop {
            match reqwest::get(&health).await {
                Ok(answer) if answer.status() == 200 => break,
                outcome => {
                    let log = std::fs::read_to_string(dir.path().join("caddy.log")).unwrap_or_default();
                    assert!(
                        started.elapsed() < Duration::from_secs(20),
                        "caddy did not answer for the app ({outcome:?}): {log}"
                    );
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self { child, _dir: dir }
    }
}

impl Drop for Caddy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends a WebSocket upgrade for `path` to `addr` and returns the answer's status line and head.
async fn websocket_upgrade(addr: &str, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Origin: http://127.0.0.1:3000\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("an answer to the upgrade")
            .unwrap();
        assert!(
            n > 0,
            "closed before answering: {}",
            String::from_utf8_lossy(&head)
        );
        head.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caddy_proxies_pages_the_api_and_websocket_upgrades_with_one_set_of_headers() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = common::settings(dir.path(), "unix:///var/run/docker.sock");
    settings.http.trusted_proxies = 1;
    let app = common::serve(settings).await;
    let port = common::free_port();
    let _caddy = Caddy::start(port, app.trim_start_matches("http://")).await;
    let site = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();

    let page = client
        .get(&site)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let headers = page.headers();
    let count = |name: &str| headers.get_all(name).iter().count();
    // The app's own policy (with its nonce) arrives once; Caddy adds no second one.
    assert_eq!(count("content-security-policy"), 1);
    assert!(headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("'nonce-"));
    assert_eq!(count("x-content-type-options"), 1);
    assert_eq!(count("referrer-policy"), 1);
    assert_eq!(headers["x-frame-options"], "DENY");
    assert!(headers.get("server").is_none());
    assert!(headers.contains_key("x-request-id"), "answered by the app");
    assert_eq!(headers["content-encoding"], "gzip");

    let health = client.get(format!("{site}/healthz")).send().await.unwrap();
    assert_eq!(health.text().await.unwrap(), "ok");
    let me = client.get(format!("{site}/api/auth/me")).send().await.unwrap();
    assert_eq!(me.status(), 401);
    assert_eq!(
        me.json::<serde_json::Value>().await.unwrap()["error"],
        "sign in first"
    );
    // The metrics are not on the site: Caddy answers, the app never sees the request.
    let metrics = client.get(format!("{site}/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 404);
    assert!(!metrics.headers().contains_key("x-request-id"));
    // The upgrade reaches the app and its answer comes back through Caddy.
    let answer = websocket_upgrade(&format!("127.0.0.1:{port}"), "/ws/terminal?ticket=made-up").await;
    let status_line = answer.lines().next().unwrap();
    assert!(
        status_line.starts_with(&format!("HTTP/1.1 {TERMINAL_UPGRADE_STATUS} ")),
        "{answer}"
    );
    assert!(
        answer.to_ascii_lowercase().contains("\r\nx-request-id: "),
        "{answer}"
    );
}
