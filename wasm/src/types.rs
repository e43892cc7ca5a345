//! The TypeScript types of the package: interfaces written into the generated
//! `.d.ts` (a `typescript_custom_section`), and the extern types that make the
//! generated signatures reference them instead of `any`.
//!
//! The wire types mirror `sotto-core`'s serde types field for field (snake_case,
//! binary as base64url without padding, `u64` as `number`). Fields the core
//! skips when absent are optional (`?`); fields it writes as `null` are `| null`.

use wasm_bindgen::prelude::wasm_bindgen;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** A UUID: lowercase, hyphenated (`00000000-0000-0000-0000-000000000000`). */
export type Uuid = string;
/** Binary data in JSON: base64url without padding. */
export type Base64Url = string;
/** An RFC 3339 UTC timestamp formatted by the relay; opaque and sortable. */
export type Timestamp = string;
/** A key-wrap suite. */
export type Suite = "x25519" | "rsa";

/** The stable `code` of every `Error` this package throws (see API.md). */
export type SottoErrorCode =
  | "malformed" | "too_large" | "unsupported_version" | "unsupported_suite" | "invalid_key"
  | "bad_signature" | "identity_mismatch" | "not_a_recipient" | "decryption_failed"
  | "context_mismatch" | "recipient_count" | "duplicate_recipient" | "no_rsa_key"
  | "wrong_key_or_corrupted" | "bad_recovery_key" | "bad_parameters" | "empty_passphrase"
  | "attachment" | "invalid_argument" | "rng" | "internal";
/** `detail` of an error whose code is `"attachment"`. */
export type AttachmentErrorDetail =
  | "bad_header" | "unsupported_version" | "bad_chunk_size" | "truncated" | "decryption_failed"
  | "digest_mismatch" | "size_mismatch" | "bad_pointer" | "too_large";
/** What every function of this package throws. */
export interface SottoError extends Error {
  code: SottoErrorCode;
  detail?: AttachmentErrorDetail;
}

export interface Versions {
  /** sotto-wasm crate version. */
  package: string;
  /** sotto-core version. */
  core: string;
  /** Envelope format version (1). */
  protocol: number;
  suites: Suite[];
  /** The pinned wasm-bindgen version. */
  wasmBindgen: string;
}

/** RSA-OAEP device key size; omit for X25519 only. */
export interface DeviceOptions { rsaBits?: 2048 | 3072 | 4096 }
/** Argon2id parameters of a passphrase backup (defaults 64 MiB, t=3, p=1). */
export interface BackupParams { mCostKib: number; tCost: number; pCost: number }
export interface RecoveryBackup { blob: Uint8Array; recoveryKey: string }

export interface SealHeader { roomId: string; clientMessageId: string; timestampMs: number }
/** `suite` defaults to `"x25519"`. */
export interface Recipient { device: VerifiedDevice; suite?: Suite }
/** Where a message arrived from, as the caller knows it (not as the message claims). */
export interface OpenExpected { roomId: string; sender: VerifiedDevice }
export interface Opened {
  plaintext: Uint8Array;
  roomId: string;
  senderUserId: string;
  senderDeviceId: string;
  clientMessageId: string;
  timestampMs: number;
  /** The suite of this device's recipient entry. */
  suite: Suite;
}
export interface EnvelopeInfo {
  version: number;
  /** The suite every recipient entry uses, or `"mixed"`. */
  suite: Suite | "mixed";
  roomId: string;
  senderUserId: string;
  senderDeviceId: string;
  clientMessageId: string;
  timestampMs: number;
  recipientDeviceIds: string[];
  /** The suite of each entry, parallel to `recipientDeviceIds`. */
  recipientSuites: Suite[];
}

export interface SafetyNumber {
  /** 60 digits, no separators. */
  digits: string;
  /** 12 space-separated groups of 5 digits. */
  display: string;
  qrPayload: Uint8Array;
}
/** TOFU: pin on "first_seen"; warn on "changed" (keep the old pin until accepted). */
export type TrustDecision = "first_seen" | "unchanged" | "changed";

export interface EncryptedAttachment { blob: Uint8Array; sealed: AttachmentSealed }

// ---- wire types (sotto-core `keys`, `attachment`, `api`) ----

