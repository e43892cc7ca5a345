//! Deterministic entry points for regenerating the test vectors
//! (`core/tests/vectors/`). Enabled only by the `test-vectors` feature; never
//! enable it in production: these functions take their randomness from the caller.

use rand_core::CryptoRng;

use crate::backup::{self, BackupParams, DeviceSecrets, RecoveryKey};
use crate::envelope::{self, Envelope, Header, Recipient};
use crate::error::{BackupError, KeyError, SealError};
use crate::keys::{DeviceKeyOptions, DeviceKeys, IdentityKeyPair};
use crate::primitives::CryptoError;
use crate::suite::x25519;

/// [`envelope::seal`] with injected randomness.
pub fn seal_with_rng(
    rng: &mut impl CryptoRng,
    plaintext: &[u8],
    header: &Header,
    recipients: &[Recipient<'_>],
    sender: &DeviceKeys,
) -> Result<Envelope, SealError> {
    envelope::seal_with_rng(rng, plaintext, header, recipients, sender)
}

/// [`backup::export_with_passphrase`] with injected randomness.
pub fn export_with_passphrase_rng(
    rng: &mut impl CryptoRng,
    secrets: &DeviceSecrets,
    passphrase: &[u8],
    params: &BackupParams,
) -> Result<Vec<u8>, BackupError> {
    backup::export_with_passphrase_rng(rng, secrets, passphrase, params)
}

/// [`backup::export_with_recovery_key`] with injected randomness.
pub fn export_with_recovery_key_rng(
    rng: &mut impl CryptoRng,
    secrets: &DeviceSecrets,
    key: &RecoveryKey,
) -> Result<Vec<u8>, BackupError> {
    backup::export_with_recovery_key_rng(rng, secrets, key)
}

/// [`IdentityKeyPair::generate`] with injected randomness.
pub fn identity_with_rng(rng: &mut impl CryptoRng) -> IdentityKeyPair {
    IdentityKeyPair::generate_with_rng(rng)
}

/// [`DeviceKeys::generate`] with injected randomness.
pub fn device_keys_with_rng(
    rng: &mut impl CryptoRng,
    options: DeviceKeyOptions,
) -> Result<DeviceKeys, KeyError> {
    DeviceKeys::generate_with_rng(rng, options)
}

/// The `x25519` suite's HPKE base-mode seal (the function the envelope uses):
/// `(enc, ciphertext)`. The ephemeral key is `DeriveKeyPair(32 bytes from rng)`.
pub fn hpke_seal(
    rng: &mut impl CryptoRng,
    recipient: &[u8; 32],
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<([u8; 32], Vec<u8>), CryptoError> {
    x25519::seal_base(rng, recipient, info, aad, plaintext)
}

/// The `x25519` suite's HPKE base-mode open (the function the envelope uses).
pub fn hpke_open(
    secret: &[u8; 32],
    enc: &[u8],
    info: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    x25519::open_base(secret, enc, info, aad, ciphertext).map(|p| p.to_vec())
}

/// RFC 9180 DeriveKeyPair for DHKEM(X25519, HKDF-SHA256): `(sk, pk)`.
pub fn hpke_derive_keypair(ikm: &[u8]) -> ([u8; 32], [u8; 32]) {
    let (sk, pk) = x25519::derive_keypair(ikm);
    (*sk, pk)
}

/// Re-signs `envelope` with `sender`, as a malicious insider who holds a real
/// device key could after editing fields; used to prove that the AEAD and the
/// wraps, not only the signature, bind the header.
pub fn resign(envelope: &Envelope, sender: &DeviceKeys) -> Vec<u8> {
    let mut env = envelope.clone();
    let signed = [envelope::SIGNATURE_CONTEXT, env.unsigned_bytes().as_slice()].concat();
    env.signature = sender.sign(&signed);
    env.to_bytes()
}
