//! Sotto v1 test vectors: fixed keys, fixed randomness, expected bytes.
//!
//! The test regenerates every vector from the inputs in
//! `vectors/sotto_v1.json` and compares the result with the file, field by field.
//! It also re-derives each intermediate value from the rules written in
//! `docs/protocol.md` (padding, AAD, wrap contexts, signature input, key
//! derivation) using the primitives directly, so the document, the file and
//! the code cannot drift apart.
//!
//! To rewrite the file after an intentional format change:
//! `SOTTO_REGENERATE_VECTORS=1 cargo test -p sotto-core --test vectors`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::convert::Infallible;

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng, TryCryptoRng, TryRng};
use rsa::pkcs8::DecodePrivateKey;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sotto_core::backup::{self, BackupParams, DeviceSecrets, RecoveryKey};
use sotto_core::encoding::b64_encode;
use sotto_core::envelope::{self, Envelope, Header, OpenContext, Recipient};
use sotto_core::keys::{
    DeviceBundle, DeviceKeyOptions, DeviceKeys, IdentityKeyPair, IdentityPublicKey, RsaBits,
};
use sotto_core::safety::SafetyNumber;
use sotto_core::{primitives, testing};
use uuid::Uuid;

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/sotto_v1.json");

/// A ChaCha20 stream that records each draw, so the file can list the exact
/// random values an implementation must use to reproduce the bytes.
struct Recorder {
    inner: ChaCha20Rng,
    draws: Vec<Vec<u8>>,
}
impl Recorder {
    fn new(seed: u8) -> Self {
        Self {
            inner: ChaCha20Rng::from_seed([seed; 32]),
            draws: vec![],
        }
    }
}
impl TryRng for Recorder {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        panic!("the protocol draws only byte strings")
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        panic!("the protocol draws only byte strings")
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.inner.fill_bytes(dst);
        self.draws.push(dst.to_vec());
        Ok(())
    }
}
impl TryCryptoRng for Recorder {}

fn hx(b: &[u8]) -> String {
    hex::encode(b)
}

struct Party {
    name: &'static str,
    user_id: Uuid,
    device_id: Uuid,
    identity_seed: [u8; 32],
    signing_seed: [u8; 32],
    x25519_secret: [u8; 32],
    rsa_pkcs8: Option<Vec<u8>>,
}

impl Party {
    fn identity(&self) -> IdentityKeyPair {
        IdentityKeyPair::from_seed(&self.identity_seed)
    }
    fn keys(&self) -> DeviceKeys {
        DeviceKeys::from_secret_parts(
            &self.signing_seed,
            &self.x25519_secret,
            self.rsa_pkcs8.as_deref(),
        )
        .unwrap()
    }
    fn bundle(&self) -> DeviceBundle {
        DeviceBundle::create(&self.identity(), &self.keys(), self.user_id, self.device_id).unwrap()
    }
}

/// Fixed parties. Seeds are patterned bytes; the one RSA key is read back from the
/// existing file (RSA key generation is not a stable function of its RNG across
/// library versions), and generated only when the file is first written.
fn parties(existing: Option<&Value>) -> Vec<Party> {
    let rsa = existing
        .and_then(|v| v["parties"][2]["rsa_pkcs8"].as_str())
        .map(|s| hex::decode(s).unwrap())
        .unwrap_or_else(|| {
            let mut rng = Recorder::new(0xee);
            let k = testing::device_keys_with_rng(
                &mut rng,
                DeviceKeyOptions {
                    rsa: Some(RsaBits::Rsa2048),
                },
            )
            .unwrap();
            k.rsa_pkcs8_der().unwrap().unwrap().to_vec()
        });
    // `u` patterns the user's identity seed, `d` the device's own secrets.
    let p = |name, u: u8, d: u8, rsa: Option<Vec<u8>>, user: u128, device: u128| Party {
        name,
        user_id: Uuid::from_u128(user),
        device_id: Uuid::from_u128(device),
        identity_seed: [u; 32],
        signing_seed: [d + 0x10; 32],
        x25519_secret: [d + 0x20; 32],
        rsa_pkcs8: rsa,
    };
    vec![
        p("alice-laptop", 0x01, 0x01, None, 0x0a11ce, 0x000a_11ce_0001),
        p("bob-phone", 0x02, 0x02, None, 0x0b0b, 0x0000_0b0b_0001),
        p(
            "bob-desktop",
            0x02,
            0x03,
            Some(rsa),
            0x0b0b,
            0x0000_0b0b_0002,
        ),
    ]
}

