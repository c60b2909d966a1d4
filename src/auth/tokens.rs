//! Access tokens (HS256 JWTs, 15 minutes, issuer, audience and type checked, one algorithm
//! allowed) and refresh tokens (256 random bits, stored as SHA-256 hashes).

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use chrono::{Duration, Utc};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore as _;
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

pub const ACCESS_TTL: Duration = Duration::minutes(15);
pub const REFRESH_TTL: Duration = Duration::days(7);
const ISSUER: &str = "ckad-platform";
const AUDIENCE: &str = "ckad-platform/api";
const ACCESS_TYPE: &str = "access";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iss: String,
    aud: String,
    iat: i64,
    exp: i64,
    typ: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the access token is missing, invalid or expired")]
pub struct InvalidToken;

/// Signs and checks access tokens with the platform's key.
#[derive(Clone)]
pub struct AccessTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl AccessTokens {
    pub fn new(secret: &SecretString) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 0;
        Self {
            encoding: EncodingKey::from_secret(secret.expose_secret().as_bytes()),
            decoding: DecodingKey::from_secret(secret.expose_secret().as_bytes()),
            validation,
        }
    }

    /// A token naming `user_id`, valid for [`ACCESS_TTL`].
    pub fn issue(&self, user_id: &str) -> String {
        let now = Utc::now();
        let claims = Claims {
            sub: user_id.to_owned(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: now.timestamp(),
            exp: (now + ACCESS_TTL).timestamp(),
            typ: ACCESS_TYPE.into(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).expect("HS256 signing cannot fail")
    }

    /// The user a valid access token names.
    pub fn verify(&self, token: &str) -> Result<String, InvalidToken> {
        let data = decode::<Claims>(token, &self.decoding, &self.validation).map_err(|_| InvalidToken)?;
        (data.claims.typ == ACCESS_TYPE)
            .then_some(data.claims.sub)
            .ok_or(InvalidToken)
    }
}

/// A fresh refresh token: 256 random bits, URL-safe.
pub fn new_refresh_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// How a refresh token is stored. A fast hash is enough: the token has 256 bits of entropy.
pub fn hash_refresh_token(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> AccessTokens {
        AccessTokens::new(&SecretString::from("a-test-secret-of-at-least-32-bytes!"))
    }

    fn sign(claims: serde_json::Value, alg: Algorithm, key: &str) -> String {
        encode(
            &Header::new(alg),
            &claims,
            &EncodingKey::from_secret(key.as_bytes()),
        )
        .unwrap()
    }

    fn claims(sub: &str, exp_in: i64) -> serde_json::Value {
        let now = Utc::now().timestamp();
        serde_json::json!({ "sub": sub, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + exp_in, "typ": "access" })
    }

    #[test]
    fn an_issued_token_names_its_user() {
        let tokens = tokens();
        assert_eq!(tokens.verify(&tokens.issue("user-1")), Ok("user-1".into()));
    }

    #[test]
    fn unsigned_tokens_are_refused() {
        // {"alg":"none"} with the claims of a real token and no signature.
        let real = tokens().issue("user-1");
        let claims_part = real.split('.').nth(1).unwrap();
        let none = format!(
            "{}.{claims_part}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#)
        );
        assert_eq!(tokens().verify(&none), Err(InvalidToken));
    }

    #[test]
    fn a_token_signed_with_another_key_is_refused() {
        let forged = sign(
            claims("user-1", 600),
            Algorithm::HS256,
            "somebody-elses-secret-32-bytes-long",
        );
        assert_eq!(tokens().verify(&forged), Err(InvalidToken));
    }

    #[test]
    fn another_algorithm_is_refused_even_with_the_right_key() {
        let hs512 = sign(
            claims("user-1", 600),
            Algorithm::HS512,
            "a-test-secret-of-at-least-32-bytes!",
        );
        assert_eq!(tokens().verify(&hs512), Err(InvalidToken));
    }

    #[test]
    fn an_expired_token_is_refused() {
        let expired = sign(
            claims("user-1", -1),
            Algorithm::HS256,
            "a-test-secret-of-at-least-32-bytes!",
        );
        assert_eq!(tokens().verify(&expired), Err(InvalidToken));
    }

    #[test]
    fn the_wrong_audience_issuer_or_type_is_refused() {
        let key = "a-test-secret-of-at-least-32-bytes!";
        for (field, value) in [
            ("aud", "another-service"),
            ("iss", "someone-else"),
            ("typ", "refresh"),
        ] {
            let mut claims = claims("user-1", 600);
            claims[field] = value.into();
            assert_eq!(
                tokens().verify(&sign(claims, Algorithm::HS256, key)),
                Err(InvalidToken),
                "{field}"
            );
        }
    }

    #[test]
    fn an_edited_subject_breaks_the_signature() {
        let real = tokens().issue("user-1");
        let mut parts: Vec<String> = real.split('.').map(str::to_owned).collect();
        let mut claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
        claims["sub"] = "user-2".into();
        parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
        assert_eq!(tokens().verify(&parts.join(".")), Err(InvalidToken));
    }

    #[test]
    fn refresh_tokens_are_random_and_stored_hashed() {
        let (a, b) = (new_refresh_token(), new_refresh_token());
        assert_ne!(a, b);
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 32);
        assert_eq!(hash_refresh_token(&a).len(), 64);
        assert_ne!(hash_refresh_token(&a), a);
    }
}
