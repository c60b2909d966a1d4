//! The platform on PostgreSQL: `DATABASE_URL` names a database of the test PostgreSQL server
//! (scripts/test.sh starts it on loopback and exports `TEST_POSTGRES_URL`), and a learner signs
//! up, starts a session on a real `lite` cluster and stops it, with every record in Postgres.

use crate::common::{self, Platform};

use ckad_platform::{domain::SessionStatus, store::Store};
use reqwest::StatusCode;
use sqlx::{Connection, PgConnection};

/// A new, empty database on the test PostgreSQL server.
pub struct TestDatabase {
    server: String,
    name: String,
}

impl TestDatabase {
    pub async fn create() -> Self {
        let server = std::env::var("TEST_POSTGRES_URL").expect(
            "TEST_POSTGRES_URL is not set: this test needs the PostgreSQL server that scripts/test.sh \
             starts (for a run of your own: eval \"$(scripts/postgres.sh start DIR)\")",
        );
        let name = format!("ckad_it_{}", uuid::Uuid::new_v4().simple());
        let database = Self { server, name };
        database
            .on_server(&format!("CREATE DATABASE {}", database.name))
            .await;
        database
    }

    pub fn url(&self) -> String {
        format!("{}/{}", self.server, self.name)
    }

    /// Runs `statement` from the server's own database.
    async fn on_server(&self, statement: &str) {
        let mut admin = PgConnection::connect(&format!("{}/postgres", self.server))
            .await
            .unwrap();
        sqlx::query(statement).execute(&mut admin).await.unwrap();
        admin.close().await.unwrap();
    }

    pub async fn remove(self) {
        self.on_server(&format!("DROP DATABASE {} WITH (FORCE)", self.name))
            .await;
    }
}

#[tokio::test]
async fn a_learner_signs_up_starts_and_stops_a_session_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = common::settings(dir.path(), "unix:///var/run/docker.sock");
    let database = TestDatabase::create().await;
    settings.database_url = database.url();
    let platform = Platform::start(settings.clone()).await;
    let token = platform.learner("ada@example.com").await;
    let session = platform.start_session(&token).await;
    let id = session["id"].as_str().unwrap();
    let containers = format!("ckad.session={id}");
    assert!(!common::containers_labelled(&containers).await.is_empty());

    // The records are in Postgres, and no SQLite file was made beside them.
    let store = Store::connect(&settings.database_url).await.unwrap();
    let recorded = store.session_by_id(id).await.unwrap().unwrap();
    assert_eq!(recorded.status, SessionStatus::Started);
    assert!(store.ports_of(id).await.unwrap().is_some());
    assert!(!dir.path().join("ckad.db").exists());

    assert_eq!(
        platform.post("/api/session/stop", &token).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        platform.get("/api/session/status", &token).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, history) = platform.get("/api/session/history", &token).await;
    assert_eq!(history[0]["id"], id);
    assert_eq!(history[0]["status"], "ended");
    assert_eq!(
        store.session_by_id(id).await.unwrap().unwrap().status,
        SessionStatus::Ended
    );
    assert_eq!(store.ports_of(id).await.unwrap(), None);
    assert!(common::containers_labelled(&containers).await.is_empty());
    platform.shut_down().await;
    database.remove().await;
}
