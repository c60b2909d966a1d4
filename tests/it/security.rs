//! The security envelope through the real app: rate limits that a forged X-Forwarded-For cannot
//! dodge, the origin check, CORS for the site alone, and HSTS behind TLS.

use crate::common;

use ckad_platform::configuration::Settings;
use reqwest::{header, StatusCode};
use serde_json::json;

const SITE: &str = "http://127.0.0.1:3000";

async fn spawn(adjust: impl FnOnce(&mut Settings)) -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = common::settings(dir.path(), "unix:///var/run/docker.sock");
    adjust(&mut settings);
    (common::serve(settings).await, dir)
}

fn random_address(n: u32) -> String {
    format!("198.51.{}.{}", (n * 7919) % 250, (n * 104729) % 250 + 1)
}

#[tokio::test]
async fn a_hundred_requests_with_random_forwarded_for_are_still_limited() {
    let (base, _dir) = spawn(|s| s.http.auth_per_minute = 10).await;
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for n in 0..100 {
        let response = client
            .post(format!("{base}/api/auth/email/otp"))
            .header("x-forwarded-for", random_address(n))
            .json(&json!({ "email": format!("user{n}@example.com") }))
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            retry_after = response.headers().get(header::RETRY_AFTER).cloned();
        }
        statuses.push(response.status());
    }
    // Ten at once, then one every 6 s: a very slow machine may earn one more during the run.
    let admitted = statuses.iter().filter(|s| **s == StatusCode::ACCEPTED).count();
    assert!((10..=11).contains(&admitted), "{admitted} admitted: {statuses:?}");
    let limited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(admitted + limited, 100, "{statuses:?}");
    let seconds: u64 = retry_after.unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=6).contains(&seconds), "Retry-After: {seconds}");
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_budget() {
    let (base, _dir) = spawn(|s| {
        s.http.auth_per_minute = 2;
        s.http.trusted_proxies = 1;
    })
    .await;
    let client = reqwest::Client::new();
    let otp = |address: &'static str| {
        client
            .post(format!("{base}/api/auth/email/otp"))
            .header("x-forwarded-for", format!("6.6.6.6, {address}"))
            .json(&json!({ "email": "ada@example.com" }))
            .send()
    };
    for _ in 0..2 {
        assert_eq!(otp("203.0.113.1").await.unwrap().status(), StatusCode::ACCEPTED);
    }
    assert_eq!(
        otp("203.0.113.1").await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // The spoofable left-hand entry changed nothing; the proxy-given one did.
    assert_eq!(otp("203.0.113.2").await.unwrap().status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn the_whole_api_has_a_general_limit() {
    let (base, _dir) = spawn(|s| s.http.api_per_minute = 5).await;
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(
            client
                .get(format!("{base}/api/auth/me"))
                .send()
                .await
                .unwrap()
                .status(),
        );
    }
    assert_eq!(statuses[..5], [StatusCode::UNAUTHORIZED; 5]);
    assert_eq!(statuses[5..], [StatusCode::TOO_MANY_REQUESTS; 2]);
    // Pages and health checks are not API calls.
    assert_eq!(
        client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn state_changing_requests_from_another_origin_are_refused() {
    let (base, _dir) = spawn(|_| {}).await;
    let client = reqwest::Client::new();
    let otp = |origin: Option<&'static str>, cookie: Option<&'static str>| {
        let mut request = client
            .post(format!("{base}/api/auth/email/otp"))
            .json(&json!({ "email": "ada@example.com" }));
        if let Some(origin) = origin {
            request = request.header(header::ORIGIN, origin);
        }
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        request.send()
    };
    assert_eq!(
        otp(Some("https://evil.example"), None).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        otp(Some("null"), None).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        otp(None, Some("ckad_access=x")).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        otp(Some(SITE), Some("ckad_access=x")).await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        otp(None, None).await.unwrap().status(),
        StatusCode::ACCEPTED,
        "an API client without cookies"
    );
}

#[tokio::test]
async fn cors_answers_only_the_sites_own_origin() {
    let (base, _dir) = spawn(|_| {}).await;
    let client = reqwest::Client::new();
    let preflight = |origin: &'static str| {
        client
            .request(reqwest::Method::OPTIONS, format!("{base}/api/auth/login"))
            .header(header::ORIGIN, origin)
            .header("access-control-request-method", "POST")
            .send()
    };
    let ours = preflight(SITE).await.unwrap();
    assert_eq!(ours.headers()["access-control-allow-origin"], SITE);
    assert_eq!(ours.headers()["access-control-allow-credentials"], "true");
    let theirs = preflight("https://evil.example").await.unwrap();
    assert!(theirs.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn hsts_is_sent_only_when_the_site_is_served_over_tls() {
    let (plain, _a) = spawn(|_| {}).await;
    let response = reqwest::get(format!("{plain}/healthz")).await.unwrap();
    assert!(response
        .headers()
        .get(header::STRICT_TRANSPORT_SECURITY)
        .is_none());

    let (behind_tls, _b) = spawn(|s| s.http.public_origin = "https://ckad.example.com".into()).await;
    let response = reqwest::get(format!("{behind_tls}/healthz")).await.unwrap();
    assert_eq!(
        response.headers()[header::STRICT_TRANSPORT_SECURITY],
        "max-age=63072000; includeSubDomains"
    );
}

#[tokio::test]
async fn asking_who_is_signed_in_never_spends_the_sign_in_budget() {
    use leptos::server_fn::ServerFn as _;
    let (base, _dir) = spawn(|s| s.http.auth_per_minute = 2).await;
    let client = reqwest::Client::new();
    // Every page asks; a visitor reading five pages must still be able to sign in after.
    for _ in 0..5 {
        let response = client
            .post(format!("{base}{}", app::account::CurrentUser::PATH))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    for n in 0..2 {
        let response = client
            .post(format!("{base}/api/auth/email/otp"))
            .json(&json!({ "email": format!("user{n}@example.com") }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
    }
}

#[tokio::test]
async fn the_addresses_of_one_ipv6_64_share_a_budget_and_a_mapped_ipv4_address_is_itself() {
    let (base, _dir) = spawn(|s| {
        s.http.auth_per_minute = 2;
        s.http.trusted_proxies = 1;
    })
    .await;
    let client = reqwest::Client::new();
    let otp = |from: &'static str, n: u32| {
        client
            .post(format!("{base}/api/auth/email/otp"))
            .header("x-forwarded-for", from)
            .json(&json!({ "email": format!("user{n}@example.com") }))
            .send()
    };
    let mut statuses = Vec::new();
    for (n, from) in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3"]
        .into_iter()
        .enumerate()
    {
        statuses.push(otp(from, n as u32).await.unwrap().status());
    }
    assert_eq!(
        statuses,
        [
            StatusCode::ACCEPTED,
            StatusCode::ACCEPTED,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    assert_eq!(
        otp("2001:db8:1:3::1", 3).await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    let mut statuses = Vec::new();
    for (n, from) in ["203.0.113.7", "::ffff:203.0.113.7", "203.0.113.7"]
        .into_iter()
        .enumerate()
    {
        statuses.push(otp(from, 10 + n as u32).await.unwrap().status());
    }
    assert_eq!(
        statuses,
        [
            StatusCode::ACCEPTED,
            StatusCode::ACCEPTED,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
}

#[tokio::test]
async fn signed_in_callers_have_budgets_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = common::settings(dir.path(), "unix:///var/run/docker.sock");
    settings.http.api_per_minute = 4;
    let platform = common::Platform::start(settings).await;
    // Signing up two learners takes four API calls from this address.
    let (ada, bob) = (
        platform.learner("ada@example.com").await,
        platform.learner("bob@example.com").await,
    );
    let history = |token| platform.get("/api/session/history", token);
    for _ in 0..4 {
        assert_eq!(history(&ada).await.0, StatusCode::OK);
    }
    assert_eq!(history(&ada).await.0, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        history(&bob).await.0,
        StatusCode::OK,
        "another account at the same address"
    );
}

#[tokio::test]
async fn a_learner_checks_a_task_at_most_once_every_few_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let platform = common::Platform::start(common::settings(dir.path(), "unix:///var/run/docker.sock")).await;
    let token = platform.learner("ada@example.com").await;
    platform.start_session(&token).await;
    let (_, tasks) = platform.get("/api/tasks", &token).await;
    let (first, second) = (tasks[0]["id"].as_str().unwrap(), tasks[1]["id"].as_str().unwrap());
    let (platform, token) = (&platform, &token);
    let check = |task: &str| {
        let path = format!("/api/tasks/{task}/check");
        async move { platform.post(&path, token).await }
    };
    assert_eq!(check(first).await.0, StatusCode::OK);
    let (status, body) = check(first).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let sentence = body["error"].as_str().unwrap();
    assert!(
        sentence.starts_with("you checked this task a moment ago: check it again in "),
        "{sentence}"
    );
    assert_eq!(check(second).await.0, StatusCode::OK, "another task");
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    assert_eq!(check(first).await.0, StatusCode::OK, "a few seconds later");
    assert_eq!(
        platform.post("/api/session/stop", token).await.0,
        StatusCode::NO_CONTENT
    );
}

/// Tokens and learners' data must not be kept by a browser's or a proxy's cache: every API answer
/// says `no-store`, refusals and limits included.
#[tokio::test]
async fn every_api_answer_says_no_store() {
    let (base, _dir) = spawn(|s| s.http.api_per_minute = 3).await;
    let client = reqwest::Client::new();
    let mut answers = Vec::new();
    for path in ["/api/auth/me", "/api/tasks", "/api/openapi.json", "/api/auth/me"] {
        answers.push(client.get(format!("{base}{path}")).send().await.unwrap());
    }
    answers.push(
        client
            .post(format!("{base}/api/auth/logout"))
            .header("origin", "https://evil.example")
            .send()
            .await
            .unwrap(),
    );
    let statuses: Vec<StatusCode> = answers.iter().map(|a| a.status()).collect();
    assert!(statuses.contains(&StatusCode::OK), "{statuses:?}");
    assert!(statuses.contains(&StatusCode::UNAUTHORIZED), "{statuses:?}");
    assert!(statuses.contains(&StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
    for answer in &answers {
        assert_eq!(
            answer
                .headers()
                .get(header::CACHE_CONTROL)
                .map(|v| v.to_str().unwrap()),
            Some("no-store"),
            "{} {}",
            answer.url(),
            answer.status()
        );
    }
}
