//! The committed test vectors (`core/tests/vectors/sotto_v1.json`,
//! `attachment_v1.json`) through the JavaScript-facing API: every value goes in
//! and comes out as a JavaScript value (objects, `Uint8Array`s, `Error`s with a
//! `code`), exactly as a browser or Node caller sees it. Compiled twice: by
//! `node.rs` (runs under Node) and by `browser.rs` (runs in headless Chromium),
//! so both engines must agree with the native implementation byte for byte.
//!
//! The vector files hold no refusal cases of their own; the refusals here are
//! derived from the vectors (every byte of the vector envelope flipped, the
//! vector bundles, backups and attachments tampered field by field), each with
//! the code `wasm/API.md` promises for it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use js_sys::{JSON, Reflect, Uint8Array};
use serde_json::Value;
use sotto_core::backup::{self, DeviceSecrets, RecoveryKey};
use sotto_core::encoding::b64_decode;
use sotto_core::keys::{DeviceKeys, IdentityKeyPair};
use sotto_wasm::attachment::{AttachmentDecryptor, decrypt_attachment, encrypted_attachment_size};
use sotto_wasm::device::Device;
use sotto_wasm::envelope::{envelope_from_json, envelope_to_json, peek_envelope};
use sotto_wasm::peer::{VerifiedDevice, verify_bundle};
use sotto_wasm::trust::{classify_identity, safety_number, safety_number_matches_qr};
use uuid::Uuid;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::wasm_bindgen_test;

const SOTTO: &str = include_str!("../../../core/tests/vectors/sotto_v1.json");
const ATTACHMENTS: &str = include_str!("../../../core/tests/vectors/attachment_v1.json");

// ---- helpers -------------------------------------------------------------------

fn vectors() -> Value {
    serde_json::from_str(SOTTO).unwrap()
}

