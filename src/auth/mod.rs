//! Accounts and sign-in: email one-time codes, passwords, access and refresh tokens. Plain Rust
//! over the store and a mailer; the HTTP side lives in `routes::auth`.

mod codes;
mod google;
mod passwords;
mod tokens;

use std::{collections::HashMap, sync::Arc, time::Instant};

use chrono::{Duration, Utc};
use secrecy::SecretString;
use tokio::sync::Mutex;

pub use google::{Google, GoogleError, GoogleSettings};
pub use passwords::{MAX_LENGTH as PASSWORD_MAX, MIN_LENGTH as PASSWORD_MIN};
pub use tokens::{AccessTokens, InvalidToken, ACCESS_TTL, REFRESH_TTL};

use crate::{
    domain::{Email, InvalidEmail},
    mail::{MailError, Mailer},
    store::{CodeLimits, CodeTry, Rotation, Store, StoreError, User},
};

/// How long a code works.
pub const CODE_TTL: Duration = Duration::minutes(10);
/// Five tries kill a code; an email gets five codes and ten tries an hour, and a new code no
/// sooner than a minute after the last (which stays valid meanwhile).
pub const CODE_LIMITS: CodeLimits = CodeLimits {
    attempts_per_code: 5,
    codes_per_window: 5,
    tries_per_window: 10,
    window: Duration::hours(1),
    mail_gap: Duration::minutes(1),
};
/// A refresh token presented again this soon after its rotation is a race (two tabs), not theft.
const REFRESH_GRACE: Duration = Duration::seconds(10);
/// A sign-in ends this long after it began, however often its tokens were rotated.
pub const FAMILY_LIFETIME: Duration = Duration::days(30);

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    InvalidEmail(#[from] InvalidEmail),
    #[error("that code is wrong or has expired: ask for a new one")]
    InvalidCode,
    #[error("too many tries for this email: ask for a new code later")]
    TooManyTries,
    #[error("the email or the password is wrong")]
    InvalidCredentials,
    #[error("a password needs {PASSWORD_MIN} to {PASSWORD_MAX} characters")]
    WeakPassword,
    #[error("your sign-in has expired: sign in again")]
    InvalidRefresh,
    #[error(transparent)]
    Google(#[from] GoogleError),
    #[error(transparent)]
    Mail(#[from] MailError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn check_password_length(password: &str) -> Result<(), AuthError> {
    if (PASSWORD_MIN..=PASSWORD_MAX).contains(&password.chars().count()) {
        Ok(())
    } else {
        Err(AuthError::WeakPassword)
    }
}

/// A signed-in user and the tokens that prove it.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: User,
    pub access_token: String,
    pub refresh_token: String,
}

#[derive(Clone)]
pub struct Auth {
    store: Store,
    secret: SecretString,
    tokens: AccessTokens,
    mailer: Arc<dyn Mailer>,
    google: Option<Google>,
    /// The browser renewals of the last [`REFRESH_GRACE`], by the hash of the refresh token each
    /// replaced: the requests a page sends at once with the same expired cookie share one
    /// successor instead of racing to rotate it.
    renewals: Arc<Mutex<HashMap<String, (Instant, SignedIn)>>>,
    hasher: passwords::Hasher,
}

impl Auth {
    pub fn new(store: Store, secret: SecretString, mailer: Arc<dyn Mailer>, google: Option<Google>) -> Self {
        Self {
            tokens: AccessTokens::new(&secret),
            store,
            secret,
            mailer,
            google,
            renewals: Arc::default(),
            hasher: passwords::Hasher::default(),
        }
    }

    fn google(&self) -> Result<&Google, AuthError> {
        self.google
            .as_ref()
            .ok_or(AuthError::Google(GoogleError::NotConfigured))
    }

    /// The Google consent page to send the browser to.
    /// Google's consent page, and the secret the browser must bring back to the callback.
    pub async fn google_start(&self) -> Result<(String, String), AuthError> {
        Ok(self.google()?.start(&self.store).await?)
    }

    /// Signs in the verified Google identity, linked by email to an existing account or a new one.
    pub async fn google_finish(&self, code: &str, state: &str, browser: &str) -> Result<SignedIn, AuthError> {
        let identity = self.google()?.finish(&self.store, code, state, browser).await?;
        let email = Email::parse(&identity.email)?;
        let user = self.user_for(&email, &identity.name).await?;
        let user = self.store.prove_email(&user.id, None).await?;
        self.sign_in(user).await
    }

    /// The account of `email`, made on its first sign-in.
    async fn user_for(&self, email: &Email, name: &str) -> Result<User, AuthError> {
        if let Some(user) = self.store.user_by_email(email.as_str()).await? {
            return Ok(user);
        }
        match self.store.insert_user(email.as_str(), name).await {
            // Another sign-in of the same person made it a moment ago.
            Err(StoreError::Conflict(_)) => Ok(self
                .store
                .user_by_email(email.as_str())
                .await?
                .ok_or(AuthError::InvalidCode)?),
            created => Ok(created?),
        }
    }

    /// Mails a fresh code. Known and unknown emails are treated alike: the first verified code
    /// creates the account. Within a minute of the last code, or past the email's codes for the
    /// hour, nothing is mailed and the answer is the same (the live code still works).
    pub async fn request_code(&self, email: &str) -> Result<(), AuthError> {
        let email = Email::parse(email)?;
        let code = codes::new_code();
        let hash = codes::hash_code(&self.secret, &email, &code);
        let stored = self
            .store
            .insert_code(email.as_str(), &hash, Utc::now() + CODE_TTL, CODE_LIMITS)
            .await?;
        if stored {
            self.mailer.send_code(&email, &code).await?;
        } else {
            tracing::info!("a code was asked for again too soon: none mailed");
        }
        Ok(())
    }

    /// Uses up the live code of `email` if `code` is it. Every try is counted before the
    /// comparison; see [`CODE_LIMITS`].
    async fn take_code(&self, email: &Email, code: &str) -> Result<(), AuthError> {
        let pending = match self.store.try_code(email.as_str(), CODE_LIMITS).await? {
            CodeTry::Compare(pending) => pending,
            CodeTry::NoCode => return Err(AuthError::InvalidCode),
            CodeTry::TooMany => return Err(AuthError::TooManyTries),
        };
        if !codes::code_matches(&self.secret, email, code.trim(), &pending.code_hash)
            || !self.store.consume_code(&pending.id).await?
        {
            return Err(AuthError::InvalidCode);
        }
        Ok(())
    }

    /// Signs in with a mailed code, which proves the email (and makes the account on first use).
    pub async fn verify_code(&self, email: &str, code: &str) -> Result<SignedIn, AuthError> {
        let email = Email::parse(email)?;
        self.take_code(&email, code).await?;
        let user = self.user_for(&email, "").await?;
        let user = self.store.prove_email(&user.id, None).await?;
        self.sign_in(user).await
    }

    /// The first step of a password registration (or a reset): checks the password's length and
    /// mails a code. Nothing is stored but the code, and the answer is the same whether the email
    /// has an account or not; [`Auth::set_password`] with the code finishes it.
    pub async fn register(&self, email: &str, password: &str) -> Result<(), AuthError> {
        check_password_length(password)?;
        self.request_code(email).await
    }

    /// Sets the password of `email`, proven by its mailed code, and signs in; every earlier
    /// sign-in of the account ends. This finishes a registration and is the password reset.
    pub async fn set_password(
        &self,
        email: &str,
        code: &str,
        password: &str,
        name: &str,
    ) -> Result<SignedIn, AuthError> {
        let email = Email::parse(email)?;
        check_password_length(password)?;
        self.take_code(&email, code).await?;
        let hash = self.hasher.hash(password).await;
        let user = self.user_for(&email, name.trim()).await?;
        let user = self.store.prove_email(&user.id, Some(&hash)).await?;
        self.sign_in(user).await
    }

    /// Ends every sign-in of the user.
    pub async fn sign_out_everywhere(&self, user_id: &str) -> Result<(), AuthError> {
        Ok(self.store.revoke_user_families(user_id).await?)
    }

    pub async fn login(&self, email: &str, password: &str) -> Result<SignedIn, AuthError> {
        let email = Email::parse(email).map_err(|_| AuthError::InvalidCredentials)?;
        // No password outside the lengths a registration allows is anyone's: never hashed.
        check_password_length(password).map_err(|_| AuthError::InvalidCredentials)?;
        let found = self.store.password_of(email.as_str()).await?;
        // A password works only on an account whose email is proven.
        let stored = found
            .as_ref()
            .filter(|(user, _)| user.email_verified_at.is_some())
            .and_then(|(_, hash)| hash.clone());
        if !self.hasher.verify(password, stored).await {
            return Err(AuthError::InvalidCredentials);
        }
        let (user, _) = found.expect("a matching password has an account");
        self.sign_in(user).await
    }

    /// Trades a refresh token for a new pair. Every token works once; presenting a rotated token
    /// again later revokes every token descended from the same sign-in.
    pub async fn refresh(&self, refresh_token: &str) -> Result<SignedIn, AuthError> {
        let successor = tokens::new_refresh_token();
        let rotation = self
            .store
            .rotate_refresh(
                &tokens::hash_refresh_token(refresh_token),
                &tokens::hash_refresh_token(&successor),
                Utc::now() + REFRESH_TTL,
                REFRESH_GRACE,
                FAMILY_LIFETIME,
            )
            .await?;
        let user_id = match rotation {
            Rotation::Rotated { user_id } => user_id,
            Rotation::Replayed => {
                tracing::warn!("a rotated refresh token was replayed: its family is revoked");
                return Err(AuthError::InvalidRefresh);
            }
            Rotation::JustRotated | Rotation::Invalid => return Err(AuthError::InvalidRefresh),
        };
        let user = self
            .store
            .user_by_id(&user_id)
            .await?
            .filter(|user| user.email_verified_at.is_some())
            .ok_or(AuthError::InvalidRefresh)?;
        Ok(SignedIn {
            access_token: self.tokens.issue(&user.id),
            refresh_token: successor,
            user,
        })
    }

    /// A browser's sign-in renewed from its refresh cookie: [`Auth::refresh`], except that the
    /// same token presented again within [`REFRESH_GRACE`] gets the same successor.
    pub async fn renew(&self, refresh_token: &str) -> Result<SignedIn, AuthError> {
        let key = tokens::hash_refresh_token(refresh_token);
        let grace = REFRESH_GRACE.to_std().expect("a positive grace");
        let mut recent = self.renewals.lock().await;
        recent.retain(|_, (at, _)| at.elapsed() < grace);
        if let Some((_, signed)) = recent.get(&key) {
            return Ok(signed.clone());
        }
        let signed = self.refresh(refresh_token).await?;
        recent.insert(key, (Instant::now(), signed.clone()));
        Ok(signed)
    }

    /// Revokes the sign-in the refresh token belongs to, and says whose it was; None when
    /// there was nothing live to revoke.
    pub async fn logout(&self, refresh_token: &str) -> Result<Option<String>, AuthError> {
        Ok(self
            .store
            .revoke_refresh_family(&tokens::hash_refresh_token(refresh_token))
            .await?)
    }

    /// Deletes expired codes, Google flows and refresh families every `every` until `stopping`:
    /// the tables hold what can still be used, not every sign-in ever made.
    pub async fn sweep(&self, every: std::time::Duration, stopping: tokio_util::sync::CancellationToken) {
        loop {
            match self.store.purge_expired_sign_ins(CODE_LIMITS.window).await {
                Ok(0) => {}
                Ok(purged) => tracing::info!(purged, "expired sign-in records deleted"),
                Err(error) => tracing::error!(%error, "the sweeper cannot delete expired sign-in records"),
            }
            tokio::select! {
                () = stopping.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }

    /// The user an access token names.
    /// The user with this id, if they (still) exist.
    pub async fn user(&self, id: &str) -> Result<Option<User>, AuthError> {
        Ok(self.store.user_by_id(id).await?)
    }

    pub fn authenticate(&self, access_token: &str) -> Result<String, InvalidToken> {
        self.tokens.verify(access_token)
    }

    /// A new sign-in: a new refresh-token family. Only a proven email signs in.
    async fn sign_in(&self, user: User) -> Result<SignedIn, AuthError> {
        if user.email_verified_at.is_none() {
            return Err(AuthError::InvalidCredentials);
        }
        let refresh_token = tokens::new_refresh_token();
        let family = uuid::Uuid::new_v4().to_string();
        let hash = tokens::hash_refresh_token(&refresh_token);
        self.store
            .insert_refresh(&user.id, &family, &hash, Utc::now() + REFRESH_TTL)
            .await?;
        Ok(SignedIn {
            access_token: self.tokens.issue(&user.id),
            refresh_token,
            user,
        })
    }
}
