// Smoke test of the BUILT package (wasm/pkg, from scripts/build-wasm) in Node:
// ESM import + initSync with the module bytes, then every area of wasm/API.md
// once: devices, bundles, seal/open in both suites, backups, safety numbers,
// TOFU, attachments, wire frames, and error codes.
//   node --test wasm/tests/node/smoke.mjs     (run by scripts/test-wasm)

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "pkg");
const w = await import(pathToFileURL(join(pkg, "sotto_wasm.js")).href);
w.initSync({ module: readFileSync(join(pkg, "sotto_wasm_bg.wasm")) });

const enc = new TextEncoder();
const dec = new TextDecoder();
const uuid = () => crypto.randomUUID();

/** Runs `f`, which must throw an Error with `code` (and `detail`). */
function throwsCode(f, code, detail) {
  let err;
  try {
    f();
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof Error, `expected a throw with code ${code}`);
  assert.equal(err.code, code, `code of: ${err.message}`);
  if (detail !== undefined) assert.equal(err.detail, detail);
  return err;
}

test("package.json", () => {
  const meta = JSON.parse(readFileSync(join(pkg, "package.json"), "utf8"));
  assert.equal(meta.name, "sotto-wasm");
  assert.equal(meta.type, "module");
  assert.equal(meta.exports["."].default, "./sotto_wasm.js");
  assert.equal(meta.exports["."].types, "./sotto_wasm.d.ts");
  for (const f of meta.files) readFileSync(join(pkg, f)); // every listed file exists
  const v = w.getVersions();
  assert.equal(v.package, meta.version);
  assert.equal(v.protocol, 1);
  assert.deepEqual(v.suites, ["x25519", "rsa"]);
  assert.match(v.wasmBindgen, /^0\.2\.\d+$/);
});

