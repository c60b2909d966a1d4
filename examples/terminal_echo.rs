//! The `bench/terminal-echo` benchmark (run it through that script): keystroke round trips
//! through the `/ws/terminal` bridge of a real platform against the raw exec stream of the same
//! terminal in the same run, then with many terminals open at once: their raw exec streams, the
//! bridge with recording off, and the bridge recording every terminal (asciicast files).
//!
//!   terminal_echo [TERMINALS] [KEYS]     (defaults 100 and 300)

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use ckad_platform::{
    clusters::{ClusterName, Kubeconfig},
    configuration::Settings,
    replays::{Recordings, ReplaySettings},
    store::NewSession,
    terminals::{Grant, ShellTab, TermSize, TerminalAccess, TerminalIo, TerminalSpec},
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
/// Ctrl-U: clears the typed line between rounds, so the prompt never wraps.
const CLEAR_LINE: u8 = 0x15;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let terminals = args.first().copied().unwrap_or(100).max(1);
    let keys = args.get(1).copied().unwrap_or(300).max(10);

    let settings = Settings::load()?;
    let origin = settings.http.public_origin.clone();
    let state = AppState::build(settings).await?;
    let listener = tokio::net::TcpListener::bind(state.leptos_options.site_addr).await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(ckad_platform::run(
        listener,
        state.clone(),
        std::future::pending(),
    ));
    let http = reqwest::Client::new();

    // One real session, started through the API like a learner's.
    let account = json!({ "email": "bench@example.com", "password": "a bench password", "name": "Bench" });
    let signed: Value = http
        .post(format!("{base}/api/auth/register"))
        .json(&account)
        .send()
        .await?
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
    let cluster = ClusterName::parse(&row.cluster_name)?;

    let raw = raw_round_trips(
        state.terminals.attach(&cluster, ShellTab::FIRST, SIZE).await?,
        keys,
        BURST,
    )
    .await?;
    let grant = Grant {
        user_id: row.user_id.clone(),
        session_id: row.id.clone(),
    };
    let one = socket_round_trips(
        connect(&base, &origin, &state.tickets.mint(grant)).await?,
        keys,
        BURST,
    )
    .await?;

    // More terminals, each on a small network of its own (as sessions have) and recorded as a
    // started session of its own learner, so that the bridge serves it as it serves real ones.
    let kubeconfig = Kubeconfig::from_yaml(std::fs::read_to_string(
        row.kubeconfig_path.as_deref().context("no kubeconfig")?,
    )?)?;
    let extra: Vec<(ClusterName, String, String)> = futures_util::stream::iter(1..terminals)
        .map(|i| {
            let (state, kubeconfig) = (state.clone(), kubeconfig.clone());
            async move { extra_terminal(&state, i, &kubeconfig).await }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let per_socket = (keys / 10).max(10);
    let mut all = vec![(cluster.clone(), row.user_id.clone(), row.id.clone())];
    all.extend(extra.iter().cloned());

    // The floor at this load: every terminal's raw exec stream typed into at once.
    let mut streams = Vec::new();
    for (name, _, _) in &all {
        streams.push(state.terminals.attach(name, ShellTab::FIRST, SIZE).await?);
    }
    let raw_many = futures_util::future::try_join_all(
        streams
            .into_iter()
            .map(|io| raw_round_trips(io, per_socket, TYPIST)),
    )
    .await?
    .into_iter()
    .flatten()
    .collect();

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
    let many_off = many_round_trips(&state, &base_off, &origin, &all, per_socket).await?;
    let many_on = many_round_trips(&state, &base, &origin, &all, per_socket).await?;

    println!(
        "\nkeystroke round trip (send one key, wait for its echo); one terminal: a key every {} ms; \
         {terminals} terminals: each a key every {} ms\n",
        BURST.as_millis(),
        TYPIST.as_millis()
    );
    println!("| path | terminals open | samples | median ms | p99 ms |");
    println!("|---|---:|---:|---:|---:|");
    for (path, open, samples) in [
        ("raw exec stream (baseline)", 1, raw),
        ("WebSocket bridge, recording", 1, one),
        ("raw exec streams (baseline)", terminals, raw_many),
        ("WebSocket bridge, not recording", terminals, many_off),
        ("WebSocket bridge, recording", terminals, many_on),
    ] {
        let (median, p99) = percentiles(samples.clone());
        println!("| {path} | {open} | {} | {median:.2} | {p99:.2} |", samples.len());
    }

    // Clean up: the extra terminals and their rows, then the real session through the API.
    let docker = state.docker.client().await?;
    for (name, _, session_id) in &extra {
        state.terminals.remove(name).await?;
        docker.remove_network(&format!("bench-{name}")).await?;
        state
            .store
            .set_session_status(session_id, ckad_platform::domain::SessionStatus::Ended, "bench")
            .await?;
    }
    http.post(format!("{base}/api/session/stop"))
        .bearer_auth(&token)
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}

async fn extra_terminal(
    state: &AppState,
    i: usize,
    kubeconfig: &Kubeconfig,
) -> anyhow::Result<(ClusterName, String, String)> {
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
        labels: Some([("ckad.platform".to_owned(), "bench".to_owned())].into()),
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
    let session = state
        .store
        .insert_session(new, u32::MAX)
        .await?
        .context("no seat for the bench session")?;
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
        if let Some(Message::Binary(bytes)) = socket.next().await.transpose()? {
            seen.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    Ok(socket)
}

/// A socket to each of `terminals` at once, each typed into at a typist's pace; every echo's time.
async fn many_round_trips(
    state: &AppState,
    base: &str,
    origin: &str,
    terminals: &[(ClusterName, String, String)],
    keys: usize,
) -> anyhow::Result<Vec<Duration>> {
    let mut sockets = Vec::new();
    for (_, user_id, session_id) in terminals {
        let grant = Grant {
            user_id: user_id.clone(),
            session_id: session_id.clone(),
        };
        sockets.push(connect(base, origin, &state.tickets.mint(grant)).await?);
    }
    Ok(
        futures_util::future::try_join_all(sockets.into_iter().map(|s| socket_round_trips(s, keys, TYPIST)))
            .await?
            .into_iter()
            .flatten()
            .collect(),
    )
}

/// Types `keys` keys into the raw exec stream, timing each echo; the shell's client is detached
/// after.
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
    io.control.detach().await;
    Ok(samples)
}

/// Reads what the terminal prints until it has been quiet for a moment.
async fn settle_raw(io: &mut TerminalIo) -> anyhow::Result<()> {
    while let Ok(Some(chunk)) = tokio::time::timeout(Duration::from_millis(150), io.output.next()).await {
        chunk?;
    }
    Ok(())
}

/// Types `keys` keys through the socket, timing each echo.
async fn socket_round_trips(
    mut socket: Socket,
    keys: usize,
    pace: Duration,
) -> anyhow::Result<Vec<Duration>> {
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
            while let Ok(Some(message)) =
                tokio::time::timeout(Duration::from_millis(150), socket.next()).await
            {
                message?;
            }
        }
        tokio::time::sleep(pace).await;
    }
    socket.close(None).await.ok();
    Ok(samples)
}

fn percentiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0;
    (at(0.5), at(0.99))
}
