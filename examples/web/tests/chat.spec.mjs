// End-to-end test of the browser chat: Debian's Chromium driven by playwright-core.
//
// Alice (a desktop-sized context) and Bob (a phone-sized one, 390×844) register
// through the page, open the e-mailed verification link from the relay's outbox in
// the same page, log in, create their keys in the browser, and chat both ways with
// typing, unread counts, delivered/read marks and a shared file; they compare safety
// numbers; Alice reloads and unlocks her keys from IndexedDB. Then Alice opens a group
// with a native client (sotto-core) run by the Rust test that spawns this script, and
// each side opens the other's messages.
//
// Environment:
//   SOTTO_URL         the relay (http://127.0.0.1:PORT), serving the page at /app/
//   SOTTO_DATA_DIR    the relay's data directory (verification e-mails in outbox/)
//   SOTTO_ARTIFACTS   where screenshots go (default target/test-artifacts/browser)
//   SOTTO_NATIVE_USER username of the native client's account (verified already);
//                     unset: the cross-implementation step is skipped
//   SOTTO_CHROMIUM    the browser (default /usr/bin/chromium)
//   SOTTO_HEADED=1    show the browser (debugging)
//
// Protocol with the Rust test: JSON lines. This script prints on stdout
//   {"step":"invited","room_id","alice_id"}        Alice invited the native user to a group
//   {"step":"group","room_id","alice_id","text"}   Alice's group with the native user
//   {"step":"replace_identity"}                    now give the native user a new identity key
//   {"step":"intrude","room_id"}                   now write a stranger into the group's members (database)
//   {"step":"done","plaintexts":[...]}            everything typed in the browser
// and reads on stdin
//   {"step":"reply","text"}                        what the native user answered
//   {"step":"replaced","user_id"}                  the native user's identity key is replaced
//   {"step":"intruded","user_id","username"}       a stranger is a member in the relay's database
// Logs go to stderr. Exit 0 on success, 1 with a message on any failure.

import { chromium } from "playwright-core";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";

const URL_BASE = need("SOTTO_URL").replace(/\/$/, "");
const DATA_DIR = need("SOTTO_DATA_DIR");
const ARTIFACTS = resolve(process.env.SOTTO_ARTIFACTS ?? "target/test-artifacts/browser");
const NATIVE_USER = process.env.SOTTO_NATIVE_USER ?? "";
const CHROMIUM = process.env.SOTTO_CHROMIUM ?? "/usr/bin/chromium";
/** The longest any one expectation waits (Argon2id in WASM, key generation, a busy 2-core machine). */
const WAIT = Number(process.env.SOTTO_WAIT_MS ?? 30_000);
const PASSWORD = "correct horse battery staple 42";
const PASSPHRASE = "a passphrase for this browser";

const started = Date.now();
const plaintexts = [];

function need(name) {
  const v = process.env[name];
  if (!v) fail(`${name} is not set`);
  return v;
}

function log(...args) {
  const t = ((Date.now() - started) / 1000).toFixed(1).padStart(6);
  console.error(`[browser ${t}s]`, ...args);
}

function fail(message) {
  console.error(`\nFAILED: ${message}`);
  process.exit(1);
}

function emit(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

/** A unique text, remembered so the relay's files can be searched for it. */
function secret(label) {
  const t = `${label} ${randomUUID().replaceAll("-", "")}`;
  plaintexts.push(t);
  return t;
}

/** Polls `probe` until it returns a truthy value; fails with `what` after `ms`. */
async function until(what, probe, ms = WAIT) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms} ms waiting for: ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

// ---- stdin lines from the Rust test ----
const inbox = [];
const waiters = [];
createInterface({ input: process.stdin }).on("line", (line) => {
  if (!line.trim()) return;
  let msg;
  try {
    msg = JSON.parse(line);
  } catch {
    log(`ignoring stdin line: ${line}`);
    return;
  }
  const w = waiters.shift();
  if (w) w(msg);
  else inbox.push(msg);
});
function nextLine(ms = WAIT * 2) {
  if (inbox.length) return Promise.resolve(inbox.shift());
  return new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error("no answer from the Rust test on stdin")), ms);
    waiters.push((m) => {
      clearTimeout(t);
      res(m);
    });
  });
}

