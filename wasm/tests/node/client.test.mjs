// The TypeScript client (`wasm/pkg/client.js`, built from wasm/ts/) against a
// REAL relay process: register, verify by the e-mailed link, log in, exchange
// messages both ways over the WebSocket, resume after a cut without loss or
// duplicates, a linked second browser, a file round trip, history, an
// identity change refused loudly, a member written into rooms and the
// statements a hostile relay can serve (forged, stripped, replayed) refused
// (the relay's database rewritten as a hostile operator could), and no
// plaintext anywhere in the relay's data directory.
//
// Run by scripts/test-wasm-client (which builds the relay and the package).
// Needs: target/debug/sotto-relay (or SOTTO_RELAY_BIN), wasm/pkg built, the
// `ws` devDependency (Node 20 has no global WebSocket), sqlite3 for the
// identity-change test (it fails without it).

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { generateKeyPairSync, sign as cryptoSign } from "node:crypto";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { WebSocket } from "ws";
import { RelayProcess, TcpProxy, root, sleep } from "./support.mjs";

const pkg = join(root, "wasm", "pkg");

const bindings = await import(pathToFileURL(join(pkg, "sotto_wasm.js")).href);
bindings.initSync({ module: readFileSync(join(pkg, "sotto_wasm_bg.wasm")) });
const { Relay, Session, MemoryStore, SottoError } = await import(pathToFileURL(join(pkg, "client.js")).href);

const PASSWORD = "correct horse battery staple 42";
const run = Math.random().toString(36).slice(2, 8);
const plaintexts = [];
const secret = (label) => {
  const t = `${label} ${run} ${Math.random().toString(36).slice(2)}`;
  plaintexts.push(t);
  return t;
};

// ---- people ------------------------------------------------------------------

/** Records every event of a session; `until` waits for one that matches. */
class Recorder {
  constructor(session) {
    this.events = [];
    this.waiters = [];
    for (const type of [
      "message", "undecryptable", "sent", "typing", "presence", "receipt", "room", "invitation", "identitychanged",
      "connection", "loggedout", "deleted", "devicerejected", "deviceschanged", "relayerror", "membership",
    ]) {
      session.addEventListener(type, (ev) => {
        const e = { type, detail: ev.detail };
        this.events.push(e);
        this.waiters = this.waiters.filter((w) => !w(e));
      });
    }
  }
  /** The first event from index `from` on that matches, waiting up to `ms`. */
  until(pred, ms = 20_000, from = 0) {
    const hit = this.events.slice(from).find(pred);
    if (hit) return Promise.resolve(hit);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const seen = this.events.map((e) => `${e.type} ${JSON.stringify(e.detail)?.slice(0, 160)}`).join("\n  ");
        reject(new Error(`no matching event within ${ms} ms; events so far:\n  ${seen}`));
      }, ms);
      this.waiters.push((e) => {
        if (!pred(e)) return false;
        clearTimeout(timer);
        resolve(e);
        return true;
      });
    });
  }
  messages() {
    return this.events.filter((e) => e.type === "message").map((e) => e.detail);
  }
  texts(roomId) {
    return this.messages()
      .filter((m) => m.roomId === roomId && m.content.type === "text")
      .map((m) => m.content.body);
  }
}

const online = (e) => e.type === "connection" && e.detail.state === "online";
const uuidOrder = (a, b) => (a < b ? -1 : a > b ? 1 : 0);
const uuidBytes = (u) => Buffer.from(u.replace(/-/g, ""), "hex");

/** A membership statement's bytes (`docs/protocol.md` §12.1) with a zero signature. */
function statementBytes(room, epoch, owner, signerUser, signerDevice, members) {
  const head = Buffer.alloc(75);
  head[0] = 1;
  uuidBytes(room).copy(head, 1);
  head.writeBigUInt64BE(epoch, 17);
  uuidBytes(owner).copy(head, 25);
  uuidBytes(signerUser).copy(head, 41);
  uuidBytes(signerDevice).copy(head, 57);
  head.writeUInt16BE(members.length, 73);
  return new Uint8Array(Buffer.concat([head, ...members.map(uuidBytes), Buffer.alloc(64)]));
}
const textIs = (body) => (e) => e.type === "message" && e.detail.content.type === "text" && e.detail.content.body === body;

async function person(relay, name, url = relay.url, extra = {}) {
  const username = `${name}${run}`;
  const email = `${username}@example.org`;
  const r = new Relay(url);
  await r.register(username, email, PASSWORD);
  await r.verifyEmail(await relay.link(email, "verify-email"));
  await r.login(username, PASSWORD);
  const store = new MemoryStore();
  const session = await Session.open({ relay: r, store, passphrase: PASSWORD, webSocket: WebSocket, ...extra });
  const rec = new Recorder(session);
  return { username, email, relay: r, store, session, rec };
}

// ---- the scenario ---------------------------------------------------------------

const relay = new RelayProcess();
let proxy;
let alice;
let bob;
let room;

before(async () => {
  await relay.start();
  proxy = new TcpProxy(relay.port);
  await proxy.start();
});

after(async () => {
  for (const p of [alice, bob]) p?.session.close();
  await proxy?.close();
  await relay.stop();
  if (!process.env.SOTTO_KEEP_RELAY_DATA) rmSync(relay.dir, { recursive: true, force: true });
});

