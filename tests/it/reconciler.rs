//! The reconciler against real `lite` clusters and a real SQLite file, including a create killed
//! with SIGKILL half way and a platform started afterwards.

use crate::common::{self, Process};

use common::{Platform, Terminals, ORIGIN};
use reqwest::StatusCode;

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use chrono::Utc;
use ckad_platform::{
    clusters::{self, ClusterName, ClusterSpec},
    docker::DockerEngine,
    domain::{PortRanges, SessionStatus},
    reconciler::{self, reconcile, Moment, Report},
    store::{NewSession, Store},
    terminals::{DockerTerminals, TerminalAccess, TerminalRuntime, TerminalSpec},
};

async fn store(dir: &std::path::Path) -> Store {
    Store::open(&format!("sqlite://{}/ckad.db", dir.display()))
        .await
        .unwrap()
}

/// A session of a new user, in `status`, holding a port set from the pool.
async fn session(store: &Store, n: u32, cluster: &ClusterName, status: SessionStatus) -> String {
    let user = store
        .insert_user(&format!("learner{n}@example.com"), "")
        .await
        .unwrap();
    let now = Utc::now();
    let new = NewSession {
        user_id: &user.id,
        cluster_name: cluster.as_str(),
        start_time: now,
        expires_at: now + chrono::Duration::hours(1),
        exam_id: None,
    };
    let id = store.insert_session(new, u32::MAX).await.unwrap().unwrap().id;
    store
        .allocate_ports(&id, &PortRanges::default(), ckad_platform::store::bound_on_host)
        .await
        .unwrap();
    if status != SessionStatus::Provisioning {
        store.set_session_status(&id, status, "").await.unwrap();
    }
    id
}

/// A session whose removal is under way is its remover's: a pass that finds its cluster half
/// gone neither fails it nor touches it; once a restart has cut its remover off, the pass ends it.
#[tokio::test]
async fn a_session_being_removed_is_left_to_its_remover_until_a_restart_cuts_it_off() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;
    let settings = common::settings(dir.path(), "unix:///var/run/docker.sock");
    let provider = clusters::provider(&settings.clusters, DockerEngine::new(&settings.docker_host)).unwrap();
    let terminals = DockerTerminals::new(
        DockerEngine::new(&settings.docker_host),
        common::TERMINAL_IMAGE,
        &settings.clusters.instance,
    );
    let going = session(&store, 1, &ClusterName::generate(), SessionStatus::Started).await;
    assert!(store.begin_ending(&going).await.unwrap());
    assert!(
        !store.begin_ending(&going).await.unwrap(),
        "one remover at a time"
    );

    let report = reconcile(&store, provider.as_ref(), &terminals, Moment::Periodic)
        .await
        .unwrap();
    assert_eq!(report.failed_sessions, Vec::<String>::new());
    let still = store.session_by_id(&going).await.unwrap().unwrap();
    assert_eq!(still.status, SessionStatus::Started);

    let restarted = Moment::StartUp { since: Utc::now() };
    let report = reconcile(&store, provider.as_ref(), &terminals, restarted)
        .await
        .unwrap();
    assert_eq!(report.failed_sessions, vec![going.clone()]);
    let ended = store.session_by_id(&going).await.unwrap().unwrap();
    assert_eq!(ended.status, SessionStatus::Failed);
    assert_eq!(
        ended.notes,
        "reconciler: its removal was interrupted by a platform restart"
    );
    assert_eq!(store.ports_of(&going).await.unwrap(), None);
}

