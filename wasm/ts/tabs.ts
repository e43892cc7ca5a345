// Several tabs of one browser on one device (one store): one tab leads, holding
// the device's Web Lock: it alone runs the connection (the engine's feed and
// outbox, the socket, the outbox flush). The other tabs follow: they hear every
// event the leader emits, and hand the leader what changes state (sending,
// rooms, trust), so no two tabs ever post one outbox entry or seal with
// different views of a room. Each tab logs in on its own (refresh tokens live
// in memory), so no two tabs spend one refresh token. When the leading tab
// goes, the lock passes to a waiting tab, which reloads the engine's state
// from the store and leads from there. A BroadcastChannel carries calls,
// results and events between the tabs (same origin, never the network).

import { SottoError } from "./errors.js";

type Message =
  | { kind: "call"; id: string; method: string; args: unknown[] }
  | { kind: "result"; id: string; ok: true; value: unknown }
  | { kind: "result"; id: string; ok: false; error: SerializedError }
  | { kind: "event"; type: string; detail: unknown };

interface SerializedError {
  code?: string;
  message: string;
  status?: number;
  detail?: string;
  retryAfterMs?: number;
  users?: string[];
  clientId?: string;
}

/** How long a following tab waits for the leading tab's answer. */
const CALL_TIMEOUT_MS = 180_000;

interface Pending {
  method: string;
  args: unknown[];
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

function serialize(e: unknown): SerializedError {
  if (e instanceof SottoError) {
    const out: SerializedError = { code: e.code, message: e.message };
    if (e.status !== undefined) out.status = e.status;
    if (e.detail !== undefined) out.detail = e.detail;
    if (e.retryAfterMs !== undefined) out.retryAfterMs = e.retryAfterMs;
    if (e.users !== undefined) out.users = e.users;
    if (e.clientId !== undefined) out.clientId = e.clientId;
    return out;
  }
  return { message: e instanceof Error ? e.message : String(e) };
}

function revive(e: SerializedError): Error {
  if (e.code === undefined) return new Error(e.message);
  const opts: ConstructorParameters<typeof SottoError>[2] = {};
  if (e.status !== undefined) opts.status = e.status;
  if (e.detail !== undefined) opts.detail = e.detail;
  if (e.retryAfterMs !== undefined) opts.retryAfterMs = e.retryAfterMs;
  if (e.users !== undefined) opts.users = e.users;
  if (e.clientId !== undefined) opts.clientId = e.clientId;
  return new SottoError(e.code, e.message, opts);
}

/** @internal The tabs of one device (see the module comment). */
export class Tabs {
  private leading = false;
  private closed = false;
  private release: (() => void) | null = null;
  /** The ask for the lead that is still wanted (0: none). */
  private wanted = 0;
  private asks = 0;
  private releaseAfter: Promise<void> = Promise.resolve();
  private readonly pending = new Map<string, Pending>();
  private readonly channel: BroadcastChannel;

  /** Whether this browser has what tabs need (Web Locks and BroadcastChannel). */
  static available(): boolean {
    const nav = (globalThis as { navigator?: { locks?: unknown } }).navigator;
    return nav?.locks !== undefined && typeof BroadcastChannel !== "undefined";
  }

  constructor(
    private readonly name: string,
    /** Runs a follower's call (this tab leads). */
    private readonly serve: (method: string, args: unknown[]) => Promise<unknown>,
    /** Shows an event the leading tab emitted. */
    private readonly follow: (type: string, detail: unknown) => void,
  ) {
    this.channel = new BroadcastChannel(name);
    this.channel.onmessage = (ev: MessageEvent) => this.receive(ev.data as Message);
  }

  /** Whether this tab leads. */
  get isLeader(): boolean {
    return this.leading;
  }

  /**
   * Asks for the lead: `onLead` runs once this tab holds the lock (at once if no
   * other tab leads); until then the tab follows. `onLead` gets a check that
   * says whether the tab still wants the lead (a `stepDown` meanwhile).
   */
  lead(onLead: (stillWanted: () => boolean) => Promise<void>): void {
    if (this.closed) return;
    const ask = ++this.asks;
    this.wanted = ask;
    const stillWanted = () => !this.closed && this.wanted === ask;
    void navigator.locks.request(this.name, async () => {
      if (!stillWanted()) return;
      this.leading = true;
      // Calls this tab sent to a leader that went away may or may not have run
      // there: fail them (the app may try again) rather than run them twice.
      this.failPending("the leading tab went away before answering; try again");
      try {
        await onLead(stillWanted);
      } catch {
        // the session reports its own failures
      }
      if (stillWanted()) {
        await new Promise<void>((resolve) => {
          this.release = resolve;
        });
      }
      if (this.wanted !== ask || this.closed) this.leading = false;
      await this.releaseAfter;
    });
  }

  /**
   * Gives the lead up once `after` resolves (the connection's last step done),
   * so another tab does not connect while this one still stores; no longer
   * asks for it.
   */
  stepDown(after: Promise<void> = Promise.resolve()): void {
    this.wanted = 0;
    this.leading = false;
    this.releaseAfter = after.catch(() => undefined);
    this.release?.();
    this.release = null;
  }

  /** Whether another tab leads now (then calls go to it). */
  async otherLeads(): Promise<boolean> {
    if (this.leading || this.closed) return false;
    const state = await navigator.locks.query();
    return (state.held ?? []).some((l) => l.name === this.name);
  }

  /** Runs `method` in the leading tab; resolves or rejects with its answer. */
  call(method: string, args: unknown[]): Promise<unknown> {
    const id = crypto.randomUUID();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.pending.delete(id)) reject(new SottoError("network", "the leading tab did not answer; try again"));
      }, CALL_TIMEOUT_MS);
      const done =
        <T>(f: (v: T) => void) =>
        (v: T) => {
          clearTimeout(timer);
          f(v);
        };
      this.pending.set(id, { method, args, resolve: done(resolve), reject: done(reject) });
      this.channel.postMessage({ kind: "call", id, method, args } satisfies Message);
    });
  }

  private failPending(why: string): void {
    for (const p of this.pending.values()) p.reject(new SottoError("network", why));
    this.pending.clear();
  }

  /** Tells the following tabs of an event (this tab leads). */
  broadcast(type: string, detail: unknown): void {
    if (!this.leading) return;
    try {
      this.channel.postMessage({ kind: "event", type, detail } satisfies Message);
    } catch {
      // a detail that cannot be cloned stays in this tab
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stepDown();
    this.channel.close();
    for (const p of this.pending.values()) p.reject(new SottoError("closed", "the session is closed"));
    this.pending.clear();
  }

  private receive(m: Message): void {
    if (this.closed) return;
    if (m.kind === "call") {
      if (!this.leading) return;
      const answer = (r: Message) => this.channel.postMessage(r);
      this.serve(m.method, m.args).then(
        (value) => answer({ kind: "result", id: m.id, ok: true, value }),
        (e) => answer({ kind: "result", id: m.id, ok: false, error: serialize(e) }),
      );
    } else if (m.kind === "result") {
      const p = this.pending.get(m.id);
      if (p === undefined) return;
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m.value);
      else p.reject(revive(m.error));
    } else if (!this.leading) {
      this.follow(m.type, m.detail);
    }
  }
}
