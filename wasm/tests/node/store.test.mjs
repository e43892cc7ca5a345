// The client's stores (wasm/pkg/store.js): IndexedDbStore on an in-memory
// IndexedDB (fake-indexeddb) and MemoryStore behave the same, and the
// IndexedDB one survives a reopen (a page reload).

import { test } from "node:test";
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import "fake-indexeddb/auto";

const here = dirname(fileURLToPath(import.meta.url));
const { IndexedDbStore, MemoryStore, TEST_ARGON2 } = await import(
  pathToFileURL(join(here, "..", "..", "pkg", "store.js")).href
);

const room = "0190f0f0-0000-7000-8000-000000000001";
const alice = "0190f0f0-0000-7000-8000-00000000000a";

async function behaves(store) {
  assert.equal(await store.account(), null);
  assert.equal(await store.hasDevice(), false);
  const backup = new Uint8Array([1, 2, 3, 4]);
  await store.setAccount({ relay: "http://r", userId: alice, deviceId: room, backup });
  const a = await store.account();
  assert.equal(await store.hasDevice(), true);
  assert.deepEqual([a.relay, a.userId, a.deviceId], ["http://r", alice, room]);
  assert.deepEqual([...a.backup], [1, 2, 3, 4]);

  await store.setPin(alice, { key: new Uint8Array(32).fill(7), verified: false });
  await store.setPin(alice, { key: new Uint8Array(32).fill(7), verified: true });
  const pins = await store.pins();
  assert.equal(pins.size, 1);
  assert.equal(pins.get(alice).verified, true);
  assert.deepEqual([...pins.get(alice).key], new Array(32).fill(7));

  await store.advanceCursor(room, 5);
  await store.advanceCursor(room, 3);
  assert.equal((await store.cursors()).get(room), 5, "cursors never move back");

  assert.equal(await store.markSeen(alice, "c1", room, 1), "new");
  assert.equal(await store.markSeen(alice, "c1", room, 1), "again");
  assert.equal(await store.markSeen(alice, "c1", room, 2), "replay");
  assert.equal(await store.markSeen("someone-else", "c1", room, 2), "new");

  for (const id of ["m1", "m2", "m3"]) {
    await store.outboxPush({ clientId: id, roomId: room, envelope: new TextEncoder().encode(id) });
  }
  await store.outboxPush({ clientId: "m1", roomId: room, envelope: new Uint8Array([9]) });
  await store.outboxRemove("m2");
  const out = await store.outbox();
  assert.deepEqual(out.map((e) => e.clientId), ["m1", "m3"], "oldest first, once each");
  assert.equal(new TextDecoder().decode(out[0].envelope), "m1", "a second push of an id changes nothing");

  // The engine's membership records: none kept yet is `null` (a store from
  // before signed membership), then what was saved, deletes included.
  assert.equal(await store.rooms(), null);
  const other = "0190f0f0-0000-7000-8000-000000000002";
  await store.saveRooms([[room, new Uint8Array([1, 2])], [other, new Uint8Array([3])]]);
  await store.saveRooms([[other, null], [room, new Uint8Array([1, 2, 4])]]);
  const rooms = await store.rooms();
  assert.deepEqual(rooms.map(([id, r]) => [id, [...r]]), [[room, [1, 2, 4]]]);

  // The store key is kept with the account.
  await store.setAccount({ relay: "http://r", userId: alice, deviceId: room, backup, storeKey: new Uint8Array([5, 6]) });
  assert.deepEqual([...(await store.account()).storeKey], [5, 6]);

  // Local history: items by (room, seq), pages newest first below `before`,
  // one room's items never in another's page, a put at the same place replaces.
  const items = (r, seqs) => seqs.map((seq) => ({ roomId: r, seq, sealed: new Uint8Array([seq]) }));
  await store.historyPut(items(room, [1, 2, 3, 10, 11]));
  await store.historyPut(items(other, [4, 5]));
  await store.historyPut([{ roomId: room, seq: 3, sealed: new Uint8Array([33]) }]);
  const seqs = async (r, before, limit) => (await store.historyPage(r, before, limit)).map((h) => [h.seq, h.sealed[0]]);
  assert.deepEqual(await seqs(room, undefined, 3), [[11, 11], [10, 10], [3, 33]]);
  assert.deepEqual(await seqs(room, 10, 10), [[3, 33], [2, 2], [1, 1]]);
  assert.deepEqual(await seqs(room, 1, 10), []);
  assert.deepEqual(await seqs(other, undefined, 10), [[5, 5], [4, 4]]);
  await store.historyDelete(room, 10);
  assert.deepEqual(await seqs(room, undefined, 2), [[11, 11], [3, 33]]);
  assert.deepEqual(await seqs("0190f0f0-0000-7000-8000-0000000000ff", undefined, 5), []);
}

test("MemoryStore", async () => {
  const s = new MemoryStore();
  assert.deepEqual(s.backupParams, TEST_ARGON2);
  assert.equal(new MemoryStore({ backupParams: null }).backupParams, undefined);
  await behaves(s);
});

test("IndexedDbStore, and it survives a reopen", async () => {
  const s = await IndexedDbStore.open("alice");
  assert.equal(s.backupParams, undefined, "persistent stores use the core's default Argon2 parameters");
  await behaves(s);
  s.close();
  const again = await IndexedDbStore.open("alice");
  assert.equal((await again.account()).userId, alice);
  assert.equal((await again.cursors()).get(room), 5);
  assert.equal(await again.markSeen(alice, "c1", room, 2), "replay");
  assert.deepEqual((await again.outbox()).map((e) => e.clientId), ["m1", "m3"]);
  assert.deepEqual((await again.rooms()).map(([id, r]) => [id, [...r]]), [[room, [1, 2, 4]]]);
  assert.deepEqual((await again.historyPage(room, undefined, 10)).map((h) => h.seq), [11, 3, 2, 1]);
  again.close();
  await IndexedDbStore.destroy("alice");
  const fresh = await IndexedDbStore.open("alice");
  assert.equal(await fresh.account(), null, "destroy forgets the account");
  fresh.close();
});
