// Generated from the Rust types by `scripts/gen-ts` (wasm/tests/ts_wire.rs). Do not edit.
// The wire types (declared in the package's `.d.ts`) and the constants the
// client shares with the relay.

export type {
  Base64Url,
  DeviceBundle,
  AttachmentPointer,
  PlaintextContent,
  MembershipWarning,
  HistoryTrust,
  HistoryItem,
  Problem,
  Page,
  PageQuery,
  RegisterRequest,
  VerifyEmailRequest,
  ResendVerificationRequest,
  LoginRequest,
  TokenResponse,
  RefreshRequest,
  LogoutRequest,
  ForgotPasswordRequest,
  ResetPasswordRequest,
  CheckUsernameQuery,
  CheckUsernameResponse,
  Role,
  User,
  PublicUser,
  UserListQuery,
  UserSearchQuery,
  CreateUserRequest,
  PatchUserRequest,
  PutDeviceRequest,
  RevokeDeviceRequest,
  RelayDevice,
  DeviceListQuery,
  KeysQueryRequest,
  KeysQueryResponse,
  RoomKind,
  CreateRoomRequest,
  DirectRoomRequest,
  Room,
  RoomMember,
  RoomDetails,
  PatchRoomRequest,
  AddMemberRequest,
  AddedMember,
  RoomChange,
  Invitation,
  RoomInvitee,
  InvitationChange,
  BlockRequest,
  BlockedUser,
  PostMessageRequest,
  PostMessageResponse,
  Message,
  MessageListQuery,
  ReceiptKind,
  ReceiptRequest,
  Receipt,
  UnreadResponse,
  AttachmentCreated,
  Contact,
  AddContactRequest,
  PatchContactRequest,
  VapidPublicKey,
  PushSubscriptionRequest,
  WebPushSubscription,
  PushSubscriptionKeys,
  DeletePushSubscriptionRequest,
  PushPayload,
  PushTestResponse,
  ClientFrame,
  ServerFrame,
  CheckStatus,
  Health,
  RootInfo,
} from "./sotto_wasm.js";

/** Every `code` of a relay problem (RFC 9457) or WebSocket `error` frame. */
export const PROBLEM_CODES = [
  "validation_failed",
  "invalid_json",
  "unknown_field",
  "invalid_cursor",
  "payload_too_large",
  "too_large",
  "unsupported_media_type",
  "method_not_allowed",
  "rate_limited",
  "unauthorized",
  "invalid_credentials",
  "email_not_verified",
  "invalid_token",
  "token_expired",
  "refresh_reused",
  "forbidden",
  "username_taken",
  "email_taken",
  "username_immutable",
  "invalid_username",
  "invalid_email",
  "weak_password",
  "current_password_required",
  "last_master",
  "cannot_delete_self",
  "invalid_bundle",
  "identity_key_changed",
  "device_mismatch",
  "device_required",
  "not_a_member",
  "already_member",
  "direct_room",
  "invalid_envelope",
  "envelope_mismatch",
  "contact_exists",
  "cannot_target_self",
  "invalid_subscription",
  "auth_required",
  "invalid_frame",
  "not_found",
  "conflict",
  "internal",
  "unavailable",
  "quota_exceeded",
  "request_timeout",
  "limit_reached",
  "blocked",
  "already_invited",
] as const;
/** One of [`PROBLEM_CODES`]. */
export type ProblemCode = (typeof PROBLEM_CODES)[number];

/** Limits of the relay's contract (sotto-core `api`, `envelope`). */
export const LIMITS = {
  /** Page size when a list query names none. */
  pageDefault: 50,
  /** Largest page a list query may ask for. */
  pageMax: 200,
  /** Users one `POST /api/v1/keys/query` may name. */
  keysQueryUsers: 200,
  /** Password length in characters. */
  passwordMinChars: 8,
  passwordMaxChars: 1024,
  /** Largest plaintext of one message, in bytes. */
  maxPlaintext: 262144,
  /** Largest envelope, in bytes. */
  maxEnvelope: 1048576,
  /** Most recipient devices of one envelope. */
  maxRecipients: 1024,
  /** Most members one membership statement lists. */
  maxStatementMembers: 1000,
  /** Seconds the relay waits for the WebSocket `auth` frame. */
  wsAuthTimeoutSecs: 10,
} as const;

/** The client's timing and retry policy (sotto-engine `policy`); times in milliseconds. */
export const POLICY = {
  /** A socket `send` waits this long for its `ack`, then posts over HTTP. */
  ackTimeoutMs: 10000,
  /** Keep-alive period; three silent periods end the connection. */
  pingEveryMs: 20000,
  /** `delivered` receipts go out this often. */
  receiptEveryMs: 300,
  /** A connection up this long resets the reconnect back-off. */
  stableAfterMs: 30000,
  /** To open the socket, then to get `ready` after `auth`. */
  handshakeTimeoutMs: 10000,
  /** Refresh the access token this long before it expires (or at half its life). */
  refreshMarginMs: 30000,
  /** Messages read ahead of the live stream for their membership statements. */
  readAheadLimit: 200,
} as const;