fn hex(v: &Value) -> Vec<u8> {
    let s = v.as_str().expect("hex string");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn hex32(v: &Value) -> [u8; 32] {
    hex(v).try_into().unwrap()
}

fn b64(v: &Value) -> Vec<u8> {
    b64_decode(v.as_str().unwrap()).unwrap()
}

fn uuid(v: &Value) -> Uuid {
    Uuid::parse_str(v.as_str().unwrap()).unwrap()
}

/// A JSON value as a JavaScript value (what a caller would pass).
fn js(v: &Value) -> JsValue {
    JSON::parse(&v.to_string()).unwrap()
}

/// A JavaScript value back as JSON, to compare with the vectors.
fn json(v: &JsValue) -> Value {
    serde_json::from_str(&JSON::stringify(v).unwrap().as_string().unwrap()).unwrap()
}

fn obj(pairs: &[(&str, JsValue)]) -> JsValue {
    let o = js_sys::Object::new();
    for (k, v) in pairs {
        Reflect::set(&o, &JsValue::from_str(k), v).unwrap();
    }
    o.into()
}

fn get(v: &JsValue, key: &str) -> JsValue {
    Reflect::get(v, &JsValue::from_str(key)).unwrap()
}

fn get_str(v: &JsValue, key: &str) -> String {
    get(v, key).as_string().unwrap()
}

fn get_bytes(v: &JsValue, key: &str) -> Vec<u8> {
    get(v, key).dyn_into::<Uint8Array>().unwrap().to_vec()
}

/// The `code` and `detail` of the JavaScript `Error` a failed call throws.
fn thrown<T>(r: Result<T, sotto_wasm::Error>) -> (String, Option<String>) {
    let Err(e) = r else {
        panic!("expected an error, the call succeeded")
    };
    let err = JsValue::from(e);
    assert!(err.is_instance_of::<js_sys::Error>(), "not an Error object");
    let message = get_str(&err, "message");
    assert!(!message.is_empty());
    (get_str(&err, "code"), get(&err, "detail").as_string())
}

fn code<T>(r: Result<T, sotto_wasm::Error>) -> String {
    thrown(r).0
}

/// A device built from a vector party's seeds, imported through the API (the
/// API has no other door for existing secrets than a backup).
fn device_from_party(p: &Value) -> Device {
    let rsa = p["rsa_pkcs8"].as_str().map(|_| hex(&p["rsa_pkcs8"]));
    let secrets = DeviceSecrets {
        user_id: uuid(&p["user_id"]),
        device_id: uuid(&p["device_id"]),
        identity: IdentityKeyPair::from_seed(&hex32(&p["identity_seed"])),
        device: DeviceKeys::from_secret_parts(
            &hex32(&p["signing_seed"]),
            &hex32(&p["x25519_secret"]),
            rsa.as_deref(),
        )
        .unwrap(),
    };
    let key = RecoveryKey::from_bytes([0x5a; 32]);
    let blob = backup::export_with_recovery_key(&secrets, &key).unwrap();
    Device::import_recovery_backup(&blob, key.to_display_string().as_str().to_owned()).unwrap()
}

fn verified(p: &Value) -> VerifiedDevice {
    verify_bundle(
        js(&p["bundle"]).unchecked_into(),
        Some(b64(&p["identity_public"])),
    )
    .unwrap()
}

fn expected(room: Uuid, sender: &VerifiedDevice) -> JsValue {
    obj(&[
        ("roomId", room.to_string().into()),
        ("sender", sender.clone().into()),
    ])
}

fn open(
    device: &Device,
    envelope: &[u8],
    room: Uuid,
    sender: &VerifiedDevice,
) -> Result<JsValue, sotto_wasm::Error> {
    device
        .open(envelope, expected(room, sender).unchecked_into())
        .map(Into::into)
}

fn recipients(list: &[(&VerifiedDevice, &str)]) -> JsValue {
    let arr = js_sys::Array::new();
    for (d, suite) in list {
        arr.push(&obj(&[
            ("device", (*d).clone().into()),
            ("suite", (*suite).into()),
        ]));
    }
    arr.into()
}

fn header(room: Uuid) -> JsValue {
    obj(&[
        ("roomId", room.to_string().into()),
        (
            "clientMessageId",
            Uuid::from_u128(0x5eed).to_string().into(),
        ),
        ("timestampMs", 1_700_000_000_000f64.into()),
    ])
}

// ---- vectors: everything agrees byte for byte ----------------------------------

#[wasm_bindgen_test]
fn bundles_are_the_vectors_and_verify() {
    let v = vectors();
    for p in v["parties"].as_array().unwrap() {
        let device = device_from_party(p);
        // Ed25519 signatures are deterministic: the bundle must be the vector's exactly.
        assert_eq!(
            json(&device.bundle().unwrap().into()),
            p["bundle"],
            "{}",
            p["name"]
        );
        assert_eq!(device.user_id(), p["user_id"].as_str().unwrap());
        assert_eq!(device.device_id(), p["device_id"].as_str().unwrap());
        assert_eq!(device.identity_key(), b64(&p["identity_public"]));
        assert_eq!(device.has_rsa(), p["rsa_pkcs8"].is_string());

        let peer = verified(p);
        assert_eq!(peer.user_id(), p["user_id"].as_str().unwrap());
        assert_eq!(peer.device_id(), p["device_id"].as_str().unwrap());
        assert_eq!(peer.identity_key(), b64(&p["identity_public"]));
        assert_eq!(peer.signing_key(), b64(&p["bundle"]["signing_key"]));
        assert_eq!(peer.x25519_key(), b64(&p["bundle"]["x25519_key"]));
        assert_eq!(peer.has_rsa(), p["bundle"]["rsa_key"].is_string());
        assert!(verify_bundle(js(&p["bundle"]).unchecked_into(), None).is_ok());
        // The device's own view of itself is the same verified device.
        let own = device.verified();
        assert_eq!(own.x25519_key(), peer.x25519_key());
    }
}

#[wasm_bindgen_test]
fn vector_envelope_opens_for_both_suites() {
    let v = vectors();
    let e = &v["envelope"];
    let parties = v["parties"].as_array().unwrap();
    let bytes = hex(&e["envelope"]);
    let plaintext = hex(&e["plaintext"]);
    let room = uuid(&e["header"]["room_id"]);
    let alice = verified(&parties[0]);
    for (party, suite) in [(&parties[1], "x25519"), (&parties[2], "rsa")] {
        let device = device_from_party(party);
        let opened = open(&device, &bytes, room, &alice).unwrap();
        assert_eq!(get_bytes(&opened, "plaintext"), plaintext);
        assert_eq!(get_str(&opened, "suite"), suite);
        assert_eq!(
            get_str(&opened, "roomId"),
            e["header"]["room_id"].as_str().unwrap()
        );
        assert_eq!(
            get_str(&opened, "senderUserId"),
            e["header"]["sender_user_id"].as_str().unwrap()
        );
        assert_eq!(
            get_str(&opened, "senderDeviceId"),
            e["header"]["sender_device_id"].as_str().unwrap()
        );
        assert_eq!(
            get_str(&opened, "clientMessageId"),
            e["header"]["client_message_id"].as_str().unwrap()
        );
        assert_eq!(
            get(&opened, "timestampMs").as_f64(),
            e["header"]["timestamp_ms"].as_f64()
        );
    }

    let info: JsValue = peek_envelope(&bytes).unwrap().into();
    assert_eq!(get(&info, "version").as_f64(), Some(1.0));
    assert_eq!(get_str(&info, "suite"), "mixed");
    assert_eq!(
        get_str(&info, "roomId"),
        e["header"]["room_id"].as_str().unwrap()
    );
    assert_eq!(
        get_str(&info, "senderUserId"),
        e["header"]["sender_user_id"].as_str().unwrap()
    );
    assert_eq!(
        get_str(&info, "senderDeviceId"),
        e["header"]["sender_device_id"].as_str().unwrap()
    );
    assert_eq!(
        get_str(&info, "clientMessageId"),
        e["header"]["client_message_id"].as_str().unwrap()
    );
    assert_eq!(
        get(&info, "timestampMs").as_f64(),
        e["header"]["timestamp_ms"].as_f64()
    );
    let ids: Vec<Value> = e["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["device_id"].clone())
        .collect();
    let suites: Vec<Value> = e["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["suite"].clone())
        .collect();
    assert_eq!(json(&get(&info, "recipientDeviceIds")), Value::Array(ids));
    assert_eq!(json(&get(&info, "recipientSuites")), Value::Array(suites));

    // Binary and JSON forms convert into each other exactly.
    let text = envelope_to_json(&bytes).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        e["envelope_json"]
    );
    assert_eq!(
        envelope_from_json(&e["envelope_json"].to_string()).unwrap(),
        bytes
    );
}

#[wasm_bindgen_test]
fn backup_vectors_import() {
    let v = vectors();
    let desktop = &v["parties"][2];
    let pass = &v["backup_passphrase"];
    let rec = &v["backup_recovery_key"];
    let phrase = pass["passphrase"].as_str().unwrap();
    let recovery = rec["recovery_key"].as_str().unwrap();

    let a = Device::import_passphrase_backup(&hex(&pass["blob"]), phrase.to_owned()).unwrap();
    assert_eq!(json(&a.bundle().unwrap().into()), desktop["bundle"]);
    assert!(a.has_rsa());
    let b = Device::import_recovery_backup(&hex(&rec["blob"]), recovery.to_owned()).unwrap();
    assert_eq!(json(&b.bundle().unwrap().into()), desktop["bundle"]);
    // Case, spaces and dashes in a recovery key do not matter.
    let loose = recovery.replace('-', " ").to_uppercase();
    assert!(Device::import_recovery_backup(&hex(&rec["blob"]), loose).is_ok());
}

#[wasm_bindgen_test]
fn safety_number_is_the_vector() {
    let v = vectors();
    let s = &v["safety_number"];
    let (a, b) = (b64(&s["a"]), b64(&s["b"]));
    for (x, y) in [(&a, &b), (&b, &a)] {
        let sn: JsValue = safety_number(x, y).unwrap().into();
        assert_eq!(get_str(&sn, "digits"), s["digits"].as_str().unwrap());
        assert_eq!(get_str(&sn, "display"), s["display"].as_str().unwrap());
        assert_eq!(get_bytes(&sn, "qrPayload"), hex(&s["qr_payload"]));
        assert!(safety_number_matches_qr(x, y, &hex(&s["qr_payload"])).unwrap());
    }
    let mut qr = hex(&s["qr_payload"]);
    qr[10] ^= 1;
    assert!(!safety_number_matches_qr(&a, &b, &qr).unwrap());
    let decision = |p: Option<Vec<u8>>, s: &[u8]| {
        classify_identity(p, s).map(|d| JsValue::from(d).as_string().unwrap())
    };
    assert_eq!(decision(None, &a).unwrap(), "first_seen");
    assert_eq!(decision(Some(a.clone()), &a).unwrap(), "unchanged");
    assert_eq!(decision(Some(a.clone()), &b).unwrap(), "changed");
    assert_eq!(code(safety_number(&a, &[0u8; 32])), "invalid_key");
    assert_eq!(code(decision(Some(vec![1, 2, 3]), &a)), "invalid_key");
}

#[wasm_bindgen_test]
fn attachment_vectors_decrypt() {
    let v: Value = serde_json::from_str(ATTACHMENTS).unwrap();
    for a in v["vectors"].as_array().unwrap() {
        let blob = hex(&a["blob"]);
        let plaintext = hex(&a["plaintext"]);
        let pointer = || js(&a["pointer"]).unchecked_into();
        assert_eq!(
            decrypt_attachment(pointer(), &blob).unwrap().to_vec(),
            plaintext,
            "{}",
            a["name"]
        );
        for piece in [1usize, 7, 1000, 1040, blob.len().max(1)] {
            let mut dec = AttachmentDecryptor::new(pointer()).unwrap();
            let mut out = Vec::new();
            for part in blob.chunks(piece) {
                out.extend(dec.update(part).unwrap().to_vec());
            }
            out.extend(dec.finish().unwrap().to_vec());
            assert_eq!(out, plaintext, "{} in pieces of {piece}", a["name"]);
        }
        let size = a["size"].as_f64().unwrap();
        let chunk = a["chunk_size"].as_f64();
        assert_eq!(
            encrypted_attachment_size(size, chunk).unwrap(),
            a["encrypted_size"].as_f64().unwrap()
        );
    }
}

// ---- refusals derived from the vectors, each with its code -----------------------

/// What flipping the lowest bit of byte `i` of the vector envelope must yield
/// (layout in docs/protocol.md; the vector has an x25519 entry, then an rsa one).
fn flip_expectation(bytes: &[u8], i: usize) -> &'static str {
    let (entry0, entry1) = (75usize, 75 + 19 + 80);
    let nonce = entry1 + 19 + 256;
    let ct_len = nonce + 12;
    let id = |at: usize, b: &[u8]| u128::from_be_bytes(b[at..at + 16].try_into().unwrap());
    let mut flipped = bytes.to_vec();
    flipped[i] ^= 1;
    match i {
        0 => "unsupported_version",
        // Recipient count 2 -> 258 or 3: a third entry is read from the nonce, and its
        // "suite" is the first ciphertext byte (0x19), which no build knows.
        73..=74 => "unsupported_suite",
        _ if (entry0..entry0 + 16).contains(&i) || (entry1..entry1 + 16).contains(&i) => {
            if id(entry0, &flipped) < id(entry1, &flipped) {
                "bad_signature"
            } else {
                "malformed"
            }
        }
        _ if i == entry0 + 16 || i == entry1 + 16 => "unsupported_suite",
        _ if (entry0 + 17..entry0 + 19).contains(&i) || (entry1 + 17..entry1 + 19).contains(&i) => {
            "malformed"
        }
        _ if i == ct_len => "too_large", // 16 MiB + 60: above the ciphertext limit
        _ if (ct_len + 1..ct_len + 4).contains(&i) => "malformed",
        _ => "bad_signature",
    }
}

#[wasm_bindgen_test]
fn tampered_envelopes_are_refused_with_the_right_code() {
    let v = vectors();
    let e = &v["envelope"];
    let parties = v["parties"].as_array().unwrap();
    let bytes = hex(&e["envelope"]);
    assert_eq!(bytes.len(), 589);
    let room = uuid(&e["header"]["room_id"]);
    let alice_peer = verified(&parties[0]);
    let phone = device_from_party(&parties[1]);
    let desktop = device_from_party(&parties[2]);

    for i in 0..bytes.len() {
        let mut t = bytes.clone();
        t[i] ^= 1;
        let want = flip_expectation(&bytes, i);
        for device in [&phone, &desktop] {
            assert_eq!(
                code(open(device, &t, room, &alice_peer)),
                want,
                "byte {i} flipped"
            );
        }
        // Without keys, only the parse-level refusals show.
        let peek = peek_envelope(&t).map(|_| ());
        if want == "bad_signature" {
            assert!(peek.is_ok(), "byte {i}");
        } else {
            assert_eq!(code(peek), want, "peek, byte {i} flipped");
        }
    }
    for len in 0..bytes.len() {
        assert_eq!(
            code(open(&phone, &bytes[..len], room, &alice_peer)),
            "malformed",
            "cut at {len}"
        );
    }
    let mut long = bytes.clone();
    long.push(0);
    assert_eq!(code(open(&phone, &long, room, &alice_peer)), "malformed");
    assert_eq!(
        code(open(&phone, &vec![1u8; 1024 * 1024 + 1], room, &alice_peer)),
        "too_large"
    );

    // Right bytes, wrong context.
    assert_eq!(
        code(open(&phone, &bytes, Uuid::from_u128(1), &alice_peer)),
        "context_mismatch"
    );
    assert_eq!(
        code(open(&phone, &bytes, room, &verified(&parties[1]))),
        "bad_signature"
    );
    let alice = device_from_party(&parties[0]);
    assert_eq!(
        code(open(&alice, &bytes, room, &alice_peer)),
        "not_a_recipient"
    );

    // A valid signature over a key wrapped for other keys under the same device id:
    // the unwrap fails, in both suites.
    for (party, suite, options) in [
        (&parties[1], "x25519", None),
        (&parties[2], "rsa", Some(2048f64)),
    ] {
        let options = options.map(|bits| obj(&[("rsaBits", bits.into())]).unchecked_into());
        let twin = Device::generate(
            party["user_id"].as_str().unwrap(),
            party["device_id"].as_str().unwrap(),
            options,
        )
        .unwrap();
        let sealed = alice
            .seal(
                b"to the twin".to_vec(),
                header(room).unchecked_into(),
                recipients(&[(&twin.verified(), suite)]).unchecked_into(),
            )
            .unwrap();
        assert_eq!(
            open(&twin, &sealed, room, &alice_peer)
                .map(|o| get_bytes(&o, "plaintext"))
                .unwrap(),
            b"to the twin"
        );
        let real = device_from_party(party);
        assert_eq!(
            code(open(&real, &sealed, room, &alice_peer)),
            "decryption_failed",
            "{suite}"
        );
    }

    // JSON form: the same rules.
    let mut j = e["envelope_json"].clone();
    j["version"] = 2.into();
    assert_eq!(
        code(envelope_from_json(&j.to_string())),
        "unsupported_version"
    );
    let mut j = e["envelope_json"].clone();
    j["recipients"][0]["suite"] = "p256".into();
    assert_eq!(code(envelope_from_json(&j.to_string())), "malformed");
    let mut j = e["envelope_json"].clone();
    j["nonce"] = "AAAA".into();
    assert_eq!(code(envelope_from_json(&j.to_string())), "malformed");
    let mut j = e["envelope_json"].clone();
    j["extra"] = 1.into();
    assert_eq!(code(envelope_from_json(&j.to_string())), "malformed");
    assert_eq!(code(envelope_from_json("{")), "malformed");
}

#[wasm_bindgen_test]
fn tampered_bundles_are_refused_with_the_right_code() {
    let v = vectors();
    let parties = v["parties"].as_array().unwrap();
    let other_identity = b64(&parties[0]["identity_public"]);
    for p in parties {
        let bundle = &p["bundle"];
        let pinned = b64(&p["identity_public"]);
        let check = |b: &Value, want: &str, what: &str| {
            assert_eq!(
                code(verify_bundle(js(b).unchecked_into(), Some(pinned.clone()))),
                want,
                "{} {what}",
                p["name"]
            );
        };
        let flip = |field: &str, at: usize| {
            let mut raw = b64(&bundle[field]);
            raw[at] ^= 1;
            let mut b = bundle.clone();
            b[field] = sotto_core::encoding::b64_encode(&raw).into();
            b
        };
        check(
            &flip("identity_signature", 5),
            "bad_signature",
            "identity signature",
        );
        check(
            &flip("device_signature", 60),
            "bad_signature",
            "device signature",
        );
        check(&flip("x25519_key", 0), "bad_signature", "x25519 key");
        let mut b = bundle.clone();
        b["signing_key"] = sotto_core::encoding::b64_encode(&[0u8; 32]).into();
        check(&b, "invalid_key", "small-order signing key");
        let mut b = bundle.clone();
        let mut identity_point = [0u8; 32];
        identity_point[0] = 1;
        b["identity_key"] = sotto_core::encoding::b64_encode(&identity_point).into();
        check(&b, "invalid_key", "small-order identity key"); // y = 1: the identity point
        let mut b = bundle.clone();
        b["x25519_key"] = sotto_core::encoding::b64_encode(&[0u8; 32]).into();
        check(&b, "invalid_key", "all-zero x25519 key");
        let mut b = bundle.clone();
        b["x25519_key"] = sotto_core::encoding::b64_encode(&[9u8; 31]).into();
        check(&b, "invalid_key", "short x25519 key");
        let mut b = bundle.clone();
        b["version"] = 2.into();
        check(&b, "unsupported_version", "version");
        let mut b = bundle.clone();
        b["user_id"] = Uuid::from_u128(7).to_string().into();
        check(&b, "bad_signature", "user id");
        let mut b = bundle.clone();
        b["user_id"] = "nope".into();
        check(&b, "malformed", "bad uuid");
        let mut b = bundle.clone();
        b["identity_signature"] = "+/+/".into();
        check(&b, "malformed", "base64 alphabet");
        let mut b = bundle.clone();
        b["surprise"] = true.into();
        check(&b, "malformed", "unknown field");
        let mut b = bundle.clone();
        b.as_object_mut().unwrap().remove("device_signature");
        check(&b, "malformed", "missing field");
        if bundle["rsa_key"].is_string() {
            let mut raw = b64(&bundle["rsa_key"]);
            raw.push(0);
            let mut b = bundle.clone();
            b["rsa_key"] = sotto_core::encoding::b64_encode(&raw).into();
            check(&b, "invalid_key", "rsa key with a trailing byte");
        }
        if pinned != other_identity {
            assert_eq!(
                code(verify_bundle(
                    js(bundle).unchecked_into(),
                    Some(other_identity.clone())
                )),
                "identity_mismatch"
            );
        }
        assert_eq!(
            code(verify_bundle(
                js(bundle).unchecked_into(),
                Some(vec![0u8; 5])
            )),
            "invalid_key"
        );
        assert_eq!(
            code(verify_bundle(JsValue::from(5).unchecked_into(), None)),
            "invalid_argument"
        );
    }
}

#[wasm_bindgen_test]
fn tampered_backups_are_refused_with_the_right_code() {
    let v = vectors();
    let pass = &v["backup_passphrase"];
    let rec = &v["backup_recovery_key"];
    let phrase = pass["passphrase"].as_str().unwrap().to_owned();
    let recovery = rec["recovery_key"].as_str().unwrap().to_owned();
    let pblob = hex(&pass["blob"]);
    let rblob = hex(&rec["blob"]);
    let import_p = |blob: &[u8], p: &str| Device::import_passphrase_backup(blob, p.to_owned());
    let import_r = |blob: &[u8], k: &str| Device::import_recovery_backup(blob, k.to_owned());
    let flipped = |blob: &[u8], i: usize| {
        let mut b = blob.to_vec();
        b[i] ^= 1;
        b
    };

    assert_eq!(
        code(import_p(&pblob, "correct horse battery stapler")),
        "wrong_key_or_corrupted"
    );
    assert_eq!(code(import_p(&pblob, "")), "empty_passphrase");
    assert_eq!(code(import_p(&flipped(&pblob, 0), &phrase)), "malformed"); // magic
    assert_eq!(
        code(import_p(&flipped(&pblob, 8), &phrase)),
        "unsupported_version"
    );
    assert_eq!(code(import_p(&flipped(&pblob, 9), &phrase)), "malformed"); // kdf 1 -> 0
    assert_eq!(
        code(import_p(&flipped(&pblob, 10), &phrase)),
        "bad_parameters"
    ); // m_cost 16 GiB
    assert_eq!(
        code(import_p(&flipped(&pblob, 17), &phrase)),
        "bad_parameters"
    ); // t_cost 0
    assert_eq!(
        code(import_p(&flipped(&pblob, 12), &phrase)),
        "wrong_key_or_corrupted"
    ); // m_cost, in range
    assert_eq!(
        code(import_p(&flipped(&pblob, 30), &phrase)),
        "wrong_key_or_corrupted"
    ); // salt
    assert_eq!(
        code(import_p(&flipped(&pblob, pblob.len() - 1), &phrase)),
        "wrong_key_or_corrupted"
    );
    assert_eq!(code(import_p(&pblob[..30], &phrase)), "malformed");
    assert_eq!(
        code(import_p(&vec![0u8; 8 * 1024 + 1], &phrase)),
        "too_large"
    );
    assert_eq!(code(import_r(&pblob, &recovery)), "wrong_key_or_corrupted"); // a passphrase blob

    assert_eq!(
        code(import_r(&rblob, &recovery[..recovery.len() - 1])),
        "bad_recovery_key"
    );
    let last = recovery.chars().last().unwrap();
    let wrong_sum = format!(
        "{}{}",
        &recovery[..recovery.len() - 1],
        if last == '0' { '1' } else { '0' }
    );
    assert_eq!(code(import_r(&rblob, &wrong_sum)), "bad_recovery_key");
    assert_eq!(
        code(import_r(&rblob, &recovery.replace('4', "g"))),
        "bad_recovery_key"
    );
    let other = RecoveryKey::from_bytes([0x43; 32])
        .to_display_string()
        .as_str()
        .to_owned();
    assert_eq!(code(import_r(&rblob, &other)), "wrong_key_or_corrupted");
    assert_eq!(
        code(import_r(&flipped(&rblob, 20), &recovery)),
        "wrong_key_or_corrupted"
    ); // salt
    assert_eq!(
        code(import_r(&flipped(&rblob, rblob.len() - 5), &recovery)),
        "wrong_key_or_corrupted"
    );
    assert_eq!(code(import_p(&rblob, &phrase)), "wrong_key_or_corrupted"); // a recovery blob
}

#[wasm_bindgen_test]
fn tampered_attachments_are_refused_with_the_right_code() {
    let v: Value = serde_json::from_str(ATTACHMENTS).unwrap();
    let a = &v["vectors"][0]; // three chunks of 1024: 9 + 1040 + 1040 + 528 bytes
    assert_eq!(a["name"], "three-chunks");
    let blob = hex(&a["blob"]);
    let pointer = || js(&a["pointer"]).unchecked_into();
    let streamed = |b: &[u8]| -> Result<Vec<u8>, sotto_wasm::Error> {
        let mut dec = AttachmentDecryptor::new(pointer())?;
        let mut out = dec.update(b)?.to_vec();
        out.extend(dec.finish()?.to_vec());
        Ok(out)
    };
    let attachment = |r: Result<Vec<u8>, sotto_wasm::Error>| {
        let (code, detail) = thrown(r);
        assert_eq!(code, "attachment");
        detail.unwrap()
    };
    for i in 0..blob.len() {
        let mut t = blob.clone();
        t[i] ^= 1;
        // One shot: the digest is checked before anything is decrypted.
        assert_eq!(
            attachment(decrypt_attachment(pointer(), &t).map(|p| p.to_vec())),
            "digest_mismatch",
            "byte {i}"
        );
        let want = match i {
            0..=3 => "bad_header",
            4 => "unsupported_version",
            5 => "bad_chunk_size",           // 16 MiB + 1 KiB
            6..=8 => "size_mismatch",        // in range, but not the pointer's
            9..=2088 => "decryption_failed", // chunks 0 and 1 authenticate as they arrive
            _ => "digest_mismatch",          // the final chunk: the digest is checked first
        };
        assert_eq!(attachment(streamed(&t)), want, "streamed, byte {i}");
    }
    for cut in [0, 5, 9, 1049, 2089, blob.len() - 1] {
        assert_eq!(
            attachment(decrypt_attachment(pointer(), &blob[..cut]).map(|p| p.to_vec())),
            "size_mismatch",
            "cut {cut}"
        );
    }
    assert_eq!(attachment(streamed(&blob[..5])), "truncated");
    assert_eq!(attachment(streamed(&blob[..1049])), "size_mismatch");
    let mut long = blob.clone();
    long.push(0);
    assert_eq!(attachment(streamed(&long)), "size_mismatch");

    let with = |field: &str, value: Value| {
        let mut p = a["pointer"].clone();
        p[field] = value;
        js(&p).unchecked_into()
    };
    let mut other_key = b64(&a["pointer"]["key"]);
    other_key[0] ^= 1;
    let other_key = Value::from(sotto_core::encoding::b64_encode(&other_key));
    assert_eq!(
        attachment(decrypt_attachment(with("key", other_key.clone()), &blob).map(|p| p.to_vec())),
        "decryption_failed"
    );
    let zero_sha = Value::from(sotto_core::encoding::b64_encode(&[0u8; 32]));
    assert_eq!(
        attachment(decrypt_attachment(with("sha256", zero_sha), &blob).map(|p| p.to_vec())),
        "digest_mismatch"
    );
    assert_eq!(
        attachment(decrypt_attachment(with("size", 2561.into()), &blob).map(|p| p.to_vec())),
        "bad_pointer"
    );
    assert_eq!(
        attachment(decrypt_attachment(with("chunk_size", 10.into()), &blob).map(|p| p.to_vec())),
        "bad_pointer"
    );
    assert_eq!(
        attachment(decrypt_attachment(with("key", "AAAA".into()), &blob).map(|p| p.to_vec())),
        "bad_pointer"
    );
    assert_eq!(
        code(decrypt_attachment(with("key", "+/".into()), &blob)),
        "malformed"
    );
    assert_eq!(
        code(decrypt_attachment(with("id", "x".into()), &blob)),
        "malformed"
    );
    assert_eq!(
        code(AttachmentDecryptor::new(with("extra", 1.into()))),
        "malformed"
    );
    assert_eq!(
        code(decrypt_attachment(JsValue::NULL.unchecked_into(), &blob)),
        "invalid_argument"
    );
    assert_eq!(
        attachment(encrypted_attachment_size(1.0, Some(100.0)).map(|_| vec![])),
        "bad_chunk_size"
    );
    assert_eq!(
        code(encrypted_attachment_size(-1.0, None)),
        "invalid_argument"
    );
}

#[wasm_bindgen_test]
fn wrong_javascript_values_are_invalid_arguments() {
    let v = vectors();
    let alice = device_from_party(&v["parties"][0]);
    let peer = verified(&v["parties"][1]);
    let room = Uuid::from_u128(9);
    let seal =
        |h: JsValue, r: JsValue| alice.seal(b"x".to_vec(), h.unchecked_into(), r.unchecked_into());
    let ok_recipients = || recipients(&[(&peer, "x25519")]);
    assert!(seal(header(room), ok_recipients()).is_ok());
    assert_eq!(
        code(seal(JsValue::from(1), ok_recipients())),
        "invalid_argument"
    );
    assert_eq!(
        code(seal(header(room), JsValue::from("all"))),
        "invalid_argument"
    );
    assert_eq!(
        code(seal(header(room), js(&serde_json::json!([{"device": {}}])))),
        "invalid_argument"
    );
    assert_eq!(
        code(seal(header(room), js(&serde_json::json!([5])))),
        "invalid_argument"
    );
    let mut h = header(room);
    Reflect::set(&h, &"timestampMs".into(), &JsValue::from("now")).unwrap();
    assert_eq!(code(seal(h, ok_recipients())), "invalid_argument");
    h = header(room);
    Reflect::set(&h, &"roomId".into(), &JsValue::from("room 9")).unwrap();
    assert_eq!(code(seal(h, ok_recipients())), "malformed");
    let suite = obj(&[("device", peer.clone().into()), ("suite", "p256".into())]);
    assert_eq!(
        code(seal(header(room), js_sys::Array::of1(&suite).into())),
        "unsupported_suite"
    );
    assert_eq!(
        code(seal(header(room), js_sys::Array::new().into())),
        "recipient_count"
    );
    assert_eq!(
        code(alice.open(b"", JsValue::from(3).unchecked_into())),
        "invalid_argument"
    );
    fn opts<T: JsCast>(o: Value) -> Option<T> {
        Some(js(&o).unchecked_into())
    }
    assert_eq!(
        code(Device::generate("x", &room.to_string(), None)),
        "malformed"
    );
    assert_eq!(
        code(Device::generate(
            &room.to_string(),
            &room.to_string(),
            opts(serde_json::json!({"rsaBits": 1024}))
        )),
        "invalid_argument"
    );
    assert_eq!(
        code(alice.export_passphrase_backup(
            "p".into(),
            opts(serde_json::json!({"mCostKib": 8192, "tCost": 1}))
        )),
        "invalid_argument"
    );
    assert_eq!(
        code(alice.export_passphrase_backup(
            "p".into(),
            opts(serde_json::json!({"mCostKib": 1, "tCost": 1, "pCost": 1}))
        )),
        "bad_parameters"
    );
}

/// The committed refusal cases of the vectors (`refusals[]`, docs/protocol.md §8):
/// each is refused through the JS-facing API with exactly its recorded `code`.
#[wasm_bindgen_test]
fn committed_refusals_are_refused_with_their_code() {
    let v = vectors();
    let parties = v["parties"].as_array().unwrap();
    let alice = verified(&parties[0]);
    let cases = v["refusals"].as_array().unwrap();
    assert!(cases.len() >= 17, "{} refusal cases", cases.len());
    let mut kinds = std::collections::BTreeSet::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let kind = case["kind"].as_str().unwrap();
        kinds.insert(kind.to_owned());
        let got = match kind {
            "bundle" => code(verify_bundle(
                js(&case["input"]).unchecked_into(),
                case.get("pinned").map(b64),
            )),
            "envelope" => {
                let who = parties
                    .iter()
                    .find(|p| p["name"] == case["open_as"])
                    .unwrap();
                code(open(
                    &device_from_party(who),
                    &hex(&case["input"]),
                    uuid(&case["room_id"]),
                    &alice,
                ))
            }
            "envelope_json" => code(envelope_from_json(case["input"].as_str().unwrap())),
            "backup_passphrase" => code(Device::import_passphrase_backup(
                &hex(&case["input"]),
                case["secret"].as_str().unwrap().to_owned(),
            )),
            other => panic!("unknown refusal kind {other}"),
        };
        assert_eq!(got, case["code"].as_str().unwrap(), "refusal `{name}`");
    }
    assert_eq!(kinds.len(), 4, "{kinds:?}");
}