test("register, verify by the e-mailed link, log in, set up keys, connect", async () => {
  alice = await person(relay, "alice");
  // Bob's traffic goes through a proxy the test can cut; his device also publishes an RSA key
  // (mixed suites: others wrap for him with RSA-OAEP, for Alice with X25519).
  bob = await person(relay, "bob", proxy.url, { rsaBits: 2048 });
  assert.match(alice.session.userId, /^[0-9a-f-]{36}$/);
  assert.equal(alice.session.username, alice.username);
  const acct = await alice.store.account();
  assert.ok(acct.backup instanceof Uint8Array && acct.backup.length > 0, "keys kept as a backup blob");
  assert.equal(acct.deviceId, alice.session.deviceId);

  alice.session.connect();
  bob.session.connect();
  await alice.rec.until(online);
  await bob.rec.until(online);
  assert.equal(alice.session.connection, "online");

  const found = await alice.session.searchUsers(bob.username);
  const bobUser = found.find((u) => u.username === bob.username);
  assert.ok(bobUser, "bob is found by search");
  // Bob does not have Alice in his contacts: the direct room holds Alice, Bob
  // is invited (consent), and joins by accepting.
  const r = await alice.session.directRoom(bobUser.id);
  assert.equal(r.kind, "direct");
  assert.deepEqual(r.members.map((m) => m.username), [alice.username]);
  assert.deepEqual(r.invited.map((i) => i.username), [bob.username]);
  room = r.id;
  assert.ok(!(await bob.session.rooms()).some((x) => x.id === room), "an invitee is not in the room");
  const invited = await bob.rec.until((e) => e.type === "invitation" && e.detail.change === "received");
  assert.equal(invited.detail.roomId, room);
  const invitations = await bob.session.invitations();
  assert.equal(invitations.length, 1);
  assert.equal(invitations[0].inviter.username, alice.username);
  assert.equal(invitations[0].room_kind, "direct");
  const mark = alice.rec.events.length;
  const joined = await bob.session.acceptInvitation(invitations[0].id);
  assert.deepEqual(joined.members.map((m) => m.username).sort(), [alice.username, bob.username].sort());
  assert.deepEqual(await bob.session.invitations(), []);
  // Alice hears Bob joined (her next send seals to his devices too).
  await alice.rec.until((e) => e.type === "room" && e.detail.roomId === room && e.detail.change === "member_added", 20_000, mark);
  const bobRooms = await bob.session.rooms();
  assert.ok(bobRooms.some((x) => x.id === room), "bob sees the room");
});

test("messages both ways over the WebSocket, with delivered receipts", async () => {
  const hi = secret("hello bob");
  const sent = await alice.session.sendText(room, hi);
  assert.equal(typeof sent.seq, "number");
  assert.match(sent.clientId, /^[0-9a-f-]{36}$/);
  await alice.rec.until((e) => e.type === "sent" && e.detail.clientId === sent.clientId);
  const got = (await bob.rec.until(textIs(hi))).detail;
  assert.equal(got.senderId, alice.session.userId);
  assert.equal(got.senderDeviceId, alice.session.deviceId);
  assert.equal(got.trust, "unverified");
  assert.equal(got.seq, sent.seq);
  assert.equal(got.id, sent.id, "sent names the relay's id of the stored message, as the native SDK's does");
  assert.equal(got.roomId, room);
  assert.equal(got.clientId, sent.clientId);
  // Mixed suites in one envelope: RSA-OAEP for Bob's device (it publishes an RSA key),
  // X25519 for Alice's own.
  const stored = (await alice.relay.messages(room, sent.seq - 1, 1)).items[0];
  const info = bindings.peekEnvelope(Buffer.from(stored.envelope, "base64url"));
  assert.equal(info.suite, "mixed");
  assert.deepEqual(
    info.recipientDeviceIds.map((d, i) => [d, info.recipientSuites[i]]).sort(),
    [[alice.session.deviceId, "x25519"], [bob.session.deviceId, "rsa"]].sort(),
  );

  const reply = secret("hi alice");
  await bob.session.sendText(room, reply);
  const back = (await alice.rec.until(textIs(reply))).detail;
  assert.equal(back.senderId, bob.session.userId);

  // Bob's client confirmed delivery by itself; Alice sees the receipt.
  await alice.rec.until(
    (e) => e.type === "receipt" && e.detail.userId === bob.session.userId && e.detail.kind === "delivered" && e.detail.seq >= sent.seq,
  );
  // Read receipts (over the socket; offline, over HTTP, as the native SDK's) and typing.
  await bob.session.markRead(room, sent.seq);
  await alice.rec.until((e) => e.type === "receipt" && e.detail.kind === "read" && e.detail.userId === bob.session.userId);
  const replySeq = back.seq;
  bob.session.disconnect();
  const fromB = bob.rec.events.length;
  await bob.session.markRead(room, replySeq);
  await alice.rec.until(
    (e) => e.type === "receipt" && e.detail.kind === "read" && e.detail.userId === bob.session.userId && e.detail.seq === replySeq,
  );
  await assert.rejects(bob.session.markRead(room, -1), (e) => e.code === "invalid_argument");
  bob.session.connect();
  await bob.rec.until(online, 20_000, fromB);
  bob.session.setTyping(room, true);
  await alice.rec.until((e) => e.type === "typing" && e.detail.userId === bob.session.userId && e.detail.active);

  // Safety numbers agree on both sides; verifying changes the trust of later messages.
  const a = await alice.session.safetyNumber(bob.session.userId);
  const b = await bob.session.safetyNumber(alice.session.userId);
  assert.equal(a.digits, b.digits);
  assert.equal(a.verified, false);
  assert.equal(alice.session.trust(bob.session.userId), "unverified");
  await bob.session.markVerified(alice.session.userId);
  assert.equal(bob.session.trust(alice.session.userId), "verified");
  const v = secret("now verified");
  await alice.session.sendText(room, v);
  assert.equal((await bob.rec.until(textIs(v))).detail.trust, "verified");
});

