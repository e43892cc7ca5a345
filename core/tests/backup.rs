//! Key backup: round trips, wrong passphrase or recovery key, and every
//! tampered byte failing cleanly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use sotto_core::BackupError;
use sotto_core::backup::{
    self, BackupParams, DeviceSecrets, RecoveryKey, export_with_passphrase,
    export_with_recovery_key, import_with_passphrase, import_with_recovery_key,
};
use sotto_core::keys::{DeviceBundle, DeviceKeyOptions, DeviceKeys, IdentityKeyPair, RsaBits};
use uuid::Uuid;

fn secrets(rsa: Option<RsaBits>) -> DeviceSecrets {
    DeviceSecrets {
        user_id: Uuid::from_u128(1),
        device_id: Uuid::from_u128(2),
        identity: IdentityKeyPair::generate().unwrap(),
        device: DeviceKeys::generate(DeviceKeyOptions { rsa }).unwrap(),
    }
}

fn same(a: &DeviceSecrets, b: &DeviceSecrets) {
    assert_eq!(a.user_id, b.user_id);
    assert_eq!(a.device_id, b.device_id);
    assert_eq!(*a.identity.to_seed(), *b.identity.to_seed());
    assert_eq!(*a.device.signing_seed(), *b.device.signing_seed());
    assert_eq!(*a.device.x25519_secret(), *b.device.x25519_secret());
    assert_eq!(
        a.device.rsa_public_der().unwrap(),
        b.device.rsa_public_der().unwrap()
    );
    // The restored keys produce the same signed bundle.
    let ba = DeviceBundle::create(&a.identity, &a.device, a.user_id, a.device_id).unwrap();
    let bb = DeviceBundle::create(&b.identity, &b.device, b.user_id, b.device_id).unwrap();
    assert_eq!(ba, bb);
}

#[test]
fn passphrase_round_trip_with_and_without_rsa() {
    for rsa in [None, Some(RsaBits::Rsa2048)] {
        let s = secrets(rsa);
        let blob =
            export_with_passphrase(&s, b"correct horse battery staple", &BackupParams::MINIMUM)
                .unwrap();
        let back = import_with_passphrase(&blob, b"correct horse battery staple").unwrap();
        same(&s, &back);
    }
}

#[test]
fn default_parameters_round_trip() {
    let s = secrets(None);
    let blob = export_with_passphrase(&s, b"pw", &BackupParams::default()).unwrap();
    same(&s, &import_with_passphrase(&blob, b"pw").unwrap());
}

#[test]
fn wrong_passphrase_fails_cleanly() {
    let s = secrets(None);
    let blob = export_with_passphrase(&s, b"right", &BackupParams::MINIMUM).unwrap();
    assert_eq!(
        import_with_passphrase(&blob, b"wrong").unwrap_err(),
        BackupError::WrongKeyOrCorrupted
    );
    assert_eq!(
        import_with_passphrase(&blob, b"").unwrap_err(),
        BackupError::WrongKeyOrCorrupted
    );
    assert_eq!(
        export_with_passphrase(&s, b"", &BackupParams::MINIMUM).unwrap_err(),
        BackupError::EmptyPassphrase
    );
}

#[test]
fn every_tampered_byte_fails_passphrase() {
    let s = secrets(None);
    let blob = export_with_passphrase(&s, b"pw", &BackupParams::MINIMUM).unwrap();
    for pos in 0..blob.len() {
        let mut t = blob.clone();
        t[pos] ^= 0x01;
        let err =
            import_with_passphrase(&t, b"pw").expect_err(&format!("tamper at {pos} imported"));
        assert!(
            matches!(
                err,
                BackupError::WrongKeyOrCorrupted
                    | BackupError::Malformed(_)
                    | BackupError::BadParameters
            ),
            "{pos}: {err:?}"
        );
    }
    for len in 0..blob.len() {
        assert!(import_with_passphrase(&blob[..len], b"pw").is_err());
    }
}

#[test]
fn parameters_out_of_bounds_are_refused_before_deriving() {
    let s = secrets(None);
    let too_small = BackupParams {
        m_cost_kib: 1024,
        t_cost: 1,
        p_cost: 1,
    };
    assert_eq!(
        export_with_passphrase(&s, b"pw", &too_small).unwrap_err(),
        BackupError::BadParameters
    );
    let blob = export_with_passphrase(&s, b"pw", &BackupParams::MINIMUM).unwrap();
    // m_cost is at offset 10..14: ask for 4 GiB.
    let mut t = blob.clone();
    t[10] = 0x00;
    t[11] = 0x40;
    assert_eq!(
        import_with_passphrase(&t, b"pw").unwrap_err(),
        BackupError::BadParameters
    );
}

#[test]
fn recovery_key_round_trip_and_failures() {
    let s = secrets(Some(RsaBits::Rsa2048));
    let key = RecoveryKey::generate().unwrap();
    let text = key.to_display_string();
    assert_eq!(text.len(), 68 + 16);
    let parsed = RecoveryKey::parse(&text.to_uppercase().replace('-', " ")).unwrap();
    let blob = export_with_recovery_key(&s, &key).unwrap();
    same(&s, &import_with_recovery_key(&blob, &parsed).unwrap());

    let other = RecoveryKey::generate().unwrap();
    assert_eq!(
        import_with_recovery_key(&blob, &other).unwrap_err(),
        BackupError::WrongKeyOrCorrupted
    );
    // A recovery-key blob is not a passphrase blob and vice versa.
    assert_eq!(
        import_with_passphrase(&blob, b"pw").unwrap_err(),
        BackupError::WrongKeyOrCorrupted
    );
    for pos in 0..blob.len() {
        let mut t = blob.clone();
        t[pos] ^= 0x80;
        assert!(
            import_with_recovery_key(&t, &key).is_err(),
            "tamper at {pos} imported"
        );
    }
    // One mistyped digit breaks the checksum.
    let mut typo: Vec<char> = text.chars().collect();
    typo[0] = if typo[0] == '0' { '1' } else { '0' };
    let typo: String = typo.into_iter().collect();
    assert_eq!(
        RecoveryKey::parse(&typo).unwrap_err(),
        BackupError::BadRecoveryKey
    );
    assert_eq!(
        RecoveryKey::parse("abcd").unwrap_err(),
        BackupError::BadRecoveryKey
    );
}

#[test]
fn secrets_are_not_debug_printed() {
    let s = secrets(None);
    let dbg = format!("{s:?} {:?}", RecoveryKey::generate().unwrap());
    let seed_hex: String = s
        .identity
        .to_seed()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(!dbg.contains(&seed_hex));
    assert!(dbg.contains("[redacted]"));
    let _ = backup::derive_passphrase_key;
}
