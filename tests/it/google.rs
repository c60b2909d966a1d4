//! Google sign-in against a real OpenID Connect provider process (mock-oauth2-server, a Java
//! program from Maven Central): the whole browser flow, and the ways it must be refused.

use crate::common;

use std::{
    os::unix::process::CommandExt as _,
    process::{Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

use ckad_platform::auth::GoogleSettings;
use reqwest::{header, redirect::Policy, StatusCode};
use tokio::net::TcpListener;

/// The provider, started once for all tests of this file; it dies with the test process.
fn provider() -> &'static str {
    static ISSUER: OnceLock<String> = OnceLock::new();
    ISSUER.get_or_init(|| {
        let port = common::free_port();
        let config = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/oidc/config.json"
        ))
        .unwrap();
        let classpath =
            std::env::var("CKAD_OIDC_CLASSPATH").expect("CKAD_OIDC_CLASSPATH is set by scripts/setup.sh");
        let mut command = Command::new("java");
        command
            .args([
                "-cp",
                &classpath,
                "no.nav.security.mock.oauth2.StandaloneMockOAuth2ServerKt",
            ])
            .env("SERVER_PORT", port.to_string())
            .env("JSON_CONFIG", config)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: prctl only touches the child being set up.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        // The death signal follows the spawning *thread*: spawn from one that lives as long as
        // the test process, not from a test's own thread.
        let (spawned, started) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            spawned.send(command.spawn().map(drop)).unwrap();
            loop {
                std::thread::park();
            }
        });
        started.recv().unwrap().unwrap();
        let issuer = format!("http://127.0.0.1:{port}/default");
        let started = Instant::now();
        while reqwest::blocking::get(format!("{issuer}/.well-known/openid-configuration")).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the OIDC provider did not start"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        issuer
    })
}

struct App {
    base: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
    _one_flow_at_a_time: tokio::sync::MutexGuard<'static, ()>,
}

/// Flows run in parallel against the one test provider crossed (a token came back with another
/// flow's nonce, which the platform rightly refused): the provider does not keep each code's
/// nonce apart as a real one does. The tests take turns.
static PROVIDER_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl App {
    /// The platform with Google sign-in pointed at the provider, as OAuth client `client_id`.
    async fn start(client_id: Option<&str>) -> Self {
        let turn = PROVIDER_TURN.lock().await;
        let issuer = tokio::task::spawn_blocking(provider).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut settings = common::settings(dir.path(), "unix:///var/run/docker.sock");
        settings.http.public_origin = base.clone();
        settings.auth.google = client_id.map(|client_id| GoogleSettings {
            client_id: client_id.into(),
            client_secret: secrecy::SecretString::from("a client secret"),
            auth_url: format!("{issuer}/authorize"),
            token_url: format!("{issuer}/token"),
            jwks_url: format!("{issuer}/jwks"),
            issuer: issuer.to_owned(),
            redirect_url: format!("{base}/api/auth/google/callback"),
        });
        common::serve_on(listener, settings).await;
        let client = reqwest::Client::builder()
            .redirect(Policy::none())
            .build()
            .unwrap();
        Self {
            base,
            client,
            _dir: dir,
            _one_flow_at_a_time: turn,
        }
    }

    async fn get(&self, url: &str) -> reqwest::Response {
        self.client.get(url).send().await.unwrap()
    }

    /// `url` from the browser that holds `cookie`.
    async fn get_as(&self, url: &str, cookie: &str) -> reqwest::Response {
        self.client
            .get(url)
            .header(header::COOKIE, cookie)
            .send()
            .await
            .unwrap()
    }

    /// Follows our redirect to the provider and the provider's back to our callback URL; that
    /// URL and the cookie the browser that started keeps.
    async fn callback(&self) -> (String, String) {
        let to_provider = self.get(&format!("{}/api/auth/google", self.base)).await;
        assert_eq!(to_provider.status(), StatusCode::SEE_OTHER);
        let set = to_provider.headers()[header::SET_COOKIE].to_str().unwrap();
        assert!(
            set.starts_with("ckad_google=") && set.contains("HttpOnly") && set.contains("Max-Age=600"),
            "{set}"
        );
        let cookie = set.split(';').next().unwrap().to_owned();
        let authorize = location(&to_provider);
        for param in [
            "code_challenge_method=S256",
            "code_challenge=",
            "state=",
            "nonce=",
            "scope=openid+email+profile",
        ] {
            assert!(authorize.contains(param), "{param} missing from {authorize}");
        }
        let back = self.get(&authorize).await;
        assert_eq!(back.status(), StatusCode::FOUND);
        let callback = location(&back);
        assert!(
            callback.starts_with(&format!("{}/api/auth/google/callback?code=", self.base)),
            "{callback}"
        );
        (callback, cookie)
    }
}

