// The live connection: one WebSocket at a time, resumed from the stored
// cursors right after `ready`, reconnected with back-off (0.25 s doubling to
// 30 s, jittered). Mirrors the native SDK's core/client/src/sync.rs.
//
// Cursors: a room's cursor is the last `seq` handled (shown, reported
// undecryptable, or deleted). It moves one step at a time: a message that skips
// ahead (a gap) is dropped and the room resumed from the cursor, so nothing is
// ever skipped. A message that cannot be checked now (the sender's keys did not
// load) ends the connection without moving the cursor; the next one resumes there.

import { ClientCodes, codeOf } from "./errors.js";
import type { ConnectionState } from "./events.js";
import type { Session } from "./session.js";
import type { ClientFrame, ServerFrame, Uuid } from "./sotto_wasm.js";
import { fromB64 } from "./codec.js";
import { parseServerFrame, reconnectDelayMs } from "./sotto_wasm.js";
import { POLICY } from "./wire.gen.js";

/** A WebSocket constructor (browsers: the global `WebSocket`; Node: e.g. the `ws` package's). */
export type WebSocketConstructor = new (url: string) => WebSocket;

// The engine's timing policy (sotto-engine `policy`, the native SDK's numbers).
const PING_EVERY_MS = POLICY.pingEveryMs;
const RECEIPT_EVERY_MS = POLICY.receiptEveryMs;
const STABLE_AFTER_MS = POLICY.stableAfterMs;
const HANDSHAKE_MS = POLICY.handshakeTimeoutMs;

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

/** The live state of one connection. */
interface Live {
  /** Last seq handled per room (persisted as it moves). */
  cursors: Map<Uuid, number>;
  /** Rooms resumed after a gap whose replay has not reached the cursor yet. */
  resuming: Set<Uuid>;
  /** Highest seq per room to confirm with a `delivered` receipt. */
  delivered: Map<Uuid, number>;
}

type Next = { kind: "continue" } | { kind: "resume"; roomId: Uuid } | { kind: "reconnect"; reason: string };
const CONTINUE: Next = { kind: "continue" };

