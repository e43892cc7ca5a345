//! Invitations (consent before membership, `docs/relay.md` "Consent:
//! invitations and blocks"): adding someone who does not have you in their
//! contacts, to a group or to a new direct room, invites them instead. They
//! accept (and become a member, their history starting then) or decline.
//!
//! `GET /api/v1/invitations` (the caller's pending invitations),
//! `POST /api/v1/invitations/{id}/accept`, `POST /api/v1/invitations/{id}/decline`.
//! A room's pending invitees are listed in [`super::rooms::RoomDetails::invited`].

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Timestamp;
use super::rooms::RoomKind;
use super::users::PublicUser;

/// An invitation to the caller: items of `GET /api/v1/invitations` (a
/// [`super::Page`], oldest first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Invitation {
    /// Invitation id (used in `/api/v1/invitations/{id}/...`).
    pub id: Uuid,
    /// The room.
    pub room_id: Uuid,
    /// The room's name (empty for a direct room).
    pub room_name: String,
    /// Group or direct.
    pub room_kind: RoomKind,
    /// Who invited the caller.
    pub inviter: PublicUser,
    /// When.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
}

/// A pending invitee of a room, as its members see it (in
/// [`super::rooms::RoomDetails::invited`], and the 202 answer of
/// `POST /api/v1/rooms/{id}/members`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RoomInvitee {
    /// The invited user.
    pub user_id: Uuid,
    /// Their username.
    pub username: String,
    /// Their display name.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub display_name: Option<String>,
    /// The member who invited them.
    pub invited_by: Uuid,
    /// When.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub invited_at: Timestamp,
}

/// What happened to one of the recipient's invitations (the `change` of a
/// WebSocket `invitation` frame). Clients refetch `GET /api/v1/invitations`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum InvitationChange {
    /// A new invitation for the recipient.
    Received,
    /// It is gone: accepted or declined (on another device), withdrawn, its room
    /// deleted, or one of the two blocked the other.
    Removed,
}
