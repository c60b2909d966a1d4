//! `/api/auth/*`: sign-in by email code, Google or password, token refresh, logout, and who am I.
//! Browsers get their tokens in HttpOnly, Secure, SameSite=Lax cookies; API clients use the JSON
//! body and `Authorization: Bearer`.

use axum::{
    body::Bytes,
    extract::{DefaultBodyLimit, FromRef, FromRequestParts, Query, State},
    http::{header, request::Parts, HeaderMap, HeaderValue, StatusCode},
    response::{AppendHeaders, IntoResponse, Redirect, Response},
    routing::{get, post},
    Json, Router,
};
use serde::{Deserialize, Serialize};

use app::account::{
    ssr::{Accounts, Refusal, SignedIn as PageSignedIn},
    UserView,
};

use super::{ApiError, ApiJson};
use crate::{
    auth::{Auth, AuthError, GoogleError, SignedIn, ACCESS_TTL, REFRESH_TTL},
    store::{Store, User},
    terminals::{CloseReason, TerminalSockets},
    AppState,
};

const ACCESS_COOKIE: &str = "ckad_access";
const REFRESH_COOKIE: &str = "ckad_refresh";
/// The refresh cookie goes only where it is used.
const REFRESH_PATH: &str = "/api/auth";
/// Sign-in bodies are a few short fields.
const BODY_LIMIT: usize = 4 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/email/otp", post(request_code))
        .route("/email/verify", post(verify_code))
        .route("/register", post(register))
        .route("/login", post(login))
        .route("/refresh", post(refresh))
        .route("/logout", post(logout))
        .route("/me", get(me))
        .route("/google", get(google_start))
        .route("/google/callback", get(google_callback))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        let status = match &error {
            AuthError::InvalidEmail(_) | AuthError::WeakPassword => StatusCode::BAD_REQUEST,
            AuthError::InvalidCode | AuthError::InvalidCredentials | AuthError::InvalidRefresh => {
                StatusCode::UNAUTHORIZED
            }
            AuthError::AccountExists => StatusCode::CONFLICT,
            AuthError::Google(google) => match google {
                GoogleError::NotConfigured => StatusCode::NOT_FOUND,
                GoogleError::UnknownState => StatusCode::BAD_REQUEST,
                GoogleError::Exchange(_) | GoogleError::InvalidIdToken(_) => StatusCode::UNAUTHORIZED,
                GoogleError::EmailNotVerified => StatusCode::FORBIDDEN,
                GoogleError::Store(store) => return ApiError::internal(store),
            },
            AuthError::Mail(mail) => {
                tracing::error!(error = %mail, "sign-in code not sent");
                return ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "we could not send the email; try again shortly",
                );
            }
            AuthError::Store(store) => return ApiError::internal(store),
        };
        ApiError::new(status, error.to_string())
    }
}

impl From<User> for UserView {
    fn from(user: User) -> Self {
        Self {
            id: user.id,
            email: user.email,
            name: user.name,
        }
    }
}

#[derive(Serialize)]
struct SignedInView {
    user: UserView,
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    refresh_token: String,
}

/// The JSON answer to a sign-in, with both cookies set.
fn signed_in(status: StatusCode, signed: SignedIn) -> Response {
    let cookies = AppendHeaders(session_cookies(&signed).map(|c| (header::SET_COOKIE, c)));
    let body = SignedInView {
        user: signed.user.into(),
        access_token: signed.access_token,
        token_type: "Bearer",
        expires_in: ACCESS_TTL.num_seconds(),
        refresh_token: signed.refresh_token,
    };
    (status, cookies, Json(body)).into_response()
}

/// The access and refresh cookies of a sign-in.
fn session_cookies(signed: &SignedIn) -> [HeaderValue; 2] {
    [
        cookie(ACCESS_COOKIE, &signed.access_token, "/", ACCESS_TTL.num_seconds()),
        cookie(
            REFRESH_COOKIE,
            &signed.refresh_token,
            REFRESH_PATH,
            REFRESH_TTL.num_seconds(),
        ),
    ]
}

fn cleared_cookies() -> [HeaderValue; 2] {
    [
        cookie(ACCESS_COOKIE, "", "/", 0),
        cookie(REFRESH_COOKIE, "", REFRESH_PATH, 0),
    ]
}

