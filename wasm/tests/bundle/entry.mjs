// Entry of the bundler check (check.mjs): imports the package by its name, as an
// application would, through package.json "exports".
import { initSync, Device, getVersions } from "sotto-wasm";

export function run(wasmBytes) {
  initSync({ module: wasmBytes });
  const room = crypto.randomUUID();
  const a = Device.generate(crypto.randomUUID(), crypto.randomUUID());
  const b = Device.generate(crypto.randomUUID(), crypto.randomUUID());
  const env = a.seal(new TextEncoder().encode("bundled"), { roomId: room, clientMessageId: crypto.randomUUID(), timestampMs: 1 }, [
    { device: b.verified() },
  ]);
  const opened = b.open(env, { roomId: room, sender: a.verified() });
  return { version: getVersions().package, text: new TextDecoder().decode(opened.plaintext) };
}