fn generate(existing: Option<&Value>) -> Value {
    let ps = parties(existing);
    let (alice, bob_phone, bob_desktop) = (&ps[0], &ps[1], &ps[2]);
    let parties_json: Vec<Value> = ps
        .iter()
        .map(|p| {
            let b = p.bundle();
            json!({
                "name": p.name,
                "user_id": p.user_id,
                "device_id": p.device_id,
                "identity_seed": hx(&p.identity_seed),
                "identity_public": b64_encode(&p.identity().public_key().to_bytes()),
                "signing_seed": hx(&p.signing_seed),
                "x25519_secret": hx(&p.x25519_secret),
                "rsa_pkcs8": p.rsa_pkcs8.as_ref().map(|d| hx(d)),
                "bundle": b,
            })
        })
        .collect();

    // Envelope: Alice → Bob's phone (x25519) and desktop (rsa).
    let header = Header {
        room_id: Uuid::from_u128(0x7007),
        sender_user_id: alice.user_id,
        sender_device_id: alice.device_id,
        client_message_id: Uuid::from_u128(0xc11e47),
        timestamp_ms: 1_763_764_800_000,
    };
    let plaintext = b"Hello Bob! This is a Sotto v1 test vector.";
    let phone = bob_phone.bundle().verify().unwrap();
    let desktop = bob_desktop.bundle().verify().unwrap();
    let mut rng = Recorder::new(0x5e);
    let env = testing::seal_with_rng(
        &mut rng,
        plaintext,
        &header,
        &[Recipient::x25519(&phone), Recipient::rsa(&desktop)],
        &alice.keys(),
    )
    .unwrap();
    let draws = rng.draws;
    let bytes = env.to_bytes();
    let envelope_json = json!({
        "plaintext": hx(plaintext),
        "header": {
            "room_id": header.room_id,
            "sender_user_id": header.sender_user_id,
            "sender_device_id": header.sender_device_id,
            "client_message_id": header.client_message_id,
            "timestamp_ms": header.timestamp_ms,
        },
        "header_bytes": hx(&header.to_bytes()),
        "randomness": draws.iter().map(|d| hx(d)).collect::<Vec<_>>(),
        "recipients": env.recipients.iter().map(|r| json!({
            "device_id": r.device_id, "suite": r.suite.name(), "wrapped_key": hx(&r.wrapped_key),
        })).collect::<Vec<_>>(),
        "nonce": hx(&env.nonce),
        "ciphertext": hx(&env.ciphertext),
        "signature": hx(&env.signature),
        "envelope": hx(&bytes),
        "envelope_json": env.to_json(),
    });

    // Backups of Bob's desktop (with its RSA key).
    let secrets = DeviceSecrets {
        user_id: bob_desktop.user_id,
        device_id: bob_desktop.device_id,
        identity: bob_desktop.identity(),
        device: bob_desktop.keys(),
    };
    let passphrase = "correct horse battery staple";
    let mut rng = Recorder::new(0xba);
    let pass_blob = testing::export_with_passphrase_rng(
        &mut rng,
        &secrets,
        passphrase.as_bytes(),
        &BackupParams::MINIMUM,
    )
    .unwrap();
    let pass_draws = rng.draws;
    let recovery = RecoveryKey::from_bytes([0x42; 32]);
    let mut rng = Recorder::new(0xbb);
    let rec_blob = testing::export_with_recovery_key_rng(&mut rng, &secrets, &recovery).unwrap();
    let rec_draws = rng.draws;

    let sn = SafetyNumber::new(
        &alice.identity().public_key(),
        &bob_phone.identity().public_key(),
    );

    let padme_table: Vec<Value> = [0usize, 1, 2, 9, 15, 16, 100, 1000, 1025, 65536, 262145]
        .iter()
        .map(|l| json!([l, envelope::padding::padme_len(*l)]))
        .collect();
    let refusals = refusal_cases(&ps, &bytes, &env, &pass_blob);
    json!({
        "description": "Sotto v1 test vectors; see docs/protocol.md. Hex unless noted; bundles and envelope_json use base64url (no padding).",
        "parties": parties_json,
        "envelope": envelope_json,
        "backup_passphrase": {
            "passphrase": passphrase,
            "params": {"m_cost_kib": BackupParams::MINIMUM.m_cost_kib, "t_cost": BackupParams::MINIMUM.t_cost, "p_cost": BackupParams::MINIMUM.p_cost},
            "randomness": pass_draws.iter().map(|d| hx(d)).collect::<Vec<_>>(),
            "blob": hx(&pass_blob),
        },
        "backup_recovery_key": {
            "recovery_key": recovery.to_display_string().as_str(),
            "randomness": rec_draws.iter().map(|d| hx(d)).collect::<Vec<_>>(),
            "blob": hx(&rec_blob),
        },
        "safety_number": {
            "a": b64_encode(&alice.identity().public_key().to_bytes()),
            "b": b64_encode(&bob_phone.identity().public_key().to_bytes()),
            "digits": sn.digits(),
            "display": sn.display(),
            "qr_payload": hx(sn.qr_payload()),
        },
        "padme": padme_table,
        "refusals": refusals,
    })
}

