//! A served device list, verified and decided in the engine
//! (`Devices::served_list`), and the key an identity change is accepted
//! under (`Devices::agreed_key`): real bundles, as the relay lists them.

#![allow(clippy::unwrap_used)]

mod common;

use std::rc::Rc;

use common::Person;
use sotto_core::keys::VerifiedDevice;
use sotto_engine::devices::{Devices, Listed};
use sotto_engine::pins::{Pins, Trust};
use uuid::Uuid;

fn me() -> Person {
    Person::new(1)
}

fn setup(me: &Person) -> (Devices<VerifiedDevice>, Pins) {
    (
        Devices::default(),
        Pins::load(me.id, me.identity.public_key().to_bytes(), []),
    )
}

fn listed(list: &[sotto_core::api::devices::Device]) -> Vec<Listed<'_>> {
    list.iter().map(Listed::from).collect()
}

/// `list` served for `user` now (with `unreadable` entries' ids), handles kept as verified.
fn serve(
    d: &mut Devices<VerifiedDevice>,
    pins: &mut Pins,
    user: Uuid,
    list: &[sotto_core::api::devices::Device],
    unreadable: &[Uuid],
) -> sotto_engine::pins::Observed {
    let fetch = d.fetching();
    d.served_list(pins, user, &listed(list), unreadable, fetch, |v, _| v)
}

fn ids(d: &Devices<VerifiedDevice>, user: Uuid) -> Vec<Uuid> {
    d.list(user)
        .unwrap_or_default()
        .iter()
        .map(|k| k.device_id)
        .collect()
}

#[test]
fn a_valid_list_is_verified_pinned_and_cached_with_its_revocations() {
    let me = me();
    let (mut d, mut pins) = setup(&me);
    let bob = Person::new(2);
    let bob2 = Person::with_identity(2, 2, Rc::clone(&bob.identity));
    let list = [bob.served(None), bob2.served(Some("2026-06-01T00:00:00Z"))];
    let mut seen = Vec::new();
    let o = d.served_list(
        &mut pins,
        bob.id,
        &listed(&list),
        &[],
        d.fetching(),
        |v, entry| {
            seen.push(entry.device_id);
            v
        },
    );
    assert_eq!(seen, vec![bob.device, bob2.device], "a handle for each");
    assert_eq!(
        o.pinned.map(|p| p.key),
        Some(bob.identity.public_key().to_bytes())
    );
    assert!(o.rejected.is_empty());
    assert_eq!(ids(&d, bob.id), vec![bob.device, bob2.device]);
    let cached = d.list(bob.id).unwrap_or_default();
    assert_eq!(
        cached.get(1).and_then(|k| k.revoked_at.as_deref()),
        Some("2026-06-01T00:00:00Z")
    );
    assert_eq!(
        d.sealable(&pins, &[bob.id]).map(|v| v.len()),
        Ok(1),
        "not to the revoked device"
    );
}

#[test]
fn a_bundle_of_someone_else_or_another_device_or_forged_is_rejected() {
    let me = me();
    let (mut d, mut pins) = setup(&me);
    let bob = Person::new(2);
    let mallory = Person::new(3);
    // Mallory's own valid bundle, listed as one of Bob's devices.
    let mut theirs = mallory.served(None);
    theirs.user_id = bob.id;
    // Bob's bundle listed under another device id.
    let mut moved = Person::with_identity(2, 3, Rc::clone(&bob.identity)).served(None);
    moved.device_id = Uuid::from_u128(0x2ff);
    // A bundle whose identity signature does not verify.
    let mut forged = Person::with_identity(2, 4, Rc::clone(&bob.identity)).served(None);
    if let Some(b) = forged.bundle.identity_signature.0.first_mut() {
        *b ^= 1;
    }
    let list = [bob.served(None), theirs, moved, forged.clone()];
    let garbled = Uuid::from_u128(0x2ee); // an entry the driver could not parse
    let o = serve(&mut d, &mut pins, bob.id, &list, &[garbled]);
    assert_eq!(
        o.rejected,
        vec![
            garbled,
            mallory.device,
            Uuid::from_u128(0x2ff),
            forged.device_id
        ]
    );
    assert_eq!(ids(&d, bob.id), vec![bob.device], "only Bob's valid one");
    assert_eq!(pins.trust(bob.id), Trust::Unverified);
    assert_eq!(
        pins.pin(bob.id).map(|p| p.key),
        Some(bob.identity.public_key().to_bytes()),
        "pinned under Bob's key, never Mallory's"
    );
}

#[test]
fn an_identity_change_is_accepted_only_under_one_agreed_key() {
    let me = me();
    let (mut d, mut pins) = setup(&me);
    let bob = Person::new(2);
    assert_eq!(d.agreed_key(bob.id), None, "nothing cached");
    let _ = serve(&mut d, &mut pins, bob.id, &[bob.served(None)], &[]);
    // Bob reinstalls: a new identity; the old device is revoked.
    let new = Person::with_identity(
        2,
        2,
        Rc::new(sotto_core::keys::IdentityKeyPair::generate().unwrap()),
    );
    d.forget(Some(bob.id));
    let list = [bob.served(Some("2026-06-01T00:00:00Z")), new.served(None)];
    let o = serve(&mut d, &mut pins, bob.id, &list, &[]);
    assert_eq!(o.identity_changed, vec![false]);
    assert_eq!(pins.trust(bob.id), Trust::Changed);
    let key = new.identity.public_key().to_bytes();
    assert_eq!(
        d.agreed_key(bob.id),
        Some(key),
        "the revoked device does not count"
    );
    pins.accept(bob.id, key);
    assert_eq!(pins.trust(bob.id), Trust::Unverified);
    // Two active devices under two keys: nothing to accept.
    d.forget(Some(bob.id));
    let list = [bob.served(None), new.served(None)];
    let _ = serve(&mut d, &mut pins, bob.id, &list, &[]);
    assert_eq!(d.agreed_key(bob.id), None);
    // No active device at all: nothing either.
    d.forget(Some(bob.id));
    let list = [new.served(Some("2026-07-01T00:00:00Z"))];
    let _ = serve(&mut d, &mut pins, bob.id, &list, &[]);
    assert_eq!(d.agreed_key(bob.id), None);
}
