// `Session`: one device of one account, doing the encryption for the app: key
// setup and storage, trust (TOFU pins, identity changes), sealing to every
// device of every member, opening and de-duplicating what arrives, the outbox,
// and the live connection (sync.ts). Mirrors the native SDK's
// core/client/src/session.rs.

import {
  ClientAddressing,
  ClientFlush,
  ClientOpening,
  ClientOutbox,
  ClientPosting,
  ClientRoomOp,
  ClientSetUp,
  ClientPins,
  Device,
  RoomMembership,
  safetyNumber as wasmSafetyNumber,
  storedBefore as wasmStoredBefore,
  StoreVault,
} from "./sotto_wasm.js";
import type { AddressNeed, AddressPurpose, DeviceQuery, HistoryItem, LinkIncoming, OpenStep, RoomOpRequest, ServedDevice, SetupStep } from "./sotto_wasm.js";
import { ClientCodes, SottoError, codeOf, toSottoError } from "./errors.js";
import type {
  ConnectionState,
  Content,
  ReceivedMessage,
  Sent,
  SessionEventMap,
} from "./events.js";
import { encodeContent } from "./events.js";
import { decryptResponse, encryptBlob } from "./files.js";
import type { Relay } from "./relay.js";
import type { KeyStore, Seen } from "./store.js";
import { Sync } from "./sync.js";
import { Tabs } from "./tabs.js";
import { POLICY } from "./wire.gen.js";
import type { WebSocketConstructor } from "./sync.js";
import type {
  AttachmentPointer,
  Contact,
  Invitation,
  RelayDevice,
  PublicUser,
  RoomChange,
  RoomDetails,
  RoomKind,
  User,
  Uuid,
} from "./sotto_wasm.js";
import { fromB64, fromUtf8, toB64, utf8, uuidv7 } from "./codec.js";

/** How long a send over the socket waits for the relay's `ack` before posting over HTTP. */

export type RsaBits = 2048 | 3072 | 4096;

export interface SessionOptions {
  relay: Relay;
  store: KeyStore;
  /** Unlocks (and, the first time, protects) this device's keys in the store. */
  passphrase: string;
  /**
   * How to set this device up when the store has no keys (the native SDK's
   * `DeviceSetup`). `"auto"` (default): the account's first device: create an
   * identity and device keys and publish the bundle. `{ linkBackup, ... }`:
   * another device of the account: the identity from a key backup of any of
   * its devices (`exportBackup` / `exportRecoveryBackup`), new device keys.
   * `{ restoreBackup, ... }`: this very device (same id and keys) from its
   * backup, e.g. in a new browser profile. The backup opens with
   * `backupPassphrase` or `recoveryKey`.
   */
  setup?: DeviceSetup;
  /** Also publish an RSA-OAEP key (others then wrap for this device with RSA). */
  rsaBits?: RsaBits;
  /** A name for this device in device lists (e.g. "Firefox on laptop"). */
  deviceName?: string;
  /** The WebSocket constructor (default: the global `WebSocket`; in Node < 22 pass e.g. `ws`'s). */
  webSocket?: WebSocketConstructor;
  /**
   * Share this device with the other tabs of this browser (default: true where
   * Web Locks and BroadcastChannel exist): one tab leads and holds the
   * connection, the others follow it (`connection` state `following`), hear
   * its events and hand it their sends (see `tabs.ts`).
   */
  tabs?: boolean;
}

/** The secret that opens a key backup: its passphrase, or its recovery key. */
export type BackupSecret = { backupPassphrase: string } | { recoveryKey: string };

/** See {@link SessionOptions.setup}. */
export type DeviceSetup =
  | "auto"
  | ({ linkBackup: Uint8Array } & BackupSecret)
  | ({ restoreBackup: Uint8Array } & BackupSecret);

function openBackup(blob: Uint8Array, secret: BackupSecret): Device {
  return "recoveryKey" in secret
    ? Device.importRecoveryBackup(blob, secret.recoveryKey)
    : Device.importPassphraseBackup(blob, secret.backupPassphrase);
}

export interface RoomInviteeSummary {
  user_id: Uuid;
  username: string;
  display_name: string | null;
}

export interface RoomMemberSummary {
  user_id: Uuid;
  username: string;
  display_name: string | null;
  role: "owner" | "member";
}

export interface RoomSummary {
  id: Uuid;
  name: string;
  kind: RoomKind;
  members: RoomMemberSummary[];
  /** Users invited who have not answered yet (not members: nothing is sealed for them). */
  invited: RoomInviteeSummary[];
  unread: number;
  /** The room's last `seq`. */
  lastSeq: number;
}

export interface SafetyNumber {
  /** The digits to compare. */
  digits: string;
  /** The digits grouped for display. */
  display: string;
  /** For a QR code. */
  qrPayload: Uint8Array;
  /** Whether this key was marked verified. */
  verified: boolean;
}

export type Trust = "unverified" | "verified" | "changed" | "unknown";

/** A verified peer device, and what the relay says of it (the engine's). */
type Target = ServedDevice;

/** Whether the relay's RFC 3339 UTC timestamp `storedAt` is before `revokedAt` (the engine's comparison). */
export const storedBefore = (storedAt: string, revokedAt: string): boolean => wasmStoredBefore(storedAt, revokedAt);

function summary(d: RoomDetails): RoomSummary {
  return {
    id: d.id,
    name: d.name,
    kind: d.kind,
    members: d.members.map((m) => ({
      user_id: m.user_id,
      username: m.username,
      display_name: m.display_name,
      role: m.is_owner ? "owner" : "member",
    })),
    invited: (d.invited ?? []).map((i) => ({
      user_id: i.user_id,
      username: i.username,
      display_name: i.display_name,
    })),
    unread: d.unread,
    lastSeq: d.last_seq,
  };
}

/**
 * One device of one account. The app speaks plaintext, users and rooms; it
 * never sees an envelope. Events are `CustomEvent`s (see {@link SessionEventMap}).
 */
