//! Access passes and payments on a running platform, against Stripe's own API double
//! (stripe-mock, built by scripts/setup.sh) on a loopback port: checkout sessions made by it,
//! webhooks signed with the endpoint's secret (good, bad, stale, repeated, unknown, refunds),
//! activation, admins' grants, and a full exam opened by a pass and finishing after the pass
//! expires.

use crate::common;

use std::{process::Stdio, time::Duration};

use ckad_platform::{
    billing::{webhook, BillingSettings, StripeSettings},
    configuration::Settings,
};
use common::Platform;
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

const WEBHOOK_SECRET: &str = "whsec_billing_tests_0123456789";

/// stripe-mock on loopback ports of its own choosing, stopped when dropped.
struct StripeMock {
    base: String,
    _child: tokio::process::Child,
}

impl StripeMock {
    async fn start() -> Self {
        let binary = std::env::var("STRIPE_MOCK_BIN").expect("STRIPE_MOCK_BIN is set by scripts/setup.sh");
        let mut child = tokio::process::Command::new(binary)
            .args(["-http-addr", "127.0.0.1:0", "-https-addr", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let address = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(address) = line.strip_prefix("Listening for HTTP at address: ") {
                    return address.to_owned();
                }
            }
            panic!("stripe-mock ended before it listened");
        })
        .await
        .expect("stripe-mock listens within 30 s");
        // Its log must keep flowing, or a full pipe would stall it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            base: format!("http://{address}"),
            _child: child,
        }
    }
}

fn with_payments(settings: &mut Settings, stripe: &StripeMock) {
    settings.billing = BillingSettings {
        stripe: StripeSettings::from_values(
            Some(SecretString::from("sk_test_billingtests")),
            Some(SecretString::from(WEBHOOK_SECRET)),
            stripe.base.clone(),
        )
        .unwrap(),
        pass_types: None,
    };
}

