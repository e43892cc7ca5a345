//! The client store's own secrets: the **store key**, and local history sealed
//! under it (`docs/client.md`, "What the client keeps").
//!
//! A store has one random 256-bit store key. The store passphrase wraps it
//! (Argon2id + AES-256-GCM: [`StoreKey::wrap`]); everything else secret in the
//! store is sealed under keys derived from it:
//! - the device's secrets, as the core's recovery-key backup blob
//!   (`sotto_core::backup`, kdf 2) under [`StoreKey::device_key`];
//! - every opened message kept as local history ([`HistoryKey`]).
//!
//! So unlocking costs one Argon2id, changing the passphrase re-wraps 32 bytes
//! and re-encrypts nothing, and a copied store file shows no plaintext and no
//! key without the passphrase.
//!
//! Byte layouts (all integers big-endian):
//! ```text
//! wrapped store key = "SOTTOSK" ‖ version u8 = 1 ‖ m_cost_kib u32 ‖ t_cost u32
//!                     ‖ p_cost u32 ‖ salt [16] ‖ nonce [12]
//!                     ‖ AES-256-GCM(argon2id(passphrase, salt), nonce,
//!                                   aad = every preceding byte, store key [32])
//! history key       = HKDF-SHA256(ikm = store key, salt = none,
//!                                 info = "SOTTO-v1 local history")
//! device key        = the store key itself, as a core `RecoveryKey` (the core
//!                     derives with HKDF, info "SOTTO-v1 backup recovery-key")
//! sealed item       = version u8 = 1 ‖ nonce [12]
//!                     ‖ AES-256-GCM(history key, nonce,
//!                                   aad = "SOTTO-v1 history" ‖ room id [16] ‖ seq u64,
//!                                   JSON of HistoryItem, padded with spaces to
//!                                   its Padmé length as envelopes are)
//! ```
//! The room and `seq` in the associated data bind an item to its place: a
//! store row moved to another room or position does not open.
//!
//! Randomness comes from the caller (`rng`): drivers pass the OS RNG, tests a
//! seeded one. For the nonces of history items, which are public, drivers
//! pass the OS RNG read ahead in blocks ([`ReadAhead`]): a catch-up then
//! makes one `getrandom` call per 64 items instead of one per item.

use core::fmt;

use hkdf::Hkdf;
use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use sotto_core::backup::{self, BackupParams, DeviceSecrets, RecoveryKey};
use sotto_core::envelope::padding::padme_len;
use sotto_core::primitives;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::content::Content;

const WRAP_MAGIC: &[u8; 7] = b"SOTTOSK";
const WRAP_VERSION: u8 = 1;
const WRAP_LEN: usize = 7 + 1 + 12 + 16 + 12 + 32 + 16;
const HISTORY_INFO: &[u8] = b"SOTTO-v1 local history";
const HISTORY_AAD: &[u8] = b"SOTTO-v1 history";
const ITEM_VERSION: u8 = 1;
/// Largest sealed history item accepted (a message's plaintext is at most
/// 256 KiB; its JSON and framing add little).
const MAX_ITEM: usize = 512 * 1024;

/// Why a store secret or a history item does not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// The passphrase is wrong or the wrapped key was modified.
    #[error("wrong passphrase, or the store key was modified")]
    WrongPassphrase,
    /// The passphrase is empty.
    #[error("the store passphrase is empty")]
    EmptyPassphrase,
    /// Argon2id parameters out of the accepted range.
    #[error("unacceptable Argon2id parameters")]
    BadParameters,
    /// Not a wrapped store key or sealed item of a known layout.
    #[error("malformed")]
    Malformed,
    /// A history item that does not authenticate (another store's, moved, or modified).
    #[error("history item does not authenticate")]
    Corrupted,
    /// The device's secrets do not open under the store key (modified, or
    /// another store's).
    #[error("the device's secrets do not open under the store key")]
    SecretsCorrupted,
}

