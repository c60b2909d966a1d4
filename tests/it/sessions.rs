//! Sessions end to end on a running platform with real `lite` clusters, terminals and SQLite:
//! start with its steps streamed, status, Check, extend, stop, history; the capacity cap and the
//! start rate; a timeout with its warnings; the admin API; and a `kill -9` during a start.

use crate::common::{self, Process};

use std::time::{Duration, Instant};

use chrono::Utc;
use ckad_platform::{
    domain::SessionStatus,
    store::{NewSession, Store},
};
use common::Platform;
use reqwest::StatusCode;
use serde_json::Value;

/// The server-sent events of a user's session, as a page receives them.
pub(crate) struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    pub(crate) async fn open(platform: &Platform, token: &str) -> Self {
        let response = platform
            .client
            .get(format!("{}/api/session/events", platform.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event's name and JSON body.
    pub(crate) async fn next(&mut self) -> (String, Value) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    block
                        .lines()
                        .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
                };
                if let (Some(event), Some(data)) = (field("event:"), field("data:")) {
                    let body: Value = serde_json::from_str(&data).unwrap();
                    assert_eq!(body["type"], event.as_str(), "the JSON carries the event's name");
                    return (event, body);
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(90), self.response.chunk())
                .await
                .expect("an event in time")
                .unwrap()
                .expect("the stream stays open");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// The steps a start shows ("cluster running", ...) until `started`, and the started session.
    pub(crate) async fn steps_until_started(&mut self) -> (Vec<String>, Value) {
        let mut steps = Vec::new();
        loop {
            match self.next().await {
                (name, body) if name == "started" => return (steps, body["session"].clone()),
                (name, body) => {
                    assert_eq!(name, "progress", "{body}");
                    steps.push(format!(
                        "{} {}",
                        body["step"].as_str().unwrap(),
                        body["state"].as_str().unwrap()
                    ));
                }
            }
        }
    }
}

/// The steps of a cold start, as its page shows them.
pub(crate) const COLD_START_STEPS: [&str; 6] = [
    "cluster running",
    "cluster done",
    "tasks running",
    "tasks done",
    "terminal running",
    "terminal done",
];

#[tokio::test]
async fn a_session_starts_step_by_step_is_checked_extended_stopped_and_remembered() {
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::start(common::settings(dir.path(), "unix:///var/run/docker.sock")).await;
    let token = platform.learner("ada@example.com").await;
    assert_eq!(
        platform.get("/api/session/status", &token).await,
        (
            StatusCode::NOT_FOUND,
            serde_json::json!({ "error": "you have no session running" })
        )
    );

    let mut events = Events::open(&platform, &token).await;
    let (status, recorded) = platform.post("/api/session/start", &token).await;
    assert_eq!(
        (status, recorded["status"].as_str()),
        (StatusCode::ACCEPTED, Some("provisioning"))
    );
    let (status, again) = platform.post("/api/session/start", &token).await;
    assert_eq!(
        (status, again["error"].as_str()),
        (StatusCode::CONFLICT, Some("you already have a session running"))
    );

    let (steps, started) = events.steps_until_started().await;
    assert_eq!(steps, COLD_START_STEPS);
    assert_eq!(started["id"], recorded["id"]);
    let (_, status) = platform.get("/api/session/status", &token).await;
    assert_eq!(status["status"], "started");
    let expires = |s: &Value| {
        chrono::DateTime::parse_from_rfc3339(s["expires_at"].as_str().unwrap())
            .unwrap()
            .to_utc()
    };
    let left = expires(&status) - Utc::now();
    assert!((59..=60).contains(&left.num_minutes()), "{left}");
    assert!(!common::containers_labelled(&common::containers_of(&status))
        .await
        .is_empty());

    // The tasks' setup is in place and Check grades against this session's cluster.
    let (code, report) = platform.post("/api/tasks/pod-with-labels/check", &token).await;
    assert_eq!(code, StatusCode::OK, "{report}");
    assert_eq!(report["passed"], false);
    let first = &report["checks"][0];
    assert_eq!(first["passed"], false);
    assert!(
        first["reason"].as_str().unwrap().contains("does not exist"),
        "{report}"
    );
    assert_eq!(
        platform.post("/api/tasks/no-such-task/check", &token).await.0,
        StatusCode::NOT_FOUND
    );

    // Extend once by 30 minutes.
    let (code, extended) = platform.post("/api/session/extend", &token).await;
    assert_eq!(code, StatusCode::OK, "{extended}");
    assert_eq!(extended["extended"], true);
    assert_eq!((expires(&extended) - expires(&status)).num_minutes(), 30);
    assert_eq!(events.next().await.0, "extended");
    let (code, refused) = platform.post("/api/session/extend", &token).await;
    assert_eq!(
        (code, refused["error"].as_str()),
        (StatusCode::CONFLICT, Some("the session was extended already"))
    );

    // Stop: everything goes, and the session is remembered as ended.
    assert_eq!(
        platform.post("/api/session/stop", &token).await.0,
        StatusCode::NO_CONTENT
    );
    let (name, ended) = events.next().await;
    assert_eq!(
        (name.as_str(), ended["status"].as_str()),
        ("ended", Some("ended"))
    );
    assert_eq!(
        platform.post("/api/session/stop", &token).await.0,
        StatusCode::NOT_FOUND,
        "a second stop"
    );
    assert!(common::containers_labelled(&common::containers_of(&status))
        .await
        .is_empty());
    let (_, history) = platform.get("/api/session/history", &token).await;
    assert_eq!(history[0]["id"], status["id"]);
    assert_eq!(history[0]["status"], "ended");
    let store = Store::open(&common::settings(dir.path(), "").database_url)
        .await
        .unwrap();
    assert_eq!(
        store.ports_of(status["id"].as_str().unwrap()).await.unwrap(),
        None
    );
    platform.shut_down().await;
}

#[tokio::test]
async fn the_seats_are_capped_starts_are_rate_limited_and_admins_see_and_end_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = common::settings(dir.path(), "unix:///var/run/docker.sock");
    settings.sessions.max_concurrent = 1;
    let platform = Platform::start(settings.clone()).await;
    let ada = platform.learner("ada@example.com").await;
    let bob = platform.learner("bob@example.com").await;
    let admin = platform.learner("admin@example.com").await;

    let session = platform.start_session(&ada).await;
    let (code, full) = platform.post("/api/session/start", &bob).await;
    assert_eq!(
        (code, full["error"].as_str()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some("all 1 practice seats are taken; try again in a few minutes")
        )
    );

    // Three starts in the last hour are all a learner gets.
    let store = Store::open(&settings.database_url).await.unwrap();
    let carol = platform.learner("carol@example.com").await;
    let carol_id = store
        .user_by_email("carol@example.com")
        .await
        .unwrap()
        .unwrap()
        .id;
    for minutes_ago in [50, 30, 10] {
        let start_time = Utc::now() - chrono::Duration::minutes(minutes_ago);
        let past = NewSession {
            user_id: &carol_id,
            cluster_name: &format!("ckad-past{minutes_ago}"),
            start_time,
            expires_at: start_time + chrono::Duration::minutes(5),
            exam_id: None,
        };
        let id = store.insert_session(past, 10).await.unwrap().unwrap().id;
        store
            .set_session_status(&id, SessionStatus::Ended, "")
            .await
            .unwrap();
    }
    let response = platform
        .client
        .post(format!("{}/api/session/start", platform.base))
        .bearer_auth(&carol)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (9 * 60..=10 * 60).contains(&retry_after),
        "the oldest start leaves the hour in 10 minutes: {retry_after}"
    );

    // Admins only.
    assert_eq!(
        platform.get("/api/v1/sessions", &ada).await.0,
        StatusCode::FORBIDDEN
    );
    let (code, live) = platform.get("/api/v1/sessions", &admin).await;
    assert_eq!(code, StatusCode::OK, "{live}");
    assert_eq!(live.as_array().unwrap().len(), 1);
    assert_eq!(live[0]["id"], session["id"]);
    let id = session["id"].as_str().unwrap();
    let (_, stats) = platform.get("/api/v1/sessions/stats", &admin).await;
    assert_eq!(
        (stats["live"].as_u64(), stats["capacity"].as_u64()),
        (Some(1), Some(1))
    );
    let (_, status) = platform
        .get(&format!("/api/v1/sessions/{id}/status"), &admin)
        .await;
    assert_eq!(status["status"], "started");
    let (_, ports) = platform
        .get(&format!("/api/v1/sessions/{id}/ports"), &admin)
        .await;
    let (_, routing) = platform
        .get(&format!("/api/v1/sessions/{id}/routing"), &admin)
        .await;
    assert_eq!(
        routing["api_endpoint"],
        format!("https://127.0.0.1:{}", ports["api"])
    );
    assert_eq!(
        routing["terminal"],
        format!("term-{}", routing["cluster"].as_str().unwrap())
    );

    let (code, ended) = platform
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/sessions/{id}"),
            &admin,
            None,
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{ended}");
    assert_eq!(ended["status"], "ended");
    assert_eq!(ended["notes"], "terminated by an admin");
    assert!(common::containers_labelled(&common::containers_of(&session))
        .await
        .is_empty());
    let (code, _) = platform
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/sessions/{id}"),
            &admin,
            None,
        )
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND, "terminating twice");
    platform.shut_down().await;
}

