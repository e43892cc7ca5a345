//! Real time (api.md "Real time: `GET /api/v1/ws`"): the JSON frames of the
//! WebSocket and its close codes.
//!
//! Every frame is a JSON text message, an object with a snake_case `type`. The
//! client's first frame must be `auth` within [`AUTH_TIMEOUT_SECS`] seconds, else the
//! relay closes with [`close_code::AUTH_TIMEOUT_OR_FAILED`]. After `resume`, the
//! relay replays every message after each cursor, then streams live. A client whose
//! bounded queue overflows is closed with [`close_code::SLOW_CONSUMER`] and resumes
//! from its cursors.

use core::fmt;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Redacted, Timestamp, messages::ReceiptKind, rooms::RoomChange};
use crate::encoding::B64;

/// Path of the WebSocket route.
pub const WS_PATH: &str = "/api/v1/ws";

/// Seconds the relay waits for the `auth` frame.
pub const AUTH_TIMEOUT_SECS: u64 = 10;

/// WebSocket close codes used by the relay (application range 4000–4999).
pub mod close_code {
    /// No valid `auth` frame within the timeout, or the token was refused.
    pub const AUTH_TIMEOUT_OR_FAILED: u16 = 4401;
    /// The client's outgoing queue overflowed; reconnect and `resume`.
    pub const SLOW_CONSUMER: u16 = 4408;
}

/// A frame sent by the client to the relay.
///
/// Unknown fields are rejected (the relay answers an `error` frame with code
/// `invalid_frame`). `Debug` redacts the `auth` token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// Must be the first frame: authenticate with an access token.
    Auth {
        /// The access token (as in `Authorization: Bearer`).
        token: String,
    },
    /// Post a message (same rules as `POST /api/v1/rooms/{id}/messages`); answered
    /// by `ack`.
    Send {
        /// The room.
        room_id: Uuid,
        /// Client message id; must equal the envelope header's.
        client_id: Uuid,
        /// The sealed envelope.
        envelope: B64,
    },
    /// Start or stop the typing indicator in a room.
    Typing {
        /// The room.
        room_id: Uuid,
        /// Whether the user is typing.
        active: bool,
    },
    /// Move a receipt forward (as `POST /api/v1/rooms/{id}/receipts`).
    Receipt {
        /// The room.
        room_id: Uuid,
        /// Delivered or read.
        kind: ReceiptKind,
        /// Highest `seq` covered.
        seq: u64,
    },
    /// Replay every message after each cursor, then stream live.
    Resume {
        /// Last `seq` seen, per room id. Rooms left out are not replayed.
        cursors: BTreeMap<Uuid, u64>,
    },
    /// Keep-alive; answered by `pong`.
    Ping,
}

impl fmt::Debug for ClientFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auth { token: _ } => f.debug_struct("Auth").field("token", &Redacted).finish(),
            Self::Send {
                room_id,
                client_id,
                envelope,
            } => f
                .debug_struct("Send")
                .field("room_id", room_id)
                .field("client_id", client_id)
                .field("envelope", envelope)
                .finish(),
            Self::Typing { room_id, active } => f
                .debug_struct("Typing")
                .field("room_id", room_id)
                .field("active", active)
                .finish(),
            Self::Receipt { room_id, kind, seq } => f
                .debug_struct("Receipt")
                .field("room_id", room_id)
                .field("kind", kind)
                .field("seq", seq)
                .finish(),
            Self::Resume { cursors } => f.debug_struct("Resume").field("cursors", cursors).finish(),
            Self::Ping => f.write_str("Ping"),
        }
    }
}

/// Why a text frame is not a valid [`ClientFrame`] (the relay answers an `error`
/// frame with code `invalid_frame` and this text as its detail).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Not JSON, not an object of a known `type`, a missing or unknown field.
    #[error("not a valid frame: {0}")]
    Invalid(String),
    /// A `ping` with fields besides `type`.
    #[error("`ping` has no fields")]
    PingHasFields,
}

/// A frame with a `type` and nothing else.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OnlyType {
    #[serde(rename = "type")]
    _type: String,
}

/// What [`ClientFrame::probe_send`] finds: the fields of a frame that looks like
/// a `send`, read without checking the rest.
#[derive(Deserialize)]
struct SendProbe {
    #[serde(rename = "type")]
    kind: Option<String>,
    client_id: Option<Uuid>,
}

impl ClientFrame {
    /// The `client_id` of a frame that is a `send`, read cheaply and leniently
    /// (other fields are skipped, not checked): so a `send` refused before it
    /// is parsed (a rate limit) can still be answered with its `client_id`.
    /// `None` when the text is not a JSON object with `"type": "send"` and a
    /// UUID `client_id`.
    #[must_use]
    pub fn probe_send(text: &str) -> Option<Uuid> {
        let probe: SendProbe = serde_json::from_str(text).ok()?;
        (probe.kind.as_deref() == Some("send"))
            .then_some(probe.client_id)
            .flatten()
    }

    /// Parses a client's text frame strictly: the relay's parser. On top of the
    /// `Deserialize` rules it refuses a `ping` with fields (serde ignores extra
    /// fields of a unit variant; the contract does not).
    pub fn from_json_str(text: &str) -> Result<Self, FrameError> {
        let frame = serde_json::from_str::<ClientFrame>(text)
            .map_err(|e| FrameError::Invalid(e.to_string()))?;
        if matches!(frame, ClientFrame::Ping) && serde_json::from_str::<OnlyType>(text).is_err() {
            return Err(FrameError::PingHasFields);
        }
        Ok(frame)
    }
}