/// Bytes of the RNG `R` read ahead, [`READ_AHEAD`] at a time: each byte
/// served once, in order, and zeroed in the pool as it is served (and the
/// pool on drop). A request as large as the pool reads `R` directly.
///
/// Meant for the nonces of history items (public values, 12 bytes each),
/// where one OS call per item cost about 1 µs, most of an item's sealing.
/// Keys are drawn from the OS RNG directly, never through a pool.
///
/// State in memory: a process that forks with a pool in use, or a VM
/// restored from a snapshot, would serve the same pooled bytes twice (a
/// nonce reused under the history key). Neither driver forks, and a
/// pool lives as long as its session (native) or its vault (browser).
pub struct ReadAhead<R> {
    rng: R,
    pool: Zeroizing<[u8; READ_AHEAD]>,
    /// Bytes of `pool` before this one are served (zeroed).
    at: usize,
}

/// The pool of a [`ReadAhead`]: 64 nonces.
pub const READ_AHEAD: usize = 64 * 12;

impl<R: CryptoRng> ReadAhead<R> {
    /// An empty pool over `rng` (filled at the first request).
    pub fn new(rng: R) -> Self {
        Self {
            rng,
            pool: Zeroizing::new([0; READ_AHEAD]),
            at: READ_AHEAD,
        }
    }
}

impl<R> fmt::Debug for ReadAhead<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReadAhead(..)")
    }
}

impl<R: CryptoRng> rand_core::TryRng for ReadAhead<R> {
    type Error = core::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        if dst.len() >= READ_AHEAD {
            self.rng.fill_bytes(dst);
            return Ok(());
        }
        if READ_AHEAD - self.at < dst.len() {
            // (What was left is overwritten, never served.)
            self.rng.fill_bytes(self.pool.as_mut());
            self.at = 0;
        }
        let end = self.at + dst.len();
        if let Some(served) = self.pool.get_mut(self.at..end) {
            dst.copy_from_slice(served);
            served.fill(0);
        }
        self.at = end;
        Ok(())
    }
}

impl<R: CryptoRng> rand_core::TryCryptoRng for ReadAhead<R> {}

/// A device's secrets as a store keeps them ([`StoreKey::keep`]).
#[derive(Debug)]
pub struct Kept {
    /// The new store key.
    pub key: StoreKey,
    /// It, wrapped under the store passphrase.
    pub wrapped_key: Vec<u8>,
    /// The device's secrets under it.
    pub secrets: Vec<u8>,
}

/// A stored account, unlocked ([`StoreKey::unlock`]).
#[derive(Debug)]
pub struct Unlocked {
    /// The store key.
    pub key: StoreKey,
    /// The device's secrets.
    pub secrets: DeviceSecrets,
    /// A store from before the store key, upgraded: save these in place of
    /// the account's old secrets (and the wrapped key beside them).
    pub upgraded: Option<Upgraded>,
}

/// What an old store is upgraded to ([`Unlocked::upgraded`]).
#[derive(Debug)]
pub struct Upgraded {
    /// The new store key, wrapped under the store passphrase.
    pub wrapped_key: Vec<u8>,
    /// The device's secrets under it.
    pub secrets: Vec<u8>,
}

/// The store's root secret (zeroized on drop, never printed).
pub struct StoreKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreKey([redacted])")
    }
}

