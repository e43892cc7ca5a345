// Generated from the Rust types by `scripts/gen-ts` (wasm/tests/ts_wire.rs). Do not edit.
// The relay's wire (sotto-core `api`, snake_case as on the wire; binary as
// base64url without padding; requests refuse unknown fields), and the
// engine's types apps see. Included in the package's `.d.ts`.

/**
 * Public binary data carried as a base64url (no padding) string in JSON.
 *
 * Only for public material (keys, signatures, ciphertext): its `Debug` prints
 * the encoded bytes.
 */
export type Base64Url = string;

/**
 * A device's public keys, signed by the user's identity key (and by the
 * device's own signing key, proving possession). This is what the relay stores
 * and serves; all binary fields are base64url without padding in JSON.
 *
 * A `DeviceBundle` is untrusted input until [`DeviceBundle::verify`] turns it
 * into a [`VerifiedDevice`].
 */
export type DeviceBundle = {
  /**
   * Format version, [`BUNDLE_VERSION`].
   */
  version: number,
  /**
   * The user the device belongs to.
   */
  user_id: string,
  /**
   * The device.
   */
  device_id: string,
  /**
   * The user's Ed25519 identity key (32 bytes).
   */
  identity_key: Base64Url,
  /**
   * The device's Ed25519 signing key (32 bytes).
   */
  signing_key: Base64Url,
  /**
   * The device's X25519 key (32 bytes).
   */
  x25519_key: Base64Url,
  /**
   * The device's RSA key as SPKI DER, if it supports the `rsa` suite.
   */
  rsa_key?: Base64Url,
  /**
   * Ed25519 signature by the identity key (64 bytes).
   */
  identity_signature: Base64Url,
  /**
   * Ed25519 signature by the device signing key (64 bytes).
   */
  device_signature: Base64Url,
};

/**
 * The reference to an attachment that a sender puts inside the plaintext of a
 * sealed message: where the blob is, the key to decrypt it, and what it must
 * hash to. JSON object; unknown fields are rejected.
 *
 * `key` is secret: it is zeroized when the pointer is dropped and redacted from
 * `Debug`, but serializing the pointer (e.g. with `serde_json`) writes the key
 * into the output, which the caller must treat as secret (it is meant to be
 * sealed). `content_type` and `name` are the sender's claims: never use `name`
 * as a file-system path without sanitizing it.
 */
export type AttachmentPointer = {
  /**
   * The attachment id the relay assigned on upload.
   */
  id: string,
  /**
   * The 32-byte attachment key (base64url).
   */
  key: Base64Url,
  /**
   * SHA-256 of the complete blob, 32 bytes (base64url).
   */
  sha256: Base64Url,
  /**
   * Plaintext size in bytes.
   */
  size: number,
  /**
   * Blob size in bytes, as uploaded.
   */
  encrypted_size: number,
  /**
   * Plaintext bytes per chunk (also in the blob's header).
   */
  chunk_size: number,
  /**
   * The file's media type, e.g. `image/png`. Omitted when absent.
   */
  content_type?: string,
  /**
   * The file's name as the sender gave it. Omitted when absent.
   */
  name?: string,
};

/**
 * The content of a message, as apps see it.
 */
export type PlaintextContent = { "type": "text",
  /**
   * The text.
   */
  body: string,
} | { "type": "file",
  /**
   * The pointer (id, key, digest, sizes, name, media type). Secret: holds the key.
   */
  file: AttachmentPointer,
} | { "type": "unknown" };

/**
 * Something about a room's membership the user must learn (loud).
 */
export type MembershipWarning = { "kind": "unconfirmed",
  /**
   * The room.
   */
  room_id: string,
  /**
   * Who.
   */
  users: Array<string>,
} | { "kind": "direct_room_tampered",
  /**
   * The room.
   */
  room_id: string,
  /**
   * Who besides the pinned pair.
   */
  users: Array<string>,
} | { "kind": "statement_refused",
  /**
   * The room.
   */
  room_id: string,
  /**
   * Why.
   */
  reason: string,
} | { "kind": "unsigned",
  /**
   * The room.
   */
  room_id: string,
};

/**
 * How far the sender of a kept message was trusted when it was opened.
 */
export type HistoryTrust = "own" | "verified" | "unverified";

/**
 * One opened message as local history keeps it.
 */