fn cookie(name: &str, value: &str, path: &str, max_age: i64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; Secure; SameSite=Lax"
    ))
    .expect("tokens are URL-safe")
}

/// The user a page request's access cookie signs in, if any.
pub(crate) fn page_user(auth: &Auth, headers: &HeaderMap) -> Option<String> {
    auth.authenticate(cookie_value(headers, ACCESS_COOKIE)?).ok()
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
}

#[derive(Deserialize)]
struct EmailBody {
    email: String,
}

/// Always the same answer, known email or not.
async fn request_code(
    State(auth): State<Auth>,
    ApiJson(body): ApiJson<EmailBody>,
) -> Result<Response, ApiError> {
    auth.request_code(&body.email).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "status": "sent" })),
    )
        .into_response())
}

#[derive(Deserialize)]
struct CodeBody {
    email: String,
    code: String,
}

async fn verify_code(
    State(auth): State<Auth>,
    ApiJson(body): ApiJson<CodeBody>,
) -> Result<Response, ApiError> {
    Ok(signed_in(
        StatusCode::OK,
        auth.verify_code(&body.email, &body.code).await?,
    ))
}

#[derive(Deserialize)]
struct RegisterBody {
    email: String,
    password: String,
    #[serde(default)]
    name: String,
}

async fn register(
    State(auth): State<Auth>,
    ApiJson(body): ApiJson<RegisterBody>,
) -> Result<Response, ApiError> {
    Ok(signed_in(
        StatusCode::CREATED,
        auth.register(&body.email, &body.password, &body.name).await?,
    ))
}

#[derive(Deserialize)]
struct LoginBody {
    email: String,
    password: String,
}

async fn login(State(auth): State<Auth>, ApiJson(body): ApiJson<LoginBody>) -> Result<Response, ApiError> {
    Ok(signed_in(
        StatusCode::OK,
        auth.login(&body.email, &body.password).await?,
    ))
}

#[derive(Deserialize)]
struct RefreshBody {
    refresh_token: Option<String>,
}

/// The refresh token from the JSON body (API clients) or the cookie (browsers; no body).
fn presented_refresh(headers: &HeaderMap, body: &Bytes) -> Result<Option<String>, ApiError> {
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
    Ok(from_body.or_else(|| cookie_value(headers, REFRESH_COOKIE).map(str::to_owned)))
}

async fn refresh(State(auth): State<Auth>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let token = presented_refresh(&headers, &body)?.ok_or(AuthError::InvalidRefresh)?;
    Ok(signed_in(StatusCode::OK, auth.refresh(&token).await?))
}

/// Revokes the refresh token and closes the user's terminal sockets.
async fn logout(
    State(auth): State<Auth>,
    State(sockets): State<TerminalSockets>,
    user: AuthUser,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if let Some(token) = presented_refresh(&headers, &body)? {
        auth.logout(&token).await?;
    }
    sockets.close_user(&user.id, CloseReason::SignedOut);
    let cleared = AppendHeaders(cleared_cookies().map(|c| (header::SET_COOKIE, c)));
    Ok((StatusCode::NO_CONTENT, cleared).into_response())
}

/// Off to Google's consent page.
async fn google_start(State(auth): State<Auth>) -> Response {
    match auth.google_start().await {
        Ok(url) => Redirect::to(&url).into_response(),
        Err(error) => back_to_sign_in(error),
    }
}

#[derive(Deserialize)]
struct GoogleCallback {
    code: Option<String>,
    state: Option<String>,
    /// Set by Google when the person declined.
    error: Option<String>,
}

/// Back from Google: signed in and sent home, or sent to the sign-in page with the reason.
async fn google_callback(State(auth): State<Auth>, Query(callback): Query<GoogleCallback>) -> Response {
    let (Some(code), Some(state), None) = (callback.code, callback.state, callback.error) else {
        return back_to_sign_in(AuthError::Google(GoogleError::Exchange(
            "the sign-in was cancelled".into(),
        )));
    };
    match auth.google_finish(&code, &state).await {
        Ok(signed) => {
            let cookies = AppendHeaders(session_cookies(&signed).map(|c| (header::SET_COOKIE, c)));
            (cookies, Redirect::to("/")).into_response()
        }
        Err(error) => back_to_sign_in(error),
    }
}

