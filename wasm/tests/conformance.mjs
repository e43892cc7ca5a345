// One conformance suite for every `KeyStore` of the TypeScript client: run by
// wasm/tests/node/store.test.mjs against MemoryStore and IndexedDbStore (on
// fake-indexeddb), and by wasm/tests/browser/client.test.mjs against
// IndexedDbStore in Chromium. The native SDK's SQLite store passes the same
// checks in core/client/src/store.rs. No Node modules here: it runs in a page.
//
// `open()` opens the store under test; `reopen(store)` closes it and opens it
// again (a page reload: persistent stores keep everything, a memory store is
// handed back as is); `ClientLink` is the engine's live connection from the bindings.

function fail(msg) {
  throw new Error(`store conformance: ${msg}`);
}

function eq(actual, expected, msg) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) fail(`${msg}: expected ${e}, got ${a}`);
}

const room = "0190f0f0-0000-7000-8000-000000000001";
const other = "0190f0f0-0000-7000-8000-000000000002";
const alice = "0190f0f0-0000-7000-8000-00000000000a";
const bob = "0190f0f0-0000-7000-8000-00000000000b";
const bobDevice = "0190f0f0-0000-7000-8000-00000000000c";
const id = (n) => `0190f0f0-0000-7000-8000-${String(n).padStart(12, "0")}`;

const none = { cursors: [], seen: [], historyPut: [], historyDelete: [] };
const seqs = async (store, r, before, limit) =>
  (await store.historyPage(r, before, limit)).map((h) => [h.seq, h.sealed[0]]);

/** Account, pins, outbox, membership records, history pages. */
async function basics(store) {
  eq(await store.account(), null, "a new store has no account");
  eq(await store.hasDevice(), false, "a new store has no device");
  const backup = new Uint8Array([1, 2, 3, 4]);
  await store.setAccount({ relay: "http://r", userId: alice, deviceId: room, backup });
  const a = await store.account();
  eq(await store.hasDevice(), true, "hasDevice after setAccount");
  eq([a.relay, a.userId, a.deviceId, [...a.backup]], ["http://r", alice, room, [1, 2, 3, 4]], "the account");

  await store.setPin(alice, { key: new Uint8Array(32).fill(7), verified: false });
  await store.setPin(alice, { key: new Uint8Array(32).fill(7), verified: true });
  const pins = await store.pins();
  eq([pins.size, pins.get(alice).verified, [...pins.get(alice).key]], [1, true, new Array(32).fill(7)], "pins");
  // A first-contact pin never replaces one that is there (another tab's).
  eq(await store.addPin(alice, { key: new Uint8Array(32).fill(9), verified: false }), false, "addPin keeps a pin");
  eq([...(await store.pins()).get(alice).key], new Array(32).fill(7), "the pin stays");
  eq(await store.addPin(bob, { key: new Uint8Array(32).fill(9), verified: false }), true, "addPin pins a new user");
  eq((await store.pins()).size, 2, "two pins");

  for (const c of ["m1", "m2", "m3"]) {
    await store.outboxPush({ clientId: c, roomId: room, envelope: new TextEncoder().encode(c), control: c === "m3" });
  }
  await store.outboxPush({ clientId: "m1", roomId: room, envelope: new Uint8Array([9]) });
  await store.outboxRemove("m2");
  const out = await store.outbox();
  eq(out.map((e) => e.clientId), ["m1", "m3"], "the outbox: oldest first, once each");
  if (store.outboxHas) {
    eq([await store.outboxHas("m1"), await store.outboxHas("m2"), await store.outboxHas("m9")], [true, false, false], "outboxHas");
  }
  eq(new TextDecoder().decode(out[0].envelope), "m1", "a second push of an id changes nothing");
  eq(out.map((e) => e.control === true), [false, true], "a control message stays marked (no `sent` for it after a reload)");

  // Membership records: none kept yet is `null`, then what was saved, deletes included.
  eq(await store.rooms(), null, "no membership records yet");
  await store.saveRooms([[room, new Uint8Array([1, 2])], [other, new Uint8Array([3])]]);
  await store.saveRooms([[other, null], [room, new Uint8Array([1, 2, 4])]]);
  eq((await store.rooms()).map(([i, r]) => [i, [...r]]), [[room, [1, 2, 4]]], "membership records");

  await store.setAccount({ relay: "http://r", userId: alice, deviceId: room, backup, storeKey: new Uint8Array([5, 6]) });
  eq([...(await store.account()).storeKey], [5, 6], "the store key is kept with the account");

  // History: pages newest first below `before`, per room, a put at the same place replaces.
  const items = (r, list) => list.map((seq) => ({ roomId: r, seq, sealed: new Uint8Array([seq]) }));
  await store.historyPut(items(room, [1, 2, 3, 10, 11]));
  await store.historyPut(items(other, [4, 5]));
  await store.historyPut([{ roomId: room, seq: 3, sealed: new Uint8Array([33]) }]);
  eq(await seqs(store, room, undefined, 3), [[11, 11], [10, 10], [3, 33]], "the newest page");
  eq(await seqs(store, room, 10, 10), [[3, 33], [2, 2], [1, 1]], "a page before 10");
  eq(await seqs(store, room, 1, 10), [], "nothing before 1");
  eq(await seqs(store, other, undefined, 10), [[5, 5], [4, 4]], "another room's page");
  eq(await seqs(store, id(255), undefined, 5), [], "an unknown room");
}

