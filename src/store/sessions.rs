//! The `sessions` table: one row per practice session, written before any side effect is made so
//! that a crash at any point can be repaired from it.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{conflict, Lock, Store, StoreError, Tx};
use crate::domain::{Session, SessionStatus};

/// What is known about a session before anything is created for it.
#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    pub user_id: &'a str,
    pub cluster_name: &'a str,
    pub start_time: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub exam_id: Option<&'a str>,
}

const COLUMNS: &str = "id, user_id, status, start_time, expires_at, end_time, cluster_name, \
                       kubeconfig_path, terminal_container_id, extended, notes, exam_id, ending_since";

/// Records a new `provisioning` session with `id` inside `tx` if fewer than `seats` sessions are
/// live; `None` when full. The count and the insert are one statement, and on Postgres the
/// transaction holds the seats' lock: parallel starts never take more seats than there are. A
/// second live session of the user is a [`StoreError::Conflict`] (a unique index).
pub(super) async fn insert_provisioning(
    tx: &mut Tx,
    id: &str,
    new: &NewSession<'_>,
    seats: u32,
) -> Result<Option<Session>, StoreError> {
    tx.lock(Lock::Seats).await?;
    on!(tx, |c| sqlx::query_as(&format!(
        "INSERT INTO sessions (id, user_id, status, start_time, expires_at, cluster_name, exam_id)
         SELECT $1, $2, 'provisioning', $3, $4, $5, $6
         WHERE (SELECT COUNT(*) FROM sessions WHERE status IN ('provisioning', 'started')) < $7
         RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(new.user_id)
    .bind(new.start_time)
    .bind(new.expires_at)
    .bind(new.cluster_name)
    .bind(new.exam_id)
    .bind(i64::from(seats))
    .fetch_optional(c)
    .await)
    .map_err(conflict("a live session for this user"))
}

impl Store {
    /// Records a new `provisioning` session if fewer than `seats` sessions are live, so that
    /// parallel starts never take more seats than there are; `None` when full. Refused while the
    /// user has a live one.
    pub async fn insert_session(
        &self,
        new: NewSession<'_>,
        seats: u32,
    ) -> Result<Option<Session>, StoreError> {
        let mut tx = self.begin_write().await?;
        let id = Uuid::new_v4().to_string();
        let session = insert_provisioning(&mut tx, &id, &new, seats).await?;
        tx.commit().await?;
        Ok(session)
    }

    pub async fn session_by_id(&self, id: &str) -> Result<Option<Session>, StoreError> {
        Ok(on!(self.db, |c| sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM sessions WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(c)
        .await)?)
    }

    /// The user's provisioning or started session, if any.
    pub async fn live_session_for_user(&self, user_id: &str) -> Result<Option<Session>, StoreError> {
        Ok(on!(self.db, |c| sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM sessions
             WHERE user_id = $1 AND status IN ('provisioning', 'started')"
        ))
        .bind(user_id)
        .fetch_optional(c)
        .await)?)
    }

    /// Every provisioning or started session.
    pub async fn live_sessions(&self) -> Result<Vec<Session>, StoreError> {
        Ok(on!(self.db, |c| sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM sessions WHERE status IN ('provisioning', 'started') ORDER BY start_time"
        ))
        .fetch_all(c)
        .await)?)
    }

    /// Marks a provisioning session started, with its kubeconfig file, its terminal and the
    /// expiry counted from now. False when it was stopped (or its stop began) meanwhile.
    pub async fn mark_session_started(
        &self,
        id: &str,
        kubeconfig_path: &str,
        terminal: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = on!(self.db, |c| sqlx::query(
            "UPDATE sessions SET status = 'started', kubeconfig_path = $1, terminal_container_id = $2,
                 expires_at = $3
             WHERE id = $4 AND status = 'provisioning' AND ending_since IS NULL",
        )
        .bind(kubeconfig_path)
        .bind(terminal)
        .bind(expires_at)
        .bind(id)
        .execute(c)
        .await
        .map(|done| done.rows_affected()))?;
        Ok(done == 1)
    }

    /// Pushes a started session's expiry back by `by`, once; `None` when it is not started or
    /// was extended before.
    pub async fn extend_session(
        &self,
        id: &str,
        by: chrono::Duration,
    ) -> Result<Option<Session>, StoreError> {
        let session: Option<Session> = self.session_by_id(id).await?;
        let Some(session) = session else { return Ok(None) };
        Ok(on!(self.db, |c| sqlx::query_as(&format!(
            "UPDATE sessions SET expires_at = $1, extended = TRUE, warned_secs = NULL
             WHERE id = $2 AND status = 'started' AND NOT extended RETURNING {COLUMNS}"
        ))
        .bind(session.expires_at + by)
        .bind(id)
        .fetch_optional(c)
        .await)?)
    }

    /// Claims the warning for `threshold` (the time left it is given at) for a started session:
    /// true for the one clock (of every replica's) that should give it, false once it, or a
    /// later one, was given.
    pub async fn claim_warning(&self, id: &str, threshold: std::time::Duration) -> Result<bool, StoreError> {
        let secs = i64::try_from(threshold.as_secs()).unwrap_or(i64::MAX);
        let claimed = on!(self.db, |c| sqlx::query(
            "UPDATE sessions SET warned_secs = $1
             WHERE id = $2 AND status = 'started' AND (warned_secs IS NULL OR warned_secs > $1)"
        )
        .bind(secs)
        .bind(id)
        .execute(c)
        .await
        .map(|done| done.rows_affected()))?;
        Ok(claimed == 1)
    }

    /// Claims the removal of one started session whose time is up at `now` (the earliest), as
    /// [`Store::begin_ending`] does: of the sweepers of every replica, one gets each session.
    /// On Postgres a sweeper skips the rows another one is claiming; SQLite's one writer runs the
    /// statement alone, and compares the times as times (it stores them as text).
    pub async fn claim_expired_session(&self, now: DateTime<Utc>) -> Result<Option<Session>, StoreError> {
        let expired = match self.db.dialect() {
            super::Dialect::Sqlite(_) => {
                "julianday(expires_at) <= julianday($1) ORDER BY julianday(expires_at)"
            }
            super::Dialect::Postgres(_) => "expires_at <= $1 ORDER BY expires_at",
        };
        let skip_locked = match self.db.dialect() {
            super::Dialect::Sqlite(_) => "",
            super::Dialect::Postgres(_) => "FOR UPDATE SKIP LOCKED",
        };
        Ok(on!(self.db, |c| sqlx::query_as(&format!(
            "UPDATE sessions SET ending_since = $1
             WHERE id = (SELECT id FROM sessions
                         WHERE status = 'started' AND ending_since IS NULL AND {expired}
                         LIMIT 1 {skip_locked})
             RETURNING {COLUMNS}"
        ))
        .bind(now)
        .fetch_optional(c)
        .await)?)
    }

    /// The user's sessions that have ended, newest first.
    pub async fn session_history(&self, user_id: &str, limit: i64) -> Result<Vec<Session>, StoreError> {
        Ok(on!(self.db, |c| sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM sessions
             WHERE user_id = $1 AND status NOT IN ('provisioning', 'started')
             ORDER BY start_time DESC LIMIT $2"
        ))
        .bind(user_id)
        .bind(limit)
        .fetch_all(c)
        .await)?)
    }

    /// When the user's sessions started since `since`, oldest first (the start rate limit).
    pub async fn session_starts_since(
        &self,
        user_id: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<DateTime<Utc>>, StoreError> {
        let starts: Vec<DateTime<Utc>> = on!(self.db, |c| sqlx::query_scalar(
            "SELECT start_time FROM sessions WHERE user_id = $1"
        )
        .bind(user_id)
        .fetch_all(c)
        .await)?;
        let mut recent: Vec<_> = starts.into_iter().filter(|t| *t > since).collect();
        recent.sort();
        Ok(recent)
    }

    /// Every session's count by status.
    pub async fn count_sessions_by_status(&self) -> Result<Vec<(SessionStatus, i64)>, StoreError> {
        let counts: Vec<(String, i64)> = on!(self.db, |c| sqlx::query_as(
            "SELECT status, COUNT(*) FROM sessions GROUP BY status ORDER BY status"
        )
        .fetch_all(c)
        .await)?;
        counts
            .into_iter()
            .map(|(status, count)| {
                let status = status
                    .parse()
                    .map_err(|_| StoreError::Corrupt(format!("session status {status:?}")))?;
                Ok((status, count))
            })
            .collect()
    }

    pub async fn count_live_sessions(&self) -> Result<i64, StoreError> {
        Ok(on!(self.db, |c| sqlx::query_scalar(
            "SELECT COUNT(*) FROM sessions WHERE status IN ('provisioning', 'started')"
        )
        .fetch_one(c)
        .await)?)
    }

    /// Claims the removal of a live session: true for the one caller that gets it, false when
    /// it has ended or another removal is under way.
    pub async fn begin_ending(&self, id: &str) -> Result<bool, StoreError> {
        let done = on!(self.db, |c| sqlx::query(
            "UPDATE sessions SET ending_since = $1
             WHERE id = $2 AND status IN ('provisioning', 'started') AND ending_since IS NULL",
        )
        .bind(Utc::now())
        .bind(id)
        .execute(c)
        .await
        .map(|done| done.rows_affected()))?;
        Ok(done == 1)
    }

    /// Moves a live session to `status`, appending `note`; ending statuses stamp the end time.
    /// Returns false when the session was no longer live (someone else ended it first).
    pub async fn set_session_status(
        &self,
        id: &str,
        status: SessionStatus,
        note: &str,
    ) -> Result<bool, StoreError> {
        let end_time = (!status.is_live()).then(Utc::now);
        let done = on!(self.db, |c| sqlx::query(
            "UPDATE sessions
             SET status = $1, end_time = COALESCE($2, end_time),
                 notes = CASE WHEN $3 = '' THEN notes WHEN notes = '' THEN $3 ELSE notes || $4 END
             WHERE id = $5 AND status IN ('provisioning', 'started')",
        )
        .bind(status.as_str())
        .bind(end_time)
        .bind(note)
        .bind(format!("\n{note}"))
        .bind(id)
        .execute(c)
        .await
        .map(|done| done.rows_affected()))?;
        Ok(done == 1)
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::store::testing::both_databases;

    async fn user(store: &Store) -> String {
        store.insert_user("ada@example.com", "Ada").await.unwrap().id
    }

    /// Seats enough for any of these tests but the one about seats.
    const SEATS: u32 = 10;

    fn new_session<'a>(user_id: &'a str, cluster_name: &'a str) -> NewSession<'a> {
        let start_time = Utc::now();
        NewSession {
            user_id,
            cluster_name,
            start_time,
            expires_at: start_time + Duration::minutes(60),
            exam_id: None,
        }
    }

    both_databases! {
        async fn a_session_is_recorded_as_provisioning(store: Store) {
            let user_id = user(&store).await;
            let session = store
                .insert_session(new_session(&user_id, "ckad-a1b2c3"), SEATS)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(session.status, SessionStatus::Provisioning);
            assert!(!session.extended);
            assert_eq!(
                store.session_by_id(&session.id).await.unwrap(),
                Some(session.clone())
            );
            assert_eq!(
                store.live_session_for_user(&user_id).await.unwrap(),
                Some(session)
            );
            assert_eq!(store.count_live_sessions().await.unwrap(), 1);
        }

        async fn a_user_has_one_live_session_at_most(store: Store) {
            let user_id = user(&store).await;
            let first = store
                .insert_session(new_session(&user_id, "ckad-first"), SEATS)
                .await
                .unwrap()
                .unwrap();
            let second = store
                .insert_session(new_session(&user_id, "ckad-second"), SEATS)
                .await;
            assert!(matches!(second, Err(StoreError::Conflict(_))), "{second:?}");

            assert!(store
                .set_session_status(&first.id, SessionStatus::Ended, "stopped by user")
                .await
                .unwrap());
            store
                .insert_session(new_session(&user_id, "ckad-third"), SEATS)
                .await
                .unwrap()
                .unwrap();
        }

        async fn ending_stamps_the_end_time_once(store: Store) {
            let user_id = user(&store).await;
            let session = store
                .insert_session(new_session(&user_id, "ckad-a1b2c3"), SEATS)
                .await
                .unwrap()
                .unwrap();
            assert!(store
                .set_session_status(&session.id, SessionStatus::Started, "")
                .await
                .unwrap());
            assert!(store
                .set_session_status(&session.id, SessionStatus::Timeout, "ttl reached")
                .await
                .unwrap());
            // A second ending (a stop racing the sweeper) changes nothing.
            assert!(!store
                .set_session_status(&session.id, SessionStatus::Ended, "stopped")
                .await
                .unwrap());

            let ended = store.session_by_id(&session.id).await.unwrap().unwrap();
            assert_eq!(ended.status, SessionStatus::Timeout);
            assert!(ended.end_time.is_some());
            assert_eq!(ended.notes, "ttl reached");
            assert_eq!(store.live_session_for_user(&user_id).await.unwrap(), None);
        }

        /// Parallel starts never take more seats than there are: the count and the insert are one.
        async fn parallel_starts_take_no_more_seats_than_there_are(store: Store) {
            let mut users = Vec::new();
            for i in 0..20 {
                users.push((
                    store
                        .insert_user(&format!("u{i}@example.com"), "U")
                        .await
                        .unwrap()
                        .id,
                    format!("ckad-seat{i}"),
                ));
            }
            let starts = users.into_iter().map(|(user_id, cluster)| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .insert_session(new_session(&user_id, &cluster), 5)
                        .await
                        .unwrap()
                })
            });
            let recorded = futures_util::future::join_all(starts).await;
            assert_eq!(recorded.iter().filter(|s| matches!(s, Ok(Some(_)))).count(), 5);
            assert_eq!(store.count_live_sessions().await.unwrap(), 5);
        }

        /// Each expired started session is claimed once, the earliest first, even by sweepers
        /// claiming side by side; sessions not yet expired, not started, or already being
        /// removed are left alone.
        async fn expired_sessions_are_claimed_once_each(store: Store) {
            let now = Utc::now();
            let mut expired = Vec::new();
            for i in 0..20 {
                let user_id = store.insert_user(&format!("u{i}@example.com"), "U").await.unwrap().id;
                let cluster = format!("ckad-exp{i}");
                let mut new = new_session(&user_id, &cluster);
                new.expires_at = now - Duration::seconds(20 - i);
                let session = store.insert_session(new, 100).await.unwrap().unwrap();
                assert!(store.set_session_status(&session.id, SessionStatus::Started, "").await.unwrap());
                expired.push(session.id);
            }
            let mut untouched = Vec::new();
            for (i, (started, ending, expires_in)) in
                [(true, false, 60), (false, false, -60), (true, true, -60)].into_iter().enumerate()
            {
                let user_id = store.insert_user(&format!("v{i}@example.com"), "V").await.unwrap().id;
                let cluster = format!("ckad-keep{i}");
                let mut new = new_session(&user_id, &cluster);
                new.expires_at = now + Duration::seconds(expires_in);
                let session = store.insert_session(new, 100).await.unwrap().unwrap();
                if started {
                    store.set_session_status(&session.id, SessionStatus::Started, "").await.unwrap();
                }
                if ending {
                    assert!(store.begin_ending(&session.id).await.unwrap());
                }
                untouched.push(store.session_by_id(&session.id).await.unwrap().unwrap());
            }

            let first = store.claim_expired_session(now).await.unwrap().unwrap();
            assert_eq!(first.id, expired[0], "the earliest first");
            assert!(first.ending_since.is_some());
            assert!(!store.begin_ending(&first.id).await.unwrap(), "claimed: nobody else removes it");
            let sweepers = (0..8).map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut claimed = Vec::new();
                    while let Some(session) = store.claim_expired_session(now).await.unwrap() {
                        claimed.push(session.id);
                    }
                    claimed
                })
            });
            let mut claimed: Vec<String> = futures_util::future::join_all(sweepers)
                .await
                .into_iter()
                .flat_map(Result::unwrap)
                .collect();
            claimed.push(first.id);
            claimed.sort();
            expired.sort();
            assert_eq!(claimed, expired);
            for session in untouched {
                assert_eq!(store.session_by_id(&session.id).await.unwrap(), Some(session));
            }
        }

        /// Of the clocks of every replica, one gives each warning, in order (a later one first
        /// makes the earlier one moot); an extension lets them be given again.
        async fn each_warning_is_given_once_until_an_extension(store: Store) {
            let user_id = user(&store).await;
            let session = store
                .insert_session(new_session(&user_id, "ckad-warned"), SEATS)
                .await
                .unwrap()
                .unwrap();
            let minutes = |m: u64| std::time::Duration::from_secs(60 * m);
            assert!(!store.claim_warning(&session.id, minutes(15)).await.unwrap(), "not started yet");
            store.set_session_status(&session.id, SessionStatus::Started, "").await.unwrap();
            let clocks = (0..8).map(|_| {
                let (store, id) = (store.clone(), session.id.clone());
                tokio::spawn(async move { store.claim_warning(&id, minutes(15)).await.unwrap() })
            });
            let given = futures_util::future::join_all(clocks).await;
            assert_eq!(given.into_iter().filter(|g| *g.as_ref().unwrap()).count(), 1);
            assert!(!store.claim_warning(&session.id, minutes(30)).await.unwrap(), "15 came already");
            // Thresholds closer than a minute are told apart (both say "1 minute left").
            assert!(store.claim_warning(&session.id, std::time::Duration::from_secs(50)).await.unwrap());
            assert!(store.claim_warning(&session.id, std::time::Duration::from_secs(20)).await.unwrap());
            assert!(!store.claim_warning(&session.id, std::time::Duration::from_secs(20)).await.unwrap());
            store.extend_session(&session.id, Duration::minutes(30)).await.unwrap().unwrap();
            assert!(store.claim_warning(&session.id, minutes(15)).await.unwrap());
        }

        async fn sessions_need_a_real_user(store: Store) {
            let orphan = store
                .insert_session(new_session("no-such-user", "ckad-orphan"), SEATS)
                .await;
            assert!(matches!(orphan, Err(StoreError::Database(_))), "{orphan:?}");
        }

        /// One learner presses Start in ten tabs at once: one session is recorded, the other
        /// starts are told the learner already has one.
        async fn parallel_starts_of_one_user_record_one_session(store: Store) {
            let user_id = user(&store).await;
            let starts = (0..10).map(|n| {
                let (store, user_id) = (store.clone(), user_id.clone());
                tokio::spawn(async move {
                    let cluster = format!("ckad-tab{n}");
                    store.insert_session(new_session(&user_id, &cluster), SEATS).await
                })
            });
            let outcomes: Vec<_> = futures_util::future::join_all(starts)
                .await
                .into_iter()
                .map(Result::unwrap)
                .collect();
            let recorded = outcomes.iter().filter(|o| matches!(o, Ok(Some(_)))).count();
            let refused = outcomes
                .iter()
                .filter(|o| matches!(o, Err(StoreError::Conflict(_))))
                .count();
            assert_eq!((recorded, refused), (1, 9), "{outcomes:?}");
            assert_eq!(store.count_live_sessions().await.unwrap(), 1);
        }
    }
}
