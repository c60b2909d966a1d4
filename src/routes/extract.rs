//! Who is asking: the one way to find the signed-in user ([`CurrentUser`]) and an administrator
//! ([`AdminUser`]), shared by the JSON API, the pages' server functions and the terminal socket;
//! and [`renew_session`], which keeps a browser signed in past its access token's 15 minutes.

use app::api::UserView;
use axum::{
    extract::{FromRef, FromRequestParts, Request, State},
    http::{header, request::Parts, HeaderMap, StatusCode},
    middleware::Next,
    response::Response,
};

use super::{
    cookies::{cleared_cookies, cookie_value, session_cookies, with_cookies, ACCESS_COOKIE, REFRESH_COOKIE},
    ApiError,
};
use crate::{
    auth::{Auth, AuthError},
    AppState,
};

/// The endpoints that handle the refresh cookie themselves.
const OWN_REFRESH: [&str; 2] = ["/api/auth/refresh", "/api/auth/logout"];

/// A browser whose access cookie is missing or expired but whose refresh cookie is live gets a
/// new pair before the request is handled: the request is served as signed in (pages, server
/// functions and the API alike) and the response sets the new cookies. A dead refresh cookie is
/// cleared. Requests that carry `Authorization` are API clients and renew by themselves.
pub async fn renew_session(State(auth): State<Auth>, mut request: Request, next: Next) -> Response {
    let headers = request.headers();
    let needs_renewal = !OWN_REFRESH.contains(&request.uri().path())
        && !headers.contains_key(header::AUTHORIZATION)
        && cookie_value(headers, ACCESS_COOKIE).is_none_or(|token| auth.authenticate(token.trim()).is_err());
    let Some(refresh) = cookie_value(headers, REFRESH_COOKIE).filter(|_| needs_renewal) else {
        return next.run(request).await;
    };
    let set = match auth.renew(&refresh).await {
        Ok(signed) => {
            let replaced = with_cookies(
                request.headers(),
                &[
                    (ACCESS_COOKIE, &signed.access_token),
                    (REFRESH_COOKIE, &signed.refresh_token),
                ],
            );
            request.headers_mut().insert(header::COOKIE, replaced);
            session_cookies(&signed).to_vec()
        }
        Err(AuthError::InvalidRefresh) => cleared_cookies().to_vec(),
        Err(error) => {
            tracing::error!(%error, "a browser sign-in could not be renewed");
            Vec::new()
        }
    };
    let mut response = next.run(request).await;
    // A response that sets the sign-in cookies itself (a sign-in, a sign-out) has the last word.
    let sets_own = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|c| c.as_bytes().starts_with(ACCESS_COOKIE.as_bytes()));
    if !sets_own {
        for cookie in set {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
    }
    response
}

/// The signed-in user of a request, from `Authorization: Bearer` or the access cookie.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub id: String,
}

impl CurrentUser {
    /// The user the request's headers sign in; 401 without a valid token.
    pub fn from_headers(auth: &Auth, headers: &HeaderMap) -> Result<Self, ApiError> {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let token = bearer
            .map(str::to_owned)
            .or_else(|| cookie_value(headers, ACCESS_COOKIE))
            .ok_or_else(ApiError::sign_in_first)?;
        let id = auth
            .authenticate(token.trim())
            .map_err(|_| ApiError::sign_in_first())?;
        Ok(Self { id })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser
where
    Auth: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Self::from_headers(&Auth::from_ref(state), &parts.headers)
    }
}

/// A signed-in user whose email is proven: only they may start sessions (a session costs the host
/// a cluster, and an address nobody proved is nobody's).
#[derive(Debug, Clone)]
pub struct ProvenUser {
    pub id: String,
}

impl ProvenUser {
    /// 401 without a sign-in, 403 until the email is proven.
    pub async fn from_headers(auth: &Auth, headers: &HeaderMap) -> Result<Self, ApiError> {
        let CurrentUser { id } = CurrentUser::from_headers(auth, headers)?;
        match auth.user(&id).await? {
            Some(user) if user.email_verified_at.is_some() => Ok(Self { id }),
            Some(_) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "prove your email first: sign in with the code mailed to it",
            )),
            None => Err(ApiError::sign_in_first()),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ProvenUser
where
    Auth: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Self::from_headers(&Auth::from_ref(state), &parts.headers).await
    }
}

/// A signed-in user whose proven email is in `ADMIN_EMAILS`.
#[derive(Debug, Clone)]
pub struct AdminUser {
    pub user: UserView,
}

impl AdminUser {
    /// 401 without a sign-in, 403 for anyone not an administrator.
    pub async fn from_headers(state: &AppState, headers: &HeaderMap) -> Result<Self, ApiError> {
        let CurrentUser { id } = CurrentUser::from_headers(&state.auth, headers)?;
        match state.auth.user(&id).await? {
            // Rights come with an address only once its owner proved it.
            Some(user)
                if user.email_verified_at.is_some()
                    && state.settings.admin_emails.contains(&user.email.to_lowercase()) =>
            {
                Ok(Self { user: user.into() })
            }
            Some(_) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "only administrators can see the sessions of others",
            )),
            None => Err(ApiError::sign_in_first()),
        }
    }
}

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Self::from_headers(state, &parts.headers).await
    }
}
