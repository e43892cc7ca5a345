// Driver of scripts/bench-wasm: serves wasm/pkg and this directory from loopback
// (with COOP/COEP, so performance.now() is precise), opens page.html in headless
// Chromium (playwright-core driving /usr/bin/chromium), collects the page's
// figures, and prints them against the native ones (JSON on stdin or in
// --native FILE) as a Markdown table. Stops the browser and the server.
//   node wasm/bench/run.mjs --native native.json [--native-soft soft.json] [--json out.json]
import { createServer } from "node:http";
import { readFile, writeFile } from "node:fs/promises";
import { dirname, extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
// SOTTO_BENCH_PKG: serve another build of the package as /pkg/ (profile experiments).
const roots = { "/pkg/": process.env.SOTTO_BENCH_PKG ?? join(here, "..", "pkg"), "/bench/": here };
const types = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm" };
const arg = (name) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const native = JSON.parse(await readFile(arg("--native"), "utf8"));
// Optional: the native bench built with the software backends WASM gets (no AES-NI,
// CLMUL, SHA-NI, AVX2; 32-bit curve25519 limbs), to show what the gap is made of.
const soft = arg("--native-soft") ? JSON.parse(await readFile(arg("--native-soft"), "utf8")) : null;

const server = createServer(async (req, res) => {
  const path = decodeURIComponent(new URL(req.url, "http://x").pathname);
  const prefix = Object.keys(roots).find((p) => path.startsWith(p));
  const file = prefix && normalize(join(roots[prefix], path.slice(prefix.length)));
  if (!file || !file.startsWith(roots[prefix])) {
    res.writeHead(404).end();
    return;
  }
  try {
    const body = await readFile(file);
    res.writeHead(200, {
      "content-type": types[extname(file)] ?? "application/octet-stream",
      "cross-origin-opener-policy": "same-origin",
      "cross-origin-embedder-policy": "require-corp",
      "cache-control": "no-store",
    });
    res.end(body);
  } catch {
    res.writeHead(404).end();
  }
});
await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
const url = `http://127.0.0.1:${server.address().port}/bench/page.html`;

let browser;
let wasm;
try {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
  const page = await browser.newPage();
  page.on("console", (m) => process.stderr.write(`[page] ${m.text()}\n`));
  await page.goto(url);
  await page.waitForFunction(() => window.__bench, null, { timeout: 600_000, polling: 500 });
  wasm = await page.evaluate(() => window.__bench);
  if (wasm.error) throw new Error(`bench page failed: ${wasm.error}`);
} finally {
  await browser?.close();
  await new Promise((ok) => server.close(ok));
}

const us = (x) => (x >= 1000 ? `${(x / 1000).toFixed(2)} ms` : `${x.toFixed(1)} µs`);
const rows = [
  ["seal 1 KiB, x25519, 1 recipient", "seal_1k_x25519_1"],
  ["open 1 KiB, x25519, 1 recipient", "open_1k_x25519_1"],
  ["seal 1 KiB, x25519, 10 recipients", "seal_1k_x25519_10"],
  ["open 1 KiB, x25519, 10 recipients (one device)", "open_1k_x25519_10"],
  ["encryptAttachment 1 MiB (chunked AES-256-GCM + SHA-256)", "attachment_encrypt_1mib"],
  ["decryptAttachment 1 MiB (SHA-256 + chunked AES-256-GCM)", "attachment_decrypt_1mib"],
];
const lines = [
  `WASM: ${wasm.userAgent.match(/(HeadlessChrome|Chrome)\/[\d.]+/)?.[0] ?? wasm.userAgent}, crossOriginIsolated=${wasm.crossOriginIsolated}, init ${wasm.initMs.toFixed(1)} ms`,
  "",
  soft
    ? "| operation | WASM (Chromium) | native | WASM / native | native, WASM's software backends | WASM / that |"
    : "| operation | WASM (Chromium) | native | WASM / native |",
  soft ? "|---|---|---|---|---|---|" : "|---|---|---|---|",
  ...rows.map(([label, k]) =>
    `| ${label} | ${us(wasm[k])} | ${us(native[k])} | ${(wasm[k] / native[k]).toFixed(2)} |` +
      (soft ? ` ${us(soft[k])} | ${(wasm[k] / soft[k]).toFixed(2)} |` : ""),
  ),
  "",
  "| 1 MiB in the same page | time | WASM attachment / this |",
  "|---|---|---|",
  `| WebCrypto AES-256-GCM encrypt | ${us(wasm.webcrypto_aes256gcm_encrypt_1mib)} | ${(wasm.attachment_encrypt_1mib / wasm.webcrypto_aes256gcm_encrypt_1mib).toFixed(2)} |`,
  `| WebCrypto AES-256-GCM encrypt + SHA-256 digest | ${us(wasm.webcrypto_aes256gcm_sha256_1mib)} | ${(wasm.attachment_encrypt_1mib / wasm.webcrypto_aes256gcm_sha256_1mib).toFixed(2)} |`,
  `| WebCrypto AES-256-GCM decrypt | ${us(wasm.webcrypto_aes256gcm_decrypt_1mib)} | ${(wasm.attachment_decrypt_1mib / wasm.webcrypto_aes256gcm_decrypt_1mib).toFixed(2)} (decrypt) |`,
];
console.log(lines.join("\n"));
const jsonOut = arg("--json");
if (jsonOut) await writeFile(jsonOut, JSON.stringify({ wasm, native, nativeSoftwareBackends: soft }, null, 2) + "\n");
