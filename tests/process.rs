//! The real binary, as an operator runs it: configured from the environment, stopped by SIGTERM.

mod common;

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

#[test]
fn sigterm_stops_the_server_cleanly_within_ten_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ckad-platform"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/ckad.db", dir.path().display()),
        )
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
