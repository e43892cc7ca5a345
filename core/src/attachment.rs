//! Attachments (format v1): a file encrypted client-side under its own random
//! key with chunked AES-256-GCM (the STREAM construction of Hoang, Reyhanitabar,
//! Rogaway and Vizár, as used by age), so that files of any size stream through
//! bounded memory. The relay stores the encrypted blob as opaque bytes; the key
//! and the blob's SHA-256 travel inside a sealed message as an
//! [`AttachmentPointer`]. Byte layout (integers big-endian; see
//! `docs/protocol.md` §11):
//!
//! ```text
//! blob     = header ‖ chunk_0 ‖ chunk_1 ‖ … ‖ chunk_{n−1}                   (n ≥ 1)
//! header   = "SOTA" ‖ version u8 = 1 ‖ chunk_size u32                      (9 bytes)
//! chunk_i  = AES-256-GCM(key, nonce_i, aad = header, plaintext_i)            (ciphertext ‖ tag)
//! nonce_i  = i as an 11-byte big-endian integer ‖ last u8 (0x01 if i = n−1, else 0x00)
//! sha256   = SHA-256(blob)
//! ```
//!
//! Every plaintext chunk except the last holds exactly `chunk_size` bytes. The
//! last holds `1..=chunk_size` bytes, or 0 bytes only when the whole file is
//! empty (a file of `k × chunk_size` bytes ends with a full chunk, never with
//! an extra empty one).
//!
//! **One key, one file.** The nonces are deterministic, which is safe only
//! because every key encrypts exactly one file. The API enforces this: an
//! [`AttachmentEncryptor`] draws its own fresh key from the operating system's
//! CSPRNG and there is no public way to encrypt under a caller-supplied key.
//!
//! **Streaming caveat.** [`AttachmentDecryptor::update`] releases each chunk as
//! soon as that chunk authenticates, before the end of the file (truncation) or
//! the digest has been checked. If [`AttachmentDecryptor::finish`] (or any
//! `update`) fails, the caller must discard everything released so far. The
//! one-shot [`decrypt`] and [`AttachmentPointer::decrypt`] check the digest
//! first and return nothing unless the whole blob is valid.
//!
//! ## Example: send a file, receive it
//!
//! ```
//! use sotto_core::attachment::{AttachmentDecryptor, AttachmentEncryptor, AttachmentPointer};
//! use sotto_core::attachment::{DEFAULT_CHUNK_SIZE, Finished};
//! use uuid::Uuid;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let file = vec![0x42u8; 200_000];
//!
//! // Sender: stream the file through the encryptor (any slice sizes) and upload the bytes.
//! let (mut enc, mut blob) = AttachmentEncryptor::new(DEFAULT_CHUNK_SIZE)?;
//! for piece in file.chunks(10_000) {
//!     blob.extend(enc.update(piece)?);
//! }
//! let Finished { tail, key, info } = enc.finish()?;
//! blob.extend(tail);
//! // ... upload `blob`; the relay answers with the attachment id ...
//! let id = Uuid::from_u128(0xa77);
//! let mut pointer = AttachmentPointer::new(id, &key, &info);
//! pointer.content_type = Some("application/octet-stream".into());
//! // `serde_json::to_vec(&pointer)` goes inside the plaintext of a sealed message.
//!
//! // Receiver: opened the message, parsed the pointer, downloads `blob`.
//! let mut dec = AttachmentDecryptor::for_pointer(&pointer)?;
//! let mut out = Vec::new();
//! for piece in blob.chunks(7_777) {
//!     out.extend_from_slice(&dec.update(piece)?); // discard `out` if anything fails
//! }
//! out.extend_from_slice(&dec.finish()?);
//! assert_eq!(out, file);
//!
//! // Small files: one call, nothing released unless everything checks out.
//! assert_eq!(&pointer.decrypt(&blob)?[..], &file[..]);
//! # Ok(())
//! # }
//! ```

use core::fmt;

use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;
use zeroize::{Zeroize, Zeroizing};

use crate::encoding::B64;
use crate::primitives::{self, AES_KEY_LEN, AES_NONCE_LEN, AES_TAG_LEN};

