//! The store key and local history (`sotto_engine::vault`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use sotto_core::backup::{self, BackupParams, DeviceSecrets};
use sotto_core::keys::{DeviceKeyOptions, DeviceKeys, IdentityKeyPair};
use sotto_engine::Content;
use sotto_engine::vault::{HistoryItem, HistoryTrust, READ_AHEAD, ReadAhead, StoreKey, VaultError};
use uuid::Uuid;

fn rng() -> ChaCha20Rng {
    ChaCha20Rng::from_seed([7; 32])
}

fn item(room: Uuid, seq: u64, text: &str) -> HistoryItem {
    HistoryItem {
        room_id: room,
        id: Uuid::from_u128(seq as u128),
        seq,
        sender_id: Uuid::from_u128(1),
        sender_device: Uuid::from_u128(2),
        client_id: Uuid::from_u128(3),
        sent_at_ms: 1_700_000_000_000,
        received_at: "2026-12-06T12:00:00.000Z".into(),
        trust: HistoryTrust::Unverified,
        content: Content::text(text),
    }
}

#[test]
fn the_passphrase_wraps_the_store_key_and_only_it_unwraps_it() {
    let mut rng = rng();
    let key = StoreKey::generate(&mut rng);
    let wrapped = key
        .wrap(b"store pass", &BackupParams::MINIMUM, &mut rng)
        .unwrap();
    assert_eq!(wrapped.len(), 96);
    let again = StoreKey::unwrap(&wrapped, b"store pass").unwrap();
    // Same key: what one seals the other opens.
    let room = Uuid::from_u128(9);
    let sealed = key
        .history()
        .seal(&item(room, 4, "hello"), &mut rng)
        .unwrap();
    assert_eq!(
        again.history().open(room, 4, &sealed).unwrap(),
        item(room, 4, "hello")
    );

    assert_eq!(
        StoreKey::unwrap(&wrapped, b"wrong").err(),
        Some(VaultError::WrongPassphrase)
    );
    // One byte of each part: magic, version, parameters, salt, nonce, key, tag.
    for i in [0, 7, 19, 20, 40, 60, 95] {
        let mut bad = wrapped.clone();
        bad[i] ^= 1;
        assert!(StoreKey::unwrap(&bad, b"store pass").is_err(), "byte {i}");
    }
    assert_eq!(
        StoreKey::unwrap(&wrapped[..95], b"store pass").err(),
        Some(VaultError::Malformed)
    );
    assert_eq!(
        key.wrap(b"", &BackupParams::MINIMUM, &mut rng).err(),
        Some(VaultError::EmptyPassphrase)
    );
    let huge = BackupParams {
        m_cost_kib: 1 << 30,
        t_cost: 1,
        p_cost: 1,
    };
    assert_eq!(
        key.wrap(b"p", &huge, &mut rng).err(),
        Some(VaultError::BadParameters)
    );
}

#[test]
fn changing_the_passphrase_rewraps_the_key_and_reencrypts_nothing() {
    let mut rng = rng();
    let key = StoreKey::generate(&mut rng);
    let room = Uuid::from_u128(9);
    let sealed = key
        .history()
        .seal(&item(room, 1, "kept"), &mut rng)
        .unwrap();
    let rewrapped = key
        .wrap(b"new pass", &BackupParams::MINIMUM, &mut rng)
        .unwrap();
    let reopened = StoreKey::unwrap(&rewrapped, b"new pass").unwrap();
    assert_eq!(
        reopened.history().open(room, 1, &sealed).unwrap().content,
        Content::text("kept")
    );
}

#[test]
fn a_history_item_opens_only_where_it_was_kept() {
    let mut rng = rng();
    let key = StoreKey::generate(&mut rng).history();
    let room = Uuid::from_u128(9);
    let secret = "the launch code is 4711";
    let sealed = key.seal(&item(room, 5, secret), &mut rng).unwrap();
    // No plaintext in what is stored.
    assert!(!sealed.windows(secret.len()).any(|w| w == secret.as_bytes()));
    assert_eq!(
        key.open(room, 6, &sealed).err(),
        Some(VaultError::Corrupted)
    );
    assert_eq!(
        key.open(Uuid::from_u128(8), 5, &sealed).err(),
        Some(VaultError::Corrupted)
    );
    let other = StoreKey::generate(&mut rng).history();
    assert_eq!(
        other.open(room, 5, &sealed).err(),
        Some(VaultError::Corrupted)
    );
    let mut bad = sealed.clone();
    bad[0] = 2;
    assert_eq!(key.open(room, 5, &bad).err(), Some(VaultError::Malformed));
    assert_eq!(
        key.open(room, 5, &sealed[..5]).err(),
        Some(VaultError::Malformed)
    );
    let last = sealed.len() - 1;
    let mut bad = sealed.clone();
    bad[last] ^= 1;
    assert_eq!(key.open(room, 5, &bad).err(), Some(VaultError::Corrupted));
}

