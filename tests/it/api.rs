//! The real application on 127.0.0.1:0 with its own SQLite file, driven over HTTP.

use std::{path::Path, time::Duration};

use crate::common;

use ckad_platform::{docker::DockerEngine, store::Store, AppState};
use common::{settings, Platform};

/// A platform of this process with its own directory.
struct TestApp {
    platform: Platform,
    _dir: tempfile::TempDir,
}

impl TestApp {
    /// With its mail going to a real SMTP server, so that learners can sign up.
    async fn spawn() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let platform = Platform::start(settings(dir.path(), "unix:///var/run/docker.sock")).await;
        Self { platform, _dir: dir }
    }

    async fn serve(state: AppState, dir: tempfile::TempDir) -> Self {
        Self {
            platform: Platform::serve(state).await,
            _dir: dir,
        }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.platform
            .client
            .get(format!("{}{path}", self.platform.base))
            .send()
            .await
            .unwrap()
    }

    async fn shut_down(self) {
        self.platform.shut_down().await;
    }
}

#[tokio::test]
async fn healthz_says_alive() {
    let app = TestApp::spawn().await;
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "ok");
    app.shut_down().await;
}

#[tokio::test]
async fn readyz_is_ready_when_the_database_and_docker_answer() {
    let app = TestApp::spawn().await;
    let response = app.get("/readyz").await;
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ready"], true);
    let names: Vec<_> = body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].clone())
        .collect();
    assert_eq!(
        names,
        ["database", "docker", "lite", "terminal", "firewall", "pool"]
    );
    app.shut_down().await;
}

#[tokio::test]
async fn readyz_names_an_engine_that_does_not_answer() {
    let dir = tempfile::tempdir().unwrap();
    let missing = format!("unix://{}/no-docker.sock", dir.path().display());
    let state = AppState::build(settings(dir.path(), &missing)).await.unwrap();
    let app = TestApp::serve(state, dir).await;

    let response = app.get("/readyz").await;
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["ready"], false);
    let docker = &body["checks"][1];
    assert_eq!(
        (docker["name"].as_str(), docker["ok"].as_bool()),
        (Some("docker"), Some(false))
    );
    assert!(
        docker["reason"]
            .as_str()
            .unwrap()
            .starts_with("engine not answering"),
        "{docker}"
    );
    assert_eq!(body["checks"][0]["ok"], true, "the database is fine: {body}");
    let lite = &body["checks"][2];
    assert_eq!(lite["name"], "lite");
    assert!(
        lite["reason"].as_str().unwrap().starts_with("Docker engine:"),
        "{lite}"
    );
    app.shut_down().await;
}

/// The document is made with the router (`routes::api`): a route is in the one exactly when it
/// is in the other. This holds the served document to what the running server answers, and to
/// OpenAPI 3.1: every operation answers something, and every schema it names is defined.
#[tokio::test]
async fn the_openapi_document_lists_operations_the_server_has() {
    let app = TestApp::spawn().await;
    let response = app.get("/api/openapi.json").await;
    assert_eq!(response.status(), 200);
    let doc: serde_json::Value = response.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let typed: utoipa::openapi::OpenApi = serde_json::from_value(doc.clone()).unwrap();
    assert_eq!(typed.info.title, "CKAD practice platform");
    let paths = doc["paths"].as_object().unwrap();
    let operations: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(
        operations, 46,
        "auth 11, session 6, tasks 3, exams 4, terminal 2, admin 7, access 5, billing 3, desk 3, replays 1, this one"
    );
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let text = doc.to_string();
    for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        assert!(schemas.contains_key(name), "{name} is named but not defined");
    }
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            assert!(
                !operation["responses"].as_object().unwrap().is_empty(),
                "{method} {path} answers nothing"
            );
        }
    }
    let (_, made) = ckad_platform::routes::api();
    assert_eq!(
        serde_json::to_value(&made).unwrap(),
        doc,
        "the served document is the router's"
    );
    // Every listed operation reaches a handler: an answer in JSON (or the socket's own refusal),
    // never the method-not-allowed or the site's HTML page for unknown paths.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (path, operations) in paths {
        for method in operations.as_object().unwrap().keys() {
            let url = format!(
                "{}{}",
                app.platform.base,
                path.replace("{id}", "x").replace("{session_id}", "x")
            );
            let method: reqwest::Method = method.to_uppercase().parse().unwrap();
            let response = client.request(method.clone(), &url).send().await.unwrap();
            let status = response.status().as_u16();
            let kind = response
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            assert_ne!(status, 405, "{method} {path}");
            assert!(
                !kind.starts_with("text/html"),
                "{method} {path} answered {status} with a page"
            );
        }
    }
    app.shut_down().await;
}

