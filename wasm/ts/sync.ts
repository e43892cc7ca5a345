// The live connection: one WebSocket at a time, resumed from the stored
// cursors right after `ready`, reconnected with back-off (0.25 s doubling to
// 30 s, jittered). The driver of the native SDK's core/client/src/sync.rs.
//
// The engine's feed (`ClientFeed`) decides the order: cursors, gaps and
// `resume`, de-duplication, receipts. Frames are handled in steps (every frame
// already received, up to BURST): a step's changes go to the store in one
// transaction (`KeyStore.apply`), and only then are its events shown and its
// frames sent. A message that cannot be checked now (the sender's keys did not
// load) ends the connection without moving the cursor; the next one resumes there.

import { ClientCodes, codeOf } from "./errors.js";
import type { ConnectionState } from "./events.js";
import type { Session } from "./session.js";
import type { ClientFrame, ServerFrame, Uuid } from "./sotto_wasm.js";
import { fromB64 } from "./codec.js";
import { ClientFeed, parseServerFrame, reconnectDelayMs } from "./sotto_wasm.js";
import type { ResumeCursors } from "./sotto_wasm.js";
import { POLICY } from "./wire.gen.js";

/** A WebSocket constructor (browsers: the global `WebSocket`; Node: e.g. the `ws` package's). */
export type WebSocketConstructor = new (url: string) => WebSocket;

// The engine's timing policy (sotto-engine `policy`, the native SDK's numbers).
const PING_EVERY_MS = POLICY.pingEveryMs;
const RECEIPT_EVERY_MS = POLICY.receiptEveryMs;
const STABLE_AFTER_MS = POLICY.stableAfterMs;
const HANDSHAKE_MS = POLICY.handshakeTimeoutMs;
/** At most this many frames make one step (one store transaction). */
const BURST = 256;

/** Reconnect delay after `failures` failed connections in a row (the engine's: 0.25 s × 2^n up to 30 s, jittered into [d/2, d]). */
export function backoffMs(failures: number): number {
  const jitter = crypto.getRandomValues(new Uint32Array(1))[0] ?? 0;
  return reconnectDelayMs(Math.min(Math.max(0, Math.floor(failures)), 0xffff_ffff), jitter);
}

type Item =
  | { kind: "open" }
  | { kind: "text"; data: string }
  | { kind: "closed"; reason: string }
  | { kind: "tick" }
  | { kind: "receipts" }
  | { kind: "stop" }
  | { kind: "timeout" };

/** One consumer's queue of everything that happens to a connection, handled in order. */
class Mailbox {
  private readonly items: Item[] = [];
  private waiter: ((i: Item) => void) | null = null;

  push(i: Item): void {
    const w = this.waiter;
    if (w !== null) {
      this.waiter = null;
      w(i);
    } else {
      this.items.push(i);
    }
  }

  /** The texts queued right behind the current item (up to `max`): the rest of a step. */
  takeTexts(max: number): string[] {
    const out: string[] = [];
    while (out.length < max) {
      const i = this.items[0];
      if (i === undefined || i.kind !== "text") break;
      this.items.shift();
      out.push(i.data);
    }
    return out;
  }

  next(timeoutMs?: number): Promise<Item> {
    const first = this.items.shift();
    if (first !== undefined) return Promise.resolve(first);
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const w = (i: Item) => {
        if (timer !== undefined) clearTimeout(timer);
        resolve(i);
      };
      this.waiter = w;
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          if (this.waiter === w) {
            this.waiter = null;
            resolve({ kind: "timeout" });
          }
        }, timeoutMs);
      }
    });
  }
}

type End = { kind: "retry"; reason: string } | { kind: "stopped" } | { kind: "loggedout" };

/** One `connect()`: stopped by `disconnect()`. */
interface Run {
  stopped: boolean;
  mailbox: Mailbox | null;
  wake: (() => void) | null;
}

/** What one step produced, acted on after its changes are stored. */
interface Step {
  /** The step's events, emitted in order once its changes are stored. */
  shows: Array<() => void>;
  resumes: ResumeCursors[];
}

/** What the wait for a socket `ack` ended with. */
export type AckResult =
  | { kind: "ack"; id: Uuid; seq: number }
  | { kind: "error"; code: string; detail?: string; retryAfterMs?: number }
  | { kind: "offline" };

/** A relay frame as the core reads it (null: unreadable or unknown, ignored as the SDK does). */
export function parseFrame(text: string): ServerFrame | null {
  try {
    return parseServerFrame(text);
  } catch {
    return null;
  }
}

/** @internal The session's live connection. */
export class Sync {
  state: ConnectionState = "offline";
  private current: Run | null = null;
  private socket: WebSocket | null = null;
  private readonly acks = new Map<Uuid, (r: AckResult) => void>();

