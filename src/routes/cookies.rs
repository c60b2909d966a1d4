//! The sign-in cookies (axum-extra's): HttpOnly, Secure, SameSite=Lax. The refresh cookie goes
//! with every request, so that the server can renew an expired access token wherever it meets one.

use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

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

/// Both refresh cookies (today's path and the old one) share a name, so these are `Set-Cookie`
/// values rather than a jar, which holds one cookie per name.
pub fn cleared_cookies() -> [HeaderValue; 3] {
    [
        cookie(ACCESS_COOKIE, "", "/", 0),
        cookie(REFRESH_COOKIE, "", REFRESH_PATH, 0),
        cookie(REFRESH_COOKIE, "", OLD_REFRESH_PATH, 0),
    ]
}

/// `Set-Cookie` headers for a response.
pub fn set_cookies<const N: usize>(values: [HeaderValue; N]) -> [(HeaderName, HeaderValue); N] {
    values.map(|value| (header::SET_COOKIE, value))
}

fn cookie(name: &'static str, value: &str, path: &'static str, max_age: i64) -> HeaderValue {
    let cookie = Cookie::build((name, value.to_owned()))
        .path(path)
        .max_age(time::Duration::seconds(max_age))
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Lax)
        .build();
    HeaderValue::from_str(&cookie.encoded().to_string()).expect("an encoded cookie is a valid header")
}

/// A cookie of the request, by name.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    CookieJar::from_headers(headers)
        .get(name)
        .map(|cookie| cookie.value().to_owned())
}

/// The request's `Cookie` header with `replacements` in place of the cookies of those names.
pub fn with_cookies(headers: &HeaderMap, replacements: &[(&'static str, &str)]) -> HeaderValue {
    let jar = replacements
        .iter()
        .fold(CookieJar::from_headers(headers), |jar, (name, value)| {
            jar.add(Cookie::new(*name, (*value).to_owned()))
        });
    let pairs: Vec<String> = jar
        .iter()
        .map(|cookie| cookie.stripped().encoded().to_string())
        .collect();
    HeaderValue::from_str(&pairs.join("; ")).expect("encoded cookies are a valid header")
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
        assert_eq!(cookie_value(&headers, ACCESS_COOKIE).as_deref(), Some("abc.def"));
        assert_eq!(cookie_value(&headers, REFRESH_COOKIE).as_deref(), Some("xyz"));
        assert_eq!(cookie_value(&headers, "ckad"), None);
    }

    #[test]
    fn cookies_are_http_only_secure_and_lax() {
        let value = cookie(ACCESS_COOKIE, "t", "/", 900);
        let parsed = Cookie::parse(value.to_str().unwrap()).unwrap();
        assert_eq!((parsed.name(), parsed.value()), (ACCESS_COOKIE, "t"));
        assert_eq!(parsed.path(), Some("/"));
        assert_eq!(parsed.max_age(), Some(time::Duration::seconds(900)));
        assert_eq!(parsed.http_only(), Some(true));
        assert_eq!(parsed.secure(), Some(true));
        assert_eq!(parsed.same_site(), Some(SameSite::Lax));
        assert_eq!(parsed.expires(), None, "Max-Age alone, as before");
    }

    #[test]
    fn replaced_cookies_keep_the_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; ckad_access=old; ckad_refresh=old"),
        );
        let replaced = with_cookies(&headers, &[(ACCESS_COOKIE, "a"), (REFRESH_COOKIE, "r")]);
        let mut request = HeaderMap::new();
        request.insert(header::COOKIE, replaced);
        assert_eq!(cookie_value(&request, "theme").as_deref(), Some("dark"));
        assert_eq!(cookie_value(&request, ACCESS_COOKIE).as_deref(), Some("a"));
        assert_eq!(cookie_value(&request, REFRESH_COOKIE).as_deref(), Some("r"));
    }
}
