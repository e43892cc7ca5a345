//! Attachments (docs/protocol.md §11): chunked AES-256-GCM under a fresh key per
//! file, streamable both ways. The key travels only inside an `AttachmentPointer`,
//! which belongs in sealed message content.

use sotto_core::attachment::{
    self, AttachmentError, AttachmentInfo, AttachmentKey, DEFAULT_CHUNK_SIZE, Finished,
};
use uuid::Uuid;
use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::wasm_bindgen;
use zeroize::Zeroizing;

use crate::error::Result;
use crate::js::{self, Obj};
use crate::types;

/// The chunk size argument: absent → 64 KiB; must be an integer (the range is
/// checked by the core: `attachment`/`bad_chunk_size`).
fn chunk_size_arg(chunk_size: Option<f64>) -> Result<u32> {
    match chunk_size {
        None => Ok(DEFAULT_CHUNK_SIZE),
        Some(n) => js::safe_u32(n, "chunkSize"),
    }
}

fn pointer_arg(pointer: &JsValue) -> Result<attachment::AttachmentPointer> {
    js::from_js(pointer, "attachment pointer")
}

/// Streaming encryption of one file under a fresh key: send `header()`, then
/// every `update()` result, then `finish().tail`.
#[wasm_bindgen]
pub struct AttachmentEncryptor {
    inner: attachment::AttachmentEncryptor,
    header: Vec<u8>,
}

#[wasm_bindgen]
impl AttachmentEncryptor {
    /// Starts a file in chunks of `chunkSize` plaintext bytes (default 65536,
    /// 1 KiB to 1 MiB), under a fresh key from the platform CSPRNG.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(js_name = chunkSize)] chunk_size: Option<f64>,
    ) -> Result<AttachmentEncryptor> {
        let (inner, header) = attachment::AttachmentEncryptor::new(chunk_size_arg(chunk_size)?)?;
        Ok(Self { inner, header })
    }

    /// The 9-byte stream header: the first bytes of the blob.
    pub fn header(&self) -> Vec<u8> {
        self.header.clone()
    }

    /// Feeds the next plaintext bytes (any length); returns the ciphertext
    /// completed so far (possibly empty).
    pub fn update(&mut self, chunk: Vec<u8>) -> Result<Vec<u8>> {
        let chunk = Zeroizing::new(chunk);
        Ok(self.inner.update(&chunk)?)
    }

    /// Ends the file; consumes the encryptor.
    pub fn finish(self) -> Result<AttachmentSealed> {
        let Finished { tail, key, info } = self.inner.finish()?;
        Ok(AttachmentSealed { tail, key, info })
    }
}

/// A finished encryption: the last ciphertext bytes, and what the pointer needs
/// (the key stays in WASM until `pointer()`).
#[wasm_bindgen]
pub struct AttachmentSealed {
    tail: Vec<u8>,
    key: AttachmentKey,
    info: AttachmentInfo,
}

#[wasm_bindgen]
impl AttachmentSealed {
    /// The last ciphertext bytes: send them last.
    #[wasm_bindgen(getter)]
    pub fn tail(&self) -> Vec<u8> {
        self.tail.clone()
    }

    /// Plaintext size in bytes.
    #[wasm_bindgen(getter)]
    pub fn size(&self) -> f64 {
        js::number(self.info.size)
    }

    /// Blob size in bytes (header and every chunk).
    #[wasm_bindgen(getter, js_name = encryptedSize)]
    pub fn encrypted_size(&self) -> f64 {
        js::number(self.info.encrypted_size)
    }

    /// The pointer to the uploaded blob (`attachmentId` is the relay's id). It
    /// holds the key: put it only in sealed content.
    pub fn pointer(
        &self,
        #[wasm_bindgen(js_name = attachmentId)] attachment_id: &str,
        name: Option<String>,
        #[wasm_bindgen(js_name = contentType)] content_type: Option<String>,
    ) -> Result<types::AttachmentPointer> {
        let id: Uuid = js::parse_uuid(attachment_id, "attachmentId")?;
        let mut pointer = attachment::AttachmentPointer::new(id, &self.key, &self.info);
        pointer.name = name;
        pointer.content_type = content_type;
        Ok(js::to_js(&pointer)?.into())
    }
}

