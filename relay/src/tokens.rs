//! Opaque tokens: random, handed out once, stored only as their SHA-256
//! (refresh tokens, e-mail verification and password-reset links).

use base64ct::{Base64UrlUnpadded, Encoding};
use sotto_core::api::problem::codes;
use uuid::Uuid;

use crate::db::{Db, now_ms};
use crate::digest::token_hash;
use crate::error::{ApiError, ApiResult};
use crate::store::email_tokens;
pub use crate::store::email_tokens::Purpose;

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
    db: &Db,
    user: Uuid,
    email: &str,
    purpose: Purpose,
    ttl_ms: i64,
) -> ApiResult<String> {
    let token = new_opaque_token()?;
    let now = now_ms();
    email_tokens::insert(
        db.writer(),
        &token_hash(&token),
        user,
        purpose,
        email,
        now,
        now + ttl_ms,
    )
    .await?;
    Ok(token)
}

/// Consumes a single-use token: it must exist, match `purpose`, be unused and
/// unexpired. Returns (user id, address it was sent to).
pub async fn consume_email_token(
    db: &Db,
    token: &str,
    purpose: Purpose,
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
    email_tokens::consume(db.writer(), &token_hash(token), purpose, now_ms())
        .await?
        .ok_or_else(invalid)
}

/// Spends every outstanding verification and reset token of a user (after a
/// password or address change, old links must stop working).
pub async fn spend_email_tokens(db: &Db, user: Uuid) -> ApiResult<()> {
    email_tokens::spend_all_of(db.writer(), user, now_ms()).await
}