#[tokio::test]
async fn a_pass_removes_what_no_live_session_owns_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;
    let settings = common::settings(dir.path(), "unix:///var/run/docker.sock");
    let provider = clusters::provider(&settings.clusters, DockerEngine::new(&settings.docker_host)).unwrap();

    let (kept, stray, vanished, ended) = (
        ClusterName::generate(),
        ClusterName::generate(),
        ClusterName::generate(),
        ClusterName::generate(),
    );
    let (kept_spec, stray_spec) = (
        ClusterSpec {
            name: kept.clone(),
            ports: common::ports(),
        },
        ClusterSpec {
            name: stray.clone(),
            ports: common::ports(),
        },
    );
    let (a, b) = tokio::join!(provider.create(&kept_spec), provider.create(&stray_spec));
    let terminals = DockerTerminals::new(
        DockerEngine::new(&settings.docker_host),
        common::TERMINAL_IMAGE,
        &settings.clusters.instance,
    );
    for cluster in [a.unwrap(), b.unwrap()] {
        let spec = TerminalSpec {
            cluster: &cluster.name,
            network: &cluster.network,
            access: TerminalAccess::Cluster(&cluster.terminal_kubeconfig),
            session_id: "none-yet",
            user_id: "none",
        };
        terminals.create(&spec).await.unwrap();
    }
    let live = session(&store, 1, &kept, SessionStatus::Started).await;
    let lost = session(&store, 2, &vanished, SessionStatus::Started).await;
    let done = session(&store, 3, &ended, SessionStatus::Ended).await;

    let report = reconcile(&store, provider.as_ref(), &terminals, Moment::Periodic)
        .await
        .unwrap();
    assert_eq!(report.removed_terminals, vec![stray.clone()]);
    assert_eq!(report.removed_clusters, vec![stray.clone()]);
    assert_eq!(terminals.list().await.unwrap(), vec![kept.clone()]);
    assert_eq!(report.failed_sessions, vec![lost.clone()]);
    assert_eq!(
        report.released_ports, 6,
        "the ended and the failed session's ports"
    );

    let listed = provider.list().await.unwrap();
    assert!(listed.contains(&kept) && !listed.contains(&stray), "{listed:?}");
    assert!(
        provider.health(&kept).await.unwrap().is_healthy(),
        "the owned cluster was left alone"
    );
    let failed = store.session_by_id(&lost).await.unwrap().unwrap();
    assert_eq!(failed.status, SessionStatus::Failed);
    assert_eq!(failed.notes, "reconciler: its cluster disappeared");
    assert!(store.ports_of(&live).await.unwrap().is_some());
    assert_eq!(store.ports_of(&done).await.unwrap(), None);

    // A second pass finds nothing to do.
    assert_eq!(
        reconcile(&store, provider.as_ref(), &terminals, Moment::Periodic)
            .await
            .unwrap(),
        Report::default()
    );
    terminals.remove(&kept).await.unwrap();
    provider.delete(&kept).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_create_killed_half_way_is_cleaned_up_when_the_platform_starts() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;
    let name = ClusterName::generate();
    // As the platform does: record the session and its ports, then create.
    let id = session(&store, 1, &name, SessionStatus::Provisioning).await;
    let ports = store.ports_of(&id).await.unwrap().unwrap();
    let env = [
        (
            "DATABASE_URL",
            format!("sqlite://{}/ckad.db", dir.path().display()),
        ),
        ("STATE_DIR", dir.path().join("state").display().to_string()),
        ("LITE_BIN_DIR", common::lite_bin_dir().display().to_string()),
        ("PLATFORM_INSTANCE", common::instance(dir.path())),
        ("RUST_LOG", "warn".into()),
    ];
    let mut create = Command::new(env!("CARGO_BIN_EXE_ckad-clusters"))
        .args(["create", name.as_str()])
        .args([ports.api, ports.ingress, ports.ingress_https].map(|p| p.to_string()))
        .envs(env.clone())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();

    // Kill it once the control plane has begun to appear in Docker.
    let project = format!("com.docker.compose.project=kwok-{name}");
    let mut seen = Vec::new();
    for _ in 0..300 {
        seen = common::containers_labelled(&project).await;
        if !seen.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!seen.is_empty(), "the create never started");
    create.kill().unwrap(); // SIGKILL
    create.wait().unwrap();
    assert!(
        common::network_exists(&format!("kwok-{name}")).await,
        "something was left to clean up"
    );

    // The platform comes back and reconciles at start-up.
    let port = common::free_port();
    let mut platform = Process::spawn(&mut Process::command(port, dir.path()));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = common::containers_labelled(&project).await;
        let network = common::network_exists(&format!("kwok-{name}")).await;
        let session = store.session_by_id(&id).await.unwrap().unwrap();
        let ports = store.ports_of(&id).await.unwrap();
        if left.is_empty() && !network && session.status == SessionStatus::Failed && ports.is_none() {
            assert_eq!(
                session.notes,
                "reconciler: start interrupted by a platform restart"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "left behind: {left:?}, network {network}, {session:?}, {ports:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!dir
        .path()
        .join("state/lite/clusters")
        .join(name.as_str())
        .exists());
    Command::new("kill")
        .args(["-TERM", &platform.0.id().to_string()])
        .status()
        .unwrap();
    let status = platform.0.wait().unwrap();
    assert!(status.success(), "{status}");
}

/// The name of the session's terminal container, and its cluster's.
async fn terminal_of(session: &serde_json::Value) -> (String, String) {
    let term = common::containers_labelled(&format!("ckad.session={}", session["id"].as_str().unwrap()))
        .await
        .remove(0)
        .trim_start_matches('/')
        .to_owned();
    let cluster = term.trim_start_matches("term-").to_owned();
    (term, cluster)
}

async fn running(container: &str) -> bool {
    common::docker()
        .await
        .inspect_container(container, None)
        .await
        .is_ok_and(|c| c.state.and_then(|s| s.running) == Some(true))
}

async fn stop(container: &str) {
    let options = bollard::query_parameters::StopContainerOptions {
        t: Some(0),
        ..Default::default()
    };
    common::docker()
        .await
        .stop_container(container, Some(options))
        .await
        .unwrap();
}

