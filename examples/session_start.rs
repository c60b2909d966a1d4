//! The `bench/session-start` benchmark (run it through that script): the time from
//! `POST /api/session/start` to the first shell prompt read through `/ws/terminal`, as a learner's
//! page lives it (the start's events, a terminal ticket, the socket), for starts that claim a warm
//! pool member and for cold starts, in the same run; and the time the pool takes to make a member.
//!
//!   session_start [STARTS]     (default 10 of each)

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use ckad_platform::{
    auth::Auth,
    configuration::{EmailProvider, Settings},
    domain::Email,
    mail::{MailError, Mailer},
    AppState,
};
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};

/// The bench's learners prove their emails with the codes mailed here.
#[derive(Default)]
struct Inbox(Mutex<Vec<(String, String)>>);

#[async_trait::async_trait]
impl Mailer for Inbox {
    async fn send_code(&self, to: &Email, code: &str) -> Result<(), MailError> {
        self.0
            .lock()
            .unwrap()
            .push((to.as_str().to_owned(), code.to_owned()));
        Ok(())
    }
}

/// When a start reached each step, from pressing Start.
struct Phases {
    accepted: Duration,
    started: Duration,
    socket: Duration,
    prompt: Duration,
}

fn sorted(samples: &[Duration]) -> Vec<f64> {
    let mut seconds: Vec<f64> = samples.iter().map(Duration::as_secs_f64).collect();
    seconds.sort_by(f64::total_cmp);
    seconds
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((p * (sorted.len() - 1) as f64).round()) as usize]
}

struct Bench {
    base: String,
    origin: String,
    http: reqwest::Client,
    inbox: Arc<Inbox>,
    state: AppState,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let starts: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(10);
    let settings = Settings::load()?;
    ckad_platform::telemetry::init(settings.log_format);
    let pool_size = settings.sessions.pool.size;
    if pool_size == 0 {
        bail!("WARM_POOL_SIZE must be at least 1");
    }
    // The cold platform: the same settings with no pool, and a database and instance of its own.
    let mut cold = settings.clone();
    cold.sessions.pool.size = 0;
    cold.database_url = format!("{}-cold", settings.database_url);
    cold.clusters.state_dir = settings.clusters.state_dir.join("cold");
    cold.clusters.instance = format!("{}-cold", settings.clusters.instance);

    let cold = Bench::serve(cold).await?;
    let mut cold_times = Vec::new();
    for i in 0..starts {
        let token = cold.learner(&format!("cold{i}@example.com")).await?;
        let (phases, _) = cold.start_to_prompt(&token).await?;
        cold_times.push(phases);
        cold.stop(&token).await?;
    }

    let warm = Bench::serve(settings).await?;
    let mut warm_times = Vec::new();
    // Every member seen ready in the run: how long it took from its record to ready.
    let mut made = HashMap::new();
    for i in 0..starts {
        let token = warm.learner(&format!("warm{i}@example.com")).await?;
        // Each start finds the pool refilled, as learners arriving at a steady pace would.
        warm.wait_for_full_pool(pool_size, &mut made).await?;
        let (phases, from_pool) = warm.start_to_prompt(&token).await?;
        if !from_pool {
            bail!("a warm start found the pool empty");
        }
        warm_times.push(phases);
        warm.stop(&token).await?;
    }
    warm.wait_for_full_pool(pool_size, &mut made).await?;
    let refills: Vec<Duration> = made.into_values().collect();
    warm.drain_pool().await?;

    println!(
        "\nsession start: POST /api/session/start to the first shell prompt through /ws/terminal \
         ({starts} starts each, WARM_POOL_SIZE={pool_size}, {} cores)\n",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("| start | samples | p50 s | p90 s | min s | max s |");
    println!("|---|---:|---:|---:|---:|---:|");
    let total = |times: &[Phases]| times.iter().map(|p| p.prompt).collect::<Vec<_>>();
    for (what, samples) in [
        ("warm (a pool member claimed)", total(&warm_times)),
        ("cold (cluster and terminal built)", total(&cold_times)),
        ("pool refill (one member made)", refills),
    ] {
        let seconds = sorted(&samples);
        println!(
            "| {what} | {} | {:.2} | {:.2} | {:.2} | {:.2} |",
            seconds.len(),
            percentile(&seconds, 0.5),
            percentile(&seconds, 0.9),
            seconds[0],
            seconds[seconds.len() - 1]
        );
    }
    // Where the time goes: each phase's p50, measured from the previous phase's end.
    println!("\n| phase (p50 s) | warm | cold |");
    println!("|---|---:|---:|");
    let phase = |times: &[Phases], of: fn(&Phases) -> Duration| {
        percentile(&sorted(&times.iter().map(of).collect::<Vec<_>>()), 0.5)
    };
    for (what, of) in [
        (
            "start answered (ownership recorded, member claimed)",
            (|p: &Phases| p.accepted) as fn(&Phases) -> Duration,
        ),
        ("`started` event (cluster, tasks' setup, terminal)", |p| {
            p.started - p.accepted
        }),
        ("ticket and socket open", |p| p.socket - p.started),
        ("first prompt on the socket", |p| p.prompt - p.socket),
    ] {
        println!(
            "| {what} | {:.3} | {:.3} |",
            phase(&warm_times, of),
            phase(&cold_times, of)
        );
    }
    println!("\ntarget: warm p50 under 1 s");
    Ok(())
}

impl Bench {
    async fn serve(settings: Settings) -> anyhow::Result<Self> {
        let origin = settings.http.public_origin.clone();
        let secret = settings.auth.secret.clone();
        let mut settings = settings;
        settings.auth.email = EmailProvider::Outbox;
        let mut state = AppState::build(settings).await?;
        let inbox = Arc::new(Inbox::default());
        state.auth = Auth::new(state.store.clone(), secret, inbox.clone(), None);
        let listener = tokio::net::TcpListener::bind(state.leptos_options.site_addr).await?;
        let base = format!("http://{}", listener.local_addr()?);
        tokio::spawn(ckad_platform::run(
            listener,
            state.clone(),
            std::future::pending(),
        ));
        Ok(Self {
            base,
            origin,
            http: reqwest::Client::new(),
            inbox,
            state,
        })
    }