/** A device's signed public keys (`PUT /api/v1/devices/{device_id}`). */
export interface DeviceBundle {
  version: number;
  user_id: Uuid;
  device_id: Uuid;
  /** Ed25519 identity key, 32 bytes. */
  identity_key: Base64Url;
  /** Ed25519 device signing key, 32 bytes. */
  signing_key: Base64Url;
  /** X25519 key, 32 bytes. */
  x25519_key: Base64Url;
  /** RSA key as SPKI DER, present when the device supports the `rsa` suite. */
  rsa_key?: Base64Url;
  identity_signature: Base64Url;
  device_signature: Base64Url;
}

/** The reference to an encrypted attachment; holds its key: seal it, never post it in clear. */
export interface AttachmentPointer {
  id: Uuid;
  key: Base64Url;
  sha256: Base64Url;
  size: number;
  encrypted_size: number;
  chunk_size: number;
  content_type?: string;
  name?: string;
}

/** Message content inside an envelope (`docs/client.md`); unknown types show as "unsupported message". */
export type MessageContent =
  | { type: "text"; body: string }
  | { type: "file"; file: AttachmentPointer };

export type ReceiptKind = "delivered" | "read";
export type RoomChange =
  | "created" | "renamed" | "deleted" | "member_added" | "member_removed"
  | "member_invited" | "invitation_removed";

/** Frames the client sends on `GET /api/v1/ws` (unknown fields are refused). */
export type ClientFrame =
  | ClientAuthFrame | ClientSendFrame | ClientTypingFrame | ClientReceiptFrame
  | ClientResumeFrame | ClientPingFrame;
export interface ClientAuthFrame { type: "auth"; token: string }
export interface ClientSendFrame { type: "send"; room_id: Uuid; client_id: Uuid; envelope: Base64Url }
export interface ClientTypingFrame { type: "typing"; room_id: Uuid; active: boolean }
export interface ClientReceiptFrame { type: "receipt"; room_id: Uuid; kind: ReceiptKind; seq: number }
/** Last `seq` seen per room id. */
export interface ClientResumeFrame { type: "resume"; cursors: Record<Uuid, number> }
export interface ClientPingFrame { type: "ping" }

/** Frames the relay sends on `GET /api/v1/ws`. */
export type ServerFrame =
  | ServerReadyFrame | ServerAckFrame | ServerMessageFrame | ServerTypingFrame
  | ServerPresenceFrame | ServerReceiptFrame | ServerRoomFrame | ServerMessageDeletedFrame
  | ServerHistoryStartFrame | ServerKeysChangedFrame | ServerErrorFrame | ServerInvitationFrame
  | ServerPongFrame;
export interface ServerReadyFrame { type: "ready"; user_id: Uuid; device_id?: Uuid }
export interface ServerAckFrame { type: "ack"; client_id: Uuid; id: Uuid; seq: number }
export interface ServerMessageFrame {
  type: "message"; room_id: Uuid; id: Uuid; seq: number; sender_id: Uuid; device_id: Uuid;
  envelope: Base64Url; created_at: Timestamp;
}
export interface ServerTypingFrame { type: "typing"; room_id: Uuid; user_id: Uuid; active: boolean }
export interface ServerPresenceFrame { type: "presence"; user_id: Uuid; online: boolean }
export interface ServerReceiptFrame { type: "receipt"; room_id: Uuid; user_id: Uuid; kind: ReceiptKind; seq: number }
export interface ServerRoomFrame { type: "room"; room_id: Uuid; change: RoomChange }
export interface ServerMessageDeletedFrame { type: "message_deleted"; room_id: Uuid; id: Uuid; seq: number }
/** The room's history visible to the recipient starts after `seq` (their join point). */
export interface ServerHistoryStartFrame { type: "history_start"; room_id: Uuid; seq: number }
export interface ServerKeysChangedFrame { type: "keys_changed"; user_id: Uuid }
/** `client_id` names a refused `send`; `retry_after_ms` comes with `rate_limited` and `quota_exceeded`. */
export interface ServerErrorFrame {
  type: "error"; code: string; detail?: string; client_id?: Uuid; retry_after_ms?: number;
}
/** One of the recipient's invitations changed: refetch `GET /api/v1/invitations`. */
export interface ServerInvitationFrame {
  type: "invitation"; invitation_id: Uuid; room_id: Uuid; change: "received" | "removed";
}
export interface ServerPongFrame { type: "pong" }

