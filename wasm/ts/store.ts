// The session's local state behind one interface (`KeyStore`): IndexedDB in
// browsers, memory for tests. What is kept, and why (as the native SDK's store):
// - the account: the store key wrapped under the store passphrase (`StoreVault`,
//   Argon2id + AES-256-GCM) and this device's secrets as a key backup blob under
//   the store key: private keys are never stored in the clear;
// - local history: every opened or sent message sealed under the store key
//   (bound to its room and seq);
// - identity pins (trust on first use, verified marks);
// - per-room cursors (the last `seq` handled), so a reload resumes, not replays;
// - the outbox: sealed envelopes (ciphertext) not yet acknowledged, re-posted
//   under the same `client_id` after a reload (the relay stores a `client_id` once);
// - the `(sender, client id)` pairs already delivered, so a replay is not shown twice.

import type { FeedChanges, RoomRecord } from "./sotto_wasm.js";
import type { Uuid } from "./sotto_wasm.js";

/** Argon2id parameters of the stored key backup. */
export interface Argon2Params {
  mCostKib: number;
  tCost: number;
  pCost: number;
}

/** The smallest parameters the core accepts (tests and memory-only stores). */
export const TEST_ARGON2: Argon2Params = { mCostKib: 8192, tCost: 1, pCost: 1 };

export interface StoredAccount {
  /** The relay's base URL. */
  relay: string;
  userId: Uuid;
  deviceId: Uuid;
  /**
   * This device's secrets: a key backup blob under the store key
   * (`StoreVault.exportDevice`) when `storeKey` is set, else under the store
   * passphrase (`Device.exportPassphraseBackup`; a store from before the store
   * key, upgraded on unlock).
   */
  backup: Uint8Array;
  /** The store key wrapped under the store passphrase (`StoreVault.wrap`). */
  storeKey?: Uint8Array;
}

/** One sealed local history item (`StoreVault.sealHistory`) at its place. */
export interface SealedHistory {
  roomId: Uuid;
  seq: number;
  sealed: Uint8Array;
}

/** A user's identity key as this device trusts it. */
export interface Pin {
  key: Uint8Array;
  verified: boolean;
}

/** A sealed message waiting for the relay's acknowledgement. */
export interface OutboxEntry {
  clientId: Uuid;
  roomId: Uuid;
  /** The sealed envelope (ciphertext only). */
  envelope: Uint8Array;
  /** A control message (a membership statement): its post is never announced as `sent`, after a reload too. */
  control?: boolean;
}

/**
 * `new`: first time; `again`: the same relay message redelivered (show it);
 * `replay`: the same sender message id at another place (refuse it).
 */
export type Seen = "new" | "again" | "replay";

/** Local persistence of a session. */
export interface KeyStore {
  /**
   * Argon2id parameters for the stored key backup. Left undefined (the core's
   * defaults: 64 MiB, t=3, p=1) by every persistent store; only memory stores
   * for tests set cheaper ones.
   */
  readonly backupParams?: Argon2Params | undefined;
  account(): Promise<StoredAccount | null>;
  /** Whether the store holds this device's keys (a prompt can say "unlock" rather than "create"). */
  hasDevice(): Promise<boolean>;
  setAccount(account: StoredAccount): Promise<void>;
  pins(): Promise<Map<Uuid, Pin>>;
  setPin(userId: Uuid, pin: Pin): Promise<void>;
  /**
   * Keeps a first-contact pin only if the user has none yet (another tab of
   * this device may have pinned them first): false when a pin was there.
   */
  addPin(userId: Uuid, pin: Pin): Promise<boolean>;
  cursors(): Promise<Map<Uuid, number>>;
  /**
   * Applies what one step of the engine's feed decided (a `store` output of `ClientLink.poll`),
   * all or none, in one transaction: cursors move forward (never back), seen
   * message ids are recorded (a known one keeps its first place), history items
   * are kept, then deleted ones dropped.
   */
  apply(changes: FeedChanges): Promise<void>;
  /** Where `(sender, clientId)` was first delivered, if it was (`apply` records it). */
  seenAt(sender: Uuid, clientId: Uuid): Promise<{ roomId: Uuid; seq: number } | null>;
  outboxPush(entry: OutboxEntry): Promise<void>;
  outboxRemove(clientId: Uuid): Promise<void>;
  /** Every message still waiting, oldest first. */
  outbox(): Promise<OutboxEntry[]>;
  /**
   * Whether the message `clientId` is still waiting (a flush checks each entry
   * before posting it). Optional: without it, the client reads the whole outbox.
   */
  outboxHas?(clientId: Uuid): Promise<boolean>;
  /**
   * The engine's room membership records (`RoomMembership`), or `null` if this
   * store never kept them (a store from before signed membership).
   */
  rooms(): Promise<Array<[Uuid, RoomRecord]> | null>;
  /** Saves the engine's changed records in one transaction (`null`: delete). */
  saveRooms(changes: Array<[Uuid, RoomRecord | null]>): Promise<void>;
  /** Keeps sealed history items (replacing one at the same place), in one transaction. */
  historyPut(items: SealedHistory[]): Promise<void>;
  /** Up to `limit` items of a room with `seq < before` (all when undefined), newest first. */
  historyPage(roomId: Uuid, before: number | undefined, limit: number): Promise<SealedHistory[]>;
  /** Releases the store (closes the database). */
  close(): void;
}

