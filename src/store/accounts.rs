//! Sign-in records: one-time codes and refresh tokens. Both are stored only as hashes.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Lock, Store, StoreError, Tx, User};

/// A code still waiting to be used.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PendingCode {
    pub id: String,
    pub code_hash: String,
    pub attempts: i64,
}

/// A refresh token's record, found by its hash.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
struct RefreshRecord {
    pub id: String,
    pub user_id: String,
    pub family_id: String,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub replaced_by: Option<String>,
}

#[derive(sqlx::FromRow)]
struct UserWithPassword {
    #[sqlx(flatten)]
    user: User,
    password_hash: Option<String>,
}

/// What became of a refresh token presented for rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// It was live; it is now replaced by the new token's record.
    Rotated { user_id: String },
    /// Unknown, expired, or logged out.
    Invalid,
    /// Already rotated moments ago (two tabs refreshing at once): refused, family kept.
    JustRotated,
    /// Rotated long ago and presented again: stolen. The whole family is now revoked.
    Replayed,
}

/// How often one email may be mailed codes and try them.
#[derive(Debug, Clone, Copy)]
pub struct CodeLimits {
    /// Wrong tries that kill a code.
    pub attempts_per_code: i64,
    /// Codes mailed to one email in a [`CodeLimits::window`].
    pub codes_per_window: i64,
    /// Tries (across its codes) of one email in a [`CodeLimits::window`].
    pub tries_per_window: i64,
    pub window: chrono::Duration,
    /// No new code sooner than this after the last one: the live one stays valid instead.
    pub mail_gap: chrono::Duration,
}

/// What a guess at an email's code may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeTry {
    /// Compare with this code; the try is already counted.
    Compare(PendingCode),
    /// No live code.
    NoCode,
    /// The code's or the email's tries are spent.
    TooMany,
}

