// The chat's state: rooms, their messages, people, presence, typing, marks, alerts.
// Plain data changed by the controller (chat.ts), which then calls `changed(...)`;
// views subscribe to the topics they draw.

import type { Content, RoomSummary } from "./api.js";
import type { Mark } from "./format.js";

export interface Member {
  userId: string;
  username: string;
  role: string;
}

export type SendState = "sending" | "queued" | "sent" | "failed";

export interface Transfer {
  kind: "upload" | "download";
  done: number;
  total: number;
  error?: string;
  /** A finished download, kept to save it again. */
  url?: string;
}

export interface ChatMessage {
  /** `id:<message id>` once the relay stored it, `local:<n>` before. */
  key: string;
  id?: string;
  seq?: number;
  /** The sender's message id, when known (a queued message waits under it). */
  clientId?: string;
  senderId: string;
  own: boolean;
  at: number;
  content: Content | { type: "pending-file"; name: string; size: number };
  /** Messages sent from this page: where they are. */
  send?: SendState;
  error?: string;
  trust?: string;
  transfer?: Transfer;
  /** Bumped on every change, so its view redraws. */
  version: number;
  /** A line from the app, not a message. */
  system?: { level: "info" | "warn" | "error" };
  /** A line from the app shows after this seq (where the room was when it was said). */
  after?: number;
}

export class RoomState {
  name = "";
  kind: "direct" | "group" = "group";
  members: Member[] = [];
  /** Invited, not answered yet: not members, so nothing is sealed for them. */
  invited: { userId: string; username: string }[] = [];
  unread = 0;
  /** Ordered by seq; messages still being sent come last. */
  messages: ChatMessage[] = [];
  byKey = new Map<string, ChatMessage>();
  historyLoaded = false;
  historyLoading: Promise<void> | null = null;
  /** Who is typing, until when (ms). */
  typing = new Map<string, number>();
  /** Other members' delivered and read marks (highest seq). */
  delivered = new Map<string, number>();
  read = new Map<string, number>();
  /** Messages sealed before this device existed (not readable here). */
  hidden = 0;
  /** The highest seq a history fetch was started for (see Chat.catchUp). */
  fetchedTo = 0;
  /** The highest seq this page marked read. */
  readSent = 0;
  lastActivity = 0;
  constructor(readonly id: string) {}

  peer(me: string): Member | undefined {
    return this.kind === "direct" ? this.members.find((m) => m.userId !== me) : undefined;
  }

  /** The other user of a direct room who has not accepted its invitation yet. */
  invitedPeer(me: string): { userId: string; username: string } | undefined {
    return this.kind === "direct" ? this.invited.find((i) => i.userId !== me) : undefined;
  }

  lastSeq(): number {
    let s = 0;
    for (const m of this.messages) if (m.seq !== undefined && m.seq > s) s = m.seq;
    return s;
  }

  /** The mark of one of my messages. */
  mark(msg: ChatMessage): Mark {
    switch (msg.send) {
      case "sending":
        return "sending";
      case "queued":
        return "queued";
      case "failed":
        return "failed";
      default:
        break;
    }
    const seq = msg.seq ?? Infinity;
    for (const s of this.read.values()) if (s >= seq) return "read";
    for (const s of this.delivered.values()) if (s >= seq) return "delivered";
    return "stored";
  }

  /** Adds or replaces a message, keeping seq order (unsent ones last). */
  put(msg: ChatMessage): void {
    const old = this.byKey.get(msg.key);
    if (old) {
      Object.assign(old, msg, { version: old.version + 1 });
      this.sort();
      return;
    }
    if (msg.system && msg.seq === undefined && msg.after === undefined) msg.after = this.lastSeq();
    this.byKey.set(msg.key, msg);
    this.messages.push(msg);
    this.sort();
    if (msg.at > this.lastActivity) this.lastActivity = msg.at;
  }

  remove(key: string): void {
    if (!this.byKey.delete(key)) return;
    this.messages = this.messages.filter((m) => m.key !== key);
  }

  private sort(): void {
    this.messages.sort((a, b) => {
      const sa = place(a);
      const sb = place(b);
      return sa !== sb ? sa - sb : a.at - b.at;
    });
  }

  update(summary: RoomSummary): void {
    this.name = summary.name ?? "";
    this.kind = summary.kind;
    this.members = (summary.members ?? []).map((m) => ({
      userId: m.user_id,
      username: m.username,
      role: m.role,
    }));
    this.invited = (summary.invited ?? []).map((i) => ({ userId: i.user_id, username: i.username }));
    this.unread = summary.unread ?? 0;
  }
}

/** Where a message sorts: its seq; a line from the app just after the seq it followed; unsent ones last. */
function place(m: ChatMessage): number {
  if (m.seq !== undefined) return m.seq;
  if (m.after !== undefined) return m.after + 0.5;
  return Number.MAX_SAFE_INTEGER;
}

export type Topic = "rooms" | "room" | "connection" | "alerts" | "typing" | "presence" | "me" | "invitations";

/** An invitation to this user, as the room list shows it. */
export interface PendingInvitation {
  id: string;
  roomId: string;
  roomName: string;
  direct: boolean;
  inviter: string;
}

export class ChatState {
  rooms = new Map<string, RoomState>();
  users = new Map<string, string>();
  presence = new Map<string, boolean>();
  /** Users whose identity key changed and was not accepted yet. */
  alerts = new Set<string>();
  connection = "connecting";
  current: string | null = null;
  /** Invitations to rooms this user is not in yet (accept or decline in the room list). */
  invitations: PendingInvitation[] = [];
  private listeners = new Map<Topic, Set<(roomId?: string) => void>>();

  constructor(
    readonly me: string,
    readonly myName: string,
    readonly deviceId: string,
  ) {
    this.users.set(me, myName);
  }

  on(topic: Topic, fn: (roomId?: string) => void): () => void {
    let set = this.listeners.get(topic);
    if (!set) this.listeners.set(topic, (set = new Set()));
    set.add(fn);
    return () => set?.delete(fn);
  }

  changed(topic: Topic, roomId?: string): void {
    for (const fn of this.listeners.get(topic) ?? []) fn(roomId);
  }

  room(id: string): RoomState {
    let r = this.rooms.get(id);
    if (!r) this.rooms.set(id, (r = new RoomState(id)));
    return r;
  }

  nameOf(userId: string): string {
    return this.users.get(userId) ?? `user-${userId.slice(0, 8)}`;
  }

  title(room: RoomState): string {
    if (room.kind === "direct") {
      const peer = room.peer(this.me) ?? room.invitedPeer(this.me);
      return peer ? peer.username : room.name || "(direct)";
    }
    return room.name || "(unnamed group)";
  }

  /** Rooms, most recently active first. */
  ordered(): RoomState[] {
    return [...this.rooms.values()].sort((a, b) => b.lastActivity - a.lastActivity || this.title(a).localeCompare(this.title(b)));
  }

  /** Alerted users who are in this room. */
  roomAlerts(room: RoomState): string[] {
    return room.members.map((m) => m.userId).filter((u) => this.alerts.has(u));
  }
}