export type HistoryItem = {
  /**
   * The room.
   */
  room_id: string,
  /**
   * The relay's id of the message.
   */
  id: string,
  /**
   * Its place in the room.
   */
  seq: number,
  /**
   * The sender.
   */
  sender_id: string,
  /**
   * The sending device.
   */
  sender_device: string,
  /**
   * The sender's message id.
   */
  client_id: string,
  /**
   * The sender's clock when sealing (Unix milliseconds; a claim).
   */
  sent_at_ms: number,
  /**
   * When the relay stored it (RFC 3339).
   */
  received_at: string,
  /**
   * Trust in the sender when it was opened.
   */
  trust: HistoryTrust,
  /**
   * What it says.
   */
  content: PlaintextContent,
};

/**
 * An RFC 9457 problem details body, as sent with every 4xx/5xx answer.
 *
 * Clients branch on [`Problem::code`] (one of [`codes`]); `title` and `detail` are
 * for humans and may change.
 */
export type Problem = {
  /**
   * Problem type URI reference (`"about:blank"` unless the relay documents a
   * more specific one).
   */
  type: string,
  /**
   * Short, human-readable summary of the problem type.
   */
  title: string,
  /**
   * The HTTP status code of the answer.
   */
  status: number,
  /**
   * Human-readable explanation of this occurrence; never contains internal
   * (database, stack) details.
   */
  detail?: string,
  /**
   * Stable machine-readable snake_case code; see [`codes`].
   */
  code: string,
  /**
   * URI reference identifying this occurrence (e.g. the request path).
   */
  instance?: string,
};

/**
 * One page of a list response.
 *
 * `next_cursor` is always serialised, as `null` on the last page, so clients can
 * rely on the key being present.
 */
export type Page<T> = {
  /**
   * The items of this page, in the list's order.
   */
  items: Array<T>,
  /**
   * Opaque cursor to pass as `?cursor=` for the next page; `null` when this is
   * the last page. Clients must not interpret it.
   */
  next_cursor: string | null,
};

/**
 * The `?limit=&cursor=` query string of a paginated list route.
 */
export type PageQuery = {
  /**
   * Requested page size; see [`PageQuery::effective_limit`].
   */
  limit?: number,
  /**
   * Cursor from a previous page's `next_cursor`; absent for the first page.
   */
  cursor?: string,
};

/**
 * `POST /api/v1/auth/register` (public) → 201 [`User`].
 *
 * The relay sends a verification e-mail to `email`.
 */
export type RegisterRequest = {
  /**
   * Wanted username; immutable once created: 3-32 of `a-z 0-9 _ . -` (stored in
   * lower case), starting with a letter or digit.
   */
  username: string,
  /**
   * E-mail address, to be verified.
   */
  email: string,
  /**
   * Password, [`PASSWORD_MIN_CHARS`] to [`PASSWORD_MAX_CHARS`] characters, not one
   * of the most common.
   */
  password: string,
};

/**
 * `POST /api/v1/auth/verify-email` (public) → 200.
 */
export type VerifyEmailRequest = {
  /**
   * The single-use token from the e-mailed link (valid 24 h).
   */
  token: string,
};

/**
 * `POST /api/v1/auth/resend-verification` (public) → 202, always.
 */
export type ResendVerificationRequest = {
  /**
   * The address to send a new verification link to, if it is an unverified
   * account's.
   */
  email: string,
};

/**
 * `POST /api/v1/auth/login` (public) → 200 [`TokenResponse`].
 *
 * 401 `invalid_credentials` on a wrong login or password; 403
 * `email_not_verified` when verification is required and not done.
 */
export type LoginRequest = {
  /**
   * Username or e-mail address.
   */
  login: string,
  /**
   * Password.
   */
  password: string,
};

/**
 * 200 answer of `POST /api/v1/auth/login` and `POST /api/v1/auth/refresh`: a new
 * access/refresh token pair.
 */
export type TokenResponse = {
  /**
   * Short-lived bearer token for `Authorization: Bearer ...` and the WebSocket
   * `auth` frame.
   */
  access_token: string,
  /**
   * Single-use token for `POST /api/v1/auth/refresh`; rotated on every refresh.
   */
  refresh_token: string,
  /**
   * Always [`TOKEN_TYPE_BEARER`] (`"Bearer"`).
   */
  token_type: string,
  /**
   * Lifetime of `access_token`, in seconds from issue.
   */
  expires_in: number,
  /**
   * The authenticated user.
   */
  user: User,
};

/**
 * `POST /api/v1/auth/refresh` (public) → 200 [`TokenResponse`].
 *
 * Refresh tokens rotate; presenting a spent one revokes its whole session family
 * (401 `refresh_reused`).
 */
export type RefreshRequest = {
  /**
   * The current refresh token.
   */
  refresh_token: string,
};

