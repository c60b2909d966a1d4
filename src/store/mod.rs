//! The database through sqlx: SQLite in WAL mode (the default: one process on one VM) or
//! PostgreSQL (a `postgres://` URL), migrated at start-up, with typed repository functions per
//! table. Nothing outside this module writes SQL.
//!
//! Each statement is written once, with `$n` placeholders that both databases read, and compiled
//! for both by [`on!`]; the few that must differ branch on [`Dialect`]. SQLite runs one writer at
//! a time, and a transaction that reads before it writes takes the write lock up front
//! (`BEGIN IMMEDIATE`). Postgres runs transactions side by side (read committed), so there each
//! such transaction takes the one lock its guarantee needs ([`Lock`]), a claim skips rows another
//! claim holds (`FOR UPDATE SKIP LOCKED`), and unique keys settle the rest (a port is its row's
//! key: an insert that finds it taken moves on to the next).

/// Runs `$body` with `$c` bound to the executor of whichever database `$on` (the store's pool or
/// a [`Tx`]) holds: the statement in `$body` is compiled once for each database.
macro_rules! on {
    ($on:expr, |$c:ident| $body:expr) => {
        match $on.dialect() {
            $crate::store::Dialect::Sqlite($c) => $body,
            $crate::store::Dialect::Postgres($c) => $body,
        }
    };
}

mod accounts;
mod desk;
mod exams;
mod hosts;
mod leases;
mod notices;
mod passes;
mod pool;
mod ports;
mod sessions;
#[cfg(test)]
mod testing;
mod tickets;
mod users;

use std::{
    path::{Path, PathBuf},
    str::FromStr,
    time::Duration,
};

