//! The `allocated_ports` table: each session's (or warm pool member's) API, ingress and
//! ingress-https host ports, taken in one transaction so that concurrent starts never collide.

use std::{collections::HashSet, ops::RangeInclusive};

use chrono::Utc;

use super::{Store, StoreError};
use crate::domain::{PortRanges, PortSet};

/// Who holds a set of ports: a session, or a pool member made ahead for a session to come.
#[derive(Debug, Clone, Copy)]
pub enum PortOwner<'a> {
    Session(&'a str),
    PoolMember(&'a str),
}

impl Store {
    /// Gives `session_id` the lowest free port of each kind. A port is free when no session or
    /// pool member holds it and `bound_on_host` says nothing listens on it. All three or none.
    pub async fn allocate_ports(
        &self,
        session_id: &str,
        ranges: &PortRanges,
        bound_on_host: impl Fn(u16) -> bool,
    ) -> Result<PortSet, StoreError> {
        // IMMEDIATE takes the write lock up front: two deferred transactions that both read and
        // then write would deadlock, and SQLite would fail one at once instead of waiting.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let ports = take_ports(&mut tx, PortOwner::Session(session_id), ranges, bound_on_host).await?;
        tx.commit().await?;
        Ok(ports)
    }

    /// The ports a session holds, if it holds a full set.
    pub async fn ports_of(&self, session_id: &str) -> Result<Option<PortSet>, StoreError> {
        let rows: Vec<(String, u16)> =
            sqlx::query_as("SELECT port_type, port FROM allocated_ports WHERE session_id = ?")
                .bind(session_id)
                .fetch_all(&self.pool)
                .await?;
        let of = |kind: &str| rows.iter().find(|(k, _)| k == kind).map(|(_, p)| *p);
        Ok(match (of("api"), of("ingress"), of("ingress_https")) {
            (Some(api), Some(ingress), Some(ingress_https)) => Some(PortSet {
                api,
                ingress,
                ingress_https,
            }),
            _ => None,
        })
    }

    /// Gives a session's ports back; returns how many were released.
    pub async fn release_ports(&self, session_id: &str) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM allocated_ports WHERE session_id = ?")
            .bind(session_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

impl Store {
    /// Gives back the ports of every session that is no longer live; returns how many.
    pub async fn release_ports_of_ended_sessions(&self) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM allocated_ports WHERE session_id IN
             (SELECT id FROM sessions WHERE status NOT IN ('provisioning', 'started'))",
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}

/// Takes the lowest free port of each kind for `owner` inside `tx` (which holds the write lock).
pub(super) async fn take_ports(
    tx: &mut sqlx::SqliteConnection,
    owner: PortOwner<'_>,
    ranges: &PortRanges,
    bound_on_host: impl Fn(u16) -> bool,
) -> Result<PortSet, StoreError> {
    let (session_id, pool_member_id) = match owner {
        PortOwner::Session(id) => (Some(id), None),
        PortOwner::PoolMember(id) => (None, Some(id)),
    };
    let mut take = async |kind: &'static str, range: &RangeInclusive<u16>| -> Result<u16, StoreError> {
        let held: HashSet<u16> =
            sqlx::query_scalar("SELECT port FROM allocated_ports WHERE port BETWEEN ? AND ?")
                .bind(range.start())
                .bind(range.end())
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .collect();
        let port = range
            .clone()
            .find(|p| !held.contains(p) && !bound_on_host(*p))
            .ok_or(StoreError::Exhausted(kind))?;
        sqlx::query(
            "INSERT INTO allocated_ports (port, session_id, pool_member_id, port_type, allocated_at)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(port)
        .bind(session_id)
        .bind(pool_member_id)
        .bind(kind)
        .bind(Utc::now())
        .execute(&mut *tx)
        .await?;
        Ok(port)
    };
    Ok(PortSet {
        api: take("api", &ranges.api).await?,
        ingress: take("ingress", &ranges.ingress).await?,
        ingress_https: take("ingress_https", &ranges.ingress_https).await?,
    })
}

/// Whether something on this host already listens on `port` (any IPv4 address).
pub fn bound_on_host(port: u16) -> bool {
    std::net::TcpListener::bind(("0.0.0.0", port)).is_err()
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use sqlx::SqlitePool;

    use super::*;
    use crate::store::NewSession;

    async fn session(store: &Store, n: usize) -> String {
        let user = store
            .insert_user(&format!("user{n}@example.com"), "")
            .await
            .unwrap();
        let now = Utc::now();
        let name = format!("ckad-test{n:04}");
        let new = NewSession {
            user_id: &user.id,
            cluster_name: &name,
            start_time: now,
            expires_at: now + Duration::hours(1),
            exam_id: None,
        };
        store.insert_session(new, u32::MAX).await.unwrap().unwrap().id
    }

    fn nothing_bound(_: u16) -> bool {
        false
    }

    #[sqlx::test(migrator = "crate::store::MIGRATOR")]
    async fn a_session_gets_one_port_of_each_kind(pool: SqlitePool) {
        let store = Store::from_pool(pool);
        let id = session(&store, 1).await;
        let ports = store
            .allocate_ports(&id, &PortRanges::default(), nothing_bound)
            .await
            .unwrap();
        assert_eq!(
            ports,
            PortSet {
                api: 30000,
                ingress: 40000,
                ingress_https: 45000
            }
        );
        assert_eq!(store.ports_of(&id).await.unwrap(), Some(ports));
        assert_eq!(store.release_ports(&id).await.unwrap(), 3);
        assert_eq!(store.ports_of(&id).await.unwrap(), None);
    }

    #[sqlx::test(migrator = "crate::store::MIGRATOR")]
    async fn ports_bound_on_the_host_are_skipped(pool: SqlitePool) {
        let store = Store::from_pool(pool);
        let id = session(&store, 1).await;
        let ports = store
            .allocate_ports(&id, &PortRanges::default(), |p| p == 30000 || p == 40000)
            .await
            .unwrap();
        assert_eq!((ports.api, ports.ingress), (30001, 40001));
    }

    #[sqlx::test(migrator = "crate::store::MIGRATOR")]
    async fn an_exhausted_pool_takes_nothing(pool: SqlitePool) {
        let store = Store::from_pool(pool);
        let ranges = PortRanges {
            ingress_https: 45000..=45000,
            ..PortRanges::default()
        };
        let first = session(&store, 1).await;
        store
            .allocate_ports(&first, &ranges, nothing_bound)
            .await
            .unwrap();
        let second = session(&store, 2).await;
        let refused = store.allocate_ports(&second, &ranges, nothing_bound).await;
        assert!(
            matches!(refused, Err(StoreError::Exhausted("ingress_https"))),
            "{refused:?}"
        );
        // The api and ingress ports taken before the failure were rolled back with it.
        assert_eq!(store.ports_of(&second).await.unwrap(), None);
        let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM allocated_ports")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(held, 3);
    }

    /// A real file (not an in-memory pool): fifty starts at once, as many connections as the pool allows.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn fifty_concurrent_allocations_never_collide() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}/ports.db", dir.path().display()))
            .await
            .unwrap();
        let mut sessions = Vec::new();
        for n in 0..50 {
            sessions.push(session(&store, n).await);
        }
        let allocations = sessions.iter().map(|id| {
            let store = store.clone();
            let id = id.clone();
            tokio::spawn(async move {
                store
                    .allocate_ports(&id, &PortRanges::default(), bound_on_host)
                    .await
            })
        });
        let mut seen = HashSet::new();
        for allocation in futures_util::future::join_all(allocations).await {
            let ports = allocation.unwrap().unwrap();
            for port in [ports.api, ports.ingress, ports.ingress_https] {
                assert!(seen.insert(port), "port {port} given twice");
            }
        }
        assert_eq!(seen.len(), 150);
    }

    #[test]
    fn a_listening_port_counts_as_bound() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(bound_on_host(listener.local_addr().unwrap().port()));
    }
}
