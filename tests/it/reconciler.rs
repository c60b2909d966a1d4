//! The reconciler against real `lite` clusters and a real SQLite file, including a create killed
//! with SIGKILL half way and a platform started afterwards.

use crate::common::{self, Process};

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use chrono::Utc;
use ckad_platform::{
    clusters::{self, ClusterName, ClusterSpec},
    docker::DockerEngine,
    domain::{PortRanges, SessionStatus},
    reconciler::{reconcile, Moment, Report},
    store::{NewSession, Store},
    terminals::{DockerTerminals, TerminalRuntime, TerminalSpec},
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
            kubeconfig: &cluster.terminal_kubeconfig,
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

/// The platform under test, killed if the test fails before stopping it.
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
