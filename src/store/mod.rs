//! The database: SQLite in WAL mode through sqlx, migrated at start-up, with typed repository
//! functions per table. Nothing outside this module writes SQL.

mod accounts;
mod desk;
mod exams;
mod hosts;
mod passes;
mod pool;
mod ports;
mod sessions;
mod users;

use std::{
    path::{Path, PathBuf},
    str::FromStr,
    time::Duration,
};

use sqlx::{
    migrate::Migrator,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
    SqlitePool,
};

pub use accounts::{CodeLimits, CodeTry, OAuthFlow, PendingCode, Rotation};
pub use passes::{ActivationRefused, EventOutcome, PassChange};
pub use pool::{PoolMember, PoolMemberStatus};
pub use ports::bound_on_host;
pub use sessions::NewSession;
pub use users::User;

/// The schema, embedded from `migrations/` at compile time.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

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

#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating if needed) the database at a `sqlite://` URL and migrates it.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let path = sqlite_path(url);
        if let Some(dir) = path
            .as_deref()
            .and_then(Path::parent)
            .filter(|d| !d.as_os_str().is_empty())
        {
            tokio::fs::create_dir_all(dir).await?;
        }
        let store = Self::connect(url).await?;
        MIGRATOR.run(&store.pool).await?;
        Ok(store)
    }

    /// This platform's name on the Docker engine when the operator names none: made with the
    /// database (see its migration), so it is unique to the database.
    pub async fn platform_instance(&self) -> Result<String, StoreError> {
        Ok(sqlx::query_scalar("SELECT instance FROM platform WHERE id = 1")
            .fetch_one(&self.pool)
            .await?)
    }

    /// Opens the database without migrating it.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }

    /// Wraps a pool made elsewhere (`#[sqlx::test]` hands each test a migrated one).
    pub fn from_pool(pool: SqlitePool) -> Self {
        Self { pool }
    }

    pub async fn schema_state(&self) -> Result<SchemaState, StoreError> {
        let known = MIGRATOR
            .iter()
            .filter(|m| m.migration_type.is_up_migration())
            .count();
        let has_table: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations')",
        )
        .fetch_one(&self.pool)
        .await?;
        let applied: i64 = if has_table {
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success = 1")
                .fetch_one(&self.pool)
                .await?
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
    use super::*;

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

    #[tokio::test]
    async fn a_new_file_is_created_in_wal_mode_with_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/nested/ckad.db", dir.path().display());
        let store = Store::open(&url).await.unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        let fks: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!((mode.as_str(), fks, busy), ("wal", 1, 5000));
        assert_eq!(store.schema_state().await.unwrap(), SchemaState::Current);
        assert!(dir.path().join("nested/ckad.db").exists());
    }

    #[tokio::test]
    async fn an_unmigrated_database_is_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&format!("sqlite://{}/empty.db", dir.path().display()))
            .await
            .unwrap();
        assert_eq!(
            store.schema_state().await.unwrap(),
            SchemaState::Behind {
                applied: 0,
                known: MIGRATOR.iter().count()
            }
        );
    }
}
