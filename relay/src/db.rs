//! Database access: one `AnyPool` over SQLite (embedded default, WAL, foreign
//! keys on) or PostgreSQL, the same SQL for both (`$N` placeholders, BIGINT
//! times in ms, TEXT ids), and embedded migrations per backend.

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

#[derive(Clone)]
pub struct Db {
    pub pool: AnyPool,
    pub backend: Backend,
    /// SQLite admits one writer at a time, and a connection waiting for the
    /// write lock polls with growing sleeps; queueing writers here instead hands
    /// the lock over without sleeping.
    writer: std::sync::Arc<tokio::sync::Mutex<()>>,
}

/// A write transaction (see [`Db::begin_write`]); derefs to the connection.
pub struct WriteTx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
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
        let max = if backend == Backend::Sqlite { 8 } else { 16 };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        // After a checkpoint, shrink the WAL back to 64 MiB: under
                        // sustained load it can grow to hundreds of MiB and would
                        // otherwise keep that size on disk for good.
                        conn.execute("PRAGMA journal_size_limit = 67108864").await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .map_err(DbError::Connect)?;
        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&pool).await.map_err(DbError::Migrate)?;
        Ok(Self {
            pool,
            backend,
            writer: std::sync::Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// A transaction that will write. On SQLite, writers queue in-process and
    /// the transaction takes the write lock at once (`BEGIN IMMEDIATE`), so a
    /// transaction that reads before it writes cannot fail with a stale snapshot;
    /// on PostgreSQL, callers lock the rows they depend on (`UPDATE` or
    /// `... ON CONFLICT DO UPDATE` first).
    pub async fn begin_write(&self) -> Result<WriteTx, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => {
                let turn = self.writer.clone().lock_owned().await;
                let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
                Ok(WriteTx {
                    tx,
                    _turn: Some(turn),
                })
            }
            Backend::Postgres => Ok(WriteTx {
                tx: self.pool.begin().await?,
                _turn: None,
            }),
        }
    }

    /// For a single writing statement outside a transaction: on SQLite, waits
    /// for the in-process writer queue (see [`Db::begin_write`]); hold the guard
    /// while the statement runs.
    pub async fn write_turn(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        match self.backend {
            Backend::Sqlite => Some(self.writer.clone().lock_owned().await),
            Backend::Postgres => None,
        }
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
            .fetch_one(&self.pool)
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
