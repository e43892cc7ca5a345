//! Rooms and membership (api.md "Rooms and membership"): creating group and
//! direct rooms, listing, details, renaming, deleting, adding and removing members.
//! Also [`RoomChange`], the `change` of the WebSocket `room` frame.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Timestamp;

/// Kind of a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum RoomKind {
    /// A named room with an owner and any number of members.
    Group,
    /// The two-person room of a pair of users (`POST /api/v1/rooms/direct`).
    Direct,
}

/// `POST /api/v1/rooms` → 201 [`RoomDetails`]; the creator is the owner. Each
/// of `member_ids` who has the creator in their contacts is a member at once;
/// the others are invited ([`RoomDetails::invited`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct CreateRoomRequest {
    /// Room name (plaintext metadata; clients that want it hidden put the name
    /// inside an encrypted event): 1-128 printable characters, trimmed.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 128))]
    pub name: String,
    /// Users to add besides the creator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub member_ids: Option<Vec<Uuid>>,
}

/// `POST /api/v1/rooms/direct` → the existing direct room with that user (200) or a
/// new one (201), as [`RoomDetails`]. A new room with a user who does not have
/// the caller in their contacts holds the caller only, with the other invited;
/// calling it while invited to that room accepts the invitation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct DirectRoomRequest {
    /// The other user.
    pub user_id: Uuid,
}

/// A room the caller belongs to; items of `GET /api/v1/rooms` (a [`super::Page`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Room {
    /// Room id.
    pub id: Uuid,
    /// Room name (empty for a direct room: clients show the other member).
    pub name: String,
    /// Group or direct.
    pub kind: RoomKind,
    /// The owner (for a direct room, the user who opened it).
    pub owner_id: Uuid,
    /// Creation time.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    /// Last change of the room's name or membership.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: Timestamp,
    /// Messages after the caller's last `read` receipt, not counting their own.
    pub unread: u64,
    /// `seq` of the room's latest message (0 when it has none).
    pub last_seq: u64,
    /// Grows at every change of the room's members, owner or invitations.
    /// Clients order the room views they fetch by it: an answer with a smaller
    /// `member_epoch` than one already seen was overtaken by a change.
    #[serde(default)]
    pub member_epoch: u64,
}

/// A member of a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RoomMember {
    /// Member's user id.
    pub user_id: Uuid,
    /// Member's username.
    pub username: String,
    /// Member's display name.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub display_name: Option<String>,
    /// Whether this member owns the room.
    pub is_owner: bool,
    /// When the member joined.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub joined_at: Timestamp,
}

/// Details of a room with its members: answer of `GET /api/v1/rooms/{id}`
/// (members only), of creating a room and of `PATCH /api/v1/rooms/{id}`.
///
/// On the wire the [`Room`] fields sit at the top level next to `members`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RoomDetails {
    /// The room.
    #[serde(flatten)]
    pub room: Room,
    /// Its members.
    pub members: Vec<RoomMember>,
    /// Users invited and not yet answered (`docs/relay.md`, "Consent"): not
    /// members, so no keys are sealed for them.
    #[serde(default)]
    pub invited: Vec<super::invitations::RoomInvitee>,
}

/// `PATCH /api/v1/rooms/{id}` (owner only) → 200 [`RoomDetails`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct PatchRoomRequest {
    /// New room name: 1-128 printable characters, trimmed.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 128))]
    pub name: String,
}

/// `POST /api/v1/rooms/{id}/members` (owner only) → 201 [`RoomMember`] when the
/// user has the owner in their contacts, else 202
/// [`super::invitations::RoomInvitee`]: a pending invitation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct AddMemberRequest {
    /// The user to add.
    pub user_id: Uuid,
}

/// What changed in a room (the `change` of a WebSocket `room` frame). Clients
/// refetch `GET /api/v1/rooms/{id}` for the new state (a 404 means they are no
/// longer a member).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum RoomChange {
    /// The room was created with the recipient as a member.
    Created,
    /// The room was renamed.
    Renamed,
    /// The room was deleted with its messages and attachments.
    Deleted,
    /// A member was added (possibly the recipient).
    MemberAdded,
    /// A member was removed or left (possibly the recipient).
    MemberRemoved,
    /// A user was invited to the room (not a member until they accept).
    MemberInvited,
    /// A pending invitation to the room was declined or withdrawn.
    InvitationRemoved,
}

/// The answer of `POST /api/v1/rooms/{id}/members` as a client reads it: the
/// new member (201) or the pending invitee (202). The two shapes have no field
/// in common but the user's, so this deserialises untagged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(untagged)]
pub enum AddedMember {
    /// Added: they have the owner in their contacts.
    Member(RoomMember),
    /// Invited: a member once they accept.
    Invited(super::invitations::RoomInvitee),
}