test("a member added after a room's first messages gets every message after joining", async () => {
  // Bob has Alice in his contacts now: her group takes him in at once.
  await bob.session.addContact(alice.session.userId);
  const group = await alice.session.createRoom("late joiners", [bob.session.userId]);
  assert.deepEqual(group.invited, []);
  for (let i = 0; i < 3; i++) {
    const t = secret(`before carol ${i}`);
    await alice.session.sendText(group.id, t);
    await bob.rec.until(textIs(t));
  }
  const carol = await person(relay, "carol");
  try {
    carol.session.connect();
    await carol.rec.until(online);
    // Carol is a stranger: invited; she declines once, is invited again, accepts.
    assert.equal(await alice.session.invite(group.id, carol.session.userId), "invited");
    await carol.rec.until((e) => e.type === "invitation" && e.detail.change === "received");
    let inv = await carol.session.invitations();
    await carol.session.declineInvitation(inv[0].id);
    assert.deepEqual(await carol.session.invitations(), []);
    assert.equal(await alice.session.invite(group.id, carol.session.userId), "invited");
    inv = await carol.session.invitations();
    const mark = alice.rec.events.length;
    const markBob = bob.rec.events.length;
    await carol.session.acceptInvitation(inv[0].id);
    await alice.rec.until((e) => e.type === "room" && e.detail.roomId === group.id && e.detail.change === "member_added", 20_000, mark);
    // The relay says where Carol's history starts; the next message is not a gap.
    // (Membership statements are messages too: they take sequence numbers.)
    const t4 = secret("welcome carol");
    const s4 = await alice.session.sendText(group.id, t4);
    assert.equal((await carol.rec.until(textIs(t4))).detail.seq, s4.seq);
    // Bob seals for the members he knows: he too waits until he has heard of her.
    await bob.rec.until((e) => e.type === "room" && e.detail.roomId === group.id && e.detail.change === "member_added", 20_000, markBob);
    const t5 = secret("bob says hi to carol");
    await bob.session.sendText(group.id, t5);
    await carol.rec.until(textIs(t5));
    assert.deepEqual(carol.rec.texts(group.id), [t4, t5], "only what was sent after she joined, once each");
    assert.equal(carol.rec.events.filter((e) => e.type === "undecryptable").length, 0);
  } finally {
    carol.session.close();
  }
});

test("a cut connection resumes from its cursor: nothing lost, nothing twice", async () => {
  const before = bob.rec.texts(room).length;
  const from = bob.rec.events.length;
  proxy.cut();
  await bob.rec.until((e) => e.type === "connection" && e.detail.state === "offline", 20_000, from);
  // Sent while Bob is cut off (he reconnects by himself, with back-off).
  const burst = [secret("while away 1"), secret("while away 2"), secret("while away 3")];
  for (const t of burst) await alice.session.sendText(room, t);
  await bob.rec.until(online, 30_000, from);
  await bob.rec.until(textIs(burst[2]), 20_000, from);
  // And once more: a clean reconnect replays nothing already handled.
  bob.session.disconnect();
  await bob.rec.until((e) => e.type === "connection" && e.detail.state === "offline", 20_000, from);
  const from2 = bob.rec.events.length;
  bob.session.connect();
  await bob.rec.until(online, 20_000, from2);
  const last = secret("after the reconnect");
  await alice.session.sendText(room, last);
  await bob.rec.until(textIs(last), 20_000, from2);
  await sleep(500);
  const texts = bob.rec.texts(room).slice(before);
  assert.deepEqual(texts, [...burst, last], "each message exactly once, in order");
  const seqs = bob.rec.messages().filter((m) => m.roomId === room).map((m) => m.seq);
  assert.deepEqual(seqs, [...new Set(seqs)].sort((x, y) => x - y), "seqs once each, increasing");
  const cursors = await bob.store.cursors();
  assert.equal(cursors.get(room), seqs[seqs.length - 1], "the cursor moved with the messages");
});

test("a disconnect from inside an event handler, a few awaits later, takes effect at once", async () => {
  const from = bob.rec.events.length;
  const text = secret("disconnect when this arrives");
  const handler = async (e) => {
    if (e.detail.content.type !== "text" || e.detail.content.body !== text) return;
    // Continuations in later microtasks: the pump may be winding down meanwhile.
    await Promise.resolve();
    await Promise.resolve();
    await Promise.resolve();
    bob.session.disconnect();
  };
  bob.session.addEventListener("message", (e) => void handler(e));
  await alice.session.sendText(room, text);
  // Done at once, not when some later frame happens to wake the link.
  await bob.rec.until((e) => e.type === "connection" && e.detail.state === "offline" && e.detail.reason === "disconnected", 5_000, from);
  const from2 = bob.rec.events.length;
  bob.session.connect();
  await bob.rec.until(online, 20_000, from2);
});