/// The first four bytes of every attachment blob: `"SOTA"`.
pub const MAGIC: [u8; 4] = *b"SOTA";
/// The only attachment format version.
pub const FORMAT_VERSION: u8 = 1;
/// Header length: magic (4) ‖ version (1) ‖ chunk size (4).
pub const HEADER_LEN: usize = 9;
/// Attachment key length in bytes (AES-256).
pub const KEY_LEN: usize = AES_KEY_LEN;
/// Per-chunk authentication tag length in bytes.
pub const TAG_LEN: usize = AES_TAG_LEN;
/// Length of the blob digest (SHA-256) in bytes.
pub const DIGEST_LEN: usize = 32;
/// Plaintext bytes per chunk that [`encrypt`] uses (64 KiB).
pub const DEFAULT_CHUNK_SIZE: u32 = 64 * 1024;
/// Smallest chunk size accepted (1 KiB).
pub const MIN_CHUNK_SIZE: u32 = 1024;
/// Largest chunk size accepted (1 MiB); bounds the decryptor's buffer.
pub const MAX_CHUNK_SIZE: u32 = 1024 * 1024;

const HEADER_LEN_U64: u64 = HEADER_LEN as u64;
const TAG_LEN_U64: u64 = AES_TAG_LEN as u64;

/// Encrypting or decrypting an attachment failed.
///
/// A chunk that fails to authenticate, for whatever reason, is the single
/// [`AttachmentError::WrongKeyOrCorrupted`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttachmentError {
    /// The blob does not start with [`MAGIC`].
    #[error("not an attachment blob (bad magic)")]
    BadMagic,
    /// The header's version is not [`FORMAT_VERSION`].
    #[error("unsupported attachment format version {0}")]
    UnsupportedVersion(u8),
    /// A chunk size outside [`MIN_CHUNK_SIZE`]`..=`[`MAX_CHUNK_SIZE`] (in a header
    /// or passed to [`AttachmentEncryptor::new`]).
    #[error("chunk size {0} is outside the accepted range")]
    BadChunkSize(u32),
    /// The input ended inside the header, or the final chunk is shorter than a tag.
    #[error("attachment is truncated")]
    Truncated,
    /// A chunk did not authenticate: wrong key, or the blob was modified,
    /// truncated at or after a chunk boundary, reordered, or extended. Also an
    /// empty final chunk after a full one, which no encryptor produces.
    #[error("wrong key, or the attachment is corrupted")]
    WrongKeyOrCorrupted,
    /// The SHA-256 of the blob differs from the expected digest.
    #[error("attachment digest does not match")]
    DigestMismatch,
    /// The plaintext size, blob size or chunk size differs from the expected one.
    #[error("attachment size does not match")]
    SizeMismatch,
    /// An [`AttachmentPointer`] is inconsistent: wrong key or digest length, chunk
    /// size out of range, or an `encrypted_size` that does not follow from
    /// `size` and `chunk_size`.
    #[error("invalid attachment pointer: {0}")]
    BadPointer(&'static str),
    /// A length or chunk counter overflowed.
    #[error("attachment too large")]
    TooLarge,
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Rng,
    /// A primitive failed (not expected for valid inputs).
    #[error("encryption failed")]
    Crypto,
}

/// A 256-bit AES key that encrypts exactly one attachment.
///
/// Zeroized on drop; `Debug` is redacted. Only an [`AttachmentEncryptor`] creates
/// fresh keys; [`AttachmentKey::from_bytes`] and [`AttachmentKey::from_slice`]
/// exist to decrypt.
#[derive(Clone)]
pub struct AttachmentKey(Zeroizing<[u8; KEY_LEN]>);

impl AttachmentKey {
    /// A fresh key from `rng`.
    pub(crate) fn generate_with_rng(rng: &mut impl CryptoRng) -> Self {
        Self(Zeroizing::new(crate::rng::array(rng)))
    }

    /// Wraps raw key bytes (from a pointer or local storage), to decrypt.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Wraps raw key bytes; anything but exactly 32 bytes is
    /// [`AttachmentError::BadPointer`].
    pub fn from_slice(bytes: &[u8]) -> Result<Self, AttachmentError> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        if bytes.len() != KEY_LEN {
            return Err(AttachmentError::BadPointer("key must be 32 bytes"));
        }
        key.copy_from_slice(bytes);
        Ok(Self(key))
    }

    /// The raw key bytes, zeroized on drop.
    pub fn to_bytes(&self) -> Zeroizing<[u8; KEY_LEN]> {
        self.0.clone()
    }
}

