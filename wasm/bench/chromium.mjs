// The browser client through WASM, measured as the native SDK is
// (tests/benches/sdk.rs): `sendText` → the peer's `message` event for a 1 KiB
// text in a room of 2 devices, in headless Chromium, against the sum of its
// parts measured in the same page on the same relay: `seal` for the same
// devices (the WASM core), the relay round trip of that sealed envelope
// between two raw WebSockets, and `open`. Prints one Markdown table row.
//
// Run by scripts/bench-browser (which builds the release relay and the
// package, and runs the native SDK's measure in the same run). Needs Chromium
// and playwright-core (scripts/test-wasm installs them).

import { PASSWORD, inChromium, registerAll } from "../tests/browser/harness.mjs";

const ROUNDS = Number(process.env.SOTTO_BENCH_ROUNDS ?? 300);
const WARMUP = 20;

await inChromium("sotto-bench-browser-", async ({ dir, origin, relay, browser }) => {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("crash", () => console.error("the page crashed"));
  page.on("console", (m) => process.env.SOTTO_BENCH_DEBUG && console.error(`console.${m.type()}: ${m.text()}`));
  await page.goto(`${origin}/`);
  await page.evaluate(async () => {
    const { default: init } = await import("/sotto_wasm.js");
    await init();
    globalThis.sotto = await import("/client.js");
  });
  await registerAll(page, relay, dir, ["alice", "bob"]);
  const r = await page.evaluate(
    async ([url, pw, rounds, warmup]) => {
      const { Relay, Session, MemoryStore } = globalThis.sotto;
      const open = async (name) => {
        const relay = new Relay(url);
        await relay.login(name, pw);
        const session = await Session.open({ relay, store: new MemoryStore(), passphrase: `store ${name}` });
        const online = new Promise((resolve) =>
          session.addEventListener("connection", (e) => e.detail.state === "online" && resolve()),
        );
        session.connect();
        await online;
        return { relay, session };
      };
      const a = await open("alice");
      const b = await open("bob");
      await b.session.addContact(a.session.userId);
      const room = (await a.session.createRoom("bench", [b.session.userId])).id;
      const text = "x".repeat(1024);
      const median = (v) => [...v].sort((x, y) => x - y)[Math.floor(v.length / 2)];
      const p99 = (v) => [...v].sort((x, y) => x - y)[Math.min(v.length - 1, Math.floor((v.length * 99) / 100))];

      // The SDK, end to end: send → Bob's message event (the time of the
      // event, recorded by the listener, however the two promises interleave).
      const arrived = new Map();
      let waiter = null;
      b.session.addEventListener("message", (e) => {
        arrived.set(e.detail.clientId, performance.now());
        if (waiter !== null && waiter.clientId === e.detail.clientId) waiter.resolve();
      });
      const sdk = [];
      for (let i = 0; i < rounds + warmup; i++) {
        const t0 = performance.now();
        const sent = await a.session.sendText(room, text);
        if (!arrived.has(sent.clientId)) {
          await new Promise((resolve) => (waiter = { clientId: sent.clientId, resolve }));
        }
        if (i >= warmup) sdk.push(arrived.get(sent.clientId) - t0);
      }

      // The parts, with the page's own WASM core: seal for the same two
      // devices, the relay round trip between two raw WebSockets, open.
      // (The page's timer is coarse, 0.1 ms without cross-origin isolation:
      // seal and open, far shorter, are timed over all rounds at once.)
      const da = a.session.device;
      const db = b.session.device;
      const recipients = [
        { device: da.verified(), suite: "x25519" },
        { device: db.verified(), suite: "x25519" },
      ];
      const plaintext = new TextEncoder().encode(JSON.stringify({ type: "text", body: text }));
      const socket = async (relay) => {
        const ws = new WebSocket(relay.wsUrl);
        const frames = [];
        let wake = null;
        ws.onmessage = (e) => {
          frames.push(JSON.parse(e.data));
          if (wake) wake();
        };
        await new Promise((r) => (ws.onopen = r));
        ws.send(JSON.stringify({ type: "auth", token: await relay.accessToken() }));
        const next = async (pred) => {
          for (;;) {
            const error = frames.find((f) => f.type === "error");
            if (error) throw new Error(`the relay refused: ${JSON.stringify(error)}`);
            const i = frames.findIndex(pred);
            if (i >= 0) return frames.splice(i, 1)[0];
            await new Promise((r) => (wake = r));
          }
        };
        await next((f) => f.type === "ready");
        return { ws, next };
      };
      const wa = await socket(a.relay);
      const wb = await socket(b.relay);
      const b64 = (bytes) => {
        let s = "";
        for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
        return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
      };
      const unb64 = (t) => Uint8Array.from(atob(t.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
      const sealed = [];
      const sealStart = performance.now();
      for (let i = 0; i < rounds + warmup; i++) {
        const clientMessageId = crypto.randomUUID();
        sealed.push([clientMessageId, da.seal(plaintext, { roomId: room, clientMessageId, timestampMs: Date.now() }, recipients)]);
      }
      const seal = (performance.now() - sealStart) / (rounds + warmup);
      const rtt = [];
      const received = [];
      for (let i = 0; i < rounds + warmup; i++) {
        const [clientId, bytes] = sealed[i];
        const envelope = b64(bytes);
        const t1 = performance.now();
        wa.ws.send(JSON.stringify({ type: "send", room_id: room, client_id: clientId, envelope }));
        const f = await wb.next((f) => f.type === "message" && f.envelope === envelope);
        if (i >= warmup) rtt.push(performance.now() - t1);
        received.push(unb64(f.envelope));
      }
      const sender = da.verified();
      const openStart = performance.now();
      for (const bytes of received) db.open(bytes, { roomId: room, sender });
      const opening = (performance.now() - openStart) / received.length;
      wa.ws.close();
      wb.ws.close();
      a.session.close();
      b.session.close();
      return {
        sdk: median(sdk),
        sdkP99: p99(sdk),
        seal,
        relay: median(rtt),
        open: opening,
      };
    },
    [relay.url, PASSWORD, ROUNDS, WARMUP],
  );
  if (errors.length > 0) throw new Error(`page errors: ${errors.join("\n")}`);
  const us = (ms) => (ms * 1000).toFixed(0);
  const sum = r.seal + r.relay + r.open;
  console.log(
    `| 2 devices, Chromium (WASM) | ${us(r.sdk)} µs (${us(r.sdkP99)} µs) | ${us(r.seal)} µs | ${us(r.relay)} µs | ${us(r.open)} µs | ${us(sum)} µs | ${(r.sdk / sum).toFixed(2)} |`,
  );
}, {
  // As the native benchmark's relay (tests/src/process.rs): no rate limit in the way.
  SOTTO_POST_RATE: "1000000",
  SOTTO_WS_FRAME_RATE: "1000000",
  SOTTO_RECEIPT_RATE: "1000000",
});
