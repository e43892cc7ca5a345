//! Wire types of the relay API (`docs/api.md`, "Relay API contract (v1)").
//!
//! Every request body, response body, query string and WebSocket frame of the
//! relay lives here, so the relay (axum) and every client (native SDK, WASM, tests)
//! serialise exactly the same JSON. This module does no I/O: it only describes
//! shapes.
//!
//! Conventions shared by all files (api.md "Conventions"):
//! - IDs are [`uuid::Uuid`] (v7, chosen by the relay), serialised as strings.
//! - Timestamps are RFC 3339 UTC strings formatted by the relay ([`Timestamp`]).
//! - Binary fields (keys, envelopes, signatures) are [`crate::encoding::B64`]:
//!   base64url without padding on the wire.
//! - Request bodies reject unknown fields (`#[serde(deny_unknown_fields)]`, answered
//!   with 400); response bodies accept them, so an older client keeps working
//!   against a newer relay.
//! - Enums are snake_case strings.
//! - Types that hold a password or a token implement `Debug` by hand and print
//!   `[redacted]` in its place.
//!
//! | file | api.md section |
//! |---|---|
//! | [`auth`] | Accounts and auth |
//! | [`users`] | Users and roles |
//! | [`devices`] | Devices and public keys |
//! | [`rooms`] | Rooms and membership |
//! | [`messages`] | Messages (and attachments) |
//! | [`contacts`] | Contacts |
//! | [`push`] | Push |
//! | [`ws`] | Real time: `GET /api/v1/ws` |
//! | [`ops`] | Operations |
//! | [`problem`] | Conventions: errors (RFC 9457) |
//! | [`pagination`] | Conventions: cursor pagination |

use core::fmt;

pub mod auth;
pub mod contacts;
pub mod devices;
pub mod messages;
pub mod ops;
pub mod pagination;
pub mod problem;
pub mod push;
pub mod rooms;
pub mod users;
pub mod ws;

pub use auth::{
    CheckUsernameQuery, CheckUsernameResponse, ForgotPasswordRequest, LoginRequest, LogoutRequest,
    RefreshRequest, RegisterRequest, ResendVerificationRequest, ResetPasswordRequest,
    TokenResponse, VerifyEmailRequest,
};
pub use contacts::{AddContactRequest, Contact, PatchContactRequest};
pub use devices::{Device, KeysQueryRequest, KeysQueryResponse, PutDeviceRequest};
pub use messages::{
    AttachmentCreated, Message, MessageListQuery, PostMessageRequest, PostMessageResponse, Receipt,
    ReceiptKind, ReceiptRequest, UnreadResponse,
};
pub use ops::{CheckStatus, Health, RootInfo};
pub use pagination::{DEFAULT_LIMIT, MAX_LIMIT, Page, PageQuery};
pub use problem::{PROBLEM_CONTENT_TYPE, Problem, codes};
pub use push::{
    DeletePushSubscriptionRequest, PushPayload, PushSubscription, PushSubscriptionKeys,
    PushSubscriptionRequest, VapidPublicKey,
};
pub use rooms::{
    AddMemberRequest, CreateRoomRequest, DirectRoomRequest, PatchRoomRequest, Room, RoomChange,
    RoomDetails, RoomKind, RoomMember,
};
pub use users::{
    CreateUserRequest, PatchUserRequest, PublicUser, Role, User, UserListQuery, UserSearchQuery,
};
pub use ws::{ClientFrame, ServerFrame};

/// Path prefix of every versioned route (`/api/v1/...`).
pub const API_PREFIX: &str = "/api/v1";

/// An RFC 3339 timestamp in UTC (e.g. `"2025-01-31T12:00:00.123Z"`).
///
/// The relay formats these; clients treat them as opaque, sortable strings or parse
/// them with the date library of their choice. The core has no clock and no date
/// dependency, hence a plain `String`.
pub type Timestamp = String;

/// Stands in for a secret in hand-written `Debug` output.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// `Some([redacted])` or `None`, for optional secrets in `Debug` output.
fn redact_opt<T>(value: &Option<T>) -> Option<Redacted> {
    value.as_ref().map(|_| Redacted)
}

/// Deserialises a field that distinguishes "absent" from "null" in PATCH bodies.
///
/// Used with `#[serde(default, deserialize_with = "nullable::deserialize",
/// skip_serializing_if = "Option::is_none")]` on an `Option<Option<T>>`:
/// absent → `None` (leave unchanged), `null` → `Some(None)` (clear),
/// a value → `Some(Some(v))` (set). Serialising `Some(None)` writes `null`.
mod nullable {
    use serde::{Deserialize, Deserializer};

    /// See the module docs.
    pub(super) fn deserialize<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        Option::<T>::deserialize(deserializer).map(Some)
    }
}
