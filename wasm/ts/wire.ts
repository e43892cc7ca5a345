// The relay's wire shapes (snake_case JSON, exactly as `sotto-core`'s `api` module
// serialises them), and the small encodings the client needs: base64url without
// padding, UTF-8, UUID v7.

import type { AttachmentPointer, DeviceBundle } from "./sotto_wasm.js";

export type { AttachmentPointer, DeviceBundle };

/** A UUID, lowercase and hyphenated. */
export type Uuid = string;
/** An RFC 3339 UTC timestamp as the relay writes it. */
export type Timestamp = string;
/** Base64url without padding. */
export type B64 = string;

export type Role = "user" | "admin" | "master";

/** `GET /api/v1/auth/me`, `GET /api/v1/users/{id}`. */
export interface User {
  id: Uuid;
  username: string;
  email: string;
  display_name: string | null;
  role: Role;
  email_verified: boolean;
  created_at: Timestamp;
  updated_at: Timestamp;
}

/** What anyone may see of a user (search, contacts). */
export interface PublicUser {
  id: Uuid;
  username: string;
  display_name: string | null;
}

export interface TokenResponse {
  access_token: string;
  refresh_token: string;
  token_type: string;
  expires_in: number;
  user: User;
}

/** A page of a cursor-paginated list. */
export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

/** A device as the relay serves it (its signed bundle is untrusted until verified). */
export interface RelayDevice {
  device_id: Uuid;
  user_id: Uuid;
  display_name: string | null;
  bundle: DeviceBundle;
  created_at: Timestamp;
  updated_at: Timestamp;
  revoked_at?: Timestamp;
}

export interface PutDeviceRequest {
  bundle: DeviceBundle;
  display_name?: string;
  replace_identity?: boolean;
  /** Required with `replace_identity`. */
  current_password?: string;
}

export interface KeysQueryResponse {
  devices: Record<Uuid, RelayDevice[]>;
}

export type RoomKind = "group" | "direct";

export interface Room {
  id: Uuid;
  name: string;
  kind: RoomKind;
  owner_id: Uuid;
  created_at: Timestamp;
  updated_at: Timestamp;
  unread: number;
  last_seq: number;
}

export interface RoomMember {
  user_id: Uuid;
  username: string;
  display_name: string | null;
  is_owner: boolean;
  joined_at: Timestamp;
}

/** A pending invitee of a room (not a member: no keys are sealed for them). */
export interface RoomInvitee {
  user_id: Uuid;
  username: string;
  display_name: string | null;
  invited_by: Uuid;
  invited_at: Timestamp;
}

/** `GET /api/v1/rooms/{id}`: the room, its members and its pending invitees. */
export interface RoomDetails extends Room {
  members: RoomMember[];
  invited: RoomInvitee[];
}

/** An invitation to the caller (`GET /api/v1/invitations`). */
export interface Invitation {
  id: Uuid;
  room_id: Uuid;
  room_name: string;
  room_kind: RoomKind;
  inviter: PublicUser;
  created_at: Timestamp;
}

export type InvitationChange = "received" | "removed";

/** A user the caller blocked (`GET /api/v1/blocks`). */
export interface BlockedUser {
  user: PublicUser;
  created_at: Timestamp;
}

export interface CreateRoomRequest {
  name: string;
  member_ids?: Uuid[];
}

