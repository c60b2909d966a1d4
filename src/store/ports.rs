//! The `allocated_ports` table: each session's (or warm pool member's) API, ingress and
//! ingress-https host ports, taken in one transaction so that concurrent starts never collide.

use std::{collections::HashSet, ops::RangeInclusive};

use chrono::Utc;

use super::{Store, StoreError, Tx};
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
        let mut tx = self.begin_write().await?;
        let ports = take_ports(&mut tx, PortOwner::Session(session_id), ranges, bound_on_host).await?;
        tx.commit().await?;
        Ok(ports)
    }

    /// The ports a session holds, if it holds a full set.
    pub async fn ports_of(&self, session_id: &str) -> Result<Option<PortSet>, StoreError> {
        let rows: Vec<(String, i64)> = on!(self.db, |c| sqlx::query_as(
            "SELECT port_type, port FROM allocated_ports WHERE session_id = $1"
        )
        .bind(session_id)
        .fetch_all(c)
        .await)?;
        let of = |kind: &str| {
            rows.iter()
                .find(|(k, _)| k == kind)
                .and_then(|(_, p)| u16::try_from(*p).ok())
        };
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
        let done = on!(self.db, |c| sqlx::query(
            "DELETE FROM allocated_ports WHERE session_id = $1"
        )
        .bind(session_id)
        .execute(c)
        .await
        .map(|done| done.rows_affected()))?;
        Ok(done)
    }
}

impl Store {
    /// Gives back the ports of every session that is no longer live; returns how many.
    pub async fn release_ports_of_ended_sessions(&self) -> Result<u64, StoreError> {
        Ok(on!(self.db, |c| sqlx::query(
            "DELETE FROM allocated_ports WHERE session_id IN
             (SELECT id FROM sessions WHERE status NOT IN ('provisioning', 'started'))",
        )
        .execute(c)
        .await
        .map(|done| done.rows_affected()))?)
    }
}

/// Takes the lowest free port of each kind for `owner` inside `tx`. The port is the row's key:
/// on SQLite the transaction holds the write lock, so the ports read as held are all there are;
/// on Postgres a port another transaction takes meanwhile makes the insert do nothing (after
/// that transaction ends), and the next free one is tried.
pub(super) async fn take_ports(
    tx: &mut Tx,
    owner: PortOwner<'_>,
    ranges: &PortRanges,
    bound_on_host: impl Fn(u16) -> bool,
) -> Result<PortSet, StoreError> {
    let (session_id, pool_member_id) = match owner {
        PortOwner::Session(id) => (Some(id), None),
        PortOwner::PoolMember(id) => (None, Some(id)),
    };
    let mut take = async |kind: &'static str, range: &RangeInclusive<u16>| -> Result<u16, StoreError> {
        let held: Vec<i64> = on!(tx, |c| sqlx::query_scalar(
            "SELECT port FROM allocated_ports WHERE port BETWEEN $1 AND $2"
        )
        .bind(i64::from(*range.start()))
        .bind(i64::from(*range.end()))
        .fetch_all(c)
        .await)?;
        let held: HashSet<i64> = held.into_iter().collect();
        for port in range.clone() {
            if held.contains(&i64::from(port)) || bound_on_host(port) {
                continue;
            }
            let taken: Option<i64> = on!(tx, |c| sqlx::query_scalar(
                "INSERT INTO allocated_ports (port, session_id, pool_member_id, port_type, allocated_at)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (port) DO NOTHING RETURNING port",
            )
            .bind(i64::from(port))
            .bind(session_id)
            .bind(pool_member_id)
            .bind(kind)
            .bind(Utc::now())
            .fetch_optional(c)
            .await)?;
            if taken.is_some() {
                return Ok(port);
            }
        }
        Err(StoreError::Exhausted(kind))
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

    use super::*;
    use crate::store::testing::{both_databases, session_of};

    async fn session(store: &Store, n: usize) -> String {
        let email = format!("user{n}@example.com");
        session_of(store, &email, &format!("ckad-test{n:04}"), None)
            .await
            .id
    }

    fn nothing_bound(_: u16) -> bool {
        false
    }

    /// Ports of every owner, on either database.
    async fn held(store: &Store) -> i64 {
        on!(store.db, |c| sqlx::query_scalar(
            "SELECT COUNT(*) FROM allocated_ports"
        )
        .fetch_one(c)
        .await)
        .unwrap()
    }

    both_databases! {
        async fn a_session_gets_one_port_of_each_kind(store: Store) {
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

        async fn ports_bound_on_the_host_are_skipped(store: Store) {
            let id = session(&store, 1).await;
            let ports = store
                .allocate_ports(&id, &PortRanges::default(), |p| p == 30000 || p == 40000)
                .await
                .unwrap();
            assert_eq!((ports.api, ports.ingress), (30001, 40001));
        }

        async fn an_exhausted_pool_takes_nothing(store: Store) {
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
            assert_eq!(held(&store).await, 3);
        }

        /// Fifty starts at once, as many connections as the pool allows: no port twice, and
        /// each start gets the lowest ports the others left.
        async fn fifty_concurrent_allocations_never_collide(store: Store) {
            let mut sessions = Vec::new();
            for n in 0..50 {
                sessions.push(session(&store, n).await);
            }
            let allocations = sessions.iter().map(|id| {
                let store = store.clone();
                let id = id.clone();
                tokio::spawn(async move {
                    store
                        .allocate_ports(&id, &PortRanges::default(), nothing_bound)
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
            let lowest = |start: u16| (start..start + 50).collect::<HashSet<u16>>();
            let expected: HashSet<u16> = [30000, 40000, 45000].into_iter().flat_map(lowest).collect();
            assert_eq!(seen, expected);
            assert_eq!(held(&store).await, 150);
        }
    }

    #[test]
    fn a_listening_port_counts_as_bound() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(bound_on_host(listener.local_addr().unwrap().port()));
    }
}
