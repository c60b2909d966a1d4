//! `/api/auth/*`: sign-in by email code, Google or password, token refresh, logout, and who am I.
//! Browsers get their tokens in HttpOnly, Secure, SameSite=Lax cookies; API clients use the JSON
//! body and `Authorization: Bearer`.

use app::{
    api::{
        CodeBody, CodeSent, EmailBody, ErrorBody, LoginBody, PasswordBody, RefreshBody, RegisterBody,
        SignInAnswer, UserView,
    },
    ports::{Accounts, Refusal, SignedIn as PageSignedIn},
};
use axum::{
    body::Bytes,
    extract::{DefaultBodyLimit, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{AppendHeaders, IntoResponse, Redirect, Response},
    Json,
};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    cookies::{
        cleared_cookies, cleared_google_cookie, cookie_value, google_cookie, session_cookies, set_cookies,
        GOOGLE_COOKIE, REFRESH_COOKIE,
    },
    extract::CurrentUser,
    ApiError, ApiJson,
};
use crate::{
    auth::{Auth, AuthError, GoogleError, SignedIn, ACCESS_TTL},
    sessions::SessionEvents,
    terminals::CloseReason,
    AppState,
};

/// Sign-in bodies are a few short fields.
const BODY_LIMIT: usize = 4 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(request_code))
        .routes(routes!(verify_code))
        .routes(routes!(register))
        .routes(routes!(set_password))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(logout_everywhere))
        .routes(routes!(me))
        .routes(routes!(google_start))
        .routes(routes!(google_callback))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

/// The JSON answer to a sign-in, with both cookies set.
fn signed_in(status: StatusCode, signed: SignedIn) -> Response {
    let cookies = AppendHeaders(set_cookies(session_cookies(&signed)));
    let body = SignInAnswer {
        user: signed.user.into(),
        access_token: signed.access_token,
        token_type: "Bearer".into(),
        expires_in: ACCESS_TTL.num_seconds(),
        refresh_token: signed.refresh_token,
    };
    (status, cookies, Json(body)).into_response()
}

/// The one answer to a code request, known email or not.
fn code_sent() -> Response {
    (
        StatusCode::ACCEPTED,
        Json(CodeSent {
            status: "sent".into(),
        }),
    )
        .into_response()
}

/// Emails a 6-digit sign-in code. Always the same answer, known email or not.
#[utoipa::path(post, path = "/email/otp", tag = "auth", request_body = EmailBody, responses(
    (status = 202, body = CodeSent), (status = 400, body = ErrorBody), (status = 502, body = ErrorBody),
))]
async fn request_code(
    State(auth): State<Auth>,
    ApiJson(body): ApiJson<EmailBody>,
) -> Result<Response, ApiError> {
    auth.request_code(&body.email).await?;
    Ok(code_sent())
}

/// Signs in with an emailed code; the tokens come as cookies too.
#[utoipa::path(post, path = "/email/verify", tag = "auth", request_body = CodeBody, responses(
    (status = 200, body = SignInAnswer), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
))]
async fn verify_code(
    State(auth): State<Auth>,
    ApiJson(body): ApiJson<CodeBody>,
) -> Result<Response, ApiError> {
    Ok(signed_in(
        StatusCode::OK,
        auth.verify_code(&body.email, &body.code).await?,
    ))
}

/// The first step of a password account: checks the password's length and mails a code to
/// prove the email; nobody is signed in. The same answer whether the email has an account or not.
#[utoipa::path(post, path = "/register", tag = "auth", request_body = RegisterBody, responses(
    (status = 202, body = CodeSent), (status = 400, body = ErrorBody), (status = 502, body = ErrorBody),
))]
async fn register(
    State(auth): State<Auth>,
    ApiJson(body): ApiJson<RegisterBody>,
) -> Result<Response, ApiError> {
    auth.register(&body.email, &body.password).await?;
    Ok(code_sent())
}

/// Sets the account's password with the code mailed to its email (the end of a registration, or
/// a reset), ends every earlier sign-in of the account, and signs in.
#[utoipa::path(post, path = "/password", tag = "auth", request_body = PasswordBody, responses(
    (status = 200, body = SignInAnswer), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
))]
async fn set_password(
    State(auth): State<Auth>,
    ApiJson(body): ApiJson<PasswordBody>,
) -> Result<Response, ApiError> {
    Ok(signed_in(
        StatusCode::OK,
        auth.set_password(&body.email, &body.code, &body.password, &body.name)
            .await?,
    ))
}

