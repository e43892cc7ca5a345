// `Relay`: the relay's HTTP API as typed methods, with the session's tokens,
// refresh (single-flight, ahead of expiry), timeouts and retries. Mirrors the
// native SDK's `Client` (core/client/src/transport.rs, routes.rs).

import { ClientCodes, SottoError } from "./errors.js";
import type {
  AttachmentCreated,
  BlockedUser,
  Contact,
  CreateRoomRequest,
  RelayDevice,
  DeviceBundle,
  Invitation,
  KeysQueryResponse,
  Message,
  Page,
  PostMessageResponse,
  Problem,
  PublicUser,
  Receipt,
  ReceiptKind,
  Room,
  RoomDetails,
  RoomInvitee,
  RoomMember,
  TokenResponse,
  User,
  Uuid,
} from "./sotto_wasm.js";
import { ClientTokens, tokenFromLink } from "./sotto_wasm.js";
import type { TokenAccess } from "./sotto_wasm.js";
import { LIMITS } from "./wire.gen.js";

export interface RelayOptions {
  /** The `fetch` to use (default: the global one). */
  fetch?: typeof fetch;
  /** Time limit of one request until its answer is read (default 30 s; uploads get one more second per 64 KiB). */
  requestTimeoutMs?: number;
  /** Attempts of an idempotent call on network errors, 429, 502, 503, 504 (default 4). */
  maxAttempts?: number;
  /** First back-off delay, doubled per attempt, with jitter (default 200 ms). */
  backoffMs?: number;
  /** Longest back-off (a longer `Retry-After` is not waited for; default 10 s). */
  maxBackoffMs?: number;
}

/** Most users in one `keys/query` (the relay's limit). */
const MAX_KEYS_QUERY_USERS = LIMITS.keysQueryUsers;
/** Largest page the relay serves. */
const MAX_LIMIT = LIMITS.pageMax;

type Retry = "idempotent" | "once";

interface Call {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  auth?: boolean;
  retry?: Retry;
}

export interface RelayEventMap {
  loggedout: Event;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Whether a fetch failure provably happened before the request left (Node reports it; browsers do not). */
function neverLeft(e: unknown): boolean {
  const cause = e instanceof Error ? (e as Error & { cause?: unknown }).cause : undefined;
  const code =
    typeof cause === "object" && cause !== null && "code" in cause ? (cause as { code: unknown }).code : undefined;
  return code === "ECONNREFUSED";
}

function retryAfterMs(res: Response): number | undefined {
  const v = res.headers.get("retry-after");
  if (v === null) return undefined;
  const secs = Number.parseInt(v.trim(), 10);
  return Number.isFinite(secs) && secs >= 0 ? secs * 1000 : undefined;
}

/** The error of a non-2xx answer: its problem body, or one made from the status. */
async function problemOf(res: Response): Promise<SottoError> {
  // Whatever answered (the relay, or a proxy in front of it) may not send a problem.
  let p: Partial<Problem> = {};
  try {
    const parsed: unknown = JSON.parse(await res.text());
    if (typeof parsed === "object" && parsed !== null) p = parsed as Partial<Problem>;
  } catch {
    // not a problem document
  }
  const code = typeof p.code === "string" ? p.code : "http_error";
  const title = typeof p.title === "string" ? p.title : res.statusText || `HTTP ${res.status}`;
  const detail = typeof p.detail === "string" ? p.detail : undefined;
  return new SottoError(code, detail ? `${title}: ${detail}` : title, {
    status: res.status,
    detail,
    retryAfterMs: retryAfterMs(res),
  });
}

function networkError(e: unknown): SottoError {
  const timedOut = e instanceof Error && (e.name === "TimeoutError" || e.name === "AbortError");
  const msg = timedOut ? "the relay did not answer in time" : e instanceof Error ? e.message : String(e);
  return new SottoError(ClientCodes.network, msg, { cause: e });
}

/**
 * A connection to one relay: every route the clients need as a typed method,
 * snake_case wire bodies as in `core/src/api`. After {@link Relay.login} it
 * keeps the access and refresh tokens in memory and refreshes the access token
 * by itself (one refresh at a time; concurrent callers share it). Failures
 * reject with a {@link SottoError}.
 *
 * Events: `loggedout` when the relay refuses the refresh token (session revoked).
 */
export class Relay extends EventTarget {
  /** The relay's base URL, without a trailing slash. */
  readonly baseUrl: string;
  private readonly fetchFn: typeof fetch;
  private readonly timeoutMs: number;
  private readonly maxAttempts: number;
  private readonly backoffMs: number;
  private readonly maxBackoffMs: number;
  /** The session's tokens, as the engine decides (`ClientTokens`; made at the first login). */
  private tokens: ClientTokens | null = null;
  private sessionUser: User | null = null;
  /** The refresh in flight (the engine says who starts one and who joins it). */
  private refreshing: Promise<void> | null = null;

