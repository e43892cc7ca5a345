//! Single-use e-mail tokens (verification, password reset), stored hashed.

use uuid::Uuid;

use super::{Id, Millis, Writer, q};
use crate::error::ApiResult;

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
    q!(
        w,
        execute,
        "INSERT INTO email_tokens (token_hash, user_id, purpose, email, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        hash,
        Id(user),
        purpose.as_str(),
        email,
        Millis(now),
        Millis(expires_at)
    );
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
    Ok(q!(
        w,
        optional,
        r#"UPDATE email_tokens SET used_at = $1 WHERE token_hash = $2 AND purpose = $3 AND used_at IS NULL
           AND expires_at > $1 RETURNING user_id AS "user_id: Id", email"#,
        Millis(now),
        hash,
        purpose.as_str()
        => |r| (r.user_id.0, r.email)
    ))
}

/// Spends every outstanding token of `user`.
pub async fn spend_all_of(w: Writer<'_>, user: Uuid, now: i64) -> ApiResult<()> {
    q!(
        w,
        execute,
        "UPDATE email_tokens SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL",
        Millis(now),
        Id(user)
    );
    Ok(())
}