/**
 * `POST /api/v1/auth/logout` (user) → 204; the session is revoked.
 */
export type LogoutRequest = {
  /**
   * The refresh token of the session to end.
   */
  refresh_token: string,
};

/**
 * `POST /api/v1/auth/password/forgot` (public) → 202, always, whether or not the
 * address exists.
 */
export type ForgotPasswordRequest = {
  /**
   * The account's e-mail address.
   */
  email: string,
};

/**
 * `POST /api/v1/auth/password/reset` (public) → 204; all sessions of the user are
 * revoked.
 */
export type ResetPasswordRequest = {
  /**
   * The single-use reset token from the e-mail (valid 1 h).
   */
  token: string,
  /**
   * The new password (same rules as at registration).
   */
  new_password: string,
};

/**
 * Query of `GET /api/v1/users/check-username?username=` (public).
 */
export type CheckUsernameQuery = {
  /**
   * The username to check.
   */
  username: string,
};

/**
 * Answer of `GET /api/v1/users/check-username`.
 */
export type CheckUsernameResponse = {
  /**
   * Whether the username is valid and not taken.
   */
  available: boolean,
};

/**
 * A user's role. Ordered: `User < Admin < Master`.
 */
export type Role = "user" | "admin" | "master";

/**
 * A full user profile, seen by the user themself, admins and masters.
 *
 * Answer of register (201), `GET /api/v1/auth/me`, `GET|POST|PATCH
 * /api/v1/users[/{id}]`; items of `GET /api/v1/users` (a [`super::Page`]).
 */
export type User = {
  /**
   * User id.
   */
  id: string,
  /**
   * Unique, immutable username.
   */
  username: string,
  /**
   * E-mail address.
   */
  email: string,
  /**
   * Optional display name.
   */
  display_name: string | null,
  /**
   * Role.
   */
  role: Role,
  /**
   * Whether the e-mail address has been verified.
   */
  email_verified: boolean,
  /**
   * Creation time.
   */
  created_at: string,
  /**
   * Last change of the profile.
   */
  updated_at: string,
};

/**
 * The public profile of a user, as anyone who may find them sees it
 * (`GET /api/v1/users/search`, contacts).
 */
export type PublicUser = {
  /**
   * User id.
   */
  id: string,
  /**
   * Username.
   */
  username: string,
  /**
   * Optional display name.
   */
  display_name: string | null,
};

/**
 * Query of `GET /api/v1/users?q=&limit=&cursor=` (admin, master) → a
 * [`super::Page`] of [`User`].
 */
export type UserListQuery = {
  /**
   * Filter: substring of username, e-mail or display name.
   */
  q?: string,
  /**
   * Page size (default 50, max 200).
   */
  limit?: number,
  /**
   * Cursor from the previous page.
   */
  cursor?: string,
};

/**
 * Query of `GET /api/v1/users/search?q=&limit=&cursor=` (user) → a
 * [`super::Page`] of [`PublicUser`]: verified users whose username starts with
 * `q`, in username order; `next_cursor` continues the list.
 */
export type UserSearchQuery = {
  /**
   * Username prefix.
   */
  q: string,
  /**
   * Maximum number of results (default 50, max 200).
   */
  limit?: number,
  /**
   * `next_cursor` of the previous page.
   */
  cursor?: string,
};

/**
 * `POST /api/v1/users` (admin, master) → 201 [`User`].
 *
 * Only a master may set `role` to anything but `user` (403 otherwise).
 */
export type CreateUserRequest = {
  /**
   * Username (same rules as at registration).
   */
  username: string,
  /**
   * E-mail address.
   */
  email: string,
  /**
   * Initial password (same rules as at registration).
   */
  password: string,
  /**
   * Optional display name, at most 64 characters.
   */
  display_name?: string,
  /**
   * Role; `user` when absent.
   */
  role?: Role,
};

/**
 * `PATCH /api/v1/users/{id}` (self, admin, master) → 200 [`User`].
 *
 * Absent fields are left unchanged. Self may change display name, e-mail and
 * password (a password change by oneself needs `current_password`); only a master
 * changes roles; nobody changes a username (400 `username_immutable`).
 */
export type PatchUserRequest = {
  /**
   * New display name: absent = unchanged, `null` = remove, a string = set.
   */
  display_name?: string | null,
  /**
   * New e-mail address (becomes unverified until verified again).
   */
  email?: string,
  /**
   * New password (same rules as at registration).
   */
  password?: string,
  /**
   * The caller's current password; required when changing one's own password.
   */
  current_password?: string,
  /**
   * New role (master only).
   */
  role?: Role,
  /**
   * Never accepted: present only so that the relay can answer 400
   * `username_immutable` rather than a generic unknown-field error.
   */
  username?: string,
};