// ---- the relay's outbox ----

/** Decodes quoted-printable soft breaks and escapes. */
function unQuotedPrintable(s) {
  return s.replace(/=\r?\n/g, "").replace(/=([0-9A-F]{2})/gi, (_, hex) => String.fromCharCode(parseInt(hex, 16)));
}

/** The newest verification link e-mailed to `to`. */
async function verificationLink(to) {
  const dir = join(DATA_DIR, "outbox");
  return until(`a verification e-mail to ${to} in ${dir}`, () => {
    let files;
    try {
      files = readdirSync(dir).map((f) => join(dir, f));
    } catch {
      return null;
    }
    const mails = files
      .map((f) => ({ f, t: statSync(f).mtimeMs, text: readFileSync(f, "utf8") }))
      .filter(({ text }) => {
        const head = text.split(/\r?\n\r?\n/)[0].toLowerCase();
        return head.includes(`to: ${to.toLowerCase()}`);
      })
      .sort((a, b) => b.t - a.t);
    for (const { text } of mails) {
      const m = /https?:\/\/[^\s"'<>]+\/verify-email#token=[A-Za-z0-9_.~%-]+/.exec(unQuotedPrintable(text));
      if (m) return m[0];
    }
    return null;
  });
}

// ---- page steps ----

async function launch() {
  mkdirSync(ARTIFACTS, { recursive: true });
  const headed = process.env.SOTTO_HEADED === "1";
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: !headed,
    args: [
      ...(headed ? [] : ["--headless"]),
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--no-first-run",
    ],
  });
}

const pageErrors = [];

async function person(browser, name, contextOptions) {
  const context = await browser.newContext({ acceptDownloads: true, ...contextOptions });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.on("pageerror", (e) => {
    pageErrors.push(`${name}: ${e.message}`);
    log(`${name} page error: ${e.stack ?? e.message}`);
  });
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") log(`${name} console.${m.type()}: ${m.text()}`);
  });
  // Anything the page fetches outside the relay would be a CDN or a leak.
  page.on("request", (r) => {
    const u = r.url();
    if (!u.startsWith(URL_BASE) && !u.startsWith("blob:") && !u.startsWith("data:")) {
      pageErrors.push(`${name}: request outside the relay: ${u}`);
    }
  });
  return { name, context, page, email: `${name}@example.org` };
}

async function register(p) {
  const { page, name, email } = p;
  await page.goto(`${URL_BASE}/app/`);
  await page.getByTestId("tab-register").click();
  await page.getByTestId("register-username").fill(name);
  await page.getByTestId("register-email").fill(email);
  await page.getByTestId("register-password").fill(PASSWORD);
  await page.getByTestId("register-submit").click();
  await until(`${name}: "check your e-mail" after registering`, async () =>
    /check your e-mail/i.test((await page.getByTestId("start-notice").textContent({ timeout: 1000 })) ?? ""),
  );
  if (name === "bob") await screenshot(p, "bob-phone-registered");
  const mailed = new URL(await verificationLink(email));
  // The relay under test listens on a port the OS chose, so its public URL (the links'
  // base) may name port 0: open the link's path and fragment on the relay we talk to.
  const link = `${URL_BASE}${mailed.pathname}${mailed.search}${mailed.hash}`;
  log(`${name}: verification link ${mailed.origin}${mailed.pathname}#token=… (opened at ${URL_BASE})`);
  // The link opens the app in the same page: the relay redirects to /app/?action=verify-email
  // and the page reads the token from the fragment.
  await page.goto(link);
  await until(`${name}: "verified" on the login form`, async () =>
    /verified/i.test((await page.getByTestId("start-notice").textContent({ timeout: 1000 })) ?? ""),
  );
  if (page.url().includes("token=")) throw new Error(`${name}: the token stayed in the address bar: ${page.url()}`);
}

