//! The bodies of Sotto's fuzz targets: one function per parser of `sotto-core`
//! (and the relay's WebSocket frame parser, which lives in the core as
//! [`ClientFrame::from_json_str`]).
//!
//! Each function takes arbitrary bytes, runs them through a parser and, where
//! the input parses, asserts invariants that can fail (round trips, agreement
//! between two entry points, strictness), not only "does not panic". A failed
//! assertion or a panic inside the core is a finding.
//!
//! The same functions run in two places:
//! - `fuzz/fuzz_targets/<name>.rs`: the cargo-fuzz targets (`scripts/fuzz`);
//! - `tests/replay.rs`: a stable test that replays every committed corpus file
//!   (`fuzz/corpus/<name>/`, `fuzz/regressions/<name>/`) and the seeds.
//!
//! Seeds come from the test vectors in `core/tests/vectors/` ([`seeds`]).

use sha2::{Digest, Sha256};
use sotto_core::api::ws::{ClientFrame, FrameError, ServerFrame};
use sotto_core::attachment::{
    self, AttachmentDecryptor, AttachmentError, AttachmentKey, AttachmentPointer, encrypted_len,
};
use sotto_core::backup::{self, BackupParams, DeviceSecrets, RecoveryKey};
use sotto_core::encoding::B64;
use sotto_core::envelope::{Envelope, EnvelopeJson, HEADER_LEN, Limits, MAX_CIPHERTEXT};
use sotto_core::error::{BundleError, DecodeError};
use sotto_core::keys::{DeviceBundle, VerifiedDevice};
use sotto_core::membership::{self, MembershipError, MembershipStatement, Successor};
use uuid::Uuid;

mod engine_address;
mod engine_tokens;
pub mod seeds;

pub use engine_address::engine_address;
pub use engine_tokens::engine_tokens;

/// A fuzz target body.
pub type Target = fn(&[u8]);

/// Every target, by the name of its `fuzz/fuzz_targets/<name>.rs` and corpus directory.
pub const TARGETS: &[(&str, Target)] = &[
    ("envelope_binary", envelope_binary),
    ("envelope_json", envelope_json),
    ("bundle", bundle),
    ("backup_blob", backup_blob),
    ("attachment_pointer", attachment_pointer),
    ("attachment_stream", attachment_stream),
    ("recovery_key", recovery_key),
    ("ws_frame", ws_frame),
    ("membership", membership),
    ("engine_rooms", engine_rooms),
    ("engine_vault", engine_vault),
    ("engine_feed", engine_feed),
    ("engine_outbox", engine_outbox),
    ("engine_link", engine_link),
    ("engine_open", engine_open),
    ("engine_address", engine_address),
    ("engine_tokens", engine_tokens),
];

/// `Envelope::from_bytes`: an envelope that parses re-encodes to the same bytes,
/// agrees with `peek_header`, survives the JSON form, and respects its limits.
pub fn envelope_binary(data: &[u8]) {
    let peeked = Envelope::peek_header(data);
    let Ok(env) = Envelope::from_bytes(data) else {
        return;
    };
    assert_eq!(env.to_bytes(), data, "binary round trip");
    assert_eq!(peeked.as_ref(), Ok(&env.header), "peek_header disagrees");
    assert_eq!(env.header.to_bytes()[..], data[..HEADER_LEN]);

    assert!(!env.recipients.is_empty());
    assert!(
        env.recipients
            .windows(2)
            .all(|w| w[0].device_id < w[1].device_id),
        "recipients not strictly increasing"
    );
    for r in &env.recipients {
        assert!(r.suite.valid_wrap_len(r.wrapped_key.len()));
    }
    assert!((16..=MAX_CIPHERTEXT).contains(&env.ciphertext.len()));

    // The JSON form is lossless.
    assert_eq!(Envelope::from_json(&env.to_json()).as_ref(), Ok(&env));
    assert_eq!(
        Envelope::from_json_str(&env.to_json_string()).as_ref(),
        Ok(&env)
    );

    // Limits: exactly enough passes, one less of either fails.
    let exact = Limits {
        max_recipients: env.recipients.len(),
        max_envelope_bytes: data.len(),
    };
    assert_eq!(
        Envelope::from_bytes_with_limits(data, &exact).as_ref(),
        Ok(&env)
    );
    let shorter = Limits {
        max_envelope_bytes: data.len() - 1,
        ..exact
    };
    assert_eq!(
        Envelope::from_bytes_with_limits(data, &shorter),
        Err(DecodeError::TooLarge)
    );
    let fewer = Limits {
        max_recipients: env.recipients.len() - 1,
        ..exact
    };
    assert_eq!(
        Envelope::from_bytes_with_limits(data, &fewer),
        Err(DecodeError::RecipientCount)
    );
}

/// `Envelope::from_json_str`: agrees with `EnvelopeJson` + `from_json`; what
/// parses converts to binary and back, and to JSON and back, unchanged.
pub fn envelope_json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = Envelope::from_json_str(text);
    match serde_json::from_str::<EnvelopeJson>(text) {
        Ok(j) if text.len() <= 2 * sotto_core::envelope::MAX_ENVELOPE_BYTES => {
            assert_eq!(
                Envelope::from_json(&j),
                parsed,
                "two JSON entry points disagree"
            );
            if let Ok(env) = &parsed {
                assert_eq!(&env.to_json(), &j, "JSON form is not canonical");
            }
        }
        _ => assert!(
            parsed.is_err(),
            "from_json_str accepted what EnvelopeJson refuses"
        ),
    }
    let Ok(env) = parsed else {
        return;
    };
    let bytes = env.to_bytes();
    assert_eq!(Envelope::from_bytes(&bytes).as_ref(), Ok(&env));
    let again = serde_json::to_string(&env.to_json()).expect("EnvelopeJson serializes");
    assert_eq!(again, env.to_json_string());
    assert_eq!(Envelope::from_json_str(&again).as_ref(), Ok(&env));
}

/// `DeviceBundle` from JSON, then `verify`: serde round trip; `verify` and
/// `from_json_verified` agree; a verified bundle's keys are the bundle's, and
/// any change to a signed field or a signature makes it fail.
pub fn bundle(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let via_json = DeviceBundle::from_json_verified(text);
    let Ok(bundle) = serde_json::from_str::<DeviceBundle>(text) else {
        assert!(matches!(
            via_json,
            Err(BundleError::Decode(DecodeError::Json(_)))
        ));
        return;
    };
    let again = serde_json::to_string(&bundle).expect("a bundle serializes");
    assert_eq!(
        serde_json::from_str::<DeviceBundle>(&again).expect("re-parses"),
        bundle,
        "bundle JSON round trip"
    );
    let verified = bundle.verify();
    assert_eq!(verified, via_json, "verify and from_json_verified disagree");
    let Ok(device) = verified else {
        return;
    };
    assert_eq!(device.user_id(), bundle.user_id);
    assert_eq!(device.device_id(), bundle.device_id);
    assert_eq!(
        &device.identity_key().to_bytes()[..],
        bundle.identity_key.as_bytes()
    );
    assert_eq!(&device.signing_key()[..], bundle.signing_key.as_bytes());
    assert_eq!(&device.x25519_key()[..], bundle.x25519_key.as_bytes());
    assert_eq!(device.has_rsa(), bundle.rsa_key.is_some());
    assert_eq!(
        bundle.verify_for(device.identity_key()).as_ref(),
        Ok(&device)
    );

    let mut other = bundle.clone();
    other.user_id = Uuid::from_u128(bundle.user_id.as_u128() ^ 1);
    assert_eq!(other.verify(), Err(BundleError::BadIdentitySignature));
    let mut other = bundle.clone();
    other.device_id = Uuid::from_u128(bundle.device_id.as_u128() ^ 1);
    assert_eq!(other.verify(), Err(BundleError::BadIdentitySignature));
    let mut other = bundle.clone();
    other.identity_signature.0[0] ^= 1;
    assert!(
        other.verify().is_err(),
        "tampered identity signature verified"
    );
    let mut other = bundle.clone();
    other.device_signature.0[0] ^= 1;
    assert!(
        other.verify().is_err(),
        "tampered device signature verified"
    );
    let mut other = bundle;
    other.rsa_key = match other.rsa_key {
        Some(_) => None,
        None => Some(B64(vec![0x30, 0x00])),
    };
    assert!(
        other.verify().is_err(),
        "adding or removing the RSA key verified"
    );
}

