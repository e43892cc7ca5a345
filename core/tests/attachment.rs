//! Attachments: round trips across sizes and arbitrary input splits (proptest),
//! every way a blob must fail (flipped bytes, truncation, dropped, reordered,
//! duplicated or appended chunks, wrong key or digest, bad headers), the
//! pointer's JSON and checks, and the test vectors in
//! `vectors/attachment_v1.json`.
//!
//! The vector test regenerates every vector with the library (the nonces are
//! deterministic, so a fixed key gives fixed bytes) and compares with the file,
//! then re-derives each blob from the rules of `docs/protocol.md` §11 with raw
//! `aes-gcm` and `sha2` calls, so the document, the file and the code cannot
//! drift apart. To rewrite the file after an intentional format change:
//! `SOTTO_REGENERATE_VECTORS=1 cargo test -p sotto-core --test attachment`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use proptest::prelude::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sotto_core::attachment::{
    self, AttachmentDecryptor, AttachmentEncryptor, AttachmentError, AttachmentInfo, AttachmentKey,
    AttachmentPointer, DEFAULT_CHUNK_SIZE, Finished, HEADER_LEN, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE,
    TAG_LEN,
};
use sotto_core::encoding::{B64, b64_encode};
use uuid::Uuid;

const PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/vectors/attachment_v1.json"
);

/// The small chunk size used by most tests.
const CS: u32 = 1024;
const CSU: usize = CS as usize;
const FRAME: usize = CSU + TAG_LEN;

fn fixed_key() -> AttachmentKey {
    AttachmentKey::from_bytes([7u8; 32])
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + 7) as u8).collect()
}

/// Encrypts `pt` under `key`, feeding the encryptor the pieces between `splits`.
fn encrypt_split(
    key: &AttachmentKey,
    chunk_size: u32,
    pt: &[u8],
    splits: &[usize],
) -> (Vec<u8>, AttachmentInfo) {
    let (mut enc, mut blob) = AttachmentEncryptor::with_key(key, chunk_size).unwrap();
    for piece in pieces(pt, splits) {
        blob.extend(enc.update(piece).unwrap());
    }
    let Finished { tail, key: k, info } = enc.finish().unwrap();
    assert_eq!(*k.to_bytes(), *key.to_bytes());
    blob.extend(tail);
    (blob, info)
}

fn encrypt_fixed(chunk_size: u32, pt: &[u8]) -> (Vec<u8>, AttachmentInfo) {
    encrypt_split(&fixed_key(), chunk_size, pt, &[])
}

/// Splits `bytes` at the given points (taken modulo its length, sorted).
fn pieces<'a>(bytes: &'a [u8], splits: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = splits
        .iter()
        .map(|s| {
            if bytes.is_empty() {
                0
            } else {
                s % (bytes.len() + 1)
            }
        })
        .collect();
    cuts.sort_unstable();
    let mut out = vec![];
    let mut start = 0;
    for c in cuts {
        out.push(&bytes[start..c]);
        start = c;
    }
    out.push(&bytes[start..]);
    out
}

/// Streams `blob` through a decryptor in `piece`-byte slices. Returns what was
/// released before the first error, and the outcome.
fn stream(
    dec: AttachmentDecryptor,
    blob: &[u8],
    piece: usize,
) -> (Vec<u8>, Result<(), AttachmentError>) {
    let mut dec = dec;
    let mut released = vec![];
    for p in blob.chunks(piece.max(1)) {
        match dec.update(p) {
            Ok(out) => released.extend_from_slice(&out),
            Err(e) => return (released, Err(e)),
        }
    }
    match dec.finish() {
        Ok(out) => {
            released.extend_from_slice(&out);
            (released, Ok(()))
        }
        Err(e) => (released, Err(e)),
    }
}

fn stream_decrypt(
    key: &AttachmentKey,
    blob: &[u8],
    piece: usize,
) -> Result<Vec<u8>, AttachmentError> {
    let (out, r) = stream(AttachmentDecryptor::new(key), blob, piece);
    r.map(|()| out)
}