impl fmt::Debug for AttachmentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AttachmentKey([redacted])")
    }
}

/// What the sender learns from encrypting a file: everything an
/// [`AttachmentPointer`] needs besides the key and the relay's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttachmentInfo {
    /// SHA-256 of the complete blob (header and every chunk).
    pub sha256: [u8; DIGEST_LEN],
    /// Plaintext size in bytes.
    pub size: u64,
    /// Blob size in bytes ([`encrypted_len`] of `size` and `chunk_size`).
    pub encrypted_size: u64,
    /// Plaintext bytes per chunk.
    pub chunk_size: u32,
}

/// The end of a streaming encryption: the last bytes of the blob, the file's key,
/// and its digest and sizes.
#[derive(Debug)]
pub struct Finished {
    /// The final chunk; append it to everything [`AttachmentEncryptor::update`] returned.
    pub tail: Vec<u8>,
    /// The file's key (fresh, used for this file only).
    pub key: AttachmentKey,
    /// Digest and sizes of the blob.
    pub info: AttachmentInfo,
}

/// A file encrypted in one call by [`encrypt`].
#[derive(Debug)]
pub struct EncryptedAttachment {
    /// The complete blob to upload.
    pub blob: Vec<u8>,
    /// The file's key (fresh, used for this file only).
    pub key: AttachmentKey,
    /// Digest and sizes of the blob.
    pub info: AttachmentInfo,
}

/// The blob size for a file of `plaintext_len` bytes in chunks of `chunk_size`:
/// `9 + plaintext_len + 16 × max(1, ⌈plaintext_len / chunk_size⌉)`.
///
/// `None` if `chunk_size` is out of range or the result overflows a `u64`.
pub fn encrypted_len(plaintext_len: u64, chunk_size: u32) -> Option<u64> {
    if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) {
        return None;
    }
    let chunks = plaintext_len.div_ceil(u64::from(chunk_size)).max(1);
    chunks
        .checked_mul(TAG_LEN_U64)?
        .checked_add(plaintext_len)?
        .checked_add(HEADER_LEN_U64)
}

fn check_chunk_size(chunk_size: u32) -> Result<usize, AttachmentError> {
    if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) {
        return Err(AttachmentError::BadChunkSize(chunk_size));
    }
    usize::try_from(chunk_size).map_err(|_| AttachmentError::BadChunkSize(chunk_size))
}

fn header_bytes(chunk_size: u32) -> [u8; HEADER_LEN] {
    let mut header = [0u8; HEADER_LEN];
    let fields = MAGIC
        .iter()
        .copied()
        .chain([FORMAT_VERSION])
        .chain(chunk_size.to_be_bytes());
    for (dst, src) in header.iter_mut().zip(fields) {
        *dst = src;
    }
    header
}

/// `counter` as an 11-byte big-endian integer ‖ the last-chunk flag.
fn chunk_nonce(counter: u64, last: bool) -> [u8; AES_NONCE_LEN] {
    let mut nonce = [0u8; AES_NONCE_LEN];
    // Bytes 0..3 are the (always zero) high bytes of the 88-bit counter.
    for (dst, src) in nonce.iter_mut().skip(3).zip(counter.to_be_bytes()) {
        *dst = src;
    }
    if let Some(flag) = nonce.last_mut() {
        *flag = u8::from(last);
    }
    nonce
}

fn len_u64(n: usize) -> Result<u64, AttachmentError> {
    u64::try_from(n).map_err(|_| AttachmentError::TooLarge)
}

fn sha256(hasher: Sha256) -> [u8; DIGEST_LEN] {
    hasher.finalize().into()
}

/// Streaming encryption of one file under a fresh key.
///
/// Memory is bounded by one chunk: [`update`](Self::update) buffers the input
/// until a chunk is full, and holds a full chunk back until more input arrives,
/// because only [`finish`](Self::finish) knows which chunk is the last.
/// After an error the encryptor refuses all further calls.
pub struct AttachmentEncryptor {
    key: AttachmentKey,
    header: [u8; HEADER_LEN],
    chunk_size: u32,
    chunk_len: usize,
    /// Pending plaintext; its capacity is exactly one chunk, so it never reallocates.
    buf: Zeroizing<Vec<u8>>,
    counter: u64,
    plaintext_len: u64,
    encrypted_len: u64,
    hasher: Sha256,
    failed: Option<AttachmentError>,
}

