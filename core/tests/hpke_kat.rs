//! RFC 9180 known-answer test for the suite `x25519` uses (mode base,
//! DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM), through the core's own
//! HPKE wrappers. Source and provenance: `vectors/rfc9180_base_x25519_sha256_aes256gcm.json`.
//!
//! Our suite only ever uses single-shot HPKE (sequence number 0), so the
//! sequence-0 encryption is checked in both directions; the later-sequence
//! encryptions and the exporter values are not reachable through our API.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::convert::Infallible;

use rand_core::{TryCryptoRng, TryRng};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Vector {
    source: String,
    mode: u8,
    kem_id: u16,
    kdf_id: u16,
    aead_id: u16,
    info: String,
    #[serde(rename = "ikmR")]
    ikm_r: String,
    #[serde(rename = "ikmE")]
    ikm_e: String,
    #[serde(rename = "skRm")]
    sk_r: String,
    #[serde(rename = "skEm")]
    sk_e: String,
    #[serde(rename = "pkRm")]
    pk_r: String,
    #[serde(rename = "pkEm")]
    pk_e: String,
    enc: String,
    shared_secret: String,
    key_schedule_context: String,
    secret: String,
    key: String,
    base_nonce: String,
    exporter_secret: String,
    encryptions: Vec<Encryption>,
    exports: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Encryption {
    aad: String,
    ct: String,
    nonce: String,
    pt: String,
}

/// Hands out exactly the given bytes, then refuses (panics) — so the test proves
/// the ephemeral key came from this IKM and nothing else was drawn.
struct Exact(Vec<u8>);
impl TryRng for Exact {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        panic!("unexpected u32 draw")
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        panic!("unexpected u64 draw")
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        assert!(
            dst.len() <= self.0.len(),
            "drew more randomness than the vector provides"
        );
        let rest = self.0.split_off(dst.len());
        dst.copy_from_slice(&self.0);
        self.0 = rest;
        Ok(())
    }
}
impl TryCryptoRng for Exact {}

/// RFC 7748 clamping: the vectors print X25519 secrets unclamped; the HPKE crate
/// serialises them clamped (both denote the same scalar).
fn clamped(mut k: Vec<u8>) -> Vec<u8> {
    k[0] &= 248;
    k[31] &= 127;
    k[31] |= 64;
    k
}

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

#[test]
fn rfc9180_base_x25519_hkdf_sha256_aes256gcm() {
    let v: Vector = serde_json::from_str(include_str!(
        "vectors/rfc9180_base_x25519_sha256_aes256gcm.json"
    ))
    .unwrap();
    assert_eq!(
        (v.mode, v.kem_id, v.kdf_id, v.aead_id),
        (0, 0x20, 1, 2),
        "wrong suite in the vector file"
    );

    // DeriveKeyPair for both parties.
    let (sk_r, pk_r) = sotto_core::testing::hpke_derive_keypair(&h(&v.ikm_r));
    assert_eq!(sk_r.to_vec(), clamped(h(&v.sk_r)));
    assert_eq!(pk_r.to_vec(), h(&v.pk_r));
    let (sk_e, pk_e) = sotto_core::testing::hpke_derive_keypair(&h(&v.ikm_e));
    assert_eq!(sk_e.to_vec(), clamped(h(&v.sk_e)));
    assert_eq!(pk_e.to_vec(), h(&v.pk_e));

    // Sender: with ikmE as the only randomness, enc and the sequence-0 ciphertext match.
    let e0 = &v.encryptions[0];
    assert_eq!(
        e0.nonce, v.base_nonce,
        "encryption 0 must use the base nonce"
    );
    let mut rng = Exact(h(&v.ikm_e));
    let pk_r: [u8; 32] = h(&v.pk_r).try_into().unwrap();
    let (enc, ct) =
        sotto_core::testing::hpke_seal(&mut rng, &pk_r, &h(&v.info), &h(&e0.aad), &h(&e0.pt))
            .unwrap();
    assert!(rng.0.is_empty(), "the ephemeral IKM was not fully used");
    assert_eq!(enc.to_vec(), h(&v.enc));
    assert_eq!(ct, h(&e0.ct));

    // Recipient: opens it, and refuses any modification.
    let sk_r: [u8; 32] = h(&v.sk_r).try_into().unwrap();
    let pt =
        sotto_core::testing::hpke_open(&sk_r, &h(&v.enc), &h(&v.info), &h(&e0.aad), &h(&e0.ct))
            .unwrap();
    assert_eq!(pt, h(&e0.pt));
    assert!(
        sotto_core::testing::hpke_open(&sk_r, &h(&v.enc), b"other info", &h(&e0.aad), &h(&e0.ct))
            .is_err()
    );
    assert!(
        sotto_core::testing::hpke_open(&sk_r, &h(&v.enc), &h(&v.info), b"other aad", &h(&e0.ct))
            .is_err()
    );
    let mut bad = h(&e0.ct);
    bad[0] ^= 1;
    assert!(
        sotto_core::testing::hpke_open(&sk_r, &h(&v.enc), &h(&v.info), &h(&e0.aad), &bad).is_err()
    );
    assert!(!v.encryptions.is_empty() && !v.exports.is_empty());
}