/**
 * `PUT /api/v1/devices/{device_id}`: upload or replace the caller's device bundle
 * → 200 [`Device`] (201 when the device is new).
 *
 * The relay checks that `bundle.device_id` equals the path's `device_id` and
 * `bundle.user_id` the caller, verifies the bundle's signatures and rejects
 * malformed keys (400 `invalid_bundle`). A bundle whose identity key differs from
 * the one already on record for the user is refused (409 `identity_key_changed`)
 * unless `replace_identity` is `true`, which needs the account's
 * `current_password` (400 `current_password_required`, 403
 * `invalid_credentials` when wrong). `Debug` redacts the password.
 */
export type PutDeviceRequest = {
  /**
   * The signed public bundle of the device.
   */
  bundle: DeviceBundle,
  /**
   * Optional human-readable device name (e.g. "Laptop"), at most 64 characters.
   */
  display_name?: string,
  /**
   * Explicitly replace the user's identity key with the bundle's (e.g. after
   * losing all devices). Everyone sharing a room with the user is told via
   * `keys_changed`, and their clients should show the safety-number change.
   */
  replace_identity?: boolean,
  /**
   * The account's password: required with `replace_identity`, so a stolen
   * access token alone cannot swap the user's identity key.
   */
  current_password?: string,
};

/**
 * `DELETE /api/v1/devices/{device_id}` → 204: revoke one of the caller's
 * devices, which needs the account's password (so a stolen access token alone
 * cannot cut the owner's devices off). `Debug` redacts it.
 */
export type RevokeDeviceRequest = {
  /**
   * The account's password.
   */
  current_password: string,
};

/**
 * A registered device and its public bundle.
 *
 * Answer of `PUT /api/v1/devices/{device_id}`; items of `GET /api/v1/devices` and
 * `GET /api/v1/users/{id}/devices` (each a [`super::Page`] of `Device`).
 */
export type RelayDevice = {
  /**
   * Device id (chosen by the client, equal to `bundle.device_id`).
   */
  device_id: string,
  /**
   * Owner of the device.
   */
  user_id: string,
  /**
   * Optional human-readable device name.
   */
  display_name: string | null,
  /**
   * The device's signed public bundle.
   */
  bundle: DeviceBundle,
  /**
   * First upload.
   */
  created_at: string,
  /**
   * Last replacement of the bundle or name.
   */
  updated_at: string,
  /**
   * When the device was revoked; absent for an active device. Revoked devices
   * are listed only on request (`include_revoked`), so that clients can still
   * verify messages they sent before; nobody should encrypt to them.
   */
  revoked_at?: string,
};

/**
 * Query of `GET /api/v1/users/{id}/devices` and `GET /api/v1/devices`.
 */
export type DeviceListQuery = {
  /**
   * Also list revoked devices (default `false`: active devices only).
   */
  include_revoked?: boolean,
};

/**
 * `POST /api/v1/keys/query` → 200 [`KeysQueryResponse`].
 */
export type KeysQueryRequest = {
  /**
   * Users whose device bundles are wanted (at most [`MAX_KEYS_QUERY_USERS`]).
   */
  user_ids: Array<string>,
  /**
   * Also return revoked devices (to verify old messages), flagged with
   * `revoked_at`. Default `false`: the devices to encrypt to.
   */
  include_revoked?: boolean,
};

/**
 * Answer of `POST /api/v1/keys/query`: the bundles of every device of the asked
 * users, in one call, for fan-out.
 *
 * Users the caller may not see (no shared room or contact, not an admin) and
 * unknown users are answered exactly like users without devices, with an empty
 * list, so the answer does not reveal who exists.
 */
export type KeysQueryResponse = {
  /**
   * Devices per user id; every asked user id is a key.
   */
  devices: { [key in string]: Array<RelayDevice> },
};

/**
 * Kind of a room.
 */
export type RoomKind = "group" | "direct";

/**
 * `POST /api/v1/rooms` → 201 [`RoomDetails`]; the creator is the owner. Each
 * of `member_ids` who has the creator in their contacts is a member at once;
 * the others are invited ([`RoomDetails::invited`]).
 */
export type CreateRoomRequest = {
  /**
   * Room name (plaintext metadata; clients that want it hidden put the name
   * inside an encrypted event): 1-128 printable characters, trimmed.
   */
  name: string,
  /**
   * Users to add besides the creator.
   */
  member_ids?: Array<string>,
};

