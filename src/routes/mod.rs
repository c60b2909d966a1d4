//! The JSON API: thin adapters from HTTP to the domain modules, and the errors they answer with.

pub mod admin;
pub mod auth;
pub mod billing;
mod cookies;
pub mod desk;
mod error;
pub mod extract;
pub mod pages;
pub mod ratelimit;
pub mod replay;
pub mod session;
pub mod terminal;

use std::sync::Arc;

use axum::{
    extract::{FromRequest, Request},
    http::header,
    response::IntoResponse,
    Extension, Json, Router,
};
use serde::de::DeserializeOwned;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;

pub use error::{panicked, ApiError};

/// The JSON API and the terminal socket, and their OpenAPI 3.1 document, made together from
/// the handlers' annotations and the wire types: a route is in the one exactly when it is in the
/// other. The document is served at `/api/openapi.json`.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut document) = OpenApiRouter::new()
        .nest("/api/auth", auth::router())
        .nest("/api/session", session::router())
        .nest("/api/tasks", session::tasks_router())
        .nest("/api/exams", session::exams_router())
        .nest("/api/v1/sessions", admin::router())
        .nest("/api/v1/access", billing::access_router())
        .nest("/api/v1/billing", billing::billing_router())
        .nest("/api/terminal", terminal::router())
        .nest("/api/replays", replay::router())
        .nest("/api/desk", desk::router())
        .merge(terminal::socket())
        .routes(routes!(openapi))
        .split_for_parts();
    document.info = utoipa::openapi::InfoBuilder::new()
        .title("CKAD practice platform")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "Browsers sign in with cookies; API clients send `Authorization: Bearer` with the \
             access token a sign-in answers. Errors answer `{\"error\": sentence}`.",
        ))
        .build();
    let served = Document(document.to_json().expect("the document serializes").into());
    (router.layer(Extension(served)), document)
}

/// The document as served.
#[derive(Clone)]
struct Document(Arc<str>);

/// This document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "meta", responses(
    (status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json"),
))]
async fn openapi(Extension(Document(json)): Extension<Document>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], json.to_string())
}

/// A JSON body whose rejections (wrong type, malformed, too large) answer in JSON too.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::new(rejection.status(), rejection.body_text())),
        }
    }
}
