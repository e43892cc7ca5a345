// The live connection's driver. The engine's link (`ClientLink`, the code the
// native SDK runs) decides: when to connect, `resume` first after `ready`, the
// steps (one `KeyStore.apply` transaction each, its events shown only after),
// gaps, de-duplication, receipts, keep-alive, the wait for an `ack`, back-off.
// This does its outputs: HTTP, the WebSocket, the store, opening messages and
// the app's events. The driver of the native SDK is core/client/src/sync.rs.

import { ClientCodes, codeOf } from "./errors.js";
import type { ConnectionState } from "./events.js";
import type { Session } from "./session.js";
import type { ClientFrame, LinkAck, LinkIncoming, LinkOutput, ServerFrame, Uuid } from "./sotto_wasm.js";
import { ClientLink, parseServerFrame, reconnectDelayMs } from "./sotto_wasm.js";
import { POLICY } from "./wire.gen.js";

/** A WebSocket constructor (browsers: the global `WebSocket`; Node: e.g. the `ws` package's). */
export type WebSocketConstructor = new (url: string) => WebSocket;

/** Reconnect delay after `failures` failed connections in a row (the engine's: 0.25 s × 2^n up to 30 s, jittered into [d/2, d]). */
export function backoffMs(failures: number): number {
  const jitter = crypto.getRandomValues(new Uint32Array(1))[0] ?? 0;
  return reconnectDelayMs(Math.min(Math.max(0, Math.floor(failures)), 0xffff_ffff), jitter);
}

/** A relay frame as the core reads it (null: unreadable or unknown). */
export function parseFrame(text: string): ServerFrame | null {
  try {
    return parseServerFrame(text);
  } catch {
    return null;
  }
}

const now = (): number => performance.now();
const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** @internal The session's live connection. */
export class Sync {
  state: ConnectionState = "offline";
  private readonly link: ClientLink;
  private socket: { conn: number; ws: WebSocket } | null = null;
  private token: string | null = null;
  private readonly acks = new Map<Uuid, (a: LinkAck) => void>();
  private pumping = false;
  private again = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private idle: Array<() => void> = [];

  constructor(
    private readonly s: Session,
    private readonly WS: WebSocketConstructor,
  ) {
    this.link = new ClientLink(s.userId, s.deviceId, POLICY.handshakeTimeoutMs);
  }

  /** Starts the connection (idempotent). */
  start(): void {
    this.input((l) => l.start(now()));
  }

  /** Stops it: the socket closes once the step under way is stored; pending sends fall back to HTTP. */
  stop(): void {
    this.input((l) => l.stop(now()));
  }