/// The fixed recovery key of the `backup_blob` target (the test vector's).
pub const FUZZ_RECOVERY_KEY: [u8; 32] = [0x42; 32];
const BACKUP_MAGIC: &[u8; 8] = b"SOTTOBAK";
const RECOVERY_INFO: &[u8] = b"SOTTO-v1 backup recovery-key";
const BACKUP_SALT: [u8; 16] = [0x5a; 16];
const BACKUP_NONCE: [u8; 12] = [0xa5; 12];
/// Length of the secrets plaintext without an RSA key.
const SECRETS_LEN_NO_RSA: usize = 16 + 16 + 32 * 3 + 2;

/// Key backups. The first byte picks the mode:
///
/// - even: the rest is a blob, imported with the fixed recovery key
///   ([`FUZZ_RECOVERY_KEY`]), and with a passphrase unless its header holds
///   in-range Argon2 parameters (see below);
/// - odd: the rest is the *secrets plaintext*, which the harness encrypts into
///   a valid recovery-key blob (the format of docs/protocol.md), so that the
///   authenticated part of the parser (`decode_secrets`, PKCS#8) is reached.
///
/// Argon2id runs with at least 8 MiB and one pass (~10 ms) on any blob whose
/// parameters are in range: far too slow for millions of runs. Such blobs are
/// not given to `import_with_passphrase` here; every other blob is, and must be
/// refused before the KDF (an out-of-range blob that reached it would allocate
/// up to 4 TiB and fail the run). The framing parser they share with the
/// recovery-key path is fuzzed on every input.
pub fn backup_blob(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        backup_raw(rest);
    } else {
        backup_secrets(rest);
    }
}

fn backup_raw(blob: &[u8]) {
    let key = RecoveryKey::from_bytes(FUZZ_RECOVERY_KEY);
    if let Ok(secrets) = backup::import_with_recovery_key(blob, &key) {
        check_reexport(&secrets, &key);
    }
    if !argon2_params_in_range(blob) {
        assert!(
            backup::import_with_passphrase(blob, b"fuzz").is_err(),
            "a passphrase blob with out-of-range parameters imported"
        );
    }
}

/// Whether `blob` is a passphrase blob whose Argon2 parameters are in range,
/// i.e. whether `import_with_passphrase` could get as far as the KDF.
fn argon2_params_in_range(blob: &[u8]) -> bool {
    let (Some(&1), Some(params)) = (blob.get(9), blob.get(10..22)) else {
        return false;
    };
    let word =
        |i: usize| u32::from_be_bytes([params[i], params[i + 1], params[i + 2], params[i + 3]]);
    (BackupParams::MIN_M_COST_KIB..=BackupParams::MAX_M_COST_KIB).contains(&word(0))
        && (1..=BackupParams::MAX_T_COST).contains(&word(4))
        && (1..=BackupParams::MAX_P_COST).contains(&word(8))
}

/// A valid recovery-key blob (under [`FUZZ_RECOVERY_KEY`]) around `plaintext`.
pub fn recovery_blob_around(plaintext: &[u8]) -> Vec<u8> {
    let mut blob = BACKUP_MAGIC.to_vec();
    blob.extend_from_slice(&[1, 2]);
    blob.extend_from_slice(&BACKUP_SALT);
    blob.extend_from_slice(&BACKUP_NONCE);
    let mut key = [0u8; 32];
    hkdf::Hkdf::<Sha256>::new(Some(&BACKUP_SALT), &FUZZ_RECOVERY_KEY)
        .expand(RECOVERY_INFO, &mut key)
        .expect("32 bytes is a valid HKDF-SHA256 length");
    let ct = sotto_core::primitives::aes256gcm_encrypt(&key, &BACKUP_NONCE, &blob, plaintext)
        .expect("AES-GCM encrypts");
    blob.extend_from_slice(&ct);
    blob
}

fn backup_secrets(plaintext: &[u8]) {
    let key = RecoveryKey::from_bytes(FUZZ_RECOVERY_KEY);
    let blob = recovery_blob_around(plaintext);
    let result = backup::import_with_recovery_key(&blob, &key);
    let rsa_len = plaintext
        .get(SECRETS_LEN_NO_RSA - 2..SECRETS_LEN_NO_RSA)
        .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])));
    let Ok(secrets) = result else {
        // Without an RSA key every well-framed plaintext is a valid backup.
        assert!(
            !(rsa_len == Some(0) && plaintext.len() == SECRETS_LEN_NO_RSA),
            "valid secrets without RSA refused: {result:?}"
        );
        return;
    };
    let rsa_len = rsa_len.expect("a decoded plaintext holds the RSA length");
    assert_eq!(plaintext.len(), SECRETS_LEN_NO_RSA + rsa_len);
    assert_eq!(secrets.user_id.as_bytes()[..], plaintext[..16]);
    assert_eq!(secrets.device_id.as_bytes()[..], plaintext[16..32]);
    assert_eq!(secrets.identity.to_seed()[..], plaintext[32..64]);
    assert_eq!(secrets.device.signing_seed()[..], plaintext[64..96]);
    assert_eq!(secrets.device.x25519_secret()[..], plaintext[96..128]);
    let rsa = secrets
        .device
        .rsa_pkcs8_der()
        .expect("a decoded RSA key encodes");
    assert_eq!(rsa.is_some(), rsa_len > 0);
    check_reexport(&secrets, &key);
}

/// Exporting what was imported and importing it again gives the same secrets.
fn check_reexport(secrets: &DeviceSecrets, key: &RecoveryKey) {
    let blob = backup::export_with_recovery_key(secrets, key).expect("re-export");
    let back = backup::import_with_recovery_key(&blob, key).expect("re-import");
    assert_eq!(back.user_id, secrets.user_id);
    assert_eq!(back.device_id, secrets.device_id);
    assert_eq!(*back.identity.to_seed(), *secrets.identity.to_seed());
    assert_eq!(*back.device.signing_seed(), *secrets.device.signing_seed());
    assert_eq!(
        *back.device.x25519_secret(),
        *secrets.device.x25519_secret()
    );
    let der = |s: &DeviceSecrets| {
        s.device
            .rsa_pkcs8_der()
            .expect("RSA key encodes")
            .map(|d| d.to_vec())
    };
    assert_eq!(der(&back), der(secrets));
}

/// `AttachmentPointer` from JSON: serde round trip; `validate` and
/// `AttachmentDecryptor::for_pointer` agree; a valid pointer's decryptor
/// accepts the matching header and nothing shorter than a whole blob.
pub fn attachment_pointer(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(pointer) = serde_json::from_str::<AttachmentPointer>(text) else {
        return;
    };
    let again = serde_json::to_string(&pointer).expect("a pointer serializes");
    assert_eq!(
        serde_json::from_str::<AttachmentPointer>(&again).expect("re-parses"),
        pointer,
        "pointer JSON round trip"
    );
    let valid = pointer.validate();
    let decryptor = AttachmentDecryptor::for_pointer(&pointer);
    assert_eq!(
        valid.as_ref().err(),
        decryptor.as_ref().err(),
        "validate and for_pointer disagree"
    );
    let Ok(mut decryptor) = decryptor else {
        assert!(pointer.decrypt(&[]).is_err());
        return;
    };
    assert_eq!(
        encrypted_len(pointer.size, pointer.chunk_size),
        Some(pointer.encrypted_size)
    );
    assert!(pointer.attachment_key().is_ok());
    assert!(pointer.digest().is_ok());
    assert_eq!(
        pointer.decrypt(&[]).err(),
        Some(AttachmentError::SizeMismatch)
    );

    // The header the pointer announces is accepted, another chunk size is not.
    let header = |chunk_size: u32| {
        let mut h = attachment::MAGIC.to_vec();
        h.push(attachment::FORMAT_VERSION);
        h.extend_from_slice(&chunk_size.to_be_bytes());
        h
    };
    let released = decryptor.update(&header(pointer.chunk_size));
    assert!(released.is_ok_and(|p| p.is_empty()));
    assert_eq!(decryptor.finish().err(), Some(AttachmentError::Truncated));
    let other = if pointer.chunk_size == attachment::MIN_CHUNK_SIZE {
        attachment::MAX_CHUNK_SIZE
    } else {
        attachment::MIN_CHUNK_SIZE
    };
    let mut decryptor = AttachmentDecryptor::for_pointer(&pointer).expect("valid pointer");
    assert_eq!(
        decryptor.update(&header(other)).err(),
        Some(AttachmentError::SizeMismatch)
    );
}

