// The TypeScript client in a real browser (headless Chromium, driven by
// playwright-core): the global WebSocket, IndexedDbStore under the core's
// default Argon2 parameters, a Blob upload over plain HTTP/1.1 with CORS, a
// streamed download, and a reload that unlocks the keys again from IndexedDB.
// Skipped when Chromium or playwright-core is missing. Run by
// scripts/test-wasm-client after the package is built.

import { test } from "node:test";
import assert from "node:assert/strict";
import {
  PASSWORD,
  chromium,
  chromiumPath,
  inChromium,
  missing,
  registerAll,
  staticServer,
} from "./harness.mjs";

test("in Chromium: the store conformance suite on IndexedDB", async () => {
  if (missing) throw new Error(missing);
  const server = await staticServer();
  const browser = await chromium.launch({ executablePath: chromiumPath, args: ["--no-sandbox"] });
  try {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
    const result = await page.evaluate(async () => {
      const { default: init, ClientLink } = await import("/sotto_wasm.js");
      await init();
      const { IndexedDbStore } = await import("/store.js");
      const { storeConformance } = await import("/conformance.mjs");
      const reopen = async (x) => {
        x.close();
        return IndexedDbStore.open("conformance");
      };
      try {
        const s = await storeConformance({ open: () => IndexedDbStore.open("conformance"), reopen, ClientLink });
        s.close();
        await IndexedDbStore.destroy("conformance");
        return "ok";
      } catch (e) {
        return String(e && e.stack ? e.stack : e);
      }
    });
    assert.equal(result, "ok");
  } finally {
    await browser.close();
    server.close();
  }
});

test("in Chromium: WebSocket, IndexedDB keys, file over HTTP/1.1, reload", () =>
  inChromium("sotto-wasm-browser-", async ({ dir, origin, relay, browser }) => {
    const page = await browser.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(`${origin}/`);
    const load = async () =>
      page.evaluate(async () => {
        const { default: init } = await import("/sotto_wasm.js");
        await init();
        globalThis.sotto = await import("/client.js");
      });
    await load();
    await registerAll(page, relay, dir, ["alice", "bob"]);

    const first = await page.evaluate(
      async ([url, pw]) => {
        const { Relay, Session, IndexedDbStore } = globalThis.sotto;
        const open = async (name) => {
          const relay = new Relay(url);
          await relay.login(name, pw);
          const store = await IndexedDbStore.open(name);
          const session = await Session.open({ relay, store, passphrase: `store ${name}` });
          const online = new Promise((resolve) =>
            session.addEventListener("connection", (e) => e.detail.state === "online" && resolve()),
          );
          session.connect();
          await online;
          return session;
        };
        const a = await open("alice");
        const b = await open("bob");
        const next = (type) =>
          new Promise((resolve) =>
            b.addEventListener("message", (e) => e.detail.content.type === type && resolve(e.detail), { once: false }),
          );
        const room = await a.directRoom(b.userId);
        // b is invited (not a's contact): it accepts, and a hears that it joined.
        const joinedP = new Promise((resolve) =>
          a.addEventListener("room", (e) => e.detail.change === "member_added" && resolve(), { once: false }),
        );
        const [inv] = await b.invitations();
        await b.acceptInvitation(inv.id);
        await joinedP;
        const textP = next("text");
        await a.sendText(room.id, "hello from chromium");
        const text = await textP;
        const bytes = new Uint8Array(200_000);
        crypto.getRandomValues(bytes.subarray(0, 65_536));
        crypto.getRandomValues(bytes.subarray(131_072, 196_608));
        const fileP = next("file");
        await a.sendFile(room.id, new File([bytes], "x.bin", { type: "application/x-test" }));
        const fm = await fileP;
        const blob = await b.downloadFile(fm.content.file);
        const back = new Uint8Array(await blob.arrayBuffer());
        const same = back.length === bytes.length && back.every((v, i) => v === bytes[i]);
        const out = {
          room: room.id,
          bobDevice: b.deviceId,
          text: text.content.body,
          trust: text.trust,
          file: fm.content.file.name,
          same,
          backupParams: (await IndexedDbStore.open("bob")).backupParams ?? null,
        };
        a.close();
        b.close();
        return out;
      },
      [relay.url, PASSWORD],
    );
    assert.equal(first.text, "hello from chromium");
    assert.equal(first.trust, "unverified");
    assert.equal(first.file, "x.bin");
    assert.ok(first.same, "the file came back byte for byte");
    assert.equal(first.backupParams, null, "IndexedDB keeps keys under the core's default Argon2 parameters");

    await page.reload();
    await load();
    const again = await page.evaluate(
      async ([url, pw, room]) => {
        const { Relay, Session, IndexedDbStore } = globalThis.sotto;
        const relay = new Relay(url);
        await relay.login("bob", pw);
        const store = await IndexedDbStore.open("bob");
        let wrong = null;
        try {
          await Session.open({ relay, store, passphrase: "not it" });
        } catch (e) {
          wrong = e.code;
        }
        const s = await Session.open({ relay, store, passphrase: "store bob" });
        const history = (await s.history(room)).map((m) => (m.content.type === "text" ? m.content.body : m.content.type));
        const r = { hasDevice: await store.hasDevice(), wrong, deviceId: s.deviceId, history };
        s.close();
        return r;
      },
      [relay.url, PASSWORD, first.room],
    );
    assert.equal(again.hasDevice, true);
    assert.equal(again.wrong, "wrong_key_or_corrupted");
    assert.equal(again.deviceId, first.bobDevice, "the same device, unlocked from IndexedDB");
    assert.deepEqual(again.history, ["hello from chromium", "file"]);
    assert.deepEqual(errors, []);
  }));