/// A bundle of `party` with its X25519 key replaced by `x25519` and both signatures
/// made again over the §3.2 body, so only the key rule can refuse it.
fn bundle_with_x25519(party: &Party, x25519: [u8; 32]) -> Value {
    use ed25519_dalek::{Signer, SigningKey};
    let mut bundle = serde_json::to_value(party.bundle()).unwrap();
    let identity = party.identity().public_key().to_bytes();
    let signing = SigningKey::from_bytes(&party.signing_seed);
    let body = [
        &[1u8][..],
        party.user_id.as_bytes(),
        party.device_id.as_bytes(),
        &identity,
        signing.verifying_key().as_bytes(),
        &x25519,
        &[0, 0],
    ]
    .concat();
    let id_sig = SigningKey::from_bytes(&party.identity_seed)
        .sign(&[&b"SOTTO-v1 device-bundle identity-signature\0"[..], &body].concat());
    let dev_sig =
        signing.sign(&[&b"SOTTO-v1 device-bundle device-signature\0"[..], &body].concat());
    bundle["x25519_key"] = json!(b64_encode(&x25519));
    bundle["identity_signature"] = json!(b64_encode(&id_sig.to_bytes()));
    bundle["device_signature"] = json!(b64_encode(&dev_sig.to_bytes()));
    bundle
}