fn sha(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Splits a blob into header and ciphertext chunks (each `FRAME` bytes but the last).
fn split_blob(blob: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let (h, rest) = blob.split_at(HEADER_LEN);
    (h.to_vec(), rest.chunks(FRAME).map(<[u8]>::to_vec).collect())
}

// ---------------------------------------------------------------------------
// Round trips

#[test]
fn round_trip_boundary_sizes() {
    for len in [0, 1, CSU - 1, CSU, CSU + 1, 2 * CSU, 3 * CSU, 3 * CSU + 17] {
        let pt = data(len);
        let (blob, info) = encrypt_fixed(CS, &pt);
        let chunks = len.div_ceil(CSU).max(1);
        assert_eq!(blob.len(), HEADER_LEN + len + TAG_LEN * chunks, "len {len}");
        assert_eq!(info.size, len as u64);
        assert_eq!(info.encrypted_size, blob.len() as u64);
        assert_eq!(
            attachment::encrypted_len(len as u64, CS),
            Some(blob.len() as u64)
        );
        assert_eq!(info.chunk_size, CS);
        assert_eq!(info.sha256, sha(&blob));
        assert_eq!(&blob[..HEADER_LEN], b"SOTA\x01\x00\x00\x04\x00");
        // The last chunk is full for exact multiples, never an extra empty one.
        let (_, cts) = split_blob(&blob);
        assert_eq!(cts.len(), chunks);
        let last_len = cts.last().unwrap().len() - TAG_LEN;
        assert_eq!(last_len, if len == 0 { 0 } else { (len - 1) % CSU + 1 });
        for piece in [1, 5, 9, 100, FRAME, FRAME + 1, blob.len()] {
            assert_eq!(stream_decrypt(&fixed_key(), &blob, piece).unwrap(), pt);
        }
        assert_eq!(
            &attachment::decrypt(&fixed_key(), &blob, &info.sha256).unwrap()[..],
            &pt[..]
        );
        let p = AttachmentPointer::new(Uuid::from_u128(1), &fixed_key(), &info);
        assert_eq!(&p.decrypt(&blob).unwrap()[..], &pt[..]);
        let (out, r) = stream(AttachmentDecryptor::for_pointer(&p).unwrap(), &blob, 333);
        r.unwrap();
        assert_eq!(out, pt);
    }
}

#[test]
fn one_shot_round_trip_default_chunk_size() {
    let c = DEFAULT_CHUNK_SIZE as usize;
    for len in [0, 1, c - 1, c, c + 1, 3 * c] {
        let pt = data(len);
        let e = attachment::encrypt(&pt).unwrap();
        assert_eq!(e.info.chunk_size, DEFAULT_CHUNK_SIZE);
        assert_eq!(e.info.size, len as u64);
        assert_eq!(e.info.encrypted_size, e.blob.len() as u64);
        assert_eq!(
            attachment::encrypted_len(len as u64, DEFAULT_CHUNK_SIZE),
            Some(e.blob.len() as u64)
        );
        assert_eq!(e.info.sha256, sha(&e.blob));
        let back = attachment::decrypt(&e.key, &e.blob, &e.info.sha256).unwrap();
        assert_eq!(&back[..], &pt[..]);
        let p = AttachmentPointer::new(Uuid::from_u128(2), &e.key, &e.info);
        assert_eq!(&p.decrypt(&e.blob).unwrap()[..], &pt[..]);
    }
}

#[test]
fn every_file_gets_a_fresh_key() {
    let pt = data(100);
    let a = attachment::encrypt(&pt).unwrap();
    let b = attachment::encrypt(&pt).unwrap();
    assert_ne!(*a.key.to_bytes(), *b.key.to_bytes());
    assert_ne!(a.blob, b.blob);
    let (e1, _) = AttachmentEncryptor::new(CS).unwrap();
    let (e2, _) = AttachmentEncryptor::new(CS).unwrap();
    assert_ne!(*e1.key().to_bytes(), *e2.key().to_bytes());
}

#[test]
fn streaming_is_deterministic_under_one_key_and_independent_of_splits() {
    let pt = data(5000);
    let (whole, info) = encrypt_fixed(CS, &pt);
    let byte_by_byte: Vec<usize> = (0..pt.len()).collect();
    let (split, info2) = encrypt_split(&fixed_key(), CS, &pt, &byte_by_byte);
    assert_eq!(whole, split);
    assert_eq!(info, info2);
    assert_eq!(stream_decrypt(&fixed_key(), &whole, 1).unwrap(), pt);
}

#[test]
fn encryptor_and_decryptor_hold_back_one_full_chunk() {
    let (mut enc, header) = AttachmentEncryptor::with_key(&fixed_key(), CS).unwrap();
    assert_eq!(header.len(), HEADER_LEN);
    assert!(enc.update(&[1u8; CSU]).unwrap().is_empty());
    assert!(enc.update(&[]).unwrap().is_empty());
    let first = enc.update(&[2u8]).unwrap();
    assert_eq!(first.len(), FRAME);
    let f = enc.finish().unwrap();
    assert_eq!(f.tail.len(), 1 + TAG_LEN);
    let blob = [header, first, f.tail].concat();

    let mut dec = AttachmentDecryptor::new(&fixed_key());
    assert!(dec.update(&blob[..HEADER_LEN + FRAME]).unwrap().is_empty());
    assert_eq!(
        &dec.update(&blob[HEADER_LEN + FRAME..][..1]).unwrap()[..],
        &[1u8; CSU][..]
    );
    assert!(
        dec.update(&blob[HEADER_LEN + FRAME + 1..])
            .unwrap()
            .is_empty()
    );
    assert_eq!(&dec.finish().unwrap()[..], &[2u8]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn round_trip_random_sizes_and_splits(
        chunk_size in MIN_CHUNK_SIZE..3000u32,
        pt in proptest::collection::vec(any::<u8>(), 0..12_000),
        enc_splits in proptest::collection::vec(any::<usize>(), 0..8),
        dec_splits in proptest::collection::vec(any::<usize>(), 0..8),
        key in any::<[u8; 32]>(),
    ) {
        let key = AttachmentKey::from_bytes(key);
        let (blob, info) = encrypt_split(&key, chunk_size, &pt, &enc_splits);
        prop_assert_eq!(Some(blob.len() as u64), attachment::encrypted_len(pt.len() as u64, chunk_size));
        prop_assert_eq!(info.sha256, sha(&blob));
        let p = AttachmentPointer::new(Uuid::from_u128(3), &key, &info);
        let mut dec = AttachmentDecryptor::for_pointer(&p).unwrap();
        let mut out = vec![];
        for piece in pieces(&blob, &dec_splits) {
            out.extend_from_slice(&dec.update(piece).unwrap());
        }
        out.extend_from_slice(&dec.finish().unwrap());
        prop_assert_eq!(&out, &pt);
        prop_assert_eq!(&p.decrypt(&blob).unwrap()[..], &pt[..]);
    }
}

// ---------------------------------------------------------------------------
// Tampering

/// A 3-chunk blob: 2 full chunks and a 52-byte last one.
fn sample() -> (Vec<u8>, Vec<u8>, AttachmentInfo) {
    let pt = data(2 * CSU + 52);
    let (blob, info) = encrypt_fixed(CS, &pt);
    (pt, blob, info)
}

#[test]
fn every_flipped_byte_fails_and_releases_only_authentic_chunks() {
    let (pt, blob, info) = sample();
    for i in 0..blob.len() {
        for mask in [0x01u8, 0x80] {
            let mut bad = blob.clone();
            bad[i] ^= mask;
            let (released, r) = stream(AttachmentDecryptor::new(&fixed_key()), &bad, 200);
            let err = r.expect_err(&format!("flip at {i} succeeded"));
            match i {
                0..4 => assert_eq!(err, AttachmentError::BadMagic),
                4 => assert_eq!(err, AttachmentError::UnsupportedVersion(1 ^ mask)),
                _ => {}
            }
            // Only chunks before the modified one may have been released.
            let chunk = i.saturating_sub(HEADER_LEN) / FRAME;
            let allowed = if i < HEADER_LEN { 0 } else { chunk * CSU };
            assert!(released.len() <= allowed, "flip at {i} released too much");
            assert_eq!(&released[..], &pt[..released.len()]);
            // The one-shot API checks the digest first.
            assert_eq!(
                attachment::decrypt(&fixed_key(), &bad, &info.sha256).unwrap_err(),
                AttachmentError::DigestMismatch
            );
            // And without the digest, the blob itself fails.
            assert!(attachment::decrypt(&fixed_key(), &bad, &sha(&bad)).is_err());
        }
    }
}

#[test]
fn every_truncation_fails() {
    let (_, blob, info) = sample();
    for len in 0..blob.len() {
        let cut = &blob[..len];
        let err = stream_decrypt(&fixed_key(), cut, 100).expect_err(&format!("cut at {len}"));
        // Mid-header and tails shorter than a tag are `Truncated`; a cut at a chunk
        // boundary (or a longer tail) fails to authenticate as the last chunk.
        let tail = len.saturating_sub(HEADER_LEN) % FRAME;
        let expect = if len < HEADER_LEN + TAG_LEN || (tail < TAG_LEN && tail != 0) {
            AttachmentError::Truncated
        } else {
            AttachmentError::WrongKeyOrCorrupted
        };
        assert_eq!(err, expect, "cut at {len}");
        assert!(attachment::decrypt(&fixed_key(), cut, &sha(cut)).is_err());
        assert_eq!(
            attachment::decrypt(&fixed_key(), cut, &info.sha256).unwrap_err(),
            AttachmentError::DigestMismatch
        );
    }
}

#[test]
fn dropped_reordered_duplicated_or_appended_chunks_fail() {
    let (_, blob, _) = sample();
    let (h, c) = split_blob(&blob);
    assert_eq!(c.len(), 3);
    let build = |order: &[usize]| {
        let mut b = h.clone();
        for i in order {
            b.extend_from_slice(&c[*i]);
        }
        b
    };
    let cases: &[&[usize]] = &[
        &[0, 2],       // drop a middle chunk
        &[1, 2],       // drop the first
        &[0, 1],       // drop the last (truncation at a boundary)
        &[1, 0, 2],    // swap
        &[0, 0, 1, 2], // duplicate
        &[0, 1, 1, 2], // duplicate
        &[0, 1, 2, 2], // duplicate the last
        &[2],          // only the last
        &[0, 2, 1],    // last chunk moved into the middle
    ];
    for order in cases {
        let b = build(order);
        assert!(
            stream_decrypt(&fixed_key(), &b, 64).is_err(),
            "order {order:?} decrypted"
        );
        assert!(attachment::decrypt(&fixed_key(), &b, &sha(&b)).is_err());
    }
    assert_eq!(build(&[0, 1, 2]), blob);

    for extra in [
        &[0u8][..],
        &[0u8; 16][..],
        &[0u8; FRAME][..],
        &c[2][..],
        &c[0][..],
    ] {
        let b = [&blob[..], extra].concat();
        assert_eq!(
            stream_decrypt(&fixed_key(), &b, 64).unwrap_err(),
            AttachmentError::WrongKeyOrCorrupted
        );
        assert!(attachment::decrypt(&fixed_key(), &b, &sha(&b)).is_err());
    }
}

#[test]
fn appending_after_a_full_last_chunk_fails() {
    let pt = data(2 * CSU);
    let (blob, _) = encrypt_fixed(CS, &pt);
    for extra in [1usize, 15, 16, 17, FRAME] {
        let b = [&blob[..], &vec![0u8; extra][..]].concat();
        assert!(
            stream_decrypt(&fixed_key(), &b, 1000).is_err(),
            "extra {extra}"
        );
    }
}

#[test]
fn empty_final_chunk_after_a_full_one_is_rejected() {
    // Crafted with the key, as only a malicious sender could: a full chunk marked
    // not-last, then an authentic empty last chunk.
    let key = [7u8; 32];
    let header = b"SOTA\x01\x00\x00\x04\x00".to_vec();
    let pt = data(CSU);
    let c0 = raw_seal(&key, &header, 0, false, &pt);
    let c1 = raw_seal(&key, &header, 1, true, &[]);
    let blob = [header, c0, c1].concat();
    assert_eq!(
        stream_decrypt(&fixed_key(), &blob, 100).unwrap_err(),
        AttachmentError::WrongKeyOrCorrupted
    );
    // The canonical encoding of the same file is accepted.
    let (good, _) = encrypt_fixed(CS, &pt);
    assert_eq!(stream_decrypt(&fixed_key(), &good, 100).unwrap(), pt);
}

#[test]
fn wrong_key_and_wrong_digest_fail() {
    let (_, blob, info) = sample();
    let other = AttachmentKey::from_bytes([8u8; 32]);
    assert_eq!(
        attachment::decrypt(&other, &blob, &info.sha256).unwrap_err(),
        AttachmentError::WrongKeyOrCorrupted
    );
    let (released, r) = stream(AttachmentDecryptor::new(&other), &blob, 50);
    assert_eq!(r.unwrap_err(), AttachmentError::WrongKeyOrCorrupted);
    assert!(released.is_empty());

    let mut digest = info.sha256;
    digest[31] ^= 1;
    assert_eq!(
        attachment::decrypt(&fixed_key(), &blob, &digest).unwrap_err(),
        AttachmentError::DigestMismatch
    );
    let dec = AttachmentDecryptor::new(&fixed_key()).with_expected_digest(digest);
    assert_eq!(
        stream(dec, &blob, 500).1.unwrap_err(),
        AttachmentError::DigestMismatch
    );
    let dec = AttachmentDecryptor::new(&fixed_key()).with_expected_digest(info.sha256);
    stream(dec, &blob, 500).1.unwrap();
}

#[test]
fn expected_sizes_are_enforced() {
    let (pt, blob, _) = sample();
    let n = pt.len() as u64;
    let dec = AttachmentDecryptor::new(&fixed_key()).with_expected_size(n + 1);
    assert_eq!(
        stream(dec, &blob, 100).1.unwrap_err(),
        AttachmentError::SizeMismatch
    );
    // Too small: fails as soon as a chunk would exceed it, before releasing it.
    let dec = AttachmentDecryptor::new(&fixed_key()).with_expected_size(CSU as u64 + 1);
    let (released, r) = stream(dec, &blob, 100);
    assert_eq!(r.unwrap_err(), AttachmentError::SizeMismatch);
    assert_eq!(released.len(), CSU);
    let dec = AttachmentDecryptor::new(&fixed_key()).with_expected_size(n);
    stream(dec, &blob, 100).1.unwrap();
}

#[test]
fn a_failed_decryptor_stays_failed() {
    let (_, blob, _) = sample();
    let mut bad = blob.clone();
    bad[HEADER_LEN + 3] ^= 1;
    let mut dec = AttachmentDecryptor::new(&fixed_key());
    dec.update(&bad[..HEADER_LEN + FRAME]).unwrap();
    assert_eq!(
        dec.update(&bad[HEADER_LEN + FRAME..]).unwrap_err(),
        AttachmentError::WrongKeyOrCorrupted
    );
    // The later chunks are authentic on their own, but nothing more comes out.
    assert_eq!(
        dec.update(&[]).unwrap_err(),
        AttachmentError::WrongKeyOrCorrupted
    );
    assert_eq!(
        dec.finish().unwrap_err(),
        AttachmentError::WrongKeyOrCorrupted
    );
}

// ---------------------------------------------------------------------------
// Headers

fn with_header(blob: &[u8], header: &[u8]) -> Vec<u8> {
    [header, &blob[HEADER_LEN..]].concat()
}

#[test]
fn bad_headers_give_typed_errors() {
    let (_, blob, _) = sample();
    let key = fixed_key();
    let cases: Vec<(Vec<u8>, AttachmentError)> = vec![
        (
            b"SOTB\x01\x00\x00\x04\x00".to_vec(),
            AttachmentError::BadMagic,
        ),
        (
            b"sota\x01\x00\x00\x04\x00".to_vec(),
            AttachmentError::BadMagic,
        ),
        (b"SOTTOBAK\x01".to_vec(), AttachmentError::BadMagic),
        (
            b"SOTA\x00\x00\x00\x04\x00".to_vec(),
            AttachmentError::UnsupportedVersion(0),
        ),
        (
            b"SOTA\x02\x00\x00\x04\x00".to_vec(),
            AttachmentError::UnsupportedVersion(2),
        ),
        (
            b"SOTA\x01\x00\x00\x00\x00".to_vec(),
            AttachmentError::BadChunkSize(0),
        ),
        (
            b"SOTA\x01\x00\x00\x03\xff".to_vec(),
            AttachmentError::BadChunkSize(1023),
        ),
        (
            b"SOTA\x01\x00\x10\x00\x01".to_vec(),
            AttachmentError::BadChunkSize(MAX_CHUNK_SIZE + 1),
        ),
        (
            b"SOTA\x01\xff\xff\xff\xff".to_vec(),
            AttachmentError::BadChunkSize(u32::MAX),
        ),
        // A valid but different chunk size: the header is in every chunk's AAD.
        (
            b"SOTA\x01\x00\x00\x08\x00".to_vec(),
            AttachmentError::WrongKeyOrCorrupted,
        ),
        (
            b"SOTA\x01\x00\x00\x04\x01".to_vec(),
            AttachmentError::WrongKeyOrCorrupted,
        ),
    ];
    for (header, want) in cases {
        let b = with_header(&blob, &header);
        for piece in [1, 3, 1000] {
            assert_eq!(
                stream_decrypt(&key, &b, piece).unwrap_err(),
                want,
                "{header:x?}"
            );
        }
        assert_eq!(attachment::decrypt(&key, &b, &sha(&b)).unwrap_err(), want);
    }
    // A wrong magic is refused as soon as its first byte arrives.
    let mut dec = AttachmentDecryptor::new(&key);
    assert_eq!(dec.update(b"X").unwrap_err(), AttachmentError::BadMagic);
    let mut dec = AttachmentDecryptor::new(&key);
    assert!(dec.update(b"SOT").unwrap().is_empty());
    assert_eq!(dec.update(b"B").unwrap_err(), AttachmentError::BadMagic);
}

#[test]
fn short_inputs_are_truncated() {
    let key = fixed_key();
    let (blob, _) = encrypt_fixed(CS, &[]);
    assert_eq!(blob.len(), HEADER_LEN + TAG_LEN);
    for len in 0..blob.len() {
        assert_eq!(
            stream_decrypt(&key, &blob[..len], 1).unwrap_err(),
            AttachmentError::Truncated,
            "len {len}"
        );
    }
    assert!(stream_decrypt(&key, &blob, 1).unwrap().is_empty());
}

#[test]
fn encryptor_rejects_chunk_sizes_out_of_range() {
    for cs in [0, 1, MIN_CHUNK_SIZE - 1, MAX_CHUNK_SIZE + 1, u32::MAX] {
        assert_eq!(
            AttachmentEncryptor::new(cs).unwrap_err(),
            AttachmentError::BadChunkSize(cs)
        );
        assert_eq!(attachment::encrypted_len(10, cs), None);
    }
    for cs in [MIN_CHUNK_SIZE, 1000 * 1000 + 7, MAX_CHUNK_SIZE] {
        let (enc, header) = AttachmentEncryptor::new(cs).unwrap();
        assert_eq!(enc.chunk_size(), cs);
        assert_eq!(&header[5..], &cs.to_be_bytes());
    }
    assert_eq!(attachment::encrypted_len(u64::MAX, MIN_CHUNK_SIZE), None);
}

#[test]
fn max_chunk_size_round_trips() {
    let pt = data(MAX_CHUNK_SIZE as usize + 5);
    let (blob, info) = encrypt_fixed(MAX_CHUNK_SIZE, &pt);
    assert_eq!(
        &attachment::decrypt(&fixed_key(), &blob, &info.sha256).unwrap()[..],
        &pt[..]
    );
}

// ---------------------------------------------------------------------------
// Pointer and key

fn sample_pointer() -> (AttachmentPointer, Vec<u8>, Vec<u8>) {
    let (pt, blob, info) = sample();
    let mut p = AttachmentPointer::new(Uuid::from_u128(0xa77), &fixed_key(), &info);
    p.content_type = Some("image/png".into());
    p.name = Some("cat.png".into());
    (p, blob, pt)
}

#[test]
fn pointer_json() {
    let (p, _, _) = sample_pointer();
    let v = serde_json::to_value(&p).unwrap();
    assert_eq!(
        v,
        json!({
            "id": "00000000-0000-0000-0000-000000000a77",
            "key": b64_encode(&[7u8; 32]),
            "sha256": b64_encode(p.sha256.as_bytes()),
            "size": 2100,
            "encrypted_size": 9 + 2100 + 3 * 16,
            "chunk_size": 1024,
            "content_type": "image/png",
            "name": "cat.png",
        })
    );
    let back: AttachmentPointer = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(back, p);

    // Optional fields: omitted on output, absent or null on input.
    let mut bare = p.clone();
    bare.content_type = None;
    bare.name = None;
    let bv = serde_json::to_value(&bare).unwrap();
    assert!(bv.get("content_type").is_none() && bv.get("name").is_none());
    let mut nulls = bv.clone();
    nulls["name"] = Value::Null;
    nulls["content_type"] = Value::Null;
    assert_eq!(
        serde_json::from_value::<AttachmentPointer>(nulls).unwrap(),
        bare
    );

    // Unknown fields, missing fields and bad base64 are rejected.
    let mut extra = v.clone();
    extra["thumbnail"] = json!("x");
    assert!(serde_json::from_value::<AttachmentPointer>(extra).is_err());
    let mut missing = v.clone();
    missing.as_object_mut().unwrap().remove("sha256");
    assert!(serde_json::from_value::<AttachmentPointer>(missing).is_err());
    let mut padded = v;
    padded["key"] = json!(format!("{}=", b64_encode(&[7u8; 32])));
    assert!(serde_json::from_value::<AttachmentPointer>(padded).is_err());
}

#[test]
fn debug_output_redacts_keys() {
    let (p, _, _) = sample_pointer();
    let secret = b64_encode(&[7u8; 32]);
    let dbg = format!("{p:?}");
    assert!(!dbg.contains(&secret), "{dbg}");
    assert!(dbg.contains("redacted"));
    assert!(dbg.contains("cat.png"));
    assert_eq!(format!("{:?}", fixed_key()), "AttachmentKey([redacted])");
    let (enc, _) = AttachmentEncryptor::with_key(&fixed_key(), CS).unwrap();
    let dbg = format!("{enc:?}");
    assert!(!dbg.contains("7, 7, 7") && !dbg.contains(&secret), "{dbg}");
    let f = enc.finish().unwrap();
    assert!(!format!("{f:?}").contains("7, 7, 7"));
    let dbg = format!("{:?}", AttachmentDecryptor::new(&fixed_key()));
    assert!(!dbg.contains("7, 7, 7"), "{dbg}");
}

#[test]
fn pointer_checks() {
    let (p, blob, pt) = sample_pointer();
    p.validate().unwrap();
    assert_eq!(&p.decrypt(&blob).unwrap()[..], &pt[..]);

    let bad = |f: &dyn Fn(&mut AttachmentPointer)| {
        let mut q = p.clone();
        f(&mut q);
        q
    };
    for q in [
        bad(&|q| q.key = B64(vec![7u8; 31])),
        bad(&|q| q.sha256 = B64(vec![0u8; 33])),
        bad(&|q| q.chunk_size = 512),
        bad(&|q| q.size += 1),
        bad(&|q| q.encrypted_size += 16),
    ] {
        assert!(matches!(q.validate(), Err(AttachmentError::BadPointer(_))));
        assert!(matches!(
            q.decrypt(&blob),
            Err(AttachmentError::BadPointer(_))
        ));
        assert!(matches!(
            AttachmentDecryptor::for_pointer(&q),
            Err(AttachmentError::BadPointer(_))
        ));
    }

    // Wrong digest or key in the pointer.
    let q = bad(&|q| q.sha256.0[0] ^= 1);
    assert_eq!(
        q.decrypt(&blob).unwrap_err(),
        AttachmentError::DigestMismatch
    );
    let q = bad(&|q| q.key.0[0] ^= 1);
    assert_eq!(
        q.decrypt(&blob).unwrap_err(),
        AttachmentError::WrongKeyOrCorrupted
    );

    // A blob of the wrong length: refused before hashing or decrypting...
    let longer = [&blob[..], &[0u8]].concat();
    assert_eq!(
        p.decrypt(&longer).unwrap_err(),
        AttachmentError::SizeMismatch
    );
    assert_eq!(
        p.decrypt(&blob[..blob.len() - 1]).unwrap_err(),
        AttachmentError::SizeMismatch
    );
    // ...and in streaming, as soon as more bytes arrive than the pointer announces.
    let mut dec = AttachmentDecryptor::for_pointer(&p).unwrap();
    dec.update(&blob).unwrap();
    assert_eq!(dec.update(&[0]).unwrap_err(), AttachmentError::SizeMismatch);
    let (_, r) = stream(
        AttachmentDecryptor::for_pointer(&p).unwrap(),
        &blob[..blob.len() - 1],
        100,
    );
    assert_eq!(r.unwrap_err(), AttachmentError::SizeMismatch);

    // The chunk size in the header must be the pointer's (here both 125-byte
    // blobs are consistent: 100 bytes in one chunk of 1024 or of 2048).
    let (small, info) = encrypt_fixed(CS, &data(100));
    let mut q = AttachmentPointer::new(Uuid::from_u128(9), &fixed_key(), &info);
    q.chunk_size = 2048;
    q.validate().unwrap();
    assert_eq!(
        q.decrypt(&small).unwrap_err(),
        AttachmentError::SizeMismatch
    );
}

#[test]
fn key_from_slice() {
    assert!(AttachmentKey::from_slice(&[1u8; 32]).is_ok());
    for len in [0, 31, 33] {
        assert!(matches!(
            AttachmentKey::from_slice(&vec![1u8; len]),
            Err(AttachmentError::BadPointer(_))
        ));
    }
}

// ---------------------------------------------------------------------------
// Test vectors

fn h(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

struct VectorSpec {
    name: &'static str,
    key: [u8; 32],
    chunk_size: u32,
    plaintext: Vec<u8>,
    pointer: Option<(&'static str, &'static str)>,
}

fn specs() -> Vec<VectorSpec> {
    let mut key = [0u8; 32];
    for (i, b) in key.iter_mut().enumerate() {
        *b = i as u8;
    }
    vec![
        VectorSpec {
            name: "three-chunks",
            key,
            chunk_size: 1024,
            plaintext: (0..2560u32).map(|i| i as u8).collect(),
            pointer: Some(("application/octet-stream", "vector.bin")),
        },
        VectorSpec {
            name: "exact-multiple",
            key: [0x42; 32],
            chunk_size: 1024,
            plaintext: vec![0x61; 2048],
            pointer: None,
        },
        VectorSpec {
            name: "empty",
            key: [0xee; 32],
            chunk_size: 1024,
            plaintext: vec![],
            pointer: None,
        },
    ]
}

fn generate() -> Value {
    let vectors: Vec<Value> = specs()
        .iter()
        .map(|s| {
            let key = AttachmentKey::from_bytes(s.key);
            let (blob, info) = encrypt_split(&key, s.chunk_size, &s.plaintext, &[]);
            let (header, chunks) = blob.split_at(HEADER_LEN);
            let frame = s.chunk_size as usize + TAG_LEN;
            let n = chunks.len().div_ceil(frame);
            let chunk_list: Vec<Value> = chunks
                .chunks(frame)
                .enumerate()
                .map(|(i, c)| {
                    let mut nonce = vec![0u8; 3];
                    nonce.extend_from_slice(&(i as u64).to_be_bytes());
                    nonce.push(u8::from(i + 1 == n));
                    json!({"nonce": hex::encode(nonce), "ciphertext": hex::encode(c)})
                })
                .collect();
            let mut pointer = AttachmentPointer::new(Uuid::from_u128(0xa77a_c4ed), &key, &info);
            if let Some((ct, name)) = s.pointer {
                pointer.content_type = Some(ct.into());
                pointer.name = Some(name.into());
            }
            json!({
                "name": s.name,
                "key": hex::encode(s.key),
                "chunk_size": s.chunk_size,
                "plaintext": hex::encode(&s.plaintext),
                "header": hex::encode(header),
                "chunks": chunk_list,
                "blob": hex::encode(&blob),
                "sha256": hex::encode(info.sha256),
                "size": info.size,
                "encrypted_size": info.encrypted_size,
                "pointer": pointer,
            })
        })
        .collect();
    json!({
        "description": "Sotto attachment format v1 test vectors; see docs/protocol.md §11. Hex unless noted; `pointer` is the JSON a sender seals into a message (base64url fields).",
        "vectors": vectors,
    })
}

fn raw_seal(key: &[u8; 32], header: &[u8], i: u64, last: bool, pt: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; 12];
    nonce[3..11].copy_from_slice(&i.to_be_bytes());
    nonce[11] = u8::from(last);
    Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key))
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: pt,
                aad: header,
            },
        )
        .unwrap()
}

