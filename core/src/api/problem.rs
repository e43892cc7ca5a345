//! Problem details (api.md "Conventions": errors are RFC 9457
//! `application/problem+json` bodies `{"type", "title", "status", "detail", "code"}`
//! with a stable snake_case `code`).
//!
//! The same `code` strings are used by the WebSocket `error` frame
//! ([`crate::api::ServerFrame::Error`]).

use serde::{Deserialize, Serialize};

/// Media type of an error body.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// The RFC 9457 `type` used when no more specific problem type URI is given.
pub const ABOUT_BLANK: &str = "about:blank";

/// An RFC 9457 problem details body, as sent with every 4xx/5xx answer.
///
/// Clients branch on [`Problem::code`] (one of [`codes`]); `title` and `detail` are
/// for humans and may change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[error("{status} {code}: {title}")]
pub struct Problem {
    /// Problem type URI reference (`"about:blank"` unless the relay documents a
    /// more specific one).
    #[serde(rename = "type", default = "about_blank")]
    #[cfg_attr(feature = "openapi", schema(required))]
    pub r#type: String,
    /// Short, human-readable summary of the problem type.
    pub title: String,
    /// The HTTP status code of the answer.
    pub status: u16,
    /// Human-readable explanation of this occurrence; never contains internal
    /// (database, stack) details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub detail: Option<String>,
    /// Stable machine-readable snake_case code; see [`codes`].
    pub code: String,
    /// URI reference identifying this occurrence (e.g. the request path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub instance: Option<String>,
}

fn about_blank() -> String {
    ABOUT_BLANK.to_owned()
}

impl Problem {
    /// A problem with type `about:blank`, no detail and no instance.
    #[must_use]
    pub fn new(status: u16, code: &str, title: impl Into<String>) -> Self {
        Self {
            r#type: about_blank(),
            title: title.into(),
            status,
            detail: None,
            code: code.to_owned(),
            instance: None,
        }
    }

    /// Sets `detail`.
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Sets `instance`.
    #[must_use]
    pub fn with_instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into());
        self
    }

    /// Sets `type`.
    #[must_use]
    pub fn with_type(mut self, r#type: impl Into<String>) -> Self {
        self.r#type = r#type.into();
        self
    }
}

/// Stable error codes (the `code` member of a [`Problem`] and of a WebSocket
/// `error` frame). The usual HTTP status is given for each.
pub mod codes {
    // ---- generic request problems ----
    /// 400: the body or query failed validation (`detail` says which field).
    pub const VALIDATION_FAILED: &str = "validation_failed";
    /// 400: the body is not valid JSON or does not match the expected shape.
    pub const INVALID_JSON: &str = "invalid_json";
    /// 400: the body contains a field the route does not know.
    pub const UNKNOWN_FIELD: &str = "unknown_field";
    /// 400: a `?cursor=` was malformed or belongs to another list.
    pub const INVALID_CURSOR: &str = "invalid_cursor";
    /// 413: the body is over the route's size limit.
    pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
    /// 413: an envelope or attachment is over its configured size limit.
    pub const TOO_LARGE: &str = "too_large";
    /// 415: the request's `Content-Type` is not accepted by the route.
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "unsupported_media_type";
    /// 405: the route exists but not with this method.
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
    /// 429: rate limited; see the `Retry-After` header (on a WebSocket, the
    /// `error` frame's `retry_after_ms`).
    pub const RATE_LIMITED: &str = "rate_limited";
    /// 409: a cap on a count is reached (rooms per user, members per room, open
    /// invitations, devices, push subscriptions); waiting does not help, removing
    /// something does. `detail` names the cap.
    pub const LIMIT_REACHED: &str = "limit_reached";

    // ---- authentication and authorisation ----
    /// 401: no, malformed, invalid or expired access token.
    pub const UNAUTHORIZED: &str = "unauthorized";
    /// 401: wrong login or password (deliberately not saying which).
    pub const INVALID_CREDENTIALS: &str = "invalid_credentials";
    /// 403: login refused until the e-mail address is verified.
    pub const EMAIL_NOT_VERIFIED: &str = "email_not_verified";
    /// 401 (refresh) / 400 (verify, reset): unknown, used or malformed token.
    pub const INVALID_TOKEN: &str = "invalid_token";
    /// 401 / 400: the token was valid but has expired.
    pub const TOKEN_EXPIRED: &str = "token_expired";
    /// 401: a spent refresh token was presented again; its whole session family
    /// has been revoked.
    pub const REFRESH_REUSED: &str = "refresh_reused";
    /// 403: authenticated but not allowed.
    pub const FORBIDDEN: &str = "forbidden";

    // ---- accounts and users ----
    /// 409: the username is already in use.
    pub const USERNAME_TAKEN: &str = "username_taken";
    /// 409: the e-mail address is already in use.
    pub const EMAIL_TAKEN: &str = "email_taken";
    /// 400: usernames cannot be changed.
    pub const USERNAME_IMMUTABLE: &str = "username_immutable";
    /// 400: the username does not follow the relay's username rules.
    pub const INVALID_USERNAME: &str = "invalid_username";
    /// 400: the e-mail address is malformed.
    pub const INVALID_EMAIL: &str = "invalid_email";
    /// 400: the password is too short, too long or too common.
    pub const WEAK_PASSWORD: &str = "weak_password";
    /// 400: a password change needs `current_password`.
    pub const CURRENT_PASSWORD_REQUIRED: &str = "current_password_required";
    /// 400: the last master can be neither deleted nor demoted.
    pub const LAST_MASTER: &str = "last_master";
    /// 400: nobody deletes their own account through the admin route.
    pub const CANNOT_DELETE_SELF: &str = "cannot_delete_self";

