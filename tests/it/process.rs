//! The real binary, as an operator runs it: configured from the environment, stopped by SIGTERM.

use crate::common;

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

#[test]
fn sigterm_stops_the_server_cleanly_within_ten_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let mut child = common::Process::command(port, dir.path())
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();

    let health = format!("http://127.0.0.1:{port}/healthz");
    let started = Instant::now();
    while reqwest::blocking::get(&health).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the server never answered"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let asked = Instant::now();
    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            asked.elapsed() < Duration::from_secs(10),
            "still running 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");

    let output = child.wait_with_output().unwrap();
    let logs = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<serde_json::Value> = logs.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let messages: Vec<&str> = lines.iter().filter_map(|l| l["message"].as_str()).collect();
    assert!(messages.contains(&"listening"), "{logs}");
    assert!(
        messages.contains(&"shutdown requested: finishing in-flight requests"),
        "{logs}"
    );
    assert_eq!(messages.last(), Some(&"stopped"));
    // The health check itself was logged inside a request span with its matched route.
    assert!(
        lines
            .iter()
            .any(|l| l["span"]["route"] == "/healthz" && l["span"]["status"] == 200),
        "{logs}"
    );
}

/// The README's run command as a newcomer meets it: no `.env`, none of the test settings, the
/// platform's embedded defaults (relative `data/` paths, `lite` clusters, the mail outbox), started
/// from a repository root with only what `scripts/setup.sh` exports (`LITE_BIN_DIR`). Only the
/// port is its own (a developer's server may hold 3000). A learner signs up, starts, types in the
/// terminal, reloads (a new socket) and types again, stops; nothing of the session is left, only
/// the default warm pool's members, which a start with no pool then removes.
#[tokio::test(flavor = "multi_thread")]
async fn the_run_commands_defaults_start_a_session_whose_terminal_works() {
    use common::{Platform, Terminals};
    use std::os::unix::fs::symlink;

    // A repository root of its own, so that its `data/` is this test's alone.
    let root = tempfile::tempdir().unwrap();
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for file in ["Leptos.toml", "tasks"] {
        symlink(repo.join(file), root.path().join(file)).unwrap();
    }
    let port = common::free_port();
    let origin = format!("http://127.0.0.1:{port}");
    let command = || {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_ckad-platform"));
        command
            .current_dir(root.path())
            .env_clear()
            .envs(["PATH", "HOME", "LITE_BIN_DIR"].map(|name| (name, std::env::var(name).unwrap())))
            .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        command
    };
    let mut child = command().spawn().unwrap();
    // The development outbox writes sign-in codes to the log, where the newcomer reads them.
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    tokio::spawn({
        use tokio::io::AsyncBufReadExt as _;
        let (log, stdout) = (log.clone(), child.stdout.take().unwrap());
        async move {
            let mut lines = tokio::io::BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut log = log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        }
    });
    let platform = Platform::at(&origin, Some(common::Mailbox::Log(log.clone())));
    platform.wait_until_ready().await;

    let token = platform.learner("newcomer@example.com").await;
    let session = platform.start_session(&token).await;
    let mut shell = platform
        .connect(&platform.ticket(&token).await, &origin)
        .await
        .unwrap();
    shell.type_line("k get nodes --no-headers").await;
    shell.read_until("node01").await;
    shell.socket.close(None).await.unwrap();
    let mut shell = platform
        .connect(&platform.ticket(&token).await, &origin)
        .await
        .unwrap();
    shell.type_line("echo \"[after-reload-$((40+2))]\"").await;
    shell.read_until("[after-reload-42]").await;

    assert_eq!(
        platform.post("/api/session/stop", &token).await.0,
        reqwest::StatusCode::NO_CONTENT
    );
    // Nothing of the session is left: its terminal, its cluster's containers and network, its state.
    let id = session["id"].as_str().unwrap();
    assert!(common::containers_labelled(&format!("ckad.session={id}"))
        .await
        .is_empty());
    let database = format!("sqlite://{}/data/ckad.db", root.path().display());
    let store = ckad_platform::store::Store::connect(&database).await.unwrap();
    let instance = store.platform_instance().await.unwrap();
    let members: Vec<String> = store
        .pool_members()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.cluster_name)
        .collect();
    assert!(!members.is_empty(), "the default warm pool");
    let clusters = common::clusters_of_instance(&instance).await;
    assert!(
        clusters.iter().all(|c| members.contains(c)),
        "{clusters:?} {members:?}"
    );
    let states = std::fs::read_dir(root.path().join("data/state/lite/clusters")).unwrap();
    for state in states {
        let name = state.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            members.contains(&name),
            "a cluster's state folder is left: {name}"
        );
    }
    child.kill().await.unwrap();
    // The pool's members outlive the process; a start with no pool removes them.
    let mut drain = command()
        .env("WARM_POOL_SIZE", "0")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    common::eventually("the pool removed", Duration::from_secs(120), || async {
        common::clusters_of_instance(&instance).await.is_empty()
    })
    .await;
    drain.kill().await.unwrap();
    // An operator reading the log of this ordinary session finds no error in it.
    let log = log.lock().unwrap().clone();
    let errors: Vec<&str> = log
        .lines()
        .filter(|line| line.contains(r#""level":"ERROR""#))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}