/// A frame sent by the relay to the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// Authentication succeeded.
    Ready {
        /// The authenticated user.
        user_id: Uuid,
        /// The device the access token is bound to, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        device_id: Option<Uuid>,
    },
    /// A `send` was stored (or had been: sends are idempotent on `client_id`).
    Ack {
        /// The client message id of the `send`.
        client_id: Uuid,
        /// Relay-assigned message id.
        id: Uuid,
        /// The message's `seq` in its room.
        seq: u64,
    },
    /// A message in one of the user's rooms (replayed or live).
    Message {
        /// The room.
        room_id: Uuid,
        /// Relay-assigned message id.
        id: Uuid,
        /// The message's `seq` in its room.
        seq: u64,
        /// Sending user.
        sender_id: Uuid,
        /// Sending device.
        device_id: Uuid,
        /// The sealed envelope.
        envelope: B64,
        /// When the relay stored it.
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
        created_at: Timestamp,
    },
    /// A member started or stopped typing.
    Typing {
        /// The room.
        room_id: Uuid,
        /// The typing user.
        user_id: Uuid,
        /// Whether they are typing.
        active: bool,
    },
    /// A user sharing a room with the recipient came online or went offline.
    Presence {
        /// The user.
        user_id: Uuid,
        /// Whether they have at least one connected socket.
        online: bool,
    },
    /// A member's receipt moved forward.
    Receipt {
        /// The room.
        room_id: Uuid,
        /// The member.
        user_id: Uuid,
        /// Delivered or read.
        kind: ReceiptKind,
        /// Highest `seq` covered.
        seq: u64,
    },
    /// A room of the recipient changed; refetch it.
    Room {
        /// The room.
        room_id: Uuid,
        /// What changed.
        change: RoomChange,
    },
    /// A message was deleted (its sender or the room's owner erased it; a
    /// tombstone keeps its `seq`). Clients drop their copy.
    MessageDeleted {
        /// The room.
        room_id: Uuid,
        /// The deleted message.
        id: Uuid,
        /// Its `seq`.
        seq: u64,
    },
    /// The room's history visible to the recipient starts after `seq`: messages
    /// up to it were sent before they joined (or rejoined) and are never sent.
    /// Sent when a replay or gap fill would start at or below `seq`, before the
    /// room's next message; a client moves its cursor for the room up to `seq`
    /// (never down), so the first message it may see is `seq + 1`.
    HistoryStart {
        /// The room.
        room_id: Uuid,
        /// The recipient's join point: the room's last `seq` when they joined.
        seq: u64,
    },
    /// The devices (bundles) of a user sharing a room with the recipient changed;
    /// refetch their keys.
    KeysChanged {
        /// The user.
        user_id: Uuid,
    },
    /// A client frame was refused. The socket stays open unless a close follows.
    Error {
        /// Stable snake_case code (see [`super::codes`]).
        code: String,
        /// Human-readable explanation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        detail: Option<String>,
        /// The `client_id` of the refused `send`, so the client can tell which
        /// message failed; absent for errors not tied to a `send` (and for a
        /// frame that cannot be parsed at all).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        client_id: Option<Uuid>,
        /// With `rate_limited` and `quota_exceeded`: milliseconds to wait before
        /// sending it again.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        retry_after_ms: Option<u64>,
    },
    /// One of the recipient's invitations changed (`docs/relay.md`, "Consent");
    /// refetch `GET /api/v1/invitations`.
    Invitation {
        /// The invitation.
        invitation_id: Uuid,
        /// Its room.
        room_id: Uuid,
        /// What happened.
        change: super::invitations::InvitationChange,
    },
    /// Answer to `ping`.
    Pong,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frames_parse_strictly() {
        assert_eq!(
            ClientFrame::from_json_str(r#"{"type":"ping"}"#),
            Ok(ClientFrame::Ping)
        );
        assert_eq!(
            ClientFrame::from_json_str(r#"{"type":"ping","extra":1}"#),
            Err(FrameError::PingHasFields)
        );
        assert_eq!(
            ClientFrame::from_json_str(
                r#"{"type":"typing","room_id":"00000000-0000-0000-0000-000000000001","active":true}"#
            ),
            Ok(ClientFrame::Typing {
                room_id: Uuid::from_u128(1),
                active: true
            })
        );
        let Err(FrameError::Invalid(why)) =
            ClientFrame::from_json_str(r#"{"type":"auth","token":"t","extra":1}"#)
        else {
            unreachable!("an unknown field must be refused");
        };
        assert!(why.contains("extra"), "{why}");
        assert!(matches!(
            ClientFrame::from_json_str("[]"),
            Err(FrameError::Invalid(_))
        ));
    }

    #[test]
    fn a_send_is_probed_for_its_client_id_only() {
        let id = "00000000-0000-0000-0000-000000000007";
        assert_eq!(
            ClientFrame::probe_send(&format!(
                r#"{{"type":"send","room_id":"x","client_id":"{id}","envelope":"!!","extra":[1,2]}}"#
            )),
            Some(Uuid::from_u128(7))
        );
        assert_eq!(
            ClientFrame::probe_send(&format!(r#"{{"client_id":"{id}","type":"send"}}"#)),
            Some(Uuid::from_u128(7))
        );
        assert_eq!(
            ClientFrame::probe_send(&format!(r#"{{"type":"typing","client_id":"{id}"}}"#)),
            None
        );
        assert_eq!(
            ClientFrame::probe_send(r#"{"type":"send","client_id":"nope"}"#),
            None
        );
        assert_eq!(ClientFrame::probe_send(r#"{"type":"send"}"#), None);
        assert_eq!(ClientFrame::probe_send("[1]"), None);
        assert_eq!(ClientFrame::probe_send("{"), None);
    }
}
