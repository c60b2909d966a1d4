//! The learner's terminal for real: hardened containers on the local Docker engine beside real
//! `lite` clusters, seen from inside; the isolation between sessions and from the host; and the
//! WebSocket bridge of a running platform, driven like a browser would drive it.

use crate::common;

use common::{
    outside::{iptables, pool_rules, Outside},
    Platform, Terminals, ORIGIN,
};

use std::time::Duration;

use bollard::{
    exec::{CreateExecOptions, StartExecResults},
    Docker,
};
use ckad_platform::{
    clusters::{self, Cluster, ClusterName, ClusterProvider, ClusterSpec},
    docker::DockerEngine,
    terminals::{DockerTerminals, TerminalAccess, TerminalRuntime, TerminalSpec},
};
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::json;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{
    client::IntoClientRequest, protocol::frame::coding::CloseCode, Message,
};

/// Runs `script` with bash in the container (not through the bridge); exit code and output.
async fn sh(docker: &Docker, container: &str, script: &str) -> (i64, String) {
    let exec = docker
        .create_exec(
            container,
            CreateExecOptions {
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                cmd: Some(vec!["bash", "-c", script]),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .id;
    let mut text = String::new();
    if let StartExecResults::Attached { mut output, .. } = docker.start_exec(&exec, None).await.unwrap() {
        while let Some(chunk) = output.next().await {
            text.push_str(&chunk.unwrap().to_string());
        }
    }
    let code = docker.inspect_exec(&exec).await.unwrap().exit_code.unwrap();
    (code, text)
}

struct Sandbox {
    provider: std::sync::Arc<dyn ClusterProvider>,
    terminals: DockerTerminals,
    _dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        Self::with_pool(Default::default())
    }

    /// Sessions whose networks are cut from `pool`.
    fn with_pool(pool: ckad_platform::clusters::SubnetPool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = common::settings(dir.path(), "unix:///var/run/docker.sock");
        settings.clusters.subnet_pool = pool;
        let engine = DockerEngine::new(&settings.docker_host);
        Self {
            provider: clusters::provider(&settings.clusters, engine.clone()).unwrap(),
            terminals: DockerTerminals::new(engine, common::TERMINAL_IMAGE, &settings.clusters.instance),
            _dir: dir,
        }
    }

    async fn session(&self) -> Cluster {
        let spec = ClusterSpec {
            name: ClusterName::generate(),
            ports: common::ports(),
        };
        let cluster = self.provider.create(&spec).await.unwrap();
        let spec = TerminalSpec {
            cluster: &cluster.name,
            network: &cluster.network,
            access: TerminalAccess::Cluster(&cluster.terminal_kubeconfig),
            session_id: "test-session",
            user_id: "test-user",
        };
        self.terminals.create(&spec).await.unwrap();
        cluster
    }

    async fn remove(&self, cluster: &Cluster) {
        self.terminals.remove(&cluster.name).await.unwrap();
        self.provider.delete(&cluster.name).await.unwrap();
    }
}

/// The container's address on `network`, and that network's gateway (the host).
async fn addresses_on(docker: &Docker, container: &str, network: &str) -> (String, String) {
    let inspected = docker.inspect_container(container, None).await.unwrap();
    let endpoint = &inspected.network_settings.unwrap().networks.unwrap()[network];
    (
        endpoint.ip_address.clone().unwrap(),
        endpoint.gateway.clone().unwrap(),
    )
}

#[tokio::test]
async fn a_terminal_is_hardened_and_reaches_its_own_api_and_nothing_else() {
    let sandbox = Sandbox::new();
    // The rule the platform puts in place at start-up (see terminals::firewall).
    ckad_platform::terminals::HostFirewall::new(Default::default())
        .ensure()
        .await
        .unwrap();
    let (mine, theirs) = tokio::join!(sandbox.session(), sandbox.session());
    let docker = common::docker().await;
    let term = format!("term-{}", mine.name);

    // Who and what the learner is.
    assert_eq!(
        sh(&docker, &term, "id -u; id -g").await,
        (0, "1000\n1000\n".into())
    );
    let (_, status) = sh(
        &docker,
        &term,
        "grep -E '^(CapPrm|CapEff|CapBnd|NoNewPrivs)' /proc/self/status",
    )
    .await;
    for line in [
        "CapPrm:\t0000000000000000",
        "CapEff:\t0000000000000000",
        "CapBnd:\t0000000000000000",
        "NoNewPrivs:\t1",
    ] {
        assert!(status.contains(line), "{line} in {status}");
    }
    let (code, out) = sh(&docker, &term, "touch /usr/local/bin/x").await;
    assert_eq!(code, 1);
    assert!(out.contains("Read-only file system"), "{out}");
    let (code, out) = sh(&docker, &term, "touch ~/notes && cp /bin/true /tmp/t && /tmp/t").await;
    assert_eq!(code, 126, "home is writable, /tmp is not executable: {out}");
    assert_eq!(
        sh(&docker, &term, "ls /var/run/docker.sock /run/docker.sock")
            .await
            .0,
        2
    );
    let (_, env) = sh(&docker, &term, "env").await;
    for platform_variable in [
        "DATABASE_URL",
        "JWT_SECRET",
        "DOCKER_HOST",
        "LITE_BIN_DIR",
        "STATE_DIR",
    ] {
        assert!(
            !env.contains(platform_variable),
            "{platform_variable} leaked: {env}"
        );
    }

    // Its kubeconfig is there, readable, and cannot be changed.
    let (code, out) = sh(&docker, &term, "kubectl get nodes --no-headers").await;
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("node01") && out.contains(" Ready "), "{out}");
    let (code, out) = sh(&docker, &term, "echo x >> ~/.kube/config").await;
    assert_eq!(code, 1, "{out}");
    let (code, out) = sh(&docker, &term, "touch ~/.kube/other").await;
    assert_eq!(code, 1);
    assert!(out.contains("Read-only file system"), "{out}");

    // Limits: a fork bomb stops at 100 processes, a memory hog dies and the terminal lives.
    // The container's process count is read from the host's cgroup (cgroup v1, as here) while
    // 150 sleeps are asked for at once.
    let id = docker.inspect_container(&term, None).await.unwrap().id.unwrap();
    let counter = format!("/sys/fs/cgroup/pids/docker/{id}/pids.current");
    let bomb = sh(&docker, &term, "seq 150 | xargs -P 150 -I{} sleep 2");
    let watch = async {
        let mut peak = 0;
        for _ in 0..40 {
            let now: usize = std::fs::read_to_string(&counter).unwrap().trim().parse().unwrap();
            peak = peak.max(now);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        peak
    };
    let ((code, out), peak) = tokio::join!(bomb, watch);
    assert_eq!(
        code, 0,
        "xargs waits for a free slot when a fork is refused: {out}"
    );
    assert_eq!(peak, 100, "the process count reached the limit and stayed there");
    let (code, _) = sh(&docker, &term, "head -c 700m /dev/zero | tail").await;
    assert_eq!(code, 137, "the hog is killed by the 512 MB limit");
    let running = docker
        .inspect_container(&term, None)
        .await
        .unwrap()
        .state
        .unwrap()
        .running;
    assert_eq!(running, Some(true));
    assert_eq!(sh(&docker, &term, "echo alive").await, (0, "alive\n".into()));

    // Isolation: the other session's API by name and by address, the host, and the platform's
    // own loopback ports are all out of reach.
    let their_api = format!("kwok-{}-kube-apiserver", theirs.name);
    let (their_ip, _) = addresses_on(&docker, &their_api, &theirs.network).await;
    let host = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let host_port = host.local_addr().unwrap().port();
    let (_, gateway) = addresses_on(&docker, &term, &mine.network).await;
    let api_port = mine.api_endpoint.rsplit(':').next().unwrap().to_owned();
    let probes = [
        format!("https://{their_api}:6443/healthz"),
        format!("https://{their_ip}:6443/healthz"),
        format!("http://{gateway}:{host_port}/"),
        format!("https://{gateway}:{api_port}/healthz"),
    ];
    for url in probes {
        let (code, out) = sh(&docker, &term, &format!("curl -sk --max-time 3 {url}")).await;
        assert!([6, 7, 28].contains(&code), "{url} answered ({code}): {out}");
    }
    let (code, out) = sh(
        &docker,
        &term,
        &format!(
            "curl -sk --max-time 3 https://kwok-{}-kube-apiserver:6443/healthz",
            mine.name
        ),
    )
    .await;
    assert_eq!((code, out.as_str()), (0, "ok"), "its own API answers");

    sandbox.remove(&mine).await;
    sandbox.remove(&theirs).await;
    assert!(
        common::containers_labelled(&format!("ckad.cluster={}", mine.name))
            .await
            .is_empty()
    );
}

/// How many tmux clients the session's terminal holds (each open socket is one).
async fn tmux_clients(session_id: &str) -> usize {
    let term = common::containers_labelled(&format!("ckad.session={session_id}"))
        .await
        .remove(0);
    let (_, clients) = sh(
        &common::docker().await,
        term.trim_start_matches('/'),
        "tmux list-clients",
    )
    .await;
    clients.lines().count()
}

#[tokio::test]
async fn the_socket_bridges_the_same_shell_and_closes_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::start(common::settings(dir.path(), "unix:///var/run/docker.sock")).await;
    let token = platform.learner("ada@example.com").await;
    let (status, body) = platform.post("/api/terminal/ticket", &token).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("you have no started session"))
    );

    let session = platform.start_session(&token).await;
    let spare = platform.ticket(&token).await;
    let spare_minted = Instant::now();

    // Type a command and read its answer; resize; ping.
    let first = platform.ticket(&token).await;
    let mut shell = platform.connect(&first, ORIGIN).await.unwrap();
    shell.type_line("k get nodes --no-headers").await;
    shell.read_until("node01").await;
    shell
        .control(json!({ "type": "resize", "cols": 123, "rows": 45 }))
        .await;
    // tmux applies a client's new size to the window after a short timer of its own.
    tokio::time::sleep(Duration::from_millis(600)).await;
    shell.type_line("stty size").await;
    shell.read_until("45 123").await;
    shell.control(json!({ "type": "ping" })).await;
    shell.type_line("MARK=still-here-$((6*7))").await;
    let texts = shell.read_until("$ ").await;
    assert!(
        texts.is_empty() || texts == [json!({ "type": "pong" })],
        "{texts:?}"
    );
    shell.socket.close(None).await.unwrap();

    // The ticket was spent; made-up tickets and other sites are refused.
    assert_eq!(
        platform.connect(&first, ORIGIN).await.err(),
        Some(StatusCode::UNAUTHORIZED)
    );
    assert_eq!(
        platform.connect("made-up", ORIGIN).await.err(),
        Some(StatusCode::UNAUTHORIZED)
    );
    let ticket = platform.ticket(&token).await;
    assert_eq!(
        platform.connect(&ticket, "https://evil.example").await.err(),
        Some(StatusCode::FORBIDDEN)
    );

    // Reconnecting lands in the same shell, and the closed socket left no tmux client behind.
    let mut shell = platform.connect(&ticket, ORIGIN).await.unwrap();
    shell.type_line("echo \"[$MARK]\"").await;
    shell.read_until("[still-here-42]").await;
    assert_eq!(tmux_clients(session["id"].as_str().unwrap()).await, 1);

    // Signing out closes the user's sockets with a reason.
    let (status, _) = platform.post("/api/auth/logout/everywhere", &token).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (goodbye, close) = shell.closing().await;
    assert_eq!(goodbye.unwrap()["type"], "signed_out");
    assert_eq!(close, Some((CloseCode::Library(4001), "signed_out".into())));

    // A ticket lives 30 seconds.
    tokio::time::sleep_until(spare_minted + Duration::from_secs(31)).await;
    assert_eq!(
        platform.connect(&spare, ORIGIN).await.err(),
        Some(StatusCode::UNAUTHORIZED)
    );

    // Ending the session closes its sockets, and no ticket is given for it any more.
    let mut shell = platform
        .connect(&platform.ticket(&token).await, ORIGIN)
        .await
        .unwrap();
    let (status, _) = platform.post("/api/session/stop", &token).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (goodbye, close) = shell.closing().await;
    assert_eq!(goodbye.unwrap()["type"], "session_ended");
    assert_eq!(close, Some((CloseCode::Library(4000), "session_ended".into())));
    assert_eq!(
        platform.post("/api/terminal/ticket", &token).await.0,
        StatusCode::NOT_FOUND
    );
    assert!(
        common::containers_labelled(&format!("ckad.session={}", session["id"].as_str().unwrap()))
            .await
            .is_empty()
    );
    platform.shut_down().await;
}

