// The chat once unlocked: the controller that turns the session's events into state,
// and the actions the views call (open a room, send, download, start a chat, ...).

import {
  type AttachmentPointer,
  type MembershipWarning,
  type ReceivedMessage,
  type Relay,
  type RoomSummary,
  type Sent,
  type Session,
  errorCode,
  errorText,
} from "./api.js";
import { ChatState, type ChatMessage, type RoomState } from "./state.js";
import { toMs } from "./format.js";
import { mountLayout } from "./layout.js";

/** Stop showing a peer as typing after this long without news. */
const TYPING_SHOWN_FOR = 6000;
/** Say "not typing" after this long without a keystroke. */
const TYPING_IDLE = 3000;
/** Repeat "typing" this often while typing goes on. */
const TYPING_REPEAT = 4000;
const HISTORY_LIMIT = 200;

interface Detail<T> extends Event {
  detail: T;
}

export class Chat {
  readonly state: ChatState;
  private nextLocal = 1;
  private typingOut: { roomId: string; lastSent: number; idle: number } | null = null;
  private sweep = 0;
  private unsubscribe: (() => void)[] = [];
  private closed = false;
  /** The layout shows the room pane (narrow screens show one pane at a time). */
  roomPaneShown = false;

  constructor(
    readonly root: HTMLElement,
    readonly session: Session,
    readonly relay: Relay,
    private readonly onExit: (notice?: string) => void,
  ) {
    this.state = new ChatState(session.userId, session.username, session.deviceId);
  }

  start(): void {
    mountLayout(this.root, this);
    this.listen();
    this.state.connection = this.session.connection ?? "connecting";
    this.session.connect();
    void this.refreshRooms();
    void this.refreshInvitations();
    this.sweep = window.setInterval(() => this.sweepTyping(), 1000);
    const onVisible = () => this.maybeMarkRead();
    document.addEventListener("visibilitychange", onVisible);
    this.unsubscribe.push(() => document.removeEventListener("visibilitychange", onVisible));
  }

  /** Runs `fn` when the chat closes (listeners of the views on window or document). */
  onClose(fn: () => void): void {
    this.unsubscribe.push(fn);
  }

  // ---- Session events -------------------------------------------------------------

  private on<T>(target: EventTarget, type: string, fn: (detail: T) => void): void {
    const listener = (e: Event) => {
      try {
        fn((e as Detail<T>).detail);
      } catch (err) {
        console.error(`handling ${type}`, err);
      }
    };
    target.addEventListener(type, listener);
    this.unsubscribe.push(() => target.removeEventListener(type, listener));
  }