#[tokio::test]
async fn time_runs_out_with_warnings_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = common::settings(dir.path(), "unix:///var/run/docker.sock");
    settings.sessions.ttl = Duration::from_secs(8);
    settings.sessions.warnings = vec![Duration::from_secs(6), Duration::from_secs(3)];
    let platform = Platform::start(settings).await;
    let token = platform.learner("ada@example.com").await;
    let mut events = Events::open(&platform, &token).await;
    let session = platform.start_session(&token).await;

    let mut seen = Vec::new();
    let ended = loop {
        match events.next().await {
            (name, body) if name == "ended" => break body,
            (name, body) if name == "warning" => seen.push(body["minutes_left"].as_u64().unwrap()),
            _ => {}
        }
    };
    assert_eq!(seen.len(), 2, "one warning per threshold: {seen:?}");
    assert_eq!(ended["status"], "timeout");
    assert!(common::containers_labelled(&common::containers_of(&session))
        .await
        .is_empty());
    let (_, history) = platform.get("/api/session/history", &token).await;
    assert_eq!(history[0]["status"], "timeout");
    platform.shut_down().await;
}

/// The platform binary under test, killed if the test fails before it is.
#[tokio::test(flavor = "multi_thread")]
async fn a_platform_killed_during_a_start_leaves_nothing_once_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let sink = common::SmtpSink::start();
    let mail = sink.env();
    let spawn = || {
        Process::spawn(
            Process::command(port, dir.path())
                .env("JWT_SECRET", "a-test-secret-that-is-at-least-32-bytes")
                .envs(mail.clone()),
        )
    };
    let platform = Platform::at(
        &format!("http://127.0.0.1:{port}"),
        Some(common::Mailbox::Smtp(sink)),
    );
    let mut process = spawn();
    platform.wait_until_ready().await;
    let token = platform.learner("ada@example.com").await;
    let (code, session) = platform.post("/api/session/start", &token).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{session}");
    // Killed once the control plane has begun to appear in Docker.
    let instance = common::instance(dir.path());
    let deadline = Instant::now() + Duration::from_secs(30);
    let project = loop {
        if let Some(cluster) = common::clusters_of_instance(&instance).await.pop() {
            let project = format!("com.docker.compose.project=kwok-{cluster}");
            if !common::containers_labelled(&project).await.is_empty() {
                break project;
            }
        }
        assert!(Instant::now() < deadline, "the start never began");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    process.0.kill().unwrap(); // SIGKILL
    process.0.wait().unwrap();

    let _restarted = spawn();
    platform.wait_until_ready().await;
    // The start-up reconciliation (in the background) fails the interrupted start and removes
    // the half-made cluster.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, _) = platform.get("/api/session/status", &token).await;
        let clusters = common::clusters_of_instance(&instance).await;
        let left = common::containers_labelled(&project).await;
        let terminal = common::containers_labelled(&common::containers_of(&session)).await;
        if code == StatusCode::NOT_FOUND && clusters.is_empty() && left.is_empty() && terminal.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "left behind: {code} {clusters:?} {left:?} {terminal:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, history) = platform.get("/api/session/history", &token).await;
    assert_eq!(history[0]["id"], session["id"]);
    assert_eq!(history[0]["status"], "failed");
}