  /** Resolves once the link has wound down (after `stop`, when its last step is stored). */
  ended(): Promise<void> {
    if (!this.link.isActive && !this.pumping) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  /** Sends a frame on the live socket at once (not behind a step); false when offline. */
  send(frame: ClientFrame): boolean {
    const conn = this.link.live;
    const socket = this.socket;
    if (conn === undefined || socket === null || socket.conn !== conn || socket.ws.readyState !== 1) return false;
    try {
      socket.ws.send(JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Sends a message frame and waits for its `ack` (the engine's timeout; a guard
   * of twice that in case a step never ends); null when offline.
   */
  sendMessage(clientId: Uuid, frame: ClientFrame): Promise<LinkAck> | null {
    if (!this.send(frame) || !this.link.expectAck(now(), clientId)) return null;
    const result = new Promise<LinkAck>((resolve) => {
      const finish = (a: LinkAck) => {
        clearTimeout(guard);
        if (this.acks.get(clientId) === finish) {
          this.acks.delete(clientId);
          this.link.forgetAck(clientId);
        }
        resolve(a);
      };
      const guard = setTimeout(() => finish({ kind: "offline" }), 2 * POLICY.ackTimeoutMs);
      this.acks.set(clientId, finish);
    });
    this.kick(); // the ack's deadline
    return result;
  }

  private input(f: (l: ClientLink) => void): void {
    f(this.link);
    this.kick();
  }

  /** Does the link's outputs until it waits for an input or a deadline. */
  private kick(): void {
    if (this.pumping) {
      this.again = true; // an input after the pump's last poll: poll again
      return;
    }
    this.pumping = true;
    void this.pump().finally(() => {
      this.pumping = false;
      if (this.again) {
        this.kick();
        return;
      }
      clearTimeout(this.timer);
      const at = this.link.deadline();
      if (at !== undefined) this.timer = setTimeout(() => this.kick(), Math.max(0, at - now()));
      if (!this.link.isActive) for (const resolve of this.idle.splice(0)) resolve();
    });
  }

  private async pump(): Promise<void> {
    for (;;) {
      this.again = false;
      const out = this.link.poll(now());
      if (out === undefined) return;
      try {
        await this.perform(out);
      } catch (e) {
        // An output's own failure (a store or socket error) is reported to the link there;
        // anything else is a bug: keep the loop alive and say so.
        this.s.emit("relayerror", { code: "internal", detail: `live connection: ${message(e)}` });
      }
    }
  }

  private async perform(out: LinkOutput): Promise<void> {
    const s = this.s;
    const link = this.link;
    switch (out.kind) {
      case "prepare": {
        try {
          const rooms = (await s.relay.rooms()).map((r) => r.id);
          const stored = await s.store.cursors();
          this.token = await s.relay.accessToken();
          link.prepared(out.conn, now(), rooms, [...stored]);
        } catch (e) {
          link.prepareFailed(out.conn, now(), codeOf(e) === ClientCodes.notLoggedIn, message(e));
        }
        return;
      }
      case "open":
        return this.open(out.conn);
      case "authenticate": {
        const token = this.token ?? "";
        this.token = null;
        this.sendText(out.conn, JSON.stringify({ type: "auth", token } satisfies ClientFrame), "auth");
        return;
      }
      case "online":
        // Announcements missed while offline: refetch keys and members on demand.
        s.forgetAllCaches();
        void s.flushOutbox();
        return;
      case "send":
        if (this.socket !== null) this.sendText(this.socket.conn, out.text, "send");
        return;
      case "close":
        if (this.socket?.conn === out.conn) this.closeSocket();
        return;
      case "state": {
        this.state = out.state;
        const detail: { state: ConnectionState; reason?: string; retryInMs?: number } = { state: out.state };
        if (out.reason !== undefined) detail.reason = out.reason;
        if (out.retryInMs !== undefined) detail.retryInMs = out.retryInMs;
        s.emit("connection", detail);
        return;
      }
      case "acked":
        this.acks.get(out.clientId)?.(out.ack);
        return;
      case "receive":
        return this.receive(out.message);
      case "roomChanged":
        // The engine looks at the new member list; the owner signs or forwards
        // its statement. Not awaited: posting waits for an ack this loop reads.
        void s.roomChanged(out.roomId, out.change).catch(() => undefined);
        return;
      case "keysChanged": {
        const user = out.userId;
        void s.refreshDevices(user).catch(() => s.forgetDevices(user)); // refetched on next use
        return;
      }
      case "store": {
        let error: string | undefined;
        try {
          await s.store.apply(out.changes);
        } catch (e) {
          error = message(e);
        }
        link.stored(now(), error);
        return;
      }
      case "show":
        return this.show(out.frame);
      case "app":
        (out.event as () => void)();
        return;
      case "loggedOut":
        s.loggedOut();
        return;
    }
  }

  private open(conn: number): void {
    let ws: WebSocket;
    try {
      ws = new this.WS(this.s.relay.wsUrl);
    } catch (e) {
      this.link.closed(conn, now(), `connect: ${message(e)}`);
      return;
    }
    this.socket = { conn, ws };
    ws.onopen = () => this.input((l) => l.opened(conn, now()));
    ws.onmessage = (ev: MessageEvent) => {
      if (typeof ev.data === "string") {
        const text = ev.data;
        this.input((l) => l.received(conn, now(), text));
      }
    };
    ws.onclose = (ev: CloseEvent) =>
      this.input((l) => l.closed(conn, now(), `socket closed (${ev.code}${ev.reason ? `: ${ev.reason}` : ""})`));
    ws.onerror = () => this.input((l) => l.closed(conn, now(), "socket error"));
  }

  private sendText(conn: number, text: string, what: string): void {
    const ws = this.socket?.conn === conn ? this.socket.ws : null;
    try {
      if (ws === null || ws.readyState !== 1) throw new Error("socket not open");
      ws.send(text);
    } catch (e) {
      this.link.closed(conn, now(), `${what}: ${message(e)}`);
    }
  }

  private closeSocket(): void {
    const ws = this.socket?.ws;
    this.socket = null;
    if (ws === undefined) return;
    ws.onopen = null;
    ws.onmessage = null;
    ws.onclose = null;
    ws.onerror = null;
    try {
      ws.close(1000);
    } catch {
      // already closed
    }
  }

  /** Opens a message the link handed out (the engine's pipeline), then settles it. */
  private async receive(m: LinkIncoming): Promise<void> {
    const s = this.s;
    const link = this.link;
    const { roomId, seq, senderId } = m;
    try {
      const r = await s.openIncoming(m, async (clientId) =>
        link.seen(senderId, clientId, roomId, seq, await s.store.seenAt(senderId, clientId)),
      );
      if (r.kind === "later") link.settleLater(roomId, seq, r.reason);
      else if (r.kind === "again") link.settle(roomId, seq, undefined, undefined);
      else if (r.kind === "message") {
        // Kept in the same step as the cursor: stored before the app hears of it.
        const msg = s.received(r.item);
        link.settle(roomId, seq, s.sealItem(r.item), () => s.emit("message", msg));
      } else if (r.kind === "control") {
        const w = r.warning;
        link.settle(roomId, seq, undefined, w === null ? undefined : () => s.emit("membership", w));
      } else if (r.kind === "undecryptable") {
        const detail = { roomId, seq, senderId, reason: r.reason };
        link.settle(roomId, seq, undefined, () => s.emit("undecryptable", detail));
      } else link.settleLater(roomId, seq, `cannot open now (${r.kind})`);
    } catch (e) {
      link.settleLater(roomId, seq, message(e));
    }
  }

  private show(f: ServerFrame): void {
    const s = this.s;
    switch (f.type) {
      case "message_deleted":
        return s.emit("deleted", { roomId: f.room_id, id: f.id, seq: f.seq });
      case "typing":
        return s.emit("typing", { roomId: f.room_id, userId: f.user_id, active: f.active });
      case "presence":
        return s.emit("presence", { userId: f.user_id, online: f.online });
      case "receipt":
        return s.emit("receipt", { roomId: f.room_id, userId: f.user_id, kind: f.kind, seq: f.seq });
      case "room":
        return s.emit("room", { roomId: f.room_id, change: f.change });
      case "keys_changed":
        return s.emit("deviceschanged", { userId: f.user_id });
      case "invitation":
        return s.emit("invitation", { invitationId: f.invitation_id, roomId: f.room_id, change: f.change });
      case "error": {
        const { code, detail } = f;
        return s.emit("relayerror", detail === undefined ? { code } : { code, detail });
      }
      default:
        return;
    }
  }
}