impl fmt::Debug for AttachmentEncryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttachmentEncryptor")
            .field("chunk_size", &self.chunk_size)
            .field("chunks_emitted", &self.counter)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl AttachmentEncryptor {
    /// Starts encrypting a file in chunks of `chunk_size` plaintext bytes
    /// ([`DEFAULT_CHUNK_SIZE`] unless there is a reason to differ) under a fresh
    /// key from the operating system's CSPRNG. Returns the encryptor and the
    /// 9-byte header, the first bytes of the blob.
    pub fn new(chunk_size: u32) -> Result<(Self, Vec<u8>), AttachmentError> {
        check_chunk_size(chunk_size)?;
        let mut rng = crate::rng::system().map_err(|_| AttachmentError::Rng)?;
        Self::start(AttachmentKey::generate_with_rng(&mut rng), chunk_size)
    }

    /// [`AttachmentEncryptor::new`] under a given key, for the deterministic test
    /// vectors only (`test-vectors` feature). Encrypting two different files
    /// under one key reuses every nonce and destroys both confidentiality and
    /// integrity; never enable this feature in production builds.
    #[cfg(feature = "test-vectors")]
    pub fn with_key(
        key: &AttachmentKey,
        chunk_size: u32,
    ) -> Result<(Self, Vec<u8>), AttachmentError> {
        Self::start(key.clone(), chunk_size)
    }

    fn start(key: AttachmentKey, chunk_size: u32) -> Result<(Self, Vec<u8>), AttachmentError> {
        let chunk_len = check_chunk_size(chunk_size)?;
        let header = header_bytes(chunk_size);
        let mut hasher = Sha256::new();
        hasher.update(header);
        let enc = Self {
            key,
            header,
            chunk_size,
            chunk_len,
            buf: Zeroizing::new(Vec::with_capacity(chunk_len)),
            counter: 0,
            plaintext_len: 0,
            encrypted_len: HEADER_LEN_U64,
            hasher,
            failed: None,
        };
        Ok((enc, header.to_vec()))
    }

    /// The file's key.
    pub fn key(&self) -> &AttachmentKey {
        &self.key
    }

    /// Plaintext bytes per chunk.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Feeds the next `input` bytes of the file (any length, including zero) and
    /// returns the blob bytes now complete: zero or more whole chunks.
    pub fn update(&mut self, input: &[u8]) -> Result<Vec<u8>, AttachmentError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let result = self.update_inner(input);
        if let Err(e) = &result {
            self.failed = Some(e.clone());
        }
        result
    }

    fn update_inner(&mut self, mut input: &[u8]) -> Result<Vec<u8>, AttachmentError> {
        self.plaintext_len = self
            .plaintext_len
            .checked_add(len_u64(input.len())?)
            .ok_or(AttachmentError::TooLarge)?;
        let frame = self.chunk_len.saturating_add(TAG_LEN);
        let chunks = self.buf.len().saturating_add(input.len()) / self.chunk_len.max(1);
        let mut out = Vec::with_capacity(chunks.saturating_mul(frame));
        while !input.is_empty() {
            if self.buf.len() >= self.chunk_len {
                // A full chunk with more input after it: not the last one.
                self.seal_chunk(false, &mut out)?;
            }
            let room = self.chunk_len.saturating_sub(self.buf.len());
            let (head, rest) = input.split_at(room.min(input.len()));
            self.buf.extend_from_slice(head);
            input = rest;
        }
        Ok(out)
    }

    fn seal_chunk(&mut self, last: bool, out: &mut Vec<u8>) -> Result<(), AttachmentError> {
        let nonce = chunk_nonce(self.counter, last);
        let ct = primitives::aes256gcm_encrypt(&self.key.0, &nonce, &self.header, &self.buf)
            .map_err(|_| AttachmentError::Crypto)?;
        self.buf.zeroize();
        self.counter = self
            .counter
            .checked_add(1)
            .ok_or(AttachmentError::TooLarge)?;
        self.encrypted_len = self
            .encrypted_len
            .checked_add(len_u64(ct.len())?)
            .ok_or(AttachmentError::TooLarge)?;
        self.hasher.update(&ct);
        out.extend_from_slice(&ct);
        Ok(())
    }

    /// Encrypts the last chunk (the buffered rest of the file: 0 bytes only if
    /// the file is empty) and returns it with the key, digest and sizes.
    pub fn finish(mut self) -> Result<Finished, AttachmentError> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let mut tail = Vec::with_capacity(self.buf.len().saturating_add(TAG_LEN));
        self.seal_chunk(true, &mut tail)?;
        let Self {
            key,
            chunk_size,
            plaintext_len,
            encrypted_len,
            hasher,
            ..
        } = self;
        Ok(Finished {
            tail,
            key,
            info: AttachmentInfo {
                sha256: sha256(hasher),
                size: plaintext_len,
                encrypted_size: encrypted_len,
                chunk_size,
            },
        })
    }
}

