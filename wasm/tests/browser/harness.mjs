// Shared by the Chromium tests (client.test.mjs) and the Chromium benchmark
// (wasm/bench/chromium.mjs): the package served on loopback, a relay process,
// Chromium through playwright-core, and registration through the relay's
// e-mail outbox.

import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const root = join(here, "..", "..", "..");
const pkg = join(root, "wasm", "pkg");
export const chromiumPath = process.env.SOTTO_CHROMIUM ?? ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find(existsSync);
export let chromium = null;
try {
  ({ chromium } = await import("playwright-core"));
} catch {
  // not installed
}
// Missing tools fail the test (scripts/test-wasm installs Chromium; npm ci in wasm/ installs playwright-core).
export const missing = !chromiumPath ? "Chromium is not installed (set SOTTO_CHROMIUM or run scripts/test-wasm, which installs it)" : !chromium ? "playwright-core is not installed (npm ci in wasm/)" : null;

export const PASSWORD = "correct horse battery staple";

/** Serves wasm/pkg (and an empty page at /) on loopback. */
export async function staticServer() {
  const types = { ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm" };
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/") {
      res.writeHead(200, { "content-type": "text/html" });
      res.end("<!doctype html><title>sotto-wasm/client</title>");
      return;
    }
    // The store conformance suite, shared with the Node tests.
    const file = path === "/conformance.mjs" ? join(here, "..", "conformance.mjs") : normalize(join(pkg, path));
    if (!(file.startsWith(pkg) || path === "/conformance.mjs") || !existsSync(file)) {
      res.writeHead(404);
      res.end();
      return;
    }
    res.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream" });
    res.end(readFileSync(file));
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return server;
}

/** Starts the relay (`env`: extra settings, e.g. a benchmark's higher rate limits). */
export async function startRelay(dir, origin, env = {}) {
  const bin = process.env.SOTTO_RELAY_BIN ?? join(root, "target", "debug", "sotto-relay");
  const child = spawn(bin, [], {
    cwd: dir,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      SOTTO_LISTEN: "127.0.0.1:0",
      SOTTO_DATA_DIR: join(dir, "data"),
      SOTTO_CORS_ORIGINS: origin,
      SOTTO_AUTH_RATE_PER_IP: "100000",
      SOTTO_AUTH_RATE_PER_ACCOUNT: "100000",
      SOTTO_METRICS_LISTEN: "",
      SOTTO_ROOM_CREATE_RATE: "1000000",
      SOTTO_INVITE_RATE: "1000000",
      SOTTO_CONTACT_RATE: "1000000",
      SOTTO_DEVICE_UPDATE_RATE: "1000000",
      SOTTO_REFRESH_RATE: "1000000",
      SOTTO_CHECK_USERNAME_RATE: "1000000",
      RUST_LOG: "warn,sotto_relay=info",
      ...env,
    },
  });
  let log = "";
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the relay did not start:\n${log}`)), 60_000);
    const onData = (c) => {
      log += c;
      const m = /listening on (http:\/\/[0-9.]+:\d+)/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.once("exit", (code) => reject(new Error(`the relay exited (${code}):\n${log}`)));
  });
  return { child, url };
}

/** The verification token e-mailed to `email` (quoted-printable decoded). */
export async function verificationToken(dir, email) {
  const outbox = join(dir, "data", "outbox");
  for (let i = 0; i < 200; i++) {
    for (const f of existsSync(outbox) ? readdirSync(outbox) : []) {
      const data = readFileSync(join(outbox, f), "utf8").replace(/=\r?\n/g, "");
      if (!data.toLowerCase().includes(`to: ${email}`)) continue;
      const m = /#token=(?:3D)?([A-Za-z0-9_-]+)/.exec(data);
      if (m) return m[1];
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no e-mail to ${email}`);
}

/**
 * Runs `fn` with the package served on loopback, a relay process (its data in a
 * temporary directory, allowed from that origin) and Chromium; stops them all after.
 */
export async function inChromium(prefix, fn, env = {}) {
  if (missing) throw new Error(missing);
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const server = await staticServer();
  const origin = `http://127.0.0.1:${server.address().port}`;
  const relay = await startRelay(dir, origin, env);
  const browser = await chromium.launch({ executablePath: chromiumPath, args: ["--no-sandbox"] });
  try {
    await fn({ dir, origin, relay, browser });
  } finally {
    await browser.close();
    relay.child.kill("SIGKILL");
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Registers each of `names` from `page` and verifies its e-mail through the relay's outbox link. */
export async function registerAll(page, relay, dir, names) {
  for (const name of names) {
    await page.evaluate(
      ([url, name, pw]) => new globalThis.sotto.Relay(url).register(name, `${name}@example.org`, pw),
      [relay.url, name, PASSWORD],
    );
    const token = await verificationToken(dir, `${name}@example.org`);
    await page.evaluate(([url, token]) => new globalThis.sotto.Relay(url).verifyEmail(token), [relay.url, token]);
  }
}