impl StoreKey {
    /// A new random store key.
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(key.as_mut());
        Self(key)
    }

    /// Wraps the key under `passphrase` (Argon2id with `params`, a random salt).
    ///
    /// # Errors
    /// [`VaultError::EmptyPassphrase`], [`VaultError::BadParameters`].
    pub fn wrap(
        &self,
        passphrase: &[u8],
        params: &BackupParams,
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<u8>, VaultError> {
        if passphrase.is_empty() {
            return Err(VaultError::EmptyPassphrase);
        }
        let mut salt = [0u8; 16];
        rng.fill_bytes(&mut salt);
        let mut nonce = [0u8; 12];
        rng.fill_bytes(&mut nonce);
        let kek = backup::derive_passphrase_key(passphrase, &salt, params)
            .map_err(|_| VaultError::BadParameters)?;
        let mut out = Vec::with_capacity(WRAP_LEN);
        out.extend_from_slice(WRAP_MAGIC);
        out.push(WRAP_VERSION);
        out.extend_from_slice(&params.m_cost_kib.to_be_bytes());
        out.extend_from_slice(&params.t_cost.to_be_bytes());
        out.extend_from_slice(&params.p_cost.to_be_bytes());
        out.extend_from_slice(&salt);
        out.extend_from_slice(&nonce);
        let ct = primitives::aes256gcm_encrypt(&kek, &nonce, &out, self.0.as_ref())
            .map_err(|_| VaultError::Malformed)?;
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Unwraps a key [`StoreKey::wrap`] made.
    ///
    /// # Errors
    /// [`VaultError::WrongPassphrase`] for a wrong passphrase or any modified
    /// byte; [`VaultError::Malformed`], [`VaultError::BadParameters`] for the framing.
    pub fn unwrap(wrapped: &[u8], passphrase: &[u8]) -> Result<Self, VaultError> {
        if wrapped.len() != WRAP_LEN
            || wrapped.get(..7) != Some(WRAP_MAGIC.as_slice())
            || wrapped.get(7) != Some(&WRAP_VERSION)
        {
            return Err(VaultError::Malformed);
        }
        let u32_at = |i: usize| -> Result<u32, VaultError> {
            wrapped
                .get(i..i + 4)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(u32::from_be_bytes)
                .ok_or(VaultError::Malformed)
        };
        let params = BackupParams {
            m_cost_kib: u32_at(8)?,
            t_cost: u32_at(12)?,
            p_cost: u32_at(16)?,
        };
        let salt: [u8; 16] = array(wrapped, 20)?;
        let nonce: [u8; 12] = array(wrapped, 36)?;
        let (aad, ct) = wrapped.split_at(48);
        let kek = backup::derive_passphrase_key(passphrase, &salt, &params)
            .map_err(|_| VaultError::BadParameters)?;
        let key = primitives::aes256gcm_decrypt(&kek, &nonce, aad, ct)
            .map_err(|_| VaultError::WrongPassphrase)?;
        let key: [u8; 32] = array(&key, 0)?;
        Ok(Self(Zeroizing::new(key)))
    }

    /// The key the device's secrets are kept under (as the core's recovery-key
    /// backup blob: `backup::export_with_recovery_key`).
    pub fn device_key(&self) -> RecoveryKey {
        RecoveryKey::from_bytes(*self.0)
    }

    /// Keeps a device's secrets in a store: a new random store key, wrapped
    /// under `passphrase` (Argon2id with `params`), and the secrets sealed
    /// under it. What a set-up saves, and what an old store is upgraded to.
    ///
    /// # Errors
    /// [`VaultError::EmptyPassphrase`], [`VaultError::BadParameters`];
    /// [`VaultError::Malformed`] if the secrets cannot be encoded.
    pub fn keep(
        secrets: &DeviceSecrets,
        passphrase: &[u8],
        params: &BackupParams,
        rng: &mut impl CryptoRng,
    ) -> Result<Kept, VaultError> {
        let key = Self::generate(rng);
        let wrapped_key = key.wrap(passphrase, params, rng)?;
        let secrets = backup::export_with_recovery_key(secrets, &key.device_key())
            .map_err(|_| VaultError::Malformed)?;
        Ok(Kept {
            key,
            wrapped_key,
            secrets,
        })
    }

    /// Unlocks a stored account with the store passphrase: the store key
    /// (`wrapped_key`, one Argon2id), then the device's secrets under it.
    ///
    /// A store from before the store key has no wrapped key, and its secrets
    /// are a passphrase backup (`sotto_core::backup`, kdf 1): they are opened
    /// with the passphrase and kept anew ([`StoreKey::keep`], `params`); the
    /// driver saves [`Unlocked::upgraded`] in place of the old account.
    ///
    /// # Errors
    /// [`VaultError::WrongPassphrase`] (an old store's too; its malformed
    /// backup: [`VaultError::Malformed`], unacceptable parameters:
    /// [`VaultError::BadParameters`]); [`VaultError::SecretsCorrupted`];
    /// those of [`StoreKey::unwrap`] and [`StoreKey::keep`].
    pub fn unlock(
        wrapped_key: Option<&[u8]>,
        secrets: &[u8],
        passphrase: &[u8],
        params: &BackupParams,
        rng: &mut impl CryptoRng,
    ) -> Result<Unlocked, VaultError> {
        if let Some(wrapped) = wrapped_key {
            let key = Self::unwrap(wrapped, passphrase)?;
            let secrets = backup::import_with_recovery_key(secrets, &key.device_key())
                .map_err(|_| VaultError::SecretsCorrupted)?;
            return Ok(Unlocked {
                key,
                secrets,
                upgraded: None,
            });
        }
        if passphrase.is_empty() {
            return Err(VaultError::EmptyPassphrase);
        }
        let secrets = backup::import_with_passphrase(secrets, passphrase).map_err(|e| match e {
            sotto_core::BackupError::Malformed(_) => VaultError::Malformed,
            sotto_core::BackupError::BadParameters => VaultError::BadParameters,
            _ => VaultError::WrongPassphrase,
        })?;
        let Kept {
            key,
            wrapped_key,
            secrets: blob,
        } = Self::keep(&secrets, passphrase, params, rng)?;
        Ok(Unlocked {
            key,
            secrets,
            upgraded: Some(Upgraded {
                wrapped_key,
                secrets: blob,
            }),
        })
    }

    /// The key local history is sealed under.
    pub fn history(&self) -> HistoryKey {
        let hk = Hkdf::<Sha256>::new(None, self.0.as_ref());
        let mut key = Zeroizing::new([0u8; 32]);
        // 32 bytes is always a valid HKDF-SHA256 output length.
        let _ = hk.expand(HISTORY_INFO, key.as_mut());
        HistoryKey(key)
    }
}

fn array<const N: usize>(bytes: &[u8], at: usize) -> Result<[u8; N], VaultError> {
    bytes
        .get(at..at + N)
        .and_then(|b| <[u8; N]>::try_from(b).ok())
        .ok_or(VaultError::Malformed)
}

/// How far the sender of a kept message was trusted when it was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum HistoryTrust {
    /// Sent by this user (this device or another of theirs).
    Own,
    /// The sender's identity key was verified by safety number.
    Verified,
    /// The sender's identity key is pinned on first use, not verified.
    Unverified,
}