/** A store in memory: for tests and throw-away sessions (nothing survives a reload). */
export class MemoryStore implements KeyStore {
  readonly backupParams: Argon2Params | undefined;
  private acct: StoredAccount | null = null;
  private readonly pinMap = new Map<Uuid, Pin>();
  private readonly cursorMap = new Map<Uuid, number>();
  private readonly seen = new Map<string, { roomId: Uuid; seq: number }>();
  private readonly out = new Map<Uuid, OutboxEntry>();
  private roomMap: Map<Uuid, RoomRecord> | null = null;
  private readonly hist = new Map<Uuid, Map<number, Uint8Array>>();

  /** `backupParams` defaults to the core's minimum ({@link TEST_ARGON2}): the blob never leaves memory. */
  constructor(options: { backupParams?: Argon2Params | null } = {}) {
    this.backupParams = options.backupParams === null ? undefined : (options.backupParams ?? TEST_ARGON2);
  }

  async account(): Promise<StoredAccount | null> {
    if (this.acct === null) return null;
    const a: StoredAccount = { ...this.acct, backup: this.acct.backup.slice() };
    if (this.acct.storeKey !== undefined) a.storeKey = this.acct.storeKey.slice();
    return a;
  }
  async hasDevice(): Promise<boolean> {
    return this.acct !== null;
  }
  async setAccount(a: StoredAccount): Promise<void> {
    this.acct = { ...a, backup: a.backup.slice() };
    if (a.storeKey !== undefined) this.acct.storeKey = a.storeKey.slice();
  }
  async pins(): Promise<Map<Uuid, Pin>> {
    return new Map([...this.pinMap].map(([u, p]) => [u, { key: p.key.slice(), verified: p.verified }]));
  }
  async setPin(userId: Uuid, pin: Pin): Promise<void> {
    this.pinMap.set(userId, { key: pin.key.slice(), verified: pin.verified });
  }
  async addPin(userId: Uuid, pin: Pin): Promise<boolean> {
    if (this.pinMap.has(userId)) return false;
    await this.setPin(userId, pin);
    return true;
  }
  async cursors(): Promise<Map<Uuid, number>> {
    return new Map(this.cursorMap);
  }
  async apply(c: FeedChanges): Promise<void> {
    // All or none: everything is checked before anything changes.
    const places = [...c.cursors, ...c.seen, ...c.historyPut, ...c.historyDelete];
    if (!places.every((p) => typeof p.roomId === "string" && Number.isSafeInteger(p.seq) && p.seq >= 0)) {
      throw new Error("invalid place in a store step");
    }
    for (const { roomId, seq } of c.cursors) this.cursorMap.set(roomId, Math.max(this.cursorMap.get(roomId) ?? 0, seq));
    for (const { sender, clientId, roomId, seq } of c.seen) {
      const k = `${sender}/${clientId}`;
      if (!this.seen.has(k)) this.seen.set(k, { roomId, seq });
    }
    await this.historyPut(c.historyPut);
    for (const { roomId, seq } of c.historyDelete) this.hist.get(roomId)?.delete(seq);
  }
  async seenAt(sender: Uuid, clientId: Uuid): Promise<{ roomId: Uuid; seq: number } | null> {
    const at = this.seen.get(`${sender}/${clientId}`);
    return at === undefined ? null : { ...at };
  }
  async outboxPush(e: OutboxEntry): Promise<void> {
    if (!this.out.has(e.clientId)) this.out.set(e.clientId, { ...e, envelope: e.envelope.slice(), control: e.control === true });
  }
  async outboxRemove(clientId: Uuid): Promise<void> {
    this.out.delete(clientId);
  }
  async outbox(): Promise<OutboxEntry[]> {
    return [...this.out.values()].map((e) => ({ ...e, envelope: e.envelope.slice() }));
  }
  async outboxHas(clientId: Uuid): Promise<boolean> {
    return this.out.has(clientId);
  }
  async rooms(): Promise<Array<[Uuid, RoomRecord]> | null> {
    return this.roomMap === null ? null : [...this.roomMap].map(([id, r]) => [id, r.slice()]);
  }
  async saveRooms(changes: Array<[Uuid, RoomRecord | null]>): Promise<void> {
    const map = this.roomMap ?? new Map<Uuid, RoomRecord>();
    for (const [id, r] of changes) {
      if (r === null) map.delete(id);
      else map.set(id, r.slice());
    }
    this.roomMap = map;
  }
  async historyPut(items: SealedHistory[]): Promise<void> {
    for (const h of items) {
      let room = this.hist.get(h.roomId);
      if (!room) {
        room = new Map();
        this.hist.set(h.roomId, room);
      }
      room.set(h.seq, h.sealed.slice());
    }
  }
  async historyPage(roomId: Uuid, before: number | undefined, limit: number): Promise<SealedHistory[]> {
    const room = this.hist.get(roomId);
    if (!room) return [];
    return [...room.keys()]
      .filter((s) => before === undefined || s < before)
      .sort((a, b) => b - a)
      .slice(0, Math.max(0, limit))
      .map((seq) => ({ roomId, seq, sealed: (room.get(seq) as Uint8Array).slice() }));
  }
  close(): void {}
}