  private listen(): void {
    const s = this.session;
    this.on<ReceivedMessage>(s, "message", (m) => this.received(m));
    this.on<{ roomId: string; seq: number; senderId: string; reason: string }>(s, "undecryptable", (u) => {
      const room = this.state.room(u.roomId);
      if (u.reason === "not_for_this_device") {
        // Sealed before this device existed: expected on a newly linked browser. One quiet line.
        room.hidden += 1;
        const key = "hidden";
        const line = room.byKey.get(key);
        const text = `${room.hidden} earlier message${room.hidden === 1 ? " was" : "s were"} sealed before this device existed and cannot be read here.`;
        if (line) {
          line.content = { type: "text", body: text };
          line.version++;
        } else {
          room.put({ key, senderId: "", own: false, at: Date.now(), after: u.seq - 1, content: { type: "text", body: text }, system: { level: "info" }, version: 0 });
        }
        this.state.changed("room", room.id);
        return;
      }
      const why: Record<string, string> = {
        unknown_device: "it came from a device that is unknown or was removed",
        untrusted_sender: "the sender's identity key changed (see the warning)",
        invalid: "it is damaged or forged",
        replayed: "it is a replay of an earlier message",
      };
      this.system(room, `A message from ${this.state.nameOf(u.senderId)} could not be read: ${why[u.reason] ?? u.reason}.`, "warn", u.seq);
    });
    this.on<{ roomId: string; userId: string; active: boolean }>(s, "typing", (t) => {
      if (t.userId === this.state.me) return;
      const room = this.state.room(t.roomId);
      if (t.active) room.typing.set(t.userId, Date.now() + TYPING_SHOWN_FOR);
      else room.typing.delete(t.userId);
      this.state.changed("typing", t.roomId);
    });
    this.on<{ userId: string; online: boolean }>(s, "presence", (p) => {
      this.state.presence.set(p.userId, p.online);
      this.state.changed("presence");
    });
    this.on<{ roomId: string; userId: string; kind: "delivered" | "read"; seq: number }>(s, "receipt", (r) => {
      if (r.userId === this.state.me) return;
      const room = this.state.room(r.roomId);
      const raise = (m: Map<string, number>) => m.set(r.userId, Math.max(m.get(r.userId) ?? 0, r.seq));
      raise(room.delivered);
      if (r.kind === "read") raise(room.read);
      this.state.changed("room", r.roomId);
      this.catchUp(room, r.seq);
    });
    this.on<{ roomId: string; change: unknown }>(s, "room", () => void this.refreshRooms());
    this.on<{ invitationId: string; change: string }>(s, "invitation", () => void this.refreshInvitations());
    // A message that waited in the outbox (offline, or from before a reload) is stored now.
    this.on<{ roomId: string; clientId: string; id: string; seq: number }>(s, "sent", (sent) => {
      const room = this.state.room(sent.roomId);
      const waiting = room.messages.find((m) => m.clientId === sent.clientId && !m.id);
      if (waiting) this.settle(room, waiting, sent);
      else if (!room.byKey.has(`id:${sent.id}`)) {
        room.historyLoaded = false;
        if (this.state.current === room.id) void this.loadHistory(room);
      }
    });
    this.on<{ roomId: string; id: string; seq: number }>(s, "deleted", (d) => {
      const room = this.state.room(d.roomId);
      room.remove(`id:${d.id}`);
      this.state.changed("room", d.roomId);
    });
    this.on<{ code: string; detail?: string }>(s, "relayerror", (e) => {
      const id = this.state.current;
      if (id) this.system(this.state.room(id), `The relay refused something: ${e.detail ?? e.code}`, "warn");
    });
    // Room membership the relay cannot forge: warnings are loud, in the room they concern.
    this.on<MembershipWarning>(s, "membership", (w) => {
      const room = this.state.room(w.room_id);
      const names = (users: string[]) => users.map((u) => this.state.nameOf(u)).join(", ");
      switch (w.kind) {
        case "unconfirmed":
          this.system(room, `⚠ The relay lists ${names(w.users)} in this room, but its owner did not sign them in: nothing is encrypted for them.`, "error");
          break;
        case "direct_room_tampered":
          this.system(room, `⚠ The relay lists ${names(w.users)} in this direct conversation: nothing more is sent here.`, "error");
          break;
        case "statement_refused":
          this.system(room, `⚠ A forged or outdated member list was refused: ${w.reason}.`, "error");
          break;
        case "unsigned":
          this.system(room, "This room's member list is not signed yet (it was made before signed membership); its members as first seen are kept until the owner signs.", "info");
          break;
      }
      this.state.changed("room", room.id);
    });
    this.on<{ userId: string }>(s, "identitychanged", (c) => {
      this.state.alerts.add(c.userId);
      this.state.changed("alerts");
    });
    this.on<{ state: string }>(s, "connection", (c) => {
      const was = this.state.connection;
      this.state.connection = c.state;
      this.state.changed("connection");
      if (c.state === "online" && was !== "online") {
        void this.refreshRooms();
        void this.refreshInvitations();
      }
    });
    this.on<unknown>(s, "loggedout", () => this.exit("Your session ended (logged out elsewhere, or the password changed). Log in again."));
    this.on<unknown>(this.relay, "loggedout", () => this.exit("Your session ended. Log in again."));
  }

