// The in-browser half of scripts/bench-wasm: seal/open of 1 KiB (x25519; 1 and
// 10 recipients) and encryptAttachment/decryptAttachment of 1 MiB (chunked
// AES-256-GCM + SHA-256 in WASM), against WebCrypto AES-256-GCM of 1 MiB in the
// same page. Each figure is the median of batch means, in microseconds, as in
// the native half (wasm/benches/native.rs). Results go to `window.__bench`.
import init, { Device, decryptAttachment, encryptAttachment, getVersions } from "../pkg/sotto_wasm.js";

const out = document.getElementById("out");
try {
  const t0 = performance.now();
  await init();
  const initMs = performance.now() - t0;

  function median(xs) {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.floor(s.length / 2)];
  }
  // V8 first runs WASM in its baseline compiler (Liftoff) and tiers hot functions
  // up to TurboFan in the background: warm each operation up for a while so the
  // figures are the steady state, not the tier-up.
  function warm(f, ms = 1500) {
    const end = performance.now() + ms;
    while (performance.now() < end) f();
  }
  function medianUs(batches, perBatch, f) {
    warm(f);
    const means = [];
    for (let b = 0; b < batches; b++) {
      const t = performance.now();
      for (let i = 0; i < perBatch; i++) f();
      means.push(((performance.now() - t) * 1000) / perBatch);
    }
    return median(means);
  }
  async function medianUsAsync(batches, perBatch, f) {
    for (let i = 0; i < perBatch; i++) await f();
    const means = [];
    for (let b = 0; b < batches; b++) {
      const t = performance.now();
      for (let i = 0; i < perBatch; i++) await f();
      means.push(((performance.now() - t) * 1000) / perBatch);
    }
    return median(means);
  }

  const r = { userAgent: navigator.userAgent, crossOriginIsolated, initMs, version: getVersions().package };
  const uuid = () => crypto.randomUUID();
  const sender = Device.generate(uuid(), uuid());
  const senderPeer = sender.verified();
  const peers = Array.from({ length: 10 }, () => Device.generate(uuid(), uuid()));
  const roomId = uuid();
  const header = { roomId, clientMessageId: uuid(), timestampMs: 1_700_000_000_000 };
  const plaintext = new Uint8Array(1024).fill(0x42);
  const expected = { roomId, sender: senderPeer };
  for (const n of [1, 10]) {
    const recipients = peers.slice(0, n).map((p) => ({ device: p.verified(), suite: "x25519" }));
    r[`seal_1k_x25519_${n}`] = medianUs(31, n === 1 ? 40 : 8, () => sender.seal(plaintext, header, recipients));
    const env = sender.seal(plaintext, header, recipients);
    r[`open_1k_x25519_${n}`] = medianUs(31, 40, () => peers[0].open(env, expected));
  }

  const file = new Uint8Array(1024 * 1024);
  for (let i = 0; i < file.length; i++) file[i] = i % 251;
  r.attachment_encrypt_1mib = medianUs(15, 4, () => encryptAttachment(file));
  const { blob, sealed } = encryptAttachment(file);
  const pointer = sealed.pointer(uuid());
  r.attachment_decrypt_1mib = medianUs(15, 4, () => decryptAttachment(pointer, blob));

  const key = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
  const iv = new Uint8Array(12);
  r.webcrypto_aes256gcm_encrypt_1mib = await medianUsAsync(15, 4, () =>
    crypto.subtle.encrypt({ name: "AES-GCM", iv }, key, file),
  );
  const ct = await crypto.subtle.encrypt({ name: "AES-GCM", iv }, key, file);
  r.webcrypto_aes256gcm_decrypt_1mib = await medianUsAsync(15, 4, () =>
    crypto.subtle.decrypt({ name: "AES-GCM", iv }, key, ct),
  );
  // What encryptAttachment does, with WebCrypto: AES-256-GCM plus SHA-256 of the result.
  r.webcrypto_aes256gcm_sha256_1mib = await medianUsAsync(15, 4, async () =>
    crypto.subtle.digest("SHA-256", await crypto.subtle.encrypt({ name: "AES-GCM", iv }, key, file)),
  );
  out.textContent = JSON.stringify(r, null, 2);
  window.__bench = r;
} catch (e) {
  out.textContent = `error: ${e?.stack ?? e}`;
  window.__bench = { error: String(e?.stack ?? e) };
}