/**
 * `POST /api/v1/rooms/direct` → the existing direct room with that user (200) or a
 * new one (201), as [`RoomDetails`]. A new room with a user who does not have
 * the caller in their contacts holds the caller only, with the other invited;
 * calling it while invited to that room accepts the invitation.
 */
export type DirectRoomRequest = {
  /**
   * The other user.
   */
  user_id: string,
};

/**
 * A room the caller belongs to; items of `GET /api/v1/rooms` (a [`super::Page`]).
 */
export type Room = {
  /**
   * Room id.
   */
  id: string,
  /**
   * Room name (empty for a direct room: clients show the other member).
   */
  name: string,
  /**
   * Group or direct.
   */
  kind: RoomKind,
  /**
   * The owner (for a direct room, the user who opened it).
   */
  owner_id: string,
  /**
   * Creation time.
   */
  created_at: string,
  /**
   * Last change of the room's name or membership.
   */
  updated_at: string,
  /**
   * Messages after the caller's last `read` receipt, not counting their own.
   */
  unread: number,
  /**
   * `seq` of the room's latest message (0 when it has none).
   */
  last_seq: number,
  /**
   * Grows at every change of the room's members, owner or invitations.
   * Clients order the room views they fetch by it: an answer with a smaller
   * `member_epoch` than one already seen was overtaken by a change.
   */
  member_epoch: number,
};

/**
 * A member of a room.
 */
export type RoomMember = {
  /**
   * Member's user id.
   */
  user_id: string,
  /**
   * Member's username.
   */
  username: string,
  /**
   * Member's display name.
   */
  display_name: string | null,
  /**
   * Whether this member owns the room.
   */
  is_owner: boolean,
  /**
   * When the member joined.
   */
  joined_at: string,
};

/**
 * Details of a room with its members: answer of `GET /api/v1/rooms/{id}`
 * (members only), of creating a room and of `PATCH /api/v1/rooms/{id}`.
 *
 * On the wire the [`Room`] fields sit at the top level next to `members`.
 */
export type RoomDetails = {
  /**
   * Its members.
   */
  members: Array<RoomMember>,
  /**
   * Users invited and not yet answered (`docs/relay.md`, "Consent"): not
   * members, so no keys are sealed for them.
   */
  invited: Array<RoomInvitee>,
  /**
   * Room id.
   */
  id: string,
  /**
   * Room name (empty for a direct room: clients show the other member).
   */
  name: string,
  /**
   * Group or direct.
   */
  kind: RoomKind,
  /**
   * The owner (for a direct room, the user who opened it).
   */
  owner_id: string,
  /**
   * Creation time.
   */
  created_at: string,
  /**
   * Last change of the room's name or membership.
   */
  updated_at: string,
  /**
   * Messages after the caller's last `read` receipt, not counting their own.
   */
  unread: number,
  /**
   * `seq` of the room's latest message (0 when it has none).
   */
  last_seq: number,
  /**
   * Grows at every change of the room's members, owner or invitations.
   * Clients order the room views they fetch by it: an answer with a smaller
   * `member_epoch` than one already seen was overtaken by a change.
   */
  member_epoch: number,
};

/**
 * `PATCH /api/v1/rooms/{id}` (owner only) → 200 [`RoomDetails`].
 */
export type PatchRoomRequest = {
  /**
   * New room name: 1-128 printable characters, trimmed.
   */
  name: string,
};

/**
 * `POST /api/v1/rooms/{id}/members` (owner only) → 201 [`RoomMember`] when the
 * user has the owner in their contacts, else 202
 * [`super::invitations::RoomInvitee`]: a pending invitation.
 */
export type AddMemberRequest = {
  /**
   * The user to add.
   */
  user_id: string,
};

/**
 * The answer of `POST /api/v1/rooms/{id}/members` as a client reads it: the
 * new member (201) or the pending invitee (202). The two shapes have no field
 * in common but the user's, so this deserialises untagged.
 */
export type AddedMember = RoomMember | RoomInvitee;

/**
 * What changed in a room (the `change` of a WebSocket `room` frame). Clients
 * refetch `GET /api/v1/rooms/{id}` for the new state (a 404 means they are no
 * longer a member).
 */
export type RoomChange = "created" | "renamed" | "deleted" | "member_added" | "member_removed" | "member_invited" | "invitation_removed";

/**
 * An invitation to the caller: items of `GET /api/v1/invitations` (a
 * [`super::Page`], oldest first).
 */