// ---- REST shapes (sotto-core `api`; requests refuse unknown fields) ----

/** RFC 9457 problem document of every error answer. */
export interface Problem { type: string; title: string; status: number; detail?: string; code: string; instance?: string }
export interface Page<T> { items: T[]; next_cursor: string | null }
export interface PageQuery { limit?: number; cursor?: string }

export interface RegisterRequest { username: string; email: string; password: string }
export interface VerifyEmailRequest { token: string }
export interface ResendVerificationRequest { email: string }
export interface LoginRequest { login: string; password: string }
export interface TokenResponse {
  access_token: string; refresh_token: string; token_type: string; expires_in: number; user: User;
}
export interface RefreshRequest { refresh_token: string }
export interface LogoutRequest { refresh_token: string }
export interface ForgotPasswordRequest { email: string }
export interface ResetPasswordRequest { token: string; new_password: string }
export interface CheckUsernameQuery { username: string }
export interface CheckUsernameResponse { available: boolean }

export type Role = "user" | "admin" | "master";
export interface User {
  id: Uuid; username: string; email: string; display_name: string | null; role: Role;
  email_verified: boolean; created_at: Timestamp; updated_at: Timestamp;
}
export interface PublicUser { id: Uuid; username: string; display_name: string | null }
export interface UserListQuery { q?: string; limit?: number; cursor?: string }
export interface UserSearchQuery { q: string; limit?: number; cursor?: string }
export interface CreateUserRequest {
  username: string; email: string; password: string; display_name?: string; role?: Role;
}
/** `display_name: null` clears it; absent fields stay unchanged. */
export interface PatchUserRequest {
  display_name?: string | null; email?: string; password?: string; current_password?: string;
  role?: Role; username?: string;
}

/** `current_password` is required with `replace_identity`. */
export interface PutDeviceRequest {
  bundle: DeviceBundle; display_name?: string; replace_identity?: boolean; current_password?: string;
}
/** `DELETE /api/v1/devices/{device_id}`. */
export interface RevokeDeviceRequest { current_password: string }
/** A registered device (the REST `Device`; named so as not to clash with the `Device` class). */
export interface RelayDevice {
  device_id: Uuid; user_id: Uuid; display_name: string | null; bundle: DeviceBundle;
  created_at: Timestamp; updated_at: Timestamp; revoked_at?: Timestamp;
}
export interface DeviceListQuery { include_revoked?: boolean }
export interface KeysQueryRequest { user_ids: Uuid[]; include_revoked?: boolean }
export interface KeysQueryResponse { devices: Record<Uuid, RelayDevice[]> }

export type RoomKind = "group" | "direct";
export interface CreateRoomRequest { name: string; member_ids?: Uuid[] }
export interface DirectRoomRequest { user_id: Uuid }
export interface Room {
  id: Uuid; name: string; kind: RoomKind; owner_id: Uuid; created_at: Timestamp;
  updated_at: Timestamp; unread: number; last_seq: number;
}
export interface RoomMember {
  user_id: Uuid; username: string; display_name: string | null; is_owner: boolean; joined_at: Timestamp;
}
/** A pending invitee: not a member until they accept (no keys are sealed for them). */
export interface RoomInvitee {
  user_id: Uuid; username: string; display_name: string | null; invited_by: Uuid; invited_at: Timestamp;
}
export interface RoomDetails extends Room { members: RoomMember[]; invited: RoomInvitee[] }
/** An invitation to the caller (`GET /api/v1/invitations`). */
export interface Invitation {
  id: Uuid; room_id: Uuid; room_name: string; room_kind: RoomKind; inviter: PublicUser; created_at: Timestamp;
}
export interface BlockRequest { user_id: Uuid }
export interface BlockedUser { user: PublicUser; created_at: Timestamp }
export interface PatchRoomRequest { name: string }
export interface AddMemberRequest { user_id: Uuid }