    async fn post(&self, path: &str, token: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("origin", &self.origin);
        if !token.is_empty() {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("{path}: {status} {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A proven account, signed in: its access token.
    async fn learner(&self, email: &str) -> anyhow::Result<String> {
        let password = "a bench password";
        self.post(
            "/api/auth/register",
            "",
            Some(json!({ "email": email, "password": password, "name": "Bench" })),
        )
        .await?;
        let code = self
            .inbox
            .0
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|(to, _)| to == email)
            .map(|(_, code)| code.clone())
            .context("no code mailed")?;
        let signed = self
            .post(
                "/api/auth/password",
                "",
                Some(json!({ "email": email, "code": code, "password": password, "name": "Bench" })),
            )
            .await?;
        Ok(signed["access_token"].as_str().context("no token")?.to_owned())
    }

    /// As the page: events open, Start pressed, `started` awaited, a ticket, the socket, the
    /// prompt. When each was reached, and whether the session was a pool member.
    async fn start_to_prompt(&self, token: &str) -> anyhow::Result<(Phases, bool)> {
        let members: Vec<String> = self
            .state
            .store
            .pool_members()
            .await?
            .into_iter()
            .map(|m| m.id)
            .collect();
        let mut events = self
            .http
            .get(format!("{}/api/session/events", self.base))
            .bearer_auth(token)
            .send()
            .await?
            .error_for_status()?;
        let began = Instant::now();
        let session = self.post("/api/session/start", token, None).await?;
        let accepted = began.elapsed();
        let mut seen = String::new();
        while !seen.contains("event: started") {
            if seen.contains("event: failed") {
                bail!("the start failed: {seen}");
            }
            let chunk = tokio::time::timeout(Duration::from_secs(120), events.chunk())
                .await
                .context("no started event in time")??
                .context("the event stream ended")?;
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        let started = began.elapsed();
        let ticket = self.post("/api/terminal/ticket", token, None).await?;
        let url = format!(
            "{}/ws/terminal?ticket={}&cols=120&rows=40",
            self.base.replace("http://", "ws://"),
            ticket["ticket"].as_str().context("no ticket")?
        );
        let mut request = url.into_client_request()?;
        request.headers_mut().insert("origin", self.origin.parse()?);
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
        let socket_open = began.elapsed();
        let mut screen = String::new();
        while !screen.contains("ckad@ckad") {
            match tokio::time::timeout(Duration::from_secs(30), socket.next())
                .await
                .context("no prompt in time")?
                .context("the socket closed")??
            {
                Message::Binary(bytes) => screen.push_str(&String::from_utf8_lossy(&bytes)),
                Message::Close(frame) => bail!("the socket closed: {frame:?}"),
                _ => {}
            }
        }
        let phases = Phases {
            accepted,
            started,
            socket: socket_open,
            prompt: began.elapsed(),
        };
        let id = session["id"].as_str().unwrap_or_default();
        Ok((phases, members.iter().any(|m| m == id)))
    }

    async fn stop(&self, token: &str) -> anyhow::Result<()> {
        self.post("/api/session/stop", token, None).await?;
        Ok(())
    }

    /// Waits until `size` members are ready, noting how long each took to make.
    async fn wait_for_full_pool(
        &self,
        size: usize,
        made: &mut HashMap<String, Duration>,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let members = self.state.store.pool_members().await?;
            for member in &members {
                if let Some(took) = member
                    .ready_at
                    .and_then(|at| (at - member.created_at).to_std().ok())
                {
                    made.insert(member.id.clone(), took);
                }
            }
            if members.len() == size && members.iter().all(|m| m.ready_at.is_some()) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the pool was not refilled: {}",
                    self.state.sessions.pool_failure().unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Leaves nothing behind: a platform with no pool on the same database removes the members.
    async fn drain_pool(self) -> anyhow::Result<()> {
        self.state.stopping.cancel();
        self.state.sessions.finish_work().await;
        let mut settings = (*self.state.settings).clone();
        settings.sessions.pool.size = 0;
        let drain = Bench::serve(settings).await?;
        let deadline = Instant::now() + Duration::from_secs(180);
        while !drain.state.store.pool_members().await?.is_empty()
            || !drain.state.clusters.list().await?.is_empty()
        {
            if Instant::now() > deadline {
                bail!("the pool's members were not all removed");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Ok(())
    }
}