/// Streaming decryption of one blob.
///
/// Accepts the blob in slices of any size (the header may be split too). Memory
/// is bounded by one chunk plus its tag: a full chunk is held back until more
/// bytes arrive, since only [`finish`](Self::finish) knows which chunk is the
/// last. Plaintext is released one authenticated chunk at a time; see the
/// module documentation for why the caller must discard it if a later call
/// fails. After an error the decryptor refuses all further calls.
pub struct AttachmentDecryptor {
    key: AttachmentKey,
    header: [u8; HEADER_LEN],
    header_filled: usize,
    /// Plaintext bytes per chunk, once the header is parsed.
    chunk_len: Option<usize>,
    /// Pending ciphertext (public): at most one chunk and its tag.
    buf: Vec<u8>,
    counter: u64,
    received: u64,
    released: u64,
    /// Hashes every byte received; off only in the one-shot paths, which check
    /// the digest before decrypting.
    hasher: Option<Sha256>,
    expected_digest: Option<[u8; DIGEST_LEN]>,
    expected_size: Option<u64>,
    expected_encrypted_size: Option<u64>,
    expected_chunk_size: Option<u32>,
    failed: Option<AttachmentError>,
}

impl fmt::Debug for AttachmentDecryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttachmentDecryptor")
            .field("chunk_len", &self.chunk_len)
            .field("chunks_released", &self.counter)
            .field("received", &self.received)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl AttachmentDecryptor {
    /// Starts decrypting a blob under `key`, with no expectations about its
    /// digest or sizes (add them with the `with_expected_*` methods, or use
    /// [`AttachmentDecryptor::for_pointer`]).
    pub fn new(key: &AttachmentKey) -> Self {
        Self {
            key: key.clone(),
            header: [0u8; HEADER_LEN],
            header_filled: 0,
            chunk_len: None,
            buf: Vec::new(),
            counter: 0,
            received: 0,
            released: 0,
            hasher: Some(Sha256::new()),
            expected_digest: None,
            expected_size: None,
            expected_encrypted_size: None,
            expected_chunk_size: None,
            failed: None,
        }
    }

    /// [`finish`](Self::finish) also requires the SHA-256 of every byte received
    /// to equal `sha256` ([`AttachmentError::DigestMismatch`]).
    pub fn with_expected_digest(mut self, sha256: [u8; DIGEST_LEN]) -> Self {
        self.expected_digest = Some(sha256);
        self
    }

    /// The plaintext must be exactly `size` bytes ([`AttachmentError::SizeMismatch`]
    /// as soon as a chunk would exceed it, or at [`finish`](Self::finish) if short).
    pub fn with_expected_size(mut self, size: u64) -> Self {
        self.expected_size = Some(size);
        self
    }

    /// A decryptor for the blob `pointer` references: its key, and its digest,
    /// plaintext size, blob size and chunk size as expectations. The blob size is
    /// enforced as bytes arrive, so an over-long download fails early.
    pub fn for_pointer(pointer: &AttachmentPointer) -> Result<Self, AttachmentError> {
        pointer.validate()?;
        let mut dec = Self::new(&pointer.attachment_key()?)
            .with_expected_digest(pointer.digest()?)
            .with_expected_size(pointer.size);
        dec.expected_encrypted_size = Some(pointer.encrypted_size);
        dec.expected_chunk_size = Some(pointer.chunk_size);
        Ok(dec)
    }

    /// Feeds the next bytes of the blob (any length, including zero) and returns
    /// the plaintext of every chunk that is now complete, known not to be the
    /// last, and authentic. The plaintext is zeroized on drop.
    pub fn update(&mut self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>, AttachmentError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        // An upper bound on what this call can release, so that the buffer never
        // reallocates (which would leave unzeroized plaintext behind).
        let bound = self.buf.len().saturating_add(input.len());
        let mut out = Zeroizing::new(Vec::with_capacity(bound));
        let result = self.update_into(input, &mut out);
        if let Err(e) = result {
            self.failed = Some(e.clone());
            return Err(e);
        }
        Ok(out)
    }

    /// [`update`](Self::update) into `out`, which must have spare capacity for
    /// `buf.len() + input.len()` bytes.
    fn update_into(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), AttachmentError> {
        self.received = self
            .received
            .checked_add(len_u64(input.len())?)
            .ok_or(AttachmentError::TooLarge)?;
        if self
            .expected_encrypted_size
            .is_some_and(|max| self.received > max)
        {
            return Err(AttachmentError::SizeMismatch);
        }
        if let Some(h) = &mut self.hasher {
            h.update(input);
        }

        let chunk_len = match self.chunk_len {
            Some(n) => n,
            None => {
                let want = HEADER_LEN.saturating_sub(self.header_filled);
                let (head, rest) = input.split_at(want.min(input.len()));
                let end = self.header_filled.saturating_add(head.len());
                if let Some(dst) = self.header.get_mut(self.header_filled..end) {
                    dst.copy_from_slice(head);
                }
                self.header_filled = end;
                input = rest;
                // Reject a wrong magic as soon as its bytes arrive.
                let seen = self.header_filled.min(MAGIC.len());
                if self.header.get(..seen) != MAGIC.get(..seen) {
                    return Err(AttachmentError::BadMagic);
                }
                if self.header_filled < HEADER_LEN {
                    return Ok(());
                }
                let n = self.parse_header()?;
                self.chunk_len = Some(n);
                n
            }
        };

        let frame = chunk_len.saturating_add(TAG_LEN);
        while !input.is_empty() {
            if self.buf.len() >= frame {
                // A full chunk with more bytes after it: not the last one.
                let pt = self.open_chunk(false)?;
                out.extend_from_slice(&pt);
            }
            let room = frame.saturating_sub(self.buf.len());
            let (head, rest) = input.split_at(room.min(input.len()));
            self.buf.extend_from_slice(head);
            input = rest;
        }
        Ok(())
    }

    /// Checks the version and chunk size of the complete header; returns the
    /// chunk size.
    fn parse_header(&mut self) -> Result<usize, AttachmentError> {
        let [_, _, _, _, version, c0, c1, c2, c3] = self.header;
        if version != FORMAT_VERSION {
            return Err(AttachmentError::UnsupportedVersion(version));
        }
        let chunk_size = u32::from_be_bytes([c0, c1, c2, c3]);
        let chunk_len = check_chunk_size(chunk_size)?;
        if self
            .expected_chunk_size
            .is_some_and(|want| want != chunk_size)
        {
            return Err(AttachmentError::SizeMismatch);
        }
        self.buf = Vec::with_capacity(chunk_len.saturating_add(TAG_LEN));
        Ok(chunk_len)
    }

    /// Authenticates and decrypts the buffered chunk; nothing is released unless
    /// it authenticates and fits the expected size.
    fn open_chunk(&mut self, last: bool) -> Result<Zeroizing<Vec<u8>>, AttachmentError> {
        let nonce = chunk_nonce(self.counter, last);
        let pt = primitives::aes256gcm_decrypt(&self.key.0, &nonce, &self.header, &self.buf)
            .map_err(|_| AttachmentError::WrongKeyOrCorrupted)?;
        let released = self
            .released
            .checked_add(len_u64(pt.len())?)
            .ok_or(AttachmentError::TooLarge)?;
        if self.expected_size.is_some_and(|max| released > max) {
            return Err(AttachmentError::SizeMismatch);
        }
        self.released = released;
        self.counter = self
            .counter
            .checked_add(1)
            .ok_or(AttachmentError::TooLarge)?;
        self.buf.clear();
        Ok(pt)
    }

    /// Ends the blob: checks its length and digest, then authenticates the
    /// buffered final chunk and returns its plaintext. Checks, in order:
    /// complete header and a final chunk of at least 16 bytes
    /// ([`Truncated`](AttachmentError::Truncated)), the blob size
    /// ([`SizeMismatch`](AttachmentError::SizeMismatch)), the digest
    /// ([`DigestMismatch`](AttachmentError::DigestMismatch)), the final chunk
    /// ([`WrongKeyOrCorrupted`](AttachmentError::WrongKeyOrCorrupted)), the
    /// plaintext size ([`SizeMismatch`](AttachmentError::SizeMismatch)).
    pub fn finish(mut self) -> Result<Zeroizing<Vec<u8>>, AttachmentError> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        if self.chunk_len.is_none() || self.buf.len() < TAG_LEN {
            return Err(AttachmentError::Truncated);
        }
        if self
            .expected_encrypted_size
            .is_some_and(|want| want != self.received)
        {
            return Err(AttachmentError::SizeMismatch);
        }
        if let Some(want) = self.expected_digest {
            let matches = self
                .hasher
                .take()
                .is_some_and(|h| bool::from(sha256(h).ct_eq(&want)));
            if !matches {
                return Err(AttachmentError::DigestMismatch);
            }
        }
        if self.buf.len() == TAG_LEN && self.counter > 0 {
            // An empty final chunk after full ones: never produced by an encryptor.
            return Err(AttachmentError::WrongKeyOrCorrupted);
        }
        let pt = self.open_chunk(true)?;
        if self.expected_size.is_some_and(|want| want != self.released) {
            return Err(AttachmentError::SizeMismatch);
        }
        Ok(pt)
    }
}

