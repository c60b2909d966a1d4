//! Who is asking: the one way to find the signed-in user ([`CurrentUser`]) and an administrator
//! ([`AdminUser`]), shared by the JSON API, the pages' server functions and the terminal socket.

use app::api::UserView;
use axum::{
    extract::{FromRef, FromRequestParts},
    http::{header, request::Parts, HeaderMap, StatusCode},
};

use super::{
    cookies::{cookie_value, ACCESS_COOKIE},
    ApiError,
};
use crate::{auth::Auth, AppState};

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

/// A signed-in user whose email is in `ADMIN_EMAILS`.
#[derive(Debug, Clone)]
pub struct AdminUser {
    pub user: UserView,
}

impl AdminUser {
    /// 401 without a sign-in, 403 for anyone not an administrator.
    pub async fn from_headers(state: &AppState, headers: &HeaderMap) -> Result<Self, ApiError> {
        let CurrentUser { id } = CurrentUser::from_headers(&state.auth, headers)?;
        match state.auth.user(&id).await? {
            Some(user) if state.settings.admin_emails.contains(&user.email.to_lowercase()) => {
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
