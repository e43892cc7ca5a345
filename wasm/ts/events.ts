// What a session reports to the app: `CustomEvent`s whose `detail` is one of
// these, and the message content inside envelopes (same JSON as the native SDK).

import { decodePlaintext, encodeContentPlaintext } from "./sotto_wasm.js";
import type { MembershipWarning } from "./sotto_wasm.js";
import type { AttachmentPointer, InvitationChange, ReceiptKind, RoomChange, Uuid } from "./sotto_wasm.js";

export type { MembershipWarning };

/** What a message says (the plaintext inside the envelope is this JSON). */
export type Content =
  | { type: "text"; body: string }
  | { type: "file"; file: AttachmentPointer }
  | { type: "unknown" };

/**
 * Trust in a message's sender: `verified` (its identity key was verified by
 * safety number), `unverified` (pinned on first use), `own` (another device of
 * this same account, or this device).
 */
export type SenderTrust = "verified" | "unverified" | "own";

/** A decrypted, verified message (event `message`, and `Session.history`). */
export interface ReceivedMessage {
  roomId: Uuid;
  /** The relay's id of the message. */
  id: Uuid;
  /** Its place in the room. */
  seq: number;
  /** The sender (authenticated under their pinned identity key). */
  senderId: Uuid;
  senderDeviceId: Uuid;
  /** The sender's message id (unique per sender). */
  clientId: Uuid;
  /** The sender's clock when sealing, Unix milliseconds (a claim of the sender). */
  sentAt: number;
  /** When the relay stored it (RFC 3339). */
  receivedAt: string;
  trust: SenderTrust;
  content: Content;
}

export type UndecryptableReason =
  /** Not sealed to this device (sent before it existed, or after it was revoked). */
  | "not_for_this_device"
  /** The sending device is unknown, revoked, or its bundle does not verify. */
  | "unknown_device"
  /** The sender's identity key differs from the pinned one (see `identitychanged`). */
  | "untrusted_sender"
  /** Malformed, forged or tampered with. */
  | "invalid"
  /** The same sender's message id was already delivered elsewhere (a replay). */
  | "replayed";

export interface UndecryptableDetail {
  roomId: Uuid;
  seq: number;
  senderId: Uuid;
  reason: UndecryptableReason;
}

/** A message handed to the relay (the answer of `send*`). */
export interface Sent {
  clientId: Uuid;
  id: Uuid;
  seq: number;
}

export interface SentDetail extends Sent {
  roomId: Uuid;
}

export interface TypingDetail {
  roomId: Uuid;
  userId: Uuid;
  active: boolean;
}

export interface PresenceDetail {
  userId: Uuid;
  online: boolean;
}

export interface ReceiptDetail {
  roomId: Uuid;
  userId: Uuid;
  kind: ReceiptKind;
  seq: number;
}

export interface RoomDetail {
  roomId: Uuid;
  change: RoomChange;
}

/** One of the user's invitations changed (new, or gone); `Session.invitations()` lists them. */
export interface InvitationDetail {
  invitationId: Uuid;
  roomId: Uuid;
  change: InvitationChange;
}

/** LOUD: the relay serves another identity key for this user; sends to them are refused until `acceptIdentity`. */
export interface IdentityChangedDetail {
  userId: Uuid;
  /** Whether the old key had been verified by safety number (make it louder). */
  wasVerified: boolean;
}

/** `following`: another tab of this browser holds this device's connection; its events arrive through it. */
export type ConnectionState = "connecting" | "online" | "offline" | "following";

export interface ConnectionDetail {
  state: ConnectionState;
  /** Why it went offline. */
  reason?: string;
  /** When offline: the wait before the next attempt. */
  retryInMs?: number;
}

export interface DeletedDetail {
  roomId: Uuid;
  id: Uuid;
  seq: number;
}

/** A device served under a user but not signed by their pinned identity: ignored. */
export interface DeviceRejectedDetail {
  userId: Uuid;
  deviceId: Uuid;
}

export interface DevicesChangedDetail {
  userId: Uuid;
}

/** The relay refused a frame, or a queued message for good. */
export interface RelayErrorDetail {
  code: string;
  detail?: string;
}

/** Every event of a `Session`, by name. */
export interface SessionEventMap {
  message: CustomEvent<ReceivedMessage>;
  undecryptable: CustomEvent<UndecryptableDetail>;
  sent: CustomEvent<SentDetail>;
  typing: CustomEvent<TypingDetail>;
  presence: CustomEvent<PresenceDetail>;
  receipt: CustomEvent<ReceiptDetail>;
  room: CustomEvent<RoomDetail>;
  invitation: CustomEvent<InvitationDetail>;
  identitychanged: CustomEvent<IdentityChangedDetail>;
  connection: CustomEvent<ConnectionDetail>;
  loggedout: CustomEvent<null>;
  deleted: CustomEvent<DeletedDetail>;
  devicerejected: CustomEvent<DeviceRejectedDetail>;
  deviceschanged: CustomEvent<DevicesChangedDetail>;
  relayerror: CustomEvent<RelayErrorDetail>;
  /**
   * Something about a room's membership the user must learn (`docs/protocol.md`
   * §12.4): members the relay lists that the owner did not sign (nothing is
   * sealed to them), a direct room with a third member (nothing is sent there),
   * a refused (forged, replayed) membership statement, a room from before
   * signed membership. Show it loudly.
   */
  membership: CustomEvent<MembershipWarning>;
}

/**
 * Content from a message's plaintext (the engine's codec, in WASM); anything
 * this version does not know, and a control message, is `unknown`, never an error.
 */
export function decodeContent(plaintext: Uint8Array): Content {
  const d = decodePlaintext(plaintext);
  return d.kind === "content" ? (d.content as Content) : { type: "unknown" };
}

/** A message's plaintext for content (`{"type":"text","body":…}` / `{"type":"file","file":{…}}`). */
export function encodeContent(content: Content): Uint8Array {
  return encodeContentPlaintext(content);
}

/** A one-line preview of content. */
export function preview(content: Content): string {
  switch (content.type) {
    case "text":
      return content.body;
    case "file":
      return `[file ${content.file.name ?? "unnamed"} (${content.file.size} bytes)]`;
    default:
      return "[unsupported message]";
  }
}