  private received(m: ReceivedMessage): void {
    const state = this.state;
    const known = state.rooms.has(m.roomId);
    const room = state.room(m.roomId);
    if (!known || room.members.length === 0) void this.refreshRooms();
    const own = m.senderId === state.me;
    const key = `id:${m.id}`;
    const fresh = !room.byKey.has(key);
    room.put({
      key,
      id: m.id,
      seq: m.seq,
      clientId: m.clientId,
      senderId: m.senderId,
      own,
      at: toMs(m.sentAt),
      content: m.content,
      trust: m.trust,
      version: 0,
    });
    if (fresh && !own) {
      if (this.isViewing(room.id)) this.maybeMarkRead();
      else room.unread += 1;
      room.typing.delete(m.senderId);
    }
    state.changed("room", room.id);
    state.changed("rooms");
  }

  private sweepTyping(): void {
    const now = Date.now();
    for (const room of this.state.rooms.values()) {
      let changed = false;
      for (const [u, until] of room.typing) {
        if (until <= now) {
          room.typing.delete(u);
          changed = true;
        }
      }
      if (changed) this.state.changed("typing", room.id);
    }
  }

  // ---- Rooms ----------------------------------------------------------------------

  async refreshRooms(): Promise<void> {
    let list: RoomSummary[];
    try {
      list = await this.session.rooms();
    } catch (e) {
      console.warn("rooms", e);
      return;
    }
    const seen = new Set<string>();
    for (const summary of list) {
      seen.add(summary.id);
      const room = this.state.room(summary.id);
      const unread = room.unread;
      const hadSummary = room.members.length > 0;
      room.update(summary);
      if (room.historyLoaded && summary.lastSeq !== undefined) this.catchUp(room, summary.lastSeq);
      if (this.isViewing(room.id)) room.unread = 0;
      else if (hadSummary) room.unread = Math.max(unread, room.unread);
      for (const m of room.members) {
        this.state.users.set(m.userId, m.username);
        if (m.userId !== this.state.me && this.trust(m.userId) === "changed") this.state.alerts.add(m.userId);
      }
    }
    for (const id of [...this.state.rooms.keys()]) {
      if (!seen.has(id)) this.state.rooms.delete(id);
    }
    if (this.state.current && !this.state.rooms.has(this.state.current)) this.state.current = null;
    this.state.changed("rooms");
    this.state.changed("alerts");
    if (this.state.current) this.state.changed("room", this.state.current);
  }

  /** Fetches this user's pending invitations for the room list. */
  async refreshInvitations(): Promise<void> {
    try {
      const list = await this.session.invitations();
      this.state.invitations = list.map((i) => ({
        id: i.id,
        roomId: i.room_id,
        roomName: i.room_name,
        direct: i.room_kind === "direct",
        inviter: i.inviter.username,
      }));
      for (const i of list) this.state.users.set(i.inviter.id, i.inviter.username);
    } catch (e) {
      console.warn("invitations", e);
      return;
    }
    this.state.changed("invitations");
  }

  /** Accepts an invitation and opens its room. */
  async acceptInvitation(id: string): Promise<void> {
    const summary = await this.session.acceptInvitation(id);
    this.state.invitations = this.state.invitations.filter((i) => i.id !== id);
    this.state.changed("invitations");
    this.state.room(summary.id).update(summary);
    await this.refreshRooms();
    this.openRoom(summary.id);
  }

  /** Declines an invitation. */
  async declineInvitation(id: string): Promise<void> {
    await this.session.declineInvitation(id);
    this.state.invitations = this.state.invitations.filter((i) => i.id !== id);
    this.state.changed("invitations");
  }

  trust(userId: string): string {
    try {
      return this.session.trust(userId);
    } catch {
      return "unknown";
    }
  }

  openRoom(id: string): void {
    this.stopTyping();
    this.state.current = id;
    this.roomPaneShown = true;
    const room = this.state.room(id);
    room.unread = 0;
    this.state.changed("rooms");
    this.state.changed("room", id);
    void this.loadHistory(room).then(() => this.maybeMarkRead());
  }