#[tokio::test]
async fn a_restart_says_goodbye_and_the_shell_waits_for_the_learner() {
    let dir = tempfile::tempdir().unwrap();
    let settings = common::settings(dir.path(), "unix:///var/run/docker.sock");
    let platform = Platform::start(settings.clone()).await;
    let token = platform.learner("bob@example.com").await;
    let session = platform.start_session(&token).await;
    let mut shell = platform
        .connect(&platform.ticket(&token).await, ORIGIN)
        .await
        .unwrap();
    shell.type_line("MARK=before-restart").await;
    shell.read_until("$ ").await;

    let stopped = tokio::spawn(platform.shut_down());
    let (goodbye, close) = shell.closing().await;
    assert_eq!(goodbye.unwrap()["type"], "server_shutdown");
    assert_eq!(close, Some((CloseCode::Away, "server_shutdown".into())));
    stopped.await.unwrap();

    // The platform comes back on the same database: the same shell is there.
    let platform = Platform::start(settings).await;
    let mut shell = platform
        .connect(&platform.ticket(&token).await, ORIGIN)
        .await
        .unwrap();
    shell.type_line("echo \"[$MARK]\"").await;
    shell.read_until("[before-restart]").await;
    assert_eq!(
        platform.post("/api/session/stop", &token).await.0,
        StatusCode::NO_CONTENT
    );
    assert!(
        common::containers_labelled(&format!("ckad.session={}", session["id"].as_str().unwrap()))
            .await
            .is_empty()
    );
    platform.shut_down().await;
}

