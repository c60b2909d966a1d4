//! Fresh databases for the store's tests: a new SQLite file, or a new database on the test
//! PostgreSQL server that scripts/test.sh starts (`TEST_POSTGRES_URL`, the server's URL without a
//! database), so that tests run in parallel without meeting.

use sqlx::{Connection, PgConnection};
use tempfile::TempDir;
use uuid::Uuid;

use super::{NewSession, Store};
use crate::domain::Session;

/// A database no other test uses, at `url`.
pub struct Fresh {
    pub url: String,
    kept: Kept,
}

enum Kept {
    Directory(TempDir),
    Database { server: String, name: String },
}

impl Fresh {
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self {
            url: format!("sqlite://{}/ckad.db", dir.path().display()),
            kept: Kept::Directory(dir),
        }
    }

    pub async fn postgres() -> Self {
        let server = std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| {
            panic!(
                "TEST_POSTGRES_URL is not set: the store's tests need the PostgreSQL server that \
                 scripts/test.sh starts (for a run of your own: eval \"$(scripts/postgres.sh start DIR)\")"
            )
        });
        let name = format!("ckad_test_{}", Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&format!("{server}/postgres"))
            .await
            .unwrap_or_else(|e| panic!("the test PostgreSQL server at {server} does not answer: {e}"));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap();
        admin.close().await.unwrap();
        Self {
            url: format!("{server}/{name}"),
            kept: Kept::Database { server, name },
        }
    }

    /// A store on it, migrated.
    pub async fn store(&self) -> Store {
        Store::open(&self.url).await.unwrap()
    }

    /// Removes it (a failed test's stays for a look, with the server's temporary directory).
    pub async fn remove(self) {
        match self.kept {
            Kept::Directory(dir) => dir.close().unwrap(),
            Kept::Database { server, name } => {
                let mut admin = PgConnection::connect(&format!("{server}/postgres"))
                    .await
                    .unwrap();
                sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await
                    .unwrap();
                admin.close().await.unwrap();
            }
        }
    }
}

/// A new learner (`email`) with a session of an hour on `cluster`, recorded as a start records it.
pub async fn session_of(store: &Store, email: &str, cluster: &str, exam_id: Option<&str>) -> Session {
    let user = store.insert_user(email, "").await.unwrap();
    let now = chrono::Utc::now();
    let new = NewSession {
        user_id: &user.id,
        cluster_name: cluster,
        start_time: now,
        expires_at: now + chrono::Duration::hours(1),
        exam_id,
    };
    store.insert_session(new, u32::MAX).await.unwrap().unwrap()
}

/// Each `async fn name(store: Store) { … }` becomes two tests, `sqlite::name` and
/// `postgres::name`, each given a store on a fresh migrated database of its kind. Tests run on
/// several threads, as a server does.
macro_rules! both_databases {
    ($($(#[doc = $doc:literal])* async fn $name:ident($store:ident: Store) $body:block)*) => {
        mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            $(
                $(#[doc = $doc])*
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let fresh = $crate::store::testing::Fresh::sqlite().await;
                    let $store = fresh.store().await;
                    $body
                    fresh.remove().await;
                }
            )*
        }
        mod postgres {
            #[allow(unused_imports)]
            use super::*;
            $(
                $(#[doc = $doc])*
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let fresh = $crate::store::testing::Fresh::postgres().await;
                    let $store = fresh.store().await;
                    $body
                    fresh.remove().await;
                }
            )*
        }
    };
}

pub(crate) use both_databases;