#[tokio::test]
async fn tasks_are_served_to_learners_with_hints_and_without_their_checks_or_solutions() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/api/tasks").await.status(), 401);
    assert_eq!(app.get("/api/tasks/pod-with-labels").await.status(), 401);
    let token = app.platform.learner("ada@example.com").await;
    let (code, tasks) = app.platform.get("/api/tasks", &token).await;
    assert_eq!(code, 200);
    let tasks = tasks.as_array().unwrap();
    assert!(tasks.len() >= 24, "{} tasks", tasks.len());
    for task in tasks {
        let keys: Vec<_> = task.as_object().unwrap().keys().cloned().collect();
        assert!(
            !keys.iter().any(|k| k.contains("solution") || k.contains("check")),
            "{keys:?}"
        );
    }
    let (code, one) = app.platform.get("/api/tasks/pod-with-labels", &token).await;
    assert_eq!(code, 200);
    assert_eq!(one["title"], "Run a labelled pod");
    assert!(one["body_html"].as_str().unwrap().contains("<code>web</code>"));
    // Practice shows the hints (a mock exam does not: tests/it/exams.rs).
    assert!(
        one["hints_html"][0]
            .as_str()
            .unwrap()
            .contains("<code>--labels</code>"),
        "{one}"
    );
    let (code, _) = app.platform.get("/api/tasks/no-such-task", &token).await;
    assert_eq!(code, 404);
    app.shut_down().await;
}

#[tokio::test]
async fn readyz_names_a_missing_terminal_image() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = settings(dir.path(), "unix:///var/run/docker.sock");
    settings.terminals.image = "ckad-terminal:never-built".into();
    let app = TestApp::serve(AppState::build(settings).await.unwrap(), dir).await;

    let response = app.get("/readyz").await;
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["checks"][3]["name"], "terminal");
    assert_eq!(
        body["checks"][3]["reason"],
        "the terminal image ckad-terminal:never-built is missing (scripts/build-terminal-image.sh builds it)"
    );
    app.shut_down().await;
}

#[tokio::test]
async fn readyz_reports_an_unmigrated_database() {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path(), "unix:///var/run/docker.sock");
    let mut state = AppState::build(settings).await.unwrap();
    state.store = Store::connect(&format!("sqlite://{}/fresh.db", dir.path().display()))
        .await
        .unwrap();
    state.docker = DockerEngine::new("unix:///var/run/docker.sock");
    let app = TestApp::serve(state, dir).await;

    let response = app.get("/readyz").await;
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["checks"][0]["name"], "database");
    let known = ckad_platform::store::MIGRATOR.iter().count();
    assert_eq!(
        body["checks"][0]["reason"],
        format!("0 of {known} migrations applied")
    );
    app.shut_down().await;
}

#[tokio::test]
async fn readyz_says_why_the_cluster_provider_cannot_work() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = settings(dir.path(), "unix:///var/run/docker.sock");
    settings.clusters.lite_bin_dir = None;
    let app = TestApp::serve(AppState::build(settings).await.unwrap(), dir).await;

    let response = app.get("/readyz").await;
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body["checks"][2]["reason"],
        "the provider cannot work: LITE_BIN_DIR is not set"
    );
    app.shut_down().await;
}

