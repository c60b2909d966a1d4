//! Replicas telling each other what happened, through the database they share: PostgreSQL's
//! `NOTIFY` on one channel, heard by a `LISTEN` on every replica (the sender's too). On SQLite one
//! process is the whole platform, so there is no one else to tell.

use sqlx::postgres::PgListener;

use super::{Dialect, Store, StoreError};

/// The one channel every replica listens on.
const CHANNEL: &str = "ckad_notices";

/// A replica's ear on the channel: one connection of the pool, taken again after a loss.
pub struct Notices(PgListener);

impl Store {
    /// Whether other replicas may share this database (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        matches!(self.db, Dialect::Postgres(_))
    }

    /// Sends `payload` (under 8000 bytes, PostgreSQL's limit) to every replica listening, this one
    /// included, in the order of the calls that returned. On SQLite there is no one to tell.
    pub async fn notify(&self, payload: &str) -> Result<(), StoreError> {
        if let Dialect::Postgres(pool) = &self.db {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(payload)
                .execute(pool)
                .await?;
        }
        Ok(())
    }

    /// Listens on the channel from now on; on SQLite, `None`.
    pub async fn listen(&self) -> Result<Option<Notices>, StoreError> {
        let Dialect::Postgres(pool) = &self.db else {
            return Ok(None);
        };
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(CHANNEL).await?;
        Ok(Some(Notices(listener)))
    }
}

impl Notices {
    /// The next notice's payload; `None` when the connection was lost. The next call connects and
    /// listens again; what was sent in between is not heard.
    pub async fn next(&mut self) -> Result<Option<String>, StoreError> {
        Ok(self.0.try_recv().await?.map(|notice| notice.payload().to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::both_databases;

    both_databases! {
        /// On Postgres every listener hears every notice, in order, whoever sent it; on SQLite
        /// nothing listens and a notice goes nowhere.
        async fn notices_reach_every_listener_in_order(store: Store) {
            let payloads = ["one".to_owned(), "two".to_owned(), "x".repeat(7000)];
            match store.listen().await.unwrap() {
                None => {
                    assert!(!store.is_shared());
                    store.notify("nobody hears this").await.unwrap();
                }
                Some(mut first) => {
                    assert!(store.is_shared());
                    let mut second = store.listen().await.unwrap().unwrap();
                    for payload in &payloads {
                        store.notify(payload).await.unwrap();
                    }
                    for listener in [&mut first, &mut second] {
                        for payload in &payloads {
                            assert_eq!(listener.next().await.unwrap().as_ref(), Some(payload));
                        }
                    }
                }
            }
        }

        /// A listener whose connection is cut says so, connects again, and hears what is sent
        /// from then on.
        async fn a_listener_cut_off_listens_again(store: Store) {
            if let Some(mut notices) = store.listen().await.unwrap() {
                let crate::store::Dialect::Postgres(pool) = &store.db else { unreachable!() };
                let cut: i64 = sqlx::query_scalar(
                    "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
                     WHERE datname = current_database() AND query LIKE 'LISTEN%'",
                )
                .fetch_one(pool)
                .await
                .unwrap();
                assert_eq!(cut, 1);
                assert_eq!(notices.next().await.unwrap(), None);
                store.notify("after").await.unwrap();
                assert_eq!(notices.next().await.unwrap().as_deref(), Some("after"));
            }
        }
    }
}
