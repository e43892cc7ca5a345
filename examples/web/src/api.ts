// The one module that imports the package (dist/pkg/ = wasm/pkg/): the WASM bindings
// and the TypeScript client. Everything else imports from here, so a change of the
// package's surface is absorbed in one place.

import init from "./pkg/sotto_wasm.js";
export { init };
export { Relay, Session, IndexedDbStore, SottoError } from "./pkg/client.js";
export type {
  RoomSummary,
  ReceivedMessage,
  Content,
  Sent,
  AttachmentPointer,
  PublicUser,
  Contact,
  MembershipWarning,
} from "./pkg/client.js";

/** The `code` of a client or relay error (`"network"`, `"invalid_credentials"`, ...). */
export function errorCode(e: unknown): string {
  if (e && typeof e === "object" && "code" in e && typeof (e as { code: unknown }).code === "string") {
    return (e as { code: string }).code;
  }
  return "unknown";
}

const MESSAGES: Record<string, string> = {
  direct_room_tampered:
    "Not sent: the relay lists someone else in this direct conversation. Nothing is encrypted for them, and nothing is sent here until it is fixed.",
  membership_pending:
    "Not sent yet: the room owner's signed member list has not reached this device. Try again when the owner is online.",
  network: "Cannot reach the relay. Check the connection and try again.",
  invalid_credentials: "Wrong username, e-mail or password.",
  email_not_verified: "This e-mail address is not verified yet: open the link in the verification e-mail first.",
  username_taken: "That username is taken.",
  email_taken: "An account with that e-mail address exists already.",
  weak_password: "That password is too common or too short (at least 8 characters).",
  invalid_token: "This link is not valid any more (used or expired). Ask for a new one.",
  rate_limited: "Too many attempts. Wait a moment and try again.",
  wrong_key_or_corrupted: "Wrong passphrase: it does not unlock the keys stored on this device.",
  empty_passphrase: "Enter a passphrase.",
  identity_changed: "A member's identity key changed: accept the new key (after checking the safety number) before sending.",
  not_a_member: "You are not a member of that room.",
  too_large: "That file is too large for this relay.",
  payload_too_large: "That file is too large for this relay.",
};

/** A sentence for a person, from any error the client or relay gives. */
export function errorText(e: unknown): string {
  const code = errorCode(e);
  const known = MESSAGES[code];
  if (known) return known;
  const detail =
    e && typeof e === "object" && "detail" in e && typeof (e as { detail: unknown }).detail === "string"
      ? (e as { detail: string }).detail
      : e instanceof Error
        ? e.message
        : String(e);
  return code === "unknown" ? detail : `${detail} (${code})`;
}

/**
 * Whether this browser holds keys for the account (`undefined` when the store cannot
 * tell), so the passphrase prompt can say "unlock" or "create".
 */
export async function storedKeys(store: { hasDevice(): Promise<boolean> }): Promise<boolean | undefined> {
  try {
    return await store.hasDevice();
  } catch {
    return undefined;
  }
}