// ---- IndexedDB ------------------------------------------------------------------

const DB_VERSION = 3;
const ACCOUNT = "account";
const PINS = "pins";
const CURSORS = "cursors";
const SEEN = "seen";
const OUTBOX = "outbox";
const ROOMS = "rooms";
/** Keyed by `[roomId, seq]` (version 3). */
const HISTORY = "history";

function req<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error ?? new Error("IndexedDB request failed"));
  });
}

function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error ?? new Error("IndexedDB transaction failed"));
    tx.onabort = () => reject(tx.error ?? new Error("IndexedDB transaction aborted"));
  });
}

function dbName(name: string): string {
  return `sotto:${name}`;
}

/**
 * The browser store: one IndexedDB database per account name
 * (`sotto:<name>`). Keys are kept only as the passphrase backup blob, under the
 * core's default Argon2id parameters.
 */
export class IndexedDbStore implements KeyStore {
  readonly backupParams: undefined = undefined;
  private outboxSeq = 0;

  private constructor(private readonly db: IDBDatabase) {}

  /** Opens (creating if needed) the store named `name` (e.g. the username). */
  static async open(name: string, factory: IDBFactory = globalThis.indexedDB): Promise<IndexedDbStore> {
    if (factory === undefined) throw new Error("IndexedDB is not available here");
    const r = factory.open(dbName(name), DB_VERSION);
    r.onupgradeneeded = () => {
      const db = r.result;
      for (const s of [ACCOUNT, PINS, CURSORS, SEEN, ROOMS]) {
        if (!db.objectStoreNames.contains(s)) db.createObjectStore(s);
      }
      if (!db.objectStoreNames.contains(OUTBOX)) db.createObjectStore(OUTBOX, { keyPath: "clientId" });
      if (!db.objectStoreNames.contains(HISTORY)) db.createObjectStore(HISTORY, { keyPath: ["roomId", "seq"] });
    };
    return new IndexedDbStore(await req(r));
  }

