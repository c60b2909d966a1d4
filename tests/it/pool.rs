//! The warm pool on a running platform with real `lite` clusters and terminals: starts claim the
//! members made ahead (each once, however many learners press Start at once), an empty pool or a
//! dead member falls back to a cold start with the same steps, the pool refills within the host's
//! budget, and a platform killed (`kill -9`) or stopped keeps its healthy members for its next start
//! and leaves nothing half made.

use std::{
    collections::HashSet,
    path::Path,
    time::{Duration, Instant},
};

use ckad_platform::{
    configuration::Settings,
    domain::PortRanges,
    store::{PoolMember, PoolMemberStatus, Store},
};
use reqwest::StatusCode;

use crate::{
    common::{self, Platform, Process},
    sessions::{Events, COLD_START_STEPS},
};

const DOCKER: &str = "unix:///var/run/docker.sock";

/// A platform keeping `size` members ready for `seats` seats.
fn pooled(dir: &Path, size: usize, seats: usize, ports: PortRanges) -> Settings {
    let mut settings = common::settings(dir, DOCKER);
    settings.sessions.pool.size = size;
    settings.sessions.max_concurrent = seats;
    settings.clusters.ports = ports;
    settings
}

pub(crate) async fn store(dir: &Path) -> Store {
    Store::open(&format!("sqlite://{}/ckad.db", dir.display()))
        .await
        .unwrap()
}