export type Invitation = {
  /**
   * Invitation id (used in `/api/v1/invitations/{id}/...`).
   */
  id: string,
  /**
   * The room.
   */
  room_id: string,
  /**
   * The room's name (empty for a direct room).
   */
  room_name: string,
  /**
   * Group or direct.
   */
  room_kind: RoomKind,
  /**
   * Who invited the caller.
   */
  inviter: PublicUser,
  /**
   * When.
   */
  created_at: string,
};

/**
 * A pending invitee of a room, as its members see it (in
 * [`super::rooms::RoomDetails::invited`], and the 202 answer of
 * `POST /api/v1/rooms/{id}/members`).
 */
export type RoomInvitee = {
  /**
   * The invited user.
   */
  user_id: string,
  /**
   * Their username.
   */
  username: string,
  /**
   * Their display name.
   */
  display_name: string | null,
  /**
   * The member who invited them.
   */
  invited_by: string,
  /**
   * When.
   */
  invited_at: string,
};

/**
 * What happened to one of the recipient's invitations (the `change` of a
 * WebSocket `invitation` frame). Clients refetch `GET /api/v1/invitations`.
 */
export type InvitationChange = "received" | "removed";

/**
 * `POST /api/v1/blocks` → 201 [`BlockedUser`] (200 when already blocked).
 */
export type BlockRequest = {
  /**
   * The user to block.
   */
  user_id: string,
};

/**
 * A user the caller blocked: items of `GET /api/v1/blocks` (a [`super::Page`],
 * oldest first).
 */
export type BlockedUser = {
  /**
   * Their public profile.
   */
  user: PublicUser,
  /**
   * When they were blocked.
   */
  created_at: string,
};

/**
 * `POST /api/v1/rooms/{id}/messages` → 201 [`PostMessageResponse`].
 *
 * Idempotent on (sender, `client_id`): a retry answers the first result and
 * stores nothing new (a retry with a different envelope is 409
 * `envelope_mismatch`).
 */
export type PostMessageRequest = {
  /**
   * Client-chosen message id; must equal the envelope header's.
   */
  client_id: string,
  /**
   * The sealed envelope (binary envelope encoding, base64url).
   */
  envelope: Base64Url,
};

/**
 * Answer of `POST /api/v1/rooms/{id}/messages`.
 */
export type PostMessageResponse = {
  /**
   * Relay-assigned message id.
   */
  id: string,
  /**
   * The message's position in the room (per room, gapless, from 1).
   */
  seq: number,
  /**
   * When the relay stored it.
   */
  created_at: string,
};

/**
 * A stored message; items of `GET /api/v1/rooms/{id}/messages` (a
 * [`super::Page`] ordered by `seq`).
 */
export type Message = {
  /**
   * Relay-assigned message id.
   */
  id: string,
  /**
   * The room.
   */
  room_id: string,
  /**
   * Position in the room (gapless, increasing).
   */
  seq: number,
  /**
   * Sending user.
   */
  sender_id: string,
  /**
   * Sending device.
   */
  device_id: string,
  /**
   * The sender's client message id.
   */
  client_id: string,
  /**
   * The sealed envelope; `null` for a deleted message (tombstone).
   */
  envelope: Base64Url | null,
  /**
   * Whether the message was deleted (then `envelope` is `null`).
   */
  deleted: boolean,
  /**
   * When the relay stored it.
   */
  created_at: string,
  /**
   * When it was deleted, else `created_at` (a message changes only by deletion).
   */
  updated_at: string,
};

/**
 * Query of `GET /api/v1/rooms/{id}/messages?after_seq=&limit=`.
 *
 * The answer is a [`super::Page`] of [`Message`] with `seq > after_seq`, in `seq`
 * order; its `next_cursor`, when not `null`, is the decimal `seq` to pass as the
 * next `after_seq`.
 */
export type MessageListQuery = {
  /**
   * Only messages with a greater `seq` (default 0: from the start).
   */
  after_seq?: number,
  /**
   * Page size (default 50, max 200).
   */
  limit?: number,
};

/**
 * Kind of a receipt.
 */
export type ReceiptKind = "delivered" | "read";

/**
 * `POST /api/v1/rooms/{id}/receipts` (also the WebSocket `receipt` frame).
 *
 * Receipts only move forward: a `seq` at or below the stored one changes nothing.
 */
export type ReceiptRequest = {
  /**
   * Delivered or read.
   */
  kind: ReceiptKind,
  /**
   * Highest `seq` covered.
   */
  seq: number,
};

/**
 * A member's receipt in a room, as stored by the relay.
 */
