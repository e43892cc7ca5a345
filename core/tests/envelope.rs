//! Envelope behaviour: round trips for both suites and mixed recipients (proptest,
//! 1 to 1000 devices), and every way a message must fail to open.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::OnceLock;

use common::{User, room};
use proptest::prelude::*;
use sotto_core::envelope::{self, Envelope, Header, OpenContext, Recipient};
use sotto_core::keys::RsaBits;
use sotto_core::suite::Suite;
use sotto_core::{DecodeError, OpenError, SealError};

struct World {
    alice: User,
    bob: User,
}

/// Alice has one device; Bob has 1000 (the first 8 also carry RSA keys of every size).
fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let mut alice = User::new(0xa);
        alice.add_device(0xa0, None);
        let mut bob = User::new(0xb);
        for i in 0..1000u128 {
            let rsa = match i {
                0..=5 => Some(RsaBits::Rsa2048),
                6 => Some(RsaBits::Rsa3072),
                7 => Some(RsaBits::Rsa4096),
                _ => None,
            };
            bob.add_device(0xb000 + i, rsa);
        }
        World { alice, bob }
    })
}

fn ctx<'a>(w: &'a World, room_id: uuid::Uuid) -> OpenContext<'a> {
    OpenContext {
        room_id,
        sender: &w.alice.devices[0].verified,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn seal_open_round_trip(
        plaintext in proptest::collection::vec(any::<u8>(), 0..4096),
        n in 1usize..=1000,
        rsa_mask in any::<u8>(),
        msg in any::<u128>(),
        probes in proptest::collection::vec(any::<prop::sample::Index>(), 3),
    ) {
        let w = world();
        let r = room(1);
        let header = w.alice.header(0, r, msg);
        // The first min(n, 8) devices use RSA where the mask bit is set: mixed suites.
        let recipients: Vec<Recipient<'_>> = w.bob.devices[..n]
            .iter()
            .enumerate()
            .map(|(i, d)| if i < 8 && rsa_mask & (1 << i) != 0 { Recipient::rsa(&d.verified) } else { Recipient::x25519(&d.verified) })
            .collect();
        let sealed = envelope::seal(&plaintext, &header, &recipients, &w.alice.devices[0].keys).unwrap();
        prop_assert_eq!(sealed.recipients.len(), n);
        let bytes = sealed.to_bytes();
        // Binary and JSON forms round-trip losslessly.
        prop_assert_eq!(&Envelope::from_bytes(&bytes).unwrap(), &sealed);
        prop_assert_eq!(&Envelope::from_json_str(&sealed.to_json_string()).unwrap(), &sealed);
        // Open on the first, the last and a few random recipient devices.
        let mut which = vec![0, n - 1];
        which.extend(probes.iter().map(|p| p.index(n)));
        for i in which {
            let d = &w.bob.devices[i];
            let opened = envelope::open(&bytes, d.id, &d.keys, &ctx(w, r)).unwrap();
            prop_assert_eq!(&opened.plaintext[..], &plaintext[..]);
            prop_assert_eq!(opened.replay_id(), header.client_message_id);
            prop_assert_eq!(opened.header, header);
        }
    }
}

fn sample() -> (Vec<u8>, Header) {
    let w = world();
    let header = w.alice.header(0, room(2), 42);
    let recipients = [
        Recipient::x25519(&w.bob.devices[8].verified),
        Recipient::rsa(&w.bob.devices[0].verified),
    ];
    let env = envelope::seal(
        b"attack at dawn",
        &header,
        &recipients,
        &w.alice.devices[0].keys,
    )
    .unwrap();
    (env.to_bytes(), header)
}

#[test]
fn every_single_byte_flip_fails_with_a_typed_error() {
    let w = world();
    let (bytes, header) = sample();
    for device in [8usize, 0] {
        let d = &w.bob.devices[device];
        assert!(envelope::open(&bytes, d.id, &d.keys, &ctx(w, header.room_id)).is_ok());
        for pos in 0..bytes.len() {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut t = bytes.clone();
                t[pos] ^= mask;
                let err = envelope::open(&t, d.id, &d.keys, &ctx(w, header.room_id))
                    .expect_err(&format!("flip at {pos} with {mask:#x} opened"));
                // Structure damage is caught by the parser, everything else by the signature.
                assert!(
                    matches!(
                        err,
                        OpenError::BadSignature
                            | OpenError::Malformed(_)
                            | OpenError::UnsupportedVersion
                            | OpenError::UnsupportedSuite
                    ),
                    "flip at {pos}: {err:?}"
                );
            }
        }
    }
}