export class Session extends EventTarget {
  /** @internal */ readonly relay: Relay;
  /** @internal */ readonly store: KeyStore;
  private readonly user: User;
  private device: Device | null;
  /** The store key: local history is sealed under it. */
  private vault: StoreVault | null;
  /** Trust on first use, decided by the engine (`ClientPins`, the native SDK's code). */
  private pins: ClientPins;
  private readonly sync: Sync;
  /** Verified devices per user (revoked ones too: to verify old messages). */
  /**
   * Room membership as the engine decides it (`docs/protocol.md` §12.4): the
   * records kept in the store, and the relay's view of each room while the
   * live stream keeps it right.
   */
  private membership: RoomMembership;
  /** The other tabs of this device (null: alone, or no Web Locks here). */
  private readonly tabs: Tabs | null;
  /** The engine's outbox: single-flight posting, control messages, the verdict on each answer. */
  private readonly outbox = new ClientOutbox();
  /** Posts in flight by client id, to join (the engine says who posts). */
  private readonly posting = new Map<Uuid, Promise<Sent | null>>();
  private loggedOutSent = false;
  private closed = false;
  private readonly onRelayLoggedOut = () => this.loggedOut();

  private constructor(
    opts: SessionOptions,
    user: User,
    device: Device,
    vault: StoreVault,
    pins: ClientPins,
    membership: RoomMembership,
  ) {
    super();
    this.vault = vault;
    this.relay = opts.relay;
    this.store = opts.store;
    this.user = user;
    this.device = device;
    this.pins = pins;
    this.membership = membership;
    const WS = opts.webSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    this.sync = new Sync(
      this,
      WS ??
        class {
          constructor() {
            throw new SottoError(ClientCodes.network, "no WebSocket here: pass options.webSocket");
          }
        } as unknown as WebSocketConstructor,
    );
    this.relay.addEventListener("loggedout", this.onRelayLoggedOut);
    this.tabs =
      opts.tabs !== false && Tabs.available()
        ? new Tabs(
            `sotto:${this.relay.baseUrl}:${device.deviceId}`,
            (method, args) => this.serveTab(method, args),
            (type, detail) => this.followTab(type, detail),
          )
        : null;
  }

  /**
   * Opens the session of the relay's logged-in user on this device: unlocks
   * the keys from the store, or sets the device up (see {@link SessionOptions.setup}),
   * keeps its keys in the store (a key backup blob under the store key, which
   * the passphrase wraps) and uploads its signed bundle.
   */
  static async open(opts: SessionOptions): Promise<Session> {
    const { relay, store, passphrase } = opts;
    const user = await relay.me();
    const acct = await store.account();
    const setup = opts.setup ?? "auto";
    const keyOptions = opts.rsaBits === undefined ? undefined : { rsaBits: opts.rsaBits };
    // The engine decides the order and the checks (`ClientSetUp`, the native SDK's code).
    const s = new ClientSetUp(user.id, acct?.userId, setup === "auto" ? "new" : "restoreBackup" in setup ? "restore" : "link");
    let device: Device | null = null;
    let opened: Device | null = null;
    let vault: StoreVault | null = null;
    try {
      for (;;) {
        const n = s.step();
        if (n.kind === "unlock" && acct !== null) {
          // (A store from before the store key comes back upgraded, to save.)
          const u = StoreVault.unlockAccount(acct.storeKey, acct.backup, passphrase, store.backupParams);
          [vault, device] = [u.vault, u.device];
          if (u.upgraded !== undefined) await store.setAccount({ ...acct, ...u.upgraded });
          s.unlocked(device.deviceId);
        } else if (n.kind === "ownDevices") s.ownDevices(await relay.devices({ includeRevoked: true }));
        else if (n.kind === "generate") {
          device = Device.generate(user.id, uuidv7(), keyOptions);
          s.generated(device.deviceId);
        } else if (n.kind === "openBackup" && setup !== "auto") {
          opened = openBackup("restoreBackup" in setup ? setup.restoreBackup : setup.linkBackup, setup);
          s.backupOpened(opened.userId, opened.deviceId);
        } else if (n.kind === "newDeviceKeys" && opened !== null) {
          device = opened.withNewDeviceKeys(uuidv7(), keyOptions);
          s.generated(device.deviceId);
        } else if (n.kind === "saveAccount") {
          // (Restore: this very device, from its backup.)
          if (device === null) [device, opened] = [opened, null];
          if (device === null) throw new SottoError(ClientCodes.protocol, "no keys to keep");
          vault?.free();
          vault = StoreVault.generate();
          const backup = vault.exportDevice(device);
          const storeKey = wrapKey(vault, store, passphrase);
          await store.setAccount({ relay: relay.baseUrl, userId: user.id, deviceId: device.deviceId, backup, storeKey });
          s.saved();
        } else if (n.kind === "upload" && device !== null) {
          await upload(relay, device, opts.deviceName);
          s.uploaded();
        } else if (n.kind === "done") break;
        else if (n.kind === "failed") throw setupFailed(n);
        else throw new SottoError(ClientCodes.protocol, `the session set-up went out of order (${n.kind})`);
      }
    } catch (e) {
      device?.free();
      vault?.free();
      throw toSottoError(e);
    } finally {
      opened?.free();
      s.free();
    }
    if (device === null || vault === null) throw new SottoError(ClientCodes.protocol, "the store key was not set up");

    let pins: ClientPins;
    try {
      // (The engine pins this user's own key, verified, itself.)
      pins = new ClientPins(user.id, device.identityKey, [...(await store.pins())]);
    } catch (e) {
      device.free();
      vault.free();
      throw toSottoError(e);
    }
    let membership: RoomMembership;
    try {
      // (A store from before signed membership: the rooms this device knew
      // are adopted as legacy rooms, saved at once.)
      membership = new RoomMembership(user.id, await store.rooms(), [...(await store.cursors()).keys()]);
      await store.saveRooms(membership.takeChanges());
    } catch (e) {
      device.free();
      vault.free();
      throw toSottoError(e);
    }
    return new Session(opts, user, device, vault, pins, membership);
  }

  override addEventListener<K extends keyof SessionEventMap>(
    type: K,
    listener: (ev: SessionEventMap[K]) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  override addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  override addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | ((ev: CustomEvent) => void) | null,
    options?: boolean | AddEventListenerOptions,
  ): void {
    super.addEventListener(type, listener as EventListenerOrEventListenerObject | null, options);
  }