async fn remove_by_force(container: &str) {
    let options = bollard::query_parameters::RemoveContainerOptions {
        force: true,
        ..Default::default()
    };
    common::docker()
        .await
        .remove_container(container, Some(options))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_stopped_terminal_comes_back_by_itself_and_its_socket_never_fails() {
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::start(common::settings(dir.path(), "unix:///var/run/docker.sock")).await;
    let token = platform.learner("stopped@example.com").await;
    let session = platform.start_session(&token).await;
    let (term, _) = terminal_of(&session).await;

    // Stopped under the learner's feet: the next socket starts it again and gets a shell.
    stop(&term).await;
    let mut shell = platform
        .connect(&platform.ticket(&token).await, ORIGIN)
        .await
        .expect("a socket to a stopped terminal opens");
    shell.type_line("echo \"[back-$((40+2))]\"").await;
    shell.read_until("[back-42]").await;
    shell.socket.close(None).await.unwrap();

    // Stopped with nobody connected: the reconciler starts it again within one look.
    stop(&term).await;
    common::eventually(
        "the terminal running again",
        reconciler::LIVENESS_EVERY + Duration::from_secs(5),
        || running(&term),
    )
    .await;
    let (_, now) = platform.get("/api/session/status", &token).await;
    assert_eq!(now["status"], "started");
    assert_eq!(
        platform.post("/api/session/stop", &token).await.0,
        StatusCode::NO_CONTENT
    );
    platform.shut_down().await;
}

/// The next event on a user's stream (`GET /api/session/events`) of type `kind`.
async fn next_event(events: &mut reqwest::Response, buffer: &mut String, kind: &str) -> serde_json::Value {
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            if let Some(data) = block.lines().find_map(|l| l.strip_prefix("data:")) {
                let event: serde_json::Value = serde_json::from_str(data.trim()).unwrap();
                if event["type"] == kind {
                    return event;
                }
            }
        }
        let chunk = tokio::time::timeout(Duration::from_secs(40), events.chunk())
            .await
            .unwrap_or_else(|_| panic!("no {kind} event in time"))
            .unwrap()
            .expect("the stream stays open");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
}

/// A platform of its own (each holds one port set, so one session) with a started session; its
/// database, the learner's token and the session.
async fn platform_with_session(
    email: &str,
) -> (Platform, Store, String, serde_json::Value, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::start(common::settings(dir.path(), "unix:///var/run/docker.sock")).await;
    let store = store(dir.path()).await;
    let token = platform.learner(email).await;
    let session = platform.start_session(&token).await;
    (platform, store, token, session, dir)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_whose_cluster_or_terminal_is_gone_fails_within_30_s_and_says_why() {
    let (
        (ada_platform, ada_store, ada, ada_session, _ada_dir),
        (bob_platform, bob_store, bob, bob_session, _bob_dir),
    ) = tokio::join!(
        platform_with_session("lost-cluster@example.com"),
        platform_with_session("lost-terminal@example.com")
    );
    let (_, ada_cluster) = terminal_of(&ada_session).await;
    let (bob_term, _) = terminal_of(&bob_session).await;
    let mut events = ada_platform
        .client
        .get(format!("{}/api/session/events", ada_platform.base))
        .bearer_auth(&ada)
        .send()
        .await
        .unwrap();
    let mut shell = ada_platform
        .connect(&ada_platform.ticket(&ada).await, ORIGIN)
        .await
        .unwrap();

    // Ada's cluster and Bob's terminal are removed behind the platform's back.
    let cluster = format!("com.docker.compose.project=kwok-{ada_cluster}");
    let containers = common::containers_labelled(&cluster).await;
    assert!(!containers.is_empty());
    for container in containers {
        remove_by_force(container.trim_start_matches('/')).await;
    }
    remove_by_force(&bob_term).await;
    let lost = Instant::now();

    // Ada's page is told why and her socket closes.
    let mut buffer = String::new();
    let ended = next_event(&mut events, &mut buffer, "ended").await;
    assert_eq!(ended["status"], "failed");
    let message = ended["message"].as_str().unwrap();
    assert!(message.contains("its cluster was removed"), "{message}");
    let (goodbye, _) = shell.closing().await;
    assert_eq!(goodbye.unwrap()["type"], "session_ended");
    // Both sessions fail in time, with the reason kept, and what was left of them goes.
    let sessions = [
        (&ada_store, &ada_session, "reconciler: its cluster was removed"),
        (&bob_store, &bob_session, "reconciler: its terminal was removed"),
    ];
    for (store, session, _) in sessions {
        let id = session["id"].as_str().unwrap();
        common::eventually("the session failed", Duration::from_secs(30), || async {
            store.session_by_id(id).await.unwrap().unwrap().status == SessionStatus::Failed
        })
        .await;
    }
    assert!(lost.elapsed() < Duration::from_secs(30), "{:?}", lost.elapsed());
    for (store, session, reason) in sessions {
        let id = session["id"].as_str().unwrap();
        let failed = store.session_by_id(id).await.unwrap().unwrap();
        assert!(failed.notes.starts_with(reason), "{}", failed.notes);
        // What was left of it goes after (the record first, so the learner hears at once).
        common::eventually("its terminal removed", Duration::from_secs(60), || async {
            common::containers_labelled(&format!("ckad.session={id}"))
                .await
                .is_empty()
        })
        .await;
    }
    assert_eq!(
        bob_platform.get("/api/session/status", &bob).await.0,
        StatusCode::NOT_FOUND
    );
    ada_platform.shut_down().await;
    bob_platform.shut_down().await;
}
