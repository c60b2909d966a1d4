//! The sign-in cookies: HttpOnly, Secure, SameSite=Lax. The refresh cookie goes with every
//! request, so that the server can renew an expired access token wherever it meets one.

use axum::http::{header, HeaderMap, HeaderValue};

use crate::auth::{SignedIn, ACCESS_TTL, REFRESH_TTL};

pub const ACCESS_COOKIE: &str = "ckad_access";
pub const REFRESH_COOKIE: &str = "ckad_refresh";
pub const REFRESH_PATH: &str = "/";
/// Where refresh cookies lived before: cleared on sign-out too.
const OLD_REFRESH_PATH: &str = "/api/auth";

/// The access and refresh cookies of a sign-in.
pub fn session_cookies(signed: &SignedIn) -> [HeaderValue; 2] {
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

/// The browser's proof, at Google's callback, that it started the sign-in: ten minutes, and only
/// on the paths of the Google flow.
pub const GOOGLE_COOKIE: &str = "ckad_google";
const GOOGLE_PATH: &str = "/api/auth/google";

pub fn google_cookie(secret: &str) -> HeaderValue {
    cookie(GOOGLE_COOKIE, secret, GOOGLE_PATH, 600)
}

pub fn cleared_google_cookie() -> HeaderValue {
    cookie(GOOGLE_COOKIE, "", GOOGLE_PATH, 0)
}

pub fn cleared_cookies() -> [HeaderValue; 3] {
    [
        cookie(ACCESS_COOKIE, "", "/", 0),
        cookie(REFRESH_COOKIE, "", REFRESH_PATH, 0),
        cookie(REFRESH_COOKIE, "", OLD_REFRESH_PATH, 0),
    ]
}

fn cookie(name: &str, value: &str, path: &str, max_age: i64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; Secure; SameSite=Lax"
    ))
    .expect("tokens are URL-safe")
}

/// A cookie of the request, by name.
pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
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
