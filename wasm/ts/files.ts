// Attachments: a file is encrypted chunk by chunk as it is read from its Blob,
// and decrypted chunk by chunk as it streams back, each chunk authenticated
// before its plaintext is released (docs/protocol.md, the core's attachment
// format). Mirrors core/client/src/files.rs.
//
// Upload body: the ciphertext is collected as a Blob of parts (memory: the
// ciphertext once; browsers may keep large Blobs on disk) rather than streamed,
// because browsers send a streaming request body (`duplex: "half"`) only over
// HTTP/2 and refuse it over HTTP/1.1, which self-hosted relays often speak.

import { AttachmentDecryptor, AttachmentEncryptor } from "./sotto_wasm.js";
import type { AttachmentSealed } from "./sotto_wasm.js";
import { ClientCodes, SottoError, toSottoError } from "./errors.js";
import type { AttachmentPointer } from "./sotto_wasm.js";

/** Pending ciphertext is folded into a Blob once it reaches this size. */
const FOLD_BYTES = 8 * 1024 * 1024;

/** A copy of `bytes` whose buffer is a plain ArrayBuffer (what `Blob` parts are typed as). */
function part(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(bytes.length);
  out.set(bytes);
  return out;
}

/**
 * Encrypts `file` into a Blob of ciphertext (header, chunks, tail).
 * `onProgress(done)` counts plaintext bytes read and encrypted.
 */
export async function encryptBlob(
  file: Blob,
  onProgress?: (done: number) => void,
): Promise<{ blob: Blob; sealed: AttachmentSealed }> {
  let enc: AttachmentEncryptor | null = null;
  try {
    enc = new AttachmentEncryptor();
    const parts: BlobPart[] = [part(enc.header())];
    let pending: Uint8Array<ArrayBuffer>[] = [];
    let pendingBytes = 0;
    let done = 0;
    const reader = file.stream().getReader();
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      const out = enc.update(r.value);
      if (out.length > 0) {
        pending.push(part(out));
        pendingBytes += out.length;
      }
      done += r.value.length;
      if (done > file.size) break;
      if (pendingBytes >= FOLD_BYTES) {
        parts.push(new Blob(pending));
        pending = [];
        pendingBytes = 0;
      }
      onProgress?.(done);
    }
    if (done !== file.size) {
      throw new SottoError(ClientCodes.fileChanged, "the file changed size while it was read");
    }
    const sealed = enc.finish();
    enc = null; // consumed by finish
    parts.push(new Blob(pending), part(sealed.tail));
    return { blob: new Blob(parts, { type: "application/octet-stream" }), sealed };
  } catch (e) {
    try {
      enc?.free();
    } catch {
      // already consumed
    }
    throw toSottoError(e);
  }
}

/**
 * Streams `res`'s body through the decryptor. Resolves with the plaintext Blob
 * only if every chunk authenticated and the digest and sizes match `pointer`.
 */
export async function decryptResponse(
  res: Response,
  pointer: AttachmentPointer,
  onProgress?: (done: number, total: number) => void,
): Promise<Blob> {
  let dec: AttachmentDecryptor | null = null;
  try {
    dec = new AttachmentDecryptor(pointer);
    const parts: BlobPart[] = [];
    let done = 0;
    if (res.body === null) throw new SottoError(ClientCodes.protocol, "the relay sent no body");
    const reader = res.body.getReader();
    for (;;) {
      let r: ReadableStreamReadResult<Uint8Array>;
      try {
        r = await reader.read();
      } catch (e) {
        throw new SottoError(ClientCodes.network, `download interrupted: ${e instanceof Error ? e.message : String(e)}`);
      }
      if (r.done) break;
      const plain = dec.update(r.value);
      if (plain.length > 0) {
        parts.push(part(plain));
        plain.fill(0);
        done += plain.length;
        onProgress?.(done, pointer.size);
      }
    }
    const tail = dec.finish();
    dec = null; // consumed by finish
    parts.push(part(tail));
    done += tail.length;
    tail.fill(0);
    onProgress?.(done, pointer.size);
    return new Blob(parts, { type: pointer.content_type ?? "application/octet-stream" });
  } catch (e) {
    try {
      dec?.free();
    } catch {
      // already consumed
    }
    try {
      await res.body?.cancel();
    } catch {
      // already done
    }
    throw toSottoError(e, ClientCodes.network);
  }
}
