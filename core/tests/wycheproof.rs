//! Wycheproof vectors through the core's own primitive wrappers
//! (`sotto_core::primitives`): AES-256-GCM, X25519, Ed25519, RSA-OAEP-SHA256.
//!
//! Every test case is accounted for: it either runs, or is outside what the
//! wrapper's types can express (AES key/nonce/tag sizes we never use), and then
//! the count of such cases is checked, so a changed vector set cannot pass silently.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use rsa::RsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use sotto_core::primitives;
use wycheproof::TestResult;

#[test]
fn aes_256_gcm() {
    let set = wycheproof::aead::TestSet::load(wycheproof::aead::TestName::AesGcm).unwrap();
    let (mut ran, mut out_of_scope) = (0, 0);
    for group in &set.test_groups {
        let in_scope = group.key_size == 256 && group.nonce_size == 96 && group.tag_size == 128;
        for t in &group.tests {
            if !in_scope {
                out_of_scope += 1;
                continue;
            }
            ran += 1;
            let key: [u8; 32] = t.key.as_ref().try_into().unwrap();
            let nonce: [u8; 12] = t.nonce.as_ref().try_into().unwrap();
            let mut ct_tag = t.ct.to_vec();
            ct_tag.extend_from_slice(&t.tag);
            let opened = primitives::aes256gcm_decrypt(&key, &nonce, &t.aad, &ct_tag);
            match t.result {
                TestResult::Valid | TestResult::Acceptable => {
                    assert_eq!(&opened.unwrap()[..], &t.pt[..], "tc {}", t.tc_id);
                    let sealed =
                        primitives::aes256gcm_encrypt(&key, &nonce, &t.aad, &t.pt).unwrap();
                    assert_eq!(sealed, ct_tag, "tc {}", t.tc_id);
                    let mut in_place = t.pt.to_vec();
                    let tag =
                        primitives::aes256gcm_encrypt_in_place(&key, &nonce, &t.aad, &mut in_place)
                            .unwrap();
                    in_place.extend_from_slice(&tag);
                    assert_eq!(in_place, ct_tag, "tc {} (in place)", t.tc_id);
                }
                TestResult::Invalid => assert!(opened.is_err(), "tc {} must fail", t.tc_id),
            }
        }
    }
    assert!(ran > 50, "only {ran} AES-256-GCM cases ran");
    assert_eq!(ran + out_of_scope, set.number_of_tests);
}

#[test]
fn x25519() {
    let set = wycheproof::xdh::TestSet::load(wycheproof::xdh::TestName::X25519).unwrap();
    let mut ran = 0;
    for group in &set.test_groups {
        for t in &group.tests {
            ran += 1;
            let sk: [u8; 32] = t.private_key.as_ref().try_into().unwrap();
            let pk: Result<[u8; 32], _> = t.public_key.as_ref().try_into();
            let Ok(pk) = pk else {
                assert!(t.result.must_fail(), "tc {}", t.tc_id);
                continue;
            };
            let out = primitives::x25519(&sk, &pk);
            let zero = t.shared_secret.iter().all(|b| *b == 0);
            match (t.result, zero) {
                // Our policy: an all-zero shared secret is always refused.
                (_, true) => assert!(out.is_err(), "tc {} zero secret accepted", t.tc_id),
                (TestResult::Valid | TestResult::Acceptable, false) => {
                    assert_eq!(&out.unwrap()[..], &t.shared_secret[..], "tc {}", t.tc_id)
                }
                (TestResult::Invalid, false) => assert!(out.is_err(), "tc {}", t.tc_id),
            }
        }
    }
    assert_eq!(ran, set.number_of_tests);
}

#[test]
fn ed25519_strict() {
    let set = wycheproof::eddsa::TestSet::load(wycheproof::eddsa::TestName::Ed25519).unwrap();
    let mut ran = 0;
    for group in &set.test_groups {
        for t in &group.tests {
            ran += 1;
            let ok = primitives::ed25519_verify(&group.key.pk, &t.msg, &t.sig).is_ok();
            match t.result {
                TestResult::Valid => assert!(ok, "tc {} ({}) rejected", t.tc_id, t.comment),
                TestResult::Invalid => assert!(!ok, "tc {} ({}) accepted", t.tc_id, t.comment),
                // Acceptable cases are malleability edge cases; strict verification may refuse them.
                TestResult::Acceptable => {}
            }
        }
    }
    assert_eq!(ran, set.number_of_tests);
}

#[test]
fn rsa_oaep_sha256() {
    use wycheproof::rsa_oaep::{TestName, TestSet};
    let mut ran = 0;
    for name in [
        TestName::Rsa2048Sha256Mgf1Sha256,
        TestName::Rsa3072Sha256Mgf1Sha256,
        TestName::Rsa4096Sha256Mgf1Sha256,
    ] {
        let set = TestSet::load(name).unwrap();
        for group in &set.test_groups {
            let key = RsaPrivateKey::from_pkcs8_der(&group.pkcs8).unwrap();
            for t in &group.tests {
                ran += 1;
                let out = primitives::rsa_oaep_sha256_decrypt(&key, &t.label, &t.ct);
                match t.result {
                    TestResult::Valid | TestResult::Acceptable => {
                        assert_eq!(&out.unwrap()[..], &t.pt[..], "tc {}", t.tc_id)
                    }
                    TestResult::Invalid => assert!(out.is_err(), "tc {} accepted", t.tc_id),
                }
            }
            // Our encryption opens under the same key and label.
            let label = b"SOTTO test label";
            let mut rng =
                <rand_chacha::ChaCha20Rng as rand_chacha::rand_core::SeedableRng>::from_seed(
                    [7; 32],
                );
            let ct =
                primitives::rsa_oaep_sha256_encrypt(&mut rng, key.as_public_key(), label, b"k")
                    .unwrap();
            assert_eq!(
                &primitives::rsa_oaep_sha256_decrypt(&key, label, &ct).unwrap()[..],
                b"k"
            );
            assert!(primitives::rsa_oaep_sha256_decrypt(&key, b"other", &ct).is_err());
        }
    }
    assert!(ran > 100, "only {ran} RSA-OAEP cases");
}