test("a linked second browser gets the identity, its own device, and every message", async () => {
  const backup = alice.session.exportBackup("link passphrase 123");
  const r2 = new Relay(relay.url);
  await r2.login(alice.username, PASSWORD);
  const store2 = new MemoryStore();
  const second = await Session.open({
    relay: r2,
    store: store2,
    passphrase: PASSWORD,
    webSocket: WebSocket,
    setup: { linkBackup: backup, backupPassphrase: "link passphrase 123" },
  });
  const rec2 = new Recorder(second);
  try {
    assert.equal(second.userId, alice.session.userId);
    assert.notEqual(second.deviceId, alice.session.deviceId);
    second.connect();
    await rec2.until(online);
    // Bob's client learns of the new device (keys_changed) and seals to it too.
    const t = secret("to both of alice's browsers");
    await bob.session.sendText(room, t);
    await alice.rec.until(textIs(t));
    await rec2.until(textIs(t));
    // Alice's first browser seals to her second one as well; it shows as her own.
    const own = secret("from alice's first browser");
    await alice.session.sendText(room, own);
    const mine = (await rec2.until(textIs(own))).detail;
    assert.equal(mine.trust, "own");
    assert.equal(mine.senderDeviceId, alice.session.deviceId);
    await bob.rec.until(textIs(own));
    // A wrong passphrase does not open a stored backup.
    await assert.rejects(
      Session.open({ relay: r2, store: store2, passphrase: "not the passphrase", webSocket: WebSocket }),
      (e) => e instanceof SottoError && e.code === "wrong_key_or_corrupted",
    );
    // The device cache (the engine's, as the native SDK's): Alice revokes the
    // second browser; Bob's client drops her cached list on keys_changed, so
    // his next message is not sealed to the revoked device.
    const fromB = bob.rec.events.length;
    await alice.relay.revokeDevice(second.deviceId, PASSWORD);
    await bob.rec.until((e) => e.type === "deviceschanged" && e.detail.userId === alice.session.userId, 20_000, fromB);
    const later = secret("after the revocation");
    const s = await bob.session.sendText(room, later);
    await alice.rec.until(textIs(later));
    const stored = (await bob.relay.messages(room, s.seq - 1, 1)).items[0];
    const to = bindings.peekEnvelope(Buffer.from(stored.envelope, "base64url")).recipientDeviceIds;
    assert.ok(to.includes(alice.session.deviceId));
    assert.ok(!to.includes(second.deviceId), "sealed to the revoked device");
  } finally {
    second.close();
  }
});

test("set-up modes, as the native SDK's: link or restore, from a passphrase or a recovery key", async () => {
  const { blob, recoveryKey } = bob.session.exportRecoveryBackup();
  let r = new Relay(relay.url);
  await r.login(bob.username, PASSWORD);
  const open = (setup) => Session.open({ relay: r, store: new MemoryStore(), passphrase: PASSWORD, webSocket: WebSocket, setup });
  // Link with the recovery key: the same identity, a new device. Its own
  // recovery backup is kept, then the device is revoked: it cannot be restored.
  const linked = await open({ linkBackup: blob, recoveryKey });
  const linkedId = linked.deviceId;
  let linkedBackup;
  try {
    assert.equal(linked.userId, bob.session.userId);
    assert.notEqual(linkedId, bob.session.deviceId);
    linkedBackup = linked.exportRecoveryBackup();
  } finally {
    linked.close();
  }
  await r.revokeDevice(linkedId, PASSWORD);
  // Revoking ends the sessions bound to that device (this login's): log in again.
  r = new Relay(relay.url);
  await r.login(bob.username, PASSWORD);
  await assert.rejects(
    open({ restoreBackup: linkedBackup.blob, recoveryKey: linkedBackup.recoveryKey }),
    (e) => e.code === "device_revoked",
  );
  // Restore: this very device, from its recovery backup and from a passphrase backup.
  const passphraseBackup = bob.session.exportBackup("restore passphrase 1");
  for (const setup of [
    { restoreBackup: blob, recoveryKey },
    { restoreBackup: passphraseBackup, backupPassphrase: "restore passphrase 1" },
  ]) {
    const restored = await open(setup);
    try {
      assert.equal(restored.deviceId, bob.session.deviceId);
    } finally {
      restored.close();
    }
  }
  // Another device's recovery key, or a malformed one, opens nothing.
  const other = alice.session.exportRecoveryBackup().recoveryKey;
  await assert.rejects(open({ restoreBackup: blob, recoveryKey: other }), (e) => e.code === "wrong_key_or_corrupted");
  await assert.rejects(open({ restoreBackup: blob, recoveryKey: "not a key" }), (e) => e.code === "bad_recovery_key");
});

test("a store from before the store key and signed membership opens upgraded: the key wrapped anew, the rooms it knew adopted (as the native SDK)", async () => {
  const acct = await bob.store.account();
  const vault = bindings.StoreVault.unwrap(acct.storeKey, PASSWORD);
  const device = vault.importDevice(acct.backup);
  const old = new MemoryStore();
  // The old layout: the secrets as a passphrase backup, no store key, no membership records.
  await old.setAccount({ relay: acct.relay, userId: acct.userId, deviceId: acct.deviceId, backup: device.exportPassphraseBackup(PASSWORD, old.backupParams) });
  device.free();
  vault.free();
  await old.apply({ cursors: [{ roomId: room, seq: 1 }], seen: [], historyPut: [], historyDelete: [] });
  assert.equal(await old.rooms(), null);
  const open = (passphrase) => Session.open({ relay: bob.relay, store: old, passphrase, webSocket: WebSocket });
  await assert.rejects(open("not it"), (e) => e.code === "wrong_key_or_corrupted");
  assert.equal((await old.account()).storeKey, undefined, "a wrong passphrase changes nothing");
  const s = await open(PASSWORD);
  let up;
  try {
    assert.equal(s.deviceId, bob.session.deviceId);
    up = await old.account();
    assert.ok(up.storeKey instanceof Uint8Array, "the store key is kept");
    assert.throws(() => bindings.Device.importPassphraseBackup(up.backup, PASSWORD), "the secrets are under the store key now");
    assert.deepEqual((await old.rooms()).map(([id]) => id), [room], "the room it knew is adopted");
  } finally {
    s.close();
  }
  // It opens again as any store, upgraded once.
  const again = await open(PASSWORD);
  again.close();
  assert.deepEqual((await old.account()).storeKey, up.storeKey);
});