  constructor(baseUrl: string, options: RelayOptions = {}) {
    super();
    const base = baseUrl.replace(/\/+$/, "");
    if (!/^https?:\/\//.test(base)) {
      throw new SottoError(ClientCodes.protocol, `relay URL must be http(s)://, got ${base}`);
    }
    this.baseUrl = base;
    const f = options.fetch ?? globalThis.fetch;
    this.fetchFn = (input, init) => f(input, init);
    this.timeoutMs = options.requestTimeoutMs ?? 30_000;
    this.maxAttempts = Math.max(1, options.maxAttempts ?? 4);
    this.backoffMs = options.backoffMs ?? 200;
    this.maxBackoffMs = options.maxBackoffMs ?? 10_000;
  }

  override addEventListener<K extends keyof RelayEventMap>(
    type: K,
    listener: (ev: RelayEventMap[K]) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  override addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  override addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | ((ev: Event) => void) | null,
    options?: boolean | AddEventListenerOptions,
  ): void {
    super.addEventListener(type, listener as EventListenerOrEventListenerObject | null, options);
  }

  /** The WebSocket URL (`ws(s)://…/api/v1/ws`). */
  get wsUrl(): string {
    return `${this.baseUrl.replace(/^http/, "ws")}/api/v1/ws`;
  }

  /** The logged-in user (as of the last login or refresh), or null. */
  get currentUser(): User | null {
    return this.loggedIn ? this.sessionUser : null;
  }

  /** Whether the relay holds a session. */
  get loggedIn(): boolean {
    return this.tokens?.isLoggedIn ?? false;
  }

  // ---- tokens -------------------------------------------------------------

  private setTokens(t: TokenResponse): User {
    (this.tokens ??= new ClientTokens()).loggedIn(Date.now(), t.access_token, t.refresh_token, t.expires_in);
    this.sessionUser = t.user;
    return t.user;
  }

  /** A valid access token, refreshed first if it is due (one refresh at a time). */
  accessToken(): Promise<string> {
    return this.untilToken((t) => t.access(Date.now()));
  }

  /** Refreshes the access token now (rotating the refresh token). */
  async refresh(): Promise<void> {
    let first = true;
    await this.untilToken((t) => (first ? ((first = false), t.force()) : t.access(Date.now())));
  }

  /**
   * Asks the engine (`ask`) until it hands out a token: refreshes when it says
   * this caller refreshes, waits for the refresh in flight when it says join.
   * The refresh runs to its end whoever waits for it, so a rotated refresh
   * token is never lost.
   */
  private async untilToken(ask: (t: ClientTokens) => TokenAccess): Promise<string> {
    for (;;) {
      const t = this.tokens;
      const a = t === null ? ({ kind: "loggedOut" } as const) : ask(t);
      if (a.kind === "use") return a.token;
      if (a.kind === "loggedOut" || t === null) throw new SottoError(ClientCodes.notLoggedIn, "not logged in");
      if (a.kind === "join") await this.refreshing?.catch(() => undefined);
      else {
        const p = this.doRefresh(t, a.ticket, a.refreshToken).finally(() => {
          if (this.refreshing === p) this.refreshing = null;
        });
        this.refreshing = p;
        await p;
      }
    }
  }