  /** Back to the room list (narrow screens). */
  back(): void {
    this.stopTyping();
    this.roomPaneShown = false;
    this.state.changed("rooms");
  }

  private loadHistory(room: RoomState): Promise<void> {
    if (room.historyLoaded) return Promise.resolve();
    if (!room.historyLoading) {
      room.historyLoading = this.session
        .history(room.id, { limit: HISTORY_LIMIT })
        .then((items) => {
          let unseen = 0;
          for (const m of items) {
            const existing = room.byKey.get(`id:${m.id}`);
            if (existing) {
              // A file sent from here: the history has its pointer (to download it again).
              if (existing.content.type === "pending-file" && m.content.type === "file") {
                existing.content = m.content;
                existing.version++;
              }
              continue;
            }
            room.put({
              key: `id:${m.id}`,
              id: m.id,
              seq: m.seq,
              clientId: m.clientId,
              senderId: m.senderId,
              own: m.senderId === this.state.me,
              at: toMs(m.sentAt),
              content: m.content,
              trust: m.trust,
              version: 0,
            });
            if (m.senderId !== this.state.me && m.seq > room.readSent) unseen++;
          }
          // A catch-up of a room in the background: at least these are unread.
          if (room.fetchedTo > 0 && !this.isViewing(room.id)) room.unread = Math.max(room.unread, unseen);
          room.historyLoaded = true;
          this.state.changed("room", room.id);
          this.state.changed("rooms");
        })
        .catch((e: unknown) => {
          this.system(room, `Could not load the history: ${errorText(e)}`, "error");
        })
        .finally(() => (room.historyLoading = null));
    }
    return room.historyLoading;
  }

  /**
   * Someone speaks of a message this page has not seen (a receipt, the room's last seq):
   * fetch the history again. The live stream normally brings it (a room joined after its
   * first messages included: the relay's `history_start` moves the client's cursor to the
   * join point); this is a cheap second chance, e.g. for a message the stream had to drop.
   */
  private catchUp(room: RoomState, seq: number): void {
    if (seq <= Math.max(room.lastSeq(), room.fetchedTo)) return;
    room.fetchedTo = seq;
    void (room.historyLoading ?? Promise.resolve())
      .then(() => {
        room.historyLoaded = false;
        return this.loadHistory(room);
      })
      .then(() => this.maybeMarkRead());
  }

  isViewing(roomId: string): boolean {
    return this.state.current === roomId && document.visibilityState === "visible" && (this.roomPaneShown || wide());
  }

  /** Marks the open room read up to its last message, when a person can see it. */
  maybeMarkRead(): void {
    const id = this.state.current;
    if (!id || !this.isViewing(id)) return;
    const room = this.state.room(id);
    const seq = room.lastSeq();
    room.unread = 0;
    if (seq > room.readSent) {
      room.readSent = seq;
      this.session.markRead(id, seq).catch((e: unknown) => {
        // Not sent: mark again when the room is next viewed.
        if (room.readSent === seq) room.readSent = 0;
        console.warn("markRead", e);
      });
    }
    this.state.changed("rooms");
  }

  async startDirect(userId: string, username?: string): Promise<void> {
    if (username) this.state.users.set(userId, username);
    const summary = await this.session.directRoom(userId);
    this.state.room(summary.id).update(summary);
    await this.refreshRooms();
    this.openRoom(summary.id);
  }

  async createGroup(name: string, memberIds: string[]): Promise<void> {
    const summary = await this.session.createRoom(name, memberIds);
    this.state.room(summary.id).update(summary);
    await this.refreshRooms();
    this.openRoom(summary.id);
  }

  async invite(roomId: string, userId: string, username: string): Promise<void> {
    this.state.users.set(userId, username);
    const how = await this.session.invite(roomId, userId);
    this.system(
      this.state.room(roomId),
      how === "member"
        ? `You added ${username} to this room.`
        : `You invited ${username}. They join when they accept, and see what is written from then on.`,
      "info",
    );
    await this.refreshRooms();
  }