  /** Deletes the store named `name` (this browser forgets the account and its keys). */
  static async destroy(name: string, factory: IDBFactory = globalThis.indexedDB): Promise<void> {
    await req(factory.deleteDatabase(dbName(name)));
  }

  private async get<T>(store: string, key: IDBValidKey): Promise<T | undefined> {
    const tx = this.db.transaction(store, "readonly");
    return (await req(tx.objectStore(store).get(key))) as T | undefined;
  }

  private async put(store: string, value: unknown, key?: IDBValidKey): Promise<void> {
    const tx = this.db.transaction(store, "readwrite");
    tx.objectStore(store).put(value, key);
    await done(tx);
  }

  private async entries<T>(store: string): Promise<Array<[IDBValidKey, T]>> {
    const tx = this.db.transaction(store, "readonly");
    const s = tx.objectStore(store);
    const [keys, values] = await Promise.all([req(s.getAllKeys()), req(s.getAll())]);
    return keys.map((k, i) => [k, values[i] as T]);
  }

  async account(): Promise<StoredAccount | null> {
    return (await this.get<StoredAccount>(ACCOUNT, "account")) ?? null;
  }
  async hasDevice(): Promise<boolean> {
    return (await this.account()) !== null;
  }
  async setAccount(a: StoredAccount): Promise<void> {
    const row: StoredAccount = { relay: a.relay, userId: a.userId, deviceId: a.deviceId, backup: a.backup };
    if (a.storeKey !== undefined) row.storeKey = a.storeKey;
    await this.put(ACCOUNT, row, "account");
  }
  async pins(): Promise<Map<Uuid, Pin>> {
    return new Map((await this.entries<Pin>(PINS)).map(([k, v]) => [String(k), v]));
  }
  async setPin(userId: Uuid, pin: Pin): Promise<void> {
    await this.put(PINS, { key: pin.key, verified: pin.verified }, userId);
  }
  async addPin(userId: Uuid, pin: Pin): Promise<boolean> {
    const tx = this.db.transaction(PINS, "readwrite");
    let added = true;
    const a = tx.objectStore(PINS).add({ key: pin.key, verified: pin.verified }, userId);
    a.onerror = (ev) => {
      // A pin is there already (ConstraintError): keep it.
      added = false;
      ev.preventDefault();
      ev.stopPropagation();
    };
    await done(tx);
    return added;
  }
  async cursors(): Promise<Map<Uuid, number>> {
    return new Map((await this.entries<number>(CURSORS)).map(([k, v]) => [String(k), v]));
  }
  async apply(c: FeedChanges): Promise<void> {
    if (c.cursors.length + c.seen.length + c.historyPut.length + c.historyDelete.length === 0) return;
    // One transaction, no other await inside it: all or none.
    const tx = this.db.transaction([CURSORS, SEEN, HISTORY], "readwrite");
    const committed = done(tx);
    try {
      const cursors = tx.objectStore(CURSORS);
      for (const { roomId, seq } of c.cursors) {
        if (!Number.isSafeInteger(seq)) throw new Error("invalid cursor");
        const g = cursors.get(roomId);
        g.onsuccess = () => {
          if (!(typeof g.result === "number" && g.result >= seq)) cursors.put(seq, roomId);
        };
      }
      const seen = tx.objectStore(SEEN);
      for (const { sender, clientId, roomId, seq } of c.seen) {
        // `add` keeps the first place; a known id fails only its own request.
        const a = seen.add({ roomId, seq }, `${sender}/${clientId}`);
        a.onerror = (ev) => {
          ev.preventDefault();
          ev.stopPropagation();
        };
      }
      const history = tx.objectStore(HISTORY);
      for (const h of c.historyPut) history.put({ roomId: h.roomId, seq: h.seq, sealed: h.sealed });
      for (const { roomId, seq } of c.historyDelete) history.delete([roomId, seq]);
    } catch (e) {
      // A request that throws does not abort the transaction by itself.
      tx.abort();
      await committed.catch(() => undefined);
      throw e;
    }
    await committed;
  }
  async seenAt(sender: Uuid, clientId: Uuid): Promise<{ roomId: Uuid; seq: number } | null> {
    const at = await this.get<{ roomId: Uuid; seq: number }>(SEEN, `${sender}/${clientId}`);
    return at === undefined ? null : { roomId: at.roomId, seq: at.seq };
  }
  async outboxPush(e: OutboxEntry): Promise<void> {
    const tx = this.db.transaction(OUTBOX, "readwrite");
    const s = tx.objectStore(OUTBOX);
    const n = Date.now() * 1000 + (this.outboxSeq++ % 1000);
    const g = s.get(e.clientId);
    g.onsuccess = () => {
      if (g.result === undefined) s.put({ n, clientId: e.clientId, roomId: e.roomId, envelope: e.envelope, control: e.control === true });
    };
    await done(tx);
  }
  async outboxRemove(clientId: Uuid): Promise<void> {
    const tx = this.db.transaction(OUTBOX, "readwrite");
    tx.objectStore(OUTBOX).delete(clientId);
    await done(tx);
  }
  async outboxHas(clientId: Uuid): Promise<boolean> {
    return (await this.get<OutboxEntry>(OUTBOX, clientId)) !== undefined;
  }
  async outbox(): Promise<OutboxEntry[]> {
    const rows = (await this.entries<OutboxEntry & { n: number }>(OUTBOX)).map(([, v]) => v);
    rows.sort((a, b) => a.n - b.n);
    return rows.map((r) => ({ clientId: r.clientId, roomId: r.roomId, envelope: r.envelope, control: r.control === true }));
  }
  async rooms(): Promise<Array<[Uuid, RoomRecord]> | null> {
    if ((await this.get<boolean>(ACCOUNT, "roomsKept")) !== true) return null;
    return (await this.entries<RoomRecord>(ROOMS)).map(([k, v]) => [String(k), v]);
  }
  async saveRooms(changes: Array<[Uuid, RoomRecord | null]>): Promise<void> {
    const tx = this.db.transaction([ROOMS, ACCOUNT], "readwrite");
    const s = tx.objectStore(ROOMS);
    for (const [id, r] of changes) {
      if (r === null) s.delete(id);
      else s.put(r, id);
    }
    tx.objectStore(ACCOUNT).put(true, "roomsKept");
    await done(tx);
  }
  async historyPut(items: SealedHistory[]): Promise<void> {
    if (items.length === 0) return;
    const tx = this.db.transaction(HISTORY, "readwrite");
    const s = tx.objectStore(HISTORY);
    for (const h of items) s.put({ roomId: h.roomId, seq: h.seq, sealed: h.sealed });
    await done(tx);
  }
  async historyPage(roomId: Uuid, before: number | undefined, limit: number): Promise<SealedHistory[]> {
    const out: SealedHistory[] = [];
    if (!(limit > 0) || (before !== undefined && !(before > 0))) return out;
    const tx = this.db.transaction(HISTORY, "readonly");
    const range = IDBKeyRange.bound([roomId, 0], [roomId, before ?? Number.MAX_SAFE_INTEGER], false, true);
    const cursor = tx.objectStore(HISTORY).openCursor(range, "prev");
    await new Promise<void>((resolve, reject) => {
      cursor.onsuccess = () => {
        const c = cursor.result;
        if (c === null || out.length >= limit) return resolve();
        const v = c.value as SealedHistory;
        out.push({ roomId: v.roomId, seq: v.seq, sealed: v.sealed });
        c.continue();
      };
      cursor.onerror = () => reject(cursor.error ?? new Error("IndexedDB cursor failed"));
    });
    return out;
  }
  close(): void {
    this.db.close();
  }
}
