// `Relay` (wasm/pkg/relay.js) against a relay process whose access tokens live
// two seconds: problem codes on refusals, one refresh for many concurrent
// callers (a refresh token is single-use: a second presentation would revoke
// the session), and `loggedout` once the relay refuses the refresh token
// (password reset revokes every session).

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { RelayProcess, root, sleep } from "./support.mjs";

// The client's contract: the bindings are initialised before anything else is used
// (the e-mail link parser is the core's, through them).
const bindings = await import(pathToFileURL(join(root, "wasm", "pkg", "sotto_wasm.js")).href);
bindings.initSync({ module: readFileSync(join(root, "wasm", "pkg", "sotto_wasm_bg.wasm")) });
const { Relay } = await import(pathToFileURL(join(root, "wasm", "pkg", "relay.js")).href);
const { SottoError } = await import(pathToFileURL(join(root, "wasm", "pkg", "errors.js")).href);

const PASSWORD = "correct horse battery staple 7";
const relay = new RelayProcess({ SOTTO_ACCESS_TOKEN_TTL: "2" });

/** A Relay whose fetches are counted by path. */
function counted() {
  const calls = new Map();
  const r = new Relay(relay.url, {
    fetch: (input, init) => {
      const path = new URL(String(input)).pathname;
      calls.set(path, (calls.get(path) ?? 0) + 1);
      return fetch(input, init);
    },
  });
  return { r, calls };
}

before(() => relay.start());
after(async () => {
  await relay.stop();
  rmSync(relay.dir, { recursive: true, force: true });
});

test("refusals carry the relay's problem code and status", async () => {
  const { r } = counted();
  await r.register("carol", "carol@example.org", PASSWORD);
  await assert.rejects(r.login("carol", PASSWORD), (e) => {
    assert.ok(e instanceof SottoError);
    assert.equal(e.code, "email_not_verified");
    assert.equal(e.status, 403);
    return true;
  });
  await r.verifyEmail(await relay.link("carol@example.org", "verify-email"));
  await assert.rejects(r.login("carol", "wrong password!"), (e) => e.code === "invalid_credentials" && e.status === 401);
  await assert.rejects(r.register("carol", "other@example.org", PASSWORD), (e) => e.code === "username_taken");
  await assert.rejects(r.me(), (e) => e.code === "not_logged_in");
  assert.equal(await r.checkUsername("carol"), false);
  const down = new Relay("http://127.0.0.1:9", { maxAttempts: 2, backoffMs: 10 });
  await assert.rejects(down.health(), (e) => e.code === "network");
});

test("many concurrent callers share one refresh, ahead of expiry", async () => {
  const { r, calls } = counted();
  const user = await r.login("carol", PASSWORD);
  assert.equal(user.username, "carol");
  assert.equal(r.currentUser.id, user.id);
  const first = await r.accessToken();
  await sleep(1100); // past half the 2 s life: due
  const answers = await Promise.all(Array.from({ length: 16 }, () => r.me()));
  assert.ok(answers.every((u) => u.id === user.id));
  assert.equal(calls.get("/api/v1/auth/refresh"), 1, "exactly one refresh");
  assert.notEqual(await r.accessToken(), first);
  // The rotated refresh token works again (the first one was presented once only).
  await sleep(1100);
  await Promise.all([r.me(), r.rooms(), r.contacts()]);
  assert.equal(calls.get("/api/v1/auth/refresh"), 2);
  await r.logout();
  assert.equal(r.loggedIn, false);
});

test("a refused refresh token ends the session: loggedout, then not_logged_in", async () => {
  const { r } = counted();
  await r.login("carol", PASSWORD);
  let loggedOut = 0;
  r.addEventListener("loggedout", () => loggedOut++);
  // A password reset revokes every session of the user.
  await r.forgotPassword("carol@example.org");
  const link = await relay.link("carol@example.org", "reset-password");
  await new Relay(relay.url).resetPassword(link, `${PASSWORD}!`);
  await sleep(2100); // the access token expired; its refresh is refused
  await assert.rejects(r.me(), (e) => e instanceof SottoError && e.code === "not_logged_in");
  assert.equal(loggedOut, 1);
  assert.equal(r.loggedIn, false);
  await assert.rejects(r.me(), (e) => e.code === "not_logged_in");
  assert.equal(loggedOut, 1, "said once");
});
