//! Suite `x25519`: HPKE base mode (RFC 9180), DHKEM(X25519, HKDF-SHA256),
//! HKDF-SHA256, AES-256-GCM. The wrapped key is `enc (32) ‖ ct (32 + 16)`.

use hpke::aead::AesGcm256;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::primitives::CryptoError;

/// Length of an encapsulated key.
pub(crate) const ENC_LEN: usize = 32;
/// Length of a wrapped content key: enc ‖ AES-256-GCM(32-byte key) ‖ tag.
pub(crate) const WRAPPED_LEN: usize = ENC_LEN + 32 + 16;
/// HPKE `info` prefix; the header and recipient device id follow it.
pub(crate) const INFO_PREFIX: &[u8] = b"SOTTO-v1 wrap x25519\0";

type Kem = X25519HkdfSha256;

/// HPKE base-mode single-shot seal in our suite: returns `(enc, ciphertext)`.
pub(crate) fn seal_base(
    rng: &mut impl CryptoRng,
    recipient: &[u8; 32],
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<([u8; ENC_LEN], Vec<u8>), CryptoError> {
    let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(recipient).map_err(|_| CryptoError)?;
    let (enc, ct) = hpke::single_shot_seal_with_rng::<AesGcm256, HkdfSha256, Kem>(
        &OpModeS::Base,
        &pk,
        info,
        plaintext,
        aad,
        rng,
    )
    .map_err(|_| CryptoError)?;
    let mut enc_bytes = [0u8; ENC_LEN];
    enc_bytes.copy_from_slice(&enc.to_bytes());
    Ok((enc_bytes, ct))
}

/// HPKE base-mode single-shot open in our suite. The plaintext is zeroized on drop.
pub(crate) fn open_base(
    secret: &[u8; 32],
    enc: &[u8],
    info: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(secret).map_err(|_| CryptoError)?;
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(enc).map_err(|_| CryptoError)?;
    hpke::single_shot_open::<AesGcm256, HkdfSha256, Kem>(
        &OpModeR::Base,
        &sk,
        &enc,
        info,
        ciphertext,
        aad,
    )
    .map(Zeroizing::new)
    .map_err(|_| CryptoError)
}

/// Wraps `content_key` for `recipient` under `info`, with empty AAD: `enc ‖ ct`.
pub(crate) fn wrap(
    rng: &mut impl CryptoRng,
    recipient: &[u8; 32],
    info: &[u8],
    content_key: &[u8; 32],
) -> Result<Vec<u8>, CryptoError> {
    let (enc, ct) = seal_base(rng, recipient, info, &[], content_key)?;
    let mut out = Vec::with_capacity(WRAPPED_LEN);
    out.extend_from_slice(&enc);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Opens a wrapped key with the recipient's X25519 secret.
pub(crate) fn unwrap(
    secret: &[u8; 32],
    info: &[u8],
    wrapped: &[u8],
) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    if wrapped.len() != WRAPPED_LEN {
        return Err(CryptoError);
    }
    let (enc, ct) = wrapped.split_at(ENC_LEN);
    let pt = open_base(secret, enc, info, &[], ct)?;
    let key: [u8; 32] = pt.as_slice().try_into().map_err(|_| CryptoError)?;
    Ok(Zeroizing::new(key))
}

/// RFC 9180 DeriveKeyPair for this KEM: `(sk, pk)` from input keying material.
/// Used by the known-answer tests.
#[cfg_attr(not(feature = "test-vectors"), allow(dead_code))]
pub(crate) fn derive_keypair(ikm: &[u8]) -> (Zeroizing<[u8; 32]>, [u8; 32]) {
    let (sk, pk) = Kem::derive_keypair(ikm);
    let mut sk_bytes = [0u8; 32];
    sk_bytes.copy_from_slice(&sk.to_bytes());
    let mut pk_bytes = [0u8; 32];
    pk_bytes.copy_from_slice(&pk.to_bytes());
    (Zeroizing::new(sk_bytes), pk_bytes)
}
