//! Database access: pools on sqlx's native drivers, SQLite (embedded default,
//! WAL, foreign keys on) or PostgreSQL, embedded migrations per backend, and the
//! rule for writes (see [`Db`]). The statements themselves are in
//! `crate::store`.

use std::time::Duration;

use secrecy::ExposeSecret;

use crate::config::Config;

#[cfg(feature = "sqlite")]
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
#[cfg(feature = "postgres")]
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

#[cfg(not(any(feature = "sqlite", feature = "postgres")))]
compile_error!("enable at least one backend feature: `sqlite` or `postgres`");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A pool of one backend.
#[derive(Clone)]
pub enum Pool {
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::SqlitePool),
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
}

/// The database: a pool for reads and a pool for writes.
///
/// The rule for writes, enforced on both backends: every statement that writes
/// runs on the write pool, through a [`crate::store::Writer`] (single
/// statements) or in a [`Db::begin_write`] transaction; store functions that
/// only read take `&Db` and run on the read pool, whose connections are
/// read-only (SQLite `PRAGMA query_only`, PostgreSQL
/// `default_transaction_read_only`), so a write sent there fails at once, in
/// the first test that takes that path, instead of working until two writers
/// collide in production.
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
    read: Pool,
    write: Pool,
    pub backend: Backend,
}

/// A write transaction (see [`Db::begin_write`]).
pub enum WriteTx {
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    #[cfg(feature = "postgres")]
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

/// A read-only transaction whose statements all see one snapshot of the
/// database (see [`Db::begin_read`]).
pub struct ReadTx(pub(crate) WriteTx);

impl ReadTx {
    /// Ends it (nothing to write).
    pub async fn end(self) -> Result<(), sqlx::Error> {
        self.0.commit().await
    }
}

impl WriteTx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(tx) => tx.commit().await,
            #[cfg(feature = "postgres")]
            Self::Postgres(tx) => tx.commit().await,
        }
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
    #[error("this relay was built without support for the {0:?} backend")]
    NotBuiltIn(Backend),
}

#[cfg(feature = "sqlite")]
async fn sqlite_pool(url: &str, max: u32, read_only: bool) -> Result<sqlx::SqlitePool, DbError> {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
    use std::str::FromStr;
    let opts = SqliteConnectOptions::from_str(url)
        .map_err(DbError::Connect)?
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10))
        // After a checkpoint, shrink the WAL back to 64 MiB: under sustained
        // load it can grow to hundreds of MiB and would otherwise keep that
        // size on disk for good.
        .pragma("journal_size_limit", "67108864")
        .pragma("query_only", if read_only { "ON" } else { "OFF" });
    sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(opts)
        .await
        .map_err(DbError::Connect)
}

#[cfg(feature = "postgres")]
async fn postgres_pool(url: &str, max: u32, read_only: bool) -> Result<sqlx::PgPool, DbError> {
    use sqlx::Executor;
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(5))
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                if read_only {
                    conn.execute("SET default_transaction_read_only = on")
                        .await?;
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
        let (url, backend) = match &config.database_url {
            Some(u) if u.expose_secret().starts_with("postgres") => {
                (u.expose_secret().to_string(), Backend::Postgres)
            }
            Some(u) => (u.expose_secret().to_string(), Backend::Sqlite),
            None => {
                crate::fsutil::create_private_dir(&config.data_dir).map_err(DbError::DataDir)?;
                crate::fsutil::warn_if_shared(&config.data_dir);
                let path = config.data_dir.join("sotto.db");
                crate::fsutil::prepare_sqlite_file(&path).map_err(DbError::DataDir)?;
                (
                    format!("sqlite://{}?mode=rwc", path.display()),
                    Backend::Sqlite,
                )
            }
        };
        match backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite => {
                // The writer first: it creates the file and migrates the schema.
                let write = sqlite_pool(&url, 1, false).await?;
                SQLITE_MIGRATIONS
                    .run(&write)
                    .await
                    .map_err(DbError::Migrate)?;
                let read = sqlite_pool(&url, 8, true).await?;
                Ok(Self {
                    read: Pool::Sqlite(read),
                    write: Pool::Sqlite(write),
                    backend,
                })
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres => {
                let write = postgres_pool(&url, 16, false).await?;
                POSTGRES_MIGRATIONS
                    .run(&write)
                    .await
                    .map_err(DbError::Migrate)?;
                let read = postgres_pool(&url, 16, true).await?;
                Ok(Self {
                    read: Pool::Postgres(read),
                    write: Pool::Postgres(write),
                    backend,
                })
            }
            #[allow(unreachable_patterns)]
            other => Err(DbError::NotBuiltIn(other)),
        }
    }

    /// The read-only pool (used by `crate::store`, and by tests that inspect
    /// the database behind the API; features call the store).
    pub fn read_pool(&self) -> &Pool {
        &self.read
    }

    /// The pool for writes (see the type's docs; used by `crate::store`
    /// through its `Writer` handle, and by tests).
    pub fn write_pool(&self) -> &Pool {
        &self.write
    }

    /// A transaction that will write (see the type's docs).
    pub async fn begin_write(&self) -> Result<WriteTx, sqlx::Error> {
        match &self.write {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(p) => Ok(WriteTx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?)),
            #[cfg(feature = "postgres")]
            Pool::Postgres(p) => Ok(WriteTx::Postgres(p.begin().await?)),
        }
    }

    /// A read-only transaction on the read pool: every statement in it sees
    /// the same snapshot (SQLite: a deferred transaction, whose snapshot is
    /// taken at its first read in WAL mode; PostgreSQL: `REPEATABLE READ`),
    /// for answers assembled from several queries that must agree (a room's
    /// `member_epoch`, members and invitees).
    pub async fn begin_read(&self) -> Result<ReadTx, sqlx::Error> {
        match &self.read {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(p) => Ok(ReadTx(WriteTx::Sqlite(
                p.begin_with("BEGIN DEFERRED").await?,
            ))),
            #[cfg(feature = "postgres")]
            Pool::Postgres(p) => Ok(ReadTx(WriteTx::Postgres(
                p.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .await?,
            ))),
        }
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        match &self.read {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(p) => sqlx::query("SELECT 1").execute(p).await.is_ok(),
            #[cfg(feature = "postgres")]
            Pool::Postgres(p) => sqlx::query("SELECT 1").execute(p).await.is_ok(),
        }
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

/// A stored count or sequence number, which cannot be negative.
pub fn u64_of(column: &str, n: i64) -> Result<u64, crate::error::ApiError> {
    u64::try_from(n).map_err(|_| crate::error::ApiError::internal(corrupt(column, &n)))
}
