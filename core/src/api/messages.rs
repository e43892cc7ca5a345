//! Messages (api.md "Messages"): posting and listing sealed envelopes, deleting
//! (tombstones), receipts, unread counts, and attachment uploads.
//!
//! The relay treats envelopes as opaque bytes; it only checks that the envelope
//! header's room, sender and device match the route and the token.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Timestamp, pagination};
use crate::encoding::B64;

/// `POST /api/v1/rooms/{id}/messages` → 201 [`PostMessageResponse`].
///
/// Idempotent on (sender, `client_id`): a retry answers the first result and
/// stores nothing new (a retry with a different envelope is 409
/// `envelope_mismatch`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct PostMessageRequest {
    /// Client-chosen message id; must equal the envelope header's.
    pub client_id: Uuid,
    /// The sealed envelope (binary envelope encoding, base64url).
    pub envelope: B64,
}

/// Answer of `POST /api/v1/rooms/{id}/messages`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PostMessageResponse {
    /// Relay-assigned message id.
    pub id: Uuid,
    /// The message's position in the room (per room, gapless, from 1).
    pub seq: u64,
    /// When the relay stored it.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
}

/// A stored message; items of `GET /api/v1/rooms/{id}/messages` (a
/// [`super::Page`] ordered by `seq`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Message {
    /// Relay-assigned message id.
    pub id: Uuid,
    /// The room.
    pub room_id: Uuid,
    /// Position in the room (gapless, increasing).
    pub seq: u64,
    /// Sending user.
    pub sender_id: Uuid,
    /// Sending device.
    pub device_id: Uuid,
    /// The sender's client message id.
    pub client_id: Uuid,
    /// The sealed envelope; `null` for a deleted message (tombstone).
    #[cfg_attr(feature = "openapi", schema(required))]
    pub envelope: Option<B64>,
    /// Whether the message was deleted (then `envelope` is `null`).
    pub deleted: bool,
    /// When the relay stored it.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    /// When it was deleted, else `created_at` (a message changes only by deletion).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: Timestamp,
}

/// Query of `GET /api/v1/rooms/{id}/messages?after_seq=&limit=`.
///
/// The answer is a [`super::Page`] of [`Message`] with `seq > after_seq`, in `seq`
/// order; its `next_cursor`, when not `null`, is the decimal `seq` to pass as the
/// next `after_seq`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct MessageListQuery {
    /// Only messages with a greater `seq` (default 0: from the start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub after_seq: Option<u64>,
    /// Page size (default 50, max 200).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::api::pagination::deserialize_limit"
    )]
    #[cfg_attr(feature = "ts", ts(optional))]
    #[cfg_attr(
        feature = "openapi",
        param(minimum = 1, maximum = 200),
        schema(minimum = 1, maximum = 200)
    )]
    pub limit: Option<u32>,
}

impl MessageListQuery {
    /// The page size to use, clamped to `1..=200`.
    #[must_use]
    pub fn effective_limit(&self) -> u32 {
        pagination::effective_limit(self.limit)
    }
}

/// Kind of a receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum ReceiptKind {
    /// The messages up to `seq` reached one of the user's devices.
    Delivered,
    /// The user has read the messages up to `seq`.
    Read,
}

/// `POST /api/v1/rooms/{id}/receipts` (also the WebSocket `receipt` frame).
///
/// Receipts only move forward: a `seq` at or below the stored one changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct ReceiptRequest {
    /// Delivered or read.
    pub kind: ReceiptKind,
    /// Highest `seq` covered.
    pub seq: u64,
}

/// A member's receipt in a room, as stored by the relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Receipt {
    /// The room.
    pub room_id: Uuid,
    /// The member.
    pub user_id: Uuid,
    /// Delivered or read.
    pub kind: ReceiptKind,
    /// Highest `seq` covered.
    pub seq: u64,
    /// When the receipt last moved.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: Timestamp,
}

/// Answer of `GET /api/v1/unread`: `{"<room_id>": count, ...}` for every room of the
/// caller.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(transparent)]
pub struct UnreadResponse(pub BTreeMap<Uuid, u64>);

/// Answer (201) of `POST /api/v1/rooms/{id}/attachments`, whose body is the
/// encrypted attachment as opaque bytes (`application/octet-stream`). The key lives
/// inside a message envelope; `GET /api/v1/attachments/{id}` returns the bytes to
/// members of the room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AttachmentCreated {
    /// Attachment id.
    pub id: Uuid,
    /// Stored size in bytes.
    pub size: u64,
    /// Upload time.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
}
