//! The security envelope through the real app: rate limits that a forged X-Forwarded-For cannot
//! dodge, the origin check, CORS for the site alone, HSTS behind TLS, and `/readyz` proving the
//! operator's no-egress rules with a probe from a session network.

use crate::common;

use common::outside::{iptables, pool_rules, Outside};

use ckad_platform::configuration::{FirewallMode, Settings};
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

/// A platform whose host rules are the operator's (`HOST_FIREWALL=external`), for sessions cut
/// from `pool`, with `outside`'s listener as the probe's outside target.
struct ExternalRules {
    base: String,
    instance: String,
    _dir: tempfile::TempDir,
}

impl ExternalRules {
    async fn start(pool: &str, outside: &Outside) -> Self {
        let (base, dir) = spawn(|s| {
            s.terminals.firewall = FirewallMode::External;
            s.clusters.subnet_pool = pool.parse().unwrap();
            s.terminals.egress_probe_target = Some(outside.target().parse().unwrap());
        })
        .await;
        Self {
            base,
            instance: common::instance(dir.path()),
            _dir: dir,
        }
    }

    async fn readyz(&self) -> (StatusCode, serde_json::Value) {
        let answer = reqwest::get(format!("{}/readyz", self.base)).await.unwrap();
        (answer.status(), answer.json().await.unwrap())
    }

    /// `/readyz` once the first probe has given its verdict, and the firewall check in it.
    async fn verdict(&self) -> (StatusCode, serde_json::Value, serde_json::Value) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(90);
        loop {
            let (status, readiness) = self.readyz().await;
            let firewall = readiness["checks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["name"] == "firewall")
                .unwrap()
                .clone();
            if !firewall["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("not proven yet"))
            {
                return (status, readiness, firewall);
            }
            assert!(tokio::time::Instant::now() < deadline, "no verdict: {readiness}");
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }

    /// What probes left on the engine: containers and networks of this platform.
    async fn leftovers(&self) -> (Vec<String>, Vec<String>) {
        (
            common::containers_labelled(&format!("ckad.instance={}", self.instance)).await,
            common::clusters_of_instance(&self.instance).await,
        )
    }

    /// How many probe containers the engine has made for this platform since `since` (seconds).
    fn probes_since(&self, since: i64) -> usize {
        let until = (chrono::Utc::now().timestamp() + 1).to_string();
        let events = std::process::Command::new("docker")
            .args(["events", "--since", &since.to_string(), "--until", &until])
            .args(["--filter", "type=container", "--filter", "event=create"])
            .args(["--filter", "label=ckad.platform=egress-probe"])
            .args(["--filter", &format!("label=ckad.instance={}", self.instance)])
            .args(["--format", "{{.Actor.Attributes.name}}"])
            .output()
            .unwrap();
        assert!(events.status.success(), "{events:?}");
        String::from_utf8_lossy(&events.stdout).lines().count()
    }
}

#[tokio::test]
async fn with_the_operators_rules_in_force_readyz_proves_them_with_one_probe() {
    // A pool of this test's own, so that the rules it makes touch nothing else on the host.
    let pool = "10.218.0.0/16";
    for rule in pool_rules(pool) {
        while iptables("-D", &rule) {}
    }
    let outside = Outside::new();
    // What deploy/host-firewall.sh puts in place for the operator.
    ckad_platform::terminals::HostFirewall::new(pool.parse().unwrap())
        .ensure()
        .await
        .unwrap();
    let since = chrono::Utc::now().timestamp() - 1;

    let platform = ExternalRules::start(pool, &outside).await;
    let (status, readiness, firewall) = platform.verdict().await;
    assert_eq!(status, StatusCode::OK, "{readiness}");
    assert_eq!(readiness["ready"], true, "{readiness}");
    assert_eq!(firewall["ok"], true, "{readiness}");
    let proof = firewall["detail"].as_str().unwrap();
    assert!(
        proof.contains("no answer from the host at 10.218.")
            && proof.contains(&format!("EGRESS_PROBE_TARGET at {}", outside.target())),
        "{proof}"
    );
    // The outside still answers the host: the silence was the rule's.
    let target: std::net::SocketAddr = outside.target().parse().unwrap();
    assert!(std::net::TcpStream::connect_timeout(&target, std::time::Duration::from_secs(2)).is_ok());
    assert_eq!(platform.leftovers().await, (vec![], vec![]));

    // Asked often, it answers from the verdict: still the one probe made at start-up.
    for _ in 0..20 {
        assert_eq!(platform.readyz().await.0, StatusCode::OK);
    }
    assert_eq!(platform.probes_since(since), 1);
    assert_eq!(platform.leftovers().await, (vec![], vec![]));
    for rule in pool_rules(pool) {
        assert!(iptables("-D", &rule), "the test's rule was there to take out");
    }
}

#[tokio::test]
async fn without_the_operators_rules_readyz_is_not_ready_and_names_what_leaked() {
    // A pool of this test's own, with no rule for it: what an operator who forgot them has.
    let pool = "10.219.0.0/16";
    for rule in pool_rules(pool) {
        while iptables("-D", &rule) {}
    }
    let outside = Outside::new();

    let platform = ExternalRules::start(pool, &outside).await;
    let (status, readiness, firewall) = platform.verdict().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{readiness}");
    assert_eq!(readiness["ready"], false, "{readiness}");
    assert_eq!(firewall["ok"], false, "{readiness}");
    let reason = firewall["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("the no-egress rule is not in force: from a session network, a probe reached "),
        "{reason}"
    );
    // The outside's listener accepted the connection; the host answered (nothing listens on the
    // gateway at the platform's port here, so with a refusal).
    assert!(
        reason.contains(&format!(
            "EGRESS_PROBE_TARGET at {} (connected)",
            outside.target()
        )),
        "{reason}"
    );
    assert!(reason.contains("the host at 10.219."), "{reason}");
    // Every other check is fine: the leak alone makes it not ready.
    for check in readiness["checks"].as_array().unwrap() {
        assert_eq!(check["ok"], check["name"] != "firewall", "{readiness}");
    }
    assert_eq!(platform.leftovers().await, (vec![], vec![]));
}

#[tokio::test]
async fn an_outside_target_the_host_cannot_reach_proves_nothing_and_readyz_says_so() {
    let pool = "10.220.0.0/16";
    let outside = Outside::new();
    outside.go_silent();
    let since = chrono::Utc::now().timestamp() - 1;

    let platform = ExternalRules::start(pool, &outside).await;
    let (status, readiness, firewall) = platform.verdict().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{readiness}");
    assert_eq!(firewall["ok"], false, "{readiness}");
    assert_eq!(
        firewall["reason"],
        format!(
            "EGRESS_PROBE_TARGET {} does not answer the host itself (silent for 5s), so it cannot prove the rule",
            outside.target()
        ),
        "{readiness}"
    );
    // Checked from the host first: no container was made for a proof that could not hold.
    assert_eq!(platform.probes_since(since), 0);
}
