// One error type for everything the client rejects with.

/**
 * Codes the client itself uses (besides the relay's problem codes, e.g.
 * `invalid_credentials`, `not_a_member`, and the bindings' codes, e.g.
 * `wrong_key_or_corrupted`, `malformed`).
 */
export const ClientCodes = {
  /** The relay could not be reached, or the connection broke. */
  network: "network",
  /** No session (never logged in, logged out, or the refresh token was refused). */
  notLoggedIn: "not_logged_in",
  /** A member's identity key changed and was not accepted: nothing was sent. */
  identityChanged: "identity_changed",
  /** The message is sealed and kept in the store's outbox; a `sent` event follows once stored. */
  queued: "queued",
  /** Nobody to seal to (no device of a member, or no pinned identity). */
  noDevices: "no_devices",
  /** The store holds another account's keys. */
  storeMismatch: "store_mismatch",
  /** This device was revoked. */
  deviceRevoked: "device_revoked",
  /** The account already has an identity: link this browser with a key backup instead. */
  identityExists: "identity_exists",
  /** The relay answered something this client does not understand. */
  protocol: "protocol",
  /** The session was closed. */
  closed: "closed",
  /** A file changed size while it was read. */
  fileChanged: "file_changed",
  /** A direct room lists someone besides its two users: nothing is sent there (`users` says who). */
  directRoomTampered: "direct_room_tampered",
  /** A group room joined late: its owner's membership statement has not arrived yet, so nothing is sealed. */
  membershipPending: "membership_pending",
} as const;

export interface SottoErrorOptions {
  status?: number;
  detail?: string;
  retryAfterMs?: number;
  /** `identity_changed`: the users whose identity changed; `direct_room_tampered`: the extra members. */
  users?: string[];
  /** `queued`: the id of the message waiting in the outbox. */
  clientId?: string;
  cause?: unknown;
}

/**
 * A refusal or failure. `code` is the relay's problem `code`, a bindings code
 * (`wasm/API.md`), or one of {@link ClientCodes}; `status` is the HTTP status
 * when the relay answered.
 */
export class SottoError extends Error {
  readonly code: string;
  readonly status: number | undefined;
  readonly detail: string | undefined;
  readonly retryAfterMs: number | undefined;
  readonly users: string[] | undefined;
  readonly clientId: string | undefined;

  constructor(code: string, message: string, options: SottoErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "SottoError";
    this.code = code;
    this.status = options.status;
    this.detail = options.detail;
    this.retryAfterMs = options.retryAfterMs;
    this.users = options.users;
    this.clientId = options.clientId;
  }
}

/** Whether `e` carries the given code (a SottoError or a bindings error). */
export function hasCode(e: unknown, code: string): boolean {
  return codeOf(e) === code;
}

/** The `code` of a SottoError or of a bindings error, if any. */
export function codeOf(e: unknown): string | undefined {
  if (typeof e === "object" && e !== null && "code" in e) {
    const c = (e as { code: unknown }).code;
    if (typeof c === "string") return c;
  }
  return undefined;
}

/** Any thrown value as a SottoError (bindings errors keep their code). */
export function toSottoError(e: unknown, fallbackCode: string = ClientCodes.protocol): SottoError {
  if (e instanceof SottoError) return e;
  const message = e instanceof Error ? e.message : String(e);
  const detail =
    typeof e === "object" && e !== null && "detail" in e && typeof (e as { detail: unknown }).detail === "string"
      ? (e as { detail: string }).detail
      : undefined;
  return new SottoError(codeOf(e) ?? fallbackCode, message, { cause: e, detail });
}
