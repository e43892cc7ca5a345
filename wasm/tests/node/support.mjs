// Test support: the relay as a real process (target/debug/sotto-relay, or
// SOTTO_RELAY_BIN) on a port the OS chose, its development e-mail outbox, and a
// TCP proxy whose connections a test can cut.

import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, statSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const root = join(here, "..", "..", "..");

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function relayBinary() {
  const bin = process.env.SOTTO_RELAY_BIN ?? join(root, "target", "debug", "sotto-relay");
  statSync(bin); // throws with the path when missing: build it with `cargo build -p sotto-relay`
  return bin;
}

export class RelayProcess {
  /** `env`: extra configuration (SOTTO_* variables). */
  constructor(env = {}) {
    this.env = env;
    this.dir = mkdtempSync(join(tmpdir(), "sotto-wasm-client-"));
    this.data = join(this.dir, "data");
    this.port = 0;
    this.child = null;
    this.log = "";
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  async start() {
    const child = spawn(relayBinary(), [], {
      cwd: this.dir,
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        SOTTO_LISTEN: `127.0.0.1:${this.port}`,
        SOTTO_DATA_DIR: this.data,
        SOTTO_POST_RATE: "1000000",
        SOTTO_WS_FRAME_RATE: "1000000",
        SOTTO_WS_TYPING_RATE: "1000",
        SOTTO_AUTH_RATE_PER_IP: "100000",
        SOTTO_AUTH_RATE_PER_ACCOUNT: "100000",
        SOTTO_METRICS_LISTEN: "",
        SOTTO_ROOM_CREATE_RATE: "1000000",
        SOTTO_INVITE_RATE: "1000000",
        SOTTO_RECEIPT_RATE: "1000000",
        SOTTO_DEVICE_UPDATE_RATE: "1000000",
        SOTTO_CONTACT_RATE: "1000000",
        SOTTO_REFRESH_RATE: "1000000",
        SOTTO_CHECK_USERNAME_RATE: "1000000",
        SOTTO_PUSH_TEST_RATE: "1000000",
        RUST_LOG: "warn,sotto_relay=info",
        ...this.env,
      },
    });
    this.child = child;
    const started = this.log.length;
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the relay did not start:\n${this.log.slice(started)}`)), 60_000);
      const onData = (chunk) => {
        this.log += chunk.toString();
        const m = /listening on http:\/\/([0-9.]+):(\d+)/.exec(this.log.slice(started));
        if (m) {
          clearTimeout(timer);
          this.port = Number(m[2]);
          resolve();
        }
      };
      child.stdout.on("data", onData);
      child.stderr.on("data", onData);
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`the relay exited (${code}) before listening:\n${this.log.slice(started)}`));
      });
    });
    child.removeAllListeners("exit");
  }

  async stop() {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
  }

  async restart() {
    await this.stop();
    await this.start();
  }

  /** The first link containing `needle` in the newest e-mail to `to` that has one, waiting for it. */
  async link(to, needle) {
    const mail = await this.mailTo(to, (body) => linkIn(body, needle) !== undefined);
    return linkIn(mail, needle);
  }

  /** The newest e-mail to `to` in the development outbox (that `accept`s), decoded; waits for it. */
  async mailTo(to, accept = () => true) {
    const dir = join(this.data, "outbox");
    const deadline = Date.now() + 20_000;
    for (;;) {
      const found = [];
      try {
        for (const f of readdirSync(dir)) {
          const p = join(dir, f);
          const data = readFileSync(p, "utf8");
          const head = data.split("\r\n\r\n")[0].toLowerCase();
          if (!head.includes(`to: ${to.toLowerCase()}`)) continue;
          const body = decodeMail(data);
          if (accept(body)) found.push([statSync(p).mtimeMs, body]);
        }
      } catch {
        // no outbox yet, or a file still being written
      }
      found.sort((a, b) => a[0] - b[0]);
      if (found.length > 0) return found[found.length - 1][1];
      if (Date.now() > deadline) throw new Error(`no matching e-mail to ${to} in ${dir}`);
      await sleep(50);
    }
  }

  /** Every file under the data directory, with its bytes. */
  files() {
    const out = [];
    const walk = (d) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.isFile()) out.push([p, readFileSync(p)]);
      }
    };
    walk(this.data);
    return out;
  }
}

function linkIn(body, needle) {
  return body.split(/\s+/).find((w) => w.startsWith("http") && w.includes(needle));
}

/** A mail's body, decoded from quoted-printable when the mail says so. */
export function decodeMail(data) {
  const i = data.indexOf("\r\n\r\n");
  const head = i < 0 ? "" : data.slice(0, i);
  const body = i < 0 ? data : data.slice(i + 4);
  if (!/content-transfer-encoding:\s*quoted-printable/i.test(head)) return body;
  const soft = body.replace(/=\r?\n/g, "");
  const bytes = [];
  for (let k = 0; k < soft.length; k++) {
    if (soft[k] === "=" && /^[0-9A-Fa-f]{2}$/.test(soft.slice(k + 1, k + 3))) {
      bytes.push(parseInt(soft.slice(k + 1, k + 3), 16));
      k += 2;
    } else {
      bytes.push(...Buffer.from(soft[k], "utf8"));
    }
  }
  return Buffer.from(bytes).toString("utf8");
}

/** A TCP proxy on loopback whose connections the test can cut, as a network failure would. */
export class TcpProxy {
  constructor(upstreamPort) {
    this.upstreamPort = upstreamPort;
    this.sockets = new Set();
    this.server = net.createServer((inbound) => {
      const outbound = net.connect(this.upstreamPort, "127.0.0.1");
      for (const s of [inbound, outbound]) {
        this.sockets.add(s);
        s.on("close", () => this.sockets.delete(s));
        s.on("error", () => undefined);
      }
      inbound.pipe(outbound);
      outbound.pipe(inbound);
      inbound.on("close", () => outbound.destroy());
      outbound.on("close", () => inbound.destroy());
    });
  }
  async start() {
    await new Promise((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.port = this.server.address().port;
  }
  get url() {
    return `http://127.0.0.1:${this.port}`;
  }
  cut() {
    for (const s of this.sockets) s.destroy();
  }
  async close() {
    this.cut();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