test("a file round trip, streamed with progress", async () => {
  const size = 300_000; // several 64 KiB chunks
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i += 65536) crypto.getRandomValues(bytes.subarray(i, Math.min(size, i + 65536)));
  const marker = secret("file contents marker");
  bytes.set(new TextEncoder().encode(marker), 1000);
  const file = new File([bytes], "report.bin", { type: "application/x-test" });
  const up = [];
  const sent = await alice.session.sendFile(room, file, (done, total) => up.push([done, total]));
  assert.ok(up.length > 1, "upload progress reported");
  assert.deepEqual(up[up.length - 1], [size, size]);
  const msg = (
    await bob.rec.until((e) => e.type === "message" && e.detail.roomId === room && e.detail.seq === sent.seq)
  ).detail;
  assert.equal(msg.content.type, "file");
  const pointer = msg.content.file;
  assert.equal(pointer.name, "report.bin");
  assert.equal(pointer.content_type, "application/x-test");
  assert.equal(pointer.size, size);
  const down = [];
  const blob = await bob.session.downloadFile(pointer, (done, total) => down.push([done, total]));
  assert.equal(blob.type, "application/x-test");
  const back = new Uint8Array(await blob.arrayBuffer());
  assert.equal(back.length, size);
  assert.ok(Buffer.from(back).equals(Buffer.from(bytes)), "the same bytes came back");
  assert.deepEqual(down[down.length - 1], [size, size]);
  assert.ok(down.length > 1, "download progress reported");

  // A pointer whose digest does not match yields nothing.
  const forged = { ...pointer, sha256: pointer.sha256.replace(/^./, (c) => (c === "A" ? "B" : "A")) };
  await assert.rejects(bob.session.downloadFile(forged), (e) => e instanceof SottoError && e.code === "attachment");
});

test("history: from the local store, own messages included, oldest first", async () => {
  const h = await bob.session.history(room, { limit: 200 });
  const texts = h.filter((m) => m.content.type === "text").map((m) => m.content.body);
  for (const t of bob.rec.texts(room)) assert.ok(texts.includes(t), `history has ${t}`);
  const seqs = h.map((m) => m.seq);
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
  assert.ok(h.some((m) => m.senderId === bob.session.userId && m.trust === "own"), "own messages are in the history");
  const h2 = await alice.session.history(room, { limit: 3 });
  assert.equal(h2.length, 3);
  assert.equal(h2[2].seq, h[h.length - 1].seq);
});

test("local history: sealed in the store, shown after a restart, paged back; a new store passphrase re-wraps only the key", async () => {
  const h = await bob.session.history(room, { limit: 200 });
  assert.ok(h.length >= 4, `history has ${h.length} messages`);
  const shape = (list) => list.map((m) => [m.seq, m.id, m.senderId, m.trust, JSON.stringify(m.content)]);
  // No plaintext in what the store holds.
  const rows = await bob.store.historyPage(room, undefined, 1000);
  assert.equal(rows.length, h.length);
  for (const t of bob.rec.texts(room)) {
    for (const row of rows) assert.ok(!Buffer.from(row.sealed).includes(Buffer.from(t)), `${t} in the clear`);
  }
  // A restart: another session on the same store sees the same history, without the relay's messages.
  const again = await Session.open({ relay: bob.relay, store: bob.store, passphrase: PASSWORD, webSocket: WebSocket });
  try {
    assert.deepEqual(shape(await again.history(room, { limit: 200 })), shape(h));
    const newest = await again.history(room, { limit: 2 });
    const older = await again.history(room, { limit: 2, before: newest[0].seq });
    assert.deepEqual(shape([...older, ...newest]), shape(h.slice(-4)));
    await assert.rejects(again.changeStorePassphrase("not it", "next"), (e) => e.code === "wrong_key_or_corrupted");
    await again.changeStorePassphrase(PASSWORD, "a store passphrase of its own");
  } finally {
    again.close();
  }
  await assert.rejects(
    Session.open({ relay: bob.relay, store: bob.store, passphrase: PASSWORD, webSocket: WebSocket }),
    (e) => e.code === "wrong_key_or_corrupted",
  );
  const third = await Session.open({ relay: bob.relay, store: bob.store, passphrase: "a store passphrase of its own", webSocket: WebSocket });
  try {
    assert.deepEqual(shape(await third.history(room, { limit: 200 })), shape(h), "nothing was re-encrypted");
  } finally {
    third.close();
  }
});

test("messages sent while the relay is down wait in the outbox and go out once, however many flush them", async () => {
  // Warm the caches (members, devices): sealing needs no relay, posting does.
  const warm = secret("just before the outage");
  await alice.session.sendText(room, warm);
  await bob.rec.until(textIs(warm));
  const from = alice.rec.events.length;
  await relay.stop();
  await alice.rec.until((e) => e.type === "connection" && e.detail.state === "offline", 20_000, from);
  const texts = [0, 1, 2].map((i) => secret(`queued while the relay is down ${i}`));
  const clientIds = [];
  for (const t of texts) {
    await assert.rejects(alice.session.sendText(room, t), (e) => {
      assert.ok(e instanceof SottoError, String(e));
      assert.equal(e.code, "queued");
      clientIds.push(e.clientId);
      return true;
    });
  }
  assert.deepEqual((await alice.store.outbox()).map((e) => e.clientId), clientIds);
  // Neither the socket nor HTTP reaches the relay: marking read fails, loudly.
  await assert.rejects(alice.session.markRead(room, 1), (e) => e instanceof SottoError);
  await relay.start(); // same port; both clients reconnect by themselves (and flush)
  // The app flushes too, three times at once: the engine's single-flight rule
  // lets one post of each entry run; the others join it.
  await Promise.all([0, 1, 2].map(() => alice.session.flushOutbox()));
  for (const id of clientIds) {
    await alice.rec.until((e) => e.type === "sent" && e.detail.clientId === id, 40_000, from);
  }
  for (const t of texts) await bob.rec.until(textIs(t), 40_000);
  assert.deepEqual(await alice.store.outbox(), []);
  await sleep(300);
  for (const t of texts) assert.equal(bob.rec.texts(room).filter((x) => x === t).length, 1, "delivered once");
  const sent = alice.rec.events.slice(from).filter((e) => e.type === "sent");
  for (const id of clientIds) {
    assert.equal(sent.filter((e) => e.detail.clientId === id).length, 1, `${id} announced once`);
  }
});