/// Waits until `count` members are ready (and none being made); they, oldest first.
pub(crate) async fn ready_members(store: &Store, count: usize) -> Vec<PoolMember> {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let members = store.pool_members().await.unwrap();
        if members.len() == count && members.iter().all(|m| m.status == PoolMemberStatus::Ready) {
            return members;
        }
        assert!(
            Instant::now() < deadline,
            "the pool never held {count} ready: {members:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A figure from `/metrics` (the test runs on the host, which may read it).
pub(crate) async fn metric(platform: &Platform, name: &str) -> f64 {
    let text = platform
        .client
        .get(format!("{}/metrics", platform.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

/// Removes every member the platform of `dir` left (members outlive their platform): a platform
/// started there with no pool removes them, as an operator's would.
async fn remove_pool(dir: &Path, ports: PortRanges) {
    let platform = Platform::start(pooled(dir, 0, 1, ports)).await;
    let store = store(dir).await;
    let instance = common::instance(dir);
    // Forgotten first, then removed (a terminal before its cluster's network).
    common::eventually("the pool removed", Duration::from_secs(120), || async {
        store.pool_members().await.unwrap().is_empty()
            && common::clusters_of_instance(&instance).await.is_empty()
    })
    .await;
    platform.shut_down().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_parallel_starts_claim_each_member_once_and_the_pool_refills_within_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let ports = common::port_block(52000, 5);
    let platform = Platform::start(pooled(dir.path(), 2, 2, ports.clone())).await;
    let store = store(dir.path()).await;
    let mut learners = Vec::new();
    for n in 0..10 {
        learners.push(platform.learner(&format!("pool{n}@example.com")).await);
    }
    let members: HashSet<String> = ready_members(&store, 2).await.into_iter().map(|m| m.id).collect();
    assert_eq!(metric(&platform, "ckad_pool_ready").await, 2.0);

    let starts = learners
        .iter()
        .map(|token| platform.post("/api/session/start", token));
    let answers = futures_util::future::join_all(starts).await;
    let accepted: HashSet<String> = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::ACCEPTED)
        .map(|(_, session)| session["id"].as_str().unwrap().to_owned())
        .collect();
    // Two seats: the two members, each to one learner; everyone else is told the seats are taken.
    assert_eq!(accepted, members, "{answers:?}");
    for (status, body) in answers
        .iter()
        .filter(|(status, _)| *status != StatusCode::ACCEPTED)
    {
        assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    }
    let winners: Vec<&String> = learners
        .iter()
        .zip(&answers)
        .filter(|(_, (status, _))| *status == StatusCode::ACCEPTED)
        .map(|(token, _)| token)
        .collect();
    for token in &winners {
        let started = platform.wait_started(token).await;
        assert!(members.contains(started["id"].as_str().unwrap()));
        // The member's terminal is the session's: it carries the session's id.
        assert_eq!(
            common::containers_labelled(&format!("ckad.session={}", started["id"].as_str().unwrap()))
                .await
                .len(),
            1
        );
    }
    assert_eq!(metric(&platform, "ckad_pool_claims_total").await, 2.0);
    assert_eq!(metric(&platform, "ckad_pool_misses_total").await, 0.0);

    // Both seats taken: the pool refills to its size (2 sessions + 2 members = seats + pool), no more.
    let refilled = ready_members(&store, 2).await;
    assert!(
        refilled.iter().all(|m| !members.contains(&m.id)),
        "a claimed member came back"
    );
    assert!(metric(&platform, "ckad_pool_refill_seconds_count").await >= 4.0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(store.pool_members().await.unwrap().len(), 2);
    assert_eq!(
        common::clusters_of_instance(&common::instance(dir.path()))
            .await
            .len(),
        4
    );

    for token in winners {
        assert_eq!(
            platform.post("/api/session/stop", token).await.0,
            StatusCode::NO_CONTENT
        );
    }
    platform.shut_down().await;
    remove_pool(dir.path(), ports).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_pool_falls_back_to_a_cold_start_with_the_same_steps() {
    let dir = tempfile::tempdir().unwrap();
    let ports = common::port_block(52300, 3);
    let platform = Platform::start(pooled(dir.path(), 1, 2, ports.clone())).await;
    let store = store(dir.path()).await;
    let (ada, bob) = (
        platform.learner("warm@example.com").await,
        platform.learner("cold@example.com").await,
    );
    let member = ready_members(&store, 1).await.remove(0);

    let (mut ada_events, mut bob_events) = (
        Events::open(&platform, &ada).await,
        Events::open(&platform, &bob).await,
    );
    let (status, warm) = platform.post("/api/session/start", &ada).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{warm}");
    // The pool's one member is Ada's; Bob's start finds none ready (the next is being made).
    let (status, cold) = platform.post("/api/session/start", &bob).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{cold}");
    assert_eq!(warm["id"].as_str(), Some(member.id.as_str()));
    assert_ne!(cold["id"].as_str(), Some(member.id.as_str()));

    let (warm_steps, warm_started) = ada_events.steps_until_started().await;
    let (cold_steps, cold_started) = bob_events.steps_until_started().await;
    assert_eq!(warm_steps, cold_steps);
    assert_eq!(cold_steps, COLD_START_STEPS);
    assert_eq!(warm_started["id"], warm["id"]);
    assert_eq!(cold_started["id"], cold["id"]);
    assert_eq!(metric(&platform, "ckad_pool_claims_total").await, 1.0);
    assert_eq!(metric(&platform, "ckad_pool_misses_total").await, 1.0);

    // Both work the same: Check grades each against its own cluster, with the tasks' setup in place.
    for token in [&ada, &bob] {
        let (code, report) = platform.post("/api/tasks/pod-with-labels/check", token).await;
        assert_eq!(code, StatusCode::OK, "{report}");
        assert_eq!(report["passed"], false);
        assert_eq!(
            platform.post("/api/session/stop", token).await.0,
            StatusCode::NO_CONTENT
        );
    }
    ready_members(&store, 1).await;
    platform.shut_down().await;
    remove_pool(dir.path(), ports).await;
}

/// A claimed member whose cluster died while it waited (its containers killed and removed) does
/// not fail the learner's start: the dead member is removed and the session built cold, with the
/// same steps on the page, its tasks set up and its terminal its own.
#[tokio::test(flavor = "multi_thread")]
async fn a_dead_member_is_removed_and_the_start_goes_on_cold() {
    let dir = tempfile::tempdir().unwrap();
    let ports = common::port_block(52900, 3);
    let platform = Platform::start(pooled(dir.path(), 1, 1, ports.clone())).await;
    let store = store(dir.path()).await;
    let ada = platform.learner("dead@example.com").await;
    let member = ready_members(&store, 1).await.remove(0);
    let project = format!("com.docker.compose.project=kwok-{}", member.cluster_name);
    let killed = common::containers_labelled(&project).await;
    assert!(!killed.is_empty());
    let docker = common::docker().await;
    let options = bollard::query_parameters::RemoveContainerOptions {
        force: true,
        ..Default::default()
    };
    for container in &killed {
        docker
            .remove_container(container.trim_start_matches('/'), Some(options.clone()))
            .await
            .unwrap();
    }

    let mut events = Events::open(&platform, &ada).await;
    let (status, session) = platform.post("/api/session/start", &ada).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{session}");
    assert_eq!(
        session["id"].as_str(),
        Some(member.id.as_str()),
        "the member was claimed"
    );
    let (steps, started) = events.steps_until_started().await;
    assert_eq!(steps, COLD_START_STEPS);
    assert_eq!(started["id"], session["id"]);
    // The cluster was built again under its name: its containers are back, and run.
    let now = common::containers_labelled(&project).await;
    assert_eq!(now.len(), killed.len(), "{now:?}");
    for name in &now {
        let inspected = docker
            .inspect_container(name.trim_start_matches('/'), None)
            .await
            .unwrap();
        assert_eq!(inspected.state.and_then(|s| s.running), Some(true), "{name}");
    }
    // It works: Check grades against the new cluster with the tasks' setup in place, and the
    // terminal is the session's.
    let (code, report) = platform.post("/api/tasks/pod-with-labels/check", &ada).await;
    assert_eq!(code, StatusCode::OK, "{report}");
    assert_eq!(report["passed"], false);
    assert_eq!(
        common::containers_labelled(&format!("ckad.session={}", member.id))
            .await
            .len(),
        1
    );
    assert_eq!(metric(&platform, "ckad_pool_claims_total").await, 1.0);
    assert_eq!(
        platform.post("/api/session/stop", &ada).await.0,
        StatusCode::NO_CONTENT
    );
    let refilled = ready_members(&store, 1).await;
    assert_ne!(refilled[0].id, member.id);
    platform.shut_down().await;
    remove_pool(dir.path(), ports).await;
}

/// The real binary, killed (`kill -9`) while it makes a member and again once it is ready, then
/// stopped by SIGTERM: nothing half made survives a restart, and every restart keeps (and hands
/// out) the healthy members instead of making new ones.
#[tokio::test(flavor = "multi_thread")]
async fn a_killed_or_stopped_platform_leaves_no_orphans_and_reuses_its_pool() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let sink = common::SmtpSink::start();
    let mail = sink.env();
    let spawn = |size: &str| {
        Process::spawn(
            Process::command(port, dir.path())
                .env("JWT_SECRET", "a-test-secret-that-is-at-least-32-bytes")
                .env("WARM_POOL_SIZE", size)
                .env("API_PORT_RANGE", "52600-52602")
                .env("INGRESS_PORT_RANGE", "52700-52702")
                .env("INGRESS_HTTPS_PORT_RANGE", "52800-52802")
                .envs(mail.clone()),
        )
    };
    let kill = |mut process: Process| {
        process.0.kill().unwrap(); // SIGKILL
        process.0.wait().unwrap();
    };
    let platform = Platform::at(
        &format!("http://127.0.0.1:{port}"),
        Some(common::Mailbox::Smtp(sink)),
    );
    let instance = common::instance(dir.path());

    // Killed once its first member's control plane has begun to appear in Docker.
    let process = spawn("1");
    platform.wait_until_ready().await;
    let store = store(dir.path()).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let cut = loop {
        if let Some(member) = store.pool_members().await.unwrap().pop() {
            let project = format!("com.docker.compose.project=kwok-{}", member.cluster_name);
            if !common::containers_labelled(&project).await.is_empty() {
                assert_eq!(member.status, PoolMemberStatus::Filling);
                break member;
            }
        }
        assert!(Instant::now() < deadline, "no member was being made");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    kill(process);

    // Restarted: the half-made member is forgotten and removed, and a new one made.
    let process = spawn("1");
    platform.wait_until_ready().await;
    let member = ready_members(&store, 1).await.remove(0);
    assert_ne!(member.id, cut.id);
    common::eventually("only the new member left", Duration::from_secs(60), || async {
        common::clusters_of_instance(&instance).await == [member.cluster_name.clone()]
    })
    .await;
    assert!(
        common::containers_labelled(&format!("com.docker.compose.project=kwok-{}", cut.cluster_name))
            .await
            .is_empty()
    );

    // Killed with the member ready: the next start keeps it, makes nothing, and hands it out.
    kill(process);
    let mut process = spawn("1");
    platform.wait_until_ready().await;
    common::eventually("the kept member counted", Duration::from_secs(30), || async {
        metric(&platform, "ckad_pool_ready").await == 1.0
    })
    .await;
    assert_eq!(store.pool_members().await.unwrap(), std::slice::from_ref(&member));
    assert_eq!(
        common::clusters_of_instance(&instance).await,
        std::slice::from_ref(&member.cluster_name)
    );
    let token = platform.learner("kept@example.com").await;
    let (status, session) = platform.post("/api/session/start", &token).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{session}");
    assert_eq!(session["id"].as_str(), Some(member.id.as_str()));
    assert_eq!(platform.wait_started(&token).await["id"], session["id"]);
    assert_eq!(
        platform.post("/api/session/stop", &token).await.0,
        StatusCode::NO_CONTENT
    );

    // SIGTERM keeps the refilled member for the next start too.
    let refilled = ready_members(&store, 1).await.remove(0);
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &process.0.id().to_string()])
        .status()
        .unwrap()
        .success());
    assert!(process.0.wait().unwrap().success());
    let process = spawn("1");
    platform.wait_until_ready().await;
    common::eventually("the kept member counted", Duration::from_secs(30), || async {
        metric(&platform, "ckad_pool_ready").await == 1.0
    })
    .await;
    assert_eq!(
        store.pool_members().await.unwrap(),
        std::slice::from_ref(&refilled)
    );
    kill(process);

    // With no pool configured, a start removes what is left.
    let _process = spawn("0");
    platform.wait_until_ready().await;
    common::eventually("the pool removed", Duration::from_secs(60), || async {
        store.pool_members().await.unwrap().is_empty()
            && common::clusters_of_instance(&instance).await.is_empty()
    })
    .await;
}
