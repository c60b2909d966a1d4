//! The JSON API: thin adapters from HTTP to the domain modules, and the errors they answer with.

pub mod admin;
pub mod auth;
pub mod exam_pages;
pub mod pages;
pub mod session;
pub mod terminal;

use axum::{
    extract::{FromRequest, Request},
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use serde::de::DeserializeOwned;

/// An error as the client sees it: a status and a sentence a person can act on. Internal detail
/// goes to the log, inside the request's span, never to the client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn internal(error: impl std::fmt::Display) -> Self {
        let reference = crate::telemetry::reference();
        tracing::error!(%error, %reference, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("something went wrong on our side; try again (reference {reference})"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(serde_json::json!({ "error": self.message }))).into_response()
    }
}

/// The OpenAPI 3 document of every JSON endpoint (`/api/openapi.json`), written by hand and
/// held to the router by a test that calls every operation it lists.
pub async fn openapi() -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
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