/// A browser flow's failure: the sign-in page, saying why (the status is logged).
fn back_to_sign_in(error: AuthError) -> Response {
    let ApiError { status, message } = error.into();
    tracing::warn!(status = status.as_u16(), message, "Google sign-in refused");
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("error", &message)
        .finish();
    Redirect::to(&format!("/signin?{query}")).into_response()
}

async fn me(user: AuthUser, State(store): State<Store>) -> Result<Json<UserView>, ApiError> {
    let found = store.user_by_id(&user.id).await.map_err(ApiError::internal)?;
    Ok(Json(found.ok_or_else(AuthUser::refused)?.into()))
}

/// The sign-in pages' view of [`Auth`]: the same flows, answered with cookies and sentences.
pub struct PageAccounts {
    pub auth: Auth,
    pub store: Store,
    pub sockets: TerminalSockets,
}

impl From<AuthError> for Refusal {
    fn from(error: AuthError) -> Self {
        let ApiError { status, message } = error.into();
        Self { status, message }
    }
}

fn page_signed_in(signed: Result<SignedIn, AuthError>) -> Result<PageSignedIn, Refusal> {
    let signed = signed?;
    Ok(PageSignedIn {
        cookies: session_cookies(&signed).to_vec(),
        user: signed.user.into(),
    })
}

#[async_trait::async_trait]
impl Accounts for PageAccounts {
    async fn current_user(&self, headers: &HeaderMap) -> Option<UserView> {
        let id = page_user(&self.auth, headers)?;
        Some(self.store.user_by_id(&id).await.ok()??.into())
    }

    async fn request_code(&self, email: &str) -> Result<(), Refusal> {
        Ok(self.auth.request_code(email).await?)
    }

    async fn verify_code(&self, email: &str, code: &str) -> Result<PageSignedIn, Refusal> {
        page_signed_in(self.auth.verify_code(email, code).await)
    }

    async fn log_in(&self, email: &str, password: &str) -> Result<PageSignedIn, Refusal> {
        page_signed_in(self.auth.login(email, password).await)
    }

    async fn register(&self, email: &str, password: &str, name: &str) -> Result<PageSignedIn, Refusal> {
        page_signed_in(self.auth.register(email, password, name).await)
    }

    async fn sign_out(&self, headers: &HeaderMap) -> Vec<HeaderValue> {
        let user = cookie_value(headers, ACCESS_COOKIE).and_then(|t| self.auth.authenticate(t).ok());
        if let Some(user_id) = user {
            self.sockets.close_user(&user_id, CloseReason::SignedOut);
        }
        if let Some(token) = cookie_value(headers, REFRESH_COOKIE) {
            if let Err(error) = self.auth.logout(token).await {
                tracing::error!(%error, "sign-out could not revoke the refresh token");
            }
        }
        cleared_cookies().to_vec()
    }
}

/// The signed-in user of a request, from `Authorization: Bearer` or the access cookie.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: String,
}

impl AuthUser {
    fn refused() -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "sign in first")
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AuthUser
where
    Auth: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let token = bearer
            .or_else(|| cookie_value(&parts.headers, ACCESS_COOKIE))
            .ok_or_else(Self::refused)?;
        let id = Auth::from_ref(state)
            .authenticate(token.trim())
            .map_err(|_| Self::refused())?;
        Ok(Self { id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; ckad_access=abc.def"),
        );
        headers.append(header::COOKIE, HeaderValue::from_static("ckad_refresh=xyz"));
        assert_eq!(cookie_value(&headers, ACCESS_COOKIE), Some("abc.def"));
        assert_eq!(cookie_value(&headers, REFRESH_COOKIE), Some("xyz"));
        assert_eq!(cookie_value(&headers, "ckad"), None);
    }

    #[test]
    fn cookies_are_http_only_secure_and_lax() {
        let value = cookie(ACCESS_COOKIE, "t", "/", 900);
        assert_eq!(
            value,
            "ckad_access=t; Path=/; Max-Age=900; HttpOnly; Secure; SameSite=Lax"
        );
    }
}