test("seal and open, x25519 and rsa, then errors", () => {
  const alice = w.Device.generate(uuid(), uuid());
  const bob = w.Device.generate(uuid(), uuid(), { rsaBits: 2048 });
  assert.equal(alice.hasRsa, false);
  assert.equal(bob.hasRsa, true);
  assert.equal(alice.identityKey.length, 32);

  // Each verifies the other's bundle as the relay would serve it (JSON round trip).
  const served = (d) => JSON.parse(JSON.stringify(d.bundle()));
  const bobDev = w.verifyBundle(served(bob), bob.identityKey);
  const aliceDev = w.verifyBundle(served(alice));
  assert.equal(bobDev.userId, bob.userId);
  assert.equal(bobDev.deviceId, bob.deviceId);
  assert.deepEqual(bobDev.identityKey, bob.identityKey);
  assert.equal(bobDev.hasRsa, true);
  assert.equal(bobDev.x25519Key.length, 32);
  assert.equal(bobDev.signingKey.length, 32);
  throwsCode(() => w.verifyBundle(served(bob), alice.identityKey), "identity_mismatch");

  const roomId = uuid();
  for (const suite of ["x25519", "rsa", undefined]) {
    const header = { roomId, clientMessageId: uuid(), timestampMs: 1_700_000_000_123 };
    const env = alice.seal(enc.encode(`hi ${suite}`), header, [
      { device: bobDev, suite },
      { device: alice.verified() },
    ]);
    assert.ok(env instanceof Uint8Array);
    const opened = bob.open(env, { roomId, sender: aliceDev });
    assert.equal(dec.decode(opened.plaintext), `hi ${suite}`);
    assert.equal(opened.suite, suite ?? "x25519");
    assert.equal(opened.roomId, roomId);
    assert.equal(opened.senderUserId, alice.userId);
    assert.equal(opened.senderDeviceId, alice.deviceId);
    assert.equal(opened.clientMessageId, header.clientMessageId);
    assert.equal(opened.timestampMs, header.timestampMs);
    // Alice reads her own copy.
    assert.equal(alice.open(env, { roomId, sender: alice.verified() }).suite, "x25519");

    const info = w.peekEnvelope(env);
    assert.equal(info.version, 1);
    assert.equal(info.suite, suite === "rsa" ? "mixed" : "x25519");
    assert.deepEqual([...info.recipientDeviceIds].sort(), [alice.deviceId, bob.deviceId].sort());
    assert.deepEqual(w.envelopeFromJson(w.envelopeToJson(env)), env);

    // The handle passed as recipient/sender is still usable (not consumed).
    assert.equal(bobDev.deviceId, bob.deviceId);
    assert.equal(aliceDev.deviceId, alice.deviceId);

    throwsCode(() => bob.open(env, { roomId: uuid(), sender: aliceDev }), "context_mismatch");
    throwsCode(() => bob.open(env, { roomId, sender: bob.verified() }), "bad_signature");
    const carol = w.Device.generate(uuid(), uuid());
    throwsCode(() => carol.open(env, { roomId, sender: aliceDev }), "not_a_recipient");
    carol.free();
    const tampered = env.slice();
    tampered[tampered.length - 70] ^= 1; // in the ciphertext: the signature no longer verifies
    throwsCode(() => bob.open(tampered, { roomId, sender: aliceDev }), "bad_signature");
    throwsCode(() => bob.open(env.subarray(0, 50), { roomId, sender: aliceDev }), "malformed");
    throwsCode(() => w.peekEnvelope(Uint8Array.of(2, ...env.subarray(1))), "unsupported_version");
  }
  const h = { roomId, clientMessageId: uuid(), timestampMs: 1 };
  throwsCode(() => alice.seal(enc.encode("x"), h, []), "recipient_count");
  throwsCode(() => alice.seal(enc.encode("x"), h, [{ device: bobDev }, { device: bobDev }]), "duplicate_recipient");
  throwsCode(() => alice.seal(enc.encode("x"), h, [{ device: aliceDev, suite: "rsa" }]), "no_rsa_key");
  throwsCode(() => alice.seal(enc.encode("x"), h, [{ device: bobDev, suite: "p256" }]), "unsupported_suite");
  throwsCode(() => alice.seal(new Uint8Array(256 * 1024 + 1), h, [{ device: bobDev }]), "too_large");
  throwsCode(() => alice.seal(enc.encode("x"), h, [{ device: {} }]), "invalid_argument");
  throwsCode(() => alice.seal(enc.encode("x"), { ...h, roomId: "nope" }, [{ device: bobDev }]), "malformed");
  throwsCode(() => alice.seal(enc.encode("x"), { ...h, timestampMs: -1 }, [{ device: bobDev }]), "invalid_argument");
  throwsCode(() => w.Device.generate(uuid(), uuid(), { rsaBits: 1024 }), "invalid_argument");
  throwsCode(() => w.Device.generate("not-a-uuid", uuid()), "malformed");

  // A freed handle is refused with a code, not a crash.
  const gone = alice.verified();
  gone.free();
  throwsCode(() => alice.seal(enc.encode("x"), h, [{ device: gone }]), "invalid_argument");
  alice.free();
  bob.free();
});