test("in Chromium: two tabs of one device share one connection (Web Locks), and the lead passes on", () =>
  inChromium("sotto-wasm-tabs-", async ({ dir, origin, relay, browser }) => {
    // Two tabs of Alice's browser (one context: one IndexedDB, one lock manager),
    // and Bob in a browser of his own. Every page counts the sockets it opens.
    const aliceBrowser = await browser.newContext();
    const bobBrowser = await browser.newContext();
    const errors = [];
    const open = async (context) => {
      const page = await context.newPage();
      page.on("pageerror", (e) => errors.push(String(e)));
      await page.goto(`${origin}/`);
      await page.evaluate(async () => {
        const Native = globalThis.WebSocket;
        globalThis.sockets = 0;
        globalThis.WebSocket = class extends Native {
          constructor(...a) {
            super(...a);
            globalThis.sockets++;
          }
        };
        const { default: init } = await import("/sotto_wasm.js");
        await init();
        globalThis.sotto = await import("/client.js");
        globalThis.seen = [];
        globalThis.states = [];
      });
      return page;
    };
    const [tab1, tab2, bobTab] = [await open(aliceBrowser), await open(aliceBrowser), await open(bobBrowser)];
    await registerAll(tab1, relay, dir, ["alice", "bob"]);
    // Each tab logs in on its own (its own refresh token) and opens the one device.
    const start = (page, name) =>
      page.evaluate(
        async ([url, name, pw]) => {
          const { Relay, Session, IndexedDbStore } = globalThis.sotto;
          const relay = new Relay(url);
          await relay.login(name, pw);
          const s = await Session.open({ relay, store: await IndexedDbStore.open(name), passphrase: `store ${name}` });
          s.addEventListener("message", (e) => globalThis.seen.push(e.detail.content.body));
          s.addEventListener("connection", (e) => globalThis.states.push(e.detail.state));
          globalThis.s = s;
          globalThis.r = relay;
          s.connect();
          const deadline = Date.now() + 20_000;
          while (s.connection !== "online" && s.connection !== "following" && Date.now() < deadline) {
            await new Promise((r) => setTimeout(r, 50));
          }
          return { deviceId: s.deviceId, userId: s.userId, connection: s.connection };
        },
        [relay.url, name, PASSWORD],
      );
    const a1 = await start(tab1, "alice");
    assert.equal(a1.connection, "online", "the first tab leads");
    const b = await start(bobTab, "bob");
    const a2 = await start(tab2, "alice");
    assert.equal(a2.deviceId, a1.deviceId, "one device in both tabs");
    assert.equal(a2.connection, "following", "the second tab follows");
    assert.equal(await tab2.evaluate(() => globalThis.sockets), 0, "the following tab opens no socket");

    // A room, made from the following tab (handed to the leading one).
    const room = await tab2.evaluate(async (bobId) => (await globalThis.s.directRoom(bobId)).id, b.userId);
    await bobTab.evaluate(async () => {
      const [inv] = await globalThis.s.invitations();
      await globalThis.s.acceptInvitation(inv.id);
    });
    const waitFor = (page, text) =>
      page.evaluate(async (text) => {
        const deadline = Date.now() + 20_000;
        while (!globalThis.seen.includes(text) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        return globalThis.seen.filter((t) => t === text).length;
      }, text);
    // Bob writes: both of Alice's tabs show it (the follower through the leader).
    await bobTab.evaluate((room) => globalThis.s.sendText(room, "hello, both tabs"), room);
    assert.equal(await waitFor(tab1, "hello, both tabs"), 1);
    assert.equal(await waitFor(tab2, "hello, both tabs"), 1);
    // Alice writes from the following tab: one post, Bob gets it once.
    const sent = await tab2.evaluate((room) => globalThis.s.sendText(room, "from the second tab"), room);
    assert.equal(typeof sent.seq, "number");
    assert.equal(await waitFor(bobTab, "from the second tab"), 1);
    const stored = await bobTab.evaluate(async (room) => (await globalThis.r.messages(room, 0, 100)).items.length, room);

    // The leading tab goes: the follower takes the lead and its own socket.
    await tab1.close();
    const promoted = await tab2.evaluate(async () => {
      const deadline = Date.now() + 20_000;
      while (globalThis.s.connection !== "online" && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      return { connection: globalThis.s.connection, sockets: globalThis.sockets };
    });
    assert.deepEqual(promoted, { connection: "online", sockets: 1 });
    await bobTab.evaluate((room) => globalThis.s.sendText(room, "after the handover"), room);
    assert.equal(await waitFor(tab2, "after the handover"), 1);
    // Nothing was posted twice: Bob's room holds his three messages' worth plus Alice's one, once each.
    const after = await bobTab.evaluate(async (room) => (await globalThis.r.messages(room, 0, 100)).items.length, room);
    assert.equal(after, stored + 1, "only Bob's last message was added");
    assert.deepEqual(errors, []);
  }));