#[utoipa::path(post, path = "/login", tag = "auth", request_body = LoginBody, responses(
    (status = 200, body = SignInAnswer), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
))]
async fn login(State(auth): State<Auth>, ApiJson(body): ApiJson<LoginBody>) -> Result<Response, ApiError> {
    Ok(signed_in(
        StatusCode::OK,
        auth.login(&body.email, &body.password).await?,
    ))
}

/// The refresh token from the JSON body (API clients) or the cookie (browsers; no body).
fn presented_refresh(jar: &CookieJar, body: &Bytes) -> Result<Option<String>, ApiError> {
    let from_body = if body.is_empty() {
        None
    } else {
        serde_json::from_slice::<RefreshBody>(body)
            .map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("the body is not valid JSON: {e}"),
                )
            })?
            .refresh_token
    };
    Ok(from_body.or_else(|| jar.get(REFRESH_COOKIE).map(|c| c.value().to_owned())))
}

/// New tokens for a refresh token, from the body (API clients) or the cookie (browsers).
#[utoipa::path(post, path = "/refresh", tag = "auth", request_body(content = Option<RefreshBody>), responses(
    (status = 200, body = SignInAnswer), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
))]
async fn refresh(State(auth): State<Auth>, jar: CookieJar, body: Bytes) -> Result<Response, ApiError> {
    let token = presented_refresh(&jar, &body)?.ok_or(AuthError::InvalidRefresh)?;
    Ok(signed_in(StatusCode::OK, auth.refresh(&token).await?))
}

/// Revokes the sign-in of the refresh token (body or cookie; no access token needed, so an
/// expired sign-in can still be ended) and closes its user's terminal sockets. 400 when no live
/// sign-in was presented; the cookies are cleared either way.
#[utoipa::path(post, path = "/logout", tag = "auth", request_body(content = Option<RefreshBody>), responses(
    (status = 204, description = "Signed out; the cookies are cleared"), (status = 400, body = ErrorBody),
))]
async fn logout(
    State(auth): State<Auth>,
    State(events): State<SessionEvents>,
    jar: CookieJar,
    body: Bytes,
) -> Result<Response, ApiError> {
    let cleared = AppendHeaders(set_cookies(cleared_cookies()));
    let user = match presented_refresh(&jar, &body)? {
        Some(token) => auth.logout(&token).await?,
        None => None,
    };
    let Some(user) = user else {
        let nothing = ApiError::new(
            StatusCode::BAD_REQUEST,
            "there is no sign-in to end: send the refresh token of a live sign-in",
        );
        return Ok((cleared, nothing).into_response());
    };
    events.close_user_sockets(&user, CloseReason::SignedOut).await;
    Ok((StatusCode::NO_CONTENT, cleared).into_response())
}

/// Ends every sign-in of the user, on every device, and closes their terminal sockets.
#[utoipa::path(post, path = "/logout/everywhere", tag = "auth", responses(
    (status = 204, description = "Signed out everywhere; the cookies are cleared"), (status = 401, body = ErrorBody),
))]
async fn logout_everywhere(
    State(auth): State<Auth>,
    State(events): State<SessionEvents>,
    user: CurrentUser,
) -> Result<Response, ApiError> {
    auth.sign_out_everywhere(&user.id).await?;
    events.close_user_sockets(&user.id, CloseReason::SignedOut).await;
    let cleared = AppendHeaders(set_cookies(cleared_cookies()));
    Ok((StatusCode::NO_CONTENT, cleared).into_response())
}

/// Off to Google's consent page, with the cookie that binds the flow to this browser.
#[utoipa::path(get, path = "/google", tag = "auth", responses(
    (status = 303, description = "To Google, or back to the sign-in page with the reason"),
))]
async fn google_start(State(auth): State<Auth>) -> Response {
    match auth.google_start().await {
        Ok((url, browser)) => (set_cookies([google_cookie(&browser)]), Redirect::to(&url)).into_response(),
        Err(error) => refused(&error),
    }
}

#[derive(Deserialize)]
struct GoogleCallback {
    code: Option<String>,
    state: Option<String>,
    /// Set by Google when the person declined.
    error: Option<String>,
}