/// The keys `attachment_stream` chooses from (the first byte of the input):
/// those of the three attachment test vectors, and all zeros.
pub const ATTACHMENT_KEYS: [[u8; 32]; 4] = [
    [
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24,
        25, 26, 27, 28, 29, 30, 31,
    ],
    [0x42; 32],
    [0xee; 32],
    [0; 32],
];

/// Most cut points an `attachment_stream` input can name.
pub const MAX_CUTS: u8 = 8;

/// The `attachment_stream` input for `blob` under key `key_index`, fed in
/// pieces of the given lengths (then the rest).
pub fn attachment_stream_input(key_index: u8, cuts: &[u16], blob: &[u8]) -> Vec<u8> {
    let mut out = vec![key_index, u8::try_from(cuts.len()).unwrap_or(0) % MAX_CUTS];
    for c in cuts {
        out.extend_from_slice(&c.to_be_bytes());
    }
    out.extend_from_slice(blob);
    out
}

/// Attachment blobs: `key index u8 ‖ n u8 ‖ n × piece length u16 ‖ blob`. The
/// streaming `AttachmentDecryptor` is fed the blob in those pieces (then the
/// rest) and must agree exactly with the one-shot `decrypt`; a blob that
/// decrypts has the size its plaintext implies, decrypts through a pointer
/// too, and stops decrypting when its last byte is cut.
pub fn attachment_stream(data: &[u8]) {
    let [key_index, n, rest @ ..] = data else {
        return;
    };
    let mut rest = rest;
    let mut cuts = Vec::new();
    for _ in 0..(n % MAX_CUTS) {
        let [a, b, tail @ ..] = rest else {
            break;
        };
        cuts.push(usize::from(u16::from_be_bytes([*a, *b])));
        rest = tail;
    }
    let blob = rest;
    let key_bytes = ATTACHMENT_KEYS[usize::from(*key_index) % ATTACHMENT_KEYS.len()];
    let key = AttachmentKey::from_bytes(key_bytes);

    let streamed = decrypt_in_pieces(AttachmentDecryptor::new(&key), blob, &cuts);
    let digest: [u8; 32] = Sha256::digest(blob).into();
    let one_shot = attachment::decrypt(&key, blob, &digest).map(|p| p.to_vec());
    assert_eq!(
        streamed, one_shot,
        "streaming and one-shot decryption disagree"
    );

    let mut wrong = digest;
    wrong[0] ^= 1;
    assert_eq!(
        attachment::decrypt(&key, blob, &wrong).err(),
        Some(AttachmentError::DigestMismatch)
    );

    let Ok(plaintext) = one_shot else {
        return;
    };
    let chunk_size = u32::from_be_bytes([blob[5], blob[6], blob[7], blob[8]]);
    let size = u64::try_from(plaintext.len()).expect("fits");
    let encrypted_size = u64::try_from(blob.len()).expect("fits");
    assert_eq!(encrypted_len(size, chunk_size), Some(encrypted_size));

    let pointer = AttachmentPointer {
        id: Uuid::nil(),
        key: B64(key_bytes.to_vec()),
        sha256: B64(digest.to_vec()),
        size,
        encrypted_size,
        chunk_size,
        content_type: None,
        name: None,
    };
    assert_eq!(
        pointer.decrypt(blob).map(|p| p.to_vec()).as_ref(),
        Ok(&plaintext)
    );
    let checked = AttachmentDecryptor::for_pointer(&pointer).expect("valid pointer");
    assert_eq!(
        decrypt_in_pieces(checked, blob, &cuts).as_ref(),
        Ok(&plaintext)
    );
    let cut = &blob[..blob.len() - 1];
    let cut_digest: [u8; 32] = Sha256::digest(cut).into();
    assert!(attachment::decrypt(&key, cut, &cut_digest).is_err());
}

fn decrypt_in_pieces(
    mut dec: AttachmentDecryptor,
    blob: &[u8],
    cuts: &[usize],
) -> Result<Vec<u8>, AttachmentError> {
    let mut out = Vec::new();
    let mut rest = blob;
    for &len in cuts {
        let (piece, tail) = rest.split_at(len.min(rest.len()));
        out.extend_from_slice(&dec.update(piece)?);
        rest = tail;
    }
    out.extend_from_slice(&dec.update(rest)?);
    out.extend_from_slice(&dec.finish()?);
    Ok(out)
}

/// `RecoveryKey::parse`: what parses displays as the canonical form of the
/// input, the canonical form parses to the same key, and a changed checksum
/// digit is refused.
pub fn recovery_key(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(key) = RecoveryKey::parse(text) else {
        return;
    };
    let shown = key.to_display_string();
    assert_eq!(shown.len(), 17 * 4 + 16);
    for (i, group) in shown.split('-').enumerate() {
        assert!(i < 17);
        assert_eq!(group.len(), 4);
        assert!(
            group
                .bytes()
                .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
        );
    }
    let normalized: String = text
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\n' | '\t'))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    assert_eq!(
        normalized,
        shown.replace('-', ""),
        "display is not the input"
    );
    let again = RecoveryKey::parse(&shown).expect("the display form parses");
    assert_eq!(*again.to_display_string(), *shown);

    let mut bad = shown.to_string();
    let last = bad.pop().expect("non-empty");
    bad.push(if last == '0' { '1' } else { '0' });
    assert!(RecoveryKey::parse(&bad).is_err(), "a wrong checksum parsed");
}

/// The relay's WebSocket text-frame parser, `ClientFrame::from_json_str`: what
/// parses round-trips through JSON, `auth` tokens never reach `Debug`, errors
/// are the strict rules on top of serde's, and a `send`'s envelope goes on to
/// the envelope parser as it does in the relay. Also the client's parse of the
/// relay's frames (`ServerFrame`), which must round-trip.
pub fn ws_frame(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match ClientFrame::from_json_str(text) {
        Ok(frame) => {
            let json = serde_json::to_string(&frame).expect("a frame serializes");
            assert_eq!(
                ClientFrame::from_json_str(&json).as_ref(),
                Ok(&frame),
                "client frame round trip"
            );
            match &frame {
                ClientFrame::Auth { .. } => assert_eq!(
                    format!("{frame:?}"),
                    format!(
                        "{:?}",
                        ClientFrame::Auth {
                            token: String::new()
                        }
                    ),
                    "Debug shows the token"
                ),
                ClientFrame::Send { envelope, .. } => envelope_binary(envelope.as_bytes()),
                _ => {}
            }
        }
        Err(e) => {
            let lenient = serde_json::from_str::<ClientFrame>(text);
            match e {
                FrameError::PingHasFields => {
                    assert_eq!(lenient.ok(), Some(ClientFrame::Ping));
                }
                _ => assert!(lenient.is_err(), "refused a frame serde accepts: {e}"),
            }
        }
    }
    if let Ok(frame) = serde_json::from_str::<ServerFrame>(text) {
        let json = serde_json::to_string(&frame).expect("a frame serializes");
        assert_eq!(
            serde_json::from_str::<ServerFrame>(&json).expect("re-parses"),
            frame,
            "server frame round trip"
        );
    }
}

/// Alice's device from `membership_v1.json` (the signer of the vector statements).
fn membership_signer() -> &'static VerifiedDevice {
    static DEVICE: std::sync::OnceLock<VerifiedDevice> = std::sync::OnceLock::new();
    DEVICE.get_or_init(|| {
        let v: serde_json::Value =
            serde_json::from_str(seeds::MEMBERSHIP_V1).expect("membership_v1.json parses");
        let bundle: DeviceBundle =
            serde_json::from_value(v["bundles"]["alice"].clone()).expect("Alice's bundle");
        bundle.verify().expect("Alice's bundle verifies")
    })
}