export type Receipt = {
  /**
   * The room.
   */
  room_id: string,
  /**
   * The member.
   */
  user_id: string,
  /**
   * Delivered or read.
   */
  kind: ReceiptKind,
  /**
   * Highest `seq` covered.
   */
  seq: number,
  /**
   * When the receipt last moved.
   */
  updated_at: string,
};

/**
 * Answer of `GET /api/v1/unread`: `{"<room_id>": count, ...}` for every room of the
 * caller.
 */
export type UnreadResponse = { [key in string]: number };

/**
 * Answer (201) of `POST /api/v1/rooms/{id}/attachments`, whose body is the
 * encrypted attachment as opaque bytes (`application/octet-stream`). The key lives
 * inside a message envelope; `GET /api/v1/attachments/{id}` returns the bytes to
 * members of the room.
 */
export type AttachmentCreated = {
  /**
   * Attachment id.
   */
  id: string,
  /**
   * Stored size in bytes.
   */
  size: number,
  /**
   * Upload time.
   */
  created_at: string,
};

/**
 * One of the caller's contacts; items of `GET /api/v1/contacts` (a
 * [`super::Page`]), answer of `POST` (201) and `PATCH` (200).
 */
export type Contact = {
  /**
   * Contact entry id (used in `/api/v1/contacts/{id}`), not the user's id.
   */
  id: string,
  /**
   * The contact's public profile.
   */
  user: PublicUser,
  /**
   * The caller's private nickname for them.
   */
  nickname: string | null,
  /**
   * When the contact was added.
   */
  created_at: string,
  /**
   * Last nickname change.
   */
  updated_at: string,
};

/**
 * `POST /api/v1/contacts` → 201 [`Contact`].
 */
export type AddContactRequest = {
  /**
   * The user to add.
   */
  user_id: string,
  /**
   * Optional nickname, at most 64 characters.
   */
  nickname?: string,
};

/**
 * `PATCH /api/v1/contacts/{id}` → 200 [`Contact`].
 */
export type PatchContactRequest = {
  /**
   * The new nickname (at most 64 characters); `null` (or absent) removes it.
   */
  nickname?: string | null,
};

/**
 * Answer of `GET /api/v1/push/vapid-public-key`.
 */
export type VapidPublicKey = {
  /**
   * The relay's VAPID P-256 public key, uncompressed point, base64url without
   * padding: the `applicationServerKey` for `PushManager.subscribe`.
   */
  public_key: string,
};

/**
 * `POST /api/v1/push/subscriptions` → 201: subscribe a device of the caller.
 * Re-posting an endpoint replaces its previous subscription.
 */
export type PushSubscriptionRequest = {
  /**
   * The caller's device this subscription belongs to.
   */
  device_id: string,
  /**
   * The browser's `PushSubscription.toJSON()`.
   */
  subscription: WebPushSubscription,
};

/**
 * A browser `PushSubscription` in its `toJSON()` form (camelCase keys, as the
 * browser writes them).
 *
 * Not `deny_unknown_fields`: this object is defined by the Push API, and a
 * browser adding a member must not break subscribing.
 */
export type WebPushSubscription = {
  /**
   * The push service URL the relay posts to.
   */
  endpoint: string,
  /**
   * Expiry as milliseconds since the Unix epoch (`expirationTime`), or `null`.
   */
  expirationTime?: number | null,
  /**
   * The subscription's keys.
   */
  keys: PushSubscriptionKeys,
};

/**
 * The `keys` of a browser `PushSubscription` (base64url strings, RFC 8291).
 */
export type PushSubscriptionKeys = {
  /**
   * The user agent's P-256 ECDH public key.
   */
  p256dh: string,
  /**
   * The 16-byte authentication secret.
   */
  auth: string,
};

/**
 * `DELETE /api/v1/push/subscriptions` → 204.
 */
export type DeletePushSubscriptionRequest = {
  /**
   * Endpoint of the subscription to remove.
   */
  endpoint: string,
};

/**
 * The JSON payload of a Web Push sent by the relay (encrypted per RFC 8291),
 * tagged by `type`.
 */
export type PushPayload = { "type": "news",
  /**
   * The room.
   */
  room_id: string,
  /**
   * Latest `seq` in the room.
   */
  seq: number,
} | { "type": "test" };

/**
 * Answer of `POST /api/v1/push/test`: whether the test push reached at least
 * one push service. Nothing more is said (which destination failed, and how,
 * would tell a caller about the relay's network).
 */
export type PushTestResponse = {
  /**
   * At least one of the caller's subscriptions' push services accepted it.
   */
  accepted: boolean,
};

/**
 * A frame sent by the client to the relay.
 *
 * Unknown fields are rejected (the relay answers an `error` frame with code
 * `invalid_frame`). `Debug` redacts the `auth` token.
 */