#[test]
fn the_device_secrets_are_kept_under_the_store_key() {
    let mut rng = rng();
    let key = StoreKey::generate(&mut rng);
    let secrets = DeviceSecrets {
        user_id: Uuid::from_u128(1),
        device_id: Uuid::from_u128(2),
        identity: IdentityKeyPair::generate().unwrap(),
        device: DeviceKeys::generate(DeviceKeyOptions::default()).unwrap(),
    };
    let blob = backup::export_with_recovery_key(&secrets, &key.device_key()).unwrap();
    let wrapped = key.wrap(b"pass", &BackupParams::MINIMUM, &mut rng).unwrap();
    let back = StoreKey::unwrap(&wrapped, b"pass").unwrap();
    let opened = backup::import_with_recovery_key(&blob, &back.device_key()).unwrap();
    assert_eq!(opened.device_id, secrets.device_id);
    assert_eq!(opened.identity.public_key(), secrets.identity.public_key());
    let other = StoreKey::generate(&mut rng);
    assert!(backup::import_with_recovery_key(&blob, &other.device_key()).is_err());
}

#[test]
fn a_stored_account_unlocks_and_an_old_store_comes_back_upgraded() {
    let mut rng = rng();
    let p = BackupParams::MINIMUM;
    let secrets = DeviceSecrets {
        user_id: Uuid::from_u128(1),
        device_id: Uuid::from_u128(2),
        identity: IdentityKeyPair::generate().unwrap(),
        device: DeviceKeys::generate(DeviceKeyOptions::default()).unwrap(),
    };
    // Kept as a set-up keeps it: opens with the passphrase, nothing to upgrade.
    let kept = StoreKey::keep(&secrets, b"pass", &p, &mut rng).unwrap();
    let u = StoreKey::unlock(
        Some(&kept.wrapped_key),
        &kept.secrets,
        b"pass",
        &p,
        &mut rng,
    )
    .unwrap();
    assert!(u.upgraded.is_none());
    assert_eq!(u.secrets.device_id, secrets.device_id);
    let same = |a: &StoreKey, b: &StoreKey| {
        let sealed = a
            .history()
            .seal(
                &item(Uuid::nil(), 1, "x"),
                &mut ChaCha20Rng::from_seed([1; 32]),
            )
            .unwrap();
        b.history().open(Uuid::nil(), 1, &sealed).is_ok()
    };
    assert!(same(&u.key, &kept.key));
    let wrong = StoreKey::unlock(
        Some(&kept.wrapped_key),
        &kept.secrets,
        b"nope",
        &p,
        &mut rng,
    );
    assert_eq!(wrong.unwrap_err(), VaultError::WrongPassphrase);
    // Another store's secrets beside this key: named, not "wrong passphrase".
    let other = StoreKey::keep(&secrets, b"pass", &p, &mut rng).unwrap();
    let mixed = StoreKey::unlock(
        Some(&kept.wrapped_key),
        &other.secrets,
        b"pass",
        &p,
        &mut rng,
    );
    assert_eq!(mixed.unwrap_err(), VaultError::SecretsCorrupted);

    // A store from before the store key: a passphrase backup, opened with
    // the passphrase and kept anew, which then unlocks as any store.
    let old = backup::export_with_passphrase(&secrets, b"pass", &p).unwrap();
    assert_eq!(
        StoreKey::unlock(None, &old[..12], b"pass", &p, &mut rng).unwrap_err(),
        VaultError::Malformed,
        "a backup cut in its header is malformed, not a wrong passphrase"
    );
    let wrong = StoreKey::unlock(None, &old, b"nope", &p, &mut rng);
    assert_eq!(wrong.unwrap_err(), VaultError::WrongPassphrase);
    assert_eq!(
        StoreKey::unlock(None, &old, b"", &p, &mut rng).unwrap_err(),
        VaultError::EmptyPassphrase
    );
    let u = StoreKey::unlock(None, &old, b"pass", &p, &mut rng).unwrap();
    assert_eq!(
        u.secrets.identity.public_key(),
        secrets.identity.public_key()
    );
    let up = u.upgraded.unwrap();
    let again =
        StoreKey::unlock(Some(&up.wrapped_key), &up.secrets, b"pass", &p, &mut rng).unwrap();
    assert!(again.upgraded.is_none());
    assert!(same(&again.key, &u.key));
    assert_eq!(again.secrets.device_id, secrets.device_id);
}