/// A reload is a new socket: the closed one's tmux client is detached from outside, so nothing
/// is ever typed into the learner's shell (a stray `d` used to reach it after a reconnect), and
/// tmux takes no prefix key, so Ctrl-B reaches the learner's programs (here bash's backward-char).
#[tokio::test]
async fn reconnects_never_type_into_the_shell_and_every_key_reaches_it() {
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::start(common::settings(dir.path(), "unix:///var/run/docker.sock")).await;
    let token = platform.learner("reload@example.com").await;
    let session = platform.start_session(&token).await;
    // A session holds three sockets at most: the one just closed may still count for a moment
    // on a busy machine, and a reconnect then waits, as the page's client does.
    let reconnect = || async {
        loop {
            match platform.connect(&platform.ticket(&token).await, ORIGIN).await {
                Ok(shell) => break shell,
                Err(StatusCode::TOO_MANY_REQUESTS) => tokio::time::sleep(Duration::from_millis(200)).await,
                Err(code) => panic!("reconnecting: {code}"),
            }
        }
    };
    for round in 0..20 {
        let mut shell = reconnect().await;
        // Typed at once after the prompt, as a learner does after a reload.
        shell
            .type_line(&format!("echo \"[round-$(({round}+1000))]\""))
            .await;
        shell.read_until(&format!("[round-{}]", round + 1000)).await;
        shell.socket.close(None).await.unwrap();
        assert!(
            !shell.seen.contains("command not found"),
            "round {round}: {:?}",
            shell.seen
        );
    }
    let mut shell = reconnect().await;
    // `echo ab`, Ctrl-B (one character back), `X`: bash runs `echo aXb`.
    shell
        .socket
        .send(Message::binary(b"echo ab\x02X\r".to_vec()))
        .await
        .unwrap();
    shell.read_until("aXb").await;
    // No command the learner's shell ran began with a stray `d`.
    shell
        .type_line("echo \"[strays-$(history | grep -c '^ *[0-9]* *d')]\"")
        .await;
    shell.read_until("[strays-0]").await;
    assert_eq!(tmux_clients(session["id"].as_str().unwrap()).await, 1);
    assert_eq!(
        platform.post("/api/session/stop", &token).await.0,
        StatusCode::NO_CONTENT
    );
    platform.shut_down().await;
}

