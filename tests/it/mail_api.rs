//! The SendGrid and Resend senders. Those services cannot be reached from here, so a local HTTP
//! server stands in for each (a recorder, named as such): the tests check the request each
//! sender makes and what the platform answers when the service refuses.

use crate::common;

use std::sync::{Arc, Mutex};

use axum::{extract::State, http::HeaderMap, routing::post, Json, Router};
use ckad_platform::{
    configuration::EmailProvider,
    mail::{MailApiKind, MailApiSettings},
};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{json, Value};
use tokio::net::TcpListener;

type Seen = Arc<Mutex<Vec<(String, Value)>>>;

/// The stand-in for the mail service: records each request's authorization and body, and
/// answers with `status`.
async fn recorder(status: u16) -> (String, Seen) {
    let seen = Seen::default();
    let app = Router::new()
        .route(
            "/send",
            post(
                move |State(seen): State<Seen>, headers: HeaderMap, Json(body): Json<Value>| async move {
                    let authorization = headers["authorization"].to_str().unwrap().to_owned();
                    seen.lock().unwrap().push((authorization, body));
                    axum::http::StatusCode::from_u16(status).unwrap()
                },
            ),
        )
        .with_state(seen.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/send", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

/// The platform sending through `kind` at `url`; returns the answer to one code request.
async fn request_code(kind: MailApiKind, url: String) -> (StatusCode, Value) {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = common::settings(dir.path(), "unix:///var/run/docker.sock");
    settings.auth.email = EmailProvider::Api(MailApiSettings {
        kind,
        url,
        key: SecretString::from("test-api-key"),
        from: "noreply@ckad.test".into(),
    });
    let base = common::serve(settings).await;
    let response = reqwest::Client::new()
        .post(format!("{base}/api/auth/email/otp"))
        .json(&json!({ "email": "ada@example.com" }))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

fn code_in(text: &str) -> &str {
    let at = text.find("Your sign-in code is ").unwrap() + 21;
    &text[at..at + 6]
}

#[tokio::test]
async fn sendgrid_gets_its_v3_mail_send_request() {
    let (url, seen) = recorder(202).await;
    assert_eq!(
        request_code(MailApiKind::SendGrid, url).await.0,
        StatusCode::ACCEPTED
    );
    let (authorization, body) = seen.lock().unwrap().pop().unwrap();
    assert_eq!(authorization, "Bearer test-api-key");
    assert_eq!(
        body["personalizations"],
        json!([{ "to": [{ "email": "ada@example.com" }] }])
    );
    assert_eq!(body["from"], json!({ "email": "noreply@ckad.test" }));
    assert_eq!(body["content"][0]["type"], "text/plain");
    let code = code_in(body["content"][0]["value"].as_str().unwrap());
    assert_eq!(
        body["subject"],
        format!("{code} is your CKAD Practice sign-in code")
    );
}

#[tokio::test]
async fn resend_gets_its_emails_request() {
    let (url, seen) = recorder(200).await;
    assert_eq!(
        request_code(MailApiKind::Resend, url).await.0,
        StatusCode::ACCEPTED
    );
    let (authorization, body) = seen.lock().unwrap().pop().unwrap();
    assert_eq!(authorization, "Bearer test-api-key");
    assert_eq!(
        (&body["from"], &body["to"]),
        (&json!("noreply@ckad.test"), &json!(["ada@example.com"]))
    );
    let code = code_in(body["text"].as_str().unwrap());
    assert!(code.bytes().all(|b| b.is_ascii_digit()));
}

#[tokio::test]
async fn a_refusing_mail_service_is_a_502_that_hides_its_details() {
    let (url, _) = recorder(401).await;
    let (status, body) = request_code(MailApiKind::SendGrid, url).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(body["error"], "we could not send the email; try again shortly");
}

/// The outbox writes codes to the log: on a public https site nobody could sign in and the codes
/// would sit in the log. The binary refuses to start so configured, unless told it is meant.
#[test]
fn an_outbox_on_a_public_https_site_is_refused_at_start_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let mut command = common::Process::command(port, dir.path());
    command
        .env("PUBLIC_URL", "https://ckad.example.com")
        .env("EMAIL_PROVIDER", "outbox")
        .env_remove("EMAIL_OUTBOX_ALLOWED")
        .stderr(std::process::Stdio::piped());
    let mut refused = common::Process::spawn(&mut command);
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = refused.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "the platform started instead of refusing"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let mut said = String::new();
    std::io::Read::read_to_string(refused.0.stderr.as_mut().unwrap(), &mut said).unwrap();
    assert!(!status.success(), "{said}");
    assert!(
        said.contains("EMAIL_PROVIDER=\"outbox\" is not valid") && said.contains("EMAIL_OUTBOX_ALLOWED=true"),
        "{said}"
    );

    command
        .env("EMAIL_OUTBOX_ALLOWED", "true")
        .stderr(std::process::Stdio::null());
    let _platform = common::Process::spawn(&mut command);
    let started = std::time::Instant::now();
    let client = reqwest::blocking::Client::new();
    while client
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .is_err()
    {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "allowed, the platform never answered"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