impl Store {
    /// Stores a new code for `email` (earlier unused codes for it stop working), unless the last
    /// one is younger than the gap or the email had its codes for the window: false then, and the
    /// live code stays as it was.
    pub async fn insert_code(
        &self,
        email: &str,
        code_hash: &str,
        expires_at: DateTime<Utc>,
        limits: CodeLimits,
    ) -> Result<bool, StoreError> {
        let now = Utc::now();
        let mut tx = self.begin_write().await?;
        tx.lock(Lock::Email(email)).await?;
        let (recent, in_window): (i64, i64) = on!(tx, |c| sqlx::query_as(
            "SELECT COUNT(*) FILTER (WHERE created_at > $1), COUNT(*) FROM one_time_codes
             WHERE email = $2 AND created_at > $3",
        )
        .bind(now - limits.mail_gap)
        .bind(email)
        .bind(now - limits.window)
        .fetch_one(c)
        .await)?;
        if recent > 0 || in_window >= limits.codes_per_window {
            return Ok(false);
        }
        on!(tx, |c| sqlx::query(
            "UPDATE one_time_codes SET consumed_at = $1 WHERE email = $2 AND consumed_at IS NULL"
        )
        .bind(now)
        .bind(email)
        .execute(c)
        .await
        .map(|_| ()))?;
        on!(tx, |c| sqlx::query(
            "INSERT INTO one_time_codes (id, email, code_hash, expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(Uuid::new_v4().to_string())
        .bind(email)
        .bind(code_hash)
        .bind(expires_at)
        .bind(now)
        .execute(c)
        .await
        .map(|_| ()))?;
        tx.commit().await?;
        Ok(true)
    }

    /// Counts a try at the live code of `email` before it is compared, in one transaction, so
    /// that parallel guesses each count and none gets past the limits.
    pub async fn try_code(&self, email: &str, limits: CodeLimits) -> Result<CodeTry, StoreError> {
        let now = Utc::now();
        let mut tx = self.begin_write().await?;
        tx.lock(Lock::Email(email)).await?;
        let tries: i64 = on!(tx, |c| sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(attempts), 0) AS BIGINT) FROM one_time_codes
             WHERE email = $1 AND created_at > $2",
        )
        .bind(email)
        .bind(now - limits.window)
        .fetch_one(c)
        .await)?;
        let live: Option<PendingCode> = on!(tx, |c| sqlx::query_as(
            "SELECT id, code_hash, attempts FROM one_time_codes
             WHERE email = $1 AND consumed_at IS NULL AND expires_at > $2
             ORDER BY created_at DESC LIMIT 1",
        )
        .bind(email)
        .bind(now)
        .fetch_optional(c)
        .await)?;
        let outcome = match live {
            None => CodeTry::NoCode,
            Some(code) if code.attempts >= limits.attempts_per_code || tries >= limits.tries_per_window => {
                CodeTry::TooMany
            }
            Some(code) => {
                on!(tx, |c| sqlx::query(
                    "UPDATE one_time_codes SET attempts = attempts + 1 WHERE id = $1"
                )
                .bind(&code.id)
                .execute(c)
                .await
                .map(|_| ()))?;
                CodeTry::Compare(code)
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    /// Uses the code up; false if another request used it first.
    pub async fn consume_code(&self, code_id: &str) -> Result<bool, StoreError> {
        let done = on!(self.db, |c| sqlx::query(
            "UPDATE one_time_codes SET consumed_at = $1 WHERE id = $2 AND consumed_at IS NULL"
        )
        .bind(Utc::now())
        .bind(code_id)
        .execute(c)
        .await
        .map(|done| done.rows_affected()))?;
        Ok(done == 1)
    }

    /// Records that `user_id` proved their email just now. A password set before the email was
    /// ever proven is dropped with every sign-in made with it; `new_password_hash`, if given,
    /// becomes the password and ends every earlier sign-in (a new password signs out everywhere).
    pub async fn prove_email(
        &self,
        user_id: &str,
        new_password_hash: Option<&str>,
    ) -> Result<User, StoreError> {
        let now = Utc::now();
        let mut tx = self.begin_write().await?;
        tx.lock(Lock::User(user_id)).await?;
        let unproven_password: bool = on!(tx, |c| sqlx::query_scalar(
            "SELECT email_verified_at IS NULL AND password_hash IS NOT NULL FROM users WHERE id = $1",
        )
        .bind(user_id)
        .fetch_one(c)
        .await)?;
        if unproven_password || new_password_hash.is_some() {
            revoke_families_of(&mut tx, user_id, now).await?;
        }
        let user = on!(tx, |c| sqlx::query_as(
            "UPDATE users SET
                 password_hash = CASE WHEN $1 IS NOT NULL THEN $1
                                      WHEN email_verified_at IS NULL THEN NULL
                                      ELSE password_hash END,
                 email_verified_at = COALESCE(email_verified_at, $2)
             WHERE id = $3
             RETURNING id, email, name, created_at, email_verified_at",
        )
        .bind(new_password_hash)
        .bind(now)
        .bind(user_id)
        .fetch_one(c)
        .await)?;
        tx.commit().await?;
        Ok(user)
    }

    /// Ends every sign-in of `user_id` ("sign out everywhere").
    pub async fn revoke_user_families(&self, user_id: &str) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        revoke_families_of(&mut tx, user_id, Utc::now()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The user and their password hash (None for accounts that sign in by code or Google).
    pub async fn password_of(&self, email: &str) -> Result<Option<(User, Option<String>)>, StoreError> {
        let row: Option<UserWithPassword> = on!(self.db, |c| sqlx::query_as(
            "SELECT id, email, name, created_at, email_verified_at, password_hash FROM users
             WHERE email = $1",
        )
        .bind(email)
        .fetch_optional(c)
        .await)?;
        Ok(row.map(|row| (row.user, row.password_hash)))
    }

    /// Records a refresh token of `family_id` (a new sign-in starts a new family).
    pub async fn insert_refresh(
        &self,
        user_id: &str,
        family_id: &str,
        token_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        let id = Uuid::new_v4().to_string();
        on!(self.db, |c| sqlx::query(
            "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&id)
        .bind(user_id)
        .bind(family_id)
        .bind(token_hash)
        .bind(expires_at)
        .bind(Utc::now())
        .execute(c)
        .await
        .map(|_| ()))?;
        Ok(id)
    }

    /// Rotates the token with `old_hash` into one with `new_hash`, atomically, so two requests
    /// presenting the same token can never both succeed. `grace` tells a near-simultaneous second
    /// use (refused, family kept) from a replay (family revoked). The successor expires at
    /// `new_expires_at` but never later than `family_lifetime` after the family's first token:
    /// rotations do not keep a sign-in alive for ever.
    pub async fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: &str,
        new_expires_at: DateTime<Utc>,
        grace: chrono::Duration,
        family_lifetime: chrono::Duration,
    ) -> Result<Rotation, StoreError> {
        let now = Utc::now();
        let mut tx = self.begin_write().await?;
        tx.lock(Lock::Refresh(old_hash)).await?;
        let record: Option<RefreshRecord> = on!(tx, |c| sqlx::query_as(
            "SELECT id, user_id, family_id, expires_at, revoked_at, replaced_by FROM refresh_tokens
             WHERE token_hash = $1",
        )
        .bind(old_hash)
        .fetch_optional(c)
        .await)?;
        let Some(record) = record else {
            return Ok(Rotation::Invalid);
        };
        let outcome = match (&record.revoked_at, &record.replaced_by) {
            (Some(at), Some(_)) if now - *at <= grace => Rotation::JustRotated,
            (Some(_), Some(_)) => {
                on!(tx, |c| sqlx::query(
                    "UPDATE refresh_tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE family_id = $2",
                )
                .bind(now)
                .bind(&record.family_id)
                .execute(c)
                .await
                .map(|_| ()))?;
                Rotation::Replayed
            }
            (Some(_), None) => Rotation::Invalid,
            (None, _) if record.expires_at <= now => Rotation::Invalid,
            (None, _) => {
                let family_started: DateTime<Utc> = on!(tx, |c| sqlx::query_scalar(
                    "SELECT MIN(created_at) FROM refresh_tokens WHERE family_id = $1"
                )
                .bind(&record.family_id)
                .fetch_one(c)
                .await)?;
                let family_ends = family_started + family_lifetime;
                if family_ends <= now {
                    return Ok(Rotation::Invalid);
                }
                let new_expires_at = new_expires_at.min(family_ends);
                let successor = Uuid::new_v4().to_string();
                on!(tx, |c| sqlx::query(
                    "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, expires_at, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&successor)
                .bind(&record.user_id)
                .bind(&record.family_id)
                .bind(new_hash)
                .bind(new_expires_at)
                .bind(now)
                .execute(c)
                .await
                .map(|_| ()))?;
                on!(tx, |c| sqlx::query(
                    "UPDATE refresh_tokens SET revoked_at = $1, replaced_by = $2 WHERE id = $3"
                )
                .bind(now)
                .bind(&successor)
                .bind(&record.id)
                .execute(c)
                .await
                .map(|_| ()))?;
                Rotation::Rotated {
                    user_id: record.user_id,
                }
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    /// Revokes the family of the token with `token_hash` (logout): the user it signed in, or
    /// None if the token is unknown or its family already ended (nothing to revoke).
    pub async fn revoke_refresh_family(&self, token_hash: &str) -> Result<Option<String>, StoreError> {
        let now = Utc::now();
        let users: Vec<String> = on!(self.db, |c| sqlx::query_scalar(
            "UPDATE refresh_tokens SET revoked_at = $1
             WHERE revoked_at IS NULL AND expires_at > $1
               AND family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $2)
             RETURNING user_id",
        )
        .bind(now)
        .bind(token_hash)
        .fetch_all(c)
        .await)?;
        Ok(users.into_iter().next())
    }

    /// Deletes the sign-in records nobody can use any more: codes expired and older than
    /// `code_window` (the limits count younger ones), Google flows past their expiry, and refresh
    /// families whose every token expired (a live family keeps its rotated tokens, to spot
    /// replays and to date its start). Returns how many rows went.
    pub async fn purge_expired_sign_ins(&self, code_window: chrono::Duration) -> Result<u64, StoreError> {
        let now = Utc::now();
        let mut tx = self.begin().await?;
        let codes = on!(tx, |c| sqlx::query(
            "DELETE FROM one_time_codes WHERE expires_at <= $1 AND created_at <= $2"
        )
        .bind(now)
        .bind(now - code_window)
        .execute(c)
        .await
        .map(|done| done.rows_affected()))?;
        let flows = on!(tx, |c| sqlx::query(
            "DELETE FROM oauth_flows WHERE expires_at <= $1"
        )
        .bind(now)
        .execute(c)
        .await
        .map(|done| done.rows_affected()))?;
        let tokens = on!(tx, |c| sqlx::query(
            "DELETE FROM refresh_tokens WHERE family_id IN
                 (SELECT family_id FROM refresh_tokens GROUP BY family_id HAVING MAX(expires_at) <= $1)",
        )
        .bind(now)
        .execute(c)
        .await
        .map(|done| done.rows_affected()))?;
        tx.commit().await?;
        Ok(codes + flows + tokens)
    }
}

async fn revoke_families_of(tx: &mut Tx, user_id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
    on!(tx, |c| sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE user_id = $2"
    )
    .bind(now)
    .bind(user_id)
    .execute(c)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// A Google sign-in between its redirect and its callback.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OAuthFlow {
    pub pkce_verifier: String,
    pub nonce: String,
}

impl Store {
    pub async fn insert_oauth_flow(
        &self,
        state_hash: &str,
        flow: &OAuthFlow,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on!(self.db, |c| sqlx::query(
            "INSERT INTO oauth_flows (state_hash, pkce_verifier, nonce, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(state_hash)
        .bind(&flow.pkce_verifier)
        .bind(&flow.nonce)
        .bind(expires_at)
        .execute(c)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Takes the flow with `state_hash` if it has not expired: a state works once.
    pub async fn take_oauth_flow(&self, state_hash: &str) -> Result<Option<OAuthFlow>, StoreError> {
        Ok(on!(self.db, |c| sqlx::query_as(
            "DELETE FROM oauth_flows WHERE state_hash = $1 AND expires_at > $2
             RETURNING pkce_verifier, nonce",
        )
        .bind(state_hash)
        .bind(Utc::now())
        .fetch_optional(c)
        .await)?)
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::store::testing::both_databases;

    const LIMITS: CodeLimits = CodeLimits {
        attempts_per_code: 3,
        codes_per_window: 5,
        tries_per_window: 10,
        window: Duration::hours(1),
        mail_gap: Duration::seconds(30),
    };

    /// Runs `n` copies of `call` at once, each on a task of its own.
    async fn at_once<T, F>(n: usize, call: impl Fn() -> F) -> Vec<T>
    where
        T: Send + 'static,
        F: std::future::Future<Output = T> + Send + 'static,
    {
        let calls = (0..n).map(|_| tokio::spawn(call()));
        futures_util::future::join_all(calls)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect()
    }

    both_databases! {
        /// Two tabs refresh with the same token at once, ten times over: one rotation wins, the
        /// others are told it was just rotated, and the family lives on.
        async fn parallel_rotations_of_one_token_rotate_it_once(store: Store) {
            let user = store.insert_user("ada@example.com", "Ada").await.unwrap();
            let expires = Utc::now() + Duration::days(7);
            store.insert_refresh(&user.id, "family", "old", expires).await.unwrap();
            let outcomes = at_once(10, || {
                let store = store.clone();
                async move {
                    let new = Uuid::new_v4().to_string();
                    store
                        .rotate_refresh("old", &new, expires, Duration::seconds(30), Duration::days(30))
                        .await
                        .unwrap()
                }
            })
            .await;
            let rotated = outcomes.iter().filter(|o| matches!(o, Rotation::Rotated { .. })).count();
            let just = outcomes.iter().filter(|o| **o == Rotation::JustRotated).count();
            assert_eq!((rotated, just), (1, 9), "{outcomes:?}");
            let live: i64 = on!(store.db, |c| sqlx::query_scalar(
                "SELECT COUNT(*) FROM refresh_tokens WHERE revoked_at IS NULL"
            )
            .fetch_one(c)
            .await)
            .unwrap();
            assert_eq!(live, 1, "the one successor");
        }

        /// Ten guesses at once at a code that allows three: three are compared, seven refused.
        async fn parallel_guesses_each_count(store: Store) {
            let expires = Utc::now() + Duration::minutes(10);
            assert!(store.insert_code("ada@example.com", "hash", expires, LIMITS).await.unwrap());
            let tries = at_once(10, || {
                let store = store.clone();
                async move { store.try_code("ADA@example.com", LIMITS).await.unwrap() }
            })
            .await;
            let compared = tries.iter().filter(|t| matches!(t, CodeTry::Compare(_))).count();
            let refused = tries.iter().filter(|t| **t == CodeTry::TooMany).count();
            assert_eq!((compared, refused), (3, 7), "{tries:?}");
        }

        /// Ten requests for a code at once: one code is made (and mailed), the others wait out
        /// the gap.
        async fn parallel_code_requests_make_one_code(store: Store) {
            let expires = Utc::now() + Duration::minutes(10);
            let made = at_once(10, || {
                let store = store.clone();
                async move { store.insert_code("ada@example.com", "hash", expires, LIMITS).await.unwrap() }
            })
            .await;
            assert_eq!(made.iter().filter(|m| **m).count(), 1);
            let codes: i64 = on!(store.db, |c| sqlx::query_scalar("SELECT COUNT(*) FROM one_time_codes")
                .fetch_one(c)
                .await)
            .unwrap();
            assert_eq!(codes, 1);
        }
    }
}
