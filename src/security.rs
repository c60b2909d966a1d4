//! Security headers. Pages get a Content-Security-Policy whose only inline-script allowance is the
//! per-request nonce Leptos puts on its hydration script.

use axum::http::{header, HeaderValue};
use leptos::prelude::use_context;
use leptos_axum::ResponseOptions;

/// The policy for a page rendered with `nonce`.
pub fn content_security_policy(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval' 'nonce-{nonce}'; \
         style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
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

/// Headers every response carries.
pub const STATIC_HEADERS: [(header::HeaderName, &str); 2] = [
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "strict-origin-when-cross-origin"),
];

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