export type ClientFrame = { "type": "auth",
  /**
   * The access token (as in `Authorization: Bearer`).
   */
  token: string,
} | { "type": "send",
  /**
   * The room.
   */
  room_id: string,
  /**
   * Client message id; must equal the envelope header's.
   */
  client_id: string,
  /**
   * The sealed envelope.
   */
  envelope: Base64Url,
} | { "type": "typing",
  /**
   * The room.
   */
  room_id: string,
  /**
   * Whether the user is typing.
   */
  active: boolean,
} | { "type": "receipt",
  /**
   * The room.
   */
  room_id: string,
  /**
   * Delivered or read.
   */
  kind: ReceiptKind,
  /**
   * Highest `seq` covered.
   */
  seq: number,
} | { "type": "resume",
  /**
   * Last `seq` seen, per room id. Rooms left out are not replayed.
   */
  cursors: { [key in string]: number },
} | { "type": "ping" };

/**
 * A frame sent by the relay to the client.
 */
export type ServerFrame = { "type": "ready",
  /**
   * The authenticated user.
   */
  user_id: string,
  /**
   * The device the access token is bound to, if any.
   */
  device_id?: string,
} | { "type": "ack",
  /**
   * The client message id of the `send`.
   */
  client_id: string,
  /**
   * Relay-assigned message id.
   */
  id: string,
  /**
   * The message's `seq` in its room.
   */
  seq: number,
} | { "type": "message",
  /**
   * The room.
   */
  room_id: string,
  /**
   * Relay-assigned message id.
   */
  id: string,
  /**
   * The message's `seq` in its room.
   */
  seq: number,
  /**
   * Sending user.
   */
  sender_id: string,
  /**
   * Sending device.
   */
  device_id: string,
  /**
   * The sealed envelope.
   */
  envelope: Base64Url,
  /**
   * When the relay stored it.
   */
  created_at: string,
} | { "type": "typing",
  /**
   * The room.
   */
  room_id: string,
  /**
   * The typing user.
   */
  user_id: string,
  /**
   * Whether they are typing.
   */
  active: boolean,
} | { "type": "presence",
  /**
   * The user.
   */
  user_id: string,
  /**
   * Whether they have at least one connected socket.
   */
  online: boolean,
} | { "type": "receipt",
  /**
   * The room.
   */
  room_id: string,
  /**
   * The member.
   */
  user_id: string,
  /**
   * Delivered or read.
   */
  kind: ReceiptKind,
  /**
   * Highest `seq` covered.
   */
  seq: number,
} | { "type": "room",
  /**
   * The room.
   */
  room_id: string,
  /**
   * What changed.
   */
  change: RoomChange,
} | { "type": "message_deleted",
  /**
   * The room.
   */
  room_id: string,
  /**
   * The deleted message.
   */
  id: string,
  /**
   * Its `seq`.
   */
  seq: number,
} | { "type": "history_start",
  /**
   * The room.
   */
  room_id: string,
  /**
   * The recipient's join point: the room's last `seq` when they joined.
   */
  seq: number,
} | { "type": "keys_changed",
  /**
   * The user.
   */
  user_id: string,
} | { "type": "error",
  /**
   * Stable snake_case code (see [`super::codes`]).
   */
  code: string,
  /**
   * Human-readable explanation.
   */
  detail?: string,
  /**
   * The `client_id` of the refused `send`, so the client can tell which
   * message failed; absent for errors not tied to a `send` (and for a
   * frame that cannot be parsed at all).
   */
  client_id?: string,
  /**
   * With `rate_limited` and `quota_exceeded`: milliseconds to wait before
   * sending it again.
   */
  retry_after_ms?: number,
} | { "type": "invitation",
  /**
   * The invitation.
   */
  invitation_id: string,
  /**
   * Its room.
   */
  room_id: string,
  /**
   * What happened.
   */
  change: InvitationChange,
} | { "type": "pong" };

/**
 * Health of the relay or one of its dependencies.
 */
export type CheckStatus = "ok" | "unavailable";

/**
 * Answer of `GET /health`: 200 when everything is `ok`, 503 otherwise.
 */
export type Health = {
  /**
   * Overall status.
   */
  status: CheckStatus,
  /**
   * Database status.
   */
  database: CheckStatus,
};

/**
 * Answer of `GET /`.
 */
export type RootInfo = {
  /**
   * Service name (`"sotto-relay"`).
   */
  name: string,
  /**
   * Relay version (the crate version).
   */
  version: string,
};