use sqlx::{
    migrate::Migrator,
    postgres::{PgPool, PgPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
    PgConnection, Postgres, Sqlite, SqliteConnection, SqlitePool, Transaction,
};

pub use accounts::{CodeLimits, CodeTry, OAuthFlow, PendingCode, Rotation};
pub use leases::{Lease, Presence};
pub use notices::Notices;
pub use passes::{ActivationRefused, EventOutcome, PassChange};
pub use pool::{PoolMember, PoolMemberStatus};
pub use ports::bound_on_host;
pub use sessions::NewSession;
pub use tickets::TicketGrant;
pub use users::User;

/// The SQLite schema, embedded from `migrations/` at compile time. Deployed databases hold these
/// files' checksums: a change is a new file, never an edit.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The same schema in PostgreSQL's types, from `migrations/postgres/`; each later migration comes
/// as a pair, one file in each folder.
pub static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// Connections per replica's pool, on either database.
const MAX_CONNECTIONS: u32 = 8;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("cannot create the database directory: {0}")]
    Directory(#[from] std::io::Error),
    #[error("{0} already exists")]
    Conflict(&'static str),
    #[error("no free {0} port left in its range")]
    Exhausted(&'static str),
    #[error("a stored value cannot be read back: {0}")]
    Corrupt(String),
}

/// A uniqueness violation becomes [`StoreError::Conflict`] naming what collided.
fn conflict(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |error| match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
        _ => StoreError::Database(error),
    }
}

/// Whether the database holds every migration this build knows, all applied successfully.
#[derive(Debug, PartialEq, Eq)]
pub enum SchemaState {
    Current,
    Behind { applied: usize, known: usize },
}

/// One of the two databases, or something of each (a pool, a connection).
#[derive(Debug, Clone)]
pub(crate) enum Dialect<S, P> {
    Sqlite(S),
    Postgres(P),
}

#[derive(Clone, Debug)]
pub struct Store {
    db: Dialect<SqlitePool, PgPool>,
}

impl Dialect<SqlitePool, PgPool> {
    fn dialect(&self) -> Dialect<&SqlitePool, &PgPool> {
        match self {
            Self::Sqlite(pool) => Dialect::Sqlite(pool),
            Self::Postgres(pool) => Dialect::Postgres(pool),
        }
    }
}

/// A transaction on either database.
pub(crate) struct Tx(Dialect<Transaction<'static, Sqlite>, Transaction<'static, Postgres>>);

/// What a Postgres transaction locks so that it runs alone where SQLite's write lock made every
/// transaction run alone.
pub(crate) enum Lock<'a> {
    /// The count of live sessions against the seats: the platform's one row.
    Seats,
    /// A user's passes (one active at a time) and password: the user's row.
    User(&'a str),
    /// An email's one-time codes, which may have no row yet: a lock on the email itself.
    Email(&'a str),
    /// A refresh token being rotated: its row.
    Refresh(&'a str),
}

impl Tx {
    fn dialect(&mut self) -> Dialect<&mut SqliteConnection, &mut PgConnection> {
        match &mut self.0 {
            Dialect::Sqlite(tx) => Dialect::Sqlite(&mut **tx),
            Dialect::Postgres(tx) => Dialect::Postgres(&mut **tx),
        }
    }

    /// Takes `lock` until the end of the transaction, on Postgres; on SQLite the write lock,
    /// taken with the transaction, covers it.
    async fn lock(&mut self, lock: Lock<'_>) -> Result<(), StoreError> {
        let Dialect::Postgres(tx) = &mut self.0 else {
            return Ok(());
        };
        let (statement, key) = match lock {
            Lock::Seats => ("SELECT id FROM platform WHERE id = 1 FOR NO KEY UPDATE", None),
            Lock::User(id) => ("SELECT id FROM users WHERE id = $1 FOR NO KEY UPDATE", Some(id)),
            Lock::Email(email) => (
                "SELECT pg_advisory_xact_lock(hashtextextended(lower($1), 0))",
                Some(email),
            ),
            Lock::Refresh(hash) => (
                "SELECT id FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE",
                Some(hash),
            ),
        };
        let mut query = sqlx::query(statement);
        if let Some(key) = key {
            query = query.bind(key);
        }
        query.execute(&mut **tx).await?;
        Ok(())
    }

    async fn commit(self) -> Result<(), StoreError> {
        match self.0 {
            Dialect::Sqlite(tx) => tx.commit().await?,
            Dialect::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }

    /// Ends the transaction now, releasing its locks. (A dropped one is rolled back only when its
    /// connection is next used, and holds its row locks until then.)
    async fn rollback(self) -> Result<(), StoreError> {
        match self.0 {
            Dialect::Sqlite(tx) => tx.rollback().await?,
            Dialect::Postgres(tx) => tx.rollback().await?,
        }
        Ok(())
    }
}

/// Whether `url` names a PostgreSQL database (anything else is taken for SQLite).
pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

impl Store {
    /// Opens the database at a `sqlite://` URL (creating the file and its directory if needed) or
    /// a `postgres://` one (which must exist), and migrates it.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        if let Some(dir) = sqlite_path(url)
            .as_deref()
            .and_then(Path::parent)
            .filter(|d| !d.as_os_str().is_empty())
        {
            tokio::fs::create_dir_all(dir).await?;
        }
        let store = Self::connect(url).await?;
        match &store.db {
            Dialect::Sqlite(pool) => MIGRATOR.run(pool).await?,
            // Replicas starting together migrate one at a time (sqlx holds an advisory lock).
            Dialect::Postgres(pool) => POSTGRES_MIGRATOR.run(pool).await?,
        }
        Ok(store)
    }

    /// This platform's name on the Docker engine when the operator names none: made with the
    /// database (see its migration), so it is unique to the database.
    pub async fn platform_instance(&self) -> Result<String, StoreError> {
        Ok(on!(self.db, |c| sqlx::query_scalar(
            "SELECT instance FROM platform WHERE id = 1"
        )
        .fetch_one(c)
        .await)?)
    }

    /// Opens the database without migrating it.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        if is_postgres(url) {
            let pool = PgPoolOptions::new()
                .max_connections(MAX_CONNECTIONS)
                .connect(url)
                .await?;
            return Ok(Self {
                db: Dialect::Postgres(pool),
            });
        }
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options)
            .await?;
        Ok(Self {
            db: Dialect::Sqlite(pool),
        })
    }

    /// A transaction that only writes, or whose reads need no lock.
    async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(Tx(match &self.db {
            Dialect::Sqlite(pool) => Dialect::Sqlite(pool.begin().await?),
            Dialect::Postgres(pool) => Dialect::Postgres(pool.begin().await?),
        }))
    }

    /// A transaction that reads and then writes what it read. On SQLite it takes the write lock
    /// up front (IMMEDIATE): two deferred transactions that both read and then write would
    /// deadlock, and SQLite would fail one at once instead of waiting. On Postgres it is an
    /// ordinary one, which takes its [`Lock`] itself.
    async fn begin_write(&self) -> Result<Tx, StoreError> {
        Ok(Tx(match &self.db {
            Dialect::Sqlite(pool) => Dialect::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            Dialect::Postgres(pool) => Dialect::Postgres(pool.begin().await?),
        }))
    }

    pub async fn schema_state(&self) -> Result<SchemaState, StoreError> {
        let (migrator, has_table) = match self.db.dialect() {
            Dialect::Sqlite(pool) => (
                &MIGRATOR,
                sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations')",
                )
                .fetch_one(pool)
                .await?,
            ),
            Dialect::Postgres(pool) => (
                &POSTGRES_MIGRATOR,
                sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
                    .fetch_one(pool)
                    .await?,
            ),
        };
        let known = migrator
            .iter()
            .filter(|m| m.migration_type.is_up_migration())
            .count();
        let applied: i64 = if has_table {
            on!(self.db, |c| sqlx::query_scalar(
                "SELECT COUNT(*) FROM _sqlx_migrations WHERE success"
            )
            .fetch_one(c)
            .await)?
        } else {
            0
        };
        let applied = usize::try_from(applied).unwrap_or_default();
        Ok(if applied >= known {
            SchemaState::Current
        } else {
            SchemaState::Behind { applied, known }
        })
    }
}

