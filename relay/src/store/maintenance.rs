//! Database upkeep: the SQLite checkpoint, and the sweeps of expired rows
//! (`crate::housekeeping`).

use super::{Conn, Millis, Writer, q};
use crate::error::ApiResult;

/// SQLite: copies the write-ahead log into the database and starts the log
/// over (`PRAGMA wal_checkpoint(RESTART)`), waiting for the readers of the
/// moment to finish. SQLite's automatic checkpoints never wait, so with reads
/// always in flight the log is never restarted: under sustained posting it grew
/// to 894 MB in 12 s (30,000 messages) and every read searched it. Nothing on
/// PostgreSQL.
pub async fn checkpoint(w: Writer<'_>) -> ApiResult<()> {
    let mut held = w.hold().await?;
    match held.conn() {
        #[cfg(feature = "sqlite")]
        Conn::Sqlite(c) => {
            sqlx::query("PRAGMA wal_checkpoint(RESTART)")
                .execute(&mut *c)
                .await?;
        }
        #[cfg(feature = "postgres")]
        Conn::Postgres(_) => {}
    }
    Ok(())
}

/// Deletes sessions revoked before `revoked_before`, and sessions not used
/// since `idle_before` (every refresh token of theirs has expired); their
/// refresh tokens go with them. How many.
pub async fn sweep_sessions(
    w: Writer<'_>,
    revoked_before: i64,
    idle_before: i64,
) -> ApiResult<u64> {
    Ok(q!(
        w,
        execute,
        "DELETE FROM sessions WHERE (revoked_at IS NOT NULL AND revoked_at < $1) OR last_used_at < $2",
        Millis(revoked_before),
        Millis(idle_before)
    ))
}

/// Deletes refresh tokens that expired before `now` (spent or not: an expired
/// token is refused either way). How many.
pub async fn sweep_refresh_tokens(w: Writer<'_>, now: i64) -> ApiResult<u64> {
    Ok(q!(
        w,
        execute,
        "DELETE FROM refresh_tokens WHERE expires_at < $1",
        Millis(now)
    ))
}

/// Deletes e-mail tokens that expired before `now` or were used before
/// `used_before`. How many.
pub async fn sweep_email_tokens(w: Writer<'_>, now: i64, used_before: i64) -> ApiResult<u64> {
    Ok(q!(
        w,
        execute,
        "DELETE FROM email_tokens WHERE expires_at < $1 OR (used_at IS NOT NULL AND used_at < $2)",
        Millis(now),
        Millis(used_before)
    ))
}

/// Deletes audit entries older than `before`. How many.
pub async fn sweep_audit(w: Writer<'_>, before: i64) -> ApiResult<u64> {
    Ok(q!(
        w,
        execute,
        "DELETE FROM audit_log WHERE at < $1",
        Millis(before)
    ))
}