async function login(p, { wrongFirst = false } = {}) {
  const { page, name } = p;
  await page.getByTestId("login-username").fill(name);
  await page.getByTestId("login-password").fill(PASSWORD);
  await page.getByTestId("login-submit").click();
  await page.getByTestId("passphrase").waitFor();
  if (wrongFirst) {
    await page.getByTestId("passphrase").fill("not the passphrase");
    await page.getByTestId("passphrase-submit").click();
    await until(`${name}: a clear error for a wrong passphrase`, async () =>
      /wrong passphrase/i.test((await page.getByTestId("passphrase-error").textContent({ timeout: 1000 })) ?? ""),
    );
  }
  if (wrongFirst) await screenshot(p, `${name}-wrong-passphrase`);
  await page.getByTestId("passphrase").fill(PASSPHRASE);
  const repeat = page.getByTestId("passphrase-repeat");
  if (await repeat.isVisible()) await repeat.fill(PASSPHRASE);
  await page.getByTestId("passphrase-submit").click();
  await page.getByTestId("chat").waitFor({ timeout: WAIT * 2 });
  await until(`${name}: connection online`, async () => (await page.getByTestId("connection").getAttribute("data-state")) === "online");
  const deviceId = await page.locator("#app").getAttribute("data-device-id");
  const userId = await page.locator("#app").getAttribute("data-user-id");
  log(`${name}: logged in, user ${userId}, device ${deviceId}`);
  return { userId, deviceId };
}

function roomItem(page, title) {
  return page.locator(`[data-testid="room-item"][data-title="${title}"]`);
}

async function openRoom(p, title) {
  await until(`${p.name}: the chat "${title}" in the room list`, () => roomItem(p.page, title).isVisible());
  await roomItem(p.page, title).click();
  await until(`${p.name}: room "${title}" open`, async () => (await p.page.getByTestId("room-title").textContent()) === title);
}

function messageWith(page, text) {
  return page.locator(`[data-testid="message"][data-text="${text}"]`);
}

async function expectMessage(p, text) {
  await until(`${p.name}: sees the message "${text}"`, () => messageWith(p.page, text).isVisible());
}

async function expectMark(p, text, marks) {
  await until(`${p.name}: mark ${marks.join(" or ")} on "${text}"`, async () =>
    marks.includes(await messageWith(p.page, text).getAttribute("data-mark", { timeout: 1000 })),
  );
}

/** Types like a person (key by key, so the page says "typing"), without sending. */
async function typeSlowly(p, text) {
  const box = p.page.getByTestId("composer");
  await box.click();
  await box.pressSequentially(text, { delay: 15 });
}

async function send(p, text) {
  await typeSlowly(p, text);
  await p.page.getByTestId("composer").press("Enter");
  await expectMessage(p, text);
}

async function safetyDigits(p) {
  await p.page.getByTestId("safety-button").click();
  const sn = p.page.getByTestId("safety-number");
  await sn.waitFor();
  const digits = await sn.getAttribute("data-digits");
  const shown = (await sn.textContent()).replace(/\s/g, "");
  if (!/^\d{60}$/.test(digits ?? "") || shown !== digits) throw new Error(`${p.name}: safety number not 60 digits: ${digits} / ${shown}`);
  return digits;
}

async function closeDialog(p) {
  await p.page.locator("dialog[open] [data-testid=dialog-close]").click();
  await until(`${p.name}: dialog closed`, async () => (await p.page.locator("dialog[open]").count()) === 0);
}

async function screenshot(p, label) {
  const file = join(ARTIFACTS, `${label}.png`);
  await p.page.screenshot({ path: file, fullPage: false });
  log(`screenshot ${file}`);
}

// ---- the test ----

