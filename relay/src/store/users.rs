//! Account writes made by the e-mail flows (the rest of the `users` statements
//! still live in `users.rs` and move here next).

use uuid::Uuid;

use super::Writer;
use crate::error::ApiResult;

/// Marks `user`'s address verified if it is still `email`; whether it was.
pub async fn mark_email_verified(
    w: Writer<'_>,
    user: Uuid,
    email: &str,
    now: i64,
) -> ApiResult<bool> {
    Ok(sqlx::query(
        "UPDATE users SET email_verified = 1, updated_at = $1 WHERE id = $2 AND email = $3",
    )
    .bind(now)
    .bind(user.to_string())
    .bind(email)
    .execute(w.pool())
    .await?
    .rows_affected()
        == 1)
}

/// Sets `user`'s password hash (a reset through a link sent to `email`, which
/// also proves the address) if `email` is still their address; whether it was.
pub async fn reset_password(
    w: Writer<'_>,
    user: Uuid,
    email: &str,
    password_hash: &str,
    now: i64,
) -> ApiResult<bool> {
    Ok(sqlx::query(
        "UPDATE users SET password_hash = $1, updated_at = $2, email_verified = 1 WHERE id = $4 AND email = $3",
    )
    .bind(password_hash)
    .bind(now)
    .bind(email)
    .bind(user.to_string())
    .execute(w.pool())
    .await?
    .rows_affected()
        == 1)
}
