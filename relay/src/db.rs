//! Database access: `AnyPool`s over SQLite (embedded default, WAL, foreign keys
//! on) or PostgreSQL, the same SQL for both (`$N` placeholders, BIGINT times in
//! ms, TEXT ids), embedded migrations per backend, and the rule for writes
//! (see [`Db`]).

use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};

use crate::config::Config;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The database: a pool for reads and a pool for writes.
///
/// The rule for writes, enforced on both backends: every statement that writes
/// runs on [`Db::write`] (single statements) or in a [`Db::begin_write`]
/// transaction. The read pool's connections are read-only (SQLite `PRAGMA
/// query_only`, PostgreSQL `default_transaction_read_only`), so a write sent
/// there fails at once, in the first test that takes that path, instead of
/// working until two writers collide in production.
///
/// On SQLite the write pool has exactly one connection: SQLite admits one
/// writer at a time, and a connection waiting for the write lock polls with
/// growing sleeps; queueing writers on the pool instead hands the lock over in
/// order without sleeping. Write transactions take the lock at once (`BEGIN
/// IMMEDIATE`), so one that reads before it writes cannot fail on a stale
/// snapshot. On PostgreSQL writers run concurrently and lock the rows they
/// depend on (`UPDATE` or `... ON CONFLICT DO UPDATE` first).
#[derive(Clone)]
pub struct Db {
    read: AnyPool,
    write: AnyPool,
    pub backend: Backend,
}

/// A write transaction (see [`Db::begin_write`]); derefs to the connection.
pub struct WriteTx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
}

impl WriteTx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &sqlx::AnyConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
    }
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot create the data directory: {0}")]
    DataDir(std::io::Error),
    #[error("cannot connect to the database: {0}")]
    Connect(sqlx::Error),
    #[error("cannot apply migrations: {0}")]
    Migrate(sqlx::migrate::MigrateError),
}

async fn pool(url: &str, backend: Backend, max: u32, read_only: bool) -> Result<AnyPool, DbError> {
    AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(5))
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                match backend {
                    Backend::Sqlite => {
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        // After a checkpoint, shrink the WAL back to 64 MiB: under
                        // sustained load it can grow to hundreds of MiB and would
                        // otherwise keep that size on disk for good.
                        conn.execute("PRAGMA journal_size_limit = 67108864").await?;
                        if read_only {
                            conn.execute("PRAGMA query_only = ON").await?;
                        }
                    }
                    Backend::Postgres => {
                        if read_only {
                            conn.execute("SET default_transaction_read_only = on")
                                .await?;
                        }
                    }
                }
                Ok(())
            })
        })
        .connect(url)
        .await
        .map_err(DbError::Connect)
}

impl Db {
    /// Connects (creating the SQLite file if needed) and applies migrations.
    pub async fn open(config: &Config) -> Result<Self, DbError> {
        install_default_drivers();
        let (url, backend) = match &config.database_url {
            Some(u) if u.expose_secret().starts_with("postgres") => {
                (u.expose_secret().to_string(), Backend::Postgres)
            }
            Some(u) => (u.expose_secret().to_string(), Backend::Sqlite),
            None => {
                std::fs::create_dir_all(&config.data_dir).map_err(DbError::DataDir)?;
                let path = config.data_dir.join("sotto.db");
                (
                    format!("sqlite://{}?mode=rwc", path.display()),
                    Backend::Sqlite,
                )
            }
        };
        let (readers, writers) = match backend {
            Backend::Sqlite => (8, 1),
            Backend::Postgres => (16, 16),
        };
        // The writer first: it creates the file and migrates the schema.
        let write = pool(&url, backend, writers, false).await?;
        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&write).await.map_err(DbError::Migrate)?;
        let read = pool(&url, backend, readers, true).await?;
        Ok(Self {
            read,
            write,
            backend,
        })
    }

    /// The pool for statements that only read (used by `crate::store`, and by
    /// tests that inspect the database behind the API; features call the store).
    pub fn read(&self) -> &AnyPool {
        &self.read
    }

    /// The pool for single statements that write (see the type's docs; used by
    /// `crate::store` through its `Writer` handle, and by tests).
    pub fn write(&self) -> &AnyPool {
        &self.write
    }

    /// A transaction that will write (see the type's docs).
    pub async fn begin_write(&self) -> Result<WriteTx, sqlx::Error> {
        let tx = match self.backend {
            Backend::Sqlite => self.write.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.write.begin().await?,
        };
        Ok(WriteTx { tx })
    }

    /// `$first, $first+1, ...` placeholders for an `IN (...)` list of `n` values.
    pub fn placeholders(first: usize, n: usize) -> String {
        (first..first + n)
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        sqlx::query_scalar::<_, i64>("SELECT 1")
            .fetch_one(&self.read)
            .await
            .is_ok()
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// RFC 3339 UTC rendering of a millisecond timestamp.
pub fn rfc3339(ms: i64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// The error for a stored value that cannot be what its column holds (a corrupt
/// or hand-edited row): a decode error, which the API answers 500 with a logged id.
pub fn corrupt(column: &str, value: &dyn std::fmt::Debug) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: column.to_string(),
        source: format!("corrupt value {value:?}").into(),
    }
}

/// A boolean stored as 0 or 1.
pub fn bool_column(row: &sqlx::any::AnyRow, column: &str) -> Result<bool, sqlx::Error> {
    use sqlx::Row;
    match row.try_get::<i64, _>(column)? {
        0 => Ok(false),
        1 => Ok(true),
        n => Err(corrupt(column, &n)),
    }
}

/// A stored count or sequence number, which cannot be negative.
pub fn u64_of(column: &str, n: i64) -> Result<u64, crate::error::ApiError> {
    u64::try_from(n).map_err(|_| crate::error::ApiError::internal(corrupt(column, &n)))
}
