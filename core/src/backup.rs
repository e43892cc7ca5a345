//! Key backup: all secrets of one device (its identity key and device keys, with
//! the user and device ids), encrypted under a passphrase (Argon2id) or a random
//! recovery key (HKDF-SHA256), with AES-256-GCM. Versioned binary blob:
//!
//! ```text
//! "SOTTOBAK" ‖ version u8 = 1 ‖ kdf u8
//!   kdf 1 (Argon2id):     m_cost_kib u32 ‖ t_cost u32 ‖ p_cost u32 ‖ salt [16]
//!   kdf 2 (recovery key): salt [16]
//! ‖ nonce [12] ‖ AES-256-GCM(key, nonce, aad = every preceding byte, secrets)
//! secrets = user_id [16] ‖ device_id [16] ‖ identity seed [32] ‖ signing seed [32]
//!           ‖ x25519 secret [32] ‖ rsa_len u16 ‖ RSA PKCS#8 DER [rsa_len]
//! ```

use core::fmt;

use argon2::{Algorithm, Argon2, Params, Version};
use hkdf::Hkdf;
use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::encoding::{Reader, Writer};
use crate::error::{BackupError, DecodeError};
use crate::keys::{DeviceKeys, IdentityKeyPair};
use crate::primitives;

const MAGIC: &[u8; 8] = b"SOTTOBAK";
const VERSION: u8 = 1;
const KDF_ARGON2ID: u8 = 1;
const KDF_RECOVERY: u8 = 2;
const RECOVERY_INFO: &[u8] = b"SOTTO-v1 backup recovery-key";
/// Largest blob accepted (a 4096-bit RSA key's PKCS#8 is ~2.4 KB).
const MAX_BLOB: usize = 8 * 1024;

/// Everything secret about one device: enough to restore it elsewhere.
pub struct DeviceSecrets {
    /// The user.
    pub user_id: Uuid,
    /// The device.
    pub device_id: Uuid,
    /// The user's identity key.
    pub identity: IdentityKeyPair,
    /// The device's keys.
    pub device: DeviceKeys,
}

impl fmt::Debug for DeviceSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceSecrets")
            .field("user_id", &self.user_id)
            .field("device_id", &self.device_id)
            .field("identity", &self.identity)
            .field("device", &self.device)
            .finish()
    }
}

/// Argon2id cost parameters, stored in the blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupParams {
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Passes.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl BackupParams {
    /// Smallest memory accepted (8 MiB).
    pub const MIN_M_COST_KIB: u32 = 8 * 1024;
    /// Largest memory accepted (256 MiB), so a hostile blob cannot exhaust a
    /// phone's or a browser tab's memory before it is authenticated.
    pub const MAX_M_COST_KIB: u32 = 256 * 1024;
    /// Largest pass count accepted.
    pub const MAX_T_COST: u32 = 10;
    /// Largest lane count accepted.
    pub const MAX_P_COST: u32 = 4;

    /// The smallest accepted parameters; for tests and constrained devices only.
    pub const MINIMUM: Self = Self {
        m_cost_kib: Self::MIN_M_COST_KIB,
        t_cost: 1,
        p_cost: 1,
    };

    fn check(&self) -> Result<Params, BackupError> {
        if !(Self::MIN_M_COST_KIB..=Self::MAX_M_COST_KIB).contains(&self.m_cost_kib)
            || !(1..=Self::MAX_T_COST).contains(&self.t_cost)
            || !(1..=Self::MAX_P_COST).contains(&self.p_cost)
        {
            return Err(BackupError::BadParameters);
        }
        Params::new(self.m_cost_kib, self.t_cost, self.p_cost, Some(32))
            .map_err(|_| BackupError::BadParameters)
    }
}

impl Default for BackupParams {
    /// 64 MiB, 3 passes, 1 lane (RFC 9106's second recommendation, single lane for browsers).
    fn default() -> Self {
        Self {
            m_cost_kib: 64 * 1024,
            t_cost: 3,
            p_cost: 1,
        }
    }
}

/// Derives the Argon2id key for a passphrase; exposed for benchmarks.
pub fn derive_passphrase_key(
    passphrase: &[u8],
    salt: &[u8; 16],
    params: &BackupParams,
) -> Result<Zeroizing<[u8; 32]>, BackupError> {
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.check()?);
    let mut key = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase, salt, key.as_mut())
        .map_err(|_| BackupError::Kdf)?;
    Ok(key)
}

/// Encrypts `secrets` under `passphrase` (Argon2id with `params` and a random salt).
pub fn export_with_passphrase(
    secrets: &DeviceSecrets,
    passphrase: &[u8],
    params: &BackupParams,
) -> Result<Vec<u8>, BackupError> {
    let mut rng = crate::rng::system().map_err(|_| BackupError::Rng)?;
    export_with_passphrase_rng(&mut rng, secrets, passphrase, params)
}