/// Streaming decryption of a blob against its pointer. Plaintext is released
/// chunk by chunk once each chunk authenticates; if `update` or `finish` throws,
/// discard everything released so far (truncation and the digest are only known
/// at `finish`).
#[wasm_bindgen]
pub struct AttachmentDecryptor {
    inner: attachment::AttachmentDecryptor,
}

#[wasm_bindgen]
impl AttachmentDecryptor {
    /// Validates the pointer; its digest and sizes are checked as bytes arrive and at `finish`.
    #[wasm_bindgen(constructor)]
    pub fn new(pointer: types::AttachmentPointer) -> Result<AttachmentDecryptor> {
        let pointer = pointer_arg(&pointer)?;
        Ok(Self {
            inner: attachment::AttachmentDecryptor::for_pointer(&pointer)?,
        })
    }

    /// Feeds the next blob bytes; returns the plaintext authenticated so far.
    pub fn update(&mut self, chunk: &[u8]) -> Result<js_sys::Uint8Array> {
        Ok(js::bytes(&self.inner.update(chunk)?))
    }

    /// Ends the blob: checks its size and digest and the final chunk; consumes the decryptor.
    pub fn finish(self) -> Result<js_sys::Uint8Array> {
        Ok(js::bytes(&self.inner.finish()?))
    }
}

/// Encrypts a whole file in memory under a fresh key.
#[wasm_bindgen(js_name = encryptAttachment)]
pub fn encrypt_attachment(
    plaintext: Vec<u8>,
    #[wasm_bindgen(js_name = chunkSize)] chunk_size: Option<f64>,
) -> Result<types::EncryptedAttachment> {
    let plaintext = Zeroizing::new(plaintext);
    let chunk_size = chunk_size_arg(chunk_size)?;
    let (mut enc, header) = attachment::AttachmentEncryptor::new(chunk_size)?;
    let total = u64::try_from(plaintext.len())
        .ok()
        .and_then(|n| attachment::encrypted_len(n, chunk_size))
        .and_then(|n| usize::try_from(n).ok())
        .ok_or(AttachmentError::TooLarge)?;
    let mut blob = Vec::with_capacity(total);
    blob.extend_from_slice(&header);
    blob.extend_from_slice(&enc.update(&plaintext)?);
    let Finished { tail, key, info } = enc.finish()?;
    blob.extend_from_slice(&tail);
    let sealed = AttachmentSealed { tail, key, info };
    Ok(Obj::new()
        .set("blob", js::bytes(&blob))
        .set("sealed", JsValue::from(sealed))
        .into_typed())
}

/// Decrypts a whole downloaded blob: nothing is returned unless its size,
/// digest and every chunk check out.
#[wasm_bindgen(js_name = decryptAttachment)]
pub fn decrypt_attachment(
    pointer: types::AttachmentPointer,
    blob: &[u8],
) -> Result<js_sys::Uint8Array> {
    let pointer = pointer_arg(&pointer)?;
    Ok(js::bytes(&pointer.decrypt(blob)?))
}

/// The blob size of a file of `plaintextSize` bytes (default chunk size 65536).
#[wasm_bindgen(js_name = encryptedAttachmentSize)]
pub fn encrypted_attachment_size(
    #[wasm_bindgen(js_name = plaintextSize)] plaintext_size: f64,
    #[wasm_bindgen(js_name = chunkSize)] chunk_size: Option<f64>,
) -> Result<f64> {
    let size = js::safe_u64(plaintext_size, "plaintextSize")?;
    let chunk_size = chunk_size_arg(chunk_size)?;
    encrypted_size(size, chunk_size).map(js::number)
}

fn encrypted_size(size: u64, chunk_size: u32) -> Result<u64> {
    if !(attachment::MIN_CHUNK_SIZE..=attachment::MAX_CHUNK_SIZE).contains(&chunk_size) {
        return Err(AttachmentError::BadChunkSize(chunk_size).into());
    }
    Ok(attachment::encrypted_len(size, chunk_size).ok_or(AttachmentError::TooLarge)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(encrypted_size(0, 65536), Ok(9 + 16));
        assert_eq!(encrypted_size(2560, 1024), Ok(2617));
        let e = encrypted_size(1, 10).err();
        assert_eq!(e.as_ref().and_then(|e| e.detail()), Some("bad_chunk_size"));
        assert_eq!(chunk_size_arg(None), Ok(65536));
        assert!(chunk_size_arg(Some(1.5)).is_err());
    }
}