/// Encrypts a whole file in memory in chunks of [`DEFAULT_CHUNK_SIZE`], under a
/// fresh key. For large files use [`AttachmentEncryptor`].
pub fn encrypt(plaintext: &[u8]) -> Result<EncryptedAttachment, AttachmentError> {
    let (mut enc, header) = AttachmentEncryptor::new(DEFAULT_CHUNK_SIZE)?;
    let total = encrypted_len(len_u64(plaintext.len())?, DEFAULT_CHUNK_SIZE)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or(AttachmentError::TooLarge)?;
    let mut blob = Vec::with_capacity(total);
    blob.extend_from_slice(&header);
    blob.extend_from_slice(&enc.update(plaintext)?);
    let Finished { tail, key, info } = enc.finish()?;
    blob.extend_from_slice(&tail);
    Ok(EncryptedAttachment { blob, key, info })
}

/// Decrypts a whole blob in memory. The SHA-256 of `blob` must equal
/// `expected_sha256`, checked before anything is decrypted; no plaintext is
/// returned unless every chunk authenticates and the blob ends correctly.
pub fn decrypt(
    key: &AttachmentKey,
    blob: &[u8],
    expected_sha256: &[u8; DIGEST_LEN],
) -> Result<Zeroizing<Vec<u8>>, AttachmentError> {
    let got = sha256(Sha256::new_with_prefix(blob));
    if !bool::from(got.ct_eq(expected_sha256)) {
        return Err(AttachmentError::DigestMismatch);
    }
    decrypt_checked(AttachmentDecryptor::new(key), blob)
}