  // ---- Sending --------------------------------------------------------------------

  private local(room: RoomState, content: ChatMessage["content"]): ChatMessage {
    const msg: ChatMessage = {
      key: `local:${this.nextLocal++}`,
      senderId: this.state.me,
      own: true,
      at: Date.now(),
      content,
      send: "sending",
      version: 0,
    };
    room.put(msg);
    room.lastActivity = msg.at;
    this.state.changed("room", room.id);
    this.state.changed("rooms");
    return msg;
  }

  /** A local message is now stored by the relay as `sent`. */
  private settle(room: RoomState, msg: ChatMessage, sent: Pick<Sent, "id" | "seq"> & { clientId?: string }): void {
    const key = `id:${sent.id}`;
    const other = room.byKey.get(key);
    if (other && other !== msg) {
      room.remove(msg.key);
      other.send = "sent";
      other.version++;
    } else if (msg.key !== key) {
      room.remove(msg.key);
      room.put({ ...msg, key, id: sent.id, seq: sent.seq, clientId: sent.clientId ?? msg.clientId, send: "sent", error: undefined, transfer: undefined, version: msg.version + 1 });
    }
    this.state.changed("room", room.id);
    const settled = room.byKey.get(key);
    if (settled?.content.type === "pending-file") {
      void (room.historyLoading ?? Promise.resolve()).then(() => {
        room.historyLoaded = false;
        return this.loadHistory(room);
      });
    }
  }

  private failed(room: RoomState, msg: ChatMessage, e: unknown): void {
    const code = errorCode(e);
    const current = room.byKey.get(msg.key) ?? msg;
    if (code === "queued") {
      current.send = "queued";
      const clientId = (e as { clientId?: string }).clientId;
      if (clientId) current.clientId = clientId;
    } else {
      current.send = "failed";
      current.error = errorText(e);
    }
    if (code === "identity_changed") {
      for (const u of (e as { users?: string[] }).users ?? []) this.state.alerts.add(u);
      for (const m of room.members) if (m.userId !== this.state.me && this.trust(m.userId) === "changed") this.state.alerts.add(m.userId);
      this.state.changed("alerts");
    }
    current.version++;
    this.state.changed("room", room.id);
  }

  sendText(roomId: string, body: string): void {
    const text = body.trim();
    if (!text) return;
    this.stopTyping();
    const room = this.state.room(roomId);
    const msg = this.local(room, { type: "text", body: text });
    this.session.sendText(roomId, text).then(
      (sent) => this.settle(room, room.byKey.get(msg.key) ?? msg, sent),
      (e: unknown) => this.failed(room, msg, e),
    );
  }

  /** Sends a failed message again. */
  retry(roomId: string, msg: ChatMessage): void {
    const room = this.state.room(roomId);
    room.remove(msg.key);
    if (msg.content.type === "text") this.sendText(roomId, msg.content.body);
    else this.state.changed("room", roomId);
  }

  sendFile(roomId: string, file: File): void {
    const room = this.state.room(roomId);
    const msg = this.local(room, { type: "pending-file", name: file.name, size: file.size });
    msg.transfer = { kind: "upload", done: 0, total: file.size };
    let last = 0;
    this.session
      .sendFile(roomId, file, (done, total) => {
        const now = performance.now();
        if (now - last < 100 && done < total) return;
        last = now;
        const cur = room.byKey.get(msg.key) ?? msg;
        cur.transfer = { kind: "upload", done, total };
        cur.version++;
        this.state.changed("room", roomId);
      })
      .then(
        (sent) => this.settle(room, room.byKey.get(msg.key) ?? msg, sent),
        (e: unknown) => this.failed(room, msg, e),
      );
  }