test("linked device and backups", () => {
  const a = w.Device.generate(uuid(), uuid());
  const laptop = a.withNewDeviceKeys(uuid());
  assert.deepEqual(laptop.identityKey, a.identityKey);
  assert.equal(laptop.userId, a.userId);
  assert.notEqual(laptop.deviceId, a.deviceId);

  const params = { mCostKib: 8192, tCost: 1, pCost: 1 };
  const blob = a.exportPassphraseBackup("pass phrase", params);
  const back = w.Device.importPassphraseBackup(blob, "pass phrase");
  assert.equal(back.deviceId, a.deviceId);
  assert.deepEqual(back.bundle(), a.bundle());
  throwsCode(() => w.Device.importPassphraseBackup(blob, "wrong"), "wrong_key_or_corrupted");
  throwsCode(() => w.Device.importPassphraseBackup(blob, ""), "empty_passphrase");
  throwsCode(() => a.exportPassphraseBackup("", params), "empty_passphrase");
  throwsCode(() => a.exportPassphraseBackup("x", { mCostKib: 1024, tCost: 1, pCost: 1 }), "bad_parameters");
  throwsCode(() => w.Device.importPassphraseBackup(blob.subarray(0, 20), "pass phrase"), "malformed");
  // A store from before the store key (`StoreVault.unlockAccount` without one): the same codes,
  // then kept anew under a store key that unlocks it as any store.
  throwsCode(() => w.StoreVault.unlockAccount(undefined, blob, "wrong", params), "wrong_key_or_corrupted");
  throwsCode(() => w.StoreVault.unlockAccount(undefined, blob, "", params), "empty_passphrase");
  throwsCode(() => w.StoreVault.unlockAccount(undefined, blob.subarray(0, 12), "pass phrase", params), "malformed");
  const old = w.StoreVault.unlockAccount(undefined, blob, "pass phrase", params);
  assert.equal(old.device.deviceId, a.deviceId);
  const { storeKey, backup } = old.upgraded;
  const again = w.StoreVault.unlockAccount(storeKey, backup, "pass phrase", params);
  assert.equal(again.upgraded, undefined);
  assert.deepEqual(again.device.bundle(), a.bundle());
  throwsCode(() => w.StoreVault.unlockAccount(storeKey, backup, "wrong", params), "wrong_key_or_corrupted");
  for (const x of [old.vault, old.device, again.vault, again.device]) x.free();
  // Room records: an array, or null for a store that never kept any (anything else is refused,
  // as adopting the known rooms would overwrite saved records).
  throwsCode(() => new w.RoomMembership(a.userId, undefined, []), "invalid_argument");
  const fresh = new w.RoomMembership(a.userId, null, [uuid()]);
  assert.equal(fresh.takeChanges().length, 1);
  fresh.free();

  const { blob: rblob, recoveryKey } = a.exportRecoveryBackup();
  assert.match(recoveryKey, /^([0-9a-f]{4}-){16}[0-9a-f]{4}$/);
  assert.deepEqual(w.Device.importRecoveryBackup(rblob, recoveryKey.toUpperCase()).bundle(), a.bundle());
  throwsCode(() => w.Device.importRecoveryBackup(rblob, "0000"), "bad_recovery_key");
  const other = w.Device.generate(uuid(), uuid()).exportRecoveryBackup().recoveryKey;
  throwsCode(() => w.Device.importRecoveryBackup(rblob, other), "wrong_key_or_corrupted");
});

test("trust", () => {
  const a = w.Device.generate(uuid(), uuid()).identityKey;
  const b = w.Device.generate(uuid(), uuid()).identityKey;
  const sn = w.safetyNumber(a, b);
  assert.match(sn.digits, /^\d{60}$/);
  assert.equal(sn.display, sn.digits.match(/.{5}/g).join(" "));
  assert.deepEqual(w.safetyNumber(b, a), sn);
  assert.equal(w.safetyNumberMatchesQr(b, a, sn.qrPayload), true);
  assert.equal(w.safetyNumberMatchesQr(a, b, sn.qrPayload.subarray(1)), false);
  assert.equal(w.classifyIdentity(null, a), "first_seen");
  assert.equal(w.classifyIdentity(undefined, a), "first_seen");
  assert.equal(w.classifyIdentity(a, a), "unchanged");
  assert.equal(w.classifyIdentity(a, b), "changed");
  throwsCode(() => w.safetyNumber(a, new Uint8Array(31)), "invalid_key");
});