/// Runs `dec` over all of `blob`, whose digest the caller has already checked,
/// into one buffer that never reallocates.
fn decrypt_checked(
    mut dec: AttachmentDecryptor,
    blob: &[u8],
) -> Result<Zeroizing<Vec<u8>>, AttachmentError> {
    dec.hasher = None;
    dec.expected_digest = None;
    let mut out = Zeroizing::new(Vec::with_capacity(blob.len()));
    dec.update_into(blob, &mut out)?;
    let last = dec.finish()?;
    out.extend_from_slice(&last);
    Ok(out)
}

/// The reference to an attachment that a sender puts inside the plaintext of a
/// sealed message: where the blob is, the key to decrypt it, and what it must
/// hash to. JSON object; unknown fields are rejected.
///
/// `key` is secret: it is zeroized when the pointer is dropped and redacted from
/// `Debug`, but serializing the pointer (e.g. with `serde_json`) writes the key
/// into the output, which the caller must treat as secret (it is meant to be
/// sealed). `content_type` and `name` are the sender's claims: never use `name`
/// as a file-system path without sanitizing it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct AttachmentPointer {
    /// The attachment id the relay assigned on upload.
    pub id: Uuid,
    /// The 32-byte attachment key (base64url).
    pub key: B64,
    /// SHA-256 of the complete blob, 32 bytes (base64url).
    pub sha256: B64,
    /// Plaintext size in bytes.
    pub size: u64,
    /// Blob size in bytes, as uploaded.
    pub encrypted_size: u64,
    /// Plaintext bytes per chunk (also in the blob's header).
    pub chunk_size: u32,
    /// The file's media type, e.g. `image/png`. Omitted when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub content_type: Option<String>,
    /// The file's name as the sender gave it. Omitted when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub name: Option<String>,
}