/// An operator's restart (SIGTERM) while a learner's start is under way: the start completes
/// within the grace and the learner finds a started session when the platform is back.
#[tokio::test(flavor = "multi_thread")]
async fn a_start_under_way_at_a_sigterm_completes_before_the_platform_stops() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let sink = common::SmtpSink::start();
    let mail = sink.env();
    let spawn = || {
        Process::spawn(
            Process::command(port, dir.path())
                .env("JWT_SECRET", "a-test-secret-that-is-at-least-32-bytes")
                .env("SHUTDOWN_GRACE_SECS", "90")
                .envs(mail.clone()),
        )
    };
    let platform = Platform::at(
        &format!("http://127.0.0.1:{port}"),
        Some(common::Mailbox::Smtp(sink)),
    );
    let mut process = spawn();
    platform.wait_until_ready().await;
    let token = platform.learner("ada@example.com").await;
    let (code, session) = platform.post("/api/session/start", &token).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{session}");
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &process.0.id().to_string()])
        .status()
        .unwrap()
        .success());
    assert!(process.0.wait().unwrap().success());

    let _restarted = spawn();
    platform.wait_until_ready().await;
    let (code, status) = platform.get("/api/session/status", &token).await;
    assert_eq!(code, StatusCode::OK, "{status}");
    assert_eq!(status["status"], "started", "{status}");
    common::stop_leaving_nothing(&platform, &token, &session, dir.path()).await;
}

