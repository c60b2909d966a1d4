//! `session_hosts`: the hosts of an exam session and the cluster of each, recorded before any
//! cluster is made.

use super::{conflict, Store, StoreError};

impl Store {
    /// Records the session's hosts, each with its cluster's name: all of them or none.
    pub async fn insert_session_hosts(
        &self,
        session_id: &str,
        hosts: &[(&str, &str)],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        for (host, cluster_name) in hosts {
            on!(tx, |c| sqlx::query(
                "INSERT INTO session_hosts (session_id, host, cluster_name) VALUES ($1, $2, $3)"
            )
            .bind(session_id)
            .bind(host)
            .bind(cluster_name)
            .execute(c)
            .await
            .map(|_| ()))
            .map_err(conflict("a host of this session or its cluster"))?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The session's hosts and their clusters' names, by host; none for a session without hosts.
    pub async fn session_hosts(&self, session_id: &str) -> Result<Vec<(String, String)>, StoreError> {
        Ok(on!(self.db, |c| sqlx::query_as(
            "SELECT host, cluster_name FROM session_hosts WHERE session_id = $1 ORDER BY host"
        )
        .bind(session_id)
        .fetch_all(c)
        .await)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{both_databases, session_of};

    both_databases! {
        async fn a_sessions_hosts_are_recorded_all_or_none(store: Store) {
            let session = session_of(&store, "ada@example.com", "ckad-a1b2c3", Some("ckad-full-2")).await;
            assert_eq!(store.session_hosts(&session.id).await.unwrap(), []);

            let hosts = [("ckad7326", "ckad-a1b2c3"), ("ckad5601", "ckad-a1b2c3-ckad5601")];
            store.insert_session_hosts(&session.id, &hosts).await.unwrap();
            let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
                list.iter().map(|(h, c)| (h.to_string(), c.to_string())).collect()
            };
            assert_eq!(
                store.session_hosts(&session.id).await.unwrap(),
                pairs(&[hosts[1], hosts[0]])
            );

            // A cluster named twice records nothing more.
            let again = [("ckad9043", "ckad-a1b2c3-ckad9043"), ("ckad1111", "ckad-a1b2c3")];
            let refused = store.insert_session_hosts(&session.id, &again).await;
            assert!(matches!(refused, Err(StoreError::Conflict(_))), "{refused:?}");
            assert_eq!(store.session_hosts(&session.id).await.unwrap().len(), 2);
        }
    }
}
