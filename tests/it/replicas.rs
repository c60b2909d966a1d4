//! Two replicas of the real binary on one PostgreSQL database and one Docker engine, as behind a
//! load balancer: what one replica records, the other serves, and a replica killed with
//! `kill -9` leaves nothing that needs it; a replica that starts beside a running one leaves its
//! work in flight alone.

use crate::{
    common::{self, Mailbox, Platform, Process, SmtpSink, Terminals, ORIGIN},
    postgres::TestDatabase,
};

use std::{path::Path, process::Stdio, time::Duration};

use ckad_platform::{
    domain::SessionStatus,
    store::{NewSession, Store},
};
use reqwest::StatusCode;
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Error as SocketError};

/// A replica of the binary on `port` with the shared database, state folder, instance name, JWT
/// secret, public origin and mail server; one-minute sessions swept every second. Its log (JSON,
/// info and up) goes to `<name>.log` in `dir`.
fn replica(name: &str, port: u16, dir: &Path, database: &str, mail: &[(&str, String)]) -> Process {
    let ports = common::ports();
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let range = |port: u16| format!("{port}-{port}");
    Process::spawn(
        Process::command(port, dir)
            .env("DATABASE_URL", database)
            .env("JWT_SECRET", "a-secret-both-replicas-share-32-bytes-or-more")
            .env("PUBLIC_URL", ORIGIN)
            .env("SESSION_TTL_MINUTES", "1")
            .env("SWEEP_EVERY_SECS", "1")
            .env("API_PORT_RANGE", range(ports.api))
            .env("INGRESS_PORT_RANGE", range(ports.ingress))
            .env("INGRESS_HTTPS_PORT_RANGE", range(ports.ingress_https))
            .env("RUST_LOG", "info")
            .envs(mail.iter().cloned())
            .stdout(Stdio::from(log)),
    )
}

/// Both replicas' logs, for a failure's message.
fn logs(dir: &Path) -> String {
    ["a", "b"]
        .map(|name| {
            let log = std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default();
            format!("--- replica {name} ---\n{log}")
        })
        .join("\n")
}

/// Volumes carrying `label` (`key=value`).
async fn volumes_labelled(label: &str) -> Vec<String> {
    let filters = std::collections::HashMap::from([("label".to_owned(), vec![label.to_owned()])]);
    let options = bollard::query_parameters::ListVolumesOptions {
        filters: Some(filters),
    };
    let volumes = common::docker().await.list_volumes(Some(options)).await.unwrap();
    volumes
        .volumes
        .unwrap_or_default()
        .into_iter()
        .map(|v| v.name)
        .collect()
}