/// `MembershipStatement::from_bytes`: a statement that parses re-encodes to the
/// same bytes and keeps its invariants (epoch ≥ 1, members strictly ascending
/// with the owner among them); it is `Same` as itself and never `Newer` than
/// itself; a first statement is accepted exactly when its owner signed it; and
/// when it verifies under the vector signer, any changed signature byte fails.
pub fn membership(data: &[u8]) {
    let Ok(s) = MembershipStatement::from_bytes(data) else {
        return;
    };
    assert_eq!(s.to_bytes(), data, "binary round trip");
    assert!(s.epoch() >= 1);
    assert!(
        s.members().windows(2).all(|w| w[0] < w[1]),
        "members ascending"
    );
    assert!(s.lists(s.owner()), "the owner is a member");
    assert!(s.members().len() <= membership::MAX_MEMBERS);
    let room = s.room_id();
    assert_eq!(
        membership::check_successor(room, Some(&s), &s),
        Ok(Successor::Same)
    );
    let first = membership::check_successor(room, None, &s);
    assert_eq!(
        first.is_ok(),
        s.signer_user() == s.owner(),
        "first statement rule"
    );
    if first.is_err() {
        assert_eq!(first, Err(MembershipError::NotOwner));
    }
    let other_room = Uuid::from_u128(room.as_u128() ^ 1);
    assert_eq!(
        membership::check_successor(other_room, None, &s),
        Err(MembershipError::WrongRoom)
    );
    let signer = membership_signer();
    match s.verify_signature(signer) {
        Ok(()) => {
            let mut forged = data.to_vec();
            let last = forged.len() - 1;
            forged[last] ^= 1;
            let f = MembershipStatement::from_bytes(&forged).expect("only the signature changed");
            assert_eq!(
                f.verify_signature(signer),
                Err(MembershipError::BadSignature)
            );
        }
        Err(MembershipError::SignerMismatch) => {
            assert!(s.signer_user() != signer.user_id() || s.signer_device() != signer.device_id())
        }
        Err(e) => assert_eq!(e, MembershipError::BadSignature),
    }
}

/// Four people with fixed keys for [`engine_rooms`]: user, device, keys, and
/// their verified device.
pub(crate) struct EnginePerson {
    pub(crate) user: Uuid,
    pub(crate) device: Uuid,
    pub(crate) keys: sotto_core::keys::DeviceKeys,
    pub(crate) verified: VerifiedDevice,
}

pub(crate) fn engine_people() -> &'static [EnginePerson; 4] {
    static PEOPLE: std::sync::OnceLock<[EnginePerson; 4]> = std::sync::OnceLock::new();
    PEOPLE.get_or_init(|| {
        std::array::from_fn(|i| {
            let n = u8::try_from(i).expect("four people") + 1;
            let user = Uuid::from_u128(0x1000 + u128::from(n));
            let device = Uuid::from_u128(0x2000 + u128::from(n));
            let identity = sotto_core::keys::IdentityKeyPair::from_seed(&[n; 32]);
            let keys =
                sotto_core::keys::DeviceKeys::from_secret_parts(&[n; 32], &[n ^ 0x55; 32], None)
                    .expect("fixed device keys");
            let verified = DeviceBundle::create(&identity, &keys, user, device)
                .expect("a bundle")
                .verify()
                .expect("it verifies");
            EnginePerson {
                user,
                device,
                keys,
                verified,
            }
        })
    })
}

/// The statement person `signer & 3` of [`engine_people`] signs in `room`
/// for owner `owner & 3`, naming the people of `mask` (bit `i`: person `i`)
/// and the owner, at `epoch` (at least 1). Signing is the cost of an engine
/// target's step: each distinct statement is signed once per process.
pub(crate) fn statement_by(
    room: Uuid,
    signer: u8,
    owner: u8,
    mask: u8,
    epoch: u8,
) -> Option<Vec<u8>> {
    type Key = (Uuid, u8, u8, u8, u8);
    type Cache = std::collections::HashMap<Key, Option<Vec<u8>>>;
    static CACHE: std::sync::OnceLock<std::sync::Mutex<Cache>> = std::sync::OnceLock::new();
    let key = (room, signer & 3, owner & 3, mask, epoch);
    let cache = CACHE.get_or_init(Default::default);
    if let Some(hit) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return hit;
    }
    let people = engine_people();
    let signer = &people[usize::from(signer & 3)];
    let owner = people[usize::from(owner & 3)].user;
    let mut members: Vec<Uuid> = people
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, p)| p.user)
        .collect();
    members.push(owner);
    let value = MembershipStatement::sign(
        room,
        u64::from(epoch).max(1),
        owner,
        &members,
        membership::Signer {
            user: signer.user,
            device: signer.device,
            keys: &signer.keys,
        },
    )
    .ok()
    .map(|s| s.to_bytes());
    if let Ok(mut c) = cache.lock() {
        c.insert(key, value.clone());
    }
    value
}

/// The engine's room membership (`sotto_engine::Rooms`) driven by arbitrary
/// inputs, as a hostile relay and hostile members could feed it: relay views of
/// a group and a direct room, honestly signed statements by anyone with any
/// owner, epoch and members, raw bytes as statements, the owner's own signing
/// and forwarding, and a save/reload. After every step: whatever it is told,
/// the engine never names as a recipient a user the relay does not list, nor,
/// in the group, one the held statement (or the first-seen pin) does not name,
/// nor, in the direct room, anyone but this user and the pinned peer; the held
/// statement's epoch never goes down, and its owner changes only by a
/// statement the previous owner signed; a reloaded engine decides the same.
pub fn engine_rooms(data: &[u8]) {
    use sotto_engine::{Rooms, SendRefused};
    let people = engine_people();
    let me = &people[0];
    let group = Uuid::from_u128(0x7001);
    let direct = Uuid::from_u128(0x7002);
    let pick = |mask: u8| -> Vec<Uuid> {
        people
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, p)| p.user)
            .collect()
    };
    let mut rooms = Rooms::load(me.user, []);
    if data.first().is_some_and(|b| b & 1 == 1) {
        rooms.adopt_legacy([group]);
    }
    // What the relay last said of each room's members (the harness's mirror).
    let mut listed: std::collections::BTreeMap<Uuid, Vec<Uuid>> = Default::default();
    // The newest `member_epoch` the engine has seen of each room (its mirror).
    let mut epochs: std::collections::BTreeMap<Uuid, u64> = Default::default();
    let mut input = data.get(1..).unwrap_or_default().chunks_exact(4);
    let mut steps = 0;
    while let Some(op) = input.next() {
        steps += 1;
        if steps > 24 {
            break;
        }
        let [what, a, b, c] = [op[0], op[1], op[2], op[3]];
        let room = if what & 0x80 == 0 { group } else { direct };
        let held_before = rooms.statement(group);
        match what & 0x07 {
            0 => {
                let members = pick(a);
                let invited = pick(b);
                let owner = people[usize::from(c & 3)].user;
                // The relay's `member_epoch`: the next one, or (top bit) an older
                // answer, which the engine ignores.
                let newest = epochs.entry(room).or_insert(0);
                let epoch = if c & 0x80 == 0 {
                    *newest + u64::from(c >> 4 & 1)
                } else {
                    newest.saturating_sub(u64::from(c >> 4 & 7))
                };
                if epoch >= *newest {
                    *newest = epoch;
                    listed.insert(room, members.clone());
                }
                let _ = rooms.observe_parts(room, epoch, room == direct, owner, members, invited);
            }
            1 => {
                // A statement signed by person `a & 3`, owner `b & 3`, epoch `c`.
                let signer = &people[usize::from(a & 3)];
                if let Some(bytes) = statement_by(room, a & 3, b & 3, a >> 2, c) {
                    let verified = (b & 0x80 == 0).then_some(&signer.verified);
                    let _ = rooms.receive(room, &bytes, verified, &[me.device]);
                }
            }
            2 => {
                // Raw bytes as a statement, "signed" by anyone.
                let len = usize::from(a);
                let raw: Vec<u8> = input
                    .by_ref()
                    .take(len.div_ceil(4))
                    .flatten()
                    .copied()
                    .collect();
                let signer = &people[usize::from(b & 3)].verified;
                let _ = rooms.receive(room, &raw, Some(signer), &[]);
                // The same bytes as saved record bytes.
                if let Ok(r) = sotto_engine::RoomRecord::from_bytes(&raw) {
                    assert_eq!(
                        r.to_bytes(),
                        raw,
                        "a record that parses re-encodes the same"
                    );
                }
            }
            3 => {
                if let Some(members) = rooms.owner_update(room) {
                    let _ = rooms.sign(room, &members, me.device, &me.keys);
                }
            }
            4 => {
                // The owner adds someone (signing first), the relay answers
                // (`added`), or reports a join (`member_added`).
                let user = people[usize::from(a & 3)].user;
                match b & 3 {
                    0 => {
                        let members = rooms.adding(room, user);
                        let _ = rooms.sign(room, &members, me.device, &me.keys);
                    }
                    1 => {
                        let _ = rooms.sign_adding(room, user, me.device, &me.keys);
                    }
                    2 => rooms.added(room, user),
                    _ => rooms.member_added(room),
                }
            }
            5 => {
                let targets: Vec<(Uuid, Uuid)> =
                    people.iter().map(|p| (p.user, p.device)).collect();
                if rooms.reposts(room, &targets).is_some() {
                    rooms.announce(room, targets.iter().map(|t| t.1));
                }
            }
            6 => {
                // Save and reload: the reloaded engine, shown the same views, decides the same.
                let saved: Vec<_> = rooms
                    .take_changes()
                    .into_iter()
                    .filter_map(|(id, r)| r.map(|r| (id, r)))
                    .collect();
                // Through the record bytes a store keeps.
                let mut all: std::collections::BTreeMap<Uuid, sotto_engine::RoomRecord> =
                    Default::default();
                for id in [group, direct] {
                    if let Some(r) = rooms.record(id) {
                        let back = sotto_engine::RoomRecord::from_bytes(&r.to_bytes());
                        assert_eq!(back.as_ref(), Ok(r), "record bytes round trip");
                        all.insert(id, r.clone());
                    }
                }
                assert!(
                    saved.iter().all(|(id, r)| all.get(id) == Some(r)),
                    "changes are the records"
                );
                let mut reloaded = Rooms::load(me.user, all);
                // The relay's view is not persisted: a reloaded engine fetches it
                // before it names anyone.
                assert_eq!(reloaded.recipients(group), Err(SendRefused::Unknown));
                assert_eq!(reloaded.recipients(direct), Err(SendRefused::Unknown));
                let _ = reloaded.take_changes();
                rooms = reloaded;
                listed.clear();
                epochs.clear();
            }
            _ => {
                // One room's view, or (a new connection) all: then the
                // epochs start again too.
                if b & 0x80 != 0 {
                    rooms.forget_relay_view(None);
                    listed.clear();
                    epochs.clear();
                } else {
                    rooms.forget_relay_view(Some(room));
                    listed.remove(&room);
                }
                // This device creating the room, or asking for the direct room with someone.
                match a & 3 {
                    1 => rooms.created(room),
                    2 => rooms.expect_peer(room, people[usize::from(b & 3)].user),
                    _ => {}
                }
            }
        }
        // The held statement of the group never goes back, and changes owner only
        // through a statement the previous owner signed.
        let held = rooms.statement(group);
        if let (Some(old), Some(new)) = (&held_before, &held) {
            assert!(new.epoch() >= old.epoch(), "epoch went down");
            if new.owner() != old.owner() {
                assert_eq!(
                    new.signer_user(),
                    old.owner(),
                    "ownership passed without the owner"
                );
            }
        }
        for room in [group, direct] {
            let Ok(users) = rooms.recipients(room) else {
                continue;
            };
            let relay = listed
                .get(&room)
                .expect("recipients only with a relay view");
            for u in &users {
                assert!(relay.contains(u), "a recipient the relay does not list");
            }
            // The kind the engine pinned at first sight (a room holding a
            // statement then is a group, whatever the relay says later).
            let record = rooms.record(room).expect("a record");
            if !record.direct {
                let named: Vec<Uuid> = match rooms.statement(room) {
                    Some(s) => s.members().to_vec(),
                    None => record.first_seen.clone().expect("a pin when no statement"),
                };
                for u in &users {
                    assert!(named.contains(u), "a recipient no statement names");
                }
            } else {
                let peer = record.peer;
                for u in &users {
                    assert!(
                        *u == me.user || Some(*u) == peer,
                        "a third party in a direct room"
                    );
                }
            }
        }
    }
}

