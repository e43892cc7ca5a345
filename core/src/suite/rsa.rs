//! Suite `rsa`: RSA-OAEP with SHA-256 and MGF1-SHA-256; the OAEP label is
//! `LABEL_PREFIX ‖ header ‖ recipient device id`.

use rand_core::CryptoRng;
use rsa::{RsaPrivateKey, RsaPublicKey};
use zeroize::Zeroizing;

use crate::primitives::{self, CryptoError};

/// OAEP label prefix; the header and recipient device id follow it.
pub(crate) const LABEL_PREFIX: &[u8] = b"SOTTO-v1 wrap rsa\0";

pub(crate) fn wrap(
    rng: &mut impl CryptoRng,
    recipient: &RsaPublicKey,
    label: &[u8],
    content_key: &[u8; 32],
) -> Result<Vec<u8>, CryptoError> {
    primitives::rsa_oaep_sha256_encrypt(rng, recipient, label, content_key)
}

pub(crate) fn unwrap(
    secret: &RsaPrivateKey,
    label: &[u8],
    wrapped: &[u8],
) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    let pt = primitives::rsa_oaep_sha256_decrypt(secret, label, wrapped)?;
    let key: [u8; 32] = pt.as_slice().try_into().map_err(|_| CryptoError)?;
    Ok(Zeroizing::new(key))
}
