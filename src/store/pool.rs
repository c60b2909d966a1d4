//! The `pool_members` table: clusters (and their terminals) made ahead for the warm pool. A member
//! is recorded with its ports before anything is made for it, and handed to a session in one
//! transaction that records the session, moves the ports and deletes the member, so no member is
//! ever handed twice.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    conflict,
    ports::{take_ports, PortOwner},
    sessions::insert_provisioning,
    Dialect, NewSession, Store, StoreError,
};
use crate::domain::{PortRanges, PortSet, Session};

/// Made ahead, never handed to anyone.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PoolMember {
    /// Also the id of the session that will claim it (its terminal is labelled with it).
    pub id: String,
    pub cluster_name: String,
    pub status: PoolMemberStatus,
    pub created_at: DateTime<Utc>,
    pub ready_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "TEXT", rename_all = "lowercase")]
pub enum PoolMemberStatus {
    /// Recorded; its cluster and terminal are being made.
    Filling,
    /// Its cluster answers and its terminal runs: it may be claimed.
    Ready,
}

impl Store {
    /// Records a `filling` member for `cluster_name` with a free port of each kind, in one
    /// transaction.
    pub async fn insert_pool_member(
        &self,
        cluster_name: &str,
        ranges: &PortRanges,
        bound_on_host: impl Fn(u16) -> bool,
    ) -> Result<(PoolMember, PortSet), StoreError> {
        let mut tx = self.begin_write().await?;
        let member: PoolMember = on!(tx, |c| sqlx::query_as(
            "INSERT INTO pool_members (id, cluster_name, status, created_at)
             VALUES ($1, $2, 'filling', $3)
             RETURNING id, cluster_name, status, created_at, ready_at",
        )
        .bind(Uuid::new_v4().to_string())
        .bind(cluster_name)
        .bind(Utc::now())
        .fetch_one(c)
        .await)
        .map_err(conflict("a pool member with this cluster name"))?;
        let ports = take_ports(&mut tx, PortOwner::PoolMember(&member.id), ranges, bound_on_host).await?;
        tx.commit().await?;
        Ok((member, ports))
    }

    /// Marks a filling member ready; false when it is gone (removed meanwhile).
    pub async fn mark_pool_member_ready(&self, id: &str) -> Result<bool, StoreError> {
        let done = on!(self.db, |c| sqlx::query(
            "UPDATE pool_members SET status = 'ready', ready_at = $1
             WHERE id = $2 AND status = 'filling'",
        )
        .bind(Utc::now())
        .bind(id)
        .execute(c)
        .await
        .map(|done| done.rows_affected()))?;
        Ok(done == 1)
    }

    /// Every member, oldest first.
    pub async fn pool_members(&self) -> Result<Vec<PoolMember>, StoreError> {
        Ok(on!(self.db, |c| sqlx::query_as(
            "SELECT id, cluster_name, status, created_at, ready_at FROM pool_members ORDER BY created_at",
        )
        .fetch_all(c)
        .await)?)
    }