  /** Downloads and decrypts a file, then hands it to the browser to save. */
  download(roomId: string, msg: ChatMessage): void {
    if (msg.content.type !== "file") return;
    const pointer: AttachmentPointer = msg.content.file;
    if (msg.transfer?.url) {
      saveBlobUrl(msg.transfer.url, pointer.name ?? "file");
      return;
    }
    const total = pointer.size;
    msg.transfer = { kind: "download", done: 0, total };
    msg.version++;
    this.state.changed("room", roomId);
    let last = 0;
    this.session
      .downloadFile(pointer, (done, t) => {
        const now = performance.now();
        if (now - last < 100 && done < t) return;
        last = now;
        msg.transfer = { kind: "download", done, total: t };
        msg.version++;
        this.state.changed("room", roomId);
      })
      .then(
        (blob) => {
          const typed = pointer.content_type && !blob.type ? new Blob([blob], { type: pointer.content_type }) : blob;
          const url = URL.createObjectURL(typed);
          msg.transfer = { kind: "download", done: total, total, url };
          msg.version++;
          this.state.changed("room", roomId);
          saveBlobUrl(url, pointer.name ?? "file");
        },
        (e: unknown) => {
          msg.transfer = { kind: "download", done: 0, total, error: errorText(e) };
          msg.version++;
          this.state.changed("room", roomId);
        },
      );
  }

  // ---- Typing ---------------------------------------------------------------------

  /** The composer changed: say "typing" (repeated while it goes on), and stop when idle. */
  typed(roomId: string, hasText: boolean): void {
    if (!hasText) return this.stopTyping();
    const now = Date.now();
    const t = this.typingOut;
    if (!t || t.roomId !== roomId || now - t.lastSent >= TYPING_REPEAT) {
      if (t && t.roomId !== roomId) this.stopTyping();
      this.safe(() => this.session.setTyping(roomId, true));
      this.typingOut = { roomId, lastSent: now, idle: 0 };
    }
    const out = this.typingOut!;
    window.clearTimeout(out.idle);
    out.idle = window.setTimeout(() => this.stopTyping(), TYPING_IDLE);
  }

  stopTyping(): void {
    const t = this.typingOut;
    if (!t) return;
    window.clearTimeout(t.idle);
    this.typingOut = null;
    this.safe(() => this.session.setTyping(t.roomId, false));
  }

  private safe(f: () => void): void {
    try {
      f();
    } catch (e) {
      console.warn(e);
    }
  }

  // ---- Trust ----------------------------------------------------------------------

  async accept(userId: string): Promise<void> {
    await this.session.acceptIdentity(userId);
    this.state.alerts.delete(userId);
    this.state.changed("alerts");
    for (const room of this.state.rooms.values()) {
      if (room.members.some((m) => m.userId === userId)) {
        this.system(room, `You accepted ${this.state.nameOf(userId)}'s new identity key. Compare your safety number again to verify it.`, "info");
      }
    }
  }

  // ---- Lines from the app ---------------------------------------------------------

  system(room: RoomState, text: string, level: "info" | "warn" | "error", seq?: number): void {
    room.put({
      key: `local:${this.nextLocal++}`,
      seq,
      senderId: "",
      own: false,
      at: Date.now(),
      content: { type: "text", body: text },
      system: { level },
      version: 0,
    });
    this.state.changed("room", room.id);
  }

  // ---- Leaving --------------------------------------------------------------------

  async logout(): Promise<void> {
    try {
      await this.relay.logout();
    } catch {
      // the session is closed here either way
    }
    this.exit("You are logged out. Your keys stay on this device, encrypted with your passphrase.");
  }

  private exit(notice?: string): void {
    if (this.closed) return;
    this.closed = true;
    this.stopTyping();
    window.clearInterval(this.sweep);
    for (const u of this.unsubscribe) u();
    for (const d of document.querySelectorAll("dialog.modal")) d.remove();
    try {
      this.session.close();
    } catch {
      // already closed
    }
    this.onExit(notice);
  }
}

/** Whether both panes show side by side (the CSS breakpoint). */
export function wide(): boolean {
  return window.matchMedia("(min-width: 721px)").matches;
}

function saveBlobUrl(url: string, name: string): void {
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.rel = "noopener";
  document.body.appendChild(a);
  a.click();
  a.remove();
}
