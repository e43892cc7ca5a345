//! Sessions (one per login) and their rotating refresh tokens, stored hashed.

use uuid::Uuid;

use super::users::UserRow;
use super::users::parse_role;
use super::users::user_row;
use super::{Flag, Id, Millis, Writer, q};
use crate::db::Db;
use crate::error::ApiResult;
use sotto_core::api::users::Role;

/// The role of `user` if `session` is theirs and live.
pub async fn live_session_role(db: &Db, session: Uuid, user: Uuid) -> ApiResult<Option<Role>> {
    q!(
        db,
        optional,
        "SELECT u.role FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.id = $1 AND s.user_id = $2 AND s.revoked_at IS NULL",
        Id(session),
        Id(user)
        => |r| r.role
    )
    .map(|r| parse_role(&r))
    .transpose()
}

/// `user`'s row if `session` is theirs and live (one query: what `/me` needs).
pub async fn live_session_user(db: &Db, session: Uuid, user: Uuid) -> ApiResult<Option<UserRow>> {
    Ok(q!(
        db,
        optional,
        r#"SELECT u.id AS "id: Id", u.username, u.email, u.display_name, u.password_hash, u.role,
           u.email_verified AS "email_verified: Flag", u.created_at AS "created_at: Millis",
           u.updated_at AS "updated_at: Millis"
           FROM sessions s JOIN users u ON u.id = s.user_id
           WHERE s.id = $1 AND s.user_id = $2 AND s.revoked_at IS NULL"#,
        Id(session),
        Id(user)
        => |r| user_row!(r)
    )
    .transpose()?)
}

/// Starts a session for `user`.
pub async fn create(w: Writer<'_>, session: Uuid, user: Uuid, now: i64) -> ApiResult<()> {
    q!(
        w,
        execute,
        "INSERT INTO sessions (id, user_id, created_at, last_used_at) VALUES ($1, $2, $3, $3)",
        Id(session),
        Id(user),
        Millis(now)
    );
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
    q!(
        w,
        execute,
        "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        hash,
        Id(session),
        Millis(now),
        Millis(expires_at)
    );
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
    Ok(q!(
        db,
        optional,
        r#"SELECT session_id AS "session_id: Id", expires_at AS "expires_at: Millis",
           used_at AS "used_at: Millis" FROM refresh_tokens WHERE token_hash = $1"#,
        hash
        => |r| RefreshToken {
            session: r.session_id.0,
            expires_at: r.expires_at.0,
            used: r.used_at.is_some(),
        }
    ))
}

/// Spends a refresh token; `true` for the one caller that spent it (of two
/// concurrent uses only one wins; the other is a reuse).
pub async fn spend_refresh_token(w: Writer<'_>, hash: &str, now: i64) -> ApiResult<bool> {
    Ok(q!(
        w,
        execute,
        "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL",
        Millis(now),
        hash
    ) == 1)
}

/// Revokes one session.
pub async fn revoke(w: Writer<'_>, session: Uuid, now: i64) -> ApiResult<()> {
    q!(
        w,
        execute,
        "UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        Millis(now),
        Id(session)
    );
    Ok(())
}

/// The user a session belongs to (live or not).
pub async fn owner(db: &Db, session: Uuid) -> ApiResult<Option<Uuid>> {
    Ok(q!(
        db,
        optional,
        r#"SELECT user_id AS "user_id: Id" FROM sessions WHERE id = $1"#,
        Id(session)
        => |r| r.user_id.0
    ))
}

/// The user of a live session.
pub async fn user_of_live(db: &Db, session: Uuid) -> ApiResult<Option<UserRow>> {
    Ok(q!(
        db,
        optional,
        r#"SELECT u.id AS "id: Id", u.username, u.email, u.display_name, u.password_hash, u.role,
           u.email_verified AS "email_verified: Flag", u.created_at AS "created_at: Millis",
           u.updated_at AS "updated_at: Millis"
           FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1 AND s.revoked_at IS NULL"#,
        Id(session)
        => |r| user_row!(r)
    )
    .transpose()?)
}

/// Records that a session was used now.
pub async fn touch(w: Writer<'_>, session: Uuid, now: i64) -> ApiResult<()> {
    q!(
        w,
        execute,
        "UPDATE sessions SET last_used_at = $1 WHERE id = $2",
        Millis(now),
        Id(session)
    );
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
    q!(
        w,
        execute,
        "UPDATE sessions SET revoked_at = $1 WHERE revoked_at IS NULL AND user_id = $2 AND
         (id = $3 OR id = (SELECT session_id FROM refresh_tokens WHERE token_hash = $4))",
        Millis(now),
        Id(user),
        Id(session),
        refresh_hash
    );
    Ok(())
}

/// Revokes every live session of `user` except `keep`.
pub async fn revoke_all_of(
    w: Writer<'_>,
    user: Uuid,
    keep: Option<Uuid>,
    now: i64,
) -> ApiResult<()> {
    q!(
        w,
        execute,
        "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL AND id <> $3",
        Millis(now),
        Id(user),
        Id(keep.unwrap_or_else(Uuid::nil))
    );
    Ok(())
}
