//! Criterion benchmarks of sotto-core. Run with `scripts/bench`, which also
//! measures the OpenSSL reference in the same run and writes BENCHMARKS.md.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sotto_core::attachment::{self, AttachmentDecryptor, AttachmentEncryptor};
use sotto_core::backup::{self, BackupParams};
use sotto_core::envelope::{self, Header, OpenContext, Recipient};
use sotto_core::keys::{
    DeviceBundle, DeviceKeyOptions, DeviceKeys, IdentityKeyPair, RsaBits, VerifiedDevice,
};
use sotto_core::{primitives, testing};
use uuid::Uuid;

const SIZES: [usize; 4] = [1, 10, 100, 1000];

struct Fixture {
    sender: DeviceKeys,
    sender_device: VerifiedDevice,
    /// (device id, keys, verified bundle); every device has an RSA-3072 key (the
    /// same one, since generating 1000 RSA keys would dominate the run).
    devices: Vec<(Uuid, DeviceKeys, VerifiedDevice)>,
}

fn fixture() -> Fixture {
    let alice = IdentityKeyPair::generate().unwrap();
    let sender = DeviceKeys::generate(DeviceKeyOptions::default()).unwrap();
    let sender_device =
        DeviceBundle::create(&alice, &sender, Uuid::from_u128(1), Uuid::from_u128(2))
            .unwrap()
            .verify()
            .unwrap();
    let bob = IdentityKeyPair::generate().unwrap();
    let rsa = DeviceKeys::generate(DeviceKeyOptions {
        rsa: Some(RsaBits::Rsa3072),
    })
    .unwrap();
    let rsa_der = rsa.rsa_pkcs8_der().unwrap().unwrap();
    let devices = (0..1000u128)
        .map(|i| {
            let fresh = DeviceKeys::generate(DeviceKeyOptions::default()).unwrap();
            let keys = DeviceKeys::from_secret_parts(
                &fresh.signing_seed(),
                &fresh.x25519_secret(),
                Some(&rsa_der),
            )
            .unwrap();
            let id = Uuid::from_u128(0x1000 + i);
            let v = DeviceBundle::create(&bob, &keys, Uuid::from_u128(3), id)
                .unwrap()
                .verify()
                .unwrap();
            (id, keys, v)
        })
        .collect();
    Fixture {
        sender,
        sender_device,
        devices,
    }
}

fn header() -> Header {
    Header {
        room_id: Uuid::from_u128(9),
        sender_user_id: Uuid::from_u128(1),
        sender_device_id: Uuid::from_u128(2),
        client_message_id: Uuid::from_u128(77),
        timestamp_ms: 1_763_700_000_000,
    }
}

fn keygen(c: &mut Criterion) {
    let mut g = c.benchmark_group("keygen");
    g.bench_function("identity_ed25519", |b| {
        b.iter(|| IdentityKeyPair::generate().unwrap())
    });
    g.bench_function("device_x25519", |b| {
        b.iter(|| DeviceKeys::generate(DeviceKeyOptions::default()).unwrap())
    });
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    for bits in [RsaBits::Rsa2048, RsaBits::Rsa3072] {
        g.bench_function(format!("device_rsa{}", bits.bits()), |b| {
            b.iter(|| DeviceKeys::generate(DeviceKeyOptions { rsa: Some(bits) }).unwrap())
        });
    }
    g.finish();
}

fn seal_open(c: &mut Criterion) {
    let f = fixture();
    let plaintext = vec![0x42u8; 1024];
    let h = header();
    let ctx = OpenContext {
        room_id: h.room_id,
        sender: &f.sender_device,
    };
    for (suite, name) in [
        (sotto_core::suite::Suite::X25519, "x25519"),
        (sotto_core::suite::Suite::Rsa, "rsa"),
    ] {
        let mut g = c.benchmark_group(format!("seal_1KiB_{name}"));
        g.sample_size(10).measurement_time(Duration::from_secs(5));
        for n in SIZES {
            let recipients: Vec<Recipient<'_>> = f.devices[..n]
                .iter()
                .map(|d| Recipient::new(&d.2, suite))
                .collect();
            g.throughput(Throughput::Elements(n as u64));
            g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
                b.iter(|| {
                    envelope::seal(black_box(&plaintext), &h, &recipients, &f.sender).unwrap()
                })
            });
        }
        g.finish();
        let mut g = c.benchmark_group(format!("open_1KiB_{name}"));
        for n in SIZES {
            let recipients: Vec<Recipient<'_>> = f.devices[..n]
                .iter()
                .map(|d| Recipient::new(&d.2, suite))
                .collect();
            let bytes = envelope::seal(&plaintext, &h, &recipients, &f.sender)
                .unwrap()
                .to_bytes();
            let (id, keys, _) = &f.devices[n - 1];
            g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
                b.iter(|| envelope::open(black_box(&bytes), *id, keys, &ctx).unwrap())
            });
        }
        g.finish();
    }
}

