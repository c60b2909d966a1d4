//! "The outside world" for the egress tests: a network namespace of the test's own behind a veth
//! pair, at an address outside every session pool, with a listener; and the host rules of a
//! test's own pool, which the test takes out again.

use std::{
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

/// A namespace with a listener on `address`:8080; removed (with its process) on drop.
pub struct Outside {
    namespace: String,
    pub address: String,
    listener: std::process::Child,
}

impl Outside {
    pub fn new() -> Self {
        let (tag, namespace) = claim_namespace();
        let (host_end, far_end) = (format!("ckout{tag}h"), format!("ckout{tag}n"));
        let (host_address, address) = (format!("198.18.{tag}.1"), format!("198.18.{tag}.2"));
        ip(&format!("link add {host_end} type veth peer name {far_end}"));
        ip(&format!("link set {far_end} netns {namespace}"));
        ip(&format!("addr add {host_address}/30 dev {host_end}"));
        ip(&format!("link set {host_end} up"));
        ip(&format!("-n {namespace} addr add {address}/30 dev {far_end}"));
        ip(&format!("-n {namespace} link set {far_end} up"));
        ip(&format!("-n {namespace} route add default via {host_address}"));
        let listener = std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &namespace,
                "python3",
                "-m",
                "http.server",
                "8080",
                "--bind",
                &address,
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Python takes a while to start on a busy machine: wait until it listens.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let target: std::net::SocketAddr = format!("{address}:8080").parse().unwrap();
        while std::net::TcpStream::connect_timeout(&target, Duration::from_secs(1)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the outside listener never started"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        Self {
            namespace,
            address,
            listener,
        }
    }

    /// The listener's `ip:port`.
    pub fn target(&self) -> String {
        format!("{}:8080", self.address)
    }

    /// Drops what reaches the listener, inside the namespace: it no longer answers anyone.
    pub fn go_silent(&self) {
        let args = format!(
            "netns exec {} iptables -w 5 -A INPUT -p tcp --dport 8080 -j DROP",
            self.namespace
        );
        ip(&args);
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = self.listener.kill();
        let _ = self.listener.wait();
        // Deleting the namespace deletes its veth end, and with it the host's.
        let _ = std::process::Command::new("ip")
            .args(["netns", "delete", &self.namespace])
            .status();
    }
}

/// A tag no other namespace holds: `ip netns add` fails on a taken name, so the first that
/// succeeds is ours, whichever tests (of this process or another) run beside.
fn claim_namespace() -> (u32, String) {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id() + NEXT.fetch_add(1, Ordering::Relaxed) * 7;
    for offset in 0..230 {
        let tag = (start + offset) % 230 + 20;
        let namespace = format!("ckad-out-{tag}");
        let added = std::process::Command::new("ip")
            .args(["netns", "add", &namespace])
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        if added.success() {
            return (tag, namespace);
        }
    }
    panic!("no free tag for an outside namespace");
}

fn ip(args: &str) {
    let status = std::process::Command::new("ip")
        .args(args.split(' '))
        .status()
        .unwrap();
    assert!(status.success(), "ip {args}");
}

/// The host rules of `pool` (the platform's, see terminals::firewall), taken out again by the test.
pub fn pool_rules(pool: &str) -> [Vec<String>; 2] {
    let new_only = "-m conntrack ! --ctstate ESTABLISHED,RELATED -j DROP";
    [
        format!("INPUT -s {pool} {new_only}"),
        format!(
            "{} -s {pool} ! -d {pool} {new_only}",
            ckad_platform::terminals::EGRESS_CHAIN
        ),
    ]
    .map(|rule| rule.split(' ').map(str::to_owned).collect())
}

pub fn iptables(action: &str, rule: &[String]) -> bool {
    std::process::Command::new("iptables")
        .args(["-w", "5", action])
        .args(rule)
        .status()
        .unwrap()
        .success()
}