/// Inputs every implementation must refuse, with the reference error (`error`, the
/// `sotto-core` variant) and the stable code of the JS bindings (`code`, wasm/API.md).
/// Kinds: `bundle` (verify `input`; with `pinned`, verify against that identity key),
/// `envelope` (open hex `input` as `open_as` in room `room_id`, sender alice-laptop),
/// `envelope_json` (parse `input`), `backup_passphrase` / `backup_recovery_key`
/// (import hex `input` with `secret`).
fn refusal_cases(ps: &[Party], envelope_bytes: &[u8], env: &Envelope, pass_blob: &[u8]) -> Value {
    let (alice, bob_phone) = (&ps[0], &ps[1]);
    let phone_x = bob_phone.keys().x25519_public();
    let mut top_bit = phone_x;
    top_bit[31] |= 0x80;
    // p + 9: non-canonical, reduces to the base point's u = 9 (not of small order).
    let mut p_plus_9 = [0xffu8; 32];
    p_plus_9[0] = 0xed + 9;
    p_plus_9[31] = 0x7f;
    let bundle = |name: &str, input: Value, error: &str, code: &str| json!({"kind": "bundle", "name": name, "input": input, "error": error, "code": code});
    let mut phone = serde_json::to_value(bob_phone.bundle()).unwrap();
    let flip_b64 = |field: &str| {
        let mut raw = sotto_core::encoding::b64_decode(phone[field].as_str().unwrap()).unwrap();
        raw[0] ^= 1;
        let mut b = phone.clone();
        b[field] = json!(b64_encode(&raw));
        b
    };
    let bad_identity_sig = flip_b64("identity_signature");
    let bad_device_sig = flip_b64("device_signature");
    phone["version"] = json!(2);
    let v2 = phone;
    let room = Uuid::from_u128(0x7007);
    let open = |name: &str, input: &[u8], as_party: &Party, room: Uuid, error: &str, code: &str| {
        json!({"kind": "envelope", "name": name, "input": hx(input), "open_as": as_party.name,
               "room_id": room, "error": error, "code": code})
    };
    let mut tampered = env.clone();
    tampered.ciphertext[0] ^= 1;
    let tampered_resigned = testing::resign(&tampered, &alice.keys());
    let mut bad_sig = envelope_bytes.to_vec();
    let last = bad_sig.len() - 1;
    bad_sig[last] ^= 1;
    let mut v2_env = envelope_bytes.to_vec();
    v2_env[0] = 2;
    let truncated = &envelope_bytes[..envelope_bytes.len() - 1];
    let json_with = |version: Value| {
        let mut j = serde_json::to_value(env.to_json()).unwrap();
        j["version"] = version;
        j.to_string()
    };
    let mut flipped_blob = pass_blob.to_vec();
    let last = flipped_blob.len() - 1;
    flipped_blob[last] ^= 1;
    json!([
        bundle(
            "x25519_key_top_bit_set",
            bundle_with_x25519(bob_phone, top_bit),
            "Decode(InvalidKey)",
            "invalid_key"
        ),
        bundle(
            "x25519_key_not_reduced_mod_p",
            bundle_with_x25519(bob_phone, p_plus_9),
            "Decode(InvalidKey)",
            "invalid_key"
        ),
        bundle(
            "x25519_key_small_order_zero",
            bundle_with_x25519(bob_phone, [0; 32]),
            "Decode(InvalidKey)",
            "invalid_key"
        ),
        bundle(
            "bad_identity_signature",
            bad_identity_sig,
            "BadIdentitySignature",
            "bad_signature"
        ),
        bundle(
            "bad_device_signature",
            bad_device_sig,
            "BadDeviceSignature",
            "bad_signature"
        ),
        bundle(
            "unsupported_version",
            v2,
            "Decode(UnsupportedVersion(2))",
            "unsupported_version"
        ),
        json!({"kind": "bundle", "name": "pinned_to_another_identity",
               "input": serde_json::to_value(bob_phone.bundle()).unwrap(),
               "pinned": b64_encode(&alice.identity().public_key().to_bytes()),
               "error": "IdentityMismatch", "code": "identity_mismatch"}),
        open(
            "ciphertext_flipped_and_resigned",
            &tampered_resigned,
            bob_phone,
            room,
            "DecryptionFailed",
            "decryption_failed"
        ),
        open(
            "signature_flipped",
            &bad_sig,
            bob_phone,
            room,
            "BadSignature",
            "bad_signature"
        ),
        open(
            "version_2",
            &v2_env,
            bob_phone,
            room,
            "UnsupportedVersion",
            "unsupported_version"
        ),
        open(
            "truncated_by_one_byte",
            truncated,
            bob_phone,
            room,
            "Malformed(Truncated)",
            "malformed"
        ),
        open(
            "other_room",
            envelope_bytes,
            bob_phone,
            Uuid::from_u128(0x7008),
            "ContextMismatch",
            "context_mismatch"
        ),
        open(
            "not_a_recipient",
            envelope_bytes,
            alice,
            room,
            "NotARecipient",
            "not_a_recipient"
        ),
        json!({"kind": "envelope_json", "name": "json_version_2", "input": json_with(json!(2)),
               "error": "UnsupportedVersion(2)", "code": "unsupported_version"}),
        json!({"kind": "envelope_json", "name": "json_version_256", "input": json_with(json!(256)),
               "error": "Json", "code": "malformed"}),
        json!({"kind": "backup_passphrase", "name": "wrong_passphrase", "input": hx(pass_blob),
               "secret": "correct horse battery stapler", "error": "WrongKeyOrCorrupted", "code": "wrong_key_or_corrupted"}),
        json!({"kind": "backup_passphrase", "name": "last_byte_flipped", "input": hx(&flipped_blob),
               "secret": "correct horse battery staple", "error": "WrongKeyOrCorrupted", "code": "wrong_key_or_corrupted"}),
    ])
}