/// `sotto_engine::vault`: local history items and the wrapped store key.
///
/// The input is used three ways under one fixed store key: as a sealed item
/// (arbitrary bytes never open: no forgery), as the JSON of an item (sealed,
/// it opens to the same bytes padded with spaces to their Padmé length; typed, it opens exactly when it parses as an
/// item of that room and `seq`, and then equals the parse; an item re-sealed
/// typed opens the same), and as a wrapped store key (anything but a 96-byte
/// `SOTTOSK` v1 blob is malformed; a blob with Argon2 parameters out of range
/// is refused before any key derivation).
pub fn engine_vault(data: &[u8]) {
    use rand_core::SeedableRng;
    use sotto_engine::vault::{HistoryItem, StoreKey, VaultError};

    let mut rng = rand_chacha::ChaCha20Rng::from_seed([5; 32]);
    let store = StoreKey::generate(&mut rng);
    let key = store.history();
    let (room, seq) = (
        Uuid::from_u128(0x0190_f0f0_0000_7000_8000_0000_0000_0001),
        42u64,
    );

    assert!(
        key.open_bytes(room, seq, data).is_err(),
        "arbitrary bytes opened as a sealed item"
    );
    assert!(key.open(room, seq, data).is_err());

    match key.seal_bytes(room, seq, data, &mut rng) {
        Ok(sealed) => {
            let opened = key
                .open_bytes(room, seq, &sealed)
                .expect("a sealed item opens");
            let padded = sotto_core::envelope::padding::padme_len(data.len());
            assert_eq!(
                opened.len(),
                padded.min(512 * 1024 - 29),
                "padded to its Padmé length"
            );
            assert_eq!(
                opened.get(..data.len()),
                Some(data),
                "sealed bytes open unchanged"
            );
            assert!(
                opened.iter().skip(data.len()).all(|b| *b == b' '),
                "padding is spaces"
            );
            assert!(
                key.open_bytes(room, seq + 1, &sealed).is_err(),
                "moved in seq"
            );
            assert!(
                key.open_bytes(Uuid::nil(), seq, &sealed).is_err(),
                "moved to another room"
            );
            match serde_json::from_slice::<HistoryItem>(data) {
                Ok(item) if item.room_id == room && item.seq == seq => {
                    let typed = key
                        .open(room, seq, &sealed)
                        .expect("a parsing item opens typed");
                    assert!(typed == item, "typed open differs from the parse");
                    let again = key.seal(&item, &mut rng).expect("an item seals");
                    assert!(key.open(room, seq, &again).expect("re-sealed opens") == item);
                }
                _ => assert_eq!(
                    key.open(room, seq, &sealed).err(),
                    Some(VaultError::Corrupted)
                ),
            }
        }
        Err(e) => {
            assert_eq!(e, VaultError::Malformed);
            assert!(
                data.len() > 500 * 1024,
                "refused to seal {} bytes",
                data.len()
            );
        }
    }

    let framed = data.len() == 96 && data.get(..8) == Some(b"SOTTOSK\x01".as_slice());
    let param = |i: usize| {
        data.get(i..i + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map_or(0, u32::from_be_bytes)
    };
    let in_range = (BackupParams::MIN_M_COST_KIB..=BackupParams::MAX_M_COST_KIB)
        .contains(&param(8))
        && (1..=BackupParams::MAX_T_COST).contains(&param(12))
        && (1..=BackupParams::MAX_P_COST).contains(&param(16));
    if !framed {
        assert_eq!(
            StoreKey::unwrap(data, b"pass").err(),
            Some(VaultError::Malformed)
        );
    } else if !in_range {
        assert_eq!(
            StoreKey::unwrap(data, b"pass").err(),
            Some(VaultError::BadParameters)
        );
    }
    // (A framed blob with parameters in range costs an Argon2id derivation of
    // at least 8 MiB: not run here; the engine's tests cover it.)
}

/// `sotto_engine::feed`: the engine's handling of relay frames, driven as the
/// clients drive it. The input is lines: a relay frame in JSON (parsed by the
/// core's frame parser, as both clients do), or a control line: `S` stores the
/// step (applies its changes), `C` crashes (drops the step, reconnects from
/// what is stored), `R` takes the receipts. Invariants: a stored cursor never
/// moves back; a message is stored as shown at most once (per room and seq,
/// and per sender message id); a step's changes name each room, id and place
/// once; `resume` carries the feed's own cursor; receipts name only settled
/// messages; deletions leave no kept item at their place.
pub fn engine_feed(data: &[u8]) {
    use sotto_engine::feed::{Arrival, Changes, Deletion, Feed, Resume, Seen};
    use std::collections::{BTreeMap, BTreeSet};

    let me = Uuid::from_u128(1);
    let my_device = Uuid::from_u128(2);
    let mut feed = Feed::new(me, my_device);
    // The store.
    let mut cursors: BTreeMap<Uuid, u64> = BTreeMap::new();
    let mut seen: BTreeMap<(Uuid, Uuid), (Uuid, u64)> = BTreeMap::new();
    let mut kept: BTreeSet<(Uuid, u64)> = BTreeSet::new();
    let mut shown: BTreeSet<(Uuid, u64)> = BTreeSet::new();
    let mut shown_ids: BTreeSet<(Uuid, Uuid)> = BTreeSet::new();
    // The step in flight: what it would show once stored.
    let mut pending: Vec<(Uuid, u64, Uuid, Uuid)> = Vec::new();
    let mut settled: BTreeSet<(Uuid, u64)> = BTreeSet::new();
    let check_resume = |feed: &Feed, r: &Resume| {
        for (room, cursor) in &r.0 {
            assert_eq!(feed.cursor(*room), *cursor, "resume from the feed's cursor");
        }
    };
    let store = |c: Changes,
                 cursors: &mut BTreeMap<Uuid, u64>,
                 seen: &mut BTreeMap<(Uuid, Uuid), (Uuid, u64)>,
                 kept: &mut BTreeSet<(Uuid, u64)>| {
        let rooms: BTreeSet<Uuid> = c.cursors.iter().map(|(r, _)| *r).collect();
        assert_eq!(
            rooms.len(),
            c.cursors.len(),
            "a room's cursor once per step"
        );
        let ids: BTreeSet<(Uuid, Uuid)> = c.seen.iter().map(|(s, i, _, _)| (*s, *i)).collect();
        assert_eq!(ids.len(), c.seen.len(), "an id once per step");
        let puts: BTreeSet<(Uuid, u64)> = c.history_put.iter().map(|(r, s, _)| (*r, *s)).collect();
        assert_eq!(puts.len(), c.history_put.len(), "a place once per step");
        for (room, seq) in c.cursors {
            let at = cursors.entry(room).or_insert(0);
            *at = (*at).max(seq);
        }
        for (sender, id, room, seq) in c.seen {
            seen.entry((sender, id)).or_insert((room, seq));
        }
        kept.extend(puts);
        for place in c.history_delete {
            kept.remove(&place);
        }
    };
    feed.connect([], []);
    for (n, line) in data.split(|b| *b == b'\n').enumerate() {
        if n > 64 {
            break;
        }
        match line {
            b"S" => {
                store(feed.take_changes(), &mut cursors, &mut seen, &mut kept);
                for (room, seq, sender, id) in pending.drain(..) {
                    assert!(shown.insert((room, seq)), "shown twice: {room} {seq}");
                    assert!(shown_ids.insert((sender, id)), "an id shown twice");
                }
                continue;
            }
            b"C" => {
                pending.clear();
                settled.clear();
                let r = feed.connect(cursors.keys().copied(), cursors.clone());
                assert!(!feed.has_changes());
                for (room, cursor) in &r.0 {
                    assert_eq!(cursors.get(room), Some(cursor), "reconnect from the store");
                }
                continue;
            }
            b"R" => {
                for (room, seq) in feed.receipts() {
                    assert!(
                        settled.contains(&(room, seq)),
                        "a receipt for nothing settled"
                    );
                }
                continue;
            }
            _ => {}
        }
        let Ok(text) = std::str::from_utf8(line) else {
            continue;
        };
        let Ok(frame) = serde_json::from_str::<ServerFrame>(text) else {
            continue;
        };
        match frame {
            ServerFrame::Message {
                room_id,
                seq,
                sender_id,
                device_id,
                envelope,
                ..
            } => {
                let before = feed.cursor(room_id);
                match feed.message(room_id, seq, sender_id, device_id) {
                    Arrival::Skip => assert!(seq <= before || seq > before.saturating_add(1)),
                    Arrival::Resume(r) => {
                        assert!(seq > before.saturating_add(1));
                        check_resume(&feed, &r);
                    }
                    Arrival::Handled => {
                        assert_eq!((sender_id, device_id), (me, my_device));
                        assert_eq!(feed.cursor(room_id), seq);
                    }
                    Arrival::Open => {
                        assert_eq!(Some(seq), before.checked_add(1));
                        // The envelope's first 16 bytes stand for the sender's message id.
                        let id = envelope
                            .as_bytes()
                            .get(..16)
                            .and_then(|b| Uuid::from_slice(b).ok())
                            .unwrap_or_default();
                        let stored = seen.get(&(sender_id, id)).copied();
                        let verdict = feed.seen(sender_id, id, room_id, seq, stored);
                        let show = verdict == Seen::New;
                        if verdict == Seen::Again {
                            assert_eq!(stored.unwrap_or((room_id, seq)), (room_id, seq));
                        }
                        feed.settle(room_id, seq, show.then(|| vec![1]));
                        assert_eq!(feed.cursor(room_id), seq);
                        settled.insert((room_id, seq));
                        if show && !shown.contains(&(room_id, seq)) {
                            pending.push((room_id, seq, sender_id, id));
                        }
                    }
                }
            }
            ServerFrame::MessageDeleted { room_id, seq, .. } => {
                let before = feed.cursor(room_id);
                match feed.deletion(room_id, seq) {
                    Deletion::Deleted => assert!(seq <= before.saturating_add(1)),
                    Deletion::Skip => assert!(seq > before.saturating_add(1)),
                    Deletion::Resume(r) => check_resume(&feed, &r),
                }
            }
            ServerFrame::HistoryStart { room_id, seq } => {
                let before = feed.cursor(room_id);
                feed.history_start(room_id, seq);
                assert_eq!(feed.cursor(room_id), before.max(seq));
            }
            ServerFrame::Room { room_id, .. } => {
                if let Some(r) = feed.joined(room_id) {
                    check_resume(&feed, &r);
                }
            }
            _ => {}
        }
    }
    store(feed.take_changes(), &mut cursors, &mut seen, &mut kept);
    for (room, seq) in &kept {
        assert!(
            cursors.get(room).is_some_and(|c| c >= seq),
            "an item kept beyond its room's cursor"
        );
    }
}

/// `sotto_engine::outbox`: the relay's answers to posts, as the clients feed
/// them. The input is a schedule of 3-byte steps (an entry, an operation, an
/// argument): begin a post, mark a control message, a socket ack / refusal
/// (any problem code, with or without `retry_after_ms`) / silence, an HTTP
/// store / refusal (any status) / unreachable, finish or abandon. Invariants:
/// a second `begin` of an entry in flight is refused (single flight); only
/// `Queued`, `finish` and `abandon` end the flight (`Sent` and `Refused` keep
/// it until the driver removed the entry); a refusal is final only for a
/// non-transient code or a final HTTP status; `Sent` carries the relay's id
/// and seq and is announced exactly when the entry was not marked control in
/// that flight; a wait is asked only for `rate_limited` and never beyond the
/// cap.
pub fn engine_outbox(data: &[u8]) {
    use sotto_engine::outbox::{
        HttpAnswer, MAX_RETRY_AFTER_MS, Outbox, SocketAnswer, Verdict, final_http_refusal,
    };
    use sotto_engine::policy::transient_refusal;
    const CODES: [&str; 6] = [
        "rate_limited",
        "unavailable",
        "internal",
        "not_a_member",
        "blocked",
        "request_timeout",
    ];
    let mut o = Outbox::new();
    let mut flying = [false; 4];
    let mut control = [false; 4];
    for (n, step) in data.chunks_exact(3).enumerate() {
        if n > 200 {
            break;
        }
        let (e, op, arg) = (usize::from(step[0] & 3), step[1] % 9, step[2]);
        let id = Uuid::from_u128(e as u128 + 1);
        let (msg, seq) = (Uuid::from_u128(0xabc), u64::from(arg));
        let check_end =
            |v: Verdict, flying: &mut [bool; 4], control: &mut [bool; 4], o: &Outbox| match v {
                // Still this caller's: an HTTP post, or until the driver removed
                // the entry and called `finish`.
                Verdict::PostOverHttp { .. } | Verdict::Sent { .. } | Verdict::Refused => {
                    assert!(o.is_posting(id), "the post stays this caller's")
                }
                Verdict::Queued => {
                    assert!(!o.is_posting(id), "the flight ends");
                    flying[e] = false;
                    control[e] = false;
                }
            };
        match op {
            0 => {
                let began = o.begin(id);
                assert_eq!(began, !flying[e], "single flight");
                flying[e] = true;
            }
            1 => {
                o.control(id);
                control[e] = true;
            }
            2..=4 if flying[e] => {
                let retry = (arg & 1 == 1).then(|| u64::from(arg) * 1000);
                let code = CODES[usize::from(arg) % CODES.len()];
                let answer = match op {
                    2 => SocketAnswer::Ack { id: msg, seq },
                    3 => SocketAnswer::Refused {
                        code,
                        retry_after_ms: retry,
                    },
                    _ => SocketAnswer::NoAck,
                };
                let was_control = control[e];
                let v = o.socket(id, answer);
                match (answer, v) {
                    (
                        SocketAnswer::Ack { .. },
                        Verdict::Sent {
                            id: i,
                            seq: s,
                            announce,
                        },
                    ) => {
                        assert_eq!((i, s), (msg, seq));
                        assert_eq!(announce, !was_control);
                    }
                    (SocketAnswer::Refused { code, .. }, Verdict::Refused) => {
                        assert!(!transient_refusal(code));
                    }
                    (
                        SocketAnswer::Refused {
                            code,
                            retry_after_ms,
                        },
                        Verdict::PostOverHttp { after_ms },
                    ) => {
                        assert!(transient_refusal(code));
                        if after_ms > 0 {
                            assert_eq!(code, "rate_limited");
                            assert_eq!(Some(after_ms), retry_after_ms);
                        }
                        assert!(after_ms <= MAX_RETRY_AFTER_MS);
                    }
                    (
                        SocketAnswer::Refused {
                            code,
                            retry_after_ms,
                        },
                        Verdict::Queued,
                    ) => {
                        assert_eq!(code, "rate_limited");
                        assert!(retry_after_ms.is_some_and(|ms| ms > MAX_RETRY_AFTER_MS));
                    }
                    (SocketAnswer::NoAck, Verdict::PostOverHttp { after_ms: 0 }) => {}
                    (a, v) => panic!("{a:?} gave {v:?}"),
                }
                check_end(v, &mut flying, &mut control, &o);
            }
            5..=7 if flying[e] => {
                let status = 400 + u16::from(arg) * 2;
                let answer = match op {
                    5 => HttpAnswer::Stored { id: msg, seq },
                    6 => HttpAnswer::Refused { status },
                    _ => HttpAnswer::Unreachable,
                };
                let was_control = control[e];
                let v = o.http(id, answer);
                match (answer, v) {
                    (
                        HttpAnswer::Stored { .. },
                        Verdict::Sent {
                            id: i,
                            seq: s,
                            announce,
                        },
                    ) => {
                        assert_eq!((i, s), (msg, seq));
                        assert_eq!(announce, !was_control);
                    }
                    (HttpAnswer::Refused { status }, Verdict::Refused) => {
                        assert!(final_http_refusal(status))
                    }
                    (HttpAnswer::Refused { status }, Verdict::Queued) => {
                        assert!(!final_http_refusal(status))
                    }
                    (HttpAnswer::Unreachable, Verdict::Queued) => {}
                    (a, v) => panic!("{a:?} gave {v:?}"),
                }
                check_end(v, &mut flying, &mut control, &o);
            }
            8 => {
                if arg & 1 == 0 {
                    o.abandon(id);
                } else {
                    o.finish(id);
                }
                assert!(!o.is_posting(id));
                flying[e] = false;
                control[e] = false;
            }
            _ => {}
        }
        for (k, f) in flying.iter().enumerate() {
            assert_eq!(o.is_posting(Uuid::from_u128(k as u128 + 1)), *f);
        }
    }
}

/// The engine's live connection (`sotto_engine::link::Link`) driven by a
/// schedule of driver inputs, one per line: `s` start, `x` stop, `p` prepared
/// (one room, its stored cursor), `P` prepare failed, `L` logged out, `o`
/// opened, `c` closed, `O` closed for the previous attempt, `t` time passes
/// (by the line's length in seconds), `k` settle handled, `K` settle later,
/// `d` stored, `D` store failed, `m` send a message (a new client id), `f`
/// forget the last ack, anything else a frame text from the relay. After each
/// input every output is drained, as a driver does. Invariants: at most one
/// message is out to be opened, and none while a store is out; nothing is
/// shown while a step's store is out; every output of a step's events comes
/// after its store was answered; each send's wait ends at most once; frames go
/// out only on an authenticated socket; after the outputs are drained, the
/// deadline is in the future (no busy loop); once stopped and drained, the
/// link is idle.
pub fn engine_link(data: &[u8]) {
    use sotto_engine::link::{Conn, Link, Output, PrepareFailed, Settle};
    use std::collections::BTreeSet;

    let me = Uuid::from_u128(1);
    let room = Uuid::from_u128(10);
    let mut link: Link<u32> = Link::new(me, Uuid::from_u128(2), 3_000, Box::new(|| 0x8000_0000));
    let mut now = 0u64;
    let mut conn: Option<Conn> = None;
    let mut socket: Option<Conn> = None;
    let mut opening: Option<(Uuid, u64)> = None;
    let mut storing = false;
    let mut waiting: BTreeSet<Uuid> = BTreeSet::new();
    let mut next_id = 100u128;
    let mut last_sent: Option<Uuid> = None;
    let mut events = 0u32;
    let mut cursor = 0u64;
    for (n, line) in data.split(|b| *b == b'\n').enumerate() {
        if n > 128 {
            break;
        }
        match line {
            b"s" => link.start(now),
            b"x" => link.stop(now),
            b"p" => {
                if let Some(c) = conn {
                    link.prepared(c, now, Ok((vec![room], vec![(room, cursor)])));
                }
            }
            b"P" | b"L" => {
                if let Some(c) = conn {
                    let why = if line == b"L" {
                        PrepareFailed::LoggedOut
                    } else {
                        PrepareFailed::Retry("down".into())
                    };
                    link.prepared(c, now, Err(why));
                }
            }
            b"o" => {
                if let Some(c) = conn {
                    link.opened(c, now);
                }
            }
            b"c" | b"O" => {
                if let Some(c) = conn {
                    let c = if line == b"O" {
                        Conn(c.0.wrapping_sub(1))
                    } else {
                        c
                    };
                    link.closed(c, now, "cut".into());
                }
            }
            b"k" | b"K" => {
                if let Some((r, seq)) = opening.take() {
                    let settle = if line == b"k" {
                        events += 1;
                        Settle::Handled {
                            kept: Some(vec![1]),
                            event: Some(events),
                        }
                    } else {
                        Settle::Later("keys".into())
                    };
                    link.settle(r, seq, settle);
                }
            }
            b"d" | b"D" => {
                if storing {
                    storing = false;
                    link.stored(
                        now,
                        if line == b"d" {
                            Ok(())
                        } else {
                            Err("full".into())
                        },
                    );
                }
            }
            b"m" => {
                next_id += 1;
                let id = Uuid::from_u128(next_id);
                if link.send_message(now, id, ClientFrame::Ping) {
                    waiting.insert(id);
                    last_sent = Some(id);
                }
            }
            b"f" => {
                if let Some(id) = last_sent.take() {
                    link.forget_ack(id);
                    waiting.remove(&id);
                }
            }
            _ if line.first() == Some(&b't') => {
                now = now.saturating_add(1_000 * line.len() as u64);
            }
            _ => {
                if let (Some(c), Ok(text)) = (conn, std::str::from_utf8(line)) {
                    link.received(c, now, text);
                }
            }
        }
        while let Some(out) = link.poll(now) {
            match out {
                Output::Prepare(c) => conn = Some(c),
                Output::Authenticate(c) => {
                    assert_eq!(Some(c), conn, "authenticates the current attempt");
                    socket = Some(c);
                }
                Output::Close(c) => {
                    if socket == Some(c) {
                        socket = None;
                    }
                }
                Output::Send(_) => assert!(socket.is_some(), "a frame with no socket"),
                Output::Receive(m) => {
                    assert!(opening.is_none(), "two messages out to open");
                    assert!(!storing, "a message out while a store is");
                    opening = Some((m.room_id, m.seq));
                }
                Output::Store(changes) => {
                    assert!(opening.is_none(), "a store while a message is out");
                    assert!(!storing, "two stores out");
                    if let Some((_, seq)) = changes.cursors.iter().find(|(r, _)| *r == room) {
                        cursor = cursor.max(*seq);
                    }
                    storing = true;
                }
                Output::App(_) | Output::Show(_) => {
                    assert!(!storing, "shown before its step was stored");
                }
                Output::Acked { client_id, .. } => {
                    assert!(
                        waiting.remove(&client_id),
                        "a wait ended twice, or never began"
                    );
                }
                Output::Open(_)
                | Output::Online(_)
                | Output::State(_)
                | Output::RoomChanged { .. }
                | Output::KeysChanged(_)
                | Output::LoggedOut => {}
            }
        }
        if opening.is_none()
            && !storing
            && let Some(d) = link.deadline()
        {
            assert!(
                d > now,
                "a deadline already passed after draining: {d} <= {now}"
            );
        }
        if !link.is_active() {
            assert!(waiting.is_empty(), "an idle link with a send still waiting");
        }
    }
}

/// The engine's open pipeline (`sotto_engine::open::Opening`) on one message
/// whose routing fields, sealing and bytes the input chooses, with a driver
/// that serves device lists, fails fetches and answers the replay check as
/// the input says. Checked: the pipeline ends within a bounded number of
/// steps and at most four fetches, each of the claimed sender or a
/// statement's signer; a message is shown only if the claimed sender sealed
/// it to this device, with the header's id and the content its plaintext
/// decodes to; a read-ahead never asks the replay check and never shows
/// content; "again" and "replayed" come only from the replay verdict;
/// "later" only from a failed fetch.
///
/// Byte 0: bits 0-1 who the relay says sent it (0 Alice, 1 this device,
/// 2 Mallory, whose list is empty, 3 Alice, but Mallory sealed it); bit 2
/// sealed (else the rest is the envelope's bytes); bit 3 read ahead; bits 4-5
/// the replay verdict (new, again, replay); bit 6 fetches fail; bit 7 stored
/// after Alice's device was revoked. Byte 1: bit 0 Alice's device revoked;
/// bit 1 not sealed to this device; bit 2 the rest is a statement's bytes;
/// bit 3 sealed for another room. The rest: the plaintext.
pub fn engine_open(data: &[u8]) {
    use sotto_core::envelope::{self, Header, Recipient};
    use sotto_engine::devices::{Devices, Known};
    use sotto_engine::feed::Seen;
    use sotto_engine::link::Incoming;
    use sotto_engine::open::{Me, Opening, Outcome, Step, UndecryptableReason};
    use sotto_engine::pins::Pins;
    use sotto_engine::{Content, Plaintext, Rooms};

    let people = engine_people();
    let (me, alice, mallory) = (&people[0], &people[1], &people[3]);
    let room = Uuid::from_u128(0x7001);
    let (Some(&b0), Some(&b1)) = (data.first(), data.get(1)) else {
        return;
    };
    let rest = data.get(2..).unwrap_or_default();
    let (claimed, sealer) = match b0 & 3 {
        0 => (alice, alice),
        1 => (me, me),
        2 => (mallory, mallory),
        _ => (alice, mallory),
    };
    let sealed = b0 & 4 != 0;
    let ahead = b0 & 8 != 0;
    let verdict = match b0 >> 4 & 3 {
        1 => Seen::Again,
        2 => Seen::Replay,
        _ => Seen::New,
    };
    let fetch_fails = b0 & 0x40 != 0;
    let created_at = if b0 & 0x80 != 0 {
        "2026-12-07T10:00:00Z"
    } else {
        "2026-12-07T08:00:00Z"
    };
    let revoked = (b1 & 1 != 0).then(|| "2026-12-07T09:00:00Z".to_owned());
    let to_me = b1 & 2 == 0;
    let plaintext = if b1 & 4 != 0 {
        Plaintext::membership(rest)
    } else {
        rest.to_vec()
    };
    let client_id = Uuid::from_u128(0xc1);
    let envelope = if sealed {
        let header = Header {
            room_id: if b1 & 8 != 0 {
                Uuid::from_u128(0x7009)
            } else {
                room
            },
            sender_user_id: sealer.user,
            sender_device_id: sealer.device,
            client_message_id: client_id,
            timestamp_ms: 1,
        };
        let mut to = vec![Recipient::x25519(&alice.verified)];
        if to_me {
            to.push(Recipient::x25519(&me.verified));
        }
        match envelope::seal(&plaintext, &header, &to, &sealer.keys) {
            Ok(e) => e.to_bytes(),
            Err(_) => return, // too large to seal: nothing to open
        }
    } else {
        rest.to_vec()
    };
    let m = Incoming {
        room_id: room,
        id: Uuid::from_u128(0xabc),
        seq: 5,
        sender_id: claimed.user,
        device_id: claimed.device,
        created_at: created_at.to_owned(),
        envelope,
    };
    let mut op = if ahead {
        Opening::statements_only(m)
    } else {
        Opening::new(m)
    };
    let mut pins = Pins::load(me.user, me.verified.identity_key().to_bytes(), []);
    let mut devices: Devices<VerifiedDevice> = Devices::default();
    let mut rooms = Rooms::load(me.user, []);
    let statement_signer = match Plaintext::decode(&plaintext) {
        Plaintext::Membership(bytes) => MembershipStatement::from_bytes(&bytes)
            .ok()
            .map(|s| s.signer_user()),
        Plaintext::Content(_) => None,
    };
    let (mut fetches, mut asked_seen, mut fetch_failed) = (0, false, false);
    let me_ = Me {
        user: me.user,
        device: &me.verified,
        keys: &me.keys,
    };
    let mut outcome = None;
    for _ in 0..12 {
        match op.step(&me_, &pins, &mut devices, &mut rooms) {
            Step::Done(o) => {
                outcome = Some(o);
                break;
            }
            Step::Fetch(user) => {
                fetches += 1;
                assert!(
                    user == claimed.user || Some(user) == statement_signer,
                    "a fetch of someone the message does not name"
                );
                if fetch_fails {
                    fetch_failed = true;
                    op.failed("down");
                    continue;
                }
                let list: Vec<Known<VerifiedDevice>> = people
                    .iter()
                    .filter(|p| p.user == user && p.user != mallory.user)
                    .map(|p| Known {
                        device_id: p.device,
                        identity_key: p.verified.identity_key().to_bytes(),
                        revoked_at: if p.user == alice.user {
                            revoked.clone()
                        } else {
                            None
                        },
                        handle: p.verified.clone(),
                    })
                    .collect();
                let fetch = devices.fetching();
                devices.served(&mut pins, user, list, &[], fetch);
            }
            Step::Seen {
                sender,
                client_id: id,
            } => {
                assert!(!ahead, "a read-ahead asked the replay check");
                assert_eq!(sender, claimed.user);
                assert_eq!(id, client_id, "the replay check of another id");
                asked_seen = true;
                op.seen(verdict);
            }
        }
    }
    let outcome = outcome.expect("the pipeline ends within 12 steps");
    assert!(fetches <= 4, "{fetches} fetches");
    match outcome {
        Outcome::Message(item) => {
            assert!(!ahead, "a read-ahead showed content");
            assert!(
                sealed && to_me && b1 & 8 == 0,
                "shown without being sealed to me here"
            );
            assert_eq!(
                claimed.user, sealer.user,
                "shown under a sender that did not seal it"
            );
            assert_ne!(
                claimed.user, mallory.user,
                "shown from a device never served"
            );
            assert!(asked_seen && verdict == Seen::New);
            assert_eq!(item.client_id, client_id);
            assert_eq!(item.content, Content::decode(&plaintext));
            if revoked.is_some() && claimed.user == alice.user {
                assert!(
                    b0 & 0x80 == 0,
                    "shown from a device revoked before it was stored"
                );
            }
        }
        Outcome::Again => assert!(ahead || verdict == Seen::Again),
        Outcome::Undecryptable(UndecryptableReason::Replayed) => {
            assert!(asked_seen && verdict == Seen::Replay);
        }
        Outcome::Later(_) => assert!(fetch_failed, "later without a failed fetch"),
        Outcome::Control(warning) => {
            assert!(
                sealed && matches!(Plaintext::decode(&plaintext), Plaintext::Membership(_)),
                "a control message from a content plaintext"
            );
            match rooms.statement(room) {
                // Taken: signed by a served, trusted device (never Mallory).
                Some(held) => {
                    assert!(warning.is_none());
                    assert_ne!(
                        held.signer_user(),
                        mallory.user,
                        "a statement Mallory signed"
                    );
                    assert_eq!(Some(held.signer_user()), statement_signer);
                    assert!(b1 & 1 == 0 || held.signer_user() != alice.user || b0 & 0x80 == 0);
                }
                None => assert!(warning.is_some(), "a statement neither taken nor refused"),
            }
        }
        Outcome::Undecryptable(_) => {}
    }
}
