//! Two replicas of the platform on one PostgreSQL database and one Docker engine: what happens
//! through one reaches the pages, terminals and starts held by the other (`LISTEN/NOTIFY`).

use std::time::{Duration, Instant};

use crate::{
    common::{self, Platform, Terminals, ORIGIN},
    postgres::TestDatabase,
    sessions::{Events, COLD_START_STEPS},
};

use reqwest::StatusCode;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

#[tokio::test]
async fn what_happens_through_one_replica_reaches_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let database = TestDatabase::create().await;
    // The same settings, as replicas have: one database, one state directory, one instance.
    let mut settings = common::settings(dir.path(), "unix:///var/run/docker.sock");
    settings.database_url = database.url();
    let a = Platform::start(settings.clone()).await;
    let b = Platform::start(settings).await;
    let token = a.learner("ada@example.com").await;

    // A page on B sees every step of a start made through A, in order, then `started`.
    let mut page = Events::open(&b, &token).await;
    let (status, session) = a.post("/api/session/start", &token).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{session}");
    let (steps, started) = page.steps_until_started().await;
    assert_eq!(steps, COLD_START_STEPS);
    assert_eq!(started["id"], session["id"]);
    assert_eq!(started["status"], "started");

    // A terminal open on B closes with the reason when the user signs out through A, and
    // another when the session is stopped through A.
    let mut shell = b.connect(&b.ticket(&token).await, ORIGIN).await.unwrap();
    assert_eq!(
        a.post("/api/auth/logout/everywhere", &token).await.0,
        StatusCode::NO_CONTENT
    );
    let (goodbye, close) = shell.closing().await;
    assert_eq!(goodbye.unwrap()["type"], "signed_out");
    assert_eq!(close, Some((CloseCode::Library(4001), "signed_out".into())));
    let mut shell = b.connect(&b.ticket(&token).await, ORIGIN).await.unwrap();
    assert_eq!(
        a.post("/api/session/stop", &token).await.0,
        StatusCode::NO_CONTENT
    );
    let (goodbye, close) = shell.closing().await;
    assert_eq!(goodbye.unwrap()["type"], "session_ended");
    assert_eq!(close, Some((CloseCode::Library(4000), "session_ended".into())));
    let (name, ended) = page.next().await;
    assert_eq!((name.as_str(), &ended["status"]), ("ended", &"ended".into()));
    assert!(common::containers_labelled(&common::containers_of(&session))
        .await
        .is_empty());

    // A stop through B while A is still making the session: A's start stops at once (it tells the
    // page nothing more), the session ends, and nothing of it is left.
    let (status, second) = a.post("/api/session/start", &token).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{second}");
    let instance = common::instance(dir.path());
    let deadline = Instant::now() + Duration::from_secs(30);
    let cluster = loop {
        if let Some(cluster) = common::clusters_of_instance(&instance).await.pop() {
            break cluster;
        }
        assert!(Instant::now() < deadline, "the start never began");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        b.get("/api/session/status", &token).await.1["status"],
        "provisioning"
    );
    assert_eq!(
        b.post("/api/session/stop", &token).await.0,
        StatusCode::NO_CONTENT
    );
    let ended = loop {
        match page.next().await {
            (name, body) if name == "ended" => break body,
            (name, body) => assert_eq!(name, "progress", "{body}"),
        }
    };
    assert_eq!(ended["status"], "ended");
    common::wait_until_nothing_left(&cluster, &second).await;
    // A start that went on would tell the page its next steps, or its failure.
    if let Ok((name, body)) = tokio::time::timeout(Duration::from_secs(10), page.next()).await {
        panic!("the stopped start went on: {name} {body}");
    }
    assert_eq!(common::left_of(&cluster, &second).await, Vec::<String>::new());
    let (_, history) = b.get("/api/session/history", &token).await;
    assert_eq!(history[0]["id"], second["id"]);
    assert_eq!(history[0]["status"], "ended");

    a.shut_down().await;
    b.shut_down().await;
    assert!(common::clusters_of_instance(&instance).await.is_empty());
    database.remove().await;
}