/// Back from Google: signed in and sent home, or sent to the sign-in page with the reason. Only
/// the browser that started the sign-in (its cookie) can finish it.
#[utoipa::path(get, path = "/google/callback", tag = "auth", params(
    ("code" = Option<String>, Query), ("state" = Option<String>, Query), ("error" = Option<String>, Query),
), responses((status = 303, description = "Home signed in, or to the sign-in page with the reason")))]
async fn google_callback(
    State(auth): State<Auth>,
    jar: CookieJar,
    Query(callback): Query<GoogleCallback>,
) -> Response {
    let (Some(code), Some(state), None) = (callback.code, callback.state, callback.error) else {
        return back_to_sign_in("cancelled");
    };
    let browser = jar.get(GOOGLE_COOKIE).map_or("", |c| c.value());
    match auth.google_finish(&code, &state, browser).await {
        Ok(signed) => {
            let [access, refresh] = session_cookies(&signed);
            let cookies = set_cookies([access, refresh, cleared_google_cookie()]);
            (AppendHeaders(cookies), Redirect::to("/")).into_response()
        }
        Err(error) => refused(&error),
    }
}

/// A refused Google sign-in: logged, and the sign-in page told which of its fixed sentences to
/// show (never a text of ours or of the query's).
fn refused(error: &AuthError) -> Response {
    tracing::warn!(%error, "Google sign-in refused");
    back_to_sign_in(match error {
        AuthError::Google(GoogleError::NotConfigured) => "unavailable",
        AuthError::Google(GoogleError::UnknownState) => "expired",
        AuthError::Google(GoogleError::EmailNotVerified) => "unverified",
        _ => "failed",
    })
}

fn back_to_sign_in(reason: &str) -> Response {
    Redirect::to(&format!("/signin?error={reason}")).into_response()
}

/// Who is signed in.
#[utoipa::path(get, path = "/me", tag = "auth", responses(
    (status = 200, body = UserView), (status = 401, body = ErrorBody),
))]
async fn me(user: CurrentUser, State(auth): State<Auth>) -> Result<Json<UserView>, ApiError> {
    let found = auth.user(&user.id).await?;
    Ok(Json(found.ok_or_else(ApiError::sign_in_first)?.into()))
}

/// The sign-in pages' view of [`Auth`]: the same flows, answered with cookies and sentences.
pub struct PageAccounts {
    pub auth: Auth,
    /// To close the user's terminal sockets, on every replica.
    pub events: SessionEvents,
}

fn refusal(error: AuthError) -> Refusal {
    ApiError::from(error).into()
}

fn page_signed_in(signed: Result<SignedIn, AuthError>) -> Result<PageSignedIn, Refusal> {
    let signed = signed.map_err(refusal)?;
    Ok(PageSignedIn {
        cookies: session_cookies(&signed).to_vec(),
        user: signed.user.into(),
    })
}

#[async_trait::async_trait]
impl Accounts for PageAccounts {
    async fn current_user(&self, headers: &HeaderMap) -> Option<UserView> {
        let CurrentUser { id } = CurrentUser::from_headers(&self.auth, headers).ok()?;
        Some(self.auth.user(&id).await.ok()??.into())
    }

    async fn request_code(&self, email: &str) -> Result<(), Refusal> {
        self.auth.request_code(email).await.map_err(refusal)
    }

    async fn verify_code(&self, email: &str, code: &str) -> Result<PageSignedIn, Refusal> {
        page_signed_in(self.auth.verify_code(email, code).await)
    }

    async fn log_in(&self, email: &str, password: &str) -> Result<PageSignedIn, Refusal> {
        page_signed_in(self.auth.login(email, password).await)
    }

    async fn register(&self, email: &str, password: &str) -> Result<(), Refusal> {
        self.auth.register(email, password).await.map_err(refusal)
    }

    async fn set_password(
        &self,
        email: &str,
        code: &str,
        password: &str,
        name: &str,
    ) -> Result<PageSignedIn, Refusal> {
        page_signed_in(self.auth.set_password(email, code, password, name).await)
    }

    async fn sign_out_everywhere(&self, headers: &HeaderMap) -> Result<Vec<HeaderValue>, Refusal> {
        let user = CurrentUser::from_headers(&self.auth, headers)?;
        self.auth.sign_out_everywhere(&user.id).await.map_err(refusal)?;
        self.events
            .close_user_sockets(&user.id, CloseReason::SignedOut)
            .await;
        Ok(cleared_cookies().to_vec())
    }

    async fn sign_out(&self, headers: &HeaderMap) -> Vec<HeaderValue> {
        if let Ok(user) = CurrentUser::from_headers(&self.auth, headers) {
            self.events
                .close_user_sockets(&user.id, CloseReason::SignedOut)
                .await;
        }
        if let Some(token) = cookie_value(headers, REFRESH_COOKIE) {
            if let Err(error) = self.auth.logout(&token).await {
                tracing::error!(%error, "sign-out could not revoke the refresh token");
            }
        }
        cleared_cookies().to_vec()
    }
}