/// One opened message as local history keeps it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct HistoryItem {
    /// The room.
    pub room_id: Uuid,
    /// The relay's id of the message.
    pub id: Uuid,
    /// Its place in the room.
    pub seq: u64,
    /// The sender.
    pub sender_id: Uuid,
    /// The sending device.
    pub sender_device: Uuid,
    /// The sender's message id.
    pub client_id: Uuid,
    /// The sender's clock when sealing (Unix milliseconds; a claim).
    pub sent_at_ms: u64,
    /// When the relay stored it (RFC 3339).
    pub received_at: String,
    /// Trust in the sender when it was opened.
    pub trust: HistoryTrust,
    /// What it says.
    pub content: Content,
}

impl fmt::Debug for HistoryItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HistoryItem")
            .field("room_id", &self.room_id)
            .field("seq", &self.seq)
            .field("sender_id", &self.sender_id)
            .finish_non_exhaustive()
    }
}

/// The key local history is sealed under (zeroized on drop, never printed).
pub struct HistoryKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for HistoryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HistoryKey([redacted])")
    }
}

fn item_aad(room: Uuid, seq: u64) -> Vec<u8> {
    let mut aad = Vec::with_capacity(HISTORY_AAD.len() + 24);
    aad.extend_from_slice(HISTORY_AAD);
    aad.extend_from_slice(room.as_bytes());
    aad.extend_from_slice(&seq.to_be_bytes());
    aad
}