async function run(browser) {
  const alice = await person(browser, "alice", { viewport: { width: 1280, height: 800 } });
  const bob = await person(browser, "bob", {
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
  });
  const everyone = [alice, bob];
  try {
    // ---- register, verify, log in, keys made in the browser ----
    await Promise.all([register(alice), register(bob)]);
    log("both registered and verified");
    const [aliceIds, bobIds] = await Promise.all([login(alice), login(bob)]);

    // ---- Alice finds Bob and opens a direct chat ----
    await alice.page.getByTestId("new-chat").click();
    await alice.page.getByTestId("user-search").fill("bo");
    const bobRow = alice.page.locator(`[data-testid="user-result"][data-username="bob"]`);
    await bobRow.waitFor();
    await bobRow.getByTestId("start-chat").click();
    await until("alice: the direct chat with bob open", async () => (await alice.page.getByTestId("room-title").textContent()) === "bob");

    // Bob (phone layout: the list first) does not have Alice in his contacts:
    // the chat is an invitation he accepts (the relay's consent rule), then
    // it opens.
    const invitation = bob.page.locator(`[data-testid="invitation"][data-inviter="alice"]`);
    await invitation.waitFor({ timeout: WAIT });
    await screenshot(bob, "bob-phone-invitation");
    await invitation.getByTestId("accept-invitation").click();
    await until("bob: the chat with alice open after accepting", async () => (await bob.page.getByTestId("room-title").textContent()) === "alice");
    await bob.page.getByTestId("back").click();
    await screenshot(bob, "bob-phone-room-list");
    await openRoom(bob, "alice");
    if (await bob.page.getByTestId("room-list").isVisible()) throw new Error("bob: the room list still shows beside the room on a phone-sized screen");

    // Presence: each sees the other online.
    await until("alice: bob online", async () => (await alice.page.getByTestId("peer-presence").getAttribute("data-online")) === "true");
    await until("bob: alice online", async () => (await bob.page.getByTestId("peer-presence").getAttribute("data-online")) === "true");

    // ---- typing, a message, read marks: Alice → Bob ----
    const hello = secret("Hi Bob, it's Alice:");
    await typeSlowly(alice, hello.slice(0, 12));
    await until("bob: sees alice typing", async () => /alice is typing/.test((await bob.page.getByTestId("typing").textContent()) ?? ""));
    await alice.page.getByTestId("composer").pressSequentially(hello.slice(12), { delay: 2 });
    await alice.page.getByTestId("composer").press("Enter");
    await expectMessage(alice, hello);
    await expectMessage(bob, hello);
    await until("bob: the typing line clears", async () => ((await bob.page.getByTestId("typing").textContent()) ?? "") === "");
    await expectMark(alice, hello, ["read"]);
    log("alice → bob: typing seen, message read (✓✓)");

    // ---- Bob → Alice ----
    const reply = secret("Hello Alice, Bob here:");
    await typeSlowly(bob, reply.slice(0, 10));
    await until("alice: sees bob typing", async () => /bob is typing/.test((await alice.page.getByTestId("typing").textContent()) ?? ""));
    await bob.page.getByTestId("composer").pressSequentially(reply.slice(10), { delay: 2 });
    await bob.page.getByTestId("composer").press("Enter");
    await expectMessage(bob, reply);
    await expectMessage(alice, reply);
    await expectMark(bob, reply, ["read"]);
    log("bob → alice: typing seen, message read (✓✓)");

    // ---- unread count: Bob back on the list, Alice writes twice ----
    await bob.page.getByTestId("back").click();
    await roomItem(bob.page, "alice").waitFor();
    const unread1 = secret("Are you there?");
    const unread2 = secret("Second one:");
    await send(alice, unread1);
    await send(alice, unread2);
    await until("bob: unread count 2 on the chat with alice", async () =>
      (await roomItem(bob.page, "alice").getByTestId("unread").textContent({ timeout: 1000 })) === "2",
    );
    await expectMark(alice, unread2, ["delivered"]);
    await screenshot(bob, "bob-phone-unread");
    await openRoom(bob, "alice");
    await expectMessage(bob, unread2);
    await expectMark(alice, unread2, ["read"]);
    if (await roomItem(bob.page, "alice").getByTestId("unread").count()) throw new Error("bob: the unread count stayed after opening the chat");
    log("unread count shown, cleared on open, read marks back");

    // ---- a file, Alice → Bob, downloaded byte for byte ----
    const marker = secret("file contents:");
    const fileBytes = Buffer.concat([Buffer.from(`${marker}\n`), randomBytes(150_000), Buffer.from(`\n${marker}\n`)]);
    await alice.page.getByTestId("file-input").setInputFiles({ name: "notes.bin", mimeType: "application/octet-stream", buffer: fileBytes });
    const aliceFile = alice.page.locator(`[data-testid="message"][data-kind="file"][data-text="notes.bin"]`);
    await until("alice: the file message stored", async () =>
      ["stored", "delivered", "read"].includes(await aliceFile.getAttribute("data-mark", { timeout: 1000 })),
    );
    await aliceFile.getByTestId("download").waitFor();
    const bobFile = bob.page.locator(`[data-testid="message"][data-kind="file"][data-text="notes.bin"]`);
    await bobFile.waitFor();
    const [download] = await Promise.all([bob.page.waitForEvent("download"), bobFile.getByTestId("download").click()]);
    if (download.suggestedFilename() !== "notes.bin") throw new Error(`bob: download named ${download.suggestedFilename()}`);
    const got = readFileSync(await download.path());
    if (!got.equals(fileBytes)) throw new Error(`bob: the downloaded file differs (${got.length} bytes, sent ${fileBytes.length})`);
    await expectMark(alice, "notes.bin", ["read"]);
    log(`file shared: ${fileBytes.length} bytes, identical after download`);

    // ---- safety numbers: the same 60 digits on both sides; Alice marks Bob verified ----
    const aliceDigits = await safetyDigits(alice);
    const bobDigits = await safetyDigits(bob);
    if (aliceDigits !== bobDigits) throw new Error(`safety numbers differ:\n alice ${aliceDigits}\n bob   ${bobDigits}`);
    await screenshot(bob, "bob-phone-safety-number");
    await alice.page.getByTestId("mark-verified").click();
    await until("alice: bob verified", async () => /verified/i.test((await alice.page.getByTestId("verified-state").textContent()) ?? ""));
    await closeDialog(alice);
    await closeDialog(bob);
    await until("alice: bob shown verified in the header", () => alice.page.getByTestId("peer-verified").isVisible());
    log(`safety numbers equal (${aliceDigits.slice(0, 10)}…); bob marked verified`);

    await screenshot(alice, "alice");
    await screenshot(bob, "bob");

    // ---- Alice reloads: log in, the passphrase unlocks the keys kept in IndexedDB ----
    await alice.page.reload();
    await alice.page.getByTestId("login-form").waitFor();
    const again = await login(alice, { wrongFirst: true });
    if (again.deviceId !== aliceIds.deviceId) throw new Error(`alice: a new device after reload (${again.deviceId}, was ${aliceIds.deviceId}): keys not restored`);
    await openRoom(alice, "bob");
    await expectMessage(alice, hello);
    await expectMessage(alice, reply);
    await until("alice: bob still verified after reload", () => alice.page.getByTestId("peer-verified").isVisible());
    const afterReload = secret("Back after a reload:");
    await send(bob, afterReload);
    await expectMessage(alice, afterReload);
    const fromReloaded = secret("My keys came back from IndexedDB:");
    await send(alice, fromReloaded);
    await expectMessage(bob, fromReloaded);
    log("alice reloaded: same device, history and new messages readable both ways");

    // ---- a native client (sotto-core, run by the Rust test) in a group with Alice ----
    if (NATIVE_USER) {
      const group = `Cross ${randomUUID().slice(0, 8)}`;
      await alice.page.getByTestId("new-group").click();
      await alice.page.getByTestId("group-name").fill(group);
      await alice.page.getByTestId("user-search").fill(NATIVE_USER);
      const row = alice.page.locator(`[data-testid="user-result"][data-username="${NATIVE_USER}"]`);
      await row.waitFor();
      await row.getByTestId("pick-user").click();
      await alice.page.getByTestId("create-group").click();
      await until(`alice: the group "${group}" open`, async () => (await alice.page.getByTestId("room-title").textContent()) === group);
      const roomId = await alice.page.getByTestId("room-pane").getAttribute("data-room-id");
      // The native user does not have Alice in their contacts: invited; the
      // Rust test accepts through the SDK, and Alice's page sees them join.
      emit({ step: "invited", room_id: roomId, alice_id: aliceIds.userId });
      const joined = await nextLine();
      if (joined.step !== "joined") throw new Error(`unexpected line from the Rust test: ${JSON.stringify(joined)}`);
      await until(`alice: ${NATIVE_USER} a member of "${group}"`, async () =>
        (await alice.page.getByTestId("room-subtitle").getAttribute("data-members")) === "2",
      );
      const toNative = secret(`Hello ${NATIVE_USER}, from the browser:`);
      await send(alice, toNative);
      await expectMark(alice, toNative, ["stored", "delivered", "read"]);
      emit({ step: "group", room_id: roomId, alice_id: aliceIds.userId, text: toNative });
      const answer = await nextLine();
      if (answer.step !== "reply" || typeof answer.text !== "string") throw new Error(`unexpected line from the Rust test: ${JSON.stringify(answer)}`);
      await expectMessage(alice, answer.text);
      await expectMark(alice, toNative, ["delivered", "read"]);
      await screenshot(alice, "alice-group-with-native");
      log(`native client ${NATIVE_USER}: opened the browser's message, and its answer opened in the browser`);

      // ---- a hostile relay writes a stranger into the group: no key for them, a loud line ----
      emit({ step: "intrude", room_id: roomId });
      const intruded = await nextLine();
      if (intruded.step !== "intruded") throw new Error(`unexpected line from the Rust test: ${JSON.stringify(intruded)}`);
      await until("alice: back online after the relay restart", async () =>
        (await alice.page.getByTestId("connection").getAttribute("data-state").catch(() => "online")) === "online",
      );
      const around = secret("Sealed around the intruder:");
      await send(alice, around);
      await expectMark(alice, around, ["stored", "delivered", "read"]);
      const warning = alice.page.locator('[data-testid="system-line"]', { hasText: "did not sign them in" });
      await until(`alice: the warning about ${intruded.username}`, () => warning.first().isVisible());
      await screenshot(alice, "alice-unconfirmed-member");
      emit({ step: "sealed_around", room_id: roomId, text: around });
      const checked = await nextLine();
      if (checked.step !== "checked") throw new Error(`unexpected line from the Rust test: ${JSON.stringify(checked)}`);
      log(`a stranger written into the group by the relay: warned, and ${NATIVE_USER} still reads Alice`);

      // ---- the native user replaces their identity key: a red banner, sends held until accepted ----
      emit({ step: "replace_identity" });
      const replaced = await nextLine();
      if (replaced.step !== "replaced") throw new Error(`unexpected line from the Rust test: ${JSON.stringify(replaced)}`);
      const banner = alice.page.locator(`[data-testid="identity-banner"][data-user-id="${replaced.user_id}"]`);
      await until(`alice: the identity-change banner for ${NATIVE_USER}`, () => banner.isVisible());
      await screenshot(alice, "alice-identity-changed");
      const held = secret("Held back until the new key is accepted:");
      await send(alice, held);
      await expectMark(alice, held, ["failed"]);
      await banner.getByTestId("accept-identity").click();
      await until("alice: the banner gone after accepting", async () => (await banner.count()) === 0);
      const accepted = secret(`After accepting ${NATIVE_USER}'s new key:`);
      await send(alice, accepted);
      await expectMark(alice, accepted, ["stored", "delivered", "read"]);
      log(`${NATIVE_USER}'s identity key changed: banner shown, send refused, accepted, sending again`);

    }

    if (pageErrors.length) throw new Error(`errors in the pages:\n  ${pageErrors.join("\n  ")}`);
    emit({ step: "done", plaintexts, alice_id: aliceIds.userId, bob_id: bobIds.userId });
  } catch (e) {
    for (const p of everyone) {
      try {
        await screenshot(p, `failure-${p.name}`);
      } catch {
        // the page may be gone
      }
    }
    throw e;
  }
}

const browser = await launch();
try {
  await run(browser);
  log(`passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
} catch (e) {
  await browser.close().catch(() => undefined);
  fail(e instanceof Error ? (e.stack ?? e.message) : String(e));
}
await browser.close();
process.exit(0);
