// Bundler check: esbuild bundles entry.mjs, which imports `sotto-wasm` by name
// (resolved through wasm/pkg/package.json "exports"), for the browser platform;
// the bundle is then loaded and run (in Node: it uses no Node API).
//   node wasm/tests/bundle/check.mjs        (run by scripts/test-wasm)
import { build } from "esbuild";
import { mkdtempSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import assert from "node:assert/strict";

const here = dirname(fileURLToPath(import.meta.url));
const pkg = join(here, "..", "..", "pkg");
const tmp = mkdtempSync(join(tmpdir(), "sotto-bundle-"));
try {
  mkdirSync(join(tmp, "node_modules"));
  symlinkSync(pkg, join(tmp, "node_modules", "sotto-wasm"), "dir");
  const outfile = join(tmp, "bundle.mjs");
  const result = await build({
    entryPoints: [join(here, "entry.mjs")],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    nodePaths: [join(tmp, "node_modules")],
    outfile,
    metafile: true,
    logLevel: "warning",
  });
  const inputs = Object.keys(result.metafile.inputs);
  assert.ok(inputs.some((p) => p.endsWith("sotto_wasm.js")), `bundle inputs: ${inputs}`);
  const { run } = await import(pathToFileURL(outfile).href);
  const out = run(readFileSync(join(pkg, "sotto_wasm_bg.wasm")));
  assert.equal(out.text, "bundled");
  console.log(`bundler check: esbuild bundle of sotto-wasm ${out.version} (${statSync(outfile).size} bytes of JS) seals and opens`);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
