//! What a session reports to the app: [`Event`]s on the [`crate::EventStream`].

use sotto_core::api::{InvitationChange, ReceiptKind, RoomChange};
use uuid::Uuid;

use crate::content::Content;

/// How far the sender of a message is trusted (the engine's decision,
/// `sotto_engine::trust`): `Own` (this user's own devices), `Verified` (pinned and
/// verified by safety number), `Unverified` (pinned on first use; also any
/// message from a revoked device, stored before its revocation).
pub use sotto_engine::trust::SenderTrust;

/// A decrypted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// The room.
    pub room_id: Uuid,
    /// The relay's id of the message.
    pub id: Uuid,
    /// Its place in the room.
    pub seq: u64,
    /// The sender (authenticated: the envelope's signature verified under a device
    /// bundle signed by the sender's pinned identity key).
    pub sender_id: Uuid,
    /// The sending device.
    pub sender_device: Uuid,
    /// The sender's message id (unique per sender).
    pub client_id: Uuid,
    /// The sender's clock when sealing, in Unix milliseconds (a claim).
    pub sent_at_ms: u64,
    /// When the relay stored it (RFC 3339).
    pub received_at: String,
    /// Whether this is from a device of this same user (`trust` is then
    /// [`SenderTrust::Own`]).
    pub own: bool,
    /// Trust in the sender.
    pub trust: SenderTrust,
    /// What it says.
    pub content: Content,
}

pub use sotto_engine::open::UndecryptableReason;

/// Connection state of the live stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    /// Connected and resumed: live from here.
    Online,
    /// Disconnected; reconnecting after `retry_in_ms`.
    Offline {
        /// Why.
        reason: String,
        /// Wait before the next attempt.
        retry_in_ms: u64,
    },
}

/// Something happened.
// Messages are the common event: boxing them would allocate for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The live connection came up or went down.
    Connection(Connection),
    /// A message, decrypted and verified, delivered once.
    Message(ReceivedMessage),
    /// A message of this device was stored by the relay.
    Sent {
        /// The room.
        room_id: Uuid,
        /// The message id the app got from `send`.
        client_id: Uuid,
        /// The relay's id of the stored message (as in `Message.id`).
        id: Uuid,
        /// Its place in the room.
        seq: u64,
    },
    /// A message that could not be shown, and why.
    Undecryptable {
        /// The room.
        room_id: Uuid,
        /// Its place in the room.
        seq: u64,
        /// The user the relay says sent it.
        sender_id: Uuid,
        /// Why.
        reason: UndecryptableReason,
    },
    /// A message was deleted by its sender or the room's owner.
    MessageDeleted {
        /// The room.
        room_id: Uuid,
        /// The relay's id of the message.
        id: Uuid,
        /// Its place in the room.
        seq: u64,
    },
    /// A member started or stopped typing.
    Typing {
        /// The room.
        room_id: Uuid,
        /// The user.
        user_id: Uuid,
        /// Typing or not.
        active: bool,
    },
    /// A user sharing a room came online or went offline.
    Presence {
        /// The user.
        user_id: Uuid,
        /// Online or not.
        online: bool,
    },
    /// A member's delivered/read mark moved.
    Receipt {
        /// The room.
        room_id: Uuid,
        /// The member.
        user_id: Uuid,
        /// Delivered or read.
        kind: ReceiptKind,
        /// Up to this seq.
        seq: u64,
    },
    /// A room was created, renamed, deleted, or its members changed.
    Room {
        /// The room.
        room_id: Uuid,
        /// What changed.
        change: RoomChange,
    },
    /// One of the user's invitations changed (a new one, or one gone: accepted,
    /// declined, withdrawn); [`crate::Client::list_invitations`] lists them.
    Invitation {
        /// The invitation.
        invitation_id: Uuid,
        /// Its room.
        room_id: Uuid,
        /// What happened.
        change: InvitationChange,
    },
    /// A user's devices changed (added or revoked); nothing for the app to do.
    DevicesChanged {
        /// The user.
        user_id: Uuid,
    },
    /// **Warning for the user.** The relay now serves another identity key for
    /// this user than the pinned one: either they reinstalled, or someone
    /// (possibly the relay) is impersonating them. Nothing is sealed to them and
    /// nothing from the new key is shown until the app calls
    /// [`crate::Session::accept_identity`], ideally after comparing safety numbers.
    IdentityKeyChanged {
        /// The user.
        user_id: Uuid,
        /// Whether the old key had been verified by safety number (make it louder).
        was_verified: bool,
    },
    /// A device served under a user is not signed by that user's pinned identity
    /// key; it is ignored (nothing is sealed to it, nothing from it is shown).
    DeviceRejected {
        /// The user it claims to belong to.
        user_id: Uuid,
        /// The device.
        device_id: Uuid,
    },
    /// **Warning for the user.** Something about a room's membership is not as
    /// its owner signed it (`docs/protocol.md` §12.4): the relay lists members
    /// no statement names (nothing is sealed to them), a direct room lists a
    /// third user (nothing is sent there), a membership statement was refused,
    /// or a room from before signed membership is pinned as first seen.
    Membership(sotto_engine::Warning),
    /// The session ended on the relay (logged out elsewhere, password reset,
    /// refresh token revoked): the live connection stopped. Log in again.
    LoggedOut,
    /// The relay refused a frame (rare; e.g. a rate limit).
    RelayError {
        /// The problem code.
        code: String,
        /// Details.
        detail: Option<String>,
    },
}

impl From<sotto_engine::vault::HistoryItem> for ReceivedMessage {
    fn from(item: sotto_engine::vault::HistoryItem) -> Self {
        Self {
            room_id: item.room_id,
            id: item.id,
            seq: item.seq,
            sender_id: item.sender_id,
            sender_device: item.sender_device,
            client_id: item.client_id,
            sent_at_ms: item.sent_at_ms,
            received_at: item.received_at,
            own: item.trust == SenderTrust::Own,
            trust: item.trust,
            content: item.content,
        }
    }
}