#[test]
fn truncation_and_extension_fail() {
    let w = world();
    let (bytes, header) = sample();
    let d = &w.bob.devices[8];
    for len in 0..bytes.len() {
        assert!(envelope::open(&bytes[..len], d.id, &d.keys, &ctx(w, header.room_id)).is_err());
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(
        envelope::open(&longer, d.id, &d.keys, &ctx(w, header.room_id)).unwrap_err(),
        OpenError::Malformed(DecodeError::TrailingBytes)
    );
}

#[test]
fn wrong_recipient_fails() {
    let w = world();
    let (bytes, header) = sample();
    // A device that is not in the envelope.
    let other = &w.bob.devices[9];
    assert_eq!(
        envelope::open(&bytes, other.id, &other.keys, &ctx(w, header.room_id)).unwrap_err(),
        OpenError::NotARecipient
    );
    // A device claiming another's entry with its own keys.
    let entry_owner = w.bob.devices[8].id;
    assert_eq!(
        envelope::open(&bytes, entry_owner, &other.keys, &ctx(w, header.room_id)).unwrap_err(),
        OpenError::DecryptionFailed
    );
}

#[test]
fn wrong_sender_key_fails() {
    let w = world();
    let (bytes, header) = sample();
    let d = &w.bob.devices[8];
    // Bob's own device posing as the trusted sender key.
    let ctx = OpenContext {
        room_id: header.room_id,
        sender: &w.bob.devices[9].verified,
    };
    assert_eq!(
        envelope::open(&bytes, d.id, &d.keys, &ctx).unwrap_err(),
        OpenError::BadSignature
    );
}

#[test]
fn replay_into_another_room_fails() {
    let w = world();
    let (bytes, _) = sample();
    let d = &w.bob.devices[8];
    assert_eq!(
        envelope::open(&bytes, d.id, &d.keys, &ctx(w, room(99))).unwrap_err(),
        OpenError::ContextMismatch
    );
}

#[test]
fn sender_device_mismatch_fails() {
    // Alice signs with her device key but the header names another of her devices.
    let mut w_alice = User::new(0xa2);
    w_alice.add_device(1, None);
    w_alice.add_device(2, None);
    let w = world();
    let mut header = w_alice.header(0, room(3), 7);
    header.sender_device_id = w_alice.devices[1].id;
    let d = &w.bob.devices[8];
    let env = envelope::seal(
        b"x",
        &header,
        &[Recipient::x25519(&d.verified)],
        &w_alice.devices[0].keys,
    )
    .unwrap()
    .to_bytes();
    let ctx = OpenContext {
        room_id: header.room_id,
        sender: &w_alice.devices[0].verified,
    };
    assert_eq!(
        envelope::open(&env, d.id, &d.keys, &ctx).unwrap_err(),
        OpenError::ContextMismatch
    );
}

#[test]
fn header_moved_onto_another_ciphertext_fails() {
    let w = world();
    let d = &w.bob.devices[8];
    let sender = &w.alice.devices[0].keys;
    let h1 = w.alice.header(0, room(4), 1);
    let h2 = w.alice.header(0, room(5), 2);
    let e1 = envelope::seal(b"first", &h1, &[Recipient::x25519(&d.verified)], sender).unwrap();
    let e2 = envelope::seal(b"second", &h2, &[Recipient::x25519(&d.verified)], sender).unwrap();

    // Splice: header of e2 onto the wraps and ciphertext of e1, then re-sign with the
    // real sender key (a malicious insider): the wraps and the AEAD must still refuse.
    let mut spliced = e1.clone();
    spliced.header = e2.header;
    let resigned = resign(&spliced, sender);
    let ctx2 = OpenContext {
        room_id: h2.room_id,
        sender: &w.alice.devices[0].verified,
    };
    assert_eq!(
        envelope::open(&resigned, d.id, &d.keys, &ctx2).unwrap_err(),
        OpenError::DecryptionFailed
    );

    // Keep e1's wraps but e2's ciphertext and nonce: the content key does not fit.
    let mut mixed = e1.clone();
    mixed.ciphertext = e2.ciphertext.clone();
    mixed.nonce = e2.nonce;
    let resigned = resign(&mixed, sender);
    let ctx1 = OpenContext {
        room_id: h1.room_id,
        sender: &w.alice.devices[0].verified,
    };
    assert_eq!(
        envelope::open(&resigned, d.id, &d.keys, &ctx1).unwrap_err(),
        OpenError::DecryptionFailed
    );

    // Without re-signing, any splice fails the signature.
    assert_eq!(
        envelope::open(&spliced.to_bytes(), d.id, &d.keys, &ctx2).unwrap_err(),
        OpenError::BadSignature
    );
}

/// Re-signs an envelope with `sender` by sealing a throwaway message and reusing
/// only the public signing procedure: the signature covers the encoding minus itself.
fn resign(env: &Envelope, sender: &sotto_core::keys::DeviceKeys) -> Vec<u8> {
    sotto_core::testing::resign(env, sender)
}

#[test]
fn seal_rejects_bad_requests() {
    let w = world();
    let header = w.alice.header(0, room(6), 1);
    let sender = &w.alice.devices[0].keys;
    assert_eq!(
        envelope::seal(b"x", &header, &[], sender).unwrap_err(),
        SealError::RecipientCount
    );
    let d = &w.bob.devices[8].verified;
    assert_eq!(
        envelope::seal(
            b"x",
            &header,
            &[Recipient::x25519(d), Recipient::x25519(d)],
            sender
        )
        .unwrap_err(),
        SealError::DuplicateRecipient
    );
    assert_eq!(
        envelope::seal(b"x", &header, &[Recipient::rsa(d)], sender).unwrap_err(),
        SealError::NoRsaKey
    );
    let big = vec![0u8; envelope::MAX_PLAINTEXT + 1];
    assert_eq!(
        envelope::seal(&big, &header, &[Recipient::x25519(d)], sender).unwrap_err(),
        SealError::PlaintextTooLarge
    );
    // The largest plaintext seals and opens.
    let max = vec![7u8; envelope::MAX_PLAINTEXT];
    let env = envelope::seal(&max, &header, &[Recipient::x25519(d)], sender)
        .unwrap()
        .to_bytes();
    let dev = &w.bob.devices[8];
    let opened = envelope::open(&env, dev.id, &dev.keys, &ctx(w, header.room_id)).unwrap();
    assert_eq!(opened.plaintext.len(), max.len());
}

#[test]
fn parser_limits_and_order() {
    let w = world();
    let (bytes, _) = sample();
    let limits = envelope::Limits {
        max_recipients: 1,
        ..Default::default()
    };
    assert_eq!(
        Envelope::from_bytes_with_limits(&bytes, &limits).unwrap_err(),
        DecodeError::RecipientCount
    );
    let limits = envelope::Limits {
        max_envelope_bytes: 100,
        ..Default::default()
    };
    assert_eq!(
        Envelope::from_bytes_with_limits(&bytes, &limits).unwrap_err(),
        DecodeError::TooLarge
    );
    // Recipients out of order are not canonical.
    let mut env = Envelope::from_bytes(&bytes).unwrap();
    env.recipients.reverse();
    assert_eq!(
        Envelope::from_bytes(&env.to_bytes()).unwrap_err(),
        DecodeError::RecipientOrder
    );
    // Unknown version and suite.
    let mut v = bytes.clone();
    v[0] = 2;
    assert_eq!(
        Envelope::from_bytes(&v).unwrap_err(),
        DecodeError::UnsupportedVersion(2)
    );
    let mut s = bytes.clone();
    s[envelope::HEADER_LEN + 2 + 16] = 9;
    assert_eq!(
        Envelope::from_bytes(&s).unwrap_err(),
        DecodeError::UnknownSuite(9)
    );
    // JSON with unknown fields is rejected.
    let mut json: serde_json::Value =
        serde_json::from_str(&Envelope::from_bytes(&bytes).unwrap().to_json_string()).unwrap();
    json["extra"] = 1.into();
    assert!(matches!(
        Envelope::from_json_str(&json.to_string()),
        Err(DecodeError::Json(_))
    ));
    let _ = w;
}

#[test]
fn suites_are_as_requested_and_lengths_fixed() {
    let (bytes, _) = sample();
    let env = Envelope::from_bytes(&bytes).unwrap();
    let suites: Vec<Suite> = env.recipients.iter().map(|r| r.suite).collect();
    // Sorted by device id: bob device 0 (rsa) then device 8 (x25519).
    assert_eq!(suites, vec![Suite::Rsa, Suite::X25519]);
    assert_eq!(env.recipients[0].wrapped_key.len(), 256);
    assert_eq!(env.recipients[1].wrapped_key.len(), 80);
    // Padmé: 14 bytes of plaintext + marker pad to 15, + 16 tag.
    assert_eq!(env.ciphertext.len(), envelope::padding::padme_len(15) + 16);
}

#[test]
fn signature_check_without_keys_matches_open() {
    let w = world();
    let (bytes, _) = sample();
    let env = Envelope::from_bytes(&bytes).unwrap();
    let sender = &w.alice.devices[0].verified;
    env.verify_signature(sender).unwrap();
    // Another device of someone else: the header names Alice's device.
    assert_eq!(
        env.verify_signature(&w.bob.devices[9].verified),
        Err(OpenError::ContextMismatch)
    );
    // Any flip past the header that still parses breaks the signature.
    for pos in sotto_core::envelope::HEADER_LEN..bytes.len() {
        let mut t = bytes.clone();
        t[pos] ^= 0x01;
        if let Ok(e) = Envelope::from_bytes(&t) {
            assert_eq!(
                e.verify_signature(sender),
                Err(OpenError::BadSignature),
                "flip at {pos}"
            );
        }
    }
}
