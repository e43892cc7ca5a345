// The client's stores (wasm/pkg/store.js) through the one conformance suite
// (wasm/tests/conformance.mjs): MemoryStore, and IndexedDbStore on an
// in-memory IndexedDB (fake-indexeddb), which also survives a reopen (a page
// reload). The browser test runs the same suite on Chromium's IndexedDB.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import "fake-indexeddb/auto";

const here = dirname(fileURLToPath(import.meta.url));
const { IndexedDbStore, MemoryStore, TEST_ARGON2 } = await import(
  pathToFileURL(join(here, "..", "..", "pkg", "store.js")).href
);
const bindings = await import(pathToFileURL(join(here, "..", "..", "pkg", "sotto_wasm.js")).href);
bindings.initSync({ module: readFileSync(join(here, "..", "..", "pkg", "sotto_wasm_bg.wasm")) });
const { storeConformance } = await import(pathToFileURL(join(here, "..", "conformance.mjs")).href);
const { ClientLink } = bindings;

const room = "0190f0f0-0000-7000-8000-000000000001";
const alice = "0190f0f0-0000-7000-8000-00000000000a";

test("MemoryStore", async () => {
  const s = new MemoryStore();
  assert.deepEqual(s.backupParams, TEST_ARGON2);
  assert.equal(new MemoryStore({ backupParams: null }).backupParams, undefined);
  await storeConformance({ open: async () => s, reopen: async (x) => x, ClientLink });
});

test("IndexedDbStore, and it survives a reopen", async () => {
  const s = await IndexedDbStore.open("alice");
  assert.equal(s.backupParams, undefined, "persistent stores use the core's default Argon2 parameters");
  const reopen = async (x) => {
    x.close();
    return IndexedDbStore.open("alice");
  };
  (await storeConformance({ open: async () => s, reopen, ClientLink })).close();
  const again = await IndexedDbStore.open("alice");
  assert.equal((await again.account()).userId, alice);
  assert.equal((await again.cursors()).get(room), 5);
  assert.deepEqual(await again.seenAt("0190f0f0-0000-7000-8000-00000000000b", "0190f0f0-0000-7000-8000-000000000100"), { roomId: room, seq: 4 });
  assert.deepEqual((await again.outbox()).map((e) => e.clientId), ["m1", "m3"]);
  assert.deepEqual((await again.rooms()).map(([id, r]) => [id, [...r]]), [[room, [1, 2, 4]]]);
  assert.deepEqual((await again.historyPage(room, undefined, 10)).map((h) => h.seq), [12, 11, 3, 2, 1]);
  again.close();
  await IndexedDbStore.destroy("alice");
  const fresh = await IndexedDbStore.open("alice");
  assert.equal(await fresh.account(), null, "destroy forgets the account");
  fresh.close();
});