/// Every refusal case is refused by the library with the recorded error.
fn check_refusals(v: &Value) {
    let ps = parties(Some(v));
    let alice_device = ps[0].bundle().verify().unwrap();
    let cases = v["refusals"].as_array().unwrap();
    assert!(cases.len() >= 17);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let want = case["error"].as_str().unwrap();
        let got = match case["kind"].as_str().unwrap() {
            "bundle" => {
                let b: DeviceBundle = serde_json::from_value(case["input"].clone()).unwrap();
                match case["pinned"].as_str() {
                    Some(pin) => b
                        .verify_for(&IdentityPublicKey::from_base64(pin).unwrap())
                        .map(|_| ()),
                    None => b.verify().map(|_| ()),
                }
                .map_err(|e| format!("{e:?}"))
            }
            "envelope" => {
                let who = ps.iter().find(|p| p.name == case["open_as"]).unwrap();
                let room: Uuid = case["room_id"].as_str().unwrap().parse().unwrap();
                let ctx = OpenContext {
                    room_id: room,
                    sender: &alice_device,
                };
                envelope::open(&h(&case["input"]), who.device_id, &who.keys(), &ctx)
                    .map(|_| ())
                    .map_err(|e| format!("{e:?}"))
            }
            "envelope_json" => Envelope::from_json_str(case["input"].as_str().unwrap())
                .map(|_| ())
                .map_err(|e| format!("{e:?}")),
            "backup_passphrase" => backup::import_with_passphrase(
                &h(&case["input"]),
                case["secret"].as_str().unwrap().as_bytes(),
            )
            .map(|_| ())
            .map_err(|e| format!("{e:?}")),
            other => panic!("unknown refusal kind {other}"),
        };
        let got = got.expect_err(name);
        // The recorded error names the variant; messages inside it are not part of it.
        let simple = simplify(&got);
        assert_eq!(simple, want, "refusal `{name}`: got {got}");
    }
}

/// `Decode(InvalidKey("…"))` → `Decode(InvalidKey)`, `Json("…")` → `Json`.
fn simplify(debug: &str) -> String {
    let mut out = String::new();
    let mut chars = debug.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '(' && chars.peek() == Some(&'"') {
            // Skip `("…")`.
            let mut escaped = false;
            chars.next();
            for c in chars.by_ref() {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    break;
                }
            }
            chars.next(); // ')'
            continue;
        }
        out.push(c);
    }
    out
}

