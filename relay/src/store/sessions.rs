//! Sessions (one per login) and their rotating refresh tokens, stored hashed.

use uuid::Uuid;

use super::Writer;
use crate::auth::parse_role;
use crate::db::Db;
use crate::error::ApiResult;
use crate::ids::parse_stored_id;
use crate::users::{USER_COLUMNS, UserRow};
use sotto_core::api::users::Role;

/// The role of `user` if `session` is theirs and live.
pub async fn live_session_role(db: &Db, session: Uuid, user: Uuid) -> ApiResult<Option<Role>> {
    let role: Option<String> = sqlx::query_scalar(
        "SELECT u.role FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.id = $1 AND s.user_id = $2 AND s.revoked_at IS NULL",
    )
    .bind(session.to_string())
    .bind(user.to_string())
    .fetch_optional(db.read())
    .await?;
    role.map(|r| parse_role(&r)).transpose()
}

/// `user`'s row if `session` is theirs and live (one query: what `/me` needs).
pub async fn live_session_user(db: &Db, session: Uuid, user: Uuid) -> ApiResult<Option<UserRow>> {
    Ok(sqlx::query_as::<_, UserRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.id = $1 AND s.user_id = $2 AND s.revoked_at IS NULL",
        prefixed_user_columns()
    )))
    .bind(session.to_string())
    .bind(user.to_string())
    .fetch_optional(db.read())
    .await?)
}

fn prefixed_user_columns() -> String {
    USER_COLUMNS
        .split(", ")
        .map(|c| format!("u.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Starts a session for `user`.
pub async fn create(w: Writer<'_>, session: Uuid, user: Uuid, now: i64) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO sessions (id, user_id, created_at, last_used_at) VALUES ($1, $2, $3, $3)",
    )
    .bind(session.to_string())
    .bind(user.to_string())
    .bind(now)
    .execute(w.pool())
    .await?;
    Ok(())
}

/// Stores a refresh token (by its hash) for `session`.
pub async fn add_refresh_token(
    w: Writer<'_>,
    hash: &str,
    session: Uuid,
    now: i64,
    expires_at: i64,
) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(hash)
    .bind(session.to_string())
    .bind(now)
    .bind(expires_at)
    .execute(w.pool())
    .await?;
    Ok(())
}

/// A stored refresh token.
pub struct RefreshToken {
    pub session: Uuid,
    pub expires_at: i64,
    pub used: bool,
}

/// The refresh token with this hash, if any.
pub async fn find_refresh_token(db: &Db, hash: &str) -> ApiResult<Option<RefreshToken>> {
    let row: Option<(String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT session_id, expires_at, used_at FROM refresh_tokens WHERE token_hash = $1",
    )
    .bind(hash)
    .fetch_optional(db.read())
    .await?;
    row.map(|(session, expires_at, used_at)| {
        Ok(RefreshToken {
            session: parse_stored_id("refresh_tokens.session_id", &session)?,
            expires_at,
            used: used_at.is_some(),
        })
    })
    .transpose()
}

/// Spends a refresh token; `true` for the one caller that spent it (of two
/// concurrent uses only one wins; the other is a reuse).
pub async fn spend_refresh_token(w: Writer<'_>, hash: &str, now: i64) -> ApiResult<bool> {
    Ok(sqlx::query(
        "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL",
    )
    .bind(now)
    .bind(hash)
    .execute(w.pool())
    .await?
    .rows_affected()
        == 1)
}

/// Revokes one session.
pub async fn revoke(w: Writer<'_>, session: Uuid, now: i64) -> ApiResult<()> {
    sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(session.to_string())
        .execute(w.pool())
        .await?;
    Ok(())
}

/// The user a session belongs to (live or not).
pub async fn owner(db: &Db, session: Uuid) -> ApiResult<Option<Uuid>> {
    let owner: Option<String> = sqlx::query_scalar("SELECT user_id FROM sessions WHERE id = $1")
        .bind(session.to_string())
        .fetch_optional(db.read())
        .await?;
    owner
        .map(|o| parse_stored_id("sessions.user_id", &o))
        .transpose()
}

/// The user of a live session.
pub async fn user_of_live(db: &Db, session: Uuid) -> ApiResult<Option<UserRow>> {
    Ok(sqlx::query_as::<_, UserRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1 AND s.revoked_at IS NULL",
        prefixed_user_columns()
    )))
    .bind(session.to_string())
    .fetch_optional(db.read())
    .await?)
}

/// Records that a session was used now.
pub async fn touch(w: Writer<'_>, session: Uuid, now: i64) -> ApiResult<()> {
    sqlx::query("UPDATE sessions SET last_used_at = $1 WHERE id = $2")
        .bind(now)
        .bind(session.to_string())
        .execute(w.pool())
        .await?;
    Ok(())
}

/// Logout: revokes `session` of `user`, and the session the refresh token with
/// `refresh_hash` belongs to if that is `user`'s too.
pub async fn revoke_for_logout(
    w: Writer<'_>,
    user: Uuid,
    session: Uuid,
    refresh_hash: &str,
    now: i64,
) -> ApiResult<()> {
    sqlx::query(
        "UPDATE sessions SET revoked_at = $1 WHERE revoked_at IS NULL AND user_id = $2 AND \
         (id = $3 OR id = (SELECT session_id FROM refresh_tokens WHERE token_hash = $4))",
    )
    .bind(now)
    .bind(user.to_string())
    .bind(session.to_string())
    .bind(refresh_hash)
    .execute(w.pool())
    .await?;
    Ok(())
}

/// Revokes every live session of `user` except `keep`.
pub async fn revoke_all_of(
    w: Writer<'_>,
    user: Uuid,
    keep: Option<Uuid>,
    now: i64,
) -> ApiResult<()> {
    sqlx::query(
        "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL AND id <> $3",
    )
    .bind(now)
    .bind(user.to_string())
    .bind(keep.map(|k| k.to_string()).unwrap_or_default())
    .execute(w.pool())
    .await?;
    Ok(())
}