impl HistoryKey {
    /// Seals `item` for the store (bound to its room and `seq`).
    ///
    /// # Errors
    /// [`VaultError::Malformed`] if the item cannot be encoded.
    pub fn seal(
        &self,
        item: &HistoryItem,
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<u8>, VaultError> {
        let json = Zeroizing::new(serde_json::to_vec(item).map_err(|_| VaultError::Malformed)?);
        self.seal_bytes(item.room_id, item.seq, &json, rng)
    }

    /// Seals an item already encoded as the JSON of a [`HistoryItem`], bound
    /// to `room` and `seq` (the browser client encodes it in JavaScript, which
    /// keeps serde code for it out of the `.wasm`).
    ///
    /// # Errors
    /// [`VaultError::Malformed`] if it is larger than an item may be.
    pub fn seal_bytes(
        &self,
        room: Uuid,
        seq: u64,
        json: &[u8],
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<u8>, VaultError> {
        if json.len() > MAX_ITEM - 29 {
            return Err(VaultError::Malformed);
        }
        // Padded as envelopes are (Padmé), with JSON whitespace, so that a
        // copied store shows no more of a message's length than the relay saw.
        let padded = padme_len(json.len()).min(MAX_ITEM - 29);
        let mut nonce = [0u8; 12];
        rng.fill_bytes(&mut nonce);
        // Sealed in place: version ‖ nonce ‖ padded JSON, encrypted after the
        // first 13 bytes (zeroized unless it was).
        let mut out = Zeroizing::new(Vec::with_capacity(1 + 12 + padded + 16));
        out.push(ITEM_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(json);
        out.resize(13 + padded, b' ');
        let body = out.get_mut(13..).ok_or(VaultError::Malformed)?;
        let tag =
            primitives::aes256gcm_encrypt_in_place(&self.0, &nonce, &item_aad(room, seq), body)
                .map_err(|_| VaultError::Malformed)?;
        out.extend_from_slice(&tag);
        Ok(std::mem::take(&mut *out))
    }

    /// Opens the item stored at `room`, `seq`.
    ///
    /// # Errors
    /// [`VaultError::Corrupted`] if it does not authenticate there;
    /// [`VaultError::Malformed`] for an unknown layout.
    pub fn open(&self, room: Uuid, seq: u64, sealed: &[u8]) -> Result<HistoryItem, VaultError> {
        let json = self.open_bytes(room, seq, sealed)?;
        let item: HistoryItem = serde_json::from_slice(&json).map_err(|_| VaultError::Corrupted)?;
        if item.room_id != room || item.seq != seq {
            return Err(VaultError::Corrupted);
        }
        Ok(item)
    }

    /// Opens the item stored at `room`, `seq` to its JSON bytes (zeroized on
    /// drop); the caller parses it and checks its room and `seq` as
    /// [`HistoryKey::open`] does.
    ///
    /// # Errors
    /// As [`HistoryKey::open`].
    pub fn open_bytes(
        &self,
        room: Uuid,
        seq: u64,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        if sealed.len() > MAX_ITEM || sealed.first() != Some(&ITEM_VERSION) {
            return Err(VaultError::Malformed);
        }
        let nonce: [u8; 12] = array(sealed, 1)?;
        let ct = sealed.get(13..).ok_or(VaultError::Malformed)?;
        primitives::aes256gcm_decrypt(&self.0, &nonce, &item_aad(room, seq), ct)
            .map_err(|_| VaultError::Corrupted)
    }
}