test("attachments", () => {
  const file = new Uint8Array(200_000).map((_, i) => i % 251);
  const e = new w.AttachmentEncryptor(4096);
  const parts = [e.header()];
  for (let i = 0; i < file.length; i += 9999) parts.push(e.update(file.subarray(i, i + 9999)));
  const sealed = e.finish();
  parts.push(sealed.tail);
  const blob = Uint8Array.from(parts.flatMap((p) => [...p]));
  assert.equal(sealed.size, file.length);
  assert.equal(sealed.encryptedSize, blob.length);
  assert.equal(w.encryptedAttachmentSize(file.length, 4096), blob.length);
  const id = uuid();
  const pointer = sealed.pointer(id, "a.bin", "application/octet-stream");
  assert.equal(pointer.id, id);
  assert.equal(pointer.name, "a.bin");
  assert.deepEqual(w.decryptAttachment(pointer, blob), file);

  const d = new w.AttachmentDecryptor(pointer);
  const out = [];
  for (let i = 0; i < blob.length; i += 7777) out.push(d.update(blob.subarray(i, i + 7777)));
  out.push(d.finish());
  assert.deepEqual(Uint8Array.from(out.flatMap((p) => [...p])), file);

  const one = w.encryptAttachment(enc.encode("hello"));
  const p1 = one.sealed.pointer(uuid());
  assert.equal(p1.chunk_size, 65536);
  assert.equal(dec.decode(w.decryptAttachment(p1, one.blob)), "hello");
  const bad = one.blob.slice();
  bad[bad.length - 1] ^= 1;
  throwsCode(() => w.decryptAttachment(p1, bad), "attachment", "digest_mismatch");
  throwsCode(() => w.decryptAttachment(p1, one.blob.subarray(1)), "attachment", "size_mismatch");
  const dd = new w.AttachmentDecryptor(p1);
  dd.update(one.blob.subarray(0, 20));
  throwsCode(() => dd.finish(), "attachment", "truncated");
  throwsCode(() => new w.AttachmentDecryptor({ ...p1, size: 6 }), "attachment", "bad_pointer");
  throwsCode(() => new w.AttachmentDecryptor({ ...p1, extra: 1 }), "malformed");
  throwsCode(() => new w.AttachmentEncryptor(10), "attachment", "bad_chunk_size");
  throwsCode(() => w.decryptAttachment(42, one.blob), "invalid_argument");
});

test("wire frames", () => {
  const room = uuid();
  const f = w.parseServerFrame(JSON.stringify({ type: "typing", room_id: room, user_id: room, active: true, future_field: 1 }));
  assert.deepEqual(f, { type: "typing", room_id: room, user_id: room, active: true });
  assert.deepEqual(w.parseServerFrame('{"type":"pong"}'), { type: "pong" });
  throwsCode(() => w.parseServerFrame('{"type":"teleport"}'), "malformed");
  // Numbers must be exact in JavaScript: a seq of 2^53 is refused, 2^53 - 1 is not.
  const hs = (seq) => `{"type":"history_start","room_id":"${room}","seq":${seq}}`;
  assert.equal(w.parseServerFrame(hs("9007199254740991")).seq, Number.MAX_SAFE_INTEGER);
  throwsCode(() => w.parseServerFrame(hs("9007199254740992")), "malformed");
  // The engine's timing policy and retry rule, and the core's link parser.
  assert.equal(w.reconnectDelayMs(0, 0), 125);
  assert.equal(w.reconnectDelayMs(20, 0), 15000);
  assert.equal(w.transientRefusal("rate_limited"), true);
  assert.equal(w.transientRefusal("blocked"), false);
  assert.equal(w.tokenFromLink(" https://r/verify-email#token=abc&x=1 "), "abc");
  throwsCode(() => w.parseServerFrame("{"), "malformed");
  assert.equal(w.encodeClientFrame({ type: "ping" }), '{"type":"ping"}');
  const resume = JSON.parse(w.encodeClientFrame({ type: "resume", cursors: { [room]: 7 } }));
  assert.deepEqual(resume, { type: "resume", cursors: { [room]: 7 } });
  // Unknown fields are refused as the relay refuses them (serde: not on unit variants like ping).
  throwsCode(() => w.encodeClientFrame({ type: "typing", room_id: room, active: true, extra: 1 }), "malformed");
  throwsCode(() => w.encodeClientFrame({ type: "send", room_id: room, client_id: room, envelope: "+/" }), "malformed");
  throwsCode(() => w.encodeClientFrame("ping"), "invalid_argument");
});