  constructor(
    private readonly s: Session,
    private readonly WS: WebSocketConstructor,
  ) {}

  /** Starts the reconnect loop (idempotent). */
  start(): void {
    if (this.current !== null && !this.current.stopped) return;
    const run: Run = { stopped: false, mailbox: null, wake: null };
    this.current = run;
    // A stopped run may still be finishing a step: the new one starts after it
    // (two runs at once would each show what the other stores).
    const previous = this.running;
    this.running = previous.then(() => (run.stopped ? undefined : this.loop(run)));
  }

  /** Resolves once no run is left (after `stop`, when the last step is done). */
  ended(): Promise<void> {
    return this.running;
  }

  private running: Promise<void> = Promise.resolve();

  /** Stops the loop: the socket is closed, pending sends fall back to HTTP. */
  stop(): void {
    const run = this.current;
    if (run === null) return;
    run.stopped = true;
    run.mailbox?.push({ kind: "stop" });
    run.wake?.();
  }

  /** Sends a frame on the live socket; false when offline. */
  send(frame: ClientFrame): boolean {
    const ws = this.socket;
    if (ws === null || this.state !== "online" || ws.readyState !== 1) return false;
    try {
      ws.send(JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }

  /** Waits for the `ack` (or refusal) of `clientId`, at most `timeoutMs`; `offline` when the socket goes. */
  expectAck(clientId: Uuid, timeoutMs: number): { result: Promise<AckResult>; cancel: () => void } {
    let resolveFn: (r: AckResult) => void = () => undefined;
    const result = new Promise<AckResult>((resolve) => {
      const timer = setTimeout(() => finish({ kind: "offline" }), timeoutMs);
      const finish = (r: AckResult) => {
        clearTimeout(timer);
        if (this.acks.get(clientId) === finish) this.acks.delete(clientId);
        resolve(r);
      };
      resolveFn = finish;
      this.acks.set(clientId, finish);
    });
    return { result, cancel: () => resolveFn({ kind: "offline" }) };
  }

  private setState(state: ConnectionState, reason?: string, retryInMs?: number): void {
    this.state = state;
    const detail: { state: ConnectionState; reason?: string; retryInMs?: number } = { state };
    if (reason !== undefined) detail.reason = reason;
    if (retryInMs !== undefined) detail.retryInMs = Math.round(retryInMs);
    this.s.emit("connection", detail);
  }

  /** Forgets the socket; sends waiting for an ack fall back to HTTP at once (unless a newer run is live). */
  private wentOffline(run: Run): void {
    if (this.current !== run && this.current !== null && !this.current.stopped) return;
    this.socket = null;
    for (const finish of [...this.acks.values()]) finish({ kind: "offline" });
    this.acks.clear();
  }

  private async loop(run: Run): Promise<void> {
    let failures = 0;
    while (!run.stopped) {
      this.setState("connecting");
      const started = Date.now();
      let end: End;
      try {
        end = await this.connection(run);
      } catch (e) {
        end = { kind: "retry", reason: e instanceof Error ? e.message : String(e) };
      }
      this.wentOffline(run);
      if (end.kind === "stopped" || run.stopped) break;
      if (end.kind === "loggedout") {
        run.stopped = true;
        this.setState("offline", "logged out");
        this.s.loggedOut();
        return;
      }
      if (Date.now() - started > STABLE_AFTER_MS) failures = 0;
      failures++;
      const delay = backoffMs(failures);
      this.setState("offline", end.reason, delay);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, delay);
        run.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      run.wake = null;
    }
    if (this.current === run) this.setState("offline", "disconnected");
  }

  /**
   * One connection: lists the rooms and their cursors, connects, authenticates,
   * sends `resume` as the very first frame after `ready` (so replay and live
   * delivery join without a gap), then handles frames in order until it ends.
   */
  private async connection(run: Run): Promise<End> {
    const s = this.s;
    let rooms: Uuid[];
    let stored: Map<Uuid, number>;
    let token: string;
    try {
      rooms = (await s.relay.rooms()).map((r) => r.id);
      stored = await s.store.cursors();
      token = await s.relay.accessToken();
    } catch (e) {
      if (codeOf(e) === ClientCodes.notLoggedIn) return { kind: "loggedout" };
      return { kind: "retry", reason: e instanceof Error ? e.message : String(e) };
    }
    if (run.stopped) return { kind: "stopped" };

    let ws: WebSocket;
    try {
      ws = new this.WS(s.relay.wsUrl);
    } catch (e) {
      return { kind: "retry", reason: `connect: ${e instanceof Error ? e.message : String(e)}` };
    }
    const mb = new Mailbox();
    run.mailbox = mb;
    const timers: Array<ReturnType<typeof setInterval>> = [];
    let lastRx = Date.now();
    ws.onopen = () => mb.push({ kind: "open" });
    ws.onmessage = (ev: MessageEvent) => {
      lastRx = Date.now();
      if (typeof ev.data === "string") mb.push({ kind: "text", data: ev.data });
    };
    ws.onclose = (ev: CloseEvent) =>
      mb.push({ kind: "closed", reason: `socket closed (${ev.code}${ev.reason ? `: ${ev.reason}` : ""})` });
    ws.onerror = () => mb.push({ kind: "closed", reason: "socket error" });
    const feed = new ClientFeed(s.userId, s.deviceId);
    let freed = false;
    const end = (e: End, code = 1000): End => {
      for (const t of timers) clearInterval(t);
      if (!freed) feed.free();
      freed = true;
      ws.onopen = null;
      ws.onmessage = null;
      ws.onclose = null;
      ws.onerror = null;
      try {
        ws.close(code);
      } catch {
        // already closed
      }
      if (run.mailbox === mb) run.mailbox = null;
      if (this.socket === ws) this.socket = null;
      return e;
    };
    if (run.stopped) return end({ kind: "stopped" });

    const first = await mb.next(HANDSHAKE_MS);
    if (first.kind === "stop") return end({ kind: "stopped" });
    if (first.kind !== "open") {
      return end({ kind: "retry", reason: first.kind === "closed" ? first.reason : "connect: timed out" });
    }
    try {
      ws.send(JSON.stringify({ type: "auth", token } satisfies ClientFrame));
    } catch (e) {
      return end({ kind: "retry", reason: `auth: ${String(e)}` });
    }
    const ready = await mb.next(HANDSHAKE_MS);
    if (ready.kind === "stop") return end({ kind: "stopped" });
    if (ready.kind !== "text") {
      return end({ kind: "retry", reason: ready.kind === "closed" ? ready.reason : "no ready within 10 s" });
    }
    const rf = parseFrame(ready.data);
    if (rf === null || rf.type !== "ready" || rf.user_id !== s.userId) {
      return end({ kind: "retry", reason: `expected ready, got ${rf === null ? "an unreadable frame" : rf.type}` });
    }
    try {
      ws.send(JSON.stringify({ type: "resume", cursors: feed.connect(rooms, [...stored]) } satisfies ClientFrame));
    } catch (e) {
      return end({ kind: "retry", reason: `resume: ${String(e)}` });
    }
    // Announcements missed while offline: refetch keys and members on demand.
    s.forgetAllCaches();
    this.socket = ws;
    this.setState("online");
    void s.flushOutbox();

    const sendOrEnd = (frame: ClientFrame): End | null => {
      try {
        ws.send(JSON.stringify(frame));
        return null;
      } catch (e) {
        return end({ kind: "retry", reason: `send: ${String(e)}` });
      }
    };
    const receipts = (): End | null => {
      for (const { roomId, seq } of feed.receipts()) {
        const e = sendOrEnd({ type: "receipt", room_id: roomId, kind: "delivered", seq });
        if (e) return e;
      }
      return null;
    };
    timers.push(setInterval(() => mb.push({ kind: "tick" }), PING_EVERY_MS));
    timers.push(setInterval(() => mb.push({ kind: "receipts" }), RECEIPT_EVERY_MS));
    for (;;) {
      const item = await mb.next();
      switch (item.kind) {
        case "stop": {
          receipts();
          return end({ kind: "stopped" });
        }
        case "closed":
          return end({ kind: "retry", reason: item.reason });
        case "tick": {
          if (Date.now() - lastRx > PING_EVERY_MS * 3) return end({ kind: "retry", reason: "no answer from the relay" });
          const e = sendOrEnd({ type: "ping" });
          if (e) return e;
          break;
        }
        case "receipts": {
          const e = receipts();
          if (e) return e;
          break;
        }
        case "text": {
          // One step: this frame and every frame already received.
          const step: Step = { shows: [], resumes: [] };
          let failed: string | null = null;
          for (const text of [item.data, ...mb.takeTexts(BURST - 1)]) {
            const frame = parseFrame(text);
            if (frame === null) continue; // unreadable frame: ignored
            try {
              failed = await this.handle(frame, feed, step);
            } catch (e) {
              failed = e instanceof Error ? e.message : String(e);
            }
            if (failed !== null || run.stopped) break;
          }
          // The step's changes are stored before anything is shown or sent.
          try {
            await s.store.apply(feed.takeChanges());
          } catch (e) {
            return end({ kind: "retry", reason: `store: ${e instanceof Error ? e.message : String(e)}` });
          }
          for (const show of step.shows) show();
          if (run.stopped) return end({ kind: "stopped" });
          for (const cursors of step.resumes) {
            const e = sendOrEnd({ type: "resume", cursors });
            if (e) return e;
          }
          if (failed !== null) return end({ kind: "retry", reason: failed });
          break;
        }
        default:
          break;
      }
    }
  }

  /** Handles one frame of a step; a reason: end the connection after the step. */
  private async handle(frame: ServerFrame, feed: ClientFeed, step: Step): Promise<string | null> {
    const s = this.s;
    switch (frame.type) {
      case "ack":
        this.acks.get(frame.client_id)?.({ kind: "ack", id: frame.id, seq: frame.seq });
        return null;
      case "error": {
        const waiter = frame.client_id === undefined ? undefined : this.acks.get(frame.client_id);
        const r: AckResult = { kind: "error", code: frame.code };
        if (frame.detail !== undefined) r.detail = frame.detail;
        if (frame.retry_after_ms !== undefined) r.retryAfterMs = frame.retry_after_ms;
        if (waiter) waiter(r);
        else {
          const { code, detail } = frame;
          step.shows.push(() => s.emit("relayerror", detail === undefined ? { code } : { code, detail }));
        }
        return null;
      }
      case "message": {
        const { room_id: roomId, seq, sender_id: senderId } = frame;
        const arrival = feed.message(roomId, seq, senderId, frame.device_id);
        if (arrival.kind === "resume") step.resumes.push(arrival.cursors);
        if (arrival.kind !== "open") return null;
        let envelope: Uint8Array | null;
        try {
          envelope = fromB64(frame.envelope);
        } catch {
          envelope = null;
        }
        const m = { roomId, id: frame.id, seq, senderId, deviceId: frame.device_id, createdAt: frame.created_at };
        let again = false;
        const r = await s.openIncoming(m, envelope, async (clientId) => {
          const v = feed.seen(senderId, clientId, roomId, seq, await s.store.seenAt(senderId, clientId));
          again = v === "again";
          return v;
        });
        if (r.kind === "transient") return r.reason;
        if (again) {
          // Handled in a stored step already (a replay from an old cursor): not shown again.
          feed.settle(roomId, seq, undefined);
          return null;
        }
        if (r.kind === "message") {
          // Kept in the same step as the cursor: stored before the app hears of it.
          feed.settle(roomId, seq, s.sealKept(r.message));
          step.shows.push(() => s.emit("message", r.message));
        } else {
          feed.settle(roomId, seq, undefined);
          if (r.kind === "control") {
            const w = r.warning;
            if (w !== null) step.shows.push(() => s.emit("membership", w));
          } else {
            const detail = { roomId, seq, senderId, reason: r.reason };
            step.shows.push(() => s.emit("undecryptable", detail));
          }
        }
        return null;
      }
      case "message_deleted": {
        const d = feed.deletion(frame.room_id, frame.seq);
        if (d.kind === "resume") step.resumes.push(d.cursors);
        const detail = { roomId: frame.room_id, id: frame.id, seq: frame.seq };
        if (d.kind === "deleted") step.shows.push(() => s.emit("deleted", detail));
        return null;
      }
      case "history_start":
        feed.historyStart(frame.room_id, frame.seq);
        return null;
      case "typing": {
        const detail = { roomId: frame.room_id, userId: frame.user_id, active: frame.active };
        if (frame.user_id !== s.userId) step.shows.push(() => s.emit("typing", detail));
        return null;
      }
      case "presence": {
        const detail = { userId: frame.user_id, online: frame.online };
        step.shows.push(() => s.emit("presence", detail));
        return null;
      }
      case "receipt": {
        const detail = { roomId: frame.room_id, userId: frame.user_id, kind: frame.kind, seq: frame.seq };
        step.shows.push(() => s.emit("receipt", detail));
        return null;
      }
      case "room": {
        s.forgetRoom(frame.room_id);
        const detail = { roomId: frame.room_id, change: frame.change };
        step.shows.push(() => s.emit("room", detail));
        // The engine looks at the new member list; the owner signs or forwards
        // its statement. Not awaited: posting waits for an ack this loop reads.
        void s.roomChanged(frame.room_id, frame.change).catch(() => undefined);
        if (frame.change === "created" || frame.change === "member_added") {
          const resume = feed.joined(frame.room_id);
          if (resume !== undefined) step.resumes.push(resume);
        }
        return null;
      }
      case "keys_changed": {
        try {
          await s.refreshDevices(frame.user_id);
        } catch {
          s.forgetDevices(frame.user_id); // refetched on next use
        }
        const detail = { userId: frame.user_id };
        step.shows.push(() => s.emit("deviceschanged", detail));
        return null;
      }
      case "invitation": {
        const detail = { invitationId: frame.invitation_id, roomId: frame.room_id, change: frame.change };
        step.shows.push(() => s.emit("invitation", detail));
        return null;
      }
      case "ready":
      case "pong":
        return null;
    }
  }
}