fn h(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

/// Checks the file's claims against the rules of docs/protocol.md, using
/// primitives directly rather than the code that produced them.
fn check_against_spec(v: &Value) {
    let e = &v["envelope"];
    let bytes = h(&e["envelope"]);
    let header = h(&e["header_bytes"]);
    assert_eq!(header.len(), 73);
    assert_eq!(&bytes[..73], &header[..]);
    assert_eq!(header[0], 1);

    // Randomness order: content key (32), nonce (12), one 32-byte draw per recipient.
    let draws: Vec<Vec<u8>> = e["randomness"].as_array().unwrap().iter().map(h).collect();
    assert_eq!(
        draws.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![32, 12, 32, 32]
    );
    let content_key: [u8; 32] = draws[0].clone().try_into().unwrap();
    assert_eq!(h(&e["nonce"]), draws[1]);

    // Content: AES-256-GCM(key, nonce, "SOTTO-v1 content\0" ‖ header, Padmé(plaintext ‖ 0x80)).
    let nonce: [u8; 12] = h(&e["nonce"]).try_into().unwrap();
    let aad = [&b"SOTTO-v1 content\0"[..], &header].concat();
    let padded =
        primitives::aes256gcm_decrypt(&content_key, &nonce, &aad, &h(&e["ciphertext"])).unwrap();
    let pt = h(&e["plaintext"]);
    assert_eq!(padded.len(), envelope::padding::padme_len(pt.len() + 1));
    assert_eq!(&padded[..pt.len()], &pt[..]);
    assert_eq!(padded[pt.len()], 0x80);
    assert!(padded[pt.len() + 1..].iter().all(|b| *b == 0));

    // Wraps: context = prefix ‖ header ‖ recipient device id.
    let party_list = v["parties"].as_array().unwrap();
    for r in e["recipients"].as_array().unwrap() {
        let device: Uuid = serde_json::from_value(r["device_id"].clone()).unwrap();
        let party = party_list
            .iter()
            .find(|p| p["device_id"] == r["device_id"])
            .unwrap();
        let wrapped = h(&r["wrapped_key"]);
        match r["suite"].as_str().unwrap() {
            "x25519" => {
                let info = [&b"SOTTO-v1 wrap x25519\0"[..], &header, device.as_bytes()].concat();
                let sk: [u8; 32] = h(&party["x25519_secret"]).try_into().unwrap();
                let key =
                    testing::hpke_open(&sk, &wrapped[..32], &info, &[], &wrapped[32..]).unwrap();
                assert_eq!(key, content_key);
                // The ephemeral key is DeriveKeyPair(the recipient's random draw): enc = its public key.
                let (_, pk_e) = testing::hpke_derive_keypair(&draws[2]);
                assert_eq!(&wrapped[..32], &pk_e[..]);
            }
            "rsa" => {
                let label = [&b"SOTTO-v1 wrap rsa\0"[..], &header, device.as_bytes()].concat();
                let sk = rsa::RsaPrivateKey::from_pkcs8_der(&h(&party["rsa_pkcs8"])).unwrap();
                assert_eq!(
                    &primitives::rsa_oaep_sha256_decrypt(&sk, &label, &wrapped).unwrap()[..],
                    &content_key[..]
                );
            }
            other => panic!("unknown suite {other}"),
        }
    }

    // Signature over "SOTTO-v1 envelope-signature\0" ‖ everything before it.
    let alice_signing = sotto_core::encoding::b64_decode(
        v["parties"][0]["bundle"]["signing_key"].as_str().unwrap(),
    )
    .unwrap();
    let (body, sig) = bytes.split_at(bytes.len() - 64);
    let input = [&b"SOTTO-v1 envelope-signature\0"[..], body].concat();
    primitives::ed25519_verify(&alice_signing, &input, sig).unwrap();

    // And the library opens it for both of Bob's devices.
    let ps = parties(Some(v));
    let alice = ps[0].bundle().verify().unwrap();
    for p in &ps[1..] {
        let opened = envelope::open(
            &bytes,
            p.device_id,
            &p.keys(),
            &OpenContext {
                room_id: Uuid::from_u128(0x7007),
                sender: &alice,
            },
        )
        .unwrap();
        assert_eq!(&opened.plaintext[..], &pt[..]);
    }
    assert_eq!(
        Envelope::from_json(&serde_json::from_value(e["envelope_json"].clone()).unwrap())
            .unwrap()
            .to_bytes(),
        bytes
    );

    // Passphrase backup: header fields, Argon2id key, AES-GCM with the header as AAD.
    let b = &v["backup_passphrase"];
    let blob = h(&b["blob"]);
    let draws: Vec<Vec<u8>> = b["randomness"].as_array().unwrap().iter().map(h).collect();
    assert_eq!(&blob[..8], b"SOTTOBAK");
    assert_eq!(&blob[8..10], &[1, 1]);
    assert_eq!(&blob[10..22], &[0, 0, 0x20, 0, 0, 0, 0, 1, 0, 0, 0, 1]);
    assert_eq!(&blob[22..38], &draws[0][..]);
    assert_eq!(&blob[38..50], &draws[1][..]);
    let key = backup::derive_passphrase_key(
        b["passphrase"].as_str().unwrap().as_bytes(),
        &draws[0].clone().try_into().unwrap(),
        &BackupParams::MINIMUM,
    )
    .unwrap();
    let secrets = primitives::aes256gcm_decrypt(
        &key,
        &blob[38..50].try_into().unwrap(),
        &blob[..50],
        &blob[50..],
    )
    .unwrap();
    let desktop = &party_list[2];
    let mut expect = vec![];
    expect.extend_from_slice(
        serde_json::from_value::<Uuid>(desktop["user_id"].clone())
            .unwrap()
            .as_bytes(),
    );
    expect.extend_from_slice(
        serde_json::from_value::<Uuid>(desktop["device_id"].clone())
            .unwrap()
            .as_bytes(),
    );
    expect.extend(h(&desktop["identity_seed"]));
    expect.extend(h(&desktop["signing_seed"]));
    expect.extend(h(&desktop["x25519_secret"]));
    let rsa = h(&desktop["rsa_pkcs8"]);
    expect.extend_from_slice(&(rsa.len() as u16).to_be_bytes());
    expect.extend(rsa);
    assert_eq!(&secrets[..], &expect[..]);
    backup::import_with_passphrase(&blob, b["passphrase"].as_str().unwrap().as_bytes()).unwrap();

    // Recovery-key backup: HKDF-SHA256(salt, key, "SOTTO-v1 backup recovery-key").
    let b = &v["backup_recovery_key"];
    let blob = h(&b["blob"]);
    let draws: Vec<Vec<u8>> = b["randomness"].as_array().unwrap().iter().map(h).collect();
    assert_eq!(&blob[8..10], &[1, 2]);
    assert_eq!(&blob[10..26], &draws[0][..]);
    let rk = RecoveryKey::parse(b["recovery_key"].as_str().unwrap()).unwrap();
    let hk = hkdf::Hkdf::<Sha256>::new(Some(&draws[0]), &[0x42; 32]);
    let mut key = [0u8; 32];
    hk.expand(b"SOTTO-v1 backup recovery-key", &mut key)
        .unwrap();
    let secrets2 = primitives::aes256gcm_decrypt(
        &key,
        &blob[26..38].try_into().unwrap(),
        &blob[..38],
        &blob[38..],
    )
    .unwrap();
    assert_eq!(&secrets2[..], &expect[..]);
    backup::import_with_recovery_key(&blob, &rk).unwrap();
    // Checksum: the last 4 hex digits are SHA-256(key)[..2].
    let text = b["recovery_key"].as_str().unwrap().replace('-', "");
    assert_eq!(&text[64..], hex::encode(&Sha256::digest([0x42u8; 32])[..2]));

    // Safety number: iterated SHA-512 fingerprints, 6 × (5 bytes mod 100000), halves sorted.
    let s = &v["safety_number"];
    let fp = |k: &[u8]| {
        let mut hh: Vec<u8> = sha2::Sha512::new()
            .chain_update(b"SOTTO-v1 safety-number\0")
            .chain_update(k)
            .finalize()
            .to_vec();
        for _ in 0..5200 {
            hh = sha2::Sha512::new()
                .chain_update(&hh)
                .chain_update(k)
                .finalize()
                .to_vec();
        }
        hh
    };
    let digits = |f: &[u8]| -> String {
        f.chunks(5)
            .take(6)
            .map(|c| {
                format!(
                    "{:05}",
                    c.iter().fold(0u64, |a, b| (a << 8) | *b as u64) % 100_000
                )
            })
            .collect()
    };
    let fa = fp(&sotto_core::encoding::b64_decode(s["a"].as_str().unwrap()).unwrap());
    let fb = fp(&sotto_core::encoding::b64_decode(s["b"].as_str().unwrap()).unwrap());
    let (da, db) = (digits(&fa), digits(&fb));
    let (lo, hi) = if da <= db {
        ((da, fa), (db, fb))
    } else {
        ((db, fb), (da, fa))
    };
    assert_eq!(s["digits"].as_str().unwrap(), format!("{}{}", lo.0, hi.0));
    assert_eq!(
        h(&s["qr_payload"]),
        [&[1u8][..], &lo.1[..32], &hi.1[..32]].concat()
    );
}

#[test]
fn vectors_regenerate_identically() {
    let existing: Option<Value> = std::fs::read_to_string(PATH)
        .ok()
        .map(|s| serde_json::from_str(&s).unwrap());
    let fresh = generate(existing.as_ref());
    if std::env::var_os("SOTTO_REGENERATE_VECTORS").is_some() {
        std::fs::write(PATH, serde_json::to_string_pretty(&fresh).unwrap() + "\n").unwrap();
    }
    let file: Value = serde_json::from_str(
        &std::fs::read_to_string(PATH)
            .expect("vectors/sotto_v1.json is missing: run with SOTTO_REGENERATE_VECTORS=1 once"),
    )
    .unwrap();
    for (k, want) in file.as_object().unwrap() {
        assert_eq!(
            &fresh[k], want,
            "vector section `{k}` differs from the file"
        );
    }
    assert_eq!(
        fresh.as_object().unwrap().len(),
        file.as_object().unwrap().len()
    );
    check_against_spec(&file);
    check_refusals(&file);
}

/// §1: the UUID text forms a decoder accepts, exactly.
#[test]
fn uuid_text_forms_are_exactly_the_documented_ones() {
    let want = Uuid::from_u128(0x700a);
    let parse = |s: &str| serde_json::from_value::<Uuid>(json!(s));
    for ok in [
        "00000000-0000-0000-0000-00000000700a",
        "00000000-0000-0000-0000-00000000700A",
        "0000000000000000000000000000700a",
        "{00000000-0000-0000-0000-00000000700a}",
        "urn:uuid:00000000-0000-0000-0000-00000000700a",
        "urn:uuid:00000000-0000-0000-0000-00000000700A",
    ] {
        assert_eq!(parse(ok).expect(ok), want, "{ok}");
    }
    for bad in [
        "{0000000000000000000000000000700a}",
        "URN:UUID:00000000-0000-0000-0000-00000000700A",
        "Urn:Uuid:00000000-0000-0000-0000-00000000700a",
        "urn:uuid:0000000000000000000000000000700a",
        "urn:uuid:{00000000-0000-0000-0000-00000000700a}",
        " 00000000-0000-0000-0000-00000000700a",
        "00000000-0000-0000-0000-00000000700a ",
        "0000000-00000-0000-0000-00000000700a",
        "00000000000000000000000000000700a",
        "00000000-0000-0000-0000_00000000700a",
        "{00000000-0000-0000-0000-00000000700a",
        "00000000-0000-0000-0000-00000000700g",
        "",
    ] {
        assert!(parse(bad).is_err(), "accepted {bad:?}");
    }
    // Encoders write the lowercase hyphenated form.
    assert_eq!(
        serde_json::to_value(want).unwrap(),
        json!("00000000-0000-0000-0000-00000000700a")
    );
}