/** A stored message (`envelope` is null once deleted). */
export interface Message {
  id: Uuid;
  room_id: Uuid;
  seq: number;
  sender_id: Uuid;
  device_id: Uuid;
  client_id: Uuid;
  envelope: B64 | null;
  deleted: boolean;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface PostMessageResponse {
  id: Uuid;
  seq: number;
  created_at: Timestamp;
}

export type ReceiptKind = "delivered" | "read";

export interface Receipt {
  room_id: Uuid;
  user_id: Uuid;
  kind: ReceiptKind;
  seq: number;
  updated_at: Timestamp;
}

export interface AttachmentCreated {
  id: Uuid;
  size: number;
  created_at: Timestamp;
}

export interface Contact {
  id: Uuid;
  user: PublicUser;
  nickname: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

/** RFC 9457 problem details, with the relay's stable `code`. */
/** The relay's RFC 9457 problem document (as `sotto_core::api::Problem`). */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  code: string;
  instance?: string;
}

export type RoomChange =
  | "created"
  | "renamed"
  | "deleted"
  | "member_added"
  | "member_removed"
  | "member_invited"
  | "invitation_removed";

/** Frames the client sends over `GET /api/v1/ws`. */
export type ClientFrame =
  | { type: "auth"; token: string }
  | { type: "send"; room_id: Uuid; client_id: Uuid; envelope: B64 }
  | { type: "typing"; room_id: Uuid; active: boolean }
  | { type: "receipt"; room_id: Uuid; kind: ReceiptKind; seq: number }
  | { type: "resume"; cursors: Record<Uuid, number> }
  | { type: "ping" };

/** Frames the relay sends. */
export type ServerFrame =
  | { type: "ready"; user_id: Uuid; device_id?: Uuid }
  | { type: "ack"; client_id: Uuid; id: Uuid; seq: number }
  | {
      type: "message";
      room_id: Uuid;
      id: Uuid;
      seq: number;
      sender_id: Uuid;
      device_id: Uuid;
      envelope: B64;
      created_at: Timestamp;
    }
  | { type: "typing"; room_id: Uuid; user_id: Uuid; active: boolean }
  | { type: "presence"; user_id: Uuid; online: boolean }
  | { type: "receipt"; room_id: Uuid; user_id: Uuid; kind: ReceiptKind; seq: number }
  | { type: "room"; room_id: Uuid; change: RoomChange }
  | { type: "message_deleted"; room_id: Uuid; id: Uuid; seq: number }
  | { type: "history_start"; room_id: Uuid; seq: number }
  | { type: "keys_changed"; user_id: Uuid }
  | { type: "error"; code: string; detail?: string; client_id?: Uuid; retry_after_ms?: number }
  | { type: "invitation"; invitation_id: Uuid; room_id: Uuid; change: InvitationChange }
  | { type: "pong" };

// ---- encodings ---------------------------------------------------------------

/** Bytes as base64url without padding. */
export function toB64(bytes: Uint8Array): B64 {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Base64url (padding optional) as bytes; throws on anything else. */
export function fromB64(text: B64): Uint8Array {
  if (!/^[A-Za-z0-9_-]*={0,2}$/.test(text)) {
    throw new TypeError("not base64url");
  }
  const std = text.replace(/=+$/, "").replace(/-/g, "+").replace(/_/g, "/");
  const bin = atob(std + "=".repeat((4 - (std.length % 4)) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

export function fromUtf8(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/** Constant-shape byte comparison (public keys: no secret to leak, but no early-out either). */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

function hex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

/** A new UUID v7 (time-ordered, like the native SDK's ids). */
export function uuidv7(): Uuid {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  let ms = Date.now();
  for (let i = 5; i >= 0; i--) {
    b[i] = ms % 256;
    ms = Math.floor(ms / 256);
  }
  b[6] = ((b[6] ?? 0) & 0x0f) | 0x70;
  b[8] = ((b[8] ?? 0) & 0x3f) | 0x80;
  const h = hex(b);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * The token of an e-mailed link (`.../verify-email#token=...`, `?token=`,
 * `&token=`), or the argument itself when it is already a token.
 */
export function tokenFromLink(linkOrToken: string): string {
  const s = linkOrToken.trim();
  for (const sep of ["#token=", "?token=", "&token="]) {
    const i = s.indexOf(sep);
    if (i >= 0) {
      const rest = s.slice(i + sep.length);
      return rest.split(/[&#]/)[0] ?? rest;
    }
  }
  return s;
}
