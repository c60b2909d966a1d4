//! Google sign-in: OAuth 2.0 authorization code flow with PKCE, state and nonce (oauth2 crate),
//! then the ID token verified here (signature against the provider's JWKS, issuer, audience,
//! expiry, nonce) and `email_verified` required. Endpoints are configurable, so tests run the
//! whole flow against a real OpenID Connect server process.

use chrono::{Duration, Utc};
use jsonwebtoken::{decode, decode_header, jwk::JwkSet, Algorithm, DecodingKey, Validation};
use oauth2::{
    basic::{
        BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse, BasicTokenType,
    },
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    ExtraTokenFields, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, StandardRevocableToken,
    StandardTokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};

use secrecy::{ExposeSecret as _, SecretString};

use super::tokens::hash_refresh_token;
use crate::store::{OAuthFlow, Store, StoreError};

/// How long a sign-in may sit on Google's consent screen.
const FLOW_TTL: Duration = Duration::minutes(10);

#[derive(Debug, Clone)]
pub struct GoogleSettings {
    pub client_id: String,
    pub client_secret: SecretString,
    pub auth_url: String,
    pub token_url: String,
    pub jwks_url: String,
    pub issuer: String,
    /// Where Google sends the browser back: `PUBLIC_URL` + `/api/auth/google/callback`.
    pub redirect_url: String,
}

#[derive(Debug, thiserror::Error)]
pub enum GoogleError {
    #[error("Google sign-in is not configured on this server")]
    NotConfigured,
    #[error("this sign-in link has expired or was already used: start again")]
    UnknownState,
    #[error("Google did not accept the sign-in: {0}")]
    Exchange(String),
    #[error("Google's answer could not be verified: {0}")]
    InvalidIdToken(String),
    #[error("your Google account's email is not verified")]
    EmailNotVerified,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct IdTokenField {
    id_token: String,
}
impl ExtraTokenFields for IdTokenField {}

type TokenResponse = StandardTokenResponse<IdTokenField, BasicTokenType>;
type OidcClient = oauth2::Client<
    BasicErrorResponse,
    TokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

#[derive(Debug, Deserialize)]
struct IdClaims {
    email: Option<String>,
    #[serde(default)]
    email_verified: bool,
    nonce: Option<String>,
    #[serde(default)]
    name: String,
}

/// A verified Google identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoogleIdentity {
    pub email: String,
    pub name: String,
}

#[derive(Clone)]
pub struct Google {
    settings: GoogleSettings,
    client: OidcClient,
    http: reqwest::Client,
}

impl Google {
    pub fn new(settings: GoogleSettings) -> Result<Self, String> {
        let url = |what: &str, value: &str| format!("{what} {value:?} is not a URL");
        let client = oauth2::Client::new(ClientId::new(settings.client_id.clone()))
            .set_client_secret(ClientSecret::new(
                settings.client_secret.expose_secret().to_owned(),
            ))
            .set_auth_uri(
                AuthUrl::new(settings.auth_url.clone())
                    .map_err(|_| url("GOOGLE_AUTH_URL", &settings.auth_url))?,
            )
            .set_token_uri(
                TokenUrl::new(settings.token_url.clone())
                    .map_err(|_| url("GOOGLE_TOKEN_URL", &settings.token_url))?,
            )
            .set_redirect_uri(
                RedirectUrl::new(settings.redirect_url.clone())
                    .map_err(|_| url("PUBLIC_URL", &settings.redirect_url))?,
            )
            .set_auth_type(AuthType::RequestBody);
        // The token endpoint must answer, not redirect (SSRF hardening, as oauth2 advises).
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            settings,
            client,
            http,
        })
    }

    /// Where to send the browser: Google's consent page, with a fresh state, PKCE challenge
    /// and nonce recorded for the callback; and the secret the browser keeps (in a short-lived
    /// cookie) to prove at the callback that it is the one that started, so that a callback URL
    /// replayed in another browser signs nobody in there.
    pub async fn start(&self, store: &Store) -> Result<(String, String), GoogleError> {
        let browser = CsrfToken::new_random().secret().clone();
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let nonce = CsrfToken::new_random().secret().clone();
        let (url, state) = self
            .client
            .authorize_url(CsrfToken::new_random)
            .add_scope(Scope::new("openid".into()))
            .add_scope(Scope::new("email".into()))
            .add_scope(Scope::new("profile".into()))
            .add_extra_param("nonce", &nonce)
            .set_pkce_challenge(challenge)
            .url();
        let flow = OAuthFlow {
            pkce_verifier: verifier.secret().clone(),
            nonce,
        };
        store
            .insert_oauth_flow(&flow_key(state.secret(), &browser), &flow, Utc::now() + FLOW_TTL)
            .await?;
        Ok((url.to_string(), browser))
    }

    /// Completes a callback: the state must be one we issued to this browser and unused; the code is exchanged
    /// with its PKCE verifier; the ID token must verify and carry our nonce and a verified email.
    pub async fn finish(
        &self,
        store: &Store,
        code: &str,
        state: &str,
        browser: &str,
    ) -> Result<GoogleIdentity, GoogleError> {
        let flow = store
            .take_oauth_flow(&flow_key(state, browser))
            .await?
            .ok_or(GoogleError::UnknownState)?;
        let response = self
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(flow.pkce_verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| GoogleError::Exchange(e.to_string()))?;
        let claims = self.verify_id_token(&response.extra_fields().id_token).await?;
        if claims.nonce.as_deref() != Some(flow.nonce.as_str()) {
            return Err(GoogleError::InvalidIdToken(
                "the nonce does not match this sign-in".into(),
            ));
        }
        if !claims.email_verified {
            return Err(GoogleError::EmailNotVerified);
        }
        let email = claims
            .email
            .ok_or_else(|| GoogleError::InvalidIdToken("no email".into()))?;
        Ok(GoogleIdentity {
            email,
            name: claims.name,
        })
    }

    async fn verify_id_token(&self, token: &str) -> Result<IdClaims, GoogleError> {
        let invalid = |e: &dyn std::fmt::Display| GoogleError::InvalidIdToken(e.to_string());
        let header = decode_header(token).map_err(|e| invalid(&e))?;
        let keys: JwkSet = self
            .http
            .get(&self.settings.jwks_url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| invalid(&e))?
            .json()
            .await
            .map_err(|e| invalid(&e))?;
        let jwk = match &header.kid {
            Some(kid) => keys.find(kid),
            None => keys.keys.first(),
        }
        .ok_or_else(|| invalid(&"no key of the provider signed it"))?;
        let key = DecodingKey::from_jwk(jwk).map_err(|e| invalid(&e))?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.client_id]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        Ok(decode::<IdClaims>(token, &key, &validation)
            .map_err(|e| invalid(&e))?
            .claims)
    }
}

/// How a flow is stored: its state and its browser's secret, hashed together.
fn flow_key(state: &str, browser: &str) -> String {
    hash_refresh_token(&format!("{state}\0{browser}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};

    #[test]
    fn pkce_uses_s256_of_the_verifier() {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        use sha2::{Digest as _, Sha256};
        let expected = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.secret().as_bytes()));
        assert_eq!(challenge.as_str(), expected);
        assert_eq!(challenge.method().as_str(), "S256");
    }
}
