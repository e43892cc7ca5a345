//! Accounts and auth (api.md "Accounts and auth"): register, e-mail verification,
//! login, token refresh and logout, password reset, username availability.
//!
//! Every type here that holds a password or a token implements `Debug` by hand
//! and prints `[redacted]` in its place.

use core::fmt;

use serde::{Deserialize, Serialize};

use super::{Redacted, users::User};

/// Minimum password length, in characters (Unicode scalar values).
pub const PASSWORD_MIN_CHARS: usize = 8;

/// Maximum password length in characters.
pub const PASSWORD_MAX_CHARS: usize = 1024;
/// Maximum password length in bytes (UTF-8: at most 4 per character).
pub const PASSWORD_MAX_BYTES: usize = 4 * PASSWORD_MAX_CHARS;

/// The token of an e-mailed link (`https://relay/verify-email#token=...`,
/// `?token=...`, `&token=...`), or the argument itself (trimmed) when it is
/// already a token. Both SDKs use this one parser (the npm package through
/// its binding `tokenFromLink`).
pub fn token_from_link(link_or_token: &str) -> String {
    let s = link_or_token.trim();
    for sep in ["#token=", "?token=", "&token="] {
        if let Some((_, rest)) = s.split_once(sep) {
            return rest.split(['&', '#']).next().unwrap_or(rest).to_owned();
        }
    }
    s.to_owned()
}

/// The only `token_type` the relay issues.
pub const TOKEN_TYPE_BEARER: &str = "Bearer";

/// `POST /api/v1/auth/register` (public) → 201 [`User`].
///
/// The relay sends a verification e-mail to `email`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// Wanted username; immutable once created: 3-32 of `a-z 0-9 _ . -` (stored in
    /// lower case), starting with a letter or digit.
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = r"^\s*[A-Za-z0-9][A-Za-z0-9_.-]{2,31}\s*$",
            min_length = 3,
            max_length = 64
        )
    )]
    pub username: String,
    /// E-mail address, to be verified.
    #[cfg_attr(feature = "openapi", schema(min_length = 3, max_length = 254))]
    pub email: String,
    /// Password, [`PASSWORD_MIN_CHARS`] to [`PASSWORD_MAX_CHARS`] characters, not one
    /// of the most common.
    #[cfg_attr(
        feature = "openapi",
        schema(format = Password, min_length = 8, max_length = 1024)
    )]
    pub password: String,
}

impl fmt::Debug for RegisterRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisterRequest")
            .field("username", &self.username)
            .field("email", &self.email)
            .field("password", &Redacted)
            .finish()
    }
}

/// `POST /api/v1/auth/verify-email` (public) → 200.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct VerifyEmailRequest {
    /// The single-use token from the e-mailed link (valid 24 h).
    pub token: String,
}

impl fmt::Debug for VerifyEmailRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyEmailRequest")
            .field("token", &Redacted)
            .finish()
    }
}

/// `POST /api/v1/auth/resend-verification` (public) → 202, always.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct ResendVerificationRequest {
    /// The address to send a new verification link to, if it is an unverified
    /// account's.
    pub email: String,
}

/// `POST /api/v1/auth/login` (public) → 200 [`TokenResponse`].
///
/// 401 `invalid_credentials` on a wrong login or password; 403
/// `email_not_verified` when verification is required and not done.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Username or e-mail address.
    pub login: String,
    /// Password.
    #[cfg_attr(feature = "openapi", schema(format = Password))]
    pub password: String,
}

impl fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginRequest")
            .field("login", &self.login)
            .field("password", &Redacted)
            .finish()
    }
}

/// 200 answer of `POST /api/v1/auth/login` and `POST /api/v1/auth/refresh`: a new
/// access/refresh token pair.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TokenResponse {
    /// Short-lived bearer token for `Authorization: Bearer ...` and the WebSocket
    /// `auth` frame.
    pub access_token: String,
    /// Single-use token for `POST /api/v1/auth/refresh`; rotated on every refresh.
    pub refresh_token: String,
    /// Always [`TOKEN_TYPE_BEARER`] (`"Bearer"`).
    pub token_type: String,
    /// Lifetime of `access_token`, in seconds from issue.
    pub expires_in: u64,
    /// The authenticated user.
    pub user: User,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &Redacted)
            .field("refresh_token", &Redacted)
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("user", &self.user)
            .finish()
    }
}

/// `POST /api/v1/auth/refresh` (public) → 200 [`TokenResponse`].
///
/// Refresh tokens rotate; presenting a spent one revokes its whole session family
/// (401 `refresh_reused`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The current refresh token.
    pub refresh_token: String,
}

impl fmt::Debug for RefreshRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshRequest")
            .field("refresh_token", &Redacted)
            .finish()
    }
}

/// `POST /api/v1/auth/logout` (user) → 204; the session is revoked.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct LogoutRequest {
    /// The refresh token of the session to end.
    pub refresh_token: String,
}

impl fmt::Debug for LogoutRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogoutRequest")
            .field("refresh_token", &Redacted)
            .finish()
    }
}

/// `POST /api/v1/auth/password/forgot` (public) → 202, always, whether or not the
/// address exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct ForgotPasswordRequest {
    /// The account's e-mail address.
    pub email: String,
}

/// `POST /api/v1/auth/password/reset` (public) → 204; all sessions of the user are
/// revoked.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    /// The single-use reset token from the e-mail (valid 1 h).
    pub token: String,
    /// The new password (same rules as at registration).
    #[cfg_attr(
        feature = "openapi",
        schema(format = Password, min_length = 8, max_length = 1024)
    )]
    pub new_password: String,
}

impl fmt::Debug for ResetPasswordRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResetPasswordRequest")
            .field("token", &Redacted)
            .field("new_password", &Redacted)
            .finish()
    }
}

/// Query of `GET /api/v1/users/check-username?username=` (public).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct CheckUsernameQuery {
    /// The username to check.
    #[cfg_attr(
        feature = "openapi",
        param(
            pattern = r"^\s*[A-Za-z0-9][A-Za-z0-9_.-]{2,31}\s*$",
            min_length = 3,
            max_length = 64
        ),
        schema(
            pattern = r"^\s*[A-Za-z0-9][A-Za-z0-9_.-]{2,31}\s*$",
            min_length = 3,
            max_length = 64
        )
    )]
    pub username: String,
}

/// Answer of `GET /api/v1/users/check-username`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CheckUsernameResponse {
    /// Whether the username is valid and not taken.
    pub available: bool,
}