impl Drop for AttachmentPointer {
    fn drop(&mut self) {
        self.key.0.zeroize();
    }
}

impl fmt::Debug for AttachmentPointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttachmentPointer")
            .field("id", &self.id)
            .field("key", &format_args!("[redacted]"))
            .field("sha256", &self.sha256)
            .field("size", &self.size)
            .field("encrypted_size", &self.encrypted_size)
            .field("chunk_size", &self.chunk_size)
            .field("content_type", &self.content_type)
            .field("name", &self.name)
            .finish()
    }
}

impl AttachmentPointer {
    /// A pointer to the blob the relay stored as `id`, with no content type or name.
    pub fn new(id: Uuid, key: &AttachmentKey, info: &AttachmentInfo) -> Self {
        Self {
            id,
            key: B64(key.0.to_vec()),
            sha256: B64(info.sha256.to_vec()),
            size: info.size,
            encrypted_size: info.encrypted_size,
            chunk_size: info.chunk_size,
            content_type: None,
            name: None,
        }
    }

    /// Checks that the fields are consistent: a 32-byte key and digest, a chunk
    /// size in range, and `encrypted_size` = [`encrypted_len`]`(size, chunk_size)`.
    pub fn validate(&self) -> Result<(), AttachmentError> {
        if self.key.0.len() != KEY_LEN {
            return Err(AttachmentError::BadPointer("key must be 32 bytes"));
        }
        if self.sha256.0.len() != DIGEST_LEN {
            return Err(AttachmentError::BadPointer("sha256 must be 32 bytes"));
        }
        if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&self.chunk_size) {
            return Err(AttachmentError::BadPointer("chunk_size out of range"));
        }
        if encrypted_len(self.size, self.chunk_size) != Some(self.encrypted_size) {
            return Err(AttachmentError::BadPointer(
                "encrypted_size does not match size and chunk_size",
            ));
        }
        Ok(())
    }

    /// The attachment key.
    pub fn attachment_key(&self) -> Result<AttachmentKey, AttachmentError> {
        AttachmentKey::from_slice(&self.key.0)
    }

    /// The expected SHA-256 of the blob.
    pub fn digest(&self) -> Result<[u8; DIGEST_LEN], AttachmentError> {
        <[u8; DIGEST_LEN]>::try_from(self.sha256.0.as_slice())
            .map_err(|_| AttachmentError::BadPointer("sha256 must be 32 bytes"))
    }

    /// Decrypts the whole downloaded `blob` in memory: validates the pointer,
    /// checks the blob's size and SHA-256 before decrypting anything, then
    /// requires every chunk to authenticate and the plaintext size to match.
    /// Returns nothing unless all of that passes.
    pub fn decrypt(&self, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, AttachmentError> {
        self.validate()?;
        if len_u64(blob.len())? != self.encrypted_size {
            return Err(AttachmentError::SizeMismatch);
        }
        let want = self.digest()?;
        let got = sha256(Sha256::new_with_prefix(blob));
        if !bool::from(got.ct_eq(&want)) {
            return Err(AttachmentError::DigestMismatch);
        }
        decrypt_checked(AttachmentDecryptor::for_pointer(self)?, blob)
    }
}