/// A learner writing to the container's own output fills no log on the host: 100 MB in, nothing
/// over a few kilobytes in the container's folder under Docker's root.
#[tokio::test]
async fn a_learner_cannot_fill_the_hosts_disk_through_the_terminals_log() {
    let sandbox = Sandbox::new();
    let cluster = sandbox.session().await;
    let docker = common::docker().await;
    let term = format!("term-{}", cluster.name);
    let (code, output) = sh(
        &docker,
        &term,
        "head -c 100000000 /dev/zero > /proc/1/fd/1; echo written",
    )
    .await;
    assert_eq!((code, output.trim()), (0, "written"));
    let inspected = docker.inspect_container(&term, None).await.unwrap();
    let root = docker.info().await.unwrap().docker_root_dir.unwrap();
    let folder = std::path::Path::new(&root)
        .join("containers")
        .join(inspected.id.unwrap());
    let bytes: u64 = std::fs::read_dir(&folder)
        .unwrap()
        .map(|entry| entry.unwrap().metadata().unwrap())
        .filter(|meta| meta.is_file())
        .map(|meta| meta.len())
        .sum();
    assert!(bytes < 64 * 1024, "{bytes} bytes in {}", folder.display());
    sandbox.remove(&cluster).await;
}

/// How many resizes the platform has passed on to the engine (its `/metrics`).
async fn resizes_applied(platform: &Platform) -> u64 {
    let metrics = platform
        .client
        .get(format!("{}/metrics", platform.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("ckad_terminal_resizes_total "))
        .expect("the resize count is exported")
        .trim()
        .parse()
        .unwrap()
}

/// A socket to the terminal whose client reads through a 4 KiB receive buffer (and, here, never
/// reads).
async fn connect_reading_slowly(
    platform: &Platform,
    ticket: &str,
) -> tokio_tungstenite::WebSocketStream<tokio::net::TcpStream> {
    let mut request = platform.socket_url(ticket).into_client_request().unwrap();
    request.headers_mut().insert("origin", ORIGIN.parse().unwrap());
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let address = platform.base.trim_start_matches("http://").parse().unwrap();
    let stream = socket.connect(address).await.unwrap();
    tokio_tungstenite::client_async(request, stream).await.unwrap().0
}

/// Reads until the server ends the socket (a close frame, an error or the end), skipping output.
async fn ended_by_server(shell: &mut common::Shell) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, shell.socket.next())
            .await
            .expect("the server ended the socket")
        {
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
            Some(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn the_socket_bounds_messages_sockets_resizes_and_clients_that_stop_reading() {
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::start(common::settings(dir.path(), "unix:///var/run/docker.sock")).await;
    let token = platform.learner("limits@example.com").await;
    platform.start_session(&token).await;
    let open = || async { platform.connect(&platform.ticket(&token).await, ORIGIN).await };

    // Three sockets a session; a fourth is refused until one of them closes.
    let mut pasting = open().await.unwrap();
    let mut resizing = open().await.unwrap();
    let mut third = open().await.unwrap();
    assert_eq!(open().await.err(), Some(StatusCode::TOO_MANY_REQUESTS));
    third.socket.close(None).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut third = loop {
        match open().await {
            Ok(shell) => break shell,
            Err(StatusCode::TOO_MANY_REQUESTS) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(status) => panic!("the closed socket's place was not freed: {status}"),
        }
    };

    // A paste of 64 KiB in one message passes; one byte more ends that socket only.
    pasting
        .type_line("stty -echo; echo \"[cat-$((1+1))]\"; cat > /dev/null; stty echo")
        .await;
    pasting.read_until("[cat-2]").await;
    let paste = format!("{}\n", "x".repeat(63)).repeat(1024);
    assert_eq!(paste.len(), 64 * 1024);
    pasting
        .socket
        .send(Message::binary(paste.into_bytes()))
        .await
        .unwrap();
    pasting
        .socket
        .send(Message::binary(b"\x04".to_vec()))
        .await
        .unwrap();
    pasting.type_line("echo \"[pasted-$((1+1))]\"").await;
    pasting.read_until("[pasted-2]").await;
    let _ = pasting
        .socket
        .send(Message::binary(vec![b'x'; 64 * 1024 + 1]))
        .await;
    ended_by_server(&mut pasting).await;

    // A burst of resizes is applied a few times at most, and the last size wins.
    let before = resizes_applied(&platform).await;
    for i in 0..300u16 {
        let (cols, rows) = if i == 299 {
            (77, 33)
        } else {
            (60 + i % 100, 20 + i % 30)
        };
        resizing
            .control(json!({ "type": "resize", "cols": cols, "rows": rows }))
            .await;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    resizing.type_line("stty size").await;
    resizing.read_until("33 77").await;
    let applied = resizes_applied(&platform).await - before;
    assert!((1..=30).contains(&applied), "{applied} resizes applied for 300");

    // A client that stops reading while the shell prints (but keeps talking, so it is not
    // silent) is dropped once the server cannot hand it bytes any more: its sends then fail.
    third.socket.close(None).await.unwrap();
    let mut stalled = connect_reading_slowly(&platform, &platform.ticket(&token).await).await;
    resizing.type_line("yes \"$(printf '%0100d' 0)\"").await;
    resizing.read_until("0000000000").await;
    resizing.socket.close(None).await.unwrap();
    let began = Instant::now();
    let limit = ckad_platform::routes::terminal::SEND_LIMIT + Duration::from_secs(90);
    let ping = Message::text(json!({ "type": "ping" }).to_string());
    while stalled.send(ping.clone()).await.is_ok() {
        assert!(
            began.elapsed() < limit,
            "the client that stopped reading was kept"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    drop(stalled);
    // Ctrl-C until the prompt is back: on a loaded machine the flood's backlog can hold the
    // first one up past the next socket's wait, or outrun this socket until the server drops it
    // as one that takes nothing (then a new socket goes on).
    let deadline = Instant::now() + Duration::from_secs(90);
    'interrupted: loop {
        assert!(Instant::now() < deadline, "yes was never interrupted");
        let mut request = platform
            .socket_url(&platform.ticket(&token).await)
            .into_client_request()
            .unwrap();
        request.headers_mut().insert("origin", ORIGIN.parse().unwrap());
        let Ok((mut raw, _)) = tokio_tungstenite::connect_async(request).await else {
            // The dropped socket's place is not free yet.
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let mut tail: Vec<u8> = Vec::new();
        loop {
            if raw.send(Message::binary(b"\x03".to_vec())).await.is_err() {
                continue 'interrupted;
            }
            let resend = Instant::now() + Duration::from_secs(3);
            loop {
                match tokio::time::timeout_at(resend, raw.next()).await {
                    Err(_) => break,
                    Ok(Some(Ok(Message::Binary(bytes)))) => {
                        tail.extend_from_slice(&bytes);
                        if tail.windows(9).any(|w| w == b"ckad@ckad") {
                            raw.close(None).await.unwrap();
                            break 'interrupted;
                        }
                        tail.drain(..tail.len().saturating_sub(8));
                    }
                    Ok(Some(Ok(_))) => {}
                    Ok(_) => continue 'interrupted,
                }
            }
            assert!(Instant::now() < deadline, "yes was never interrupted");
        }
    }
    // The shell is still there for the next socket.
    let mut shell = open().await.unwrap();
    shell.type_line("echo \"[after-$((1+1))]\"").await;
    shell.read_until("[after-2]").await;
    assert_eq!(
        platform.post("/api/session/stop", &token).await.0,
        StatusCode::NO_CONTENT
    );
    platform.shut_down().await;
}

#[tokio::test]
async fn a_terminal_reaches_nothing_beyond_its_session_and_resolves_no_outside_name() {
    // A pool of this test's own, so that the rules it makes touch nothing else on the host.
    let pool = "10.216.0.0/16";
    for rule in pool_rules(pool) {
        while iptables("-D", &rule) {}
    }
    let outside = Outside::new();
    let sandbox = Sandbox::with_pool(pool.parse().unwrap());
    let mine = sandbox.session().await;
    let docker = common::docker().await;
    let term = format!("term-{}", mine.name);
    let reach_outside = format!("curl -s --max-time 3 http://{}:8080/", outside.address);

    // Without the rules the outside answers (so the namespace is a real outside world)...
    let (code, out) = sh(&docker, &term, &reach_outside).await;
    assert_eq!(code, 0, "the outside is reachable before the rules: {out}");
    // ...and with them, put in place as the platform does at start-up, it does not.
    let firewall = ckad_platform::terminals::HostFirewall::new(pool.parse().unwrap());
    firewall.ensure().await.unwrap();
    firewall.ensure().await.unwrap();
    assert!(firewall.is_in_place().await);
    let (code, out) = sh(&docker, &term, &reach_outside).await;
    assert!([7, 28].contains(&code), "the outside answered ({code}): {out}");
    // The metadata address is never sent to; it is outside the pool, where the rule drops all.
    let metadata: std::net::Ipv4Addr = "169.254.169.254".parse().unwrap();
    let net: ipnet::Ipv4Net = pool.parse().unwrap();
    assert!(!net.contains(&metadata));
    assert!(iptables("-C", &pool_rules(pool)[1]));

    // Its own API still answers, by name.
    let own_api = format!(
        "curl -sk --max-time 3 https://kwok-{}-kube-apiserver:6443/healthz",
        mine.name
    );
    assert_eq!(sh(&docker, &term, &own_api).await, (0, "ok".into()));

    // Names outside the session do not resolve, and no query leaves the machine: Docker's DNS
    // forwards only to loopback, where nothing answers.
    let inspected = docker.inspect_container(&term, None).await.unwrap();
    assert_eq!(
        inspected.host_config.unwrap().dns,
        Some(vec!["127.0.0.1".to_owned()]),
        "checked before any lookup, so that none can leave the machine"
    );
    let (_, resolv) = sh(&docker, &term, "cat /etc/resolv.conf").await;
    assert!(resolv.contains("nameserver 127.0.0.11"), "{resolv}");
    let (code, out) = sh(&docker, &term, "getent hosts example.com").await;
    assert_eq!(code, 2, "an outside name resolved: {out}");
    let (code, out) = sh(
        &docker,
        &term,
        &format!("getent hosts kwok-{}-kube-apiserver", mine.name),
    )
    .await;
    assert_eq!(code, 0, "{out}");

    sandbox.remove(&mine).await;
    for rule in pool_rules(pool) {
        assert!(iptables("-D", &rule), "the test's rule was there to take out");
    }
    drop(outside);
}
