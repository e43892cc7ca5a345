//! Safety numbers and trust on first use.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use sotto_core::keys::{
    DeviceBundle, DeviceKeyOptions, DeviceKeys, IdentityKeyPair, IdentityPublicKey,
};
use sotto_core::safety::SafetyNumber;
use sotto_core::trust::{TrustDecision, TrustStore, classify};
use sotto_core::{BundleError, DecodeError};
use uuid::Uuid;

fn key(seed: u8) -> IdentityPublicKey {
    IdentityKeyPair::from_seed(&[seed; 32]).public_key()
}

#[test]
fn safety_number_is_order_independent_numeric_and_stable() {
    let (a, b, c) = (key(1), key(2), key(3));
    let ab = SafetyNumber::new(&a, &b);
    assert_eq!(ab, SafetyNumber::new(&b, &a));
    assert_eq!(ab.digits().len(), 60);
    assert!(ab.digits().bytes().all(|d| d.is_ascii_digit()));
    assert_eq!(ab.display().split(' ').count(), 12);
    assert_ne!(ab, SafetyNumber::new(&a, &c));
    assert_eq!(ab.qr_payload().len(), 65);
    assert!(ab.matches_qr(SafetyNumber::new(&b, &a).qr_payload()));
    assert!(!ab.matches_qr(SafetyNumber::new(&a, &c).qr_payload()));
}

#[test]
fn tofu_pins_then_flags_changes() {
    let user = Uuid::from_u128(7);
    let mut store = TrustStore::new();
    assert_eq!(store.observe(user, &key(1)), TrustDecision::FirstSeen);
    assert_eq!(store.observe(user, &key(1)), TrustDecision::Unchanged);
    assert!(store.mark_verified(user, &key(1)));
    assert_eq!(
        store.observe(user, &key(2)),
        TrustDecision::Changed {
            pinned: key(1),
            was_verified: true
        }
    );
    // The pin survives until the user accepts the new key.
    assert_eq!(store.pin(&user).unwrap().key, key(1));
    store.accept(user, key(2));
    assert_eq!(store.observe(user, &key(2)), TrustDecision::Unchanged);
    assert!(!store.pin(&user).unwrap().verified);
    // Snapshots persist as JSON.
    let json = serde_json::to_string(&store).unwrap();
    assert_eq!(serde_json::from_str::<TrustStore>(&json).unwrap(), store);
    assert_eq!(classify(None, &key(1)), TrustDecision::FirstSeen);
    assert!(matches!(
        classify(Some(&key(1)), &key(2)),
        TrustDecision::Changed { .. }
    ));
}

#[test]
fn bundle_verification_rejects_forgeries() {
    let alice = IdentityKeyPair::generate().unwrap();
    let mallory = IdentityKeyPair::generate().unwrap();
    let dev = DeviceKeys::generate(DeviceKeyOptions::default()).unwrap();
    let bundle =
        DeviceBundle::create(&alice, &dev, Uuid::from_u128(1), Uuid::from_u128(2)).unwrap();
    bundle.verify().unwrap();
    assert_eq!(
        bundle.verify_for(&mallory.public_key()).unwrap_err(),
        BundleError::IdentityMismatch
    );

    // Reassign the device to another user: the identity signature breaks.
    let mut moved = bundle.clone();
    moved.user_id = Uuid::from_u128(3);
    assert_eq!(
        moved.verify().unwrap_err(),
        BundleError::BadIdentitySignature
    );
    // Swap in another X25519 key.
    let mut swapped = bundle.clone();
    swapped.x25519_key.0 = DeviceKeys::generate(DeviceKeyOptions::default())
        .unwrap()
        .x25519_public()
        .to_vec();
    assert_eq!(
        swapped.verify().unwrap_err(),
        BundleError::BadIdentitySignature
    );
    // Mallory re-signs Alice's device under her identity: valid for Mallory,
    // but the device signature (made by Alice's device over Alice's identity) fails.
    let mut stolen = bundle.clone();
    stolen.identity_key.0 = mallory.public_key().to_bytes().to_vec();
    assert!(stolen.verify().is_err());
    // Low-order X25519 key and malformed lengths.
    let mut low = bundle.clone();
    low.x25519_key.0 = vec![0u8; 32];
    assert!(matches!(
        low.verify().unwrap_err(),
        BundleError::Decode(DecodeError::InvalidKey(_))
    ));
    let mut short = bundle.clone();
    short.signing_key.0.pop();
    assert!(matches!(
        short.verify().unwrap_err(),
        BundleError::Decode(_)
    ));
    let mut v2 = bundle.clone();
    v2.version = 2;
    assert!(matches!(
        v2.verify().unwrap_err(),
        BundleError::Decode(DecodeError::UnsupportedVersion(2))
    ));
    // JSON: strict.
    let mut json: serde_json::Value = serde_json::to_value(&bundle).unwrap();
    DeviceBundle::from_json_verified(&json.to_string()).unwrap();
    json["surprise"] = true.into();
    assert!(DeviceBundle::from_json_verified(&json.to_string()).is_err());
}

#[test]
fn rsa_public_keys_export_der_and_pem() {
    let dev = DeviceKeys::generate(DeviceKeyOptions {
        rsa: Some(sotto_core::keys::RsaBits::Rsa2048),
    })
    .unwrap();
    let der = dev.rsa_public_der().unwrap().unwrap();
    let pem = dev.rsa_public_pem().unwrap().unwrap();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"));
    assert!(der.len() > 256 && der.len() < 300);
    let id = IdentityKeyPair::generate().unwrap();
    let b = DeviceBundle::create(&id, &dev, Uuid::from_u128(1), Uuid::from_u128(2)).unwrap();
    assert!(b.verify().unwrap().has_rsa());
    assert_eq!(b.rsa_key.as_ref().unwrap().0, der);
    // PEM import/export round-trips to the same canonical DER; junk is refused.
    assert_eq!(sotto_core::keys::rsa_spki_der_from_pem(&pem).unwrap(), der);
    assert_eq!(sotto_core::keys::rsa_spki_pem_from_der(&der).unwrap(), pem);
    assert!(
        sotto_core::keys::rsa_spki_der_from_pem(
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"
        )
        .is_err()
    );
    assert!(sotto_core::keys::rsa_spki_pem_from_der(&der[..100]).is_err());
    // Identity key base64url round trip.
    let k = id.public_key();
    assert_eq!(IdentityPublicKey::from_base64(&k.to_base64()).unwrap(), k);
    assert!(IdentityPublicKey::from_base64("AAAA").is_err());
}
