//! The one error type at the HTTP edge: a status and a sentence a person can act on. Domain
//! errors map to it here, and only here; what went wrong inside is logged under a short
//! reference the person can quote, never shown.

use app::{api::ErrorBody, ports::Refusal};
use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};

use crate::{
    auth::{AuthError, GoogleError},
    sessions::SessionError,
};

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

    /// Something failed on our side: the detail goes to the log (inside the request's span)
    /// under a reference, and the person gets the reference.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        Self::failed(
            StatusCode::INTERNAL_SERVER_ERROR,
            "something went wrong on our side",
            error,
        )
    }

    /// `what` happened, for a reason that is ours to know: logged with a reference.
    fn failed(status: StatusCode, what: &str, error: impl std::fmt::Display) -> Self {
        let reference = crate::telemetry::reference();
        tracing::error!(%error, %reference, "request failed");
        Self::new(status, format!("{what}; try again (reference {reference})"))
    }

    pub fn sign_in_first() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "sign in first")
    }
}

/// A handler's panic (`CatchPanicLayer`), answered as any failure on our side: a 500 with a
/// reference, the panic's message in the log, and the connection kept rather than dropped.
pub fn panicked(panic: Box<dyn std::any::Any + Send>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("no message");
    ApiError::internal(format_args!("a handler panicked: {message}")).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(ErrorBody { error: self.message })).into_response()
    }
}

/// A server function's refusal: the same status and sentence.
impl From<ApiError> for Refusal {
    fn from(error: ApiError) -> Self {
        Self {
            status: error.status,
            message: error.message,
        }
    }
}

impl From<SessionError> for ApiError {
    fn from(error: SessionError) -> Self {
        let status = match &error {
            SessionError::AlreadyRunning | SessionError::AlreadyExtended | SessionError::NotStarted => {
                StatusCode::CONFLICT
            }
            SessionError::Full(_) => StatusCode::SERVICE_UNAVAILABLE,
            SessionError::TooManyStarts { .. } => StatusCode::TOO_MANY_REQUESTS,
            SessionError::NoSession | SessionError::UnknownTask(_) | SessionError::UnknownExam(_) => {
                StatusCode::NOT_FOUND
            }
            SessionError::NoAccess => StatusCode::FORBIDDEN,
            SessionError::ExamRules(_) => StatusCode::CONFLICT,
            SessionError::Cluster(_)
            | SessionError::Tasks(_)
            | SessionError::Terminal(_)
            | SessionError::Files(_) => {
                return Self::failed(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "your practice environment could not start; nothing was kept",
                    error,
                )
            }
            SessionError::Store(store) => return Self::internal(store),
        };
        Self::new(status, error.to_string())
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        let status = match &error {
            AuthError::InvalidEmail(_) | AuthError::WeakPassword => StatusCode::BAD_REQUEST,
            AuthError::TooManyTries => StatusCode::TOO_MANY_REQUESTS,
            AuthError::InvalidCode | AuthError::InvalidCredentials | AuthError::InvalidRefresh => {
                StatusCode::UNAUTHORIZED
            }
            AuthError::Google(google) => match google {
                GoogleError::NotConfigured => StatusCode::NOT_FOUND,
                GoogleError::UnknownState => StatusCode::BAD_REQUEST,
                GoogleError::Exchange(_) | GoogleError::InvalidIdToken(_) => StatusCode::UNAUTHORIZED,
                GoogleError::EmailNotVerified => StatusCode::FORBIDDEN,
                GoogleError::Store(store) => return Self::internal(store),
            },
            AuthError::Mail(mail) => {
                tracing::error!(error = %mail, "sign-in code not sent");
                return Self::new(
                    StatusCode::BAD_GATEWAY,
                    "we could not send the email; try again shortly",
                );
            }
            AuthError::Store(store) => return Self::internal(store),
        };
        Self::new(status, error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_detail_stays_in_the_log_and_the_answer_has_a_reference() {
        let error = ApiError::internal("database error: disk I/O error at /var/lib/ckad.db");
        assert_eq!(error.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!error.message.contains("disk"), "{}", error.message);
        let reference = error.message.rsplit(' ').next().unwrap().trim_end_matches(')');
        assert_eq!(reference.len(), 8, "{}", error.message);
        assert!(reference.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_500_with_a_reference() {
        use tower::ServiceExt as _;
        async fn handler() -> &'static str {
            panic!("index out of bounds")
        }
        let app = axum::Router::new()
            .route("/", axum::routing::get(handler))
            .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked));
        let request = axum::http::Request::new(axum::body::Body::empty());
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), 1024).await.unwrap();
        let body: ErrorBody = serde_json::from_slice(&body).unwrap();
        assert!(body.error.contains("(reference "), "{}", body.error);
        assert!(!body.error.contains("index"), "{}", body.error);
    }

    #[test]
    fn a_refused_sign_in_is_a_401_with_its_reason() {
        let error = ApiError::from(AuthError::InvalidCredentials);
        assert_eq!(
            (error.status, error.message.as_str()),
            (StatusCode::UNAUTHORIZED, "the email or the password is wrong")
        );
        let refusal = Refusal::from(ApiError::sign_in_first());
        assert_eq!(refusal.status, StatusCode::UNAUTHORIZED);
    }
}