/// Re-derives every vector from the rules of docs/protocol.md §11 with raw
/// aes-gcm and sha2 calls, then decrypts it through the library.
fn check_against_spec(file: &Value) {
    for v in file["vectors"].as_array().unwrap() {
        let key: [u8; 32] = h(&v["key"]).try_into().unwrap();
        let cs = u32::try_from(v["chunk_size"].as_u64().unwrap()).unwrap();
        let pt = h(&v["plaintext"]);

        // header = "SOTA" ‖ 0x01 ‖ chunk_size u32 big-endian.
        let mut header = b"SOTA".to_vec();
        header.push(1);
        header.extend_from_slice(&cs.to_be_bytes());
        assert_eq!(h(&v["header"]), header);

        // Chunks: full chunk_size pieces; the last holds the rest (1..=cs bytes),
        // and is the only chunk, empty, for an empty file.
        let parts: Vec<&[u8]> = if pt.is_empty() {
            vec![&[]]
        } else {
            pt.chunks(cs as usize).collect()
        };
        let mut blob = header.clone();
        let listed = v["chunks"].as_array().unwrap();
        assert_eq!(listed.len(), parts.len());
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            let ct = raw_seal(&key, &header, i as u64, last, part);
            let mut nonce = [0u8; 12];
            nonce[3..11].copy_from_slice(&(i as u64).to_be_bytes());
            nonce[11] = u8::from(last);
            assert_eq!(h(&listed[i]["nonce"]), nonce);
            assert_eq!(h(&listed[i]["ciphertext"]), ct);
            blob.extend_from_slice(&ct);
        }
        assert_eq!(h(&v["blob"]), blob);
        let digest: [u8; 32] = Sha256::digest(&blob).into();
        assert_eq!(h(&v["sha256"]), digest);
        assert_eq!(v["size"].as_u64().unwrap(), pt.len() as u64);
        assert_eq!(
            v["encrypted_size"].as_u64().unwrap(),
            (9 + pt.len() + 16 * parts.len()) as u64
        );
        assert_eq!(v["encrypted_size"].as_u64().unwrap(), blob.len() as u64);

        // The pointer carries the same facts in base64url.
        let p: AttachmentPointer = serde_json::from_value(v["pointer"].clone()).unwrap();
        assert_eq!(p.key.as_bytes(), &key);
        assert_eq!(p.sha256.as_bytes(), &digest);
        assert_eq!(p.size, pt.len() as u64);
        assert_eq!(p.encrypted_size, blob.len() as u64);
        assert_eq!(p.chunk_size, cs);

        // The library decrypts it every way.
        let k = AttachmentKey::from_bytes(key);
        assert_eq!(
            &attachment::decrypt(&k, &blob, &digest).unwrap()[..],
            &pt[..]
        );
        assert_eq!(&p.decrypt(&blob).unwrap()[..], &pt[..]);
        assert_eq!(stream_decrypt(&k, &blob, 7).unwrap(), pt);
    }
}

#[test]
fn vectors_regenerate_identically() {
    let fresh = generate();
    if std::env::var_os("SOTTO_REGENERATE_VECTORS").is_some() {
        std::fs::write(PATH, serde_json::to_string_pretty(&fresh).unwrap() + "\n").unwrap();
    }
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(PATH).expect(
            "vectors/attachment_v1.json is missing: run with SOTTO_REGENERATE_VECTORS=1 once",
        ))
        .unwrap();
    assert_eq!(fresh["description"], file["description"]);
    let (want, got) = (
        file["vectors"].as_array().unwrap(),
        fresh["vectors"].as_array().unwrap(),
    );
    assert_eq!(want.len(), got.len());
    for (w, g) in want.iter().zip(got) {
        assert_eq!(g, w, "vector `{}` differs from the file", w["name"]);
    }
    assert_eq!(
        file.as_object().unwrap().len(),
        fresh.as_object().unwrap().len()
    );
    check_against_spec(&file);
}