  private async doRefresh(tokens: ClientTokens, ticket: number, refreshToken: string): Promise<void> {
    // Not blindly retried: a refresh token is single-use and presenting a spent
    // one revokes the session. Only a request that never left is repeated.
    let res: Response;
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          res = await this.fetchFn(`${this.baseUrl}/api/v1/auth/refresh`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ refresh_token: refreshToken }),
            signal: AbortSignal.timeout(this.timeoutMs),
          });
          break;
        } catch (e) {
          if (neverLeft(e) && attempt < this.maxAttempts) {
            await sleep(this.backoff(attempt));
            continue;
          }
          throw networkError(e);
        }
      }
      if (res.ok) {
        const t = (await res.json()) as TokenResponse;
        // The user only from a refresh that counted (not one a login overtook).
        if (tokens.refreshed(Date.now(), ticket, t.access_token, t.refresh_token, t.expires_in)) this.sessionUser = t.user;
        return;
      }
    } catch (e) {
      tokens.refreshFailed(Date.now(), ticket, false);
      throw e;
    }
    const err = await problemOf(res);
    tokens.refreshFailed(Date.now(), ticket, res.status === 401);
    if (res.status === 401) {
      if (tokens.takeEnded()) this.dispatchEvent(new Event("loggedout"));
      throw new SottoError(ClientCodes.notLoggedIn, `the session ended: ${err.message}`, {
        status: 401,
        detail: err.code,
        cause: err,
      });
    }
    throw err;
  }

  private backoff(attempt: number): number {
    const capped = Math.min(this.backoffMs * 2 ** Math.min(attempt, 16), this.maxBackoffMs);
    return capped / 2 + (Math.random() * capped) / 2;
  }

  // ---- requests -----------------------------------------------------------

  private url(path: string, query?: Call["query"]): string {
    let url = `${this.baseUrl}${path}`;
    if (query) {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) if (v !== undefined) q.set(k, String(v));
      const s = q.toString();
      if (s) url += `?${s}`;
    }
    return url;
  }

  /**
   * Sends one request with retries and returns the successful answer, whose
   * body is still to be read within `deadline` (aborted after it).
   */
  private async send(
    method: string,
    path: string,
    call: Call,
    opts: { timeoutMs?: number; bodyInit?: BodyInit; headers?: Record<string, string>; reusable?: boolean } = {},
  ): Promise<{ res: Response; done: () => void }> {
    const auth = call.auth ?? true;
    const retry = call.retry ?? "idempotent";
    const reusable = opts.reusable ?? true;
    const url = this.url(path, call.query);
    let refreshed = false;
    let attempt = 0;
    for (;;) {
      attempt++;
      const headers: Record<string, string> = { ...(opts.headers ?? {}) };
      let body: BodyInit | undefined = opts.bodyInit;
      if (call.body !== undefined) {
        headers["content-type"] = "application/json";
        body = JSON.stringify(call.body);
      }
      const token = auth ? await this.accessToken() : undefined;
      if (token !== undefined) headers["authorization"] = `Bearer ${token}`;
      const controller = new AbortController();
      const timer = setTimeout(
        () => controller.abort(new DOMException("timed out", "TimeoutError")),
        opts.timeoutMs ?? this.timeoutMs,
      );
      const done = () => clearTimeout(timer);
      const init: RequestInit & { duplex?: "half" } = { method, headers, body, signal: controller.signal };
      if (typeof ReadableStream !== "undefined" && body instanceof ReadableStream) init.duplex = "half";
      let res: Response;
      try {
        res = await this.fetchFn(url, init);
      } catch (e) {
        done();
        const mayRetry = reusable && attempt < this.maxAttempts && (retry === "idempotent" || neverLeft(e));
        if (mayRetry) {
          await sleep(this.backoff(attempt));
          continue;
        }
        throw networkError(e);
      }
      if (res.ok) return { res, done };
      done();
      if (res.status === 401 && !refreshed && token !== undefined && reusable) {
        refreshed = true;
        attempt--;
        await res.body?.cancel().catch(() => undefined);
        let first = true;
        await this.untilToken((t) => (first ? ((first = false), t.rejected(token)) : t.access(Date.now())));
        continue;
      }
      const transient = [429, 502, 503, 504].includes(res.status);
      const ra = retryAfterMs(res);
      if (transient && reusable && attempt < this.maxAttempts && (retry === "idempotent" || res.status === 429)) {
        const wait = Math.max(ra ?? 0, this.backoff(attempt));
        if (wait <= this.maxBackoffMs) {
          await res.body?.cancel().catch(() => undefined);
          await sleep(wait);
          continue;
        }
      }
      throw await problemOf(res);
    }
  }

  /** A call with a JSON answer (or none, for 204). */
  private async call<T>(method: string, path: string, call: Call = {}): Promise<T> {
    const { res, done } = await this.send(method, path, call);
    try {
      const text = await res.text();
      if (text === "") return undefined as T;
      return JSON.parse(text) as T;
    } catch (e) {
      if (e instanceof SyntaxError) throw new SottoError(ClientCodes.protocol, `bad answer from the relay: ${e.message}`);
      throw networkError(e);
    } finally {
      done();
    }
  }

  /** Every item of a cursor-paginated list. */
  private async all<T>(path: string, query: Call["query"] = {}, paged = true): Promise<T[]> {
    const out: T[] = [];
    let cursor: string | undefined;
    for (;;) {
      const limit = paged ? MAX_LIMIT : undefined;
      const page = await this.call<Page<T>>("GET", path, { query: { ...query, limit, cursor } });
      out.push(...page.items);
      if (page.next_cursor === null || page.next_cursor === undefined) return out;
      cursor = page.next_cursor;
    }
  }

  // ---- accounts and auth --------------------------------------------------

  /** `POST /api/v1/auth/register`: creates the account and sends the verification e-mail. */
  register(username: string, email: string, password: string): Promise<User> {
    return this.call("POST", "/api/v1/auth/register", {
      body: { username, email, password },
      auth: false,
      retry: "once",
    });
  }

  /** `POST /api/v1/auth/verify-email` with the token, or the whole e-mailed link. */
  verifyEmail(tokenOrLink: string): Promise<User> {
    return this.call("POST", "/api/v1/auth/verify-email", {
      body: { token: tokenFromLink(tokenOrLink) },
      auth: false,
    });
  }

  /** `POST /api/v1/auth/resend-verification` (always accepted). */
  async resendVerification(email: string): Promise<void> {
    await this.call("POST", "/api/v1/auth/resend-verification", { body: { email }, auth: false });
  }

  /** `POST /api/v1/auth/login` (username or e-mail); keeps the tokens. */
  async login(login: string, password: string): Promise<User> {
    const t = await this.call<TokenResponse>("POST", "/api/v1/auth/login", {
      body: { login, password },
      auth: false,
      retry: "once",
    });
    return this.setTokens(t);
  }

  /** `POST /api/v1/auth/logout`: revokes the session on the relay and forgets the tokens. */
  async logout(): Promise<void> {
    const t = this.tokens;
    if (t === null || !t.isLoggedIn) return;
    try {
      const access = await this.accessToken();
      const refresh = t.logout();
      if (refresh === undefined) return;
      const res = await this.fetchFn(`${this.baseUrl}/api/v1/auth/logout`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${access}` },
        body: JSON.stringify({ refresh_token: refresh }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      if (!res.ok) throw await problemOf(res);
    } catch (e) {
      if (e instanceof SottoError && e.code === ClientCodes.notLoggedIn) return;
      throw e instanceof SottoError ? e : networkError(e);
    } finally {
      t.logout();
      this.sessionUser = null;
    }
  }

  /** `POST /api/v1/auth/password/forgot` (always accepted). */
  async forgotPassword(email: string): Promise<void> {
    await this.call("POST", "/api/v1/auth/password/forgot", { body: { email }, auth: false });
  }

  /** `POST /api/v1/auth/password/reset` with the e-mailed token (or link). */
  async resetPassword(tokenOrLink: string, newPassword: string): Promise<void> {
    await this.call("POST", "/api/v1/auth/password/reset", {
      body: { token: tokenFromLink(tokenOrLink), new_password: newPassword },
      auth: false,
      retry: "once",
    });
  }

  /** `GET /api/v1/auth/me`. */
  me(): Promise<User> {
    return this.call("GET", "/api/v1/auth/me");
  }

  /** `GET /api/v1/users/check-username`: whether the name is free. */
  async checkUsername(username: string): Promise<boolean> {
    const r = await this.call<{ available: boolean }>("GET", "/api/v1/users/check-username", {
      query: { username },
      auth: false,
    });
    return r.available;
  }

  // ---- users ----------------------------------------------------------------

  /** `GET /api/v1/users/search?q=`: verified users by username prefix (first page). */
  async searchUsers(q: string, limit = 20): Promise<PublicUser[]> {
    const page = await this.call<Page<PublicUser>>("GET", "/api/v1/users/search", { query: { q, limit } });
    return page.items;
  }

  /** `GET /api/v1/users/{id}` (oneself, or admins). */
  user(id: Uuid): Promise<User> {
    return this.call("GET", `/api/v1/users/${encodeURIComponent(id)}`);
  }

  // ---- devices and keys -----------------------------------------------------

  /** `GET /api/v1/devices`: the caller's devices (revoked ones too when asked). */
  devices(opts: { includeRevoked?: boolean } = {}): Promise<RelayDevice[]> {
    return this.all("/api/v1/devices", { include_revoked: opts.includeRevoked }, false);
  }

  /** `PUT /api/v1/devices/{device_id}`: uploads (or replaces) a signed device bundle. */
  putDevice(
    bundle: DeviceBundle,
    opts: { displayName?: string; replaceIdentity?: boolean; currentPassword?: string } = {},
  ): Promise<RelayDevice> {
    const body: Record<string, unknown> = { bundle };
    if (opts.displayName !== undefined) body["display_name"] = opts.displayName;
    if (opts.replaceIdentity) body["replace_identity"] = true;
    if (opts.currentPassword !== undefined) body["current_password"] = opts.currentPassword;
    return this.call("PUT", `/api/v1/devices/${encodeURIComponent(bundle.device_id)}`, { body });
  }

  /**
   * `DELETE /api/v1/devices/{device_id}`: revokes one of the caller's devices
   * (the relay asks for the account's password; the sessions that registered
   * the device end).
   */
  async revokeDevice(id: Uuid, currentPassword: string): Promise<void> {
    await this.call("DELETE", `/api/v1/devices/${encodeURIComponent(id)}`, {
      body: { current_password: currentPassword },
    });
  }

  /** `GET /api/v1/users/{id}/devices`: another user's devices. */
  userDevices(id: Uuid, opts: { includeRevoked?: boolean } = {}): Promise<RelayDevice[]> {
    return this.all(`/api/v1/users/${encodeURIComponent(id)}/devices`, { include_revoked: opts.includeRevoked }, false);
  }

  /** `POST /api/v1/keys/query`: every device of these users (in chunks of the relay's limit). */
  async keysQuery(userIds: Uuid[], opts: { includeRevoked?: boolean } = {}): Promise<KeysQueryResponse> {
    const out: KeysQueryResponse = { devices: {} };
    for (let i = 0; i < userIds.length; i += MAX_KEYS_QUERY_USERS) {
      const body: Record<string, unknown> = { user_ids: userIds.slice(i, i + MAX_KEYS_QUERY_USERS) };
      if (opts.includeRevoked) body["include_revoked"] = true;
      // A query, though POSTed: safe to repeat.
      const r = await this.call<KeysQueryResponse>("POST", "/api/v1/keys/query", { body });
      Object.assign(out.devices, r.devices);
    }
    return out;
  }

  // ---- rooms ------------------------------------------------------------------

  /** `GET /api/v1/rooms`: every room of the caller (all pages), with unread counts. */
  rooms(): Promise<Room[]> {
    return this.all("/api/v1/rooms");
  }

  /** `POST /api/v1/rooms`: a group room owned by the caller. */
  createRoom(req: CreateRoomRequest): Promise<RoomDetails> {
    return this.call("POST", "/api/v1/rooms", {
      body: { name: req.name, member_ids: req.member_ids ?? [] },
      retry: "once",
    });
  }

  /** `POST /api/v1/rooms/direct`: the direct room with `userId` (existing or new). */
  directRoom(userId: Uuid): Promise<RoomDetails> {
    return this.call("POST", "/api/v1/rooms/direct", { body: { user_id: userId } });
  }

  /** `GET /api/v1/rooms/{id}`: details and members. */
  room(id: Uuid): Promise<RoomDetails> {
    return this.call("GET", `/api/v1/rooms/${encodeURIComponent(id)}`);
  }

  /** `PATCH /api/v1/rooms/{id}` (owner): rename. */
  renameRoom(id: Uuid, name: string): Promise<RoomDetails> {
    return this.call("PATCH", `/api/v1/rooms/${encodeURIComponent(id)}`, { body: { name } });
  }

  /** `DELETE /api/v1/rooms/{id}` (owner). */
  async deleteRoom(id: Uuid): Promise<void> {
    await this.call("DELETE", `/api/v1/rooms/${encodeURIComponent(id)}`);
  }

  /**
   * `POST /api/v1/rooms/{id}/members` (owner): the new member (they have the
   * owner in their contacts), or the pending invitee (`invited_by` set).
   */
  addMember(roomId: Uuid, userId: Uuid): Promise<RoomMember | RoomInvitee> {
    return this.call("POST", `/api/v1/rooms/${encodeURIComponent(roomId)}/members`, {
      body: { user_id: userId },
      retry: "once",
    });
  }

  // ---- invitations and blocks ---------------------------------------------------

  /** `GET /api/v1/invitations`: the caller's pending invitations (all pages). */
  invitations(): Promise<Invitation[]> {
    return this.all("/api/v1/invitations");
  }

  /** `POST /api/v1/invitations/{id}/accept`: joins the room; its details. */
  acceptInvitation(id: Uuid): Promise<RoomDetails> {
    return this.call("POST", `/api/v1/invitations/${encodeURIComponent(id)}/accept`, { retry: "once" });
  }

  /** `POST /api/v1/invitations/{id}/decline`. */
  async declineInvitation(id: Uuid): Promise<void> {
    await this.call("POST", `/api/v1/invitations/${encodeURIComponent(id)}/decline`, { retry: "once" });
  }

  /** `GET /api/v1/blocks`: the users the caller blocked (all pages). */
  blocks(): Promise<BlockedUser[]> {
    return this.all("/api/v1/blocks");
  }

  /** `POST /api/v1/blocks`: blocks a user. */
  block(userId: Uuid): Promise<BlockedUser> {
    return this.call("POST", "/api/v1/blocks", { body: { user_id: userId } });
  }

  /** `DELETE /api/v1/blocks/{user_id}`: lifts a block. */
  async unblock(userId: Uuid): Promise<void> {
    await this.call("DELETE", `/api/v1/blocks/${encodeURIComponent(userId)}`);
  }

  /** `DELETE /api/v1/rooms/{id}/members/{user_id}` (owner, or oneself to leave). */
  async removeMember(roomId: Uuid, userId: Uuid): Promise<void> {
    await this.call("DELETE", `/api/v1/rooms/${encodeURIComponent(roomId)}/members/${encodeURIComponent(userId)}`);
  }

  // ---- messages -----------------------------------------------------------------

  /** `GET /api/v1/rooms/{id}/messages?after_seq=&limit=`: stored envelopes in `seq` order. */
  messages(roomId: Uuid, afterSeq?: number, limit?: number): Promise<Page<Message>> {
    return this.call("GET", `/api/v1/rooms/${encodeURIComponent(roomId)}/messages`, {
      query: { after_seq: afterSeq, limit },
    });
  }

  /** `POST /api/v1/rooms/{id}/messages`; retried: the relay stores a `client_id` once. */
  postMessage(roomId: Uuid, clientId: Uuid, envelopeB64: string): Promise<PostMessageResponse> {
    return this.call("POST", `/api/v1/rooms/${encodeURIComponent(roomId)}/messages`, {
      body: { client_id: clientId, envelope: envelopeB64 },
    });
  }

  /** `DELETE /api/v1/rooms/{id}/messages/{msg_id}` (sender or owner). */
  async deleteMessage(roomId: Uuid, id: Uuid): Promise<void> {
    await this.call("DELETE", `/api/v1/rooms/${encodeURIComponent(roomId)}/messages/${encodeURIComponent(id)}`);
  }

  /** `POST /api/v1/rooms/{id}/receipts` (a receipt only moves forward: safe to repeat). */
  receipt(roomId: Uuid, kind: ReceiptKind, seq: number): Promise<Receipt> {
    return this.call("POST", `/api/v1/rooms/${encodeURIComponent(roomId)}/receipts`, { body: { kind, seq } });
  }

  /** `GET /api/v1/unread`: unread counts per room id. */
  unread(): Promise<Record<Uuid, number>> {
    return this.call("GET", "/api/v1/unread");
  }

  // ---- attachments ----------------------------------------------------------------

  /**
   * `POST /api/v1/rooms/{id}/attachments`: uploads an (already encrypted) blob
   * of `size` bytes. A `ReadableStream` body is sent as a streaming request
   * (`duplex: "half"`; browsers allow that over HTTP/2 only) and never retried;
   * a `Blob` or `Uint8Array` is retried only when the request provably never left.
   */
  async uploadAttachment(
    roomId: Uuid,
    body: ReadableStream<Uint8Array> | Uint8Array | Blob,
    size: number,
  ): Promise<AttachmentCreated> {
    const streaming = typeof ReadableStream !== "undefined" && body instanceof ReadableStream;
    const { res, done } = await this.send(
      "POST",
      `/api/v1/rooms/${encodeURIComponent(roomId)}/attachments`,
      { retry: "once" },
      {
        bodyInit: body as BodyInit,
        headers: { "content-type": "application/octet-stream" },
        timeoutMs: this.timeoutMs + Math.ceil(size / 65536) * 1000,
        reusable: !streaming,
      },
    );
    try {
      return (await res.json()) as AttachmentCreated;
    } catch (e) {
      throw networkError(e);
    } finally {
      done();
    }
  }

  /**
   * `GET /api/v1/attachments/{id}`: the answer, its body still to be streamed
   * (the time limit covers the wait for the answer, not the body).
   */
  async downloadAttachment(id: Uuid): Promise<Response> {
    const { res, done } = await this.send("GET", `/api/v1/attachments/${encodeURIComponent(id)}`, {});
    done();
    return res;
  }

  // ---- contacts ---------------------------------------------------------------------

  /** `GET /api/v1/contacts` (all pages). */
  contacts(): Promise<Contact[]> {
    return this.all("/api/v1/contacts");
  }

  /** `POST /api/v1/contacts`. */
  addContact(userId: Uuid, nickname?: string): Promise<Contact> {
    const body: Record<string, unknown> = { user_id: userId };
    if (nickname !== undefined) body["nickname"] = nickname;
    return this.call("POST", "/api/v1/contacts", { body, retry: "once" });
  }

  /** `PATCH /api/v1/contacts/{id}`. */
  renameContact(id: Uuid, nickname: string | null): Promise<Contact> {
    return this.call("PATCH", `/api/v1/contacts/${encodeURIComponent(id)}`, { body: { nickname } });
  }

  /** `DELETE /api/v1/contacts/{id}`. */
  async removeContact(id: Uuid): Promise<void> {
    await this.call("DELETE", `/api/v1/contacts/${encodeURIComponent(id)}`);
  }

  // ---- operations ---------------------------------------------------------------------

  /** `GET /health`. */
  health(): Promise<{ status: string; database: string }> {
    return this.call("GET", "/health", { auth: false });
  }
}
