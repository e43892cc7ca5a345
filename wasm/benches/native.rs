//! Native baseline for `scripts/bench-wasm`: the operations the browser page
//! (`wasm/bench/page.mjs`) measures through the WASM package, measured here on
//! sotto-core directly in the same run, the same way (median of batch means).
//! Prints one JSON object of medians in microseconds.
//!
//! `cargo bench -p sotto-wasm --bench native`

use std::hint::black_box;
use std::time::Instant;

use sotto_core::attachment;
use sotto_core::envelope::{self, Header, OpenContext, Recipient};
use sotto_core::keys::{
    DeviceBundle, DeviceKeyOptions, DeviceKeys, IdentityKeyPair, VerifiedDevice,
};
use uuid::Uuid;

/// Median over `batches` of the mean time of `per_batch` calls, in µs.
fn median_us(batches: usize, per_batch: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..per_batch {
        f(); // warm-up
    }
    let mut means: Vec<f64> = (0..batches)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..per_batch {
                f();
            }
            t.elapsed().as_secs_f64() * 1e6 / per_batch as f64
        })
        .collect();
    means.sort_by(f64::total_cmp);
    means.get(means.len() / 2).copied().unwrap_or(f64::NAN)
}

struct Party {
    device_id: Uuid,
    keys: DeviceKeys,
    verified: VerifiedDevice,
}

fn party(n: u128) -> Result<Party, Box<dyn std::error::Error>> {
    let (user, device_id) = (Uuid::from_u128(n), Uuid::from_u128(n << 64 | 1));
    let identity = IdentityKeyPair::generate()?;
    let keys = DeviceKeys::generate(DeviceKeyOptions::default())?;
    let verified = DeviceBundle::create(&identity, &keys, user, device_id)?.verify()?;
    Ok(Party {
        device_id,
        keys,
        verified,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(()); // `cargo bench -- --list` (cargo's target discovery)
    }
    let sender = party(1)?;
    let peers: Vec<Party> = (2..12).map(party).collect::<Result<_, _>>()?;
    let room = Uuid::from_u128(0x7007);
    let header = Header {
        room_id: room,
        sender_user_id: sender.verified.user_id(),
        sender_device_id: sender.device_id,
        client_message_id: Uuid::from_u128(0xc11e47),
        timestamp_ms: 1_700_000_000_000,
    };
    let plaintext = vec![0x42u8; 1024];
    let ctx = OpenContext {
        room_id: room,
        sender: &sender.verified,
    };

    let mut out = Vec::new();
    for n in [1usize, 10] {
        let recipients: Vec<Recipient<'_>> = peers
            .iter()
            .take(n)
            .map(|p| Recipient::x25519(&p.verified))
            .collect();
        let seal =
            || envelope::seal(&plaintext, &header, &recipients, &sender.keys).map(|e| e.to_bytes());
        let per = if n == 1 { 40 } else { 8 };
        let seal_us = median_us(31, per, || {
            black_box(seal().ok());
        });
        let bytes = seal()?;
        let reader = peers.first().ok_or("no peer")?;
        let open_us = median_us(31, 40, || {
            black_box(envelope::open(&bytes, reader.device_id, &reader.keys, &ctx).ok());
        });
        out.push(format!("\"seal_1k_x25519_{n}\": {seal_us:.2}"));
        out.push(format!("\"open_1k_x25519_{n}\": {open_us:.2}"));
    }

    let file: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    let enc_us = median_us(15, 4, || {
        black_box(attachment::encrypt(&file).ok());
    });
    let sealed = attachment::encrypt(&file)?;
    let pointer =
        attachment::AttachmentPointer::new(Uuid::from_u128(0xa77), &sealed.key, &sealed.info);
    let dec_us = median_us(15, 4, || {
        black_box(pointer.decrypt(&sealed.blob).ok());
    });
    out.push(format!("\"attachment_encrypt_1mib\": {enc_us:.2}"));
    out.push(format!("\"attachment_decrypt_1mib\": {dec_us:.2}"));
    println!("{{{}}}", out.join(", "));
    Ok(())
}