/// Opens the terminal socket with `ticket` at `base`: whether it opened, or the refusal's status.
async fn redeem(base: &str, ticket: &str) -> Result<(), StatusCode> {
    let url = format!("{}/ws/terminal?ticket={ticket}", base.replace("http://", "ws://"));
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert("origin", ORIGIN.parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Ok((mut socket, _)) => {
            socket.close(None).await.unwrap();
            Ok(())
        }
        Err(SocketError::Http(response)) => Err(response.status()),
        Err(other) => panic!("handshake: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_share_tickets_and_a_killed_ones_session_still_times_out_once() {
    let dir = tempfile::tempdir().unwrap();
    let database = TestDatabase::create().await;
    let mail = SmtpSink::start();
    let (port_a, port_b) = (common::free_port(), common::free_port());
    let (base_a, base_b) = (
        format!("http://127.0.0.1:{port_a}"),
        format!("http://127.0.0.1:{port_b}"),
    );
    // One after the other: each checks the host's firewall rules at start-up.
    let mail_env = mail.env();
    let mut a = replica("a", port_a, dir.path(), &database.url(), &mail_env);
    let a_platform = Platform::at(&base_a, Some(Mailbox::Smtp(mail)));
    a_platform.wait_until_ready().await;
    // A start in flight on A when B starts (recorded, nothing made yet) is A's, not a leftover
    // of an earlier run for B's start-up reconciliation to fail.
    let store = Store::connect(&database.url()).await.unwrap();
    let starter = store.insert_user("grace@example.com", "Grace").await.unwrap();
    let now = chrono::Utc::now();
    let in_flight = NewSession {
        user_id: &starter.id,
        cluster_name: "ckad-inflight",
        start_time: now,
        expires_at: now + chrono::Duration::hours(1),
        exam_id: None,
    };
    let in_flight = store.insert_session(in_flight, 6).await.unwrap().unwrap();
    let b = replica("b", port_b, dir.path(), &database.url(), &mail_env);
    let b_platform = Platform::at(&base_b, None);
    b_platform.wait_until_ready().await;
    // B's first pass runs as it starts; give it time to be done.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let still = store.session_by_id(&in_flight.id).await.unwrap().unwrap();
    assert_eq!(
        (still.status, still.notes.as_str()),
        (SessionStatus::Provisioning, ""),
        "{}",
        logs(dir.path())
    );
    assert!(store
        .set_session_status(&in_flight.id, SessionStatus::Ended, "")
        .await
        .unwrap());

    // Signed up and started through A; the terminal opened through B with A's ticket.
    let token = a_platform.learner("ada@example.com").await;
    let session = a_platform.start_session(&token).await;
    let id = session["id"].as_str().unwrap().to_owned();
    let mut shell = b_platform
        .connect(&a_platform.ticket(&token).await, ORIGIN)
        .await
        .unwrap_or_else(|status| panic!("B refused A's ticket: {status}\n{}", logs(dir.path())));
    shell.type_line("echo \"[through-b-$((40+2))]\"").await;
    shell.read_until("[through-b-42]").await;
    shell.socket.close(None).await.unwrap();

    // A hundred sockets at once with one fresh ticket, half through each replica: one opens.
    let ticket = a_platform.ticket(&token).await;
    let redemptions = (0..100).map(|n| {
        let base = if n % 2 == 0 {
            base_a.clone()
        } else {
            base_b.clone()
        };
        let ticket = ticket.clone();
        tokio::spawn(async move { redeem(&base, &ticket).await })
    });
    let outcomes: Vec<Result<(), StatusCode>> = futures_util::future::join_all(redemptions)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let opened = outcomes.iter().filter(|o| o.is_ok()).count();
    let refused = outcomes
        .iter()
        .filter(|o| **o == Err(StatusCode::UNAUTHORIZED))
        .count();
    assert_eq!((opened, refused), (1, 99), "{outcomes:?}");

    // A dies at once, in the middle of the session it started; B still serves it.
    a.0.kill().unwrap();
    a.0.wait().unwrap();
    let (status, now) = b_platform.get("/api/session/status", &token).await;
    assert_eq!(
        (status, now["status"].as_str()),
        (StatusCode::OK, Some("started"))
    );

    // Its time runs out on B's sweeper: ended once, and nothing of it is left.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let ended = loop {
        let now = store.session_by_id(&id).await.unwrap().unwrap();
        if !now.status.is_live() {
            break now;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the session never timed out: {now:?}\n{}",
            logs(dir.path())
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(
        (ended.status, ended.notes.as_str()),
        (SessionStatus::Timeout, "time is up (sweeper)"),
        "{}",
        logs(dir.path())
    );
    let (_, history) = b_platform.get("/api/session/history", &token).await;
    let records: Vec<_> = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["id"] == id.as_str())
        .collect();
    assert_eq!(records.len(), 1, "{history}");
    assert_eq!(records[0]["status"], "timeout");
    let label = format!("ckad.session={id}");
    assert_eq!(common::containers_labelled(&label).await, Vec::<String>::new());
    assert_eq!(volumes_labelled(&label).await, Vec::<String>::new());
    let instance = common::instance(dir.path());
    assert_eq!(
        common::clusters_of_instance(&instance).await,
        Vec::<String>::new()
    );
    assert_eq!(store.ports_of(&id).await.unwrap(), None);

    drop(b);
    database.remove().await;
}
