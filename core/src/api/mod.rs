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
//! | [`invitations`], [`blocks`] | Consent: invitations and blocks (`docs/relay.md`) |
//! | [`messages`] | Messages (and attachments) |
//! | [`contacts`] | Contacts |
//! | [`push`] | Push |
//! | [`ws`] | Real time: `GET /api/v1/ws` |
//! | [`ops`] | Operations |
//! | [`problem`] | Conventions: errors (RFC 9457) |
//! | [`pagination`] | Conventions: cursor pagination |

use core::fmt;

pub mod auth;
pub mod blocks;
pub mod contacts;
pub mod devices;
pub mod invitations;
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
    TokenResponse, VerifyEmailRequest, token_from_link,
};
pub use blocks::{BlockRequest, BlockedUser};
pub use contacts::{AddContactRequest, Contact, PatchContactRequest};
pub use devices::{
    Device, DeviceListQuery, KeysQueryRequest, KeysQueryResponse, PutDeviceRequest,
    RevokeDeviceRequest,
};
pub use invitations::{Invitation, InvitationChange, RoomInvitee};
pub use messages::{
    AttachmentCreated, Message, MessageListQuery, PostMessageRequest, PostMessageResponse, Receipt,
    ReceiptKind, ReceiptRequest, UnreadResponse,
};
pub use ops::{CheckStatus, Health, RootInfo};
pub use pagination::{DEFAULT_LIMIT, MAX_LIMIT, Page, PageQuery};
pub use problem::{PROBLEM_CONTENT_TYPE, Problem, codes};
pub use push::{
    DeletePushSubscriptionRequest, PushPayload, PushSubscription, PushSubscriptionKeys,
    PushSubscriptionRequest, PushTestResponse, VapidPublicKey,
};
pub use rooms::{
    AddMemberRequest, AddedMember, CreateRoomRequest, DirectRoomRequest, PatchRoomRequest, Room,
    RoomChange, RoomDetails, RoomKind, RoomMember,
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use std::collections::BTreeMap;

    use serde::{Serialize, de::DeserializeOwned};
    use serde_json::{Value, json};
    use uuid::Uuid;

    use super::*;
    use crate::encoding::B64;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    /// Serialises, checks the `type` tag, deserialises and compares.
    fn round_trip_tagged<T>(value: &T, tag: &str) -> Value
    where
        T: Serialize + DeserializeOwned + PartialEq + core::fmt::Debug,
    {
        let json = serde_json::to_value(value).unwrap();
        assert_eq!(json["type"], tag, "{json}");
        let back: T = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(&back, value);
        json
    }

    #[test]
    fn client_frames_round_trip_with_their_tags() {
        let frames = [
            (
                ClientFrame::Auth {
                    token: "tok".into(),
                },
                "auth",
            ),
            (
                ClientFrame::Send {
                    room_id: id(1),
                    client_id: id(2),
                    envelope: B64(vec![1, 2, 3]),
                },
                "send",
            ),
            (
                ClientFrame::Typing {
                    room_id: id(1),
                    active: true,
                },
                "typing",
            ),
            (
                ClientFrame::Receipt {
                    room_id: id(1),
                    kind: ReceiptKind::Read,
                    seq: 7,
                },
                "receipt",
            ),
            (
                ClientFrame::Resume {
                    cursors: BTreeMap::from([(id(1), 3), (id(2), 0)]),
                },
                "resume",
            ),
            (ClientFrame::Ping, "ping"),
        ];
        for (frame, tag) in &frames {
            round_trip_tagged(frame, tag);
        }
    }

    #[test]
    fn client_frame_wire_shapes() {
        let send: ClientFrame = serde_json::from_str(
            r#"{"type":"send","room_id":"00000000-0000-0000-0000-000000000001",
                "client_id":"00000000-0000-0000-0000-000000000002","envelope":"AQID"}"#,
        )
        .unwrap();
        assert_eq!(
            send,
            ClientFrame::Send {
                room_id: id(1),
                client_id: id(2),
                envelope: B64(vec![1, 2, 3]),
            }
        );
        let resume = serde_json::to_value(ClientFrame::Resume {
            cursors: BTreeMap::from([(id(1), 3)]),
        })
        .unwrap();
        assert_eq!(
            resume,
            json!({"type": "resume", "cursors": {"00000000-0000-0000-0000-000000000001": 3}})
        );
        assert_eq!(
            serde_json::to_string(&ClientFrame::Ping).unwrap(),
            r#"{"type":"ping"}"#
        );
    }

    #[test]
    fn client_frames_reject_unknown_fields_and_types() {
        let extra = r#"{"type":"typing","room_id":"00000000-0000-0000-0000-000000000001","active":true,"x":1}"#;
        assert!(serde_json::from_str::<ClientFrame>(extra).is_err());
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"bogus"}"#).is_err());
        assert!(serde_json::from_str::<ClientFrame>(r#"{"token":"t"}"#).is_err());
    }

    #[test]
    fn server_frames_round_trip_with_their_tags() {
        let frames = [
            (
                ServerFrame::Ready {
                    user_id: id(1),
                    device_id: Some(id(2)),
                },
                "ready",
            ),
            (
                ServerFrame::Ready {
                    user_id: id(1),
                    device_id: None,
                },
                "ready",
            ),
            (
                ServerFrame::Ack {
                    client_id: id(2),
                    id: id(3),
                    seq: 1,
                },
                "ack",
            ),
            (
                ServerFrame::Message {
                    room_id: id(1),
                    id: id(3),
                    seq: u64::MAX,
                    sender_id: id(4),
                    device_id: id(5),
                    envelope: B64(vec![0xff; 5]),
                    created_at: "2025-01-31T12:00:00Z".into(),
                },
                "message",
            ),
            (
                ServerFrame::Typing {
                    room_id: id(1),
                    user_id: id(4),
                    active: false,
                },
                "typing",
            ),
            (
                ServerFrame::Presence {
                    user_id: id(4),
                    online: true,
                },
                "presence",
            ),
            (
                ServerFrame::Receipt {
                    room_id: id(1),
                    user_id: id(4),
                    kind: ReceiptKind::Delivered,
                    seq: 2,
                },
                "receipt",
            ),
            (
                ServerFrame::Room {
                    room_id: id(1),
                    change: RoomChange::MemberAdded,
                },
                "room",
            ),
            (ServerFrame::KeysChanged { user_id: id(4) }, "keys_changed"),
            (
                ServerFrame::MessageDeleted {
                    room_id: id(1),
                    id: id(2),
                    seq: 3,
                },
                "message_deleted",
            ),
            (
                ServerFrame::HistoryStart {
                    room_id: id(1),
                    seq: 7,
                },
                "history_start",
            ),
            (
                ServerFrame::Error {
                    code: codes::NOT_A_MEMBER.into(),
                    detail: Some("no".into()),
                    client_id: Some(id(2)),
                    retry_after_ms: None,
                },
                "error",
            ),
            (
                ServerFrame::Error {
                    code: codes::INVALID_FRAME.into(),
                    detail: None,
                    client_id: None,
                    retry_after_ms: None,
                },
                "error",
            ),
            (
                ServerFrame::Error {
                    code: codes::RATE_LIMITED.into(),
                    detail: None,
                    client_id: Some(id(3)),
                    retry_after_ms: Some(120),
                },
                "error",
            ),
            (
                ServerFrame::Invitation {
                    invitation_id: id(4),
                    room_id: id(1),
                    change: InvitationChange::Received,
                },
                "invitation",
            ),
            (ServerFrame::Pong, "pong"),
        ];
        for (frame, tag) in &frames {
            round_trip_tagged(frame, tag);
        }
    }

    #[test]
    fn server_frame_wire_shapes() {
        let room = serde_json::to_value(ServerFrame::Room {
            room_id: id(1),
            change: RoomChange::MemberRemoved,
        })
        .unwrap();
        assert_eq!(
            room,
            json!({"type": "room", "room_id": id(1), "change": "member_removed"})
        );
        let ready = serde_json::to_value(ServerFrame::Ready {
            user_id: id(1),
            device_id: None,
        })
        .unwrap();
        assert_eq!(ready, json!({"type": "ready", "user_id": id(1)}));
        // Clients tolerate fields added by newer relays.
        let pong: ServerFrame = serde_json::from_str(r#"{"type":"pong","extra":1}"#).unwrap();
        assert_eq!(pong, ServerFrame::Pong);
    }

    #[test]
    fn requests_reject_unknown_fields() {
        let bad = r#"{"login":"a","password":"secret-pw","remember":true}"#;
        assert!(serde_json::from_str::<LoginRequest>(bad).is_err());
        let ok: LoginRequest = serde_json::from_str(r#"{"login":"a","password":"p"}"#).unwrap();
        assert_eq!(ok.login, "a");
        assert!(
            serde_json::from_value::<PostMessageRequest>(
                json!({"client_id": id(1), "envelope": "AQID", "room_id": id(2)})
            )
            .is_err()
        );
        assert!(
            serde_json::from_value::<CreateRoomRequest>(json!({"name": "x", "owner": 1})).is_err()
        );
    }

    #[test]
    fn responses_accept_unknown_fields() {
        let health: Health =
            serde_json::from_value(json!({"status": "ok", "database": "ok", "uptime": 3})).unwrap();
        assert_eq!(health.database, CheckStatus::Ok);
    }

    #[test]
    fn page_always_serialises_next_cursor() {
        let page = Page::last(vec![1u32, 2]);
        assert_eq!(
            serde_json::to_string(&page).unwrap(),
            r#"{"items":[1,2],"next_cursor":null}"#
        );
        let more = Page::new(Vec::<u32>::new(), Some("abc".into()));
        assert_eq!(
            serde_json::to_value(&more).unwrap(),
            json!({"items": [], "next_cursor": "abc"})
        );
    }

    #[test]
    fn limits_are_clamped() {
        let q = |limit| PageQuery {
            limit,
            cursor: None,
        };
        assert_eq!(q(None).effective_limit(), 50);
        assert_eq!(q(Some(0)).effective_limit(), 1);
        assert_eq!(q(Some(10)).effective_limit(), 10);
        assert_eq!(q(Some(10_000)).effective_limit(), 200);
        let m = MessageListQuery {
            after_seq: Some(3),
            limit: Some(201),
        };
        assert_eq!(m.effective_limit(), MAX_LIMIT);
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let login = LoginRequest {
            login: "alice".into(),
            password: "hunter2-secret".into(),
        };
        let shown = format!("{login:?}");
        assert!(!shown.contains("hunter2-secret"), "{shown}");
        assert!(
            shown.contains("alice") && shown.contains("[redacted]"),
            "{shown}"
        );

        let patch = PatchUserRequest {
            password: Some("new-secret-pw".into()),
            current_password: Some("old-secret-pw".into()),
            ..PatchUserRequest::default()
        };
        let shown = format!("{patch:?}");
        assert!(!shown.contains("secret-pw"), "{shown}");

        let auth = ClientFrame::Auth {
            token: "access-token-xyz".into(),
        };
        assert!(!format!("{auth:?}").contains("access-token-xyz"));

        let reset = ResetPasswordRequest {
            token: "reset-tok".into(),
            new_password: "new-pw-123".into(),
        };
        let shown = format!("{reset:?}");
        assert!(!shown.contains("reset-tok") && !shown.contains("new-pw-123"));
    }

    #[test]
    fn roles_are_ordered_snake_case_strings() {
        assert!(Role::User < Role::Admin && Role::Admin < Role::Master);
        assert_eq!(serde_json::to_value(Role::Master).unwrap(), json!("master"));
        assert_eq!(Role::Admin.to_string(), "admin");
        assert_eq!(
            serde_json::to_value(ReceiptKind::Delivered).unwrap(),
            json!("delivered")
        );
        assert_eq!(
            serde_json::to_value(RoomKind::Direct).unwrap(),
            json!("direct")
        );
    }

    #[test]
    fn patch_user_distinguishes_absent_and_null() {
        let absent: PatchUserRequest = serde_json::from_str("{}").unwrap();
        assert_eq!(absent.display_name, None);
        let null: PatchUserRequest = serde_json::from_str(r#"{"display_name":null}"#).unwrap();
        assert_eq!(null.display_name, Some(None));
        let set: PatchUserRequest = serde_json::from_str(r#"{"display_name":"A"}"#).unwrap();
        assert_eq!(set.display_name, Some(Some("A".into())));
        assert_eq!(
            serde_json::to_string(&null).unwrap(),
            r#"{"display_name":null}"#
        );
        assert_eq!(serde_json::to_string(&absent).unwrap(), "{}");
        let immutable: PatchUserRequest = serde_json::from_str(r#"{"username":"b"}"#).unwrap();
        assert_eq!(immutable.username.as_deref(), Some("b"));
    }

    #[test]
    fn push_subscription_matches_browser_json() {
        let body = json!({
            "device_id": id(9),
            "subscription": {
                "endpoint": "https://push.example/abc",
                "expirationTime": null,
                "keys": {"p256dh": "BPk", "auth": "x3Q"}
            }
        });
        let req: PushSubscriptionRequest = serde_json::from_value(body.clone()).unwrap();
        assert_eq!(req.subscription.expiration_time, None);
        assert_eq!(serde_json::to_value(&req).unwrap(), body);
        let payload = serde_json::to_value(PushPayload::News {
            room_id: id(1),
            seq: 4,
        })
        .unwrap();
        assert_eq!(payload, json!({"type": "news", "room_id": id(1), "seq": 4}));
    }

    #[test]
    fn room_details_are_flat() {
        let details = RoomDetails {
            room: Room {
                id: id(1),
                name: "r".into(),
                kind: RoomKind::Group,
                owner_id: id(2),
                created_at: "2025-01-01T00:00:00Z".into(),
                updated_at: "2025-01-01T00:00:00Z".into(),
                unread: 0,
                last_seq: 12,
                member_epoch: 3,
            },
            members: vec![RoomMember {
                user_id: id(2),
                username: "bob".into(),
                display_name: None,
                is_owner: true,
                joined_at: "2025-01-01T00:00:00Z".into(),
            }],
            invited: vec![RoomInvitee {
                user_id: id(3),
                username: "cy".into(),
                display_name: None,
                invited_by: id(2),
                invited_at: "2025-01-01T00:00:00Z".into(),
            }],
        };
        let json = serde_json::to_value(&details).unwrap();
        assert_eq!(json["invited"][0]["invited_by"], id(2).to_string());
        // A relay from before invitations sends no `invited`.
        let mut old = json.clone();
        old.as_object_mut().unwrap().remove("invited");
        assert!(
            serde_json::from_value::<RoomDetails>(old)
                .unwrap()
                .invited
                .is_empty()
        );
        assert_eq!(json["name"], "r");
        assert_eq!(json["last_seq"], 12);
        assert_eq!(json["members"][0]["is_owner"], true);
        assert_eq!(
            serde_json::from_value::<RoomDetails>(json).unwrap(),
            details
        );
    }

    #[test]
    fn problem_shape_and_codes() {
        let p = Problem::new(403, codes::EMAIL_NOT_VERIFIED, "E-mail not verified");
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            json!({"type": "about:blank", "title": "E-mail not verified", "status": 403,
                   "code": "email_not_verified"})
        );
        let p = p.with_detail("check your inbox");
        assert_eq!(
            serde_json::to_value(&p).unwrap()["detail"],
            "check your inbox"
        );

        let mut seen = std::collections::BTreeSet::new();
        for code in codes::ALL {
            assert!(seen.insert(*code), "duplicate code {code}");
            assert!(
                !code.is_empty() && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{code} is not snake_case"
            );
        }
    }

    #[test]
    fn unread_and_messages_shapes() {
        let unread = UnreadResponse(BTreeMap::from([(id(1), 5)]));
        assert_eq!(
            serde_json::to_value(&unread).unwrap(),
            json!({"00000000-0000-0000-0000-000000000001": 5})
        );
        let tombstone = Message {
            id: id(1),
            room_id: id(2),
            seq: 3,
            sender_id: id(4),
            device_id: id(5),
            client_id: id(6),
            envelope: None,
            deleted: true,
            created_at: "2025-01-01T00:00:00Z".into(),
            updated_at: "2025-01-02T00:00:00Z".into(),
        };
        let json = serde_json::to_value(&tombstone).unwrap();
        assert_eq!(json["envelope"], Value::Null);
        assert_eq!(serde_json::from_value::<Message>(json).unwrap(), tombstone);
    }
}
