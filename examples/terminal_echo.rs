//! The `bench/terminal-echo` benchmark (run it through that script): keystroke round trips
//! through the `/ws/terminal` bridge of a real platform against the raw exec stream of the same
//! terminal in the same run, then with many terminals open at once, in rounds that take each
//! path in turn: their raw exec streams (the floor at that load), the bridge with recording off,
//! and the bridge recording every terminal (asciicast files). Prints a table (p50, p90, p99), the
//! machine's load, and whether the goals hold at that load: the bridge recording adds under 2 ms
//! at the median, and its p99 is at most twice the raw streams'.
//!
//!   terminal_echo [TERMINALS] [KEYS]     (defaults 100 and 300)

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use ckad_platform::{
    auth::Auth,
    clusters::{ClusterName, Kubeconfig, INSTANCE_LABEL, PLATFORM_LABEL},
    configuration::{EmailProvider, Settings},
    domain::Email,
    mail::{MailError, Mailer},
    replays::{Recordings, ReplaySettings},
    store::{NewSession, TicketGrant},
    terminals::{ShellTab, TermSize, TerminalAccess, TerminalIo, TerminalSpec},
    AppState,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const SIZE: TermSize = TermSize { cols: 120, rows: 40 };
/// Between keys: a burst for the one-terminal rows, a fast typist (~7 keys a second) for each
/// of the many terminals at once.
const BURST: Duration = Duration::from_millis(20);
const TYPIST: Duration = Duration::from_millis(150);
/// A terminal quiet this long has finished drawing.
const QUIET: Duration = Duration::from_millis(150);
/// Ctrl-U: clears the typed line between rounds, so the prompt never wraps.
const CLEAR_LINE: u8 = 0x15;
/// Rounds of the many-terminal rows; each takes every path once.
const ROUNDS: usize = 3;
/// The many-terminal paths, by their index in a round.
const RAW: usize = 0;
const UNRECORDED: usize = 1;

/// A terminal made for the bench: its cluster's name, its learner and its session.
type Bench = (ClusterName, String, String);

/// The bench's learner proves its email with the code mailed here.
#[derive(Default)]
struct Inbox(Mutex<Vec<String>>);

#[async_trait::async_trait]
impl Mailer for Inbox {
    async fn send_code(&self, _to: &Email, code: &str) -> Result<(), MailError> {
        self.0.lock().unwrap().push(code.to_owned());
        Ok(())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let terminals = args.first().copied().unwrap_or(100).max(1);
    let keys = args.get(1).copied().unwrap_or(300).max(10);

    let mut settings = Settings::load()?;
    settings.auth.email = EmailProvider::Outbox;
    let origin = settings.http.public_origin.clone();
    let secret = settings.auth.secret.clone();
    let mut state = AppState::build(settings).await?;
    let inbox = Arc::new(Inbox::default());
    state.auth = Auth::new(state.store.clone(), secret, inbox.clone(), None);
    let listener = tokio::net::TcpListener::bind(state.leptos_options.site_addr).await?;
    let base = format!("http://{}", listener.local_addr()?);
    // The platform's HTTP side and its session networks' firewall, without its background work:
    // the liveness watch would fail the bench's terminals as lost, as they have no clusters of
    // their own (they sit on networks of their own, with the one real session's kubeconfig).
    if let Err(error) = state.firewall.ensure().await {
        eprintln!("session networks can reach the host: {error}");
    }
    let app = ckad_platform::app(state.clone());
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    let http = reqwest::Client::new();

    // One real session, started through the API like a learner's (whose email is proven by the
    // code mailed to it).
    let mut account =
        json!({ "email": "bench@example.com", "password": "a bench password", "name": "Bench" });
    http.post(format!("{base}/api/auth/register"))
        .json(&account)
        .send()
        .await?
        .error_for_status()?;
    let code = inbox.0.lock().unwrap().pop().context("no code mailed")?;
    account["code"] = code.into();
    let signed: Value = http
        .post(format!("{base}/api/auth/password"))
        .json(&account)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let token = signed["access_token"].as_str().context("no token")?.to_owned();
    http.post(format!("{base}/api/session/start"))
        .bearer_auth(&token)
        .send()
        .await?
        .error_for_status()?;
    let session = loop {
        let status: Value = http
            .get(format!("{base}/api/session/status"))
            .bearer_auth(&token)
            .send()
            .await?
            .json()
            .await?;
        match status["status"].as_str() {
            Some("started") => break status,
            Some("provisioning") => tokio::time::sleep(Duration::from_millis(200)).await,
            _ => bail!("the session did not start: {status}"),
        }
    };
    let row = state
        .store
        .session_by_id(session["id"].as_str().unwrap())
        .await?
        .context("no row")?;

    // Whatever happens while measuring, the terminals made for it and the session go after.
    let mut extra = Vec::new();
    let measured = measure(&state, &base, &origin, &row, terminals, keys, &mut extra).await;
    let mut cleaned = Ok(());
    let docker = state.docker.client().await?;
    for (name, _, session_id) in &extra {
        let removed = async {
            state.terminals.remove(name).await?;
            docker.remove_network(&format!("bench-{name}")).await?;
            state
                .store
                .set_session_status(session_id, ckad_platform::domain::SessionStatus::Ended, "bench")
                .await?;
            anyhow::Ok(())
        };
        if let Err(error) = removed.await {
            cleaned = Err(error.context(format!("removing the bench terminal {name}")));
        }
    }
    http.post(format!("{base}/api/session/stop"))
        .bearer_auth(&token)
        .send()
        .await?
        .error_for_status()?;
    let report = measured?;
    cleaned?;
    println!("{report}");
    Ok(())
}

/// The rows for one terminal, then for `terminals` at once; each terminal made for it is put in
/// `extra` as soon as it exists, so that it is removed even when a later step fails.
async fn measure(
    state: &AppState,
    base: &str,
    origin: &str,
    row: &ckad_platform::domain::Session,
    terminals: usize,
    keys: usize,
    extra: &mut Vec<Bench>,
) -> anyhow::Result<String> {
    let cluster = ClusterName::parse(&row.cluster_name)?;
    let raw = raw_round_trips(
        state.terminals.attach(&cluster, ShellTab::FIRST, SIZE).await?,
        keys,
        BURST,
    )
    .await?;
    let grant = TicketGrant {
        user_id: row.user_id.clone(),
        session_id: row.id.clone(),
    };
    let one = socket_round_trips(
        connect(base, origin, &state.tickets.mint(&grant).await?).await?,
        keys,
        BURST,
    )
    .await?;

    // More terminals, each on a small network of its own (as sessions have) and recorded as a
    // started session of its own learner, so that the bridge serves it as it serves real ones.
    let kubeconfig = Kubeconfig::from_yaml(std::fs::read_to_string(
        row.kubeconfig_path.as_deref().context("no kubeconfig")?,
    )?)?;
    let mut made = futures_util::stream::iter(1..terminals)
        .map(|i| {
            let kubeconfig = kubeconfig.clone();
            async move { extra_terminal(state, i, &kubeconfig).await }
        })
        .buffer_unordered(8);
    let mut failed = None;
    while let Some(terminal) = made.next().await {
        match terminal {
            Ok(terminal) => extra.push(terminal),
            Err(error) => {
                failed.get_or_insert(error);
            }
        }
    }
    if let Some(error) = failed {
        return Err(error.context("making the bench's terminals"));
    }
    let mut all = vec![(cluster.clone(), row.user_id.clone(), row.id.clone())];
    all.extend(extra.iter().cloned());

    // The same platform answering without recording, beside the one that records.
    let mut unrecorded = state.clone();
    unrecorded.recordings = Recordings::new(
        state.settings.clusters.state_dir.join("replays-off"),
        ReplaySettings {
            practice: false,
            ..state.settings.replays.clone()
        },
        state.store.clone(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base_off = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        axum::serve(
            listener,
            ckad_platform::app(unrecorded).into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });

    // Every terminal typed into at once through each path in turn: the raw exec streams (the
    // floor at this load), the bridge not recording and the bridge recording. The order turns
    // each round, so that no path always follows the same one on a shared machine.
    let per_round = (keys / 10 / ROUNDS).max(5);
    let mut many: [Vec<Duration>; 3] = Default::default();
    let (load_before, free_before) = (load_average(), memory_available());
    for round in 0..ROUNDS {
        for step in 0..many.len() {
            let path = (round + step) % many.len();
            let samples = match path {
                RAW => raw_many(state, &all, per_round).await?,
                UNRECORDED => many_round_trips(state, &base_off, origin, &all, per_round).await?,
                _ => many_round_trips(state, base, origin, &all, per_round).await?,
            };
            many[path].extend(samples);
        }
    }
    let (load_after, free_after) = (load_average(), memory_available());
    // Recording on is what the goal is about: every terminal's session has its cast.
    let casts = count_files(&state.settings.clusters.state_dir.join("replays"), "cast");
    if casts < terminals {
        bail!("only {casts} of {terminals} sessions were recorded");
    }
    let [raw_many, unrecorded, recorded] = many;

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut report = format!(
        "\nkeystroke echo (send one key, time until its echo comes back). One terminal: a key every {} ms. \
         {terminals} terminals at once: each a key every {} ms ({} keys a second in all), {ROUNDS} rounds taking \
         the three paths in turn. {cores} cores, shared by the client, the platform, Docker and every terminal; \
         load average (1, 5, 15 min) {load_before} before the {terminals}-terminal rounds, {load_after} after; \
         memory available {free_before} before, {free_after} after.\n\n",
        BURST.as_millis(),
        TYPIST.as_millis(),
        terminals as u128 * 1000 / TYPIST.as_millis(),
    );
    report +=
        "| path | terminals open | samples | p50 ms | p90 ms | p99 ms |\n|---|---:|---:|---:|---:|---:|\n";
    let rows = [
        ("raw exec stream (baseline)", 1, &raw),
        ("WebSocket bridge, recording", 1, &one),
        ("raw exec streams (baseline)", terminals, &raw_many),
        ("WebSocket bridge, not recording", terminals, &unrecorded),
        ("WebSocket bridge, recording", terminals, &recorded),
    ];
    for (path, open, samples) in rows {
        let [p50, p90, p99] = percentiles(samples, [0.5, 0.9, 0.99]);
        report += &format!(
            "| {path} | {open} | {} | {p50:.2} | {p90:.2} | {p99:.2} |\n",
            samples.len()
        );
    }
    let [raw_p50, raw_p99] = percentiles(&raw_many, [0.5, 0.99]);
    let [bridge_p50, bridge_p99] = percentiles(&recorded, [0.5, 0.99]);
    let overhead = bridge_p50 - raw_p50;
    let verdict = |met: bool| if met { "met" } else { "NOT met" };
    report += &format!(
        "\nat {terminals} terminals, the bridge recording against the raw streams:\n\
         - median overhead (difference of the p50s): {overhead:.2} ms; goal under 2 ms: {}\n\
         - p99: {bridge_p99:.2} ms against the raw streams' {raw_p99:.2} ms (twice that is {:.2} ms); \
         goal at most twice: {}\n",
        verdict(overhead < 2.0),
        2.0 * raw_p99,
        verdict(bridge_p99 <= 2.0 * raw_p99),
    );
    Ok(report)
}

async fn extra_terminal(state: &AppState, i: usize, kubeconfig: &Kubeconfig) -> anyhow::Result<Bench> {
    let user = state
        .store
        .insert_user(&format!("bench{i}@example.com"), "")
        .await?;
    let name = ClusterName::generate();
    // The top of the default session pool (10.213.240.0/20): a /28 each, clear of real sessions.
    let network = format!("bench-{name}");
    let subnet = format!("10.213.{}.{}/28", 240 + i / 16, (i % 16) * 16);
    let request = bollard::models::NetworkCreateRequest {
        name: network.clone(),
        // The instance too, so that bench/terminal-echo finds what a failed run left.
        labels: Some(
            [
                (PLATFORM_LABEL.to_owned(), "bench".to_owned()),
                (
                    INSTANCE_LABEL.to_owned(),
                    state.settings.clusters.instance.clone(),
                ),
            ]
            .into(),
        ),
        ipam: Some(bollard::models::Ipam {
            config: Some(vec![bollard::models::IpamConfig {
                subnet: Some(subnet),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    state.docker.client().await?.create_network(request).await?;
    let network = network.as_str();
    let now = chrono::Utc::now();
    let new = NewSession {
        user_id: &user.id,
        cluster_name: name.as_str(),
        start_time: now,
        expires_at: now + chrono::Duration::hours(1),
        exam_id: None,
    };
    // Within the platform's seats (MAX_CONCURRENT_SESSIONS, which the bench raises).
    let seats = u32::try_from(state.settings.sessions.max_concurrent)?;
    let session =
        state.store.insert_session(new, seats).await?.context(
            "no seat for the bench session: MAX_CONCURRENT_SESSIONS is below the terminals asked for",
        )?;
    let spec = TerminalSpec {
        cluster: &name,
        network,
        access: TerminalAccess::Cluster(kubeconfig),
        session_id: &session.id,
        user_id: &user.id,
    };
    state.terminals.create(&spec).await?;
    state
        .store
        .mark_session_started(
            &session.id,
            "",
            &format!("term-{name}"),
            now + chrono::Duration::hours(1),
        )
        .await?;
    Ok((name, user.id, session.id))
}

async fn connect(base: &str, origin: &str, ticket: &str) -> anyhow::Result<Socket> {
    let url = format!(
        "{}/ws/terminal?ticket={ticket}&cols={}&rows={}",
        base.replace("http://", "ws://"),
        SIZE.cols,
        SIZE.rows
    );
    let mut request = url.into_client_request()?;
    request.headers_mut().insert("origin", origin.parse()?);
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
    // Until the prompt shows, tmux is still attaching.
    let mut seen = String::new();
    while !seen.contains("$ ") {
        if let Message::Binary(bytes) = socket
            .next()
            .await
            .context("the socket closed before the prompt")??
        {
            seen.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    Ok(socket)
}

/// A raw exec stream to each of `terminals` at once, each typed into at a typist's pace; every
/// echo's time.
async fn raw_many(state: &AppState, terminals: &[Bench], keys: usize) -> anyhow::Result<Vec<Duration>> {
    let mut streams = Vec::new();
    for (name, _, _) in terminals {
        streams.push(state.terminals.attach(name, ShellTab::FIRST, SIZE).await?);
    }
    Ok(
        futures_util::future::try_join_all(streams.into_iter().map(|io| raw_round_trips(io, keys, TYPIST)))
            .await?
            .into_iter()
            .flatten()
            .collect(),
    )
}

/// A socket to each of `terminals` at once, each typed into at a typist's pace; every echo's time.
async fn many_round_trips(
    state: &AppState,
    base: &str,
    origin: &str,
    terminals: &[Bench],
    keys: usize,
) -> anyhow::Result<Vec<Duration>> {
    let mut sockets = Vec::new();
    for (_, user_id, session_id) in terminals {
        let grant = TicketGrant {
            user_id: user_id.clone(),
            session_id: session_id.clone(),
        };
        sockets.push(connect(base, origin, &state.tickets.mint(&grant).await?).await?);
    }
    Ok(
        futures_util::future::try_join_all(sockets.into_iter().map(|s| socket_round_trips(s, keys, TYPIST)))
            .await?
            .into_iter()
            .flatten()
            .collect(),
    )
}

/// Types `keys` keys into the raw exec stream, timing each echo; the typed line is cleared and
/// the shell's client detached after.
async fn raw_round_trips(mut io: TerminalIo, keys: usize, pace: Duration) -> anyhow::Result<Vec<Duration>> {
    settle_raw(&mut io).await?;
    let mut samples = Vec::with_capacity(keys);
    for i in 0..keys {
        let started = Instant::now();
        io.input.write_all(b"x").await?;
        io.input.flush().await?;
        loop {
            let chunk = io.output.next().await.context("the shell ended")??;
            if chunk.contains(&b'x') {
                break;
            }
        }
        samples.push(started.elapsed());
        if i % 50 == 49 {
            io.input.write_all(&[CLEAR_LINE]).await?;
            settle_raw(&mut io).await?;
        }
        tokio::time::sleep(pace).await;
    }
    io.input.write_all(&[CLEAR_LINE]).await?;
    settle_raw(&mut io).await?;
    io.control.detach().await;
    Ok(samples)
}

/// Reads what the terminal prints until it has been quiet for a moment.
async fn settle_raw(io: &mut TerminalIo) -> anyhow::Result<()> {
    while let Ok(Some(chunk)) = tokio::time::timeout(QUIET, io.output.next()).await {
        chunk?;
    }
    Ok(())
}

/// Types `keys` keys through the socket, timing each echo; the typed line is cleared after.
async fn socket_round_trips(
    mut socket: Socket,
    keys: usize,
    pace: Duration,
) -> anyhow::Result<Vec<Duration>> {
    // As on the raw stream: tmux's first drawing is over before the first key.
    settle_socket(&mut socket).await?;
    let mut samples = Vec::with_capacity(keys);
    for i in 0..keys {
        let started = Instant::now();
        socket.send(Message::binary(b"x".to_vec())).await?;
        loop {
            match socket.next().await.context("the socket closed")?? {
                Message::Binary(bytes) if bytes.contains(&b'x') => break,
                _ => {}
            }
        }
        samples.push(started.elapsed());
        if i % 50 == 49 {
            socket.send(Message::binary(vec![CLEAR_LINE])).await?;
            settle_socket(&mut socket).await?;
        }
        tokio::time::sleep(pace).await;
    }
    socket.send(Message::binary(vec![CLEAR_LINE])).await?;
    settle_socket(&mut socket).await?;
    socket.close(None).await.ok();
    Ok(samples)
}

/// Reads what the socket brings until it has been quiet for a moment.
async fn settle_socket(socket: &mut Socket) -> anyhow::Result<()> {
    while let Ok(Some(message)) = tokio::time::timeout(QUIET, socket.next()).await {
        message?;
    }
    Ok(())
}

/// Each quantile of the samples, in milliseconds (nearest rank).
fn percentiles<const N: usize>(samples: &[Duration], quantiles: [f64; N]) -> [f64; N] {
    let mut sorted = samples.to_vec();
    sorted.sort();
    quantiles.map(|q| sorted[((sorted.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0)
}

/// The machine's load average over 1, 5 and 15 minutes, as Linux gives it.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// The memory the machine could still give, as Linux estimates it.
fn memory_available() -> String {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
            let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(format!("{:.1} GiB", kib / 1024.0 / 1024.0))
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// How many files ending in `.{extension}` lie under `dir`, at any depth.
fn count_files(dir: &std::path::Path, extension: &str) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .fold(0, |count, entry| {
            let path = entry.path();
            if path.is_dir() {
                count + count_files(&path, extension)
            } else {
                count + usize::from(path.extension().is_some_and(|e| e == extension))
            }
        })
}