  override removeEventListener<K extends keyof SessionEventMap>(
    type: K,
    listener: (ev: SessionEventMap[K]) => void,
    options?: boolean | EventListenerOptions,
  ): void;
  override removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void;
  override removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | ((ev: CustomEvent) => void) | null,
    options?: boolean | EventListenerOptions,
  ): void {
    super.removeEventListener(type, listener as EventListenerOrEventListenerObject | null, options);
  }

  /** @internal */
  emit<K extends keyof SessionEventMap>(type: K, detail: SessionEventMap[K]["detail"]): void {
    if (this.closed) return;
    this.dispatchEvent(new CustomEvent(type, { detail }));
    // Each tab has its own login: the leader's logout is not the others'.
    if (type !== "loggedout") this.tabs?.broadcast(type, detail);
  }

  // ---- tabs (tabs.ts) ---------------------------------------------------------------

  /** The methods a following tab hands to the leading one (they change shared state). */
  private static readonly FORWARDED = new Set([
    "send",
    "createRoom",
    "directRoom",
    "invite",
    "removeMember",
    "acceptInvitation",
    "markRead",
    "setTyping",
    "markVerified",
    "acceptIdentity",
  ]);

  /** Runs a following tab's call in this (leading) tab. */
  private serveTab(method: string, args: unknown[]): Promise<unknown> {
    if (!Session.FORWARDED.has(method)) return Promise.reject(new SottoError("invalid_argument", `not forwarded: ${method}`));
    const f = (this as unknown as Record<string, (...a: unknown[]) => unknown>)[method];
    if (typeof f !== "function") return Promise.reject(new SottoError("invalid_argument", `no method ${method}`));
    return Promise.resolve(f.apply(this, args));
  }

  /**
   * An event the leading tab emitted: shown here too, and this tab's caches
   * follow it (devices and rooms refetched on next use, pins reloaded, a
   * changed identity remembered for `trust`).
   */
  private followTab(type: string, detail: unknown): void {
    if (this.closed) return;
    const d = detail as { userId?: Uuid; roomId?: Uuid };
    if (type === "identitychanged" && d.userId !== undefined) this.pins.changedElsewhere(d.userId);
    if ((type === "identitychanged" || type === "deviceschanged") && d.userId !== undefined) {
      this.forgetDevices(d.userId);
      void this.reloadPins().catch(() => undefined);
    }
    if (type === "room" && d.roomId !== undefined) this.forgetRoom(d.roomId);
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }



  /** Whether `method` goes to the leading tab; its answer if so. */
  private async viaLeader(method: string, args: unknown[]): Promise<{ value: unknown } | null> {
    if (this.tabs === null || !(await this.tabs.otherLeads())) return null;
    const value = await this.tabs.call(method, args);
    if (method === "markVerified" || method === "acceptIdentity") await this.reloadPins();
    return { value };
  }

  /** The engine's pins and membership records again from the store (another tab changed them). */
  private async reloadState(): Promise<void> {
    // Cached devices and room views may be stale too: fetched again on use.
    this.forgetAllCaches();
    // This tab's records are older than the store's: nothing of them is saved.
    this.membership.takeChanges();
    await this.reloadPins();
    // In place: view fetches under way are overtaken, not taken as current.
    this.membership.reload((await this.store.rooms()) ?? []);
  }

  /** The engine's pins again from the store (keeping what it reported and who is changed). */
  private async reloadPins(): Promise<void> {
    const stored = await this.store.pins();
    this.pins.reload(this.user.id, this.dev().identityKey, [...stored]);
  }

  /** @internal The relay ended the session: stop, and say so once. */
  loggedOut(): void {
    this.sync.stop();
    // Another tab, logged in on its own, may lead.
    this.tabs?.stepDown(this.sync.ended());
    if (this.loggedOutSent) return;
    this.loggedOutSent = true;
    this.emit("loggedout", null);
  }

  get userId(): Uuid {
    return this.user.id;
  }

  get deviceId(): Uuid {
    return this.dev().deviceId;
  }

  get username(): string {
    return this.user.username;
  }

  /** The state of the live connection (`following`: another tab of this device holds it). */
  get connection(): ConnectionState {
    return this.tabs !== null && this.following ? "following" : this.sync.state;
  }

  /** Waiting for the lead while another tab holds the connection. */
  private following = false;

  private dev(): Device {
    if (this.device === null || this.closed) throw new SottoError(ClientCodes.closed, "the session is closed");
    return this.device;
  }

  // ---- live connection ------------------------------------------------------------

  /** Starts the live connection (WebSocket, auth, resume, reconnect with back-off). Idempotent. */
  connect(): void {
    this.dev();
    this.loggedOutSent = false;
    const tabs = this.tabs;
    if (tabs === null) {
      this.sync.start();
      return;
    }
    // One tab of this device leads; this one follows until the lead is free.
    void tabs.otherLeads().then((other) => {
      if (other && !tabs.isLeader && !this.closed) {
        this.following = true;
        this.dispatchEvent(new CustomEvent("connection", { detail: { state: "following" } }));
      }
    });
    tabs.lead(async (stillWanted) => {
      // Another tab may have changed the engine's state while this one followed.
      await this.reloadState();
      if (!stillWanted() || this.closed) return;
      this.following = false;
      this.sync.start();
    });
  }

  /** Stops the live connection (messages not yet acknowledged stay in the outbox); another tab may lead. */
  disconnect(): void {
    this.sync.stop();
    this.following = false;
    // The lead passes on once this tab's last step is stored.
    this.tabs?.stepDown(this.sync.ended());
  }

  /** Disconnects and frees this device's secrets in WASM memory. The session is unusable after. */
  close(): void {
    if (this.closed) return;
    this.sync.stop();
    this.tabs?.close();
    this.relay.removeEventListener("loggedout", this.onRelayLoggedOut);
    this.closed = true;
    this.device?.free();
    this.device = null;
    this.vault?.free();
    this.vault = null;
    this.membership.free();
    this.pins.free();
  }

  // ---- rooms, people ----------------------------------------------------------------

  /** The rooms of this user, with members and unread counts. */
  async rooms(): Promise<RoomSummary[]> {
    const rooms = await this.relay.rooms();
    const details = await Promise.all(rooms.map((r) => this.relay.room(r.id)));
    return details.map(summary);
  }

  /**
   * A group room owned by this user (`docs/protocol.md` §12.4): created empty,
   * then this device signs its first membership statement listing `memberIds`
   * and posts it, and only then asks the relay to add each (members who have
   * this user in their contacts join at once, the others are invited).
   */
  async createRoom(name: string, memberIds: Uuid[]): Promise<RoomSummary> {
    const viaLeader = await this.viaLeader("createRoom", [name, memberIds]);
    if (viaLeader !== null) return viaLeader.value as RoomSummary;
    return summary((await this.roomOp({ kind: "create", members: memberIds }, name)) as RoomDetails);
  }

  /** The direct room with `userId` (existing or new); its peer is pinned to `userId`, not to whoever the relay lists. */
  async directRoom(userId: Uuid): Promise<RoomSummary> {
    const viaLeader = await this.viaLeader("directRoom", [userId]);
    if (viaLeader !== null) return viaLeader.value as RoomSummary;
    return summary((await this.roomOp({ kind: "direct", peer: userId })) as RoomDetails);
  }

  /**
   * Adds a member (room owner only): at once when they have this user in
   * their contacts, else as an invitation they accept or decline. Says which.
   * The statement naming them is posted first, and withdrawn if the relay refuses.
   */
  async invite(roomId: Uuid, userId: Uuid): Promise<"member" | "invited"> {
    const viaLeader = await this.viaLeader("invite", [roomId, userId]);
    if (viaLeader !== null) return viaLeader.value as "member" | "invited";
    const r = (await this.roomOp({ kind: "add", roomId, userId })) as object;
    return "invited_by" in r ? "invited" : "member";
  }

  /**
   * Drives the engine's room operation (`ClientRoomOp`): the relay calls and
   * addressing runs it asks for, in its order, and its warnings. Resolves to
   * the relay's last answer; rejects with the error kept (a refusal, or a
   * failed addressing's, which replaces it).
   */
  private async roomOp(request: RoomOpRequest, name = ""): Promise<unknown> {
    const op = new ClientRoomOp(this.user.id, request);
    let last: unknown = null;
    let error: unknown = new SottoError(ClientCodes.protocol, "the relay's answer does not fit the room operation");
    try {
      for (;;) {
        const n = op.step(this.membership);
        await this.saveMembership();
        if (n.kind === "address") {
          const ok = await this.address(n.roomId, n.purpose).then(
            () => true,
            (e) => ((error = e), false),
          );
          op.addressed(ok);
        } else if (n.kind === "warn") this.emit("membership", n.warning);
        else if (n.kind === "done") return last;
        else if (n.kind === "failed") throw error;
        else {
          const call =
            n.kind === "createRoom"
              ? this.relay.createRoom({ name, member_ids: [] })
              : n.kind === "directRoom"
                ? this.relay.directRoom(n.userId)
                : n.kind === "addMember"
                  ? this.relay.addMember(n.roomId, n.userId)
                  : n.kind === "removeMember"
                    ? this.relay.removeMember(n.roomId, n.userId).then(() => null)
                    : n.kind === "acceptInvitation"
                      ? this.relay.acceptInvitation(n.invitationId)
                      : this.relay.room(n.roomId);
          try {
            last = await call;
          } catch (e) {
            error = e;
            op.refused(this.membership, codeOf(e));
            continue;
          }
          const isRoom = n.kind !== "addMember" && n.kind !== "removeMember";
          op.answered(this.membership, isRoom ? (last as RoomDetails) : null);
        }
      }
    } finally {
      op.free();
    }
  }

  /** This user's pending invitations (to rooms they are not in yet). */
  invitations(): Promise<Invitation[]> {
    return this.relay.invitations();
  }

  /**
   * Removes a member, or withdraws their pending invitation (room owner), or
   * leaves (`userId` this user). The owner then signs and posts the statement
   * without them, whatever the relay answered, so the removal holds even if
   * the relay keeps them listed (as the native SDK's `remove_member`).
   */
  async removeMember(roomId: Uuid, userId: Uuid): Promise<void> {
    const viaLeader = await this.viaLeader("removeMember", [roomId, userId]);
    if (viaLeader !== null) return;
    await this.roomOp({ kind: "remove", roomId, userId });
  }

  /**
   * Accepts an invitation (as `invitations()` lists it, or its id): the room
   * joins this user's rooms (its history starts now). This device gets its
   * messages once the owner's statement names this user; a direct room's peer
   * is pinned to the inviter, so a relay that lists someone else there gets
   * nothing sealed to them.
   */
  async acceptInvitation(invitation: Uuid | Invitation): Promise<RoomSummary> {
    const viaLeader = await this.viaLeader("acceptInvitation", [invitation]);
    if (viaLeader !== null) return viaLeader.value as RoomSummary;
    const i =
      typeof invitation === "string" ? (await this.relay.invitations()).find((x) => x.id === invitation) : invitation;
    if (i === undefined) throw new SottoError("not_found", "no such pending invitation");
    return summary((await this.roomOp({ kind: "accept", invitation: i })) as RoomDetails);
  }

  /** Declines an invitation. */
  declineInvitation(id: Uuid): Promise<void> {
    return this.relay.declineInvitation(id);
  }

  searchUsers(q: string): Promise<PublicUser[]> {
    return this.relay.searchUsers(q);
  }

  contacts(): Promise<Contact[]> {
    return this.relay.contacts();
  }

  addContact(userId: Uuid, nickname?: string): Promise<Contact> {
    return this.relay.addContact(userId, nickname);
  }

  // ---- sending ------------------------------------------------------------------------

  /** Seals `body` for every device of every member and posts it; resolves once the relay stored it. */
  sendText(roomId: Uuid, body: string): Promise<Sent> {
    return this.send(roomId, { type: "text", body });
  }

  /**
   * Seals `content` for every current device of every member of the room
   * (verified against the pinned identity keys; RSA-OAEP for devices that
   * publish an RSA key, X25519 for the others), keeps it in the outbox, and
   * posts it over the socket (HTTP if the socket is down or slow) under one
   * `client_id`. Rejects with `identity_changed` (nothing sent) when a member's
   * identity key changed and was not accepted; with `queued` when the relay
   * cannot be reached (it goes out later; a `sent` event follows).
   */
  async send(roomId: Uuid, content: Content): Promise<Sent> {
    const viaLeader = await this.viaLeader("send", [roomId, content]);
    if (viaLeader !== null) return viaLeader.value as Sent;
    const targets = await this.address(roomId, { kind: "send" });
    return this.sealAndPost(roomId, encodeContent(content), targets, false);
  }

  /**
   * Seals `plaintext` (zeroized after) for `targets` (the engine's
   * `ClientPosting`), keeps it in the outbox and posts it; `control`: a
   * membership statement (no `sent`, not in history).
   */
  private sealAndPost(roomId: Uuid, plaintext: Uint8Array, targets: Target[], control: boolean): Promise<Sent> {
    let p: ClientPosting;
    try {
      // Claimed here: a flush that reads the store joins this post.
      p = ClientPosting.seal(this.outbox, this.dev(), roomId, plaintext, targets, control, uuidv7(), Date.now());
    } catch (e) {
      return Promise.reject(toSottoError(e));
    } finally {
      plaintext.fill(0);
    }
    return this.post(p, true) as Promise<Sent>; // (a push never resolves to null)
  }

  /**
   * Drives one post (the engine's `ClientPosting`, claimed), registered at
   * once so that a flush of the same entry joins it; `push`: keep it in the
   * store's outbox first (a new message). Null: a flushed entry had left the
   * store (sent meanwhile).
   */
  private post(p: ClientPosting, push: boolean): Promise<Sent | null> {
    const clientId = p.entry().clientId;
    const run = (async () => {
      if (push) {
        try {
          await this.store.outboxPush(p.entry());
        } catch (e) {
          p.abandon(this.outbox);
          throw e;
        }
      }
      return this.drivePost(p, clientId);
    })().finally(() => {
      if (this.posting.get(clientId) === run) this.posting.delete(clientId);
      p.free();
    });
    this.posting.set(clientId, run);
    return run;
  }

  /**
   * The socket first, HTTP when the engine says so, the entry out of the store
   * once stored or refused; then history and `sent` for an app message. A
   * store failure does not make a stored message unsent, nor hide a refusal.
   */
  private async drivePost(p: ClientPosting, clientId: Uuid): Promise<Sent | null> {
    const ob = this.outbox;
    let cause: unknown;
    try {
      for (;;) {
        const s = p.step(ob);
        if (s.kind === "check") {
          // (A store that cannot tell: post it; the relay stores a client id once.)
          const store = this.store;
          const has = Promise.resolve().then(() =>
            store.outboxHas
              ? store.outboxHas(clientId)
              : store.outbox().then((list) => list.some((x) => x.clientId === clientId)),
          );
          p.checked(ob, await has.catch(() => true));
        } else if (s.kind === "gone") return null;
        else if (s.kind === "socket") {
          const acked = this.sync.sendMessage(clientId, s.frame);
          const r = acked === null ? null : await acked;
          if (r?.kind === "stored") p.socketAck(ob, r.id, r.seq);
          else if (r?.kind === "refused") {
            p.socketRefused(ob, r.code, r.retryAfterMs);
            const detail = r.detail ? `: ${r.detail}` : "";
            cause = new SottoError(r.code, `the relay refused the message${detail}`, { status: 400, detail: r.detail, clientId });
          } else p.socketSilent(ob);
        } else if (s.kind === "http") {
          if (s.afterMs > 0) await new Promise((resolve) => setTimeout(resolve, s.afterMs));
          try {
            const r = await this.relay.postMessage(p.entry().roomId, clientId, toB64(p.entry().envelope));
            p.httpStored(ob, r.id, r.seq);
          } catch (e) {
            cause = e;
            const status = e instanceof SottoError ? e.status : undefined;
            if (status === undefined) p.httpUnreachable(ob);
            else p.httpRefused(ob, status);
          }
        } else if (s.kind === "remove") {
          await this.store.outboxRemove(clientId).catch((e) => this.storeFailed(`message ${clientId} stays in the outbox`, e));
          p.removed(ob);
        } else if (s.kind === "sent") {
          const sent = { clientId, id: s.id, seq: s.seq };
          if (!s.announce) return sent;
          // (Closed meanwhile: the message is sent all the same, without history.)
          const device = this.device;
          const item = device === null ? undefined : p.historyItem(device, s.id, s.seq, new Date().toISOString());
          if (item !== undefined) await this.keepItem(item);
          this.emit("sent", { roomId: p.entry().roomId, ...sent });
          return sent;
        } else if (s.kind === "refused") throw cause;
        else {
          throw new SottoError(ClientCodes.queued, "the relay cannot be reached: the message waits in the outbox", {
            clientId,
            cause,
            detail: cause instanceof Error ? cause.message : undefined,
          });
        }
      }
    } finally {
      // However it ended (a no-op after the end): nobody holds the post now.
      p.abandon(ob);
    }
  }

  /** Reports a failure of the local store that did not stop the operation (`relayerror`, code `store`). */
  private storeFailed(what: string, e: unknown): void {
    this.emit("relayerror", { code: "store", detail: `${what}: ${e instanceof Error ? e.message : String(e)}` });
  }

  /**
   * @internal Re-posts everything in the outbox (after a reload or reconnect),
   * in order (the engine's `ClientFlush`): a post of an entry in flight is
   * joined, not repeated. A message refused for good is dropped and reported
   * (`relayerror`); one that cannot be posted yet stops the flush.
   */
  async flushOutbox(): Promise<void> {
    let f: ClientFlush;
    try {
      f = new ClientFlush(await this.store.outbox());
    } catch (e) {
      this.storeFailed("the outbox cannot be read; retried on the next connection", e);
      return;
    }
    try {
      for (let s = f.step(this.outbox); s.kind !== "done"; s = f.step(this.outbox)) {
        if (s.kind === "join") {
          const running = this.posting.get(s.clientId);
          await (running?.catch(() => undefined) ?? new Promise((resolve) => setTimeout(resolve, 20)));
          f.joined();
          continue;
        }
        if (this.closed) {
          s.posting.abandon(this.outbox);
          s.posting.free();
          return;
        }
        const clientId = s.posting.entry().clientId;
        try {
          f.posted((await this.post(s.posting, false)) === null ? "gone" : "sent");
        } catch (err) {
          const code = codeOf(err) ?? "refused";
          const stop = code === ClientCodes.queued || code === ClientCodes.closed;
          f.posted(stop ? "queued" : "refused");
          const detail = `message ${clientId} was refused: ${err instanceof Error ? err.message : String(err)}`;
          if (!stop) this.emit("relayerror", { code, detail });
        }
      }
    } finally {
      f.free();
    }
  }

  // ---- receiving -------------------------------------------------------------------

  /** @internal A local history item sealed under the store key. */
  sealItem(item: HistoryItem): Uint8Array {
    const vault = this.vault;
    if (vault === null) throw new SottoError(ClientCodes.closed, "the session is closed");
    const json = utf8(JSON.stringify(item));
    try {
      return vault.sealHistory(item.room_id, item.seq, json);
    } finally {
      json.fill(0);
    }
  }

  /** Keeps this device's own sent message: a store failure does not make a stored message unsent. */
  private async keepItem(item: HistoryItem): Promise<void> {
    try {
      await this.store.historyPut([{ roomId: item.room_id, seq: item.seq, sealed: this.sealItem(item) }]);
    } catch (e) {
      this.storeFailed("local history", e);
    }
  }

  /**
   * @internal Drives the engine's open pipeline (`ClientOpening`) for one
   * message: fetches the device lists it asks for, asks `seen` for the link's
   * replay verdict (null: read ahead for statements only), and saves the
   * rooms' records after a statement. Every check is the engine's.
   */
  async openIncoming(m: LinkIncoming, seen: ((clientId: Uuid) => Promise<Seen>) | null): Promise<OpenStep> {
    const op = new ClientOpening(m, seen === null);
    const text = (e: unknown) => (e instanceof Error ? e.message : String(e));
    try {
      for (;;) {
        const s = op.step(this.pins, this.membership, this.dev()) as OpenStep;
        if (s.kind === "fetch") {
          await this.fetchDevices([s.userId]).catch((e) => op.failed(`checking a sender: ${text(e)}`));
        } else if (s.kind === "seen") {
          await (seen ?? (async () => "new" as const))(s.clientId).then(
            (v) => op.seen(v),
            (e) => op.failed(`store: ${text(e)}`),
          );
        } else if (s.kind === "control") {
          return await this.saveMembership().then(
            () => s,
            (e): OpenStep => ({ kind: "later", reason: `store: ${text(e)}` }),
          );
        } else return s;
      }
    } finally {
      op.free();
    }
  }

  /** @internal A local history item as the app sees it. */
  received(item: HistoryItem): ReceivedMessage {
    return {
      roomId: item.room_id,
      id: item.id,
      seq: item.seq,
      senderId: item.sender_id,
      senderDeviceId: item.sender_device,
      clientId: item.client_id,
      sentAt: item.sent_at_ms,
      receivedAt: item.received_at,
      trust: item.trust,
      content: item.content as Content,
    };
  }

  /**
   * Local history of a room, from this device's store (no network): up to
   * `limit` (default 50) messages with `seq < before` (the newest when
   * undefined), oldest first. Every message this device opened or sent since it
   * was set up is there, across reloads; deleted ones are not. Scroll back by
   * passing the first `seq` of a page as `before`. An item that does not
   * authenticate under this store's key is left out.
   */
  async history(roomId: Uuid, opts: { limit?: number; before?: number } = {}): Promise<ReceivedMessage[]> {
    const limit = opts.limit ?? 50;
    const before = opts.before;
    if (!Number.isSafeInteger(limit) || limit < 0) {
      throw new SottoError("invalid_argument", "limit must be a non-negative integer");
    }
    if (before !== undefined && (!Number.isSafeInteger(before) || before < 0)) {
      throw new SottoError("invalid_argument", "before must be a non-negative integer");
    }
    const vault = this.vault;
    if (vault === null) throw new SottoError(ClientCodes.closed, "the session is closed");
    if (limit === 0 || before === 0) return [];
    const page = await this.store.historyPage(roomId, before, limit);
    const out: ReceivedMessage[] = [];
    for (const h of page.reverse()) {
      let item: HistoryItem;
      try {
        const json = vault.openHistory(roomId, h.seq, h.sealed);
        try {
          item = JSON.parse(fromUtf8(json)) as HistoryItem;
        } finally {
          json.fill(0);
        }
      } catch {
        continue;
      }
      // Bound to its place by the sealing; checked here as the engine does.
      if (item.room_id !== roomId || item.seq !== h.seq) continue;
      out.push(this.received(item));
    }
    return out;
  }

  /**
   * Changes the store passphrase: the store key is wrapped again under `next`
   * (nothing else is re-encrypted). `current` must unlock the store
   * (`wrong_key_or_corrupted` otherwise).
   */
  async changeStorePassphrase(current: string, next: string): Promise<void> {
    const acct = await this.store.account();
    if (acct === null || acct.storeKey === undefined) {
      throw new SottoError(ClientCodes.storeMismatch, "the store has no store key");
    }
    let check: StoreVault;
    try {
      check = StoreVault.unwrap(acct.storeKey, current);
    } catch (e) {
      throw toSottoError(e);
    }
    try {
      await this.store.setAccount({ ...acct, storeKey: wrapKey(check, this.store, next) });
    } catch (e) {
      throw toSottoError(e);
    } finally {
      check.free();
    }
  }

  // ---- typing, receipts ------------------------------------------------------------------

  /** Shows or hides this user's typing indicator (live only; dropped when offline). */
  setTyping(roomId: Uuid, active: boolean): void {
    if (this.tabs !== null && !this.tabs.isLeader) {
      void this.viaLeader("setTyping", [roomId, active]).catch(() => undefined);
      return;
    }
    this.sync.send({ type: "typing", room_id: roomId, active });
  }

  /**
   * Marks the room read up to `seq` (others get a `read` receipt): over the live
   * socket, else over HTTP, as the native SDK's `mark_read`. Rejects when
   * neither reaches the relay (the receipt is not retried: mark again later).
   */
  async markRead(roomId: Uuid, seq: number): Promise<void> {
    const viaLeader = await this.viaLeader("markRead", [roomId, seq]);
    if (viaLeader !== null) return viaLeader.value as void;
    if (!Number.isSafeInteger(seq) || seq < 0) throw new SottoError("invalid_argument", "seq must be a non-negative integer");
    if (this.sync.send({ type: "receipt", room_id: roomId, kind: "read", seq })) return;
    await this.relay.receipt(roomId, "read", seq);
  }

  // ---- files ----------------------------------------------------------------------------

  /**
   * Encrypts the file chunk by chunk (AES-256-GCM, 64 KiB chunks) into a Blob
   * of ciphertext, uploads it, then sends a `file` message carrying its pointer
   * (id, key, digest, sizes, name, media type). `onProgress(done, total)` counts
   * plaintext bytes encrypted; it reaches `total` once the relay stored the blob.
   */
  async sendFile(
    roomId: Uuid,
    file: Blob & { name?: string },
    onProgress?: (done: number, total: number) => void,
  ): Promise<Sent> {
    this.dev();
    const total = file.size;
    const { blob, sealed } = await encryptBlob(file, (done) => onProgress?.(Math.min(done, Math.max(0, total - 1)), total));
    let pointer: AttachmentPointer;
    try {
      const created = await this.relay.uploadAttachment(roomId, blob, blob.size);
      pointer = sealed.pointer(created.id, file.name || undefined, file.type || undefined);
    } finally {
      sealed.free();
    }
    onProgress?.(total, total);
    return this.send(roomId, { type: "file", file: pointer });
  }

  /**
   * Downloads and decrypts a file, streaming: each chunk is authenticated
   * before its plaintext is released; the Blob is returned only if the digest
   * and sizes matched the pointer (else code `attachment`).
   */
  async downloadFile(
    pointer: AttachmentPointer,
    onProgress?: (done: number, total: number) => void,
  ): Promise<Blob> {
    this.dev();
    const res = await this.relay.downloadAttachment(pointer.id);
    return decryptResponse(res, pointer, onProgress);
  }

  // ---- trust -----------------------------------------------------------------------------

  /** The safety number of this user and `userId` (fetches their keys if needed). */
  async safetyNumber(userId: Uuid): Promise<SafetyNumber> {
    await this.fetchDevices([userId]);
    const pin = this.pins.pin(userId);
    if (!pin) throw new SottoError(ClientCodes.noDevices, "no identity key is known for this user");
    try {
      const n = wasmSafetyNumber(this.dev().identityKey, pin.key);
      return { digits: n.digits, display: n.display, qrPayload: n.qrPayload, verified: pin.verified };
    } catch (e) {
      throw toSottoError(e);
    }
  }

  /** Marks `userId`'s pinned identity key verified (after the safety numbers matched). */
  async markVerified(userId: Uuid): Promise<void> {
    const viaLeader = await this.viaLeader("markVerified", [userId]);
    if (viaLeader !== null) return viaLeader.value as void;
    const pin = this.pins.markVerified(userId);
    if (!pin) throw new SottoError(ClientCodes.noDevices, "no identity key is known for this user");
    await this.store.setPin(userId, pin);
  }

  /**
   * Accepts the identity key the relay now serves for `userId` (after an
   * `identitychanged` event, ideally after comparing safety numbers): it is
   * pinned, unverified, and messages flow again.
   */
  async acceptIdentity(userId: Uuid): Promise<void> {
    const viaLeader = await this.viaLeader("acceptIdentity", [userId]);
    if (viaLeader !== null) return viaLeader.value as void;
    await this.refreshDevices(userId);
    const pin = this.pins.accept(userId);
    if (pin === undefined) throw new SottoError(ClientCodes.noDevices, "the user's devices do not agree on one identity key");
    await this.store.setPin(userId, pin);
    await this.refreshDevices(userId);
  }

  /** How far `userId`'s identity is trusted (`changed`: sends to them are refused until `acceptIdentity`). */
  trust(userId: Uuid): Trust {
    return this.pins.trust(userId);
  }

  /** A key backup of this device under `passphrase` (Argon2id, the core's defaults), to link another browser. */
  exportBackup(passphrase: string): Uint8Array {
    try {
      return this.dev().exportPassphraseBackup(passphrase);
    } catch (e) {
      throw toSottoError(e);
    }
  }

  /** A key backup of this device under a fresh random recovery key: show `recoveryKey` to the user once. */
  exportRecoveryBackup(): { blob: Uint8Array; recoveryKey: string } {
    try {
      return this.dev().exportRecoveryBackup();
    } catch (e) {
      throw toSottoError(e);
    }
  }

  // ---- devices and members ------------------------------------------------------------

  /** Saves the engine's changed membership records. */
  private async saveMembership(): Promise<void> {
    const changes = this.membership.takeChanges();
    if (changes.length > 0) await this.store.saveRooms(changes);
  }

  /**
   * Drives the engine's addressing (`ClientAddressing`) of a room: fetches
   * what it asks for, posts the statements it signs, shows its warnings, and
   * saves the rooms' records before acting on each step. Resolves to the
   * devices to seal to (for `send`).
   */
  private async address(roomId: Uuid, purpose: AddressPurpose): Promise<Target[]> {
    const a = new ClientAddressing(roomId, purpose);
    try {
      for (;;) {
        const n = a.step(this.pins, this.membership, this.dev()) as AddressNeed;
        await this.saveMembership().catch((e: unknown) => {
          if (n.kind === "post") a.postRefused(this.membership); // never posted: not counted as reached
          throw e;
        });
        if (n.kind === "room") {
          const warnings = this.membership.observeFetched(n.fetch, await this.relay.room(roomId));
          await this.saveMembership();
          for (const w of warnings ?? []) this.emit("membership", w); // null: overtaken, asked again
        }
        else if (n.kind === "devices") await this.fetchDevices(n.users);
        else if (n.kind === "readAhead") await this.readAhead(roomId);
        else if (n.kind === "warn") this.emit("membership", n.warning);
        else if (n.kind === "wait") await new Promise((resolve) => setTimeout(resolve, 20));
        else if (n.kind === "post") {
          try {
            await this.sealAndPost(roomId, n.plaintext, n.targets as Target[], true);
          } catch (e) {
            // Queued: it goes out before anything sent after it.
            if (codeOf(e) !== ClientCodes.queued) {
              a.postRefused(this.membership);
              await this.saveMembership();
              throw e;
            }
          }
          a.posted(this.membership);
        } else if (n.kind === "done") return n.targets as Target[];
        else throw addressFailed(n);
      }
    } finally {
      try {
        if (!this.closed) a.finish(this.membership, this.sync.state === "online"); // whether a fetched view is kept
      } finally {
        a.free();
      }
    }
  }

  /**
   * Opens the room's messages this device has not handled yet (after its
   * cursor, up to `POLICY.readAheadLimit`) for their membership statements
   * only: one naming a new member may be queued behind the live stream.
   * Best effort.
   */
  private async readAhead(roomId: Uuid): Promise<void> {
    try {
      const after = (await this.store.cursors()).get(roomId) ?? 0;
      const page = await this.relay.messages(roomId, after, POLICY.readAheadLimit);
      for (const msg of page.items) {
        if (msg.envelope === null) continue; // deleted (this device's own: the engine skips them)
        let envelope: Uint8Array;
        try {
          envelope = fromB64(msg.envelope);
        } catch {
          continue;
        }
        const { id, seq } = msg;
        const m = { roomId: msg.room_id, id, seq, senderId: msg.sender_id, deviceId: msg.device_id };
        await this.openIncoming({ ...m, createdAt: msg.created_at, envelope }, null);
      }
    } catch {
      // best effort: the engine decides with what it holds
    }
  }

  /**
   * @internal After a room event: the engine drops its view of the room and
   * says whether to look at it again now (`RoomMembership.roomChanged`: not
   * for a deleted room, whose record stays); then the relay's new view, and
   * the owner keeps the statement right. Best effort: done again on next use.
   */
  async roomChanged(roomId: Uuid, change: RoomChange): Promise<void> {
    if (!this.membership.roomChanged(roomId, change)) return;
    try {
      await this.address(roomId, { kind: "maintain" }); // fetches the dropped view first
    } catch {
      // done again on next use
    }
  }

  /**
   * Makes sure the engine caches these users' device lists: the queries the
   * engine asks for (`ClientPins.query`: the missing users in chunks, again
   * for an answer a `keys_changed` or reconnect overtook; bounded).
   */
  private async fetchDevices(users: Uuid[]): Promise<void> {
    for (let asked = 0; ; asked++) {
      const q = this.pins.query(users, asked) as DeviceQuery;
      if (q.kind === "done") return;
      if (q.kind === "keepsChanging") throw new SottoError(ClientCodes.network, "device lists keep changing; try again");
      const resp = await this.relay.keysQuery(q.users, { includeRevoked: true });
      for (const u of q.users) await this.acceptDevices(u, resp.devices[u] ?? [], q.fetch);
    }
  }

  /**
   * Hands a served device list to the engine: it verifies each bundle, decides
   * first-contact pins, identity changes and rejections, and caches the list
   * (unless the fetch was overtaken).
   */
  private async acceptDevices(user: Uuid, list: RelayDevice[], fetch: number): Promise<void> {
    let o = this.pins.servedList(user, list, fetch);
    if (o.pinned !== undefined && !(await this.store.addPin(user, o.pinned))) {
      // Another tab of this device pinned them first: that pin stands.
      await this.reloadPins();
      o = this.pins.servedList(user, list, fetch);
    }
    for (const wasVerified of o.identityChanged) this.emit("identitychanged", { userId: user, wasVerified });
    for (const deviceId of o.rejected) this.emit("devicerejected", { userId: user, deviceId });
  }

  /** @internal Refetches one user's devices (after `keys_changed`, or an unknown sender device). */
  async refreshDevices(user: Uuid): Promise<void> {
    this.pins.forget(user);
    await this.fetchDevices([user]);
  }

  /** @internal */
  forgetDevices(user: Uuid): void {
    this.pins.forget(user);
  }

  /** @internal */
  forgetRoom(roomId: Uuid): void {
    this.membership.forgetRelayView(roomId);
  }

  /** @internal After a reconnect: announcements may have been missed. */
  forgetAllCaches(): void {
    this.pins.forget(undefined);
    // (The owner's statements are forwarded again after a new connection; the
    // records say so with their next save.)
    this.membership.forgetRelayView(undefined);
  }
}