#[tokio::test]
async fn metrics_count_requests_by_matched_route() {
    let app = TestApp::spawn().await;
    for _ in 0..3 {
        app.get("/healthz").await;
    }
    app.get("/no/such/page/7").await;
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(
        text.contains(r#"ckad_http_requests_total{method="GET",route="/healthz",status="200"} 3"#),
        "{text}"
    );
    assert!(text.contains(r#"ckad_http_request_duration_seconds_count{method="GET",route="/healthz"} 3"#));
    // Unknown paths share one series rather than one each.
    assert!(!text.contains("/no/such/page"));
    app.shut_down().await;
}

#[tokio::test]
async fn metrics_are_for_the_host_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = settings(dir.path(), "unix:///var/run/docker.sock");
    settings.http.trusted_proxies = 1;
    let app = TestApp::serve(AppState::build(settings).await.unwrap(), dir).await;
    let metrics = |forwarded_for: &'static str| {
        app.platform
            .client
            .get(format!("{}/metrics", app.platform.base))
            .header("x-forwarded-for", forwarded_for)
            .send()
    };
    assert_eq!(metrics("203.0.113.7").await.unwrap().status(), 404);
    assert_eq!(metrics("2001:db8::7").await.unwrap().status(), 404);
    assert_eq!(metrics("127.0.0.1").await.unwrap().status(), 200);
    assert_eq!(metrics("::ffff:127.0.0.1").await.unwrap().status(), 200);
    app.shut_down().await;
}

/// Why the platform is not ready names its internals (engine errors, paths, migrations): only
/// the host gets them; anyone else gets the status code and a bare word.
#[tokio::test]
async fn readyz_gives_its_reasons_to_the_host_alone() {
    let dir = tempfile::tempdir().unwrap();
    let missing = format!("unix://{}/no-docker.sock", dir.path().display());
    let mut settings = settings(dir.path(), &missing);
    settings.http.trusted_proxies = 1;
    let app = TestApp::serve(AppState::build(settings).await.unwrap(), dir).await;
    let readyz = |forwarded_for: &'static str| {
        app.platform
            .client
            .get(format!("{}/readyz", app.platform.base))
            .header("x-forwarded-for", forwarded_for)
            .send()
    };
    for outsider in ["203.0.113.7", "2001:db8::7"] {
        let answer = readyz(outsider).await.unwrap();
        assert_eq!(answer.status(), 503);
        assert_eq!(answer.text().await.unwrap(), "not ready", "{outsider}");
    }
    let answer = readyz("127.0.0.1").await.unwrap();
    assert_eq!(answer.status(), 503);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert!(
        body["checks"][1]["reason"]
            .as_str()
            .unwrap()
            .starts_with("engine not answering"),
        "{body}"
    );
    app.shut_down().await;
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_safe_headers() {
    let app = TestApp::spawn().await;
    let response = app.get("/healthz").await;
    let id = response.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert_eq!(
        response.headers()["referrer-policy"],
        "strict-origin-when-cross-origin"
    );
    app.shut_down().await;
}

#[tokio::test]
async fn the_home_page_is_rendered_with_a_nonce_bound_policy() {
    let app = TestApp::spawn().await;
    let response = app.get("/").await;
    assert_eq!(response.status(), 200);
    let policy = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let html = response.text().await.unwrap();
    assert!(html.contains("Practise for the CKAD on a real cluster"));
    assert!(html.contains("Application Environment, Configuration and Security"));

    let nonce = policy
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap();
    assert!(nonce.len() >= 16, "{policy}");
    // Every script on the page is either external or carries this response's nonce.
    let scripts: Vec<&str> = html
        .split("<script")
        .skip(1)
        .map(|s| s.split('>').next().unwrap())
        .collect();
    assert!(!scripts.is_empty());
    for attributes in scripts {
        assert!(
            attributes.contains(&format!("nonce=\"{nonce}\"")) || attributes.contains("src="),
            "script without nonce: {attributes}"
        );
    }
    // A second render gets a fresh nonce.
    let again = app.get("/").await;
    assert_ne!(
        again.headers()["content-security-policy"].to_str().unwrap(),
        policy
    );
    app.shut_down().await;
}

#[tokio::test]
async fn an_unknown_page_is_a_404_with_a_way_back() {
    let app = TestApp::spawn().await;
    let response = app.get("/nowhere").await;
    assert_eq!(response.status(), 404);
    assert!(response.text().await.unwrap().contains("Page not found"));
    app.shut_down().await;
}

/// A Docker socket that accepts connections and never answers: a hung engine.
fn hung_engine(dir: &Path) -> (String, tokio::net::UnixListener) {
    let path = dir.join("hung.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    (format!("unix://{}", path.display()), listener)
}

async fn app_with_hung_engine(grace: Duration) -> (TestApp, tokio::net::UnixListener) {
    let dir = tempfile::tempdir().unwrap();
    let (host, engine) = hung_engine(dir.path());
    let mut settings = settings(dir.path(), &host);
    settings.shutdown_grace = grace;
    let state = AppState::build(settings).await.unwrap();
    (TestApp::serve(state, dir).await, engine)
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_request_finish() {
    let (app, _engine) = app_with_hung_engine(Duration::from_secs(5)).await;
    let in_flight = tokio::spawn(
        app.platform
            .client
            .get(format!("{}/readyz", app.platform.base))
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.shut_down().await;
    // The readiness probe waited out its 2 s limit, then answered before the server stopped.
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["checks"][1]["reason"], "no answer within 2s");
}

#[tokio::test]
async fn shutdown_cuts_off_requests_that_outlast_the_grace_period() {
    let (app, _engine) = app_with_hung_engine(Duration::from_millis(200)).await;
    let in_flight = tokio::spawn(
        app.platform
            .client
            .get(format!("{}/readyz", app.platform.base))
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let asked = std::time::Instant::now();
    app.shut_down().await;
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "took {:?}",
        asked.elapsed()
    );
    drop(in_flight);
}
