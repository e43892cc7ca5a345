//! Opaque tokens: random, handed out once, stored only as their SHA-256
//! (refresh tokens, e-mail verification and password-reset links).

use base64ct::{Base64UrlUnpadded, Encoding};
use sotto_core::api::problem::codes;
use uuid::Uuid;

use crate::db::now_ms;
use crate::digest::token_hash;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// A fresh opaque token: 32 random bytes, base64url.
pub fn new_opaque_token() -> ApiResult<String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(ApiError::internal)?;
    Ok(Base64UrlUnpadded::encode_string(&b))
}

pub const VERIFY_TTL_MS: i64 = 24 * 3600 * 1000;

pub const RESET_TTL_MS: i64 = 3600 * 1000;

/// Creates a single-use token for `purpose` and returns it (only its hash is stored).
pub async fn create_email_token(
    state: &AppState,
    user: Uuid,
    email: &str,
    purpose: &str,
    ttl_ms: i64,
) -> ApiResult<String> {
    let token = new_opaque_token()?;
    let now = now_ms();
    sqlx::query(
        "INSERT INTO email_tokens (token_hash, user_id, purpose, email, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(token_hash(&token))
    .bind(user.to_string())
    .bind(purpose)
    .bind(email)
    .bind(now)
    .bind(now + ttl_ms)
    .execute(state.db.write())
    .await?;
    Ok(token)
}

/// Consumes a single-use token: it must exist, match `purpose`, be unused and
/// unexpired. Returns (user id, address it was sent to).
pub async fn consume_email_token(
    state: &AppState,
    token: &str,
    purpose: &str,
) -> ApiResult<(Uuid, String)> {
    let invalid = || {
        ApiError::bad_request(
            codes::INVALID_TOKEN,
            "this link is invalid, used or expired",
        )
    };
    if token.is_empty() || token.len() > 256 {
        return Err(invalid());
    }
    let now = now_ms();
    let row: Option<(String, String)> = sqlx::query_as(
        "UPDATE email_tokens SET used_at = $1 WHERE token_hash = $2 AND purpose = $3 AND used_at IS NULL \
         AND expires_at > $1 RETURNING user_id, email",
    )
    .bind(now)
    .bind(token_hash(token))
    .bind(purpose)
    .fetch_optional(state.db.write())
    .await?;
    let (user, email) = row.ok_or_else(invalid)?;
    Ok((Uuid::parse_str(&user).map_err(|_| invalid())?, email))
}

/// Spends every outstanding verification and reset token of a user (after a
/// password or address change, old links must stop working).
pub async fn spend_email_tokens(state: &AppState, user: Uuid) -> ApiResult<()> {
    sqlx::query("UPDATE email_tokens SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL")
        .bind(now_ms())
        .bind(user.to_string())
        .execute(state.db.write())
        .await?;
    Ok(())
}
