//! Sign-in through the real app: codes mailed by a real SMTP server process (aiosmtpd), password
//! accounts, token refresh and logout, and the attacks each must withstand.

use crate::common;

use common::SmtpSink;
use reqwest::StatusCode;
use serde_json::{json, Value};

struct App {
    base: String,
    client: reqwest::Client,
    smtp: SmtpSink,
    dir: tempfile::TempDir,
}

impl App {
    async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    async fn start_with(adjust: impl FnOnce(&mut ckad_platform::configuration::Settings)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let smtp = SmtpSink::start();
        let mut settings = common::settings(dir.path(), "unix:///var/run/docker.sock");
        settings.auth.email = smtp.provider();
        adjust(&mut settings);
        let base = common::serve(settings).await;
        Self {
            base,
            client: reqwest::Client::new(),
            smtp,
            dir,
        }
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Moves time for the stored records (the database is the real one the app uses).
    async fn sql(&self, statement: &str) {
        let url = format!("sqlite://{}/ckad.db", self.dir.path().display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query(statement).execute(&pool).await.unwrap();
    }

    /// One number from the app's database.
    async fn count(&self, query: &str) -> i64 {
        let url = format!("sqlite://{}/ckad.db", self.dir.path().display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query_scalar(query).fetch_one(&pool).await.unwrap()
    }

    /// A browser's request: the refresh cookie alone, from the site's own origin.
    async fn post_with_cookie(&self, path: &str, refresh: &str) -> StatusCode {
        self.client
            .post(format!("{}{path}", self.base))
            .header("origin", "http://127.0.0.1:3000")
            .header("cookie", format!("ckad_refresh={refresh}"))
            .send()
            .await
            .unwrap()
            .status()
    }

    /// Codes mailed so far become older than the gap between two mails to one address.
    async fn a_minute_passes(&self) {
        let earlier = (chrono::Utc::now() - chrono::Duration::seconds(61)).to_rfc3339();
        self.sql(&format!(
            "UPDATE one_time_codes SET created_at = '{earlier}' WHERE created_at > '{earlier}'"
        ))
        .await;
    }

    async fn guess(&self, email: &str, code: &str) -> (StatusCode, Value) {
        self.post("/api/auth/email/verify", json!({ "email": email, "code": code }))
            .await
    }

    async fn me(&self, token: &str) -> StatusCode {
        self.client
            .get(format!("{}/api/auth/me", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
    }

    /// Asks for a code and returns the one the SMTP server received.
    async fn code(&self, email: &str) -> String {
        self.a_minute_passes().await;
        assert_eq!(
            self.post("/api/auth/email/otp", json!({ "email": email }))
                .await
                .0,
            StatusCode::ACCEPTED
        );
        self.smtp.code_for(email)
    }

    async fn sign_in(&self, email: &str) -> Value {
        let code = self.code(email).await;
        let (status, body) = self
            .post("/api/auth/email/verify", json!({ "email": email, "code": code }))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }
}

#[tokio::test]
async fn a_mailed_code_signs_in_and_creates_the_account() {
    let app = App::start().await;
    let body = app.sign_in("Ada@Example.com").await;
    assert_eq!(body["user"]["email"], "ada@example.com");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    let mail = &app.smtp.messages()[0];
    assert_eq!(mail["to"], json!(["ada@example.com"]));
    assert!(mail["data"].as_str().unwrap().contains("Subject: "), "{mail}");

    let me = app
        .client
        .get(format!("{}/api/auth/me", app.base))
        .bearer_auth(body["access_token"].as_str().unwrap());
    let me: Value = me.send().await.unwrap().json().await.unwrap();
    assert_eq!(me["email"], "ada@example.com");
    // Signing in again finds the same account.
    assert_eq!(
        app.sign_in("ada@example.com").await["user"]["id"],
        body["user"]["id"]
    );
}

#[tokio::test]
async fn the_verify_response_sets_http_only_secure_lax_cookies() {
    let app = App::start().await;
    let code = app.code("ada@example.com").await;
    let response = app
        .client
        .post(format!("{}/api/auth/email/verify", app.base))
        .json(&json!({ "email": "ada@example.com", "code": code }))
        .send()
        .await
        .unwrap();
    let cookies: Vec<&str> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(cookies.len(), 2);
    // The attributes, in whatever order the cookie library writes them.
    let attributes = |cookie: &str| {
        let mut parts: Vec<String> = cookie.split("; ").skip(1).map(str::to_owned).collect();
        parts.sort();
        parts
    };
    assert!(cookies[0].starts_with("ckad_access="), "{cookies:?}");
    assert_eq!(
        attributes(cookies[0]),
        ["HttpOnly", "Max-Age=900", "Path=/", "SameSite=Lax", "Secure"]
    );
    assert!(cookies[1].starts_with("ckad_refresh="), "{cookies:?}");
    assert_eq!(
        attributes(cookies[1]),
        ["HttpOnly", "Max-Age=604800", "Path=/", "SameSite=Lax", "Secure"]
    );
}

#[tokio::test]
async fn five_wrong_guesses_kill_the_code() {
    let app = App::start().await;
    let code = app.code("ada@example.com").await;
    let wrong = if code == "000000" { "000001" } else { "000000" };
    for _ in 0..5 {
        let (status, body) = app
            .post(
                "/api/auth/email/verify",
                json!({ "email": "ada@example.com", "code": wrong }),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            body["error"],
            "that code is wrong or has expired: ask for a new one"
        );
    }
    let (status, _) = app
        .post(
            "/api/auth/email/verify",
            json!({ "email": "ada@example.com", "code": code }),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "the right code after five wrong ones"
    );
}

/// A code that is not `code`.
fn wrong(code: &str) -> &'static str {
    if code == "000000" {
        "000001"
    } else {
        "000000"
    }
}

#[tokio::test]
async fn twenty_parallel_wrong_guesses_each_count() {
    let app = App::start().await;
    let code = app.code("ada@example.com").await;
    let guesses = (0..20).map(|_| app.guess("ada@example.com", wrong(&code)));
    let mut answers: Vec<(StatusCode, Value)> = futures_util::future::join_all(guesses).await;
    answers.sort_by_key(|(status, _)| *status);
    let wrong_code = (
        StatusCode::UNAUTHORIZED,
        json!({ "error": "that code is wrong or has expired: ask for a new one" }),
    );
    let too_many = (
        StatusCode::TOO_MANY_REQUESTS,
        json!({ "error": "too many tries for this email: ask for a new code later" }),
    );
    assert_eq!(answers[..5], vec![wrong_code; 5][..], "five tries were compared");
    assert_eq!(answers[5..], vec![too_many.clone(); 15][..], "the rest were not");
    assert_eq!(app.guess("ada@example.com", &code).await, too_many);
}

#[tokio::test]
async fn an_email_has_ten_tries_an_hour_across_its_codes_and_five_codes() {
    let app = App::start().await;
    for _ in 0..2 {
        let code = app.code("ada@example.com").await;
        for _ in 0..5 {
            app.guess("ada@example.com", wrong(&code)).await;
        }
    }
    // A third code is mailed, but the hour's tries are spent: even the right code is refused.
    let code = app.code("ada@example.com").await;
    assert_eq!(
        app.guess("ada@example.com", &code).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    for _ in 0..2 {
        app.code("ada@example.com").await;
    }
    assert_eq!(app.smtp.codes_for("ada@example.com").len(), 5);
    app.a_minute_passes().await;
    let (status, body) = app
        .post("/api/auth/email/otp", json!({ "email": "ada@example.com" }))
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::ACCEPTED, json!({ "status": "sent" }))
    );
    assert_eq!(
        app.smtp.codes_for("ada@example.com").len(),
        5,
        "no sixth code within the hour"
    );
}

#[tokio::test]
async fn a_second_request_within_a_minute_mails_nothing_and_the_live_code_works() {
    let app = App::start().await;
    let code = app.code("ada@example.com").await;
    let (status, body) = app
        .post("/api/auth/email/otp", json!({ "email": "ada@example.com" }))
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::ACCEPTED, json!({ "status": "sent" }))
    );
    assert_eq!(app.smtp.codes_for("ada@example.com"), vec![code.clone()]);
    assert_eq!(app.guess("ada@example.com", &code).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_code_works_once() {
    let app = App::start().await;
    let code = app.code("ada@example.com").await;
    let body = json!({ "email": "ada@example.com", "code": code });
    assert_eq!(
        app.post("/api/auth/email/verify", body.clone()).await.0,
        StatusCode::OK
    );
    assert_eq!(
        app.post("/api/auth/email/verify", body).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let app = App::start().await;
    let code = app.code("ada@example.com").await;
    // Ten minutes pass.
    app.sql("UPDATE one_time_codes SET expires_at = '2000-01-01T00:00:00Z'")
        .await;
    let (status, _) = app
        .post(
            "/api/auth/email/verify",
            json!({ "email": "ada@example.com", "code": code }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_code_is_bound_to_its_email() {
    let app = App::start().await;
    let code = app.code("ada@example.com").await;
    app.code("bob@example.com").await;
    let (status, _) = app
        .post(
            "/api/auth/email/verify",
            json!({ "email": "bob@example.com", "code": code }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn known_and_unknown_emails_get_the_same_answer() {
    let app = App::start().await;
    app.sign_in("known@example.com").await;
    let known = app
        .post("/api/auth/email/otp", json!({ "email": "known@example.com" }))
        .await;
    let unknown = app
        .post("/api/auth/email/otp", json!({ "email": "nobody@example.com" }))
        .await;
    assert_eq!(known, unknown);
    assert_eq!(known, (StatusCode::ACCEPTED, json!({ "status": "sent" })));
}

#[tokio::test]
async fn a_registration_signs_nobody_in_until_the_mailed_code_proves_the_email() {
    let app = App::start().await;
    let (status, body) = app
        .post(
            "/api/auth/register",
            json!({ "email": "ada@example.com", "password": "short", "name": "Ada" }),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (
            StatusCode::BAD_REQUEST,
            Some("a password needs 10 to 128 characters")
        )
    );
    let account = json!({ "email": "ada@example.com", "password": "correct horse battery", "name": "Ada" });
    let response = app
        .client
        .post(format!("{}/api/auth/register", app.base))
        .json(&account)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert!(
        response.headers().get("set-cookie").is_none(),
        "nobody is signed in"
    );
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({ "status": "sent" })
    );
    let login = json!({ "email": "ADA@example.com", "password": "correct horse battery" });
    assert_eq!(
        app.post("/api/auth/login", login.clone()).await.0,
        StatusCode::UNAUTHORIZED,
        "the password is of no use before the email is proven"
    );

    let mut proven = account.clone();
    proven["code"] = "000000".into();
    assert_eq!(
        app.post("/api/auth/password", proven.clone()).await.0,
        StatusCode::UNAUTHORIZED
    );
    proven["code"] = app.smtp.code_for("ada@example.com").into();
    let (status, body) = app.post("/api/auth/password", proven).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["name"], "Ada");

    let (status, body) = app.post("/api/auth/login", login).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let wrong = app
        .post(
            "/api/auth/login",
            json!({ "email": "ada@example.com", "password": "correct horse batter" }),
        )
        .await;
    let unknown = app
        .post(
            "/api/auth/login",
            json!({ "email": "who@example.com", "password": "correct horse battery" }),
        )
        .await;
    assert_eq!(wrong, unknown, "a wrong password and an unknown email look alike");
    assert_eq!(wrong.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_registration_answers_alike_for_known_and_unknown_emails() {
    let app = App::start().await;
    app.sign_in("ada@example.com").await;
    let register = |email: &str| {
        app.post(
            "/api/auth/register",
            json!({ "email": email, "password": "correct horse battery" }),
        )
    };
    let (known, unknown) = (
        register("ada@example.com").await,
        register("nobody@example.com").await,
    );
    assert_eq!(known, unknown);
    assert_eq!(known, (StatusCode::ACCEPTED, json!({ "status": "sent" })));
}

#[tokio::test]
async fn a_code_account_cannot_be_taken_over_by_registering_a_password() {
    let app = App::start().await;
    app.sign_in("ada@example.com").await;
    let (status, _) = app
        .post(
            "/api/auth/register",
            json!({ "email": "ada@example.com", "password": "attacker password" }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _) = app
        .post(
            "/api/auth/login",
            json!({ "email": "ada@example.com", "password": "attacker password" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// The state a password registration left before emails had to be proven: a password on an
/// address nobody proved, and a sign-in made with it.
async fn unproven_admin(app: &App) -> Value {
    let code = app.code("admin@example.com").await;
    let password = json!({ "email": "admin@example.com", "code": code, "password": "stranger's password" });
    let (status, signed) = app.post("/api/auth/password", password).await;
    assert_eq!(status, StatusCode::OK, "{signed}");
    app.sql("UPDATE users SET email_verified_at = NULL").await;
    signed
}

#[tokio::test]
async fn an_unproven_email_gets_no_admin_rights_no_renewal_and_loses_its_password_to_the_owner() {
    let app = App::start().await;
    let stranger = unproven_admin(&app).await;
    let access = stranger["access_token"].as_str().unwrap();
    let admin_list = app
        .client
        .get(format!("{}/api/v1/sessions", app.base))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(admin_list.status(), StatusCode::FORBIDDEN);
    let refresh = json!({ "refresh_token": stranger["refresh_token"] });
    assert_eq!(
        app.post("/api/auth/refresh", refresh.clone()).await.0,
        StatusCode::UNAUTHORIZED,
        "an unproven account's sign-in cannot be renewed"
    );
    let login = json!({ "email": "admin@example.com", "password": "stranger's password" });
    assert_eq!(
        app.post("/api/auth/login", login.clone()).await.0,
        StatusCode::UNAUTHORIZED
    );

    // The address's owner proves it with a code: the stranger's password is gone for good.
    let owner = app.sign_in("admin@example.com").await;
    assert_eq!(
        app.post("/api/auth/login", login).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.post("/api/auth/refresh", refresh).await.0,
        StatusCode::UNAUTHORIZED
    );
    let admin_list = app
        .client
        .get(format!("{}/api/v1/sessions", app.base))
        .bearer_auth(owner["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(admin_list.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_password_reset_by_mailed_code_ends_every_other_sign_in() {
    let app = App::start().await;
    let first = app.sign_in("ada@example.com").await;
    let code = app.code("ada@example.com").await;
    let reset = json!({ "email": "ada@example.com", "code": code, "password": "a brand new password" });
    let (status, now) = app.post("/api/auth/password", reset).await;
    assert_eq!(status, StatusCode::OK, "{now}");
    assert_eq!(
        app.post(
            "/api/auth/refresh",
            json!({ "refresh_token": first["refresh_token"] })
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.post(
            "/api/auth/refresh",
            json!({ "refresh_token": now["refresh_token"] })
        )
        .await
        .0,
        StatusCode::OK
    );
    let login = json!({ "email": "ada@example.com", "password": "a brand new password" });
    assert_eq!(app.post("/api/auth/login", login).await.0, StatusCode::OK);
}

#[tokio::test]
async fn signing_out_everywhere_ends_every_sign_in() {
    let app = App::start().await;
    let (laptop, phone) = (
        app.sign_in("ada@example.com").await,
        app.sign_in("ada@example.com").await,
    );
    let response = app
        .client
        .post(format!("{}/api/auth/logout/everywhere", app.base))
        .bearer_auth(phone["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    for device in [laptop, phone] {
        assert_eq!(
            app.post(
                "/api/auth/refresh",
                json!({ "refresh_token": device["refresh_token"] })
            )
            .await
            .0,
            StatusCode::UNAUTHORIZED
        );
    }
}

#[tokio::test]
async fn a_refresh_rotates_and_a_replay_revokes_the_family() {
    let app = App::start().await;
    let first = app.sign_in("ada@example.com").await;
    let old = first["refresh_token"].as_str().unwrap().to_owned();
    let (status, second) = app
        .post("/api/auth/refresh", json!({ "refresh_token": old }))
        .await;
    assert_eq!(status, StatusCode::OK);
    let current = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(current, old);
    assert_eq!(
        app.me(second["access_token"].as_str().unwrap()).await,
        StatusCode::OK
    );

    // Later, someone presents the rotated token again: it was stolen.
    app.sql("UPDATE refresh_tokens SET revoked_at = '2000-01-01T00:00:00Z' WHERE replaced_by IS NOT NULL")
        .await;
    assert_eq!(
        app.post("/api/auth/refresh", json!({ "refresh_token": old }))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    // The legitimate holder's token died with the family.
    assert_eq!(
        app.post("/api/auth/refresh", json!({ "refresh_token": current }))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn two_refreshes_at_once_yield_one_successor_and_no_error() {
    let app = App::start().await;
    let token = app.sign_in("ada@example.com").await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = json!({ "refresh_token": token });
    let (a, b) = tokio::join!(
        app.post("/api/auth/refresh", body.clone()),
        app.post("/api/auth/refresh", body)
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::UNAUTHORIZED]);
    // The winner's successor still works: a near-simultaneous second use is not a theft.
    let winner = if a.0 == StatusCode::OK { a.1 } else { b.1 };
    let (status, _) = app
        .post(
            "/api/auth/refresh",
            json!({ "refresh_token": winner["refresh_token"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn logout_revokes_the_refresh_token_and_clears_the_cookies() {
    let app = App::start().await;
    let signed = app.sign_in("ada@example.com").await;
    let response = app
        .client
        .post(format!("{}/api/auth/logout", app.base))
        .bearer_auth(signed["access_token"].as_str().unwrap())
        .json(&json!({ "refresh_token": signed["refresh_token"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let cleared: Vec<&str> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(cleared.iter().all(|c| c.contains("Max-Age=0")), "{cleared:?}");
    let (status, _) = app
        .post(
            "/api/auth/refresh",
            json!({ "refresh_token": signed["refresh_token"] }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn forged_tokens_get_401() {
    let app = App::start().await;
    let real = app.sign_in("ada@example.com").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.me(&real).await, StatusCode::OK);
    let [header, claims, _] = real.split('.').collect::<Vec<_>>()[..] else {
        panic!("{real}")
    };
    let unsigned = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{claims}.");
    let mut tampered = real.clone();
    tampered.replace_range(tampered.len() - 3.., "AAA");
    for token in [
        unsigned.as_str(),
        &format!("{header}.{claims}."),
        &tampered,
        "",
        "not-a-jwt",
    ] {
        assert_eq!(app.me(token).await, StatusCode::UNAUTHORIZED, "{token}");
    }
    let none = app
        .client
        .get(format!("{}/api/auth/me", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn bad_input_is_refused_at_the_edge() {
    let app = App::start().await;
    for email in [
        "x' OR '1'='1",
        "ada@example.com; rm -rf /",
        "../../etc/passwd",
        "ada@example.com\r\nBcc: all@example.com",
    ] {
        let (status, body) = app.post("/api/auth/email/otp", json!({ "email": email })).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{email}");
        assert_eq!(body["error"], "that does not look like an email address");
    }
    let huge = json!({ "email": format!("{}@example.com", "a".repeat(10_000)) });
    assert_eq!(
        app.post("/api/auth/email/otp", huge).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let malformed = app
        .client
        .post(format!("{}/api/auth/email/otp", app.base))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    let body: Value = malformed.json().await.unwrap();
    assert!(body["error"].as_str().is_some());
    assert!(app.smtp.messages().is_empty(), "nothing was mailed");
}

/// The `Set-Cookie` value of `name` in a response, if it sets one.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix(name)?.strip_prefix('='))
        .map(|c| c.split(';').next().unwrap().to_owned())
}

/// An access token for `user_id` that expired a minute ago, signed with the platform's key.
fn expired_access_token(user_id: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "sub": user_id, "iss": "ckad-platform", "aud": "ckad-platform/api",
        "iat": now - 960, "exp": now - 60, "typ": "access",
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"a-test-secret-that-is-at-least-32-bytes"),
    )
    .unwrap()
}

#[tokio::test]
async fn an_expired_access_cookie_is_renewed_for_check_extend_and_a_terminal_reconnect() {
    use common::Terminals as _;
    let app = App::start().await;
    let signed = app.sign_in("ada@example.com").await;
    let (token, user_id) = (
        signed["access_token"].as_str().unwrap(),
        signed["user"]["id"].as_str().unwrap(),
    );
    let platform = common::Platform::at(&app.base, None);
    platform.start_session(token).await;
    let (_, tasks) = platform.get("/api/tasks", token).await;
    let task = tasks[0]["id"].as_str().unwrap();

    // The browser comes back after the access token's 15 minutes: each request carries an
    // expired access cookie and the refresh cookie the last answer set.
    let mut refresh = signed["refresh_token"].as_str().unwrap().to_owned();
    let check = format!("/api/tasks/{task}/check");
    for path in [check.as_str(), "/api/session/extend", "/api/terminal/ticket"] {
        let response = app
            .client
            .post(format!("{}{path}", app.base))
            .header("origin", common::ORIGIN)
            .header(
                "cookie",
                format!(
                    "ckad_access={}; ckad_refresh={refresh}",
                    expired_access_token(user_id)
                ),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let access = set_cookie(&response, "ckad_access").expect("a fresh access cookie");
        assert_eq!(app.me(&access).await, StatusCode::OK, "{path}");
        refresh = set_cookie(&response, "ckad_refresh").expect("the refresh cookie, rotated");
        let body: Value = response.json().await.unwrap();
        if path == "/api/terminal/ticket" {
            let mut shell = platform
                .connect(body["ticket"].as_str().unwrap(), common::ORIGIN)
                .await
                .expect("the terminal reconnects");
            shell.type_line("echo renewed-$((6*7))").await;
            shell.read_until("renewed-42").await;
        }
    }
    assert_eq!(
        platform.post("/api/session/stop", token).await.0,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn a_dead_refresh_cookie_is_cleared_and_the_request_refused() {
    let app = App::start().await;
    let signed = app.sign_in("ada@example.com").await;
    let response = app
        .client
        .get(format!("{}/api/auth/me", app.base))
        .header(
            "cookie",
            format!(
                "ckad_access={}; ckad_refresh=not-a-token",
                expired_access_token(signed["user"]["id"].as_str().unwrap())
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(set_cookie(&response, "ckad_refresh").as_deref(), Some(""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_parallel_logins_leave_the_server_answering_promptly() {
    let app = App::start().await;
    let code = app.code("ada@example.com").await;
    let account = json!({ "email": "ada@example.com", "code": code, "password": "correct horse battery" });
    assert_eq!(app.post("/api/auth/password", account).await.0, StatusCode::OK);
    let logins = (0..50).map(|i| {
        let password = if i % 2 == 0 {
            "correct horse battery"
        } else {
            "a wrong password"
        };
        app.post(
            "/api/auth/login",
            json!({ "email": "ada@example.com", "password": password }),
        )
    });
    // While the logins are hashed, a cheap request is timed now and then.
    let probe = async {
        let mut slowest = std::time::Duration::ZERO;
        for _ in 0..10 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let started = std::time::Instant::now();
            let health = app.client.get(format!("{}/healthz", app.base)).send().await;
            assert_eq!(health.unwrap().status(), StatusCode::OK);
            slowest = slowest.max(started.elapsed());
        }
        slowest
    };
    let started = std::time::Instant::now();
    let (answers, slowest) = tokio::join!(futures_util::future::join_all(logins), probe);
    let statuses: Vec<StatusCode> = answers.into_iter().map(|(status, _)| status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        25,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| [StatusCode::OK, StatusCode::UNAUTHORIZED].contains(s)),
        "{statuses:?}"
    );
    eprintln!(
        "50 logins in {:?}; the slowest health check {slowest:?}",
        started.elapsed()
    );
    // Generous: the build machines are shared, and a stalled server waits for whole hashes.
    assert!(
        slowest < std::time::Duration::from_secs(1),
        "a health check waited {slowest:?} behind the hashing"
    );
    // A password longer than any account's is refused before hashing.
    let long = json!({ "email": "ada@example.com", "password": "x".repeat(129) });
    assert_eq!(
        app.post("/api/auth/login", long).await,
        (
            StatusCode::UNAUTHORIZED,
            json!({ "error": "the email or the password is wrong" })
        )
    );
}

/// A browser whose access token has expired still signs out: the refresh cookie alone names the
/// sign-in to end. With nothing live to revoke the answer says so (400), not a silent 204.
#[tokio::test]
async fn logout_works_with_the_refresh_cookie_alone_and_refuses_when_there_is_nothing_to_revoke() {
    let app = App::start().await;
    let signed = app.sign_in("ada@example.com").await;
    let refresh = signed["refresh_token"].as_str().unwrap();

    assert_eq!(
        app.post_with_cookie("/api/auth/logout", refresh).await,
        StatusCode::NO_CONTENT
    );
    let (status, _) = app
        .post("/api/auth/refresh", json!({ "refresh_token": refresh }))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the sign-in is over");

    // Again with the same (now dead) cookie, and with nothing at all.
    assert_eq!(
        app.post_with_cookie("/api/auth/logout", refresh).await,
        StatusCode::BAD_REQUEST
    );
    let nothing = app
        .client
        .post(format!("{}/api/auth/logout", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(nothing.status(), StatusCode::BAD_REQUEST);
    let body: Value = nothing.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("no sign-in to end"),
        "{body}"
    );
}

/// Rotation renews a sign-in a week at a time, but never past 30 days from its first token.
#[tokio::test]
async fn a_sign_in_ends_thirty_days_after_it_began_however_often_it_is_renewed() {
    let app = App::start().await;
    let signed = app.sign_in("ada@example.com").await;
    // The sign-in began 30 days less a minute ago.
    let began =
        (chrono::Utc::now() - chrono::Duration::days(30) + chrono::Duration::seconds(60)).to_rfc3339();
    app.sql(&format!("UPDATE refresh_tokens SET created_at = '{began}'"))
        .await;

    let (status, renewed) = app
        .post(
            "/api/auth/refresh",
            json!({ "refresh_token": signed["refresh_token"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    let within_a_minute = (chrono::Utc::now() + chrono::Duration::seconds(61)).to_rfc3339();
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM refresh_tokens WHERE revoked_at IS NULL AND expires_at <= '{within_a_minute}'"
        ))
        .await,
        1,
        "the successor lives only as long as the sign-in has left, not a whole week"
    );

    // The 30 days are up: the successor no longer renews anything.
    let long_ago =
        (chrono::Utc::now() - chrono::Duration::days(30) - chrono::Duration::seconds(1)).to_rfc3339();
    app.sql(&format!(
        "UPDATE refresh_tokens SET created_at = '{long_ago}' WHERE revoked_at IS NOT NULL"
    ))
    .await;
    let (status, body) = app
        .post(
            "/api/auth/refresh",
            json!({ "refresh_token": renewed["refresh_token"] }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

/// Expired codes (once past the hour the limits count), Google flows and whole refresh families
/// are deleted by the sweeper; what can still be used stays.
#[tokio::test]
async fn the_sweeper_purges_expired_codes_flows_and_refresh_families() {
    let app =
        App::start_with(|settings| settings.sessions.sweep_every = std::time::Duration::from_secs(1)).await;
    let signed = app.sign_in("ada@example.com").await;
    let user = signed["user"]["id"].as_str().unwrap();
    let ago = |hours: i64| (chrono::Utc::now() - chrono::Duration::hours(hours)).to_rfc3339();
    let ahead = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    app.sql(&format!(
        "INSERT INTO one_time_codes (id, email, code_hash, expires_at, created_at)
             VALUES ('old-code', 'bob@example.com', 'h', '{}', '{}');
         INSERT INTO oauth_flows (state_hash, pkce_verifier, nonce, expires_at)
             VALUES ('old-flow', 'v', 'n', '{}'), ('live-flow', 'v', 'n', '{ahead}');
         INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, expires_at, created_at, revoked_at)
             VALUES ('old-1', '{user}', 'old-family', 'h1', '{}', '{}', '{}'),
                    ('old-2', '{user}', 'old-family', 'h2', '{}', '{}', NULL)",
        ago(2),
        ago(3),
        ago(1),
        ago(200),
        ago(368),
        ago(200),
        ago(30),
        ago(200),
    ))
    .await;
    common::eventually("the sweep", std::time::Duration::from_secs(10), || async {
        app.count("SELECT COUNT(*) FROM oauth_flows WHERE state_hash = 'old-flow'")
            .await
            == 0
    })
    .await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM one_time_codes WHERE id = 'old-code'")
            .await,
        0
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM refresh_tokens WHERE family_id = 'old-family'")
            .await,
        0
    );
    // Still usable, or still counted by the limits: kept.
    assert_eq!(app.count("SELECT COUNT(*) FROM oauth_flows").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM one_time_codes").await, 1);
    let (status, _) = app
        .post(
            "/api/auth/refresh",
            json!({ "refresh_token": signed["refresh_token"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

/// A backup holds refresh tokens that were live when it was taken; restored, they would sign in
/// again whoever had signed out or been revoked since. The restore ends every sign-in.
#[tokio::test]
async fn a_restored_backup_signs_everyone_out() {
    let app = App::start().await;
    let signed = app.sign_in("ada@example.com").await;
    let script =
        |name: &str| std::process::Command::new(format!("{}/scripts/{name}", env!("CARGO_MANIFEST_DIR")));
    let backups = tempfile::tempdir().unwrap();
    let backed_up = script("backup-db.sh")
        .arg(format!("sqlite://{}/ckad.db", app.dir.path().display()))
        .env("BACKUP_DIR", backups.path())
        .output()
        .unwrap();
    assert!(backed_up.status.success(), "{backed_up:?}");
    let backup = std::fs::read_dir(backups.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let restored = tempfile::tempdir().unwrap();
    let target = restored.path().join("db");
    let output = script("restore-db.sh")
        .arg(&backup)
        .arg(&target)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{report}");
    assert!(
        report.contains("signed everyone out (1 refresh tokens revoked)"),
        "{report}"
    );

    // A platform on the restored database: the token from before the backup renews nothing.
    let base = common::serve(common::settings(&target, "unix:///var/run/docker.sock")).await;
    let answer = app
        .client
        .post(format!("{base}/api/auth/refresh"))
        .json(&json!({ "refresh_token": signed["refresh_token"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
}

/// A session costs the host a cluster: only an account whose email is proven may start one, even
/// holding a valid access token (the stranger's token below was issued before the proof lapsed).
#[tokio::test]
async fn an_unproven_email_cannot_start_a_session_or_an_exam() {
    let app = App::start().await;
    let stranger = unproven_admin(&app).await;
    let access = stranger["access_token"].as_str().unwrap();
    for path in ["/api/session/start", "/api/exams/exam-1/start"] {
        let answer = app
            .client
            .post(format!("{}{path}", app.base))
            .bearer_auth(access)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::FORBIDDEN, "{path}");
        let body: Value = answer.json().await.unwrap();
        assert_eq!(
            body["error"],
            "prove your email first: sign in with the code mailed to it"
        );
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sessions").await,
        0,
        "nothing was recorded"
    );
}

/// Password hashing runs on blocking threads behind a semaphore: 50 logins at once must not
/// stall a learner's terminal, whose echo stays within its usual time (measured first, idle).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_parallel_logins_leave_a_terminals_echo_as_quick_as_usual() {
    use common::Terminals as _;
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    let platform = common::Platform::start(common::settings(dir.path(), "unix:///var/run/docker.sock")).await;
    let token = platform.learner("ada@example.com").await;
    platform.start_session(&token).await;
    let mut shell = platform
        .connect(&platform.ticket(&token).await, common::ORIGIN)
        .await
        .unwrap();
    // The shell computes the number, so the typed line never matches what is awaited.
    let mut echoes = 0;
    let mut echo = async |shell: &mut common::Shell| {
        echoes += 1;
        let started = Instant::now();
        shell.type_line(&format!("echo \"<$((1000 + {echoes}))>\"")).await;
        shell.read_until(&format!("<{}>", 1000 + echoes)).await;
        started.elapsed()
    };
    let mut usual = Duration::ZERO;
    for _ in 0..5 {
        usual = usual.max(echo(&mut shell).await);
    }

    let (answers, slowest) = {
        let logins = (0..50).map(|i| {
            let password = if i % 2 == 0 {
                "correct horse battery"
            } else {
                "a wrong password"
            };
            platform.call(
                reqwest::Method::POST,
                "/api/auth/login",
                "",
                Some(json!({ "email": "ada@example.com", "password": password })),
            )
        });
        let logins = futures_util::future::join_all(logins);
        tokio::pin!(logins);
        let mut slowest = Duration::ZERO;
        loop {
            tokio::select! {
                answers = &mut logins => break (answers, slowest),
                () = tokio::time::sleep(Duration::from_millis(50)) => {
                    slowest = slowest.max(echo(&mut shell).await);
                }
            }
        }
    };
    let ok = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::OK)
        .count();
    assert_eq!(ok, 25, "{answers:?}");
    eprintln!("terminal echo: usual {usual:?}, slowest during 50 logins {slowest:?}");
    assert!(slowest > Duration::ZERO, "no echo was timed while the logins ran");
    // Generous for a shared machine; a stalled server waits for whole hashes, seconds in all.
    assert!(
        slowest < usual + Duration::from_secs(1),
        "an echo waited {slowest:?} behind the hashing (usual {usual:?})"
    );
    let (status, _) = platform.post("/api/session/stop", &token).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    platform.shut_down().await;
}