/** The error for an addressing the engine stopped (it says why). */
function addressFailed(n: Extract<AddressNeed, { kind: "failed" }>): SottoError {
  const users = { users: n.users };
  switch (n.reason) {
    case "direct_room_tampered":
      return new SottoError(ClientCodes.directRoomTampered, "the direct room lists someone besides its two users: nothing was sent", users);
    case "membership_pending":
      return new SottoError(ClientCodes.membershipPending, "the room owner's membership statement has not arrived yet: nothing was sent");
    case "identity_changed":
      return new SottoError(
        ClientCodes.identityChanged,
        "the identity key of a member changed: nothing was sent (compare safety numbers, then acceptIdentity)",
        users,
      );
    case "no_devices":
      return new SottoError(ClientCodes.noDevices, "nobody in this room has a device");
    case "membership":
      return new SottoError("invalid_argument", n.detail);
    default:
      return new SottoError(ClientCodes.network, n.detail);
  }
}

/** The error for a set-up the engine stopped (it says why). */
function setupFailed(n: Extract<SetupStep, { kind: "failed" }>): SottoError {
  switch (n.reason) {
    case "store_mismatch":
      return new SottoError(ClientCodes.storeMismatch, n.detail);
    case "identity_exists":
      return new SottoError(ClientCodes.identityExists, "this account already has devices: link this browser with a key backup of one of them");
    case "device_revoked":
      return new SottoError(ClientCodes.deviceRevoked, n.detail);
    default:
      return new SottoError(ClientCodes.protocol, n.detail);
  }
}

/** The store key wrapped under the store passphrase (the store's Argon2id parameters, else the core's defaults). */
function wrapKey(vault: StoreVault, store: KeyStore, passphrase: string): Uint8Array {
  return store.backupParams ? vault.wrap(passphrase, store.backupParams) : vault.wrap(passphrase);
}

async function upload(relay: Relay, device: Device, deviceName?: string): Promise<void> {
  try {
    await relay.putDevice(device.bundle(), deviceName === undefined ? {} : { displayName: deviceName });
  } catch (e) {
    if (codeOf(e) === "identity_key_changed") {
      throw new SottoError(
        ClientCodes.identityExists,
        "this account already has another identity key: link this browser with a key backup",
        { cause: e },
      );
    }
    throw toSottoError(e);
  }
}
