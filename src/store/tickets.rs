//! `terminal_tickets`: the single-use tickets of the terminal socket, by their hash, so that a
//! ticket minted on one replica opens the socket on another, and opens it once.

use chrono::{DateTime, Utc};

use super::{Store, StoreError};

/// What a ticket opens, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TicketGrant {
    pub user_id: String,
    pub session_id: String,
}

impl Store {
    /// Records a ticket by its `hash` until `expires_at`, and forgets the tickets expired by `now`.
    pub async fn insert_terminal_ticket(
        &self,
        hash: &str,
        grant: &TicketGrant,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on!(self.db, |c| sqlx::query(
            "DELETE FROM terminal_tickets WHERE expires_at <= $1"
        )
        .bind(now.timestamp_millis())
        .execute(c)
        .await
        .map(|_| ()))?;
        on!(self.db, |c| sqlx::query(
            "INSERT INTO terminal_tickets (hash, user_id, session_id, expires_at) VALUES ($1, $2, $3, $4)"
        )
        .bind(hash)
        .bind(&grant.user_id)
        .bind(&grant.session_id)
        .bind(expires_at.timestamp_millis())
        .execute(c)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Spends the ticket of `hash`: its grant if it was live at `now`, and `None` for an unknown,
    /// spent or expired one. Taking it is one statement, so of parallel redemptions (on any
    /// replicas) exactly one gets the row.
    pub async fn redeem_terminal_ticket(
        &self,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<TicketGrant>, StoreError> {
        let taken: Option<(String, String, i64)> = on!(self.db, |c| sqlx::query_as(
            "DELETE FROM terminal_tickets WHERE hash = $1 RETURNING user_id, session_id, expires_at"
        )
        .bind(hash)
        .fetch_optional(c)
        .await)?;
        Ok(taken
            .filter(|(_, _, expires_at)| *expires_at > now.timestamp_millis())
            .map(|(user_id, session_id, _)| TicketGrant { user_id, session_id }))
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::store::testing::{both_databases, session_of};

    async fn grant(store: &Store) -> TicketGrant {
        let session = session_of(store, "ada@example.com", "ckad-a1b2c3", None).await;
        TicketGrant {
            user_id: session.user_id,
            session_id: session.id,
        }
    }

    both_databases! {
        async fn a_ticket_opens_once(store: Store) {
            let grant = grant(&store).await;
            let now = Utc::now();
            store
                .insert_terminal_ticket("h1", &grant, now + Duration::seconds(30), now)
                .await
                .unwrap();
            assert_eq!(store.redeem_terminal_ticket("h1", now).await.unwrap(), Some(grant));
            assert_eq!(store.redeem_terminal_ticket("h1", now).await.unwrap(), None);
            assert_eq!(store.redeem_terminal_ticket("made-up", now).await.unwrap(), None);
        }

        async fn an_expired_ticket_is_refused_and_spent(store: Store) {
            let grant = grant(&store).await;
            let now = Utc::now();
            let expires = now + Duration::seconds(30);
            store.insert_terminal_ticket("h1", &grant, expires, now).await.unwrap();
            assert_eq!(store.redeem_terminal_ticket("h1", expires).await.unwrap(), None);
            // Refused late, it is gone: not even an earlier clock opens it now.
            assert_eq!(store.redeem_terminal_ticket("h1", now).await.unwrap(), None);
        }

        async fn minting_forgets_expired_tickets_only(store: Store) {
            let grant = grant(&store).await;
            let now = Utc::now();
            store
                .insert_terminal_ticket("old", &grant, now + Duration::seconds(30), now)
                .await
                .unwrap();
            store
                .insert_terminal_ticket("live", &grant, now + Duration::seconds(90), now)
                .await
                .unwrap();
            let later = now + Duration::seconds(60);
            store
                .insert_terminal_ticket("new", &grant, later + Duration::seconds(30), later)
                .await
                .unwrap();
            let left: i64 = on!(store.db, |c| sqlx::query_scalar("SELECT COUNT(*) FROM terminal_tickets")
                .fetch_one(c)
                .await)
            .unwrap();
            assert_eq!(left, 2);
            assert_eq!(store.redeem_terminal_ticket("live", later).await.unwrap(), Some(grant));
        }

        /// A hundred sockets opened with one ticket at once: one opens.
        async fn parallel_redemptions_of_one_ticket_grant_it_once(store: Store) {
            let grant = grant(&store).await;
            let now = Utc::now();
            store
                .insert_terminal_ticket("h1", &grant, now + Duration::seconds(30), now)
                .await
                .unwrap();
            let redemptions = (0..100).map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.redeem_terminal_ticket("h1", Utc::now()).await.unwrap() })
            });
            let granted: Vec<TicketGrant> = futures_util::future::join_all(redemptions)
                .await
                .into_iter()
                .filter_map(Result::unwrap)
                .collect();
            assert_eq!(granted, [grant]);
        }

        /// A ticket goes with its session.
        async fn a_deleted_sessions_tickets_go_with_it(store: Store) {
            let grant = grant(&store).await;
            let now = Utc::now();
            store
                .insert_terminal_ticket("h1", &grant, now + Duration::seconds(30), now)
                .await
                .unwrap();
            on!(store.db, |c| sqlx::query("DELETE FROM sessions WHERE id = $1")
                .bind(&grant.session_id)
                .execute(c)
                .await
                .map(|_| ()))
            .unwrap();
            assert_eq!(store.redeem_terminal_ticket("h1", now).await.unwrap(), None);
        }
    }
}