function haveSqlite() {
  try {
    execFileSync("sqlite3", ["-version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

test("an injected device of another identity is rejected, loudly, and gets no key", async () => {
  assert.ok(haveSqlite(), "sqlite3 is not installed (scripts/test-wasm-client installs it with apt-get)");
  const bobId = bob.session.userId;
  const fake = "0190f0f0-0000-7000-8000-00000000fa4e";
  const evil = bindings.Device.generate(bobId, fake);
  const bundle = evil.bundle();
  evil.free();
  const fromA = alice.rec.events.length;
  const fromB = bob.rec.events.length;
  await relay.stop();
  const q = (s) => `'${String(s).replace(/'/g, "''")}'`;
  execFileSync("sqlite3", [
    join(relay.data, "sotto.db"),
    "INSERT INTO devices (id, user_id, display_name, identity_key, bundle, created_at, updated_at) " +
      `VALUES (${q(fake)}, ${q(bobId)}, 'totally bob', ${q(bundle.identity_key)}, ${q(JSON.stringify(bundle))}, 0, 0);`,
  ]);
  await relay.start();
  await alice.rec.until(online, 40_000, fromA);
  await bob.rec.until(online, 40_000, fromB);
  const t = secret("only for bob's real device");
  const sent = await alice.session.sendText(room, t);
  const rejected = await alice.rec.until((e) => e.type === "devicerejected", 10_000, fromA);
  assert.deepEqual(rejected.detail, { userId: bobId, deviceId: fake });
  await bob.rec.until(textIs(t));
  const stored = (await alice.relay.messages(room, sent.seq - 1, 1)).items[0];
  const to = bindings.peekEnvelope(Buffer.from(stored.envelope, "base64url")).recipientDeviceIds;
  assert.ok(to.includes(bob.session.deviceId));
  assert.ok(!to.includes(fake), "sealed to the injected device");
  // The operator backs out again (the tests after this one use Bob's real devices only).
  const fromA2 = alice.rec.events.length;
  const fromB2 = bob.rec.events.length;
  await relay.stop();
  execFileSync("sqlite3", [join(relay.data, "sotto.db"), `DELETE FROM devices WHERE id = ${q(fake)};`]);
  await relay.start();
  await alice.rec.until(online, 40_000, fromA2);
  await bob.rec.until(online, 40_000, fromB2);
});

test("a member written into the database gets no key: the direct room refuses, the group seals around them; forged, stripped and replayed statements are refused", async () => {
  assert.ok(haveSqlite(), "sqlite3 is not installed (scripts/test-wasm-client installs it with apt-get)");
  const group = await alice.session.createRoom("hostile relay", [bob.session.userId]);
  const warm = secret("group, before the intruder");
  await alice.session.sendText(group.id, warm);
  await bob.rec.until(textIs(warm));
  const mallory = await person(relay, "mallory");
  const malloryId = mallory.session.userId;
  const malloryDevice = mallory.session.deviceId;
  try {

    // The operator writes Mallory into both rooms (no API call, no event).
    const fromA = alice.rec.events.length;
    const fromB = bob.rec.events.length;
    await relay.stop();
    const q = (s) => `'${String(s).replace(/'/g, "''")}'`;
    const intrude = (r) =>
      "INSERT INTO room_members (room_id, user_id, joined_at, joined_seq, delivered_seq, delivered_at, read_seq, read_at) " +
      `SELECT id, ${q(malloryId)}, created_at, last_seq, last_seq, 0, last_seq, 0 FROM rooms WHERE id = ${q(r)};`;
    execFileSync("sqlite3", [join(relay.data, "sotto.db"), intrude(room) + intrude(group.id)]);
    await relay.start();
    await alice.rec.until(online, 40_000, fromA);
    await bob.rec.until(online, 40_000, fromB);

    // The direct room: nothing is sent, loudly.
    const before = (await alice.relay.messages(room, 0, 200)).items.length;
    await assert.rejects(alice.session.sendText(room, secret("the launch code is 4711")), (e) => {
      assert.ok(e instanceof SottoError, String(e));
      assert.equal(e.code, "direct_room_tampered");
      assert.deepEqual(e.users, [malloryId]);
      return true;
    });
    const direct = await alice.rec.until((e) => e.type === "membership" && e.detail.room_id === room, 10_000, fromA);
    assert.deepEqual(direct.detail, { kind: "direct_room_tampered", room_id: room, users: [malloryId] });
    assert.equal((await alice.relay.messages(room, 0, 200)).items.length, before, "nothing was posted");

    // The group: Alice and Bob still talk, sealed around Mallory; both are told.
    const t = secret("group: the launch code is 4711");
    await alice.session.sendText(group.id, t);
    await bob.rec.until(textIs(t));
    const u = secret("group: noted");
    await bob.session.sendText(group.id, u);
    await alice.rec.until(textIs(u));
    for (const [p, from] of [[alice, fromA], [bob, fromB]]) {
      const w = await p.rec.until((e) => e.type === "membership" && e.detail.room_id === group.id, 10_000, from);
      assert.deepEqual(w.detail, { kind: "unconfirmed", room_id: group.id, users: [malloryId] });
    }
    const stored = (await alice.relay.messages(group.id, 0, 200)).items;
    assert.ok(stored.length >= 4);
    for (const m of stored) {
      const to = bindings.peekEnvelope(Buffer.from(m.envelope, "base64url")).recipientDeviceIds;
      assert.ok(!to.includes(malloryDevice), `seq ${m.seq} carries a key for the intruder`);
    }
    // No control message reached either app as a message.
    for (const p of [alice, bob]) {
      assert.ok(p.rec.events.every((e) => e.type !== "message" || e.detail.content.type !== "unknown"));
    }

    // Statements the relay's intruder posts, each refused by both clients with a
    // loud warning: Alice's statement with the signature stripped (zeroed), and
    // one "signed" in her name by a key that is not her device's.
    const members = [alice.session.userId, bob.session.userId, malloryId].sort(uuidOrder);
    const stripped = statementBytes(group.id, 1000n, alice.session.userId, alice.session.userId, alice.session.deviceId, members);
    const forged = statementBytes(group.id, 1000n, alice.session.userId, alice.session.userId, alice.session.deviceId, members);
    const { privateKey } = generateKeyPairSync("ed25519");
    const label = Buffer.from("SOTTO-v1 room-membership\0", "latin1");
    forged.set(cryptoSign(null, Buffer.concat([label, forged.subarray(0, forged.length - 64)]), privateKey), forged.length - 64);
    const served = await mallory.relay.keysQuery([alice.session.userId, bob.session.userId], { includeRevoked: false });
    const to = Object.values(served.devices).flat().map((d) => {
      const device = bindings.verifyBundle(d.bundle);
      return { device, suite: device.hasRsa ? "rsa" : "x25519" };
    });
    const fromA3 = alice.rec.events.length;
    const fromB3 = bob.rec.events.length;
    for (const statement of [stripped, forged]) {
      const plaintext = Buffer.from(JSON.stringify({ type: "membership", statement: Buffer.from(statement).toString("base64url") }));
      const clientMessageId = crypto.randomUUID();
      const sealed = mallory.session.device.seal(plaintext, { roomId: group.id, clientMessageId, timestampMs: Date.now() }, to);
      await mallory.relay.postMessage(group.id, clientMessageId, Buffer.from(sealed).toString("base64url"));
    }
    for (const [p, from] of [[alice, fromA3], [bob, fromB3]]) {
      const refused = (e) => e.type === "membership" && e.detail.kind === "statement_refused" && e.detail.room_id === group.id;
      // Both statements, each refused (counted once the second arrives).
      await p.rec.until((e) => refused(e) && p.rec.events.slice(from).filter(refused).length >= 2, 20_000, from);
    }
    const v = secret("group: after the forgeries");
    await bob.session.sendText(group.id, v);
    await alice.rec.until(textIs(v));

    // A replayed statement: the operator copies Alice's statement as Bob got it
    // (her first message in the group sealed to his device) to a new place in the
    // room. Bob's client refuses the copy as a replay, and nothing changes.
    const all = (await alice.relay.messages(group.id, 0, 200)).items;
    const first = all.find(
      (m) =>
        m.sender_id === alice.session.userId &&
        bindings.peekEnvelope(Buffer.from(m.envelope, "base64url")).recipientDeviceIds.includes(bob.session.deviceId),
    );
    assert.ok(first !== undefined, "Alice's statement as Bob got it");
    const fromB4 = bob.rec.events.length;
    const fromA4 = alice.rec.events.length;
    await relay.stop();
    execFileSync("sqlite3", [
      join(relay.data, "sotto.db"),
      "INSERT INTO messages (id, room_id, seq, sender_id, device_id, client_id, envelope, envelope_sha256, created_at) " +
        `SELECT ${q(crypto.randomUUID())}, room_id, (SELECT last_seq + 1 FROM rooms WHERE id = ${q(group.id)}), sender_id, device_id, ` +
        `${q(crypto.randomUUID())}, envelope, envelope_sha256, created_at FROM messages WHERE room_id = ${q(group.id)} AND seq = ${first.seq};`,
    ]);
    await relay.start();
    await bob.rec.until(online, 40_000, fromB4);
    await alice.rec.until(online, 40_000, fromA4);
    const replay = await bob.rec.until((e) => e.type === "undecryptable" && e.detail.roomId === group.id, 20_000, fromB4);
    assert.equal(replay.detail.reason, "replayed");
    const w = secret("group: still only us");
    await bob.session.sendText(group.id, w);
    await alice.rec.until(textIs(w));
    for (const m of (await alice.relay.messages(group.id, 0, 200)).items) {
      const to = bindings.peekEnvelope(Buffer.from(m.envelope, "base64url")).recipientDeviceIds;
      assert.ok(!to.includes(malloryDevice), `seq ${m.seq} carries a key for the intruder`);
    }
    for (const p of [alice, bob]) {
      assert.ok(p.rec.events.every((e) => e.type !== "message" || e.detail.content.type !== "unknown"));
    }

    // The operator backs out: the direct room is the two of them again, and flows.
    const fromA2 = alice.rec.events.length;
    const fromB2 = bob.rec.events.length;
    await relay.stop();
    execFileSync("sqlite3", [join(relay.data, "sotto.db"), `DELETE FROM room_members WHERE user_id = ${q(malloryId)};`]);
    await relay.start();
    await alice.rec.until(online, 40_000, fromA2);
    await bob.rec.until(online, 40_000, fromB2);
    const again = secret("direct, after the intruder left");
    await alice.session.sendText(room, again);
    await bob.rec.until(textIs(again));
  } finally {
    mallory.session.close();
  }
});

test("a member the owner removed gets no key when the operator writes them back (removeMember, as the native remove_member)", async () => {
  const group = await alice.session.createRoom("removal", [bob.session.userId]);
  const before = secret("removal: before");
  await alice.session.sendText(group.id, before);
  await bob.rec.until(textIs(before));
  await alice.session.removeMember(group.id, bob.session.userId);
  const fromA = alice.rec.events.length;
  const fromB = bob.rec.events.length;
  await relay.stop();
  const q = (s) => `'${String(s).replace(/'/g, "''")}'`;
  execFileSync("sqlite3", [
    join(relay.data, "sotto.db"),
    "INSERT INTO room_members (room_id, user_id, joined_at, joined_seq, delivered_seq, delivered_at, read_seq, read_at) " +
      `SELECT id, ${q(bob.session.userId)}, created_at, last_seq, last_seq, 0, last_seq, 0 FROM rooms WHERE id = ${q(group.id)};`,
  ]);
  await relay.start();
  await alice.rec.until(online, 40_000, fromA);
  await bob.rec.until(online, 40_000, fromB);
  const later = secret("removal: after");
  const sent = await alice.session.sendText(group.id, later);
  const stored = (await alice.relay.messages(group.id, sent.seq - 1, 1)).items[0];
  const to = bindings.peekEnvelope(Buffer.from(stored.envelope, "base64url")).recipientDeviceIds;
  assert.deepEqual(to, [alice.session.deviceId], "only Alice's own device");
  const w = await alice.rec.until((e) => e.type === "membership" && e.detail.room_id === group.id, 10_000, fromA);
  assert.deepEqual(w.detail, { kind: "unconfirmed", room_id: group.id, users: [bob.session.userId] });
});

test("an accepted direct invitation pins the inviter, whoever the relay lists (as the native accept_invitation)", async () => {
  const ivy = await person(relay, "ivy");
  const ike = await person(relay, "ike");
  const mal = await person(relay, "mal");
  try {
    // Ivy is not in Ike's contacts: he is invited. The operator swaps Ivy for
    // Mal in the room's members before he accepts (no API call, no event).
    ike.session.connect();
    await ike.rec.until(online, 40_000);
    const r = await ivy.session.directRoom(ike.session.userId);
    await ike.rec.until((e) => e.type === "invitation" && e.detail.roomId === r.id);
    const from = ike.rec.events.length;
    await relay.stop();
    const q = (s) => `'${String(s).replace(/'/g, "''")}'`;
    execFileSync("sqlite3", [
      join(relay.data, "sotto.db"),
      `UPDATE room_members SET user_id = ${q(mal.session.userId)} WHERE room_id = ${q(r.id)} AND user_id = ${q(ivy.session.userId)};`,
    ]);
    await relay.start();
    await ike.rec.until(online, 40_000, from);
    const [inv] = await ike.session.invitations();
    assert.equal(inv.inviter.id, ivy.session.userId);
    const joined = await ike.session.acceptInvitation(inv);
    assert.deepEqual(joined.members.map((m) => m.user_id).sort(), [ike.session.userId, mal.session.userId].sort());
    await assert.rejects(ike.session.sendText(r.id, secret("for ivy only")), (e) => e instanceof SottoError && e.code === "direct_room_tampered");
    const w = await ike.rec.until((e) => e.type === "membership" && e.detail.room_id === r.id, 10_000, from);
    assert.equal(w.detail.kind, "direct_room_tampered");
    for (const m of (await ike.relay.messages(r.id, 0, 200)).items) {
      const to = bindings.peekEnvelope(Buffer.from(m.envelope, "base64url")).recipientDeviceIds;
      assert.ok(!to.includes(mal.session.deviceId), `seq ${m.seq} carries a key for the intruder`);
    }
  } finally {
    for (const p of [ivy, ike, mal]) p.session.close();
  }
});

test(
  "an identity key rewritten by the relay is refused loudly until accepted",
  async () => {
    assert.ok(haveSqlite(), "sqlite3 is not installed (scripts/test-wasm-client installs it with apt-get)");
    const bobId = bob.session.userId;
    const bobDevice = bob.session.deviceId;
    bob.session.disconnect();
    const evil = bindings.Device.generate(bobId, bobDevice);
    const bundle = evil.bundle();
    evil.free();
    const countBefore = (await alice.relay.messages(room, 0, 200)).items.length;

    await relay.stop();
    const db = join(relay.data, "sotto.db");
    const q = (s) => `'${String(s).replace(/'/g, "''")}'`;
    execFileSync("sqlite3", [
      db,
      `UPDATE devices SET identity_key = ${q(bundle.identity_key)}, bundle = ${q(JSON.stringify(bundle))} WHERE id = ${q(bobDevice)};` +
        `UPDATE identities SET identity_key = ${q(bundle.identity_key)} WHERE user_id = ${q(bobId)};`,
    ]);
    const from = alice.rec.events.length;
    await relay.start(); // same port: Alice's client reconnects by itself
    await alice.rec.until(online, 40_000, from);

    const t = secret("must not reach the impostor");
    await assert.rejects(alice.session.sendText(room, t), (e) => {
      assert.ok(e instanceof SottoError, String(e));
      assert.equal(e.code, "identity_changed");
      assert.deepEqual(e.users, [bobId]);
      return true;
    });
    const ev = await alice.rec.until((e) => e.type === "identitychanged", 10_000, from);
    assert.deepEqual(ev.detail, { userId: bobId, wasVerified: false });
    assert.equal(alice.session.trust(bobId), "changed");
    assert.equal((await alice.relay.messages(room, 0, 200)).items.length, countBefore, "nothing was posted");

    // Once the person accepts it (after comparing safety numbers), messages flow again.
    await alice.session.acceptIdentity(bobId);
    assert.equal(alice.session.trust(bobId), "unverified");
    await alice.session.sendText(room, secret("accepted"));
  },
);

test("no plaintext at rest in the relay's data directory", async () => {
  await relay.stop(); // everything flushed to the files
  const files = relay.files();
  const find = (needle) => files.filter(([, b]) => b.includes(Buffer.from(needle, "utf8"))).map(([p]) => p);
  assert.ok(find(alice.username).length > 0, "control: the username is found, so the search works");
  assert.ok(plaintexts.length >= 10);
  for (const p of plaintexts) assert.deepEqual(find(p), [], `plaintext ${JSON.stringify(p)} found at rest`);
});