#[tokio::test]
async fn a_stop_during_the_start_wins_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::start(common::settings(dir.path(), "unix:///var/run/docker.sock")).await;
    let token = platform.learner("ada@example.com").await;
    let instance = common::instance(dir.path());
    let (code, session) = platform.post("/api/session/start", &token).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{session}");
    // Stopped once its cluster has begun to appear.
    let deadline = Instant::now() + Duration::from_secs(30);
    let cluster = loop {
        if let Some(cluster) = common::clusters_of_instance(&instance).await.pop() {
            break cluster;
        }
        assert!(Instant::now() < deadline, "the start never began");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        platform.post("/api/session/stop", &token).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        platform.post("/api/session/stop", &token).await.0,
        StatusCode::NOT_FOUND
    );

    // Whatever the start was making when the stop came is removed, and stays removed once the
    // start has had time to finish.
    common::wait_until_nothing_left(&cluster, &session).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(common::left_of(&cluster, &session).await, Vec::<String>::new());
    let (_, history) = platform.get("/api/session/history", &token).await;
    assert_eq!(history[0]["id"], session["id"]);
    assert_eq!(history[0]["status"], "ended");
    platform.shut_down().await;
}

/// A start that fails (here: the terminal image is missing, so the last step fails after the
/// cluster and the tasks were made) tells the learner a sentence with a reference, never the
/// error's text: no path, no command line, no JSON. Nothing is kept.
#[tokio::test]
async fn a_failed_start_tells_the_learner_a_sentence_and_a_reference() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = common::settings(dir.path(), "unix:///var/run/docker.sock");
    settings.terminals.image = "ckad-terminal:never-built".into();
    let platform = Platform::start(settings).await;
    let token = platform.learner("unlucky@example.com").await;
    let mut events = Events::open(&platform, &token).await;
    let (status, session) = platform.post("/api/session/start", &token).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{session}");
    let failed = loop {
        match events.next().await {
            (name, body) if name == "failed" => break body["message"].as_str().unwrap().to_owned(),
            // The removal's own `ended` (status `failed`) may come first.
            (name, body) if name == "ended" => assert_eq!(body["status"], "failed"),
            (name, body) => assert_eq!(name, "progress", "{body}"),
        }
    };
    let reference = failed
        .strip_prefix("Your practice environment could not start. Nothing was kept; try again (reference ")
        .and_then(|rest| rest.strip_suffix(")."))
        .unwrap_or_else(|| panic!("{failed:?}"));
    assert!(
        reference.len() == 8 && reference.bytes().all(|b| b.is_ascii_hexdigit()),
        "{failed:?}"
    );
    for leak in ["/", "never-built", "docker", "{", "Error", "kwokctl"] {
        assert!(!failed.contains(leak), "{leak:?} in {failed:?}");
    }
    let (_, history) = platform.get("/api/session/history", &token).await;
    assert_eq!(history[0]["status"], "failed");
    assert!(common::containers_labelled(&common::containers_of(&session))
        .await
        .is_empty());
    platform.shut_down().await;
}