/// Where a `sqlite://` URL points, so its directory can be created.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::{testing::Fresh, *};

    #[test]
    fn sqlite_paths_are_read_from_urls() {
        assert_eq!(sqlite_path("sqlite://data/ckad.db"), Some("data/ckad.db".into()));
        assert_eq!(
            sqlite_path("sqlite:///var/lib/ckad/ckad.db?mode=rwc"),
            Some("/var/lib/ckad/ckad.db".into())
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://x"), None);
    }

    #[test]
    fn postgres_urls_select_postgres() {
        assert!(is_postgres("postgres://ckad@db.internal:5432/ckad"));
        assert!(is_postgres("postgresql://db.internal/ckad?sslmode=require"));
        assert!(!is_postgres("sqlite://data/ckad.db"));
    }

    #[tokio::test]
    async fn a_new_file_is_created_in_wal_mode_with_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/nested/ckad.db", dir.path().display());
        let store = Store::open(&url).await.unwrap();
        let Dialect::Sqlite(pool) = &store.db else {
            panic!("a sqlite:// URL opens SQLite")
        };
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(pool)
            .await
            .unwrap();
        let fks: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(pool)
            .await
            .unwrap();
        let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!((mode.as_str(), fks, busy), ("wal", 1, 5000));
        assert_eq!(store.schema_state().await.unwrap(), SchemaState::Current);
        assert!(dir.path().join("nested/ckad.db").exists());
    }

    async fn an_unmigrated_database_is_behind(fresh: Fresh, migrator: &Migrator) {
        let store = Store::connect(&fresh.url).await.unwrap();
        assert_eq!(
            store.schema_state().await.unwrap(),
            SchemaState::Behind {
                applied: 0,
                known: migrator.iter().count()
            }
        );
        fresh.remove().await;
    }

    #[tokio::test]
    async fn an_unmigrated_sqlite_database_is_behind() {
        an_unmigrated_database_is_behind(Fresh::sqlite().await, &MIGRATOR).await;
    }

    #[tokio::test]
    async fn an_unmigrated_postgres_database_is_behind() {
        an_unmigrated_database_is_behind(Fresh::postgres().await, &POSTGRES_MIGRATOR).await;
    }

    /// Migrated once, the database names its platform; opened again (a restart, another
    /// replica), it migrates nothing and keeps the name.
    async fn a_migrated_database_names_its_platform_once(fresh: Fresh) {
        let first = Store::open(&fresh.url).await.unwrap();
        assert_eq!(first.schema_state().await.unwrap(), SchemaState::Current);
        let instance = first.platform_instance().await.unwrap();
        assert!(
            instance.len() == 11
                && instance.starts_with('p')
                && instance
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
            "{instance:?}"
        );
        let again = Store::open(&fresh.url).await.unwrap();
        assert_eq!(again.platform_instance().await.unwrap(), instance);
        fresh.remove().await;
    }

    #[tokio::test]
    async fn a_migrated_sqlite_database_names_its_platform_once() {
        a_migrated_database_names_its_platform_once(Fresh::sqlite().await).await;
    }

    #[tokio::test]
    async fn a_migrated_postgres_database_names_its_platform_once() {
        a_migrated_database_names_its_platform_once(Fresh::postgres().await).await;
    }
}