/** `apply`: one step of the engine's feed, all or none. */
async function apply(store) {
  await store.apply({
    cursors: [{ roomId: room, seq: 5 }],
    seen: [{ sender: bob, clientId: id(100), roomId: room, seq: 4 }],
    historyPut: [{ roomId: room, seq: 12, sealed: new Uint8Array([12]) }],
    historyDelete: [{ roomId: room, seq: 10 }],
  });
  await store.apply({
    cursors: [{ roomId: room, seq: 3 }],
    seen: [{ sender: bob, clientId: id(100), roomId: room, seq: 9 }],
    historyPut: [{ roomId: room, seq: 13, sealed: new Uint8Array([13]) }],
    historyDelete: [{ roomId: room, seq: 13 }],
  });
  await store.apply(none);
  eq((await store.cursors()).get(room), 5, "cursors never move back");
  eq(await store.seenAt(bob, id(100)), { roomId: room, seq: 4 }, "a seen id keeps its first place");
  eq(await store.seenAt(bob, id(101)), null, "an unseen id");
  eq(await store.seenAt(alice, id(100)), null, "seen ids are per sender");
  eq(await seqs(store, room, undefined, 3), [[12, 12], [11, 11], [3, 33]], "puts, then deletes");

  // All or none: an item the store cannot keep fails the whole step.
  let threw = false;
  try {
    await store.apply({
      cursors: [{ roomId: room, seq: 9 }],
      seen: [{ sender: bob, clientId: id(102), roomId: room, seq: 9 }],
      historyPut: [
        { roomId: room, seq: 9, sealed: new Uint8Array([9]) },
        { roomId: room, seq: Number.NaN, sealed: new Uint8Array([0]) },
      ],
      historyDelete: [{ roomId: room, seq: 12 }],
    });
  } catch {
    threw = true;
  }
  eq(threw, true, "a step with an invalid item is refused");
  eq((await store.cursors()).get(room), 5, "no cursor of a refused step");
  eq(await store.seenAt(bob, id(102)), null, "no seen id of a refused step");
  eq(await seqs(store, room, undefined, 2), [[12, 12], [11, 11]], "no history change of a refused step");
}

/**
 * A crash between the engine's step and the apply: the store keeps the old
 * cursor, the next connection resumes from it, and the messages of the lost
 * step are new again (not replays), so each is shown once. Driven through the
 * engine's link (`ClientLink`), as the client drives it.
 */
async function crashBeforeApply(store, reopen, ClientLink) {
  const step = async (s, from, to, applyIt) => {
    const link = new ClientLink(alice, room, 1000);
    try {
      const next = (kind) => {
        for (;;) {
          const out = link.poll(0);
          if (out === undefined) fail(`the link stopped before ${kind}`);
          if (out.kind === kind) return out;
        }
      };
      link.start(0);
      const { conn } = next("prepare");
      link.prepared(conn, 0, [other], [...(await s.cursors())]);
      next("open");
      link.opened(conn, 0);
      next("authenticate");
      link.received(conn, 0, JSON.stringify({ type: "ready", user_id: alice }));
      const resume = JSON.parse(next("send").text).cursors;
      for (let seq = from; seq <= to; seq++) {
        const frame = { room_id: other, id: id(2000 + seq), seq, sender_id: bob, device_id: bobDevice };
        link.received(conn, 0, JSON.stringify({ type: "message", ...frame, envelope: "AA", created_at: "2026-12-07T00:00:00Z" }));
      }
      const shown = [];
      for (;;) {
        const out = next(shown.length === to - from + 1 ? "store" : "receive");
        if (out.kind === "store") {
          if (applyIt) await s.apply(out.changes);
          break;
        }
        const { seq } = out.message;
        const clientId = id(1000 + seq);
        eq(link.seen(bob, clientId, other, seq, await s.seenAt(bob, clientId)), "new", `message ${seq} is new`);
        link.settle(other, seq, new Uint8Array([seq]), undefined);
        shown.push(seq);
      }
      return { resume, shown };
    } finally {
      link.free();
    }
  };
  await step(store, 1, 3, true);
  await step(store, 4, 6, false); // the crash: nothing stored, nothing shown
  const again = await reopen(store);
  const { resume, shown } = await step(again, 4, 6, true);
  eq(resume, { [other]: 3 }, "the next connection resumes from the stored cursor");
  eq(shown, [4, 5, 6], "the lost step's messages are shown once");
  eq((await again.historyPage(other, undefined, 10)).map((h) => h.seq), [6, 5, 4, 3, 2, 1], "history of both steps");
  return again;
}

/** Runs the whole suite; returns the store (reopened by the crash check). */
export async function storeConformance({ open, reopen, ClientLink }) {
  let store = await open();
  await basics(store);
  await apply(store);
  store = await crashBeforeApply(store, reopen, ClientLink);
  return store;
}
