//! Thin wrappers over the audited primitives the protocol uses, with the
//! project's policy applied (strict Ed25519, all-zero X25519 rejection,
//! RSA-OAEP with SHA-256 for both hash and MGF1, blinded RSA decryption).
//!
//! The protocol code goes through these functions, and the Wycheproof tests
//! exercise exactly these functions, so the vectors test what we ship.

use aes_gcm::aead::{Aead, AeadInOut, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use ed25519_dalek::{Signature, VerifyingKey};
use rand_core::CryptoRng;
use rsa::sha2::Sha256;
use rsa::{Oaep, RsaPrivateKey, RsaPublicKey};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// A primitive rejected its input or failed to authenticate.
///
/// Deliberately carries no detail: callers turn it into an operation-specific error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cryptographic operation failed")]
pub struct CryptoError;

/// AES-256-GCM key length in bytes.
pub const AES_KEY_LEN: usize = 32;
/// AES-256-GCM nonce length in bytes (96 bits).
pub const AES_NONCE_LEN: usize = 12;
/// AES-256-GCM tag length in bytes.
pub const AES_TAG_LEN: usize = 16;

/// AES-256-GCM encryption; returns `ciphertext ‖ tag`.
pub fn aes256gcm_encrypt(
    key: &[u8; AES_KEY_LEN],
    nonce: &[u8; AES_NONCE_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key));
    cipher
        .encrypt(
            &Nonce::from(*nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| CryptoError)
}

/// AES-256-GCM encryption in place: `buffer` holds the plaintext and then
/// the ciphertext (the same length); returns the tag. What
/// [`aes256gcm_encrypt`] does, without allocating.
pub fn aes256gcm_encrypt_in_place(
    key: &[u8; AES_KEY_LEN],
    nonce: &[u8; AES_NONCE_LEN],
    aad: &[u8],
    buffer: &mut [u8],
) -> Result<[u8; AES_TAG_LEN], CryptoError> {
    let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key));
    let tag = cipher
        .encrypt_inout_detached(&Nonce::from(*nonce), aad, buffer.into())
        .map_err(|_| CryptoError)?;
    Ok(tag.into())
}

/// AES-256-GCM decryption of `ciphertext ‖ tag`. The plaintext is zeroized on drop.
pub fn aes256gcm_decrypt(
    key: &[u8; AES_KEY_LEN],
    nonce: &[u8; AES_NONCE_LEN],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if ciphertext.len() < AES_TAG_LEN {
        return Err(CryptoError);
    }
    let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key));
    cipher
        .decrypt(
            &Nonce::from(*nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| CryptoError)
}

/// X25519 (RFC 7748) with the all-zero output rejected (low-order peer keys).
pub fn x25519(secret: &[u8; 32], public: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    let shared = Zeroizing::new(x25519_dalek::x25519(*secret, *public));
    if bool::from(shared.ct_eq(&[0u8; 32])) {
        return Err(CryptoError);
    }
    Ok(shared)
}

/// Rejects X25519 public keys of small order (whose shared secret with any
/// clamped scalar is all zero).
pub fn x25519_check_public(public: &[u8; 32]) -> Result<(), CryptoError> {
    // Any clamped scalar kills the cofactor; a small-order point then maps to zero.
    let mut probe = [0x5au8; 32];
    probe[0] &= 248;
    probe[31] &= 127;
    probe[31] |= 64;
    x25519(&probe, public).map(|_| ())
}

/// Whether 32 bytes are the canonical encoding of an X25519 u-coordinate (RFC 7748
/// §5): bit 255 clear and `u < p = 2^255 - 19`. Decoding would silently mask the top
/// bit and reduce mod p, so a sender binding the raw bytes and a recipient using the
/// decoded key would disagree; bundles therefore refuse non-canonical keys. Public
/// data: no constant-time comparison needed.
pub fn x25519_is_canonical(public: &[u8; 32]) -> bool {
    // Little-endian. Bit 255 set: not canonical. Otherwise u >= p exactly when the
    // upper 31 bytes are those of p (0x7f, then 0xff × 30) and the low byte >= 0xed.
    let [low, middle @ .., top] = public;
    if *top & 0x80 != 0 {
        return false;
    }
    !(*top == 0x7f && middle.iter().all(|b| *b == 0xff) && *low >= 0xed)
}

/// Parses an Ed25519 public key: a canonical encoding (y < p, re-encodes to the
/// same bytes) of a valid point that is not of small order.
pub fn ed25519_public(bytes: &[u8]) -> Result<VerifyingKey, CryptoError> {
    let arr: [u8; 32] = bytes.try_into().map_err(|_| CryptoError)?;
    let key = VerifyingKey::from_bytes(&arr).map_err(|_| CryptoError)?;
    if key.is_weak() || key.to_bytes() != arr {
        return Err(CryptoError);
    }
    Ok(key)
}

/// Strict Ed25519 verification (RFC 8032 with canonical `S`, canonical `R`
/// and no small-order components).
pub fn ed25519_verify(public: &[u8], message: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
    let key = ed25519_public(public)?;
    let sig = Signature::from_slice(signature).map_err(|_| CryptoError)?;
    key.verify_strict(message, &sig).map_err(|_| CryptoError)
}

/// RSA-OAEP encryption with SHA-256 and MGF1-SHA-256 under `label`.
pub fn rsa_oaep_sha256_encrypt(
    rng: &mut impl CryptoRng,
    public: &RsaPublicKey,
    label: &[u8],
    message: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    public
        .encrypt(rng, Oaep::<Sha256>::new_with_label(label), message)
        .map_err(|_| CryptoError)
}

/// RSA-OAEP decryption with SHA-256 and MGF1-SHA-256 under `label`, with RSA
/// blinding from the system RNG. The plaintext is zeroized on drop.
pub fn rsa_oaep_sha256_decrypt(
    private: &RsaPrivateKey,
    label: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let mut rng = crate::rng::system().map_err(|_| CryptoError)?;
    private
        .decrypt_blinded(&mut rng, Oaep::<Sha256>::new_with_label(label), ciphertext)
        .map(Zeroizing::new)
        .map_err(|_| CryptoError)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn le(low: u8, top: u8, middle: u8) -> [u8; 32] {
        let mut k = [middle; 32];
        k[0] = low;
        k[31] = top;
        k
    }

    #[test]
    fn x25519_canonical_encodings() {
        // p - 1 = ec ff … ff 7f (little-endian) is the largest canonical u.
        assert!(x25519_is_canonical(&le(0xec, 0x7f, 0xff)));
        // p, p + 1, …, 2^255 - 1 are not.
        for low in 0xed..=0xff {
            assert!(!x25519_is_canonical(&le(low, 0x7f, 0xff)), "{low:#x}");
        }
        // Bit 255 set is never canonical, whatever the rest.
        assert!(!x25519_is_canonical(&le(9, 0x80, 0)));
        assert!(!x25519_is_canonical(&le(0, 0xff, 0)));
        // Small values and ordinary keys are.
        assert!(x25519_is_canonical(&le(9, 0, 0)));
        assert!(x25519_is_canonical(&le(0xff, 0x7f, 0xfe)));
        let mut rng_key = [0u8; 32];
        for (i, b) in rng_key.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37).wrapping_add(11);
        }
        rng_key[31] &= 0x7f;
        assert!(x25519_is_canonical(&rng_key));
    }
}