/// [`export_with_passphrase`] with injected randomness (salt, then nonce); test vectors only.
pub(crate) fn export_with_passphrase_rng(
    rng: &mut impl CryptoRng,
    secrets: &DeviceSecrets,
    passphrase: &[u8],
    params: &BackupParams,
) -> Result<Vec<u8>, BackupError> {
    if passphrase.is_empty() {
        return Err(BackupError::EmptyPassphrase);
    }
    let salt = crate::rng::array::<16>(rng);
    let key = derive_passphrase_key(passphrase, &salt, params)?;
    let mut w = Writer::with_capacity(64);
    w.bytes(MAGIC).u8(VERSION).u8(KDF_ARGON2ID);
    w.u32(params.m_cost_kib)
        .u32(params.t_cost)
        .u32(params.p_cost)
        .bytes(&salt);
    seal_blob(rng, w, &key, secrets)
}

/// Decrypts a passphrase backup. Any wrong passphrase or modified byte fails
/// with [`BackupError::WrongKeyOrCorrupted`] (or a parse error for the framing).
pub fn import_with_passphrase(
    blob: &[u8],
    passphrase: &[u8],
) -> Result<DeviceSecrets, BackupError> {
    let (kdf, mut r) = open_framing(blob)?;
    if kdf != KDF_ARGON2ID {
        return Err(BackupError::WrongKeyOrCorrupted);
    }
    let params = BackupParams {
        m_cost_kib: r.u32()?,
        t_cost: r.u32()?,
        p_cost: r.u32()?,
    };
    let salt = r.array::<16>()?;
    params.check()?;
    let key = derive_passphrase_key(passphrase, &salt, &params)?;
    open_blob(blob, r, &key)
}

/// A random 256-bit recovery key, shown to the user as 68 hex digits in groups
/// of four (the last four are a checksum: the first two bytes of SHA-256 of the key).
pub struct RecoveryKey(Zeroizing<[u8; 32]>);

impl RecoveryKey {
    /// Generates a recovery key from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, BackupError> {
        let mut rng = crate::rng::system().map_err(|_| BackupError::Rng)?;
        Ok(Self(Zeroizing::new(crate::rng::array(&mut rng))))
    }

    /// Wraps raw key bytes (for test vectors and restoring from storage).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The text to write down, e.g. `a1b2-c3d4-…` (17 groups).
    pub fn to_display_string(&self) -> Zeroizing<String> {
        let check = Sha256::digest(self.0.as_ref());
        let mut all = Zeroizing::new(Vec::with_capacity(34));
        all.extend_from_slice(self.0.as_ref());
        all.extend_from_slice(check.get(..2).unwrap_or_default());
        let mut out = Zeroizing::new(String::with_capacity(84));
        for (i, pair) in all.chunks(2).enumerate() {
            if i > 0 {
                out.push('-');
            }
            for b in pair {
                out.push(hex_digit(b >> 4));
                out.push(hex_digit(b & 0x0f));
            }
        }
        out
    }

    /// Parses the written-down text; case, spaces and dashes are ignored, the
    /// checksum is verified.
    pub fn parse(text: &str) -> Result<Self, BackupError> {
        let digits: Zeroizing<Vec<u8>> = Zeroizing::new(
            text.bytes()
                .filter(|c| !matches!(c, b'-' | b' ' | b'\n' | b'\t'))
                .collect(),
        );
        if digits.len() != 68 {
            return Err(BackupError::BadRecoveryKey);
        }
        let mut all = Zeroizing::new([0u8; 34]);
        for (out, pair) in all.iter_mut().zip(digits.chunks(2)) {
            let [hi, lo] = pair else {
                return Err(BackupError::BadRecoveryKey);
            };
            *out = (hex_value(*hi)? << 4) | hex_value(*lo)?;
        }
        let (key, check) = all.split_at(32);
        let digest = Sha256::digest(key);
        if !bool::from(digest.get(..2).unwrap_or_default().ct_eq(check)) {
            return Err(BackupError::BadRecoveryKey);
        }
        let mut k = [0u8; 32];
        k.copy_from_slice(key);
        Ok(Self(Zeroizing::new(k)))
    }

    fn derive(&self, salt: &[u8; 16]) -> Zeroizing<[u8; 32]> {
        let hk = Hkdf::<Sha256>::new(Some(salt), self.0.as_ref());
        let mut key = Zeroizing::new([0u8; 32]);
        // 32 bytes is always a valid HKDF-SHA256 output length.
        let _ = hk.expand(RECOVERY_INFO, key.as_mut());
        key
    }
}

impl fmt::Debug for RecoveryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryKey([redacted])")
    }
}

fn hex_digit(n: u8) -> char {
    char::from(
        b"0123456789abcdef"
            .get(usize::from(n & 0x0f))
            .copied()
            .unwrap_or(b'0'),
    )
}

fn hex_value(c: u8) -> Result<u8, BackupError> {
    match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(BackupError::BadRecoveryKey),
    }
}