    // ---- devices and keys ----
    /// 400: the device bundle is malformed, has a bad key or a bad signature.
    pub const INVALID_BUNDLE: &str = "invalid_bundle";
    /// 409: the bundle carries a different identity key than the user's, and
    /// `replace_identity` was not set.
    pub const IDENTITY_KEY_CHANGED: &str = "identity_key_changed";
    /// 400: the device id of the path and of the bundle differ, or the bundle
    /// names another user.
    pub const DEVICE_MISMATCH: &str = "device_mismatch";
    /// 403 (WebSocket / messages): the caller's access token is not bound to a
    /// registered device, which the route needs.
    pub const DEVICE_REQUIRED: &str = "device_required";

    // ---- rooms, messages, contacts ----
    /// 404/403: the caller is not a member of the room.
    pub const NOT_A_MEMBER: &str = "not_a_member";
    /// 409: the user is already a member of the room.
    pub const ALREADY_MEMBER: &str = "already_member";
    /// 400: direct rooms have exactly two members and cannot be changed.
    pub const DIRECT_ROOM: &str = "direct_room";
    /// 400: the envelope cannot be parsed.
    pub const INVALID_ENVELOPE: &str = "invalid_envelope";
    /// 400: the envelope's header (room, sender, device, client id) does not match
    /// the route, the token or the request's `client_id`.
    pub const ENVELOPE_MISMATCH: &str = "envelope_mismatch";
    /// A byte quota would be exceeded: 413 for the attachment storage quota;
    /// 429 with `Retry-After` for the message quotas (bytes per day, bytes
    /// stored), nothing stored.
    pub const QUOTA_EXCEEDED: &str = "quota_exceeded";
    /// 403: one of the two users blocked the other: no room invitations, no
    /// direct room, no posts into their direct room.
    pub const BLOCKED: &str = "blocked";
    /// 409: the user already has a pending invitation to this room.
    pub const ALREADY_INVITED: &str = "already_invited";
    /// 408: the client stopped sending a request body (an upload) for too long.
    pub const REQUEST_TIMEOUT: &str = "request_timeout";
    /// 409: the contact already exists.
    pub const CONTACT_EXISTS: &str = "contact_exists";
    /// 400: a user cannot be their own contact or open a direct room with themself.
    pub const CANNOT_TARGET_SELF: &str = "cannot_target_self";

    // ---- push ----
    /// 400: the push subscription is malformed or its endpoint is refused.
    pub const INVALID_SUBSCRIPTION: &str = "invalid_subscription";

    // ---- WebSocket ----
    /// The first frame was not `auth` (then the socket closes with 4401).
    pub const AUTH_REQUIRED: &str = "auth_required";
    /// A frame was not valid JSON, had an unknown `type` or bad fields.
    pub const INVALID_FRAME: &str = "invalid_frame";

    // ---- generic resource and server problems ----
    /// 404: no such resource, or one the caller may not know exists.
    pub const NOT_FOUND: &str = "not_found";
    /// 409: the request conflicts with the current state.
    pub const CONFLICT: &str = "conflict";
    /// 500: an internal error (logged by the relay, never described to clients).
    pub const INTERNAL: &str = "internal";
    /// 503: a dependency (database, mail) is unavailable.
    pub const UNAVAILABLE: &str = "unavailable";

    /// Every code above, for exhaustive tests and documentation.
    pub const ALL: &[&str] = &[
        VALIDATION_FAILED,
        INVALID_JSON,
        UNKNOWN_FIELD,
        INVALID_CURSOR,
        PAYLOAD_TOO_LARGE,
        TOO_LARGE,
        UNSUPPORTED_MEDIA_TYPE,
        METHOD_NOT_ALLOWED,
        RATE_LIMITED,
        UNAUTHORIZED,
        INVALID_CREDENTIALS,
        EMAIL_NOT_VERIFIED,
        INVALID_TOKEN,
        TOKEN_EXPIRED,
        REFRESH_REUSED,
        FORBIDDEN,
        USERNAME_TAKEN,
        EMAIL_TAKEN,
        USERNAME_IMMUTABLE,
        INVALID_USERNAME,
        INVALID_EMAIL,
        WEAK_PASSWORD,
        CURRENT_PASSWORD_REQUIRED,
        LAST_MASTER,
        CANNOT_DELETE_SELF,
        INVALID_BUNDLE,
        IDENTITY_KEY_CHANGED,
        DEVICE_MISMATCH,
        DEVICE_REQUIRED,
        NOT_A_MEMBER,
        ALREADY_MEMBER,
        DIRECT_ROOM,
        INVALID_ENVELOPE,
        ENVELOPE_MISMATCH,
        CONTACT_EXISTS,
        CANNOT_TARGET_SELF,
        INVALID_SUBSCRIPTION,
        AUTH_REQUIRED,
        INVALID_FRAME,
        NOT_FOUND,
        CONFLICT,
        INTERNAL,
        UNAVAILABLE,
        QUOTA_EXCEEDED,
        REQUEST_TIMEOUT,
        LIMIT_REACHED,
        BLOCKED,
        ALREADY_INVITED,
    ];
}