/** What the wait for a socket `ack` ended with. */
export type AckResult =
  | { kind: "ack"; id: Uuid; seq: number }
  | { kind: "error"; code: string; detail?: string }
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
    void this.loop(run);
  }

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
    let cursors: Map<Uuid, number>;
    let token: string;
    try {
      const rooms = await s.relay.rooms();
      const stored = await s.store.cursors();
      cursors = new Map(rooms.map((r) => [r.id, stored.get(r.id) ?? 0]));
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
    const end = (e: End, code = 1000): End => {
      for (const t of timers) clearInterval(t);
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
      ws.send(JSON.stringify({ type: "resume", cursors: Object.fromEntries(cursors) } satisfies ClientFrame));
    } catch (e) {
      return end({ kind: "retry", reason: `resume: ${String(e)}` });
    }
    // Announcements missed while offline: refetch keys and members on demand.
    s.forgetAllCaches();
    this.socket = ws;
    this.setState("online");
    void s.flushOutbox();

    const live: Live = { cursors, resuming: new Set(), delivered: new Map() };
    const sendOrEnd = (frame: ClientFrame): End | null => {
      try {
        ws.send(JSON.stringify(frame));
        return null;
      } catch (e) {
        return end({ kind: "retry", reason: `send: ${String(e)}` });
      }
    };
    timers.push(setInterval(() => mb.push({ kind: "tick" }), PING_EVERY_MS));
    timers.push(setInterval(() => mb.push({ kind: "receipts" }), RECEIPT_EVERY_MS));
    for (;;) {
      const item = await mb.next();
      switch (item.kind) {
        case "stop": {
          this.flushReceipts(live, ws);
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
          if (!this.flushReceipts(live, ws)) return end({ kind: "retry", reason: "send failed" });
          break;
        }
        case "text": {
          const frame = parseFrame(item.data);
          if (frame === null) break; // unreadable frame: ignored
          let next: Next;
          try {
            next = await this.handle(frame, live);
          } catch (e) {
            next = { kind: "reconnect", reason: e instanceof Error ? e.message : String(e) };
          }
          if (run.stopped) return end({ kind: "stopped" });
          if (next.kind === "reconnect") return end({ kind: "retry", reason: next.reason });
          if (next.kind === "resume") {
            const e = sendOrEnd({ type: "resume", cursors: { [next.roomId]: live.cursors.get(next.roomId) ?? 0 } });
            if (e) return e;
          }
          break;
        }
        default:
          break;
      }
    }
  }

  private flushReceipts(live: Live, ws: WebSocket): boolean {
    for (const [roomId, seq] of live.delivered) {
      try {
        ws.send(JSON.stringify({ type: "receipt", room_id: roomId, kind: "delivered", seq } satisfies ClientFrame));
      } catch {
        return false;
      }
    }
    live.delivered.clear();
    return true;
  }

  private place(live: Live, roomId: Uuid, seq: number): "old" | "next" | "gap" {
    const cursor = live.cursors.get(roomId) ?? 0;
    if (seq <= cursor) return "old";
    if (seq === cursor + 1) {
      live.resuming.delete(roomId);
      return "next";
    }
    return "gap";
  }

  private gap(live: Live, roomId: Uuid): Next {
    if (!live.cursors.has(roomId)) live.cursors.set(roomId, 0);
    if (live.resuming.has(roomId)) return CONTINUE;
    live.resuming.add(roomId);
    return { kind: "resume", roomId };
  }

  private async advance(live: Live, roomId: Uuid, seq: number): Promise<void> {
    live.cursors.set(roomId, seq);
    await this.s.store.advanceCursor(roomId, seq);
  }

  private async handle(frame: ServerFrame, live: Live): Promise<Next> {
    const s = this.s;
    switch (frame.type) {
      case "ack": {
        this.acks.get(frame.client_id)?.({ kind: "ack", id: frame.id, seq: frame.seq });
        return CONTINUE;
      }
      case "error": {
        const waiter = frame.client_id === undefined ? undefined : this.acks.get(frame.client_id);
        const r: { kind: "error"; code: string; detail?: string } = { kind: "error", code: frame.code };
        if (frame.detail !== undefined) r.detail = frame.detail;
        if (waiter) waiter(r);
        else s.emit("relayerror", frame.detail === undefined ? { code: frame.code } : { code: frame.code, detail: frame.detail });
        return CONTINUE;
      }
      case "message": {
        const p = this.place(live, frame.room_id, frame.seq);
        if (p === "old") return CONTINUE;
        if (p === "gap") return this.gap(live, frame.room_id);
        const ownDevice = frame.sender_id === s.userId && frame.device_id === s.deviceId;
        if (!ownDevice) {
          let envelope: Uint8Array | null;
          try {
            envelope = fromB64(frame.envelope);
          } catch {
            envelope = null;
          }
          const r = await s.openIncoming(
            {
              roomId: frame.room_id,
              id: frame.id,
              seq: frame.seq,
              senderId: frame.sender_id,
              deviceId: frame.device_id,
              createdAt: frame.created_at,
            },
            envelope,
          );
          if (r.kind === "transient") return { kind: "reconnect", reason: r.reason };
          if (r.kind === "message") {
            // Kept before the app hears of it; a store failure is retried
            // like any other (the cursor does not move past the message).
            try {
              await s.keep(r.message);
            } catch (e) {
              return { kind: "reconnect", reason: `store: ${e instanceof Error ? e.message : String(e)}` };
            }
            s.emit("message", r.message);
          } else if (r.kind === "control") {
            if (r.warning !== null) s.emit("membership", r.warning);
          } else {
            s.emit("undecryptable", {
              roomId: frame.room_id,
              seq: frame.seq,
              senderId: frame.sender_id,
              reason: r.reason,
            });
          }
          live.delivered.set(frame.room_id, frame.seq);
        }
        await this.advance(live, frame.room_id, frame.seq);
        return CONTINUE;
      }
      case "message_deleted": {
        const p = this.place(live, frame.room_id, frame.seq);
        if (p === "gap") return this.gap(live, frame.room_id);
        // Out of local history before the cursor moves past it (a failure is
        // retried: the replay brings the tombstone again).
        try {
          await s.forgetMessage(frame.room_id, frame.seq);
        } catch (e) {
          return { kind: "reconnect", reason: `store: ${e instanceof Error ? e.message : String(e)}` };
        }
        if (p === "next") await this.advance(live, frame.room_id, frame.seq);
        s.emit("deleted", { roomId: frame.room_id, id: frame.id, seq: frame.seq });
        return CONTINUE;
      }
      case "history_start": {
        // Messages up to `seq` predate this user's membership: the room's history
        // starts after it, so the next visible message is `seq + 1`.
        if (frame.seq > (live.cursors.get(frame.room_id) ?? 0)) await this.advance(live, frame.room_id, frame.seq);
        live.resuming.delete(frame.room_id);
        return CONTINUE;
      }
      case "typing": {
        if (frame.user_id !== s.userId) {
          s.emit("typing", { roomId: frame.room_id, userId: frame.user_id, active: frame.active });
        }
        return CONTINUE;
      }
      case "presence":
        s.emit("presence", { userId: frame.user_id, online: frame.online });
        return CONTINUE;
      case "receipt":
        s.emit("receipt", { roomId: frame.room_id, userId: frame.user_id, kind: frame.kind, seq: frame.seq });
        return CONTINUE;
      case "room": {
        s.forgetRoom(frame.room_id);
        s.emit("room", { roomId: frame.room_id, change: frame.change });
        // The engine looks at the new member list; the owner signs or forwards
        // its statement. Not awaited: posting waits for an ack this loop reads.
        void s.roomChanged(frame.room_id, frame.change).catch(() => undefined);
        if ((frame.change === "created" || frame.change === "member_added") && !live.cursors.has(frame.room_id)) {
          const stored = await s.store.cursors();
          live.cursors.set(frame.room_id, stored.get(frame.room_id) ?? 0);
          return { kind: "resume", roomId: frame.room_id };
        }
        return CONTINUE;
      }
      case "keys_changed": {
        try {
          await s.refreshDevices(frame.user_id);
        } catch {
          s.forgetDevices(frame.user_id); // refetched on next use
        }
        s.emit("deviceschanged", { userId: frame.user_id });
        return CONTINUE;
      }
      case "invitation":
        s.emit("invitation", { invitationId: frame.invitation_id, roomId: frame.room_id, change: frame.change });
        return CONTINUE;
      case "ready":
      case "pong":
        return CONTINUE;
    }
  }
}