/// Encrypts `secrets` under a recovery key.
pub fn export_with_recovery_key(
    secrets: &DeviceSecrets,
    recovery_key: &RecoveryKey,
) -> Result<Vec<u8>, BackupError> {
    let mut rng = crate::rng::system().map_err(|_| BackupError::Rng)?;
    export_with_recovery_key_rng(&mut rng, secrets, recovery_key)
}

/// [`export_with_recovery_key`] with injected randomness (salt, then nonce); test vectors only.
pub(crate) fn export_with_recovery_key_rng(
    rng: &mut impl CryptoRng,
    secrets: &DeviceSecrets,
    recovery_key: &RecoveryKey,
) -> Result<Vec<u8>, BackupError> {
    let salt = crate::rng::array::<16>(rng);
    let key = recovery_key.derive(&salt);
    let mut w = Writer::with_capacity(64);
    w.bytes(MAGIC).u8(VERSION).u8(KDF_RECOVERY).bytes(&salt);
    seal_blob(rng, w, &key, secrets)
}

/// Decrypts a recovery-key backup.
pub fn import_with_recovery_key(
    blob: &[u8],
    recovery_key: &RecoveryKey,
) -> Result<DeviceSecrets, BackupError> {
    let (kdf, mut r) = open_framing(blob)?;
    if kdf != KDF_RECOVERY {
        return Err(BackupError::WrongKeyOrCorrupted);
    }
    let salt = r.array::<16>()?;
    let key = recovery_key.derive(&salt);
    open_blob(blob, r, &key)
}

fn seal_blob(
    rng: &mut impl CryptoRng,
    mut w: Writer,
    key: &[u8; 32],
    secrets: &DeviceSecrets,
) -> Result<Vec<u8>, BackupError> {
    let nonce = crate::rng::array::<12>(rng);
    w.bytes(&nonce);
    let plaintext = encode_secrets(secrets)?;
    let ct = primitives::aes256gcm_encrypt(key, &nonce, w.as_slice(), &plaintext)
        .map_err(|_| BackupError::Kdf)?;
    w.bytes(&ct);
    Ok(w.into_vec())
}

fn open_framing(blob: &[u8]) -> Result<(u8, Reader<'_>), BackupError> {
    if blob.len() > MAX_BLOB {
        return Err(DecodeError::TooLarge.into());
    }
    let mut r = Reader::new(blob);
    if r.take(MAGIC.len())? != MAGIC {
        return Err(DecodeError::BadMagic.into());
    }
    let version = r.u8()?;
    if version != VERSION {
        return Err(DecodeError::UnsupportedVersion(version).into());
    }
    let kdf = r.u8()?;
    if kdf != KDF_ARGON2ID && kdf != KDF_RECOVERY {
        return Err(DecodeError::BadMagic.into());
    }
    Ok((kdf, r))
}

fn open_blob(blob: &[u8], mut r: Reader<'_>, key: &[u8; 32]) -> Result<DeviceSecrets, BackupError> {
    let nonce = r.array::<12>()?;
    let aad = blob.get(..r.position()).ok_or(DecodeError::Truncated)?;
    let ct = r.take(r.remaining())?;
    let pt = primitives::aes256gcm_decrypt(key, &nonce, aad, ct)
        .map_err(|_| BackupError::WrongKeyOrCorrupted)?;
    // Authenticated: a decode failure now means a bug or a hostile writer with the key.
    decode_secrets(&pt).map_err(|_| BackupError::WrongKeyOrCorrupted)
}

fn encode_secrets(s: &DeviceSecrets) -> Result<Zeroizing<Vec<u8>>, BackupError> {
    let rsa = s.device.rsa_pkcs8_der().map_err(|_| BackupError::Kdf)?;
    let mut w = Writer::with_capacity(200 + rsa.as_ref().map_or(0, |d| d.len()));
    w.bytes(s.user_id.as_bytes())
        .bytes(s.device_id.as_bytes())
        .bytes(s.identity.to_seed().as_ref())
        .bytes(s.device.signing_seed().as_ref())
        .bytes(s.device.x25519_secret().as_ref());
    w.var16(rsa.as_ref().map_or(&[][..], |d| d.as_slice()))?;
    Ok(Zeroizing::new(w.into_vec()))
}

fn decode_secrets(bytes: &[u8]) -> Result<DeviceSecrets, DecodeError> {
    let mut r = Reader::new(bytes);
    let user_id = r.uuid()?;
    let device_id = r.uuid()?;
    let identity_seed = Zeroizing::new(r.array::<32>()?);
    let signing_seed = Zeroizing::new(r.array::<32>()?);
    let x25519 = Zeroizing::new(r.array::<32>()?);
    let rsa = r.var16()?;
    r.finish()?;
    let device = DeviceKeys::from_secret_parts(
        &signing_seed,
        &x25519,
        if rsa.is_empty() { None } else { Some(rsa) },
    )
    .map_err(|_| DecodeError::InvalidKey("backup holds an invalid key"))?;
    Ok(DeviceSecrets {
        user_id,
        device_id,
        identity: IdentityKeyPair::from_seed(&identity_seed),
        device,
    })
}