export interface PostMessageRequest { client_id: Uuid; envelope: Base64Url }
export interface PostMessageResponse { id: Uuid; seq: number; created_at: Timestamp }
/** A stored message; `envelope` is `null` for a deleted one. */
export interface Message {
  id: Uuid; room_id: Uuid; seq: number; sender_id: Uuid; device_id: Uuid; client_id: Uuid;
  envelope: Base64Url | null; deleted: boolean; created_at: Timestamp; updated_at: Timestamp;
}
export interface MessageListQuery { after_seq?: number; limit?: number }
export interface ReceiptRequest { kind: ReceiptKind; seq: number }
export interface Receipt { room_id: Uuid; user_id: Uuid; kind: ReceiptKind; seq: number; updated_at: Timestamp }
/** Unread count per room id. */
export type UnreadResponse = Record<Uuid, number>;
export interface AttachmentCreated { id: Uuid; size: number; created_at: Timestamp }

export interface Contact {
  id: Uuid; user: PublicUser; nickname: string | null; created_at: Timestamp; updated_at: Timestamp;
}
export interface AddContactRequest { user_id: Uuid; nickname?: string }
export interface PatchContactRequest { nickname?: string | null }

export interface VapidPublicKey { public_key: string }
/** The browser's `PushSubscription.toJSON()` (camelCase, as the browser writes it). */
export interface WebPushSubscription {
  endpoint: string; expirationTime?: number | null; keys: { p256dh: string; auth: string };
}
export interface PushSubscriptionRequest { device_id: Uuid; subscription: WebPushSubscription }
export interface DeletePushSubscriptionRequest { endpoint: string }
export type PushPayload = { type: "news"; room_id: Uuid; seq: number } | { type: "test" };
/** Whether the test push reached at least one push service. */
export interface PushTestResponse { accepted: boolean }

export type CheckStatus = "ok" | "unavailable";
export interface Health { status: CheckStatus; database: CheckStatus }
export interface RootInfo { name: string; version: string }
"#;

#[wasm_bindgen]
extern "C" {
    /// `Versions` in TypeScript.
    #[wasm_bindgen(typescript_type = "Versions")]
    pub type Versions;
    /// `DeviceOptions` in TypeScript.
    #[wasm_bindgen(typescript_type = "DeviceOptions")]
    pub type DeviceOptions;
    /// `BackupParams` in TypeScript.
    #[wasm_bindgen(typescript_type = "BackupParams")]
    pub type BackupParams;
    /// `RecoveryBackup` in TypeScript.
    #[wasm_bindgen(typescript_type = "RecoveryBackup")]
    pub type RecoveryBackup;
    /// `SealHeader` in TypeScript.
    #[wasm_bindgen(typescript_type = "SealHeader")]
    pub type SealHeader;
    /// `Recipient[]` in TypeScript.
    #[wasm_bindgen(typescript_type = "Recipient[]")]
    pub type RecipientList;
    /// `OpenExpected` in TypeScript.
    #[wasm_bindgen(typescript_type = "OpenExpected")]
    pub type OpenExpected;
    /// `Opened` in TypeScript.
    #[wasm_bindgen(typescript_type = "Opened")]
    pub type Opened;
    /// `EnvelopeInfo` in TypeScript.
    #[wasm_bindgen(typescript_type = "EnvelopeInfo")]
    pub type EnvelopeInfo;
    /// `SafetyNumber` in TypeScript.
    #[wasm_bindgen(typescript_type = "SafetyNumber")]
    pub type SafetyNumber;
    /// `TrustDecision` in TypeScript.
    #[wasm_bindgen(typescript_type = "TrustDecision")]
    pub type TrustDecision;
    /// `EncryptedAttachment` in TypeScript.
    #[wasm_bindgen(typescript_type = "EncryptedAttachment")]
    pub type EncryptedAttachment;
    /// `DeviceBundle` in TypeScript.
    #[wasm_bindgen(typescript_type = "DeviceBundle")]
    pub type DeviceBundle;
    /// `AttachmentPointer` in TypeScript.
    #[wasm_bindgen(typescript_type = "AttachmentPointer")]
    pub type AttachmentPointer;
    /// `ServerFrame` in TypeScript.
    #[wasm_bindgen(typescript_type = "ServerFrame")]
    pub type ServerFrame;
    /// `ClientFrame` in TypeScript.
    #[wasm_bindgen(typescript_type = "ClientFrame")]
    pub type ClientFrame;
}
