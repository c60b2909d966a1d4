//! Leases: work that must run on one replica at a time (the reconciler, the warm pool's filler)
//! runs while it holds its lease. On Postgres a lease is a session advisory lock held on a
//! connection of its own, so it is released when the work drops it or when its replica dies (the
//! server ends a dead client's session and its locks). SQLite is one process, whose work is
//! already alone: its lease is always granted.

use sqlx::{Connection as _, PgConnection};

use super::{Dialect, Store, StoreError};

/// Held while the work runs; dropping it releases it.
#[derive(Debug)]
#[must_use = "the lease is released when dropped"]
pub struct Lease {
    /// The connection that holds the advisory lock on Postgres.
    _held: Option<PgConnection>,
}

/// Leases' advisory locks take the two-key form with this first key, apart from the one-key
/// locks of transactions ([`super::Lock::Email`]) and of sqlx's migrations.
const LEASES: i32 = 1;

impl Store {
    /// The lease called `name` if no other replica holds it now; `None` if one does.
    pub async fn lease(&self, name: &str) -> Result<Option<Lease>, StoreError> {
        let Dialect::Postgres(pool) = &self.db else {
            return Ok(Some(Lease { _held: None }));
        };
        // Off the pool: a pooled connection would go back to the pool still holding the lock.
        let mut connection = pool.acquire().await?.detach();
        let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext($2))")
            .bind(LEASES)
            .bind(name)
            .fetch_one(&mut connection)
            .await?;
        if held {
            return Ok(Some(Lease {
                _held: Some(connection),
            }));
        }
        connection.close().await?;
        Ok(None)
    }
}

/// A replica's presence among those on one database, held for its life (a shared lock that a
/// replica starting up tries to take exclusively); dropping it leaves.
#[derive(Debug)]
#[must_use = "the replica leaves when it is dropped"]
pub struct Presence {
    /// No other replica was running when this one joined: what an earlier run left in flight
    /// (a start, a removal) is nobody's work now.
    pub alone: bool,
    _held: Option<PgConnection>,
}

/// The key of [`Presence`], among the leases' names.
const REPLICAS: &str = "replicas";

impl Store {
    /// Joins the replicas on this database until the presence is dropped. SQLite is one process:
    /// always alone.
    pub async fn join_replicas(&self) -> Result<Presence, StoreError> {
        let Dialect::Postgres(pool) = &self.db else {
            return Ok(Presence {
                alone: true,
                _held: None,
            });
        };
        let mut connection = pool.acquire().await?.detach();
        // Exclusive only while no other replica holds its share.
        let alone: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext($2))")
            .bind(LEASES)
            .bind(REPLICAS)
            .fetch_one(&mut connection)
            .await?;
        sqlx::query("SELECT pg_advisory_lock_shared($1, hashtext($2))")
            .bind(LEASES)
            .bind(REPLICAS)
            .execute(&mut connection)
            .await?;
        if alone {
            sqlx::query("SELECT pg_advisory_unlock($1, hashtext($2))")
                .bind(LEASES)
                .bind(REPLICAS)
                .execute(&mut connection)
                .await?;
        }
        Ok(Presence {
            alone,
            _held: Some(connection),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::store::testing::Fresh;

    /// One process: every lease is granted, even twice at once.
    #[tokio::test]
    async fn sqlite_leases_are_always_granted() {
        let fresh = Fresh::sqlite().await;
        let store = fresh.store().await;
        let first = store.lease("reconciler").await.unwrap();
        let second = store.lease("reconciler").await.unwrap();
        assert!(first.is_some() && second.is_some());
        fresh.remove().await;
    }

    /// Two replicas (two stores on one database): one holds a lease at a time, by name, until it
    /// drops it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_postgres_lease_is_held_by_one_replica_at_a_time() {
        let fresh = Fresh::postgres().await;
        let (a, b) = (fresh.store().await, fresh.store().await);
        let held = a.lease("reconciler").await.unwrap().expect("free at first");
        assert!(b.lease("reconciler").await.unwrap().is_none());
        assert!(
            a.lease("reconciler").await.unwrap().is_none(),
            "not even twice in one replica"
        );
        let other = b.lease("warm-pool").await.unwrap();
        assert!(other.is_some(), "another name is another lease");

        // Dropped, it is free again (as soon as the server sees its connection close).
        drop(held);
        let started = Instant::now();
        while b.lease("reconciler").await.unwrap().is_none() {
            assert!(started.elapsed() < Duration::from_secs(5), "never released");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        // Many replicas trying at once: one gets it.
        let tries = (0..10).map(|n| {
            let store = if n % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move { store.lease("sweeper").await.unwrap() })
        });
        let outcomes: Vec<Option<Lease>> = futures_util::future::join_all(tries)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(outcomes.iter().filter(|o| o.is_some()).count(), 1);
        fresh.remove().await;
    }

    #[tokio::test]
    async fn a_sqlite_replica_is_always_alone() {
        let fresh = Fresh::sqlite().await;
        let store = fresh.store().await;
        let (first, second) = (
            store.join_replicas().await.unwrap(),
            store.join_replicas().await.unwrap(),
        );
        assert!(first.alone && second.alone);
        fresh.remove().await;
    }

    /// A replica joining while another runs is not alone; once every one has left, the next is.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_postgres_replica_is_alone_only_when_no_other_runs() {
        let fresh = Fresh::postgres().await;
        let (a, b, c) = (fresh.store().await, fresh.store().await, fresh.store().await);
        let first = a.join_replicas().await.unwrap();
        assert!(first.alone);
        let second = b.join_replicas().await.unwrap();
        assert!(!second.alone);
        drop(first);
        // The first gone, the second still runs.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!c.join_replicas().await.unwrap().alone);
        drop(second);
        let started = Instant::now();
        while !c.join_replicas().await.unwrap().alone {
            assert!(started.elapsed() < Duration::from_secs(5), "never alone");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        fresh.remove().await;
    }
}