    /// Forgets a member and gives back its ports; false when it was gone (claimed meanwhile).
    pub async fn delete_pool_member(&self, id: &str) -> Result<bool, StoreError> {
        let done = on!(self.db, |c| sqlx::query("DELETE FROM pool_members WHERE id = $1")
            .bind(id)
            .execute(c)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(done == 1)
    }

    /// Hands the oldest ready member made after `fresh_since` to a new `provisioning` session,
    /// if fewer than `seats` sessions are live, in one transaction: the session takes the
    /// member's id, cluster and ports (`new.cluster_name` is not used) and the member is gone.
    /// `None` when no member is ready and fresh, or every seat is taken.
    pub async fn claim_pool_member(
        &self,
        new: NewSession<'_>,
        seats: u32,
        fresh_since: DateTime<Utc>,
    ) -> Result<Option<Session>, StoreError> {
        let mut tx = self.begin_write().await?;
        let member: Option<PoolMember> = match tx.dialect() {
            // The write lock, held since BEGIN IMMEDIATE, makes the read of the members and the
            // writes below one step for every other writer: two claims never read the same
            // member as free. Times are compared as times, not as the text they are stored as.
            Dialect::Sqlite(c) => {
                let ready: Vec<PoolMember> = sqlx::query_as(
                    "SELECT id, cluster_name, status, created_at, ready_at FROM pool_members
                     WHERE status = 'ready' ORDER BY created_at",
                )
                .fetch_all(c)
                .await?;
                ready.into_iter().find(|m| m.created_at > fresh_since)
            }
            // The member is locked until the transaction ends; parallel claims skip it and take
            // the next one instead of waiting for it.
            Dialect::Postgres(c) => {
                sqlx::query_as(
                    "SELECT id, cluster_name, status, created_at, ready_at FROM pool_members
                     WHERE status = 'ready' AND created_at > $1
                     ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED",
                )
                .bind(fresh_since)
                .fetch_optional(c)
                .await?
            }
        };
        let Some(member) = member else {
            return Ok(None);
        };
        let new = NewSession {
            cluster_name: &member.cluster_name,
            ..new
        };
        let session = insert_provisioning(&mut tx, &member.id, &new, seats).await?;
        let Some(session) = session else {
            // No seat: the member is let go at once, so that a claim right after finds it.
            tx.rollback().await?;
            return Ok(None);
        };
        on!(tx, |c| sqlx::query(
            "UPDATE allocated_ports SET session_id = $1, pool_member_id = NULL WHERE pool_member_id = $1",
        )
        .bind(&member.id)
        .execute(c)
        .await
        .map(|_| ()))?;
        on!(tx, |c| sqlx::query("DELETE FROM pool_members WHERE id = $1")
            .bind(&member.id)
            .execute(c)
            .await
            .map(|_| ()))?;
        tx.commit().await?;
        Ok(Some(session))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use chrono::Duration;

    use super::*;
    use crate::{domain::SessionStatus, store::testing::both_databases};

    fn nothing_bound(_: u16) -> bool {
        false
    }

    async fn ready_member(store: &Store, name: &str) -> PoolMember {
        let (member, _) = store
            .insert_pool_member(name, &PortRanges::default(), nothing_bound)
            .await
            .unwrap();
        assert!(store.mark_pool_member_ready(&member.id).await.unwrap());
        member
    }

    fn new_session(user_id: &str) -> NewSession<'_> {
        let now = Utc::now();
        NewSession {
            user_id,
            cluster_name: "ckad-unused",
            start_time: now,
            expires_at: now + Duration::hours(1),
            exam_id: None,
        }
    }

    both_databases! {
        /// Ten learners press Start at once on a pool of three; three get a member each, never the
        /// same one, and the members' ports go with them.
        async fn ten_parallel_claims_take_each_member_once(store: Store) {
            let mut members = HashSet::new();
            for n in 0..3 {
                members.insert(ready_member(&store, &format!("ckad-pool{n}")).await.cluster_name);
            }
            let mut users = Vec::new();
            for n in 0..10 {
                users.push(
                    store
                        .insert_user(&format!("u{n}@example.com"), "")
                        .await
                        .unwrap()
                        .id,
                );
            }
            let claims = users.iter().map(|user| {
                let (store, user) = (store.clone(), user.clone());
                tokio::spawn(async move {
                    store
                        .claim_pool_member(new_session(&user), 10, Utc::now() - Duration::hours(1))
                        .await
                        .unwrap()
                })
            });
            let claimed: Vec<Session> = futures_util::future::join_all(claims)
                .await
                .into_iter()
                .filter_map(Result::unwrap)
                .collect();
            let clusters: HashSet<String> = claimed.iter().map(|s| s.cluster_name.clone()).collect();
            assert_eq!(claimed.len(), 3, "{claimed:?}");
            assert_eq!(clusters, members);
            assert!(store.pool_members().await.unwrap().is_empty());
            for session in &claimed {
                assert_eq!(session.status, SessionStatus::Provisioning);
                assert!(store.ports_of(&session.id).await.unwrap().is_some());
            }
        }

        async fn filling_stale_members_and_full_hosts_are_not_claimed(store: Store) {
            let user = store.insert_user("ada@example.com", "").await.unwrap().id;
            let (filling, _) = store
                .insert_pool_member("ckad-filling", &PortRanges::default(), nothing_bound)
                .await
                .unwrap();
            let stale = ready_member(&store, "ckad-stale").await;
            let claim = |seats, fresh_since| store.claim_pool_member(new_session(&user), seats, fresh_since);
            assert_eq!(
                claim(10, stale.created_at).await.unwrap(),
                None,
                "only a stale member is ready"
            );
            let fresh = ready_member(&store, "ckad-fresh").await;
            assert_eq!(
                claim(0, stale.created_at).await.unwrap(),
                None,
                "no seat, no claim"
            );
            let claimed = claim(10, stale.created_at).await.unwrap().unwrap();
            assert_eq!(claimed.id, fresh.id);
            assert_eq!(claimed.cluster_name, "ckad-fresh");
            let left: Vec<String> = store
                .pool_members()
                .await
                .unwrap()
                .into_iter()
                .map(|m| m.id)
                .collect();
            assert_eq!(left, [filling.id.clone(), stale.id.clone()]);
            // Forgetting a member gives its ports back.
            assert!(store.delete_pool_member(&filling.id).await.unwrap());
            let held: i64 = on!(store.db, |c| sqlx::query_scalar(
                "SELECT COUNT(*) FROM allocated_ports WHERE pool_member_id IS NOT NULL"
            )
            .fetch_one(c)
            .await)
            .unwrap();
            assert_eq!(held, 3, "the stale member's ports");
        }

        /// Ten starts at once on a pool of five with two seats free: two members are claimed,
        /// three stay in the pool.
        async fn parallel_claims_take_no_more_seats_than_there_are(store: Store) {
            for n in 0..5 {
                ready_member(&store, &format!("ckad-pool{n}")).await;
            }
            let mut users = Vec::new();
            for n in 0..10 {
                users.push(store.insert_user(&format!("u{n}@example.com"), "").await.unwrap().id);
            }
            let claims = users.into_iter().map(|user| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .claim_pool_member(new_session(&user), 2, Utc::now() - Duration::hours(1))
                        .await
                        .unwrap()
                })
            });
            let claimed = futures_util::future::join_all(claims)
                .await
                .into_iter()
                .filter(|c| matches!(c, Ok(Some(_))))
                .count();
            assert_eq!(claimed, 2);
            assert_eq!(store.pool_members().await.unwrap().len(), 3);
            assert_eq!(store.count_live_sessions().await.unwrap(), 2);
        }
    }
}