#[test]
fn keys_never_print() {
    let mut rng = rng();
    let key = StoreKey::generate(&mut rng);
    assert_eq!(format!("{key:?}"), "StoreKey([redacted])");
    assert_eq!(format!("{:?}", key.history()), "HistoryKey([redacted])");
    let shown = format!("{:?}", item(Uuid::nil(), 1, "secret words"));
    assert!(!shown.contains("secret words"), "{shown}");
}

#[test]
fn items_sealed_as_json_bytes_open_as_items_and_back() {
    // The browser client encodes the item in JavaScript and seals the bytes;
    // the same item opens typed, and typed items open as the same JSON.
    let mut rng = rng();
    let key = StoreKey::generate(&mut rng).history();
    let room = Uuid::from_u128(9);
    let it = item(room, 3, "from the browser");
    let json = serde_json::to_vec(&it).unwrap();
    let sealed = key.seal_bytes(room, 3, &json, &mut rng).unwrap();
    assert_eq!(key.open(room, 3, &sealed).unwrap(), it);
    let typed = key.seal(&it, &mut rng).unwrap();
    // Opened bytes are the JSON padded with spaces to its Padmé length.
    let opened = key.open_bytes(room, 3, &typed).unwrap();
    assert_eq!(opened.trim_ascii_end(), &json[..]);
    assert_eq!(
        opened.len(),
        sotto_core::envelope::padding::padme_len(json.len())
    );
    // Bytes sealed for one place but naming another do not open as an item.
    let elsewhere = key.seal_bytes(room, 4, &json, &mut rng).unwrap();
    assert_eq!(
        key.open(room, 4, &elsewhere).err(),
        Some(VaultError::Corrupted)
    );
    assert_eq!(
        key.seal_bytes(room, 1, &vec![b' '; 600 * 1024], &mut rng)
            .err(),
        Some(VaultError::Malformed)
    );
}

#[test]
fn read_ahead_serves_the_rngs_bytes_in_order_once_each() {
    // The same stream as the RNG itself, whatever the request sizes: each
    // byte once, none skipped but the unserved rest of a pool (a request
    // larger than what is left refills), large requests read directly.
    let mut pooled = ReadAhead::new(rng());
    let mut direct = rng();
    let mut stream = vec![0u8; 16 * READ_AHEAD];
    direct.fill_bytes(&mut stream);
    let mut got = Vec::new();
    for n in [12usize, 12, 5, 700, 12, READ_AHEAD, 1, 12, 20] {
        let mut b = vec![0u8; n];
        pooled.fill_bytes(&mut b);
        got.push(b);
    }
    let at = |from: usize, n: usize| stream[from..from + n].to_vec();
    let p = READ_AHEAD;
    assert_eq!(got[0], at(0, 12));
    assert_eq!(got[1], at(12, 12));
    assert_eq!(got[2], at(24, 5));
    // 29 + 700 ≤ 768: from the pool.
    assert_eq!(got[3], at(29, 700));
    // 39 left, 12 fit.
    assert_eq!(got[4], at(729, 12));
    // A whole pool's worth: read directly, after the first pool.
    assert_eq!(got[5], at(p, p));
    // 27 left in the first pool.
    assert_eq!(got[6], at(741, 1));
    assert_eq!(got[7], at(742, 12));
    // 14 left, 20 asked: a new pool (the 14 never served).
    assert_eq!(got[8], at(2 * p, 20));
    // Nonces drawn through it still differ item by item.
    let key = StoreKey::generate(&mut rng()).history();
    let a = key.seal(&item(Uuid::nil(), 1, "x"), &mut pooled).unwrap();
    let b = key.seal(&item(Uuid::nil(), 1, "x"), &mut pooled).unwrap();
    assert_ne!(a[1..13], b[1..13]);
    assert_eq!(
        key.open(Uuid::nil(), 1, &b).unwrap().content,
        Content::text("x")
    );
}
