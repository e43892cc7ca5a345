//! Single-use e-mail tokens (verification, password reset), stored hashed.

use uuid::Uuid;

use super::Writer;
use crate::error::ApiResult;
use crate::ids::parse_stored_id;

/// What a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Verify,
    Reset,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::Verify => "verify",
            Self::Reset => "reset",
        }
    }
}

/// Stores a token (by its hash) for `user`, sent to `email`.
pub async fn insert(
    w: Writer<'_>,
    hash: &str,
    user: Uuid,
    purpose: Purpose,
    email: &str,
    now: i64,
    expires_at: i64,
) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO email_tokens (token_hash, user_id, purpose, email, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(hash)
    .bind(user.to_string())
    .bind(purpose.as_str())
    .bind(email)
    .bind(now)
    .bind(expires_at)
    .execute(w.pool())
    .await?;
    Ok(())
}

/// Spends the token with `hash` if it is for `purpose`, unused and unexpired:
/// its user and the address it was sent to.
pub async fn consume(
    w: Writer<'_>,
    hash: &str,
    purpose: Purpose,
    now: i64,
) -> ApiResult<Option<(Uuid, String)>> {
    let row: Option<(String, String)> = sqlx::query_as(
        "UPDATE email_tokens SET used_at = $1 WHERE token_hash = $2 AND purpose = $3 AND used_at IS NULL \
         AND expires_at > $1 RETURNING user_id, email",
    )
    .bind(now)
    .bind(hash)
    .bind(purpose.as_str())
    .fetch_optional(w.pool())
    .await?;
    row.map(|(user, email)| Ok((parse_stored_id("email_tokens.user_id", &user)?, email)))
        .transpose()
}

/// Spends every outstanding token of `user`.
pub async fn spend_all_of(w: Writer<'_>, user: Uuid, now: i64) -> ApiResult<()> {
    sqlx::query("UPDATE email_tokens SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL")
        .bind(now)
        .bind(user.to_string())
        .execute(w.pool())
        .await?;
    Ok(())
}
