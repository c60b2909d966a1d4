//! The platform on PostgreSQL: `DATABASE_URL` names a database of the test PostgreSQL server
//! (scripts/test.sh starts it on loopback and exports `TEST_POSTGRES_URL`), and a learner signs
//! up, starts a session on a real `lite` cluster and stops it, with every record in Postgres; the
//! backup scripts dump a database under write load and restore it into an empty one.

use crate::common::{self, Platform};

use std::process::Command;

use ckad_platform::{
    domain::SessionStatus,
    store::{Store, POSTGRES_MIGRATOR},
};
use reqwest::StatusCode;
use sqlx::{Connection, PgConnection};

/// A new, empty database on the test PostgreSQL server.
pub(crate) struct TestDatabase {
    server: String,
    name: String,
}

impl TestDatabase {
    pub(crate) async fn create() -> Self {
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

    pub(crate) fn url(&self) -> String {
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

    pub(crate) async fn remove(self) {
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

fn script(name: &str) -> Command {
    Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/").to_owned() + name)
}

fn run(command: &mut Command) -> (bool, String) {
    let output = command.output().unwrap();
    let said =
        String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), said)
}

fn rows(report: &str, table: &str) -> i64 {
    let line = report
        .lines()
        .find(|l| l.starts_with(&format!("{table} ")))
        .unwrap_or_else(|| panic!("no {table} in {report}"));
    line.split(' ').nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_backup_under_write_load_restores_into_an_empty_database_only() {
    let (live, during, after) = (
        TestDatabase::create().await,
        TestDatabase::create().await,
        TestDatabase::create().await,
    );
    let store = Store::open(&live.url()).await.unwrap();
    let backups = tempfile::tempdir().unwrap();
    let backup = |keep: &str| {
        run(script("backup-db.sh")
            .arg(live.url())
            .env("BACKUP_DIR", backups.path())
            .env("BACKUP_KEEP", keep))
    };
    let newest = || {
        let mut dumps: Vec<_> = std::fs::read_dir(backups.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        dumps.sort();
        dumps.pop().unwrap()
    };

    // Learners keep signing up while the dump runs: it holds one moment's snapshot.
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for n in 0..300 {
                store
                    .insert_user(&format!("learner{n}@example.com"), "")
                    .await
                    .unwrap();
            }
        })
    };
    let (ok, said) = tokio::task::block_in_place(|| backup("5"));
    assert!(ok && said.starts_with("backup-db: wrote "), "{said}");
    assert!(said.contains(".dump ("), "{said}");
    writer.await.unwrap();
    let (ok, report) = run(script("restore-db.sh").arg(newest()).arg(during.url()));
    assert!(ok, "{report}");
    assert!(report.contains("the dump was restored whole"), "{report}");
    assert!(
        report.contains("signed everyone out (0 refresh tokens revoked)"),
        "{report}"
    );
    assert!((0..=300).contains(&rows(&report, "users")), "{report}");
    assert_eq!(
        rows(&report, "_sqlx_migrations"),
        POSTGRES_MIGRATOR.iter().count() as i64
    );

    // Quiet now: a new dump holds exactly what the live database holds, and restores only into
    // an empty database, leaving a full one as it was.
    std::thread::sleep(std::time::Duration::from_secs(1)); // a new second, a new file name
    let (ok, said) = backup("1");
    assert!(ok && said.contains("removed 1 older copies"), "{said}");
    let (ok, report) = run(script("restore-db.sh").arg(newest()).arg(after.url()));
    assert!(ok, "{report}");
    assert_eq!(rows(&report, "users"), 300);
    let (ok, said) = run(script("restore-db.sh").arg(newest()).arg(after.url()));
    assert!(!ok && said.contains("the target database is not empty"), "{said}");
    let restored = Store::connect(&after.url()).await.unwrap();
    assert!(restored
        .user_by_email("learner299@example.com")
        .await
        .unwrap()
        .is_some());

    for database in [live, during, after] {
        database.remove().await;
    }
}