/// Delivers `event` to the webhook as Stripe would, signed at `at` with `secret`.
async fn deliver(platform: &Platform, event: &Value, secret: &str, at: i64) -> (StatusCode, Value) {
    let body = event.to_string();
    let signature = hex::encode(webhook::sign(secret, at, body.as_bytes()));
    let response = platform
        .client
        .post(format!("{}/api/v1/billing/webhook", platform.base))
        .header("content-type", "application/json")
        .header("stripe-signature", format!("t={at},v1={signature}"))
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn paid(event_id: &str, session: &str, payment: &str, user_id: &str, plan: &str) -> Value {
    json!({
        "id": event_id, "object": "event", "type": "checkout.session.completed",
        "data": { "object": {
            "id": session, "object": "checkout.session", "mode": "payment",
            "payment_status": "paid", "payment_intent": payment, "client_reference_id": user_id,
            "metadata": { "user_id": user_id, "pass_type": plan },
        }},
    })
}

fn refunded(event_id: &str, payment: &str) -> Value {
    json!({
        "id": event_id, "object": "event", "type": "charge.refunded",
        "data": { "object": { "id": "ch_1", "object": "charge", "payment_intent": payment, "refunded": true } },
    })
}

async fn user_id(platform: &Platform, token: &str) -> String {
    let (_, me) = platform.get("/api/auth/me", token).await;
    me["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn with_payments_off_the_plans_say_so_and_nothing_fails() {
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::start(common::settings(dir.path(), "unix:///var/run/docker.sock")).await;
    let token = platform.learner("ada@example.com").await;
    let (code, plans) = platform.get("/api/v1/billing/plans", "").await;
    assert_eq!(code, StatusCode::OK, "{plans}");
    assert_eq!(plans["billing_enabled"], false);
    let listed: Vec<_> = plans["plans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap(),
                p["price_cents"].as_u64().unwrap(),
                p["hours"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("Free Trial", 0, 0),
            ("38 Hours Pass", 499, 38),
            ("1 Week Pass", 1999, 168),
            ("2 Weeks Pass", 2999, 336)
        ]
    );
    let (code, body) = platform
        .call(
            reqwest::Method::POST,
            "/api/v1/billing/checkout",
            &token,
            Some(json!({"plan": "pass-38h"})),
        )
        .await;
    assert_eq!(
        (code, body["error"].as_str()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some("payments are not enabled on this site")
        )
    );
    let (code, _) = deliver(
        &platform,
        &paid("evt_x", "cs_x", "pi_x", "u", "pass-38h"),
        WEBHOOK_SECRET,
        chrono::Utc::now().timestamp(),
    )
    .await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    let (code, status) = platform.get("/api/v1/access/status", &token).await;
    assert_eq!(
        (code, status["full_access"].as_bool()),
        (StatusCode::OK, Some(false))
    );
    // The pricing page says so; the success page asks a signed-out visitor to sign in.
    let get = |page: &'static str| platform.client.get(format!("{}{page}", platform.base)).send();
    let pricing = get("/pricing").await.unwrap();
    assert_eq!(pricing.status(), StatusCode::OK);
    let html = pricing.text().await.unwrap();
    assert!(html.contains("Payments are not enabled on this site"), "{html}");
    assert!(html.contains("$19.99") && html.contains("2 Weeks Pass"), "{html}");
    let success = get("/payment/success?session_id=cs_x").await.unwrap();
    assert_eq!(success.status(), StatusCode::UNAUTHORIZED);
    platform.shut_down().await;
}

#[tokio::test]
async fn checkout_sessions_come_from_stripe_and_signed_webhooks_make_passes_once() {
    let stripe = StripeMock::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = common::settings(dir.path(), "unix:///var/run/docker.sock");
    with_payments(&mut settings, &stripe);
    let platform = Platform::start(settings).await;
    let token = platform.learner("ada@example.com").await;
    let ada = user_id(&platform, &token).await;

    let (_, plans) = platform.get("/api/v1/billing/plans", "").await;
    assert_eq!(plans["billing_enabled"], true);
    let checkout = |plan: &str| {
        platform.call(
            reqwest::Method::POST,
            "/api/v1/billing/checkout",
            &token,
            Some(json!({ "plan": plan })),
        )
    };
    let (code, started) = checkout("pass-38h").await;
    assert_eq!(code, StatusCode::OK, "{started}");
    let session = started["id"].as_str().unwrap().to_owned();
    assert!(session.starts_with("cs_test_"), "{started}");
    assert!(
        started["url"]
            .as_str()
            .unwrap()
            .starts_with("https://checkout.stripe.com/"),
        "{started}"
    );
    assert_eq!(checkout("no-such-plan").await.0, StatusCode::NOT_FOUND);
    let (code, body) = checkout("free-trial").await;
    assert_eq!(
        (code, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("the Free Trial cannot be bought"))
    );
    assert_eq!(
        platform
            .call(
                reqwest::Method::POST,
                "/api/v1/billing/checkout",
                "",
                Some(json!({"plan": "pass-38h"}))
            )
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );

    let now = chrono::Utc::now().timestamp();
    let event = paid("evt_paid_1", &session, "pi_1", &ada, "pass-38h");
    // Refused: another secret's signature, a stale timestamp, no signature.
    let (code, body) = deliver(&platform, &event, "whsec_someone_elses_secret", now).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("no signature matches"),
        "{body}"
    );
    let (code, body) = deliver(&platform, &event, WEBHOOK_SECRET, now - 301).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("more than 5 minutes"),
        "{body}"
    );
    let unsigned = platform
        .client
        .post(format!("{}/api/v1/billing/webhook", platform.base))
        .body(event.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), StatusCode::BAD_REQUEST);
    let (_, status) = platform.get("/api/v1/access/status", &token).await;
    assert_eq!(status["unused"], json!([]), "refused deliveries made nothing");

    // Accepted once; the same event again changes nothing.
    let (code, receipt) = deliver(&platform, &event, WEBHOOK_SECRET, now).await;
    assert_eq!(
        (code, receipt),
        (StatusCode::OK, json!({"received": true, "duplicate": false}))
    );
    let (code, receipt) = deliver(&platform, &event, WEBHOOK_SECRET, now).await;
    assert_eq!(
        (code, receipt),
        (StatusCode::OK, json!({"received": true, "duplicate": true}))
    );
    let (_, passes) = platform.get("/api/v1/access/passes", &token).await;
    assert_eq!(passes.as_array().unwrap().len(), 1, "{passes}");
    let pass = &passes[0];
    assert_eq!(
        (
            pass["name"].as_str(),
            pass["status"].as_str(),
            pass["checkout_session"].as_str()
        ),
        (Some("38 Hours Pass"), Some("unused"), Some(session.as_str()))
    );
    // Unknown events and unpaid sessions are acknowledged and do nothing.
    let unknown = json!({"id": "evt_other", "type": "customer.created", "data": {"object": {"id": "cus_1"}}});
    assert_eq!(
        deliver(&platform, &unknown, WEBHOOK_SECRET, now).await.0,
        StatusCode::OK
    );
    let mut unpaid = paid("evt_unpaid", "cs_unpaid", "pi_unpaid", &ada, "pass-1w");
    unpaid["data"]["object"]["payment_status"] = json!("unpaid");
    assert_eq!(
        deliver(&platform, &unpaid, WEBHOOK_SECRET, now).await.0,
        StatusCode::OK
    );

    // A second purchase, then a refund of the first: the unused one goes.
    let second = paid("evt_paid_2", "cs_second", "pi_2", &ada, "pass-1w");
    assert_eq!(
        deliver(&platform, &second, WEBHOOK_SECRET, now).await.0,
        StatusCode::OK
    );
    let (_, status) = platform.get("/api/v1/access/status", &token).await;
    assert_eq!(
        (
            status["full_access"].as_bool(),
            status["unused"].as_array().unwrap().len()
        ),
        (Some(false), 2)
    );
    assert_eq!(
        deliver(&platform, &refunded("evt_refund_1", "pi_1"), WEBHOOK_SECRET, now)
            .await
            .0,
        StatusCode::OK
    );
    let (_, passes) = platform.get("/api/v1/access/passes", &token).await;
    let status_of = |checkout: &str| {
        passes
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["checkout_session"] == checkout)
            .map(|p| p["status"].as_str().unwrap().to_owned())
            .unwrap()
    };
    assert_eq!(status_of(&session), "revoked");
    assert_eq!(status_of("cs_second"), "unused");

    // Activation starts the clock; one pass at a time; a refund does not take a pass in use.
    let week = passes
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["checkout_session"] == "cs_second")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoked = passes
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["checkout_session"] == session.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        platform
            .post(&format!("/api/v1/access/activate/{revoked}"), &token)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (code, active) = platform
        .post(&format!("/api/v1/access/activate/{week}"), &token)
        .await;
    assert_eq!(
        (code, active["status"].as_str()),
        (StatusCode::OK, Some("active")),
        "{active}"
    );
    let activated = chrono::DateTime::parse_from_rfc3339(active["activated_at"].as_str().unwrap()).unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(active["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!((expires - activated).num_hours(), 168);
    let (_, status) = platform.get("/api/v1/access/status", &token).await;
    assert_eq!(status["full_access"], true);
    assert_eq!(status["active"]["id"], week.as_str());
    let third = paid("evt_paid_3", "cs_third", "pi_3", &ada, "pass-2w");
    assert_eq!(
        deliver(&platform, &third, WEBHOOK_SECRET, now).await.0,
        StatusCode::OK
    );
    let (_, status) = platform.get("/api/v1/access/status", &token).await;
    let waiting = status["unused"][0]["id"].as_str().unwrap().to_owned();
    let (code, body) = platform
        .post(&format!("/api/v1/access/activate/{waiting}"), &token)
        .await;
    assert_eq!(code, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("another pass is active until"),
        "{body}"
    );
    assert_eq!(
        deliver(&platform, &refunded("evt_refund_2", "pi_2"), WEBHOOK_SECRET, now)
            .await
            .0,
        StatusCode::OK
    );
    let (_, status) = platform.get("/api/v1/access/status", &token).await;
    assert_eq!(
        status["active"]["id"],
        week.as_str(),
        "a pass in use stays: {status}"
    );
    // A dispute takes the unused one.
    let dispute = json!({"id": "evt_dispute", "type": "charge.dispute.created",
        "data": {"object": {"id": "dp_1", "object": "dispute", "payment_intent": "pi_3"}}});
    assert_eq!(
        deliver(&platform, &dispute, WEBHOOK_SECRET, now).await.0,
        StatusCode::OK
    );
    let (_, status) = platform.get("/api/v1/access/status", &token).await;
    assert_eq!(status["unused"], json!([]));

    // Someone else cannot activate Ada's passes.
    let bob = platform.learner("bob@example.com").await;
    assert_eq!(
        platform
            .post(&format!("/api/v1/access/activate/{waiting}"), &bob)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    platform.shut_down().await;
}

/// A full exam needs an active pass (an admin's grant here), runs to its end when the pass
/// expires meanwhile, and no new one starts after; admins revoke.
#[tokio::test]
async fn a_full_exam_needs_an_active_pass_and_outlives_its_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = common::settings(dir.path(), "unix:///var/run/docker.sock");
    // The exam's three hosts take three ports of each kind.
    settings.clusters.ports = common::port_block(53600, 3);
    let platform = Platform::start(settings.clone()).await;
    let token = platform.learner("ada@example.com").await;
    let admin = platform.learner("admin@example.com").await;
    let full = "/api/exams/ckad-mock-full/start";
    let (code, body) = platform.post(full, &token).await;
    assert_eq!(
        (code, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("this exam needs an access pass"))
    );

    let grant = |email: &'static str, who: String| {
        let platform = &platform;
        async move {
            let body = json!({"email": email, "plan": "pass-38h"});
            platform
                .call(reqwest::Method::POST, "/api/v1/access/grant", &who, Some(body))
                .await
        }
    };
    assert_eq!(
        grant("ada@example.com", token.clone()).await.0,
        StatusCode::FORBIDDEN,
        "learners cannot grant"
    );
    assert_eq!(
        grant("nobody@example.com", admin.clone()).await.0,
        StatusCode::NOT_FOUND
    );
    let (code, revoked) = grant("ada@example.com", admin.clone()).await;
    assert_eq!(code, StatusCode::CREATED, "{revoked}");
    let (code, body) = platform
        .post(
            &format!("/api/v1/access/revoke/{}", revoked["id"].as_str().unwrap()),
            &admin,
        )
        .await;
    assert_eq!((code, body["status"].as_str()), (StatusCode::OK, Some("revoked")));
    let (_, granted) = grant("ada@example.com", admin.clone()).await;
    let pass = granted["id"].as_str().unwrap();
    assert_eq!(
        platform.post(full, &token).await.0,
        StatusCode::FORBIDDEN,
        "an unused pass opens nothing"
    );
    assert_eq!(
        platform
            .post(&format!("/api/v1/access/activate/{pass}"), &token)
            .await
            .0,
        StatusCode::OK
    );
    let (_, exams) = platform.get("/api/exams", &token).await;
    let listed = exams
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == "ckad-mock-full")
        .unwrap();
    assert_eq!(listed["allowed"], true);

    let (code, session) = platform.post(full, &token).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{session}");
    let session = platform.wait_started(&token).await;
    assert_eq!(session["exam"], "ckad-mock-full");

    // The pass runs out mid-exam (its end moved to the past, as time would): the exam goes on.
    let pool = sqlx::SqlitePool::connect(&settings.database_url).await.unwrap();
    sqlx::query("UPDATE access_passes SET expires_at = ? WHERE id = ?")
        .bind(chrono::Utc::now() - chrono::Duration::seconds(1))
        .bind(pass)
        .execute(&pool)
        .await
        .unwrap();
    let (_, status) = platform.get("/api/v1/access/status", &token).await;
    assert_eq!(status["full_access"], false, "{status}");
    let (code, now) = platform.get("/api/session/status", &token).await;
    assert_eq!((code, now["status"].as_str()), (StatusCode::OK, Some("started")));
    let (code, task) = platform.get("/api/tasks/rbac-deployer", &token).await;
    assert_eq!(code, StatusCode::OK, "{task}");
    assert_eq!(
        platform.post("/api/terminal/ticket", &token).await.0,
        StatusCode::OK
    );
    assert_eq!(
        platform.post("/api/session/stop", &token).await.0,
        StatusCode::NO_CONTENT
    );
    let id = session["id"].as_str().unwrap();
    assert_eq!(
        platform.get(&format!("/api/exams/results/{id}"), &token).await.0,
        StatusCode::OK,
        "graded at its end"
    );
    // No new one.
    assert_eq!(platform.post(full, &token).await.0, StatusCode::FORBIDDEN);
    platform.shut_down().await;
}

/// A Stripe setting that is half there or mistyped stops the real binary with its name.
#[test]
fn a_malformed_stripe_setting_stops_the_start_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    for (key, hook, named) in [
        ("pk_test_publishable123", WEBHOOK_SECRET, "STRIPE_SECRET_KEY"),
        ("sk_test_billingtests", "", "STRIPE_WEBHOOK_SECRET"),
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_ckad-platform"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{}", common::free_port()))
            .env(
                "DATABASE_URL",
                format!("sqlite://{}/ckad.db", dir.path().display()),
            )
            .env("STRIPE_SECRET_KEY", key)
            .env("STRIPE_WEBHOOK_SECRET", hook)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{stderr}");
        assert!(stderr.contains(named) && !stderr.contains(key), "{stderr}");
    }
}