/// The primitive operations one x25519 `open` performs, measured alone so the
/// protocol overhead can be stated as a ratio (see BENCHMARKS.md).
fn open_parts(c: &mut Criterion) {
    let f = fixture();
    let h = header();
    let (id, keys, dev) = &f.devices[0];
    let bytes = envelope::seal(
        &vec![0x42u8; 1024],
        &h,
        &[Recipient::x25519(dev)],
        &f.sender,
    )
    .unwrap()
    .to_bytes();
    let env = envelope::Envelope::from_bytes(&bytes).unwrap();
    let mut g = c.benchmark_group("open_parts_x25519_1");
    // 1. Ed25519 strict verification over the signed bytes.
    let signed = [
        &b"SOTTO-v1 envelope-signature\0"[..],
        &bytes[..bytes.len() - 64],
    ]
    .concat();
    g.bench_function("ed25519_verify", |b| {
        b.iter(|| {
            primitives::ed25519_verify(
                f.sender_device.signing_key(),
                black_box(&signed),
                &env.signature,
            )
            .unwrap()
        })
    });
    // 2. HPKE single-shot open of the wrapped key.
    let info = [
        &b"SOTTO-v1 wrap x25519\0"[..],
        &h.to_bytes()[..],
        id.as_bytes(),
    ]
    .concat();
    let w = &env.recipients[0].wrapped_key;
    let sk = keys.x25519_secret();
    g.bench_function("hpke_open", |b| {
        b.iter(|| testing::hpke_open(&sk, &w[..32], black_box(&info), &[], &w[32..]).unwrap())
    });
    // 3. AES-256-GCM decryption of the padded content.
    let key = [7u8; 32];
    let nonce = [9u8; 12];
    let aad = [&b"SOTTO-v1 content\0"[..], &h.to_bytes()[..]].concat();
    let ct =
        primitives::aes256gcm_encrypt(&key, &nonce, &aad, &vec![0u8; env.ciphertext.len() - 16])
            .unwrap();
    g.bench_function("aes256gcm_decrypt_content", |b| {
        b.iter(|| primitives::aes256gcm_decrypt(&key, &nonce, &aad, black_box(&ct)).unwrap())
    });
    g.bench_function("open_total", |b| {
        b.iter(|| {
            envelope::open(
                black_box(&bytes),
                *id,
                keys,
                &OpenContext {
                    room_id: h.room_id,
                    sender: &f.sender_device,
                },
            )
            .unwrap()
        })
    });
    g.finish();
}

fn bulk(c: &mut Criterion) {
    let mut g = c.benchmark_group("aes256gcm_encrypt");
    let key = [1u8; 32];
    let nonce = [2u8; 12];
    for size in [16 * 1024, 1024 * 1024] {
        let data = vec![0x5au8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, _| {
            b.iter(|| primitives::aes256gcm_encrypt(&key, &nonce, &[], black_box(&data)).unwrap())
        });
    }
    g.finish();
}

/// Attachment encryption and decryption (64 KiB chunks): streaming through the
/// encryptor/decryptor in 64 KiB slices, and the one-shot helpers (which hash
/// the blob before decrypting).
fn attachments(c: &mut Criterion) {
    let mut g = c.benchmark_group("attachment");
    g.sample_size(20);
    for size in [64 * 1024, 4 * 1024 * 1024] {
        let data = vec![0x5au8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("encrypt_stream", size), &size, |b, _| {
            b.iter(|| {
                let (mut enc, mut n) = AttachmentEncryptor::new(attachment::DEFAULT_CHUNK_SIZE)
                    .map(|(e, h)| (e, h.len()))
                    .unwrap();
                for piece in black_box(&data).chunks(64 * 1024) {
                    n += enc.update(piece).unwrap().len();
                }
                n + enc.finish().unwrap().tail.len()
            })
        });
        let e = attachment::encrypt(&data).unwrap();
        g.bench_with_input(BenchmarkId::new("decrypt_stream", size), &size, |b, _| {
            b.iter(|| {
                let mut dec = AttachmentDecryptor::new(&e.key).with_expected_digest(e.info.sha256);
                let mut n = 0;
                for piece in black_box(&e.blob).chunks(64 * 1024) {
                    n += dec.update(piece).unwrap().len();
                }
                n + dec.finish().unwrap().len()
            })
        });
        g.bench_with_input(BenchmarkId::new("encrypt_one_shot", size), &size, |b, _| {
            b.iter(|| attachment::encrypt(black_box(&data)).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("decrypt_one_shot", size), &size, |b, _| {
            b.iter(|| attachment::decrypt(&e.key, black_box(&e.blob), &e.info.sha256).unwrap())
        });
    }
    g.finish();
}

fn kdf(c: &mut Criterion) {
    let mut g = c.benchmark_group("backup_kdf");
    g.sample_size(10);
    g.bench_function("argon2id_64MiB_t3_p1", |b| {
        b.iter(|| {
            backup::derive_passphrase_key(b"correct horse", &[3u8; 16], &BackupParams::default())
                .unwrap()
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    keygen,
    seal_open,
    open_parts,
    bulk,
    attachments,
    kdf
);
criterion_main!(benches);
