//! Terminal recordings for real: a typed session through the bridge of a running platform, its
//! asciicast read back through `/api/replays` and parsed, who may read it, and its removal. And
//! the rest of the exam screen the server keeps: the notepad and the review flags.

use crate::common;

use common::{Platform, Terminals, ORIGIN};

use std::time::Duration;

use ckad_platform::AppState;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// The recording as its reader gets it: status and body.
async fn fetch(platform: &Platform, session: &str, token: &str) -> (StatusCode, String) {
    let response = platform
        .client
        .get(format!("{}/api/replays/{session}", platform.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

/// A parsed asciicast v2 file: its header and its events (time, code, data).
fn parse(cast: &str) -> (Value, Vec<(f64, String, String)>) {
    let mut lines = cast.lines();
    let header: Value = serde_json::from_str(lines.next().expect("a header")).unwrap();
    let events = lines
        .map(|line| {
            serde_json::from_str::<(f64, String, String)>(line).unwrap_or_else(|e| panic!("{e}: {line}"))
        })
        .collect();
    (header, events)
}

#[tokio::test]
async fn a_typed_session_replays_the_same_text_to_its_learner_and_admins_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = common::settings(dir.path(), "unix:///var/run/docker.sock");
    let sink = common::SmtpSink::start();
    settings.auth.email = sink.provider();
    let database = settings.database_url.clone();
    let state = AppState::build(settings).await.unwrap();
    let mut platform = Platform::serve(state.clone()).await;
    platform.mailbox = Some(common::Mailbox::Smtp(sink));
    let ada = platform.learner("ada@example.com").await;
    let session = platform.start_session(&ada).await;
    let id = session["id"].as_str().unwrap().to_owned();

    let mut shell = platform
        .connect(&platform.ticket(&ada).await, ORIGIN)
        .await
        .unwrap();
    shell
        .control(json!({ "type": "marker", "label": "Task: pods\u{7}" }))
        .await;
    shell.type_line("echo \"replay-$((6*7))\"").await;
    shell.read_until("replay-42").await;
    shell
        .control(json!({ "type": "resize", "cols": 90, "rows": 20 }))
        .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    shell
        .control(json!({ "type": "marker", "label": "Check: pods" }))
        .await;
    shell.type_line("stty size").await;
    shell.read_until("20 90").await;
    let seen = shell.seen.clone();
    shell.socket.close(None).await.unwrap();

    // The writer finishes once the socket has gone.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let cast = loop {
        let (status, cast) = fetch(&platform, &id, &ada).await;
        if status == StatusCode::OK && cast.contains("Check: pods") && cast.contains("20 90") {
            break cast;
        }
        assert!(tokio::time::Instant::now() < deadline, "{status}: {cast}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (header, events) = parse(&cast);
    assert_eq!(header["version"], 2);
    assert_eq!(
        (header["width"].as_u64(), header["height"].as_u64()),
        (Some(100), Some(30))
    );
    let printed: String = events
        .iter()
        .filter(|(_, code, _)| code == "o")
        .map(|(_, _, data)| data.as_str())
        .collect();
    assert!(
        printed.starts_with(&seen),
        "the recording shows what the learner saw\nrecorded: {printed:?}\nseen: {seen:?}"
    );
    let markers: Vec<_> = events
        .iter()
        .filter(|(_, code, _)| code == "m")
        .map(|(_, _, label)| label.as_str())
        .collect();
    assert_eq!(
        markers,
        ["Task: pods", "Check: pods"],
        "control characters dropped"
    );
    assert!(events
        .iter()
        .any(|(_, code, size)| code == "r" && size == "90x20"));
    assert!(
        events.windows(2).all(|w| w[0].0 <= w[1].0),
        "times never run back"
    );

    // Only the learner and administrators may read it; to anyone else there is none.
    let bob = platform.learner("bob@example.com").await;
    let (status, body) = fetch(&platform, &id, &bob).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(fetch(&platform, &id, "").await.0, StatusCode::UNAUTHORIZED);
    let admin = platform.learner("admin@example.com").await;
    assert_eq!(
        fetch(&platform, &id, &admin).await,
        (StatusCode::OK, cast.clone())
    );
    assert_eq!(
        fetch(&platform, "../../etc/passwd", &admin).await.0,
        StatusCode::NOT_FOUND
    );

    // It outlives the session, and goes with its user.
    let (status, _) = platform.post("/api/session/stop", &ada).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(fetch(&platform, &id, &ada).await, (StatusCode::OK, cast));
    assert_eq!(
        state.recordings.sweep().await.unwrap(),
        0,
        "kept within its retention"
    );
    let pool = sqlx::SqlitePool::connect(&database).await.unwrap();
    sqlx::query("PRAGMA foreign_keys = ON")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM users WHERE email = 'ada@example.com'")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(state.recordings.sweep().await.unwrap(), 1);
    assert_eq!(fetch(&platform, &id, &admin).await.0, StatusCode::NOT_FOUND);
    assert!(
        std::fs::read_dir(dir.path().join("state/replays"))
            .unwrap()
            .next()
            .is_none(),
        "nothing of ada's is left on disk"
    );
    platform.shut_down().await;
}

#[tokio::test]
async fn a_second_tab_is_a_shell_of_its_own_and_the_recording_follows_the_tab_in_front() {
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::start(common::settings(dir.path(), "unix:///var/run/docker.sock")).await;
    let ada = platform.learner("ada@example.com").await;
    let session = platform.start_session(&ada).await;
    let id = session["id"].as_str().unwrap().to_owned();
    for tab in [0, 4] {
        assert_eq!(
            platform
                .connect_tab(&platform.ticket(&ada).await, tab)
                .await
                .err(),
            Some(StatusCode::BAD_REQUEST),
            "tab {tab}"
        );
    }

    let mut first = platform
        .connect_tab(&platform.ticket(&ada).await, 1)
        .await
        .unwrap();
    first.type_line("MARK=one-$((1+1)); echo \"[$MARK]\"").await;
    first.read_until("[one-2]").await;
    // Tab 2: another shell (the first's variable is not there), recorded only once in front.
    let mut second = platform
        .connect_tab(&platform.ticket(&ada).await, 2)
        .await
        .unwrap();
    second.type_line("echo \"[$MARK]two-$((2+2))\"").await;
    second.read_until("[]two-4").await;
    second.control(json!({ "type": "front" })).await;
    second.type_line("echo \"three-$((3+3))\"").await;
    second.read_until("three-6").await;
    // The first tab's shell is still its own.
    first.type_line("echo \"[$MARK]again\"").await;
    first.read_until("[one-2]again").await;
    first.socket.close(None).await.unwrap();
    second.socket.close(None).await.unwrap();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    // The writer finishes once both sockets have gone.
    let cast = loop {
        let (status, cast) = fetch(&platform, &id, &ada).await;
        if status == StatusCode::OK && cast.contains("three-6") {
            break cast;
        }
        assert!(tokio::time::Instant::now() < deadline, "{status}: {cast}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let printed: String = parse(&cast)
        .1
        .into_iter()
        .filter(|(_, code, _)| code == "o")
        .map(|(_, _, data)| data)
        .collect();
    let at = |text: &str| {
        printed
            .find(text)
            .unwrap_or_else(|| panic!("{text:?} not recorded: {printed:?}"))
    };
    // The first tab's screen, then the second's drawn whole when it came to the front (with
    // what it showed before), then what it showed next; the first tab's later line is not there.
    assert!(at("[one-2]") < at("[]two-4") && at("[]two-4") < at("three-6"));
    assert!(!printed.contains("[one-2]again"), "{printed:?}");
    common::stop_leaving_nothing(&platform, &ada, &session, dir.path()).await;
    platform.shut_down().await;
}

#[tokio::test]
async fn the_notepad_and_review_flags_are_kept_on_the_server_for_the_started_session() {
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::start(common::settings(dir.path(), "unix:///var/run/docker.sock")).await;
    let ada = platform.learner("ada@example.com").await;
    let put = |path: String, body: Value| {
        let (platform, ada) = (&platform, ada.clone());
        async move { platform.call(reqwest::Method::PUT, &path, &ada, Some(body)).await }
    };
    let (status, body) = platform.get("/api/desk", &ada).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("you have no started session"))
    );

    platform.start_session(&ada).await;
    let (_, tasks) = platform.get("/api/tasks", &ada).await;
    let task = tasks[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        platform.get("/api/desk", &ada).await,
        (StatusCode::OK, json!({ "notepad": "", "flagged": [] }))
    );

    let (status, _) = put(
        "/api/desk/notepad".into(),
        json!({ "text": "q3: come back to the probe ✓" }),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let flag_path = format!("/api/desk/flags/{task}");
    assert_eq!(
        put(flag_path.clone(), json!({ "flagged": true })).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        put(flag_path.clone(), json!({ "flagged": true })).await.0,
        StatusCode::NO_CONTENT,
        "again is fine"
    );
    let (status, body) = put("/api/desk/flags/no-such-task".into(), json!({ "flagged": true })).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("there is no task \"no-such-task\""))
    );
    let (status, body) = put("/api/desk/notepad".into(), json!({ "text": "x".repeat(20_001) })).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(
        put("/api/desk/notepad".into(), json!({ "words": 1 })).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        platform.get("/api/desk", &ada).await,
        (
            StatusCode::OK,
            json!({ "notepad": "q3: come back to the probe ✓", "flagged": [task] })
        ),
        "a refused save lost nothing"
    );
    assert_eq!(
        put(flag_path.clone(), json!({ "flagged": false })).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(platform.get("/api/desk", &ada).await.1["flagged"], json!([]));

    // Another learner has a desk of their own only with a session of their own.
    let bob = platform.learner("bob@example.com").await;
    assert_eq!(platform.get("/api/desk", &bob).await.0, StatusCode::NOT_FOUND);

    let (status, _) = platform.post("/api/session/stop", &ada).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(platform.get("/api/desk", &ada).await.0, StatusCode::NOT_FOUND);
    platform.shut_down().await;
}