fn location(response: &reqwest::Response) -> String {
    response.headers()[header::LOCATION].to_str().unwrap().to_owned()
}

/// Where a refused callback sends the browser: the sign-in page, and the reason it names.
fn refused_with(response: &reqwest::Response) -> String {
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(
        response.headers().get(header::SET_COOKIE).is_none(),
        "no sign-in cookies"
    );
    let location = location(response);
    let query = location
        .strip_prefix("/signin?")
        .unwrap_or_else(|| panic!("{location}"));
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "error")
        .unwrap()
        .1
        .into_owned()
}

#[tokio::test]
async fn a_google_sign_in_creates_the_account_and_sets_the_cookies() {
    let app = App::start(Some("ckad-web")).await;
    let (callback, cookie) = app.callback().await;
    let done = app.get_as(&callback, &cookie).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&done), "/");
    let cookies: Vec<String> = done
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|c| c.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(cookies.len(), 3);
    assert!(
        cookies[2].starts_with("ckad_google=;"),
        "the binding cookie is cleared"
    );
    let access = cookies[0].split(';').next().unwrap();
    let me: serde_json::Value = app
        .client
        .get(format!("{}/api/auth/me", app.base))
        .header(header::COOKIE, access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (me["email"].as_str(), me["name"].as_str()),
        (Some("grace@example.com"), Some("Grace Hopper"))
    );
}

#[tokio::test]
async fn a_callback_works_once() {
    let app = App::start(Some("ckad-web")).await;
    let (callback, cookie) = app.callback().await;
    assert_eq!(location(&app.get_as(&callback, &cookie).await), "/");
    let again = app.get_as(&callback, &cookie).await;
    assert_eq!(refused_with(&again), "expired");
}

#[tokio::test]
async fn a_state_we_did_not_issue_is_refused() {
    let app = App::start(Some("ckad-web")).await;
    let (callback, cookie) = app.callback().await;
    let (before, _) = callback.split_once("state=").unwrap();
    let forged = app.get_as(&format!("{before}state=forged-state"), &cookie).await;
    assert_eq!(refused_with(&forged), "expired");
}

#[tokio::test]
async fn an_unverified_google_email_is_refused() {
    let app = App::start(Some("ckad-unverified")).await;
    let (callback, cookie) = app.callback().await;
    let refused = app.get_as(&callback, &cookie).await;
    assert_eq!(refused_with(&refused), "unverified");
}

#[tokio::test]
async fn without_configuration_google_sign_in_says_so() {
    let app = App::start(None).await;
    let refused = app.get(&format!("{}/api/auth/google", app.base)).await;
    assert_eq!(refused_with(&refused), "unavailable");
}

#[tokio::test]
async fn a_callback_replayed_in_another_browser_is_refused() {
    let app = App::start(Some("ckad-web")).await;
    let (callback, cookie) = app.callback().await;
    // Another browser: without the cookie, or with the cookie of a sign-in of its own.
    let (_, other) = app.callback().await;
    for stranger in ["", other.as_str()] {
        let replayed = app.get_as(&callback, stranger).await;
        assert_eq!(refused_with(&replayed), "expired", "{stranger:?}");
    }
    assert_eq!(
        location(&app.get_as(&callback, &cookie).await),
        "/",
        "the browser that started still finishes"
    );
}

#[tokio::test]
async fn the_sign_in_page_shows_only_its_own_sentences() {
    let app = &App::start(None).await;
    let page = |query: &str| {
        let url = format!("{}/signin?error={query}", app.base);
        async move { app.get(&url).await.text().await.unwrap() }
    };
    let planted = page("Your+account+is+locked:+call+0800+555+555").await;
    assert!(!planted.contains("locked"), "the query's text is shown");
    assert!(planted.contains("The Google sign-in did not complete: try again."));
    assert!(page("unverified").await.contains("email is not verified."));
}
