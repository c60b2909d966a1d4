//! Security headers. Pages get a Content-Security-Policy whose only inline-script allowance is the
//! per-request nonce Leptos puts on its hydration script.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{header, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use leptos::prelude::use_context;
use leptos_axum::ResponseOptions;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::routes::ApiError;

/// The policy for a page rendered with `nonce`.
pub fn content_security_policy(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval' 'nonce-{nonce}'; \
         style-src 'self' 'nonce-{nonce}'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
         object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    )
}

/// Run inside every Leptos render: sets the page's policy from the nonce leptos_axum made.
pub fn page_context() {
    if let (Some(nonce), Some(response)) = (leptos::nonce::use_nonce(), use_context::<ResponseOptions>()) {
        if let Ok(value) = HeaderValue::from_str(&content_security_policy(&nonce)) {
            response.insert_header(header::CONTENT_SECURITY_POLICY, value);
        }
    }
}

/// API answers (server functions included) carry tokens and learners' data: no cache, the
/// browser's or a proxy's, may keep them.
pub async fn no_store(request: Request, next: Next) -> Response {
    let api = request.uri().path().starts_with("/api/");
    let mut response = next.run(request).await;
    if api {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Headers every response carries.
pub const STATIC_HEADERS: [(header::HeaderName, &str); 2] = [
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "strict-origin-when-cross-origin"),
];

/// HSTS for sites served over TLS: two years, subdomains included.
pub const HSTS: &str = "max-age=63072000; includeSubDomains";

/// State-changing API requests (server functions included) must come from the site itself: a
/// foreign `Origin` is refused, and so is a request carrying our cookies but no `Origin` at all.
/// API clients using `Authorization: Bearer` and no cookies are not browsers and pass.
pub async fn check_origin(State(origin): State<Arc<str>>, request: Request, next: Next) -> Response {
    let changes_state = request.uri().path().starts_with("/api/")
        && !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let headers = request.headers();
    let sent_origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let has_our_cookies = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|cookies| cookies.contains("ckad_"));
    let refused = changes_state
        && match sent_origin {
            Some(sent) => sent != &*origin,
            None => has_our_cookies,
        };
    if refused {
        tracing::warn!(
            origin = sent_origin.unwrap_or("none"),
            "cross-site request refused"
        );
        return ApiError::new(StatusCode::FORBIDDEN, "cross-site request refused").into_response();
    }
    next.run(request).await
}

/// CORS for the site's own origin only, with credentials.
pub fn cors(origin: &str) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::list([
            HeaderValue::from_str(origin).expect("a validated origin is a header value")
        ]))
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_never_allows_unsafe_inline_or_eval() {
        let policy = content_security_policy("abc");
        assert!(policy.contains("script-src 'self' 'wasm-unsafe-eval' 'nonce-abc'"));
        assert!(!policy.contains("unsafe-inline"));
        assert!(!policy.contains("'unsafe-eval'"));
        for directive in [
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
            "connect-src 'self'",
        ] {
            assert!(policy.contains(directive), "{directive} missing from {policy}");
        }
    }
}
