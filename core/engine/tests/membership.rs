//! Membership the relay cannot forge, decided by the engine alone (no relay
//! process): what a hostile relay can put in a room's member list, and whom the
//! engine then seals to.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use proptest::prelude::*;
use sotto_core::api::RoomDetails;
use sotto_core::api::invitations::RoomInvitee;
use sotto_core::api::rooms::{Room, RoomKind, RoomMember};
use sotto_core::membership::{MembershipStatement, Signer};
use sotto_engine::{Plaintext, Received, RecordError, RoomRecord, Rooms, SendRefused, Warning};
use uuid::Uuid;

mod common;
use common::Person;

const ROOM: Uuid = Uuid::from_u128(0x7007);

impl Person {
    fn sign(&self, epoch: u64, owner: Uuid, members: &[Uuid]) -> Vec<u8> {
        MembershipStatement::sign(
            ROOM,
            epoch,
            owner,
            members,
            Signer {
                user: self.id,
                device: self.device,
                keys: &self.keys,
            },
        )
        .unwrap()
        .to_bytes()
    }
}

/// The relay's `member_epoch` for the next view: every view in these tests is
/// newer than the one before, as the relay's answers to fetches made one after
/// another are (tests of stale answers use [`details_at`]).
static EPOCH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn details(kind: RoomKind, owner: Uuid, members: &[Uuid], invited: &[Uuid]) -> RoomDetails {
    let epoch = EPOCH.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    details_at(epoch, kind, owner, members, invited)
}

fn details_at(
    epoch: u64,
    kind: RoomKind,
    owner: Uuid,
    members: &[Uuid],
    invited: &[Uuid],
) -> RoomDetails {
    RoomDetails {
        room: Room {
            id: ROOM,
            name: "r".into(),
            kind,
            owner_id: owner,
            created_at: "2026-12-06T00:00:00Z".into(),
            updated_at: "2026-12-06T00:00:00Z".into(),
            unread: 0,
            last_seq: 0,
            member_epoch: epoch,
        },
        members: members
            .iter()
            .map(|u| RoomMember {
                user_id: *u,
                username: format!("u{}", u.as_u128()),
                display_name: None,
                is_owner: *u == owner,
                joined_at: "2026-12-06T00:00:00Z".into(),
            })
            .collect(),
        invited: invited
            .iter()
            .map(|u| RoomInvitee {
                user_id: *u,
                username: format!("u{}", u.as_u128()),
                display_name: None,
                invited_by: owner,
                invited_at: "2026-12-06T00:00:00Z".into(),
            })
            .collect(),
    }
}

fn sorted(mut v: Vec<Uuid>) -> Vec<Uuid> {
    v.sort();
    v
}

#[test]
fn a_room_event_drops_the_view_and_a_deleted_room_keeps_its_record() {
    use sotto_core::api::RoomChange;
    let (alice, bob) = (Person::new(1), Person::new(2));
    let mut rooms = Rooms::load(alice.id, []);
    let d = |m: &[Uuid]| details(RoomKind::Direct, alice.id, m, &[]);
    assert!(rooms.observe(&d(&[alice.id, bob.id])).is_empty());
    let fetch = rooms.fetching_view();
    // Any change but a deletion: the view is fetched again and the room looked at.
    for change in [
        RoomChange::Renamed,
        RoomChange::MemberAdded,
        RoomChange::MemberRemoved,
        RoomChange::MemberInvited,
        RoomChange::InvitationRemoved,
        RoomChange::Created,
    ] {
        assert!(rooms.room_changed(ROOM, change), "{change:?}");
        assert!(!rooms.knows(ROOM), "{change:?}: the view is dropped");
        assert!(rooms.observe(&d(&[alice.id, bob.id])).is_empty());
    }
    assert!(
        rooms.view_overtaken(fetch),
        "a fetch under way is overtaken"
    );
    // Deleted: not looked at, and the pinned peer stays.
    assert!(!rooms.room_changed(ROOM, RoomChange::Deleted));
    assert!(!rooms.knows(ROOM));
    assert_eq!(rooms.record(ROOM).unwrap().peer, Some(bob.id));
}

#[test]
fn a_direct_room_is_its_two_users_and_nobody_else() {
    let (alice, bob, mallory) = (Person::new(1), Person::new(2), Person::new(3));
    let mut rooms = Rooms::load(alice.id, []);
    assert_eq!(rooms.recipients(ROOM), Err(SendRefused::Unknown));
    let d = |m: &[Uuid]| details(RoomKind::Direct, alice.id, m, &[]);
    assert!(rooms.observe(&d(&[alice.id, bob.id])).is_empty());
    assert_eq!(
        sorted(rooms.recipients(ROOM).unwrap()),
        sorted(vec![alice.id, bob.id])
    );
    assert_eq!(rooms.record(ROOM).unwrap().peer, Some(bob.id));
    // The relay writes Mallory into the room: nothing is sent there, loudly, once.
    let w = rooms.observe(&d(&[alice.id, bob.id, mallory.id]));
    assert_eq!(
        w,
        vec![Warning::DirectRoomTampered {
            room_id: ROOM,
            users: vec![mallory.id]
        }]
    );
    assert_eq!(
        rooms.recipients(ROOM),
        Err(SendRefused::DirectRoomTampered(vec![mallory.id]))
    );
    assert!(
        rooms
            .observe(&d(&[alice.id, bob.id, mallory.id]))
            .is_empty()
    );
    // Or swaps the peer: the pin holds.
    let _ = rooms.observe(&d(&[alice.id, mallory.id]));
    assert_eq!(
        rooms.recipients(ROOM),
        Err(SendRefused::DirectRoomTampered(vec![mallory.id]))
    );
    // The pin survives a restart (the record is what the driver saved).
    let saved: Vec<_> = rooms
        .take_changes()
        .into_iter()
        .map(|(id, r)| (id, r.unwrap()))
        .collect();
    let mut again = Rooms::load(alice.id, saved);
    let _ = again.observe(&d(&[alice.id, mallory.id]));
    assert!(again.recipients(ROOM).is_err());
}

#[test]
fn a_direct_room_with_an_invited_stranger_pins_the_invitee() {
    let (alice, bob, mallory) = (Person::new(1), Person::new(2), Person::new(3));
    let mut rooms = Rooms::load(alice.id, []);
    let _ = rooms.observe(&details(RoomKind::Direct, alice.id, &[alice.id], &[bob.id]));
    assert_eq!(rooms.recipients(ROOM).unwrap(), vec![alice.id]);
    let w = rooms.observe(&details(
        RoomKind::Direct,
        alice.id,
        &[alice.id, mallory.id],
        &[],
    ));
    assert!(
        matches!(&w[..], [Warning::DirectRoomTampered { .. }]),
        "{w:?}"
    );
    let _ = rooms.observe(&details(
        RoomKind::Direct,
        alice.id,
        &[alice.id, bob.id],
        &[],
    ));
    assert_eq!(
        sorted(rooms.recipients(ROOM).unwrap()),
        sorted(vec![alice.id, bob.id])
    );
}

#[test]
fn in_a_group_only_members_the_owner_signed_get_keys() {
    let (alice, bob, carol, mallory) = (
        Person::new(1),
        Person::new(2),
        Person::new(3),
        Person::new(4),
    );
    // Bob's device: Alice owns the room and signed Alice and Bob.
    let mut rooms = Rooms::load(bob.id, []);
    let g = |m: &[Uuid]| details(RoomKind::Group, alice.id, m, &[]);
    let s1 = alice.sign(1, alice.id, &[alice.id, bob.id]);
    assert_eq!(
        rooms.receive(ROOM, &s1, Some(&alice.verified()), &[]),
        Ok(Received::Accepted)
    );
    assert!(rooms.observe(&g(&[alice.id, bob.id])).is_empty());
    // The relay adds Mallory: no keys for her, and Bob hears of it once.
    assert!(
        rooms
            .observe(&g(&[alice.id, bob.id, mallory.id]))
            .is_empty()
    );
    assert_eq!(rooms.unconfirmed_users(ROOM), vec![mallory.id]);
    assert_eq!(
        rooms.unconfirmed(ROOM),
        Some(Warning::Unconfirmed {
            room_id: ROOM,
            users: vec![mallory.id]
        })
    );
    assert_eq!(rooms.unconfirmed(ROOM), None, "once");
    assert_eq!(
        sorted(rooms.recipients(ROOM).unwrap()),
        sorted(vec![alice.id, bob.id])
    );
    // A statement forged by the relay (signed by Mallory's device, naming Alice
    // as owner, or stripped of its signature) is refused; the held one stays.
    let forged = mallory.sign(2, alice.id, &[alice.id, bob.id, mallory.id]);
    assert!(matches!(
        rooms.receive(ROOM, &forged, Some(&mallory.verified()), &[]),
        Err(Warning::StatementRefused { .. })
    ));
    assert!(matches!(
        rooms.receive(ROOM, &forged, Some(&alice.verified()), &[]),
        Err(Warning::StatementRefused { .. })
    ));
    let mut stripped = alice.sign(2, alice.id, &[alice.id, bob.id, mallory.id]);
    stripped.truncate(stripped.len() - 64);
    assert!(matches!(
        rooms.receive(ROOM, &stripped, Some(&alice.verified()), &[]),
        Err(Warning::StatementRefused { .. })
    ));
    // Alice adds Carol; later the relay replays the older statement: refused.
    let s2 = alice.sign(2, alice.id, &[alice.id, bob.id, carol.id]);
    assert_eq!(
        rooms.receive(ROOM, &s2, Some(&alice.verified()), &[]),
        Ok(Received::Accepted)
    );
    assert_eq!(
        rooms.receive(ROOM, &s2, Some(&alice.verified()), &[]),
        Ok(Received::Same)
    );
    // An older statement (opened late, or replayed) changes nothing, quietly.
    assert_eq!(
        rooms.receive(ROOM, &s1, Some(&alice.verified()), &[]),
        Ok(Received::Older)
    );
    // Carol is invited but not a member until she accepts: no keys yet.
    let _ = rooms.observe(&details(
        RoomKind::Group,
        alice.id,
        &[alice.id, bob.id, mallory.id],
        &[carol.id],
    ));
    assert_eq!(
        sorted(rooms.recipients(ROOM).unwrap()),
        sorted(vec![alice.id, bob.id])
    );
    let _ = rooms.observe(&g(&[alice.id, bob.id, carol.id, mallory.id]));
    assert_eq!(
        sorted(rooms.recipients(ROOM).unwrap()),
        sorted(vec![alice.id, bob.id, carol.id])
    );
    // A removal takes effect whoever reports it: the relay dropped Carol.
    let _ = rooms.observe(&g(&[alice.id, bob.id]));
    assert_eq!(
        sorted(rooms.recipients(ROOM).unwrap()),
        sorted(vec![alice.id, bob.id])
    );
    // A statement from an untrusted (unknown or revoked) device is refused.
    let s3 = alice.sign(3, alice.id, &[alice.id, bob.id]);
    assert!(rooms.receive(ROOM, &s3, None, &[]).is_err());
}

/// A re-invite racing a decline: the owner re-signs an invitee against a view
/// fetched before they declined, and a view from between the decline and the
/// re-invite arrives after the signing. That view does not sign them out (it
/// predates the re-invite), and neither does any stale answer; a decline the
/// relay reports after the re-invite does.
#[test]
fn a_view_from_before_a_re_invite_does_not_sign_the_invitee_out() {
    let (alice, bob, carol) = (Person::new(1), Person::new(2), Person::new(3));
    let (a, b, c) = (alice.id, bob.id, carol.id);
    let mut rooms = Rooms::load(a, []);
    let at = |e: u64, m: &[Uuid], inv: &[Uuid]| details_at(e, RoomKind::Group, a, m, inv);
    rooms.created(ROOM);
    let _ = rooms.observe(&at(1, &[a], &[]));
    rooms.sign(ROOM, &[], alice.device, &alice.keys).unwrap();
    let members = rooms.adding(ROOM, b);
    rooms
        .sign(ROOM, &members, alice.device, &alice.keys)
        .unwrap();
    let _ = rooms.observe(&at(2, &[a, b], &[]));
    // Carol is invited (epoch 3).
    let members = rooms.adding(ROOM, c);
    rooms
        .sign(ROOM, &members, alice.device, &alice.keys)
        .unwrap();
    let _ = rooms.observe(&at(3, &[a, b], &[c]));
    assert_eq!(rooms.owner_update(ROOM), None);
    // She declines (epoch 4); Alice, still holding the view of epoch 3,
    // invites her again at once: a statement naming her, signed first.
    let s = rooms
        .sign_adding(ROOM, c, alice.device, &alice.keys)
        .unwrap();
    assert_eq!(s.members(), sorted(vec![a, b, c]).as_slice());
    // The view of epoch 4 (fetched after the decline, before the re-invite)
    // arrives now: Carol is not gone, the re-invite is on its way.
    let _ = rooms.observe(&at(4, &[a, b], &[]));
    assert_eq!(
        rooms.owner_update(ROOM),
        None,
        "a view from before the re-invite"
    );
    // A stale answer (epoch 3, overtaken) changes nothing either.
    assert!(rooms.observe(&at(3, &[a, b, c], &[])).is_empty());
    assert_eq!(
        rooms.recipients(ROOM),
        Ok(vec![a, b]),
        "stale views are ignored"
    );
    // The re-invite (5), her acceptance (6): she gets keys.
    let _ = rooms.observe(&at(5, &[a, b], &[c]));
    let _ = rooms.observe(&at(6, &[a, b, c], &[]));
    assert_eq!(rooms.recipients(ROOM), Ok(vec![a, b, c]));
    assert_eq!(rooms.unconfirmed(ROOM), None);
    // Now a later view without her means she left: the owner signs her out.
    let _ = rooms.observe(&at(7, &[a, b], &[]));
    assert_eq!(rooms.owner_update(ROOM), Some(sorted(vec![a, b])));
    // And after a restart the record still knows which views count.
    let saved: Vec<_> = rooms
        .take_changes()
        .into_iter()
        .map(|(id, r)| (id, r.unwrap()))
        .collect();
    let record = &saved[0].1;
    assert_eq!(
        RoomRecord::from_bytes(&record.to_bytes()).as_ref(),
        Ok(record)
    );
    assert_ne!(record.signed_epoch, 0);
}

/// An invitee who declines before the owner sees any view listing them is
/// signed out all the same: the relay's answer to the invitation counts them
/// as listed (`added`).
#[test]
fn an_invitee_who_declines_at_once_is_signed_out() {
    let (alice, bob, carol) = (Person::new(1), Person::new(2), Person::new(3));
    let (a, b, c) = (alice.id, bob.id, carol.id);
    let mut rooms = Rooms::load(a, []);
    let at = |e: u64, m: &[Uuid], inv: &[Uuid]| details_at(e, RoomKind::Group, a, m, inv);
    rooms.created(ROOM);
    let _ = rooms.observe(&at(1, &[a, b], &[]));
    rooms.sign(ROOM, &[b], alice.device, &alice.keys).unwrap();
    rooms
        .sign_adding(ROOM, c, alice.device, &alice.keys)
        .unwrap();
    // The relay invited her (epoch 2); she declined (3) before Alice looked.
    rooms.added(ROOM, c);
    let _ = rooms.observe(&at(3, &[a, b], &[]));
    assert_eq!(rooms.owner_update(ROOM), Some(sorted(vec![a, b])));
}

#[test]
fn the_owner_signs_before_adding_and_reposts_for_joiners() {
    let (alice, bob, carol) = (Person::new(1), Person::new(2), Person::new(3));
    let mut rooms = Rooms::load(alice.id, []);
    let g = |m: &[Uuid], inv: &[Uuid]| details(RoomKind::Group, alice.id, m, inv);
    // A new room: the device that created it signs its first statement.
    rooms.created(ROOM);
    assert!(rooms.observe(&g(&[alice.id], &[])).is_empty());
    assert_eq!(rooms.owner_update(ROOM), Some(vec![alice.id]));
    let s = rooms.sign(ROOM, &[], alice.device, &alice.keys).unwrap();
    assert_eq!(s.epoch(), 1);
    assert_eq!(rooms.owner_update(ROOM), None);
    // Adding Bob: the next statement lists him, signed before the relay is asked.
    let members = rooms.adding(ROOM, bob.id);
    let s = rooms
        .sign(ROOM, &members, alice.device, &alice.keys)
        .unwrap();
    assert_eq!((s.epoch(), s.members().len()), (2, 2));
    // The post reached Alice's device only (Bob was not in the room yet).
    rooms.announce(ROOM, [alice.device]);
    // Until the relay lists Bob, he is not "gone": the owner keeps him.
    assert_eq!(rooms.owner_update(ROOM), None);
    // Bob joins (after accepting an invitation): the statement is forwarded
    // with the next message to his device, once; Carol (not in it) changes
    // nothing.
    let targets = [(alice.id, alice.device), (carol.id, carol.device)];
    assert_eq!(rooms.reposts(ROOM, &targets), None);
    let _ = rooms.observe(&g(&[alice.id, bob.id, carol.id], &[]));
    let targets = [(alice.id, alice.device), (bob.id, bob.device)];
    assert_eq!(rooms.reposts(ROOM, &targets), Some(s.to_bytes()));
    rooms.announce(ROOM, [alice.device, bob.device]);
    assert_eq!(rooms.reposts(ROOM, &targets), None);
    // Bob's new laptop is a device the statement has not reached.
    let laptop = Uuid::from_u128(0x2_02);
    let with_laptop = [
        (alice.id, alice.device),
        (bob.id, bob.device),
        (bob.id, laptop),
    ];
    assert_eq!(rooms.reposts(ROOM, &with_laptop), Some(s.to_bytes()));
    // Also after a restart (the record says whom it reached).
    let saved: Vec<_> = rooms
        .take_changes()
        .into_iter()
        .map(|(id, r)| (id, r.unwrap()))
        .collect();
    let mut restarted = Rooms::load(alice.id, saved);
    let _ = restarted.observe(&g(&[alice.id, bob.id], &[]));
    assert_eq!(restarted.reposts(ROOM, &targets), None);
    // The relay reports Bob gone: the owner signs him out.
    let _ = rooms.observe(&g(&[alice.id], &[]));
    assert_eq!(rooms.owner_update(ROOM), Some(vec![alice.id]));
    // Bob's own device accepts Alice's statements, never signs.
    let mut bobs = Rooms::load(bob.id, []);
    assert_eq!(
        bobs.receive(
            ROOM,
            &s.to_bytes(),
            Some(&alice.verified()),
            &[alice.device, bob.device]
        ),
        Ok(Received::Accepted)
    );
    let _ = bobs.observe(&g(&[alice.id, bob.id], &[]));
    assert_eq!(bobs.owner_update(ROOM), None);
    // A member forwards the statement to its own user's new devices only.
    assert_eq!(
        bobs.reposts(ROOM, &[(alice.id, alice.device), (bob.id, bob.device)]),
        None
    );
    assert_eq!(bobs.reposts(ROOM, &[(carol.id, carol.device)]), None);
    assert_eq!(bobs.reposts(ROOM, &with_laptop), Some(s.to_bytes()));
    // The statement travels as a control message.
    assert_eq!(
        Plaintext::decode(&Plaintext::membership(&s.to_bytes())),
        Plaintext::Membership(s.to_bytes())
    );
}

#[test]
fn rooms_from_before_statements_pin_their_first_members() {
    let (alice, bob, mallory) = (Person::new(1), Person::new(2), Person::new(3));
    // A store that never kept records: the rooms it has cursors for are
    // adopted, and saved at once.
    let mut rooms = Rooms::open(bob.id, None::<Vec<(Uuid, RoomRecord)>>, [ROOM]);
    let saved = rooms.take_changes();
    assert_eq!(saved.len(), 1);
    assert!(saved[0].1.as_ref().is_some_and(|r| r.legacy));
    let g = |m: &[Uuid]| details(RoomKind::Group, alice.id, m, &[]);
    assert_eq!(
        rooms.observe(&g(&[alice.id, bob.id])),
        vec![Warning::Unsigned { room_id: ROOM }]
    );
    assert!(rooms.observe(&g(&[alice.id, bob.id])).is_empty(), "once");
    // Someone the relay adds later is not in the pinned list.
    assert!(
        rooms
            .observe(&g(&[alice.id, bob.id, mallory.id]))
            .is_empty()
    );
    let w = rooms.unconfirmed(ROOM);
    assert!(matches!(&w, Some(Warning::Unconfirmed { users, .. }) if users == &[mallory.id]));
    assert_eq!(
        sorted(rooms.recipients(ROOM).unwrap()),
        sorted(vec![alice.id, bob.id])
    );
    // The owner's device signs what it saw first, minus who is gone.
    let mut owner = Rooms::load(alice.id, []);
    owner.adopt_legacy([ROOM]);
    assert!(owner.observe(&g(&[alice.id, bob.id])).is_empty());
    assert_eq!(
        owner.owner_update(ROOM).map(sorted),
        Some(sorted(vec![alice.id, bob.id]))
    );
    let _ = owner.observe(&g(&[alice.id, bob.id, mallory.id]));
    assert_eq!(
        owner.owner_update(ROOM).map(sorted),
        Some(sorted(vec![alice.id, bob.id])),
        "a member the relay added later is not signed in"
    );
    // Once the owner's statement arrives, it replaces the pinned list.
    let s = owner
        .sign(
            ROOM,
            &owner.owner_update(ROOM).unwrap(),
            alice.device,
            &alice.keys,
        )
        .unwrap();
    assert_eq!(
        rooms.receive(ROOM, &s.to_bytes(), Some(&alice.verified()), &[]),
        Ok(Received::Accepted)
    );
    assert!(rooms.record(ROOM).unwrap().first_seen.is_none());
    // adopt_legacy leaves rooms with a record alone.
    rooms.adopt_legacy([ROOM]);
    assert!(rooms.statement(ROOM).is_some());
    // A store that keeps records adopts nothing, even a room it has a
    // cursor for and no record of.
    let kept: Vec<(Uuid, RoomRecord)> = rooms
        .take_changes()
        .into_iter()
        .filter_map(|(id, r)| Some((id, r?)))
        .collect();
    let other = Uuid::from_u128(0x77);
    let mut reopened = Rooms::open(bob.id, Some(kept), [ROOM, other]);
    assert!(reopened.take_changes().is_empty());
    assert!(reopened.record(other).is_none());
    assert!(reopened.statement(ROOM).is_some());
}

#[test]
fn a_late_joiner_sends_nothing_until_it_holds_a_statement() {
    let (alice, bob, mallory) = (Person::new(1), Person::new(2), Person::new(3));
    let mut rooms = Rooms::load(bob.id, []);
    // The relay lists Mallory before the statement arrives: Bob's device pins
    // nothing and sends nothing.
    let w = rooms.observe(&details(
        RoomKind::Group,
        alice.id,
        &[alice.id, bob.id, mallory.id],
        &[],
    ));
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(rooms.recipients(ROOM), Err(SendRefused::AwaitingStatement));
    let s = alice.sign(4, alice.id, &[alice.id, bob.id]);
    assert_eq!(
        rooms.receive(ROOM, &s, Some(&alice.verified()), &[]),
        Ok(Received::Accepted)
    );
    let _ = rooms.observe(&details(
        RoomKind::Group,
        alice.id,
        &[alice.id, bob.id, mallory.id],
        &[],
    ));
    let w = rooms.unconfirmed(ROOM);
    assert!(matches!(&w, Some(Warning::Unconfirmed { users, .. }) if users == &[mallory.id]));
    assert_eq!(
        sorted(rooms.recipients(ROOM).unwrap()),
        sorted(vec![alice.id, bob.id])
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever member lists the relay serves, in whatever order, and whatever
    /// statements it replays: nobody outside the owner's newest accepted
    /// statement ever gets keys.
    #[test]
    fn no_schedule_seals_to_an_unsigned_member(
        steps in proptest::collection::vec((0u8..3, proptest::collection::vec(0u128..6, 0..6), 0usize..4), 1..30)
    ) {
        let people: Vec<Person> = (1..=6).map(Person::new).collect();
        let alice = &people[0];
        let me = &people[1];
        let mut rooms = Rooms::load(me.id, []);
        let mut epoch = 0u64;
        let mut signed: Vec<Vec<u8>> = Vec::new();
        let mut newest: Option<Vec<Uuid>> = None;
        for (what, ids, pick) in steps {
            let mut members: Vec<Uuid> = ids.iter().map(|i| people[*i as usize].id).collect();
            members.push(alice.id);
            members.push(me.id);
            members.sort();
            members.dedup();
            match what {
                0 => {
                    let _ = rooms.observe(&details(RoomKind::Group, alice.id, &members, &[]));
                }
                1 => {
                    epoch += 1;
                    let s = alice.sign(epoch, alice.id, &members);
                    prop_assert_eq!(rooms.receive(ROOM, &s, Some(&alice.verified()), &[]), Ok(Received::Accepted));
                    signed.push(s);
                    newest = Some(members.clone());
                }
                _ => {
                    // A replay of any earlier statement, or a forgery by a member.
                    if let Some(old) = signed.get(pick) {
                        let _ = rooms.receive(ROOM, old, Some(&alice.verified()), &[]);
                    }
                    let forged = people[2].sign(epoch + 1, alice.id, &members);
                    prop_assert!(rooms.receive(ROOM, &forged, Some(&people[2].verified()), &[]).is_err());
                }
            }
            if let (Ok(to), Some(allowed)) = (rooms.recipients(ROOM), &newest) {
                for u in to {
                    prop_assert!(allowed.contains(&u), "sealed to {u}, not in the newest statement");
                }
            }
        }
    }
}

#[test]
fn only_the_owner_signs_and_ownership_is_never_taken() {
    let (alice, bob) = (Person::new(1), Person::new(2));
    let mut bobs = Rooms::load(bob.id, []);
    let s = alice.sign(1, alice.id, &[alice.id, bob.id]);
    assert_eq!(
        bobs.receive(ROOM, &s, Some(&alice.verified()), &[]),
        Ok(Received::Accepted)
    );
    // Bob's engine refuses to sign a statement of Alice's room (found by the
    // engine_rooms fuzz target: it used to sign one naming Bob as owner).
    assert_eq!(
        bobs.sign(ROOM, &[bob.id], bob.device, &bob.keys).err(),
        Some(sotto_core::membership::MembershipError::NotOwner)
    );
    assert_eq!(bobs.statement(ROOM).unwrap().owner(), alice.id);
}

#[test]
fn records_round_trip_as_bytes_and_bad_bytes_are_typed_errors() {
    let (alice, bob, mallory) = (Person::new(1), Person::new(2), Person::new(3));
    let mut rooms = Rooms::load(alice.id, []);
    rooms.adopt_legacy([Uuid::from_u128(0x99)]);
    rooms.created(ROOM);
    let _ = rooms.observe(&details(
        RoomKind::Group,
        alice.id,
        &[alice.id, bob.id, mallory.id],
        &[],
    ));
    let _ = rooms.unconfirmed(ROOM);
    let members = rooms.adding(ROOM, bob.id);
    rooms
        .sign(ROOM, &members, alice.device, &alice.keys)
        .unwrap();
    rooms.announce(ROOM, [bob.device]);
    for (_, record) in rooms.take_changes() {
        let record = record.unwrap();
        let bytes = record.to_bytes();
        assert_eq!(RoomRecord::from_bytes(&bytes), Ok(record.clone()));
        for cut in 0..bytes.len() {
            assert_eq!(
                RoomRecord::from_bytes(&bytes[..cut]),
                Err(RecordError::Truncated),
                "cut at {cut}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(RoomRecord::from_bytes(&longer), Err(RecordError::Truncated));
        let mut other = bytes;
        other[0] = 9;
        assert_eq!(RoomRecord::from_bytes(&other), Err(RecordError::Version(9)));
    }
}

#[test]
fn the_relay_cannot_make_a_member_sign_nor_switch_a_rooms_kind() {
    let (alice, bob, mallory) = (Person::new(1), Person::new(2), Person::new(3));
    // Bob joined Alice's group; the relay withholds her statement and names
    // Bob the owner: Bob signs nothing and sends nothing.
    let mut bobs = Rooms::load(bob.id, []);
    let _ = bobs.observe(&details(
        RoomKind::Group,
        bob.id,
        &[alice.id, bob.id, mallory.id],
        &[],
    ));
    assert!(!bobs.is_owner(ROOM));
    assert_eq!(bobs.owner_update(ROOM), None);
    assert!(bobs.sign(ROOM, &[bob.id], bob.device, &bob.keys).is_err());
    assert_eq!(bobs.recipients(ROOM), Err(SendRefused::AwaitingStatement));
    // With Alice's statement held, the relay calls the room direct: still a
    // group, sealed to the signed members only.
    let s = alice.sign(1, alice.id, &[alice.id, bob.id]);
    assert_eq!(
        bobs.receive(ROOM, &s, Some(&alice.verified()), &[]),
        Ok(Received::Accepted)
    );
    let _ = bobs.observe(&details(
        RoomKind::Direct,
        alice.id,
        &[bob.id, mallory.id],
        &[],
    ));
    assert_eq!(sorted(bobs.recipients(ROOM).unwrap()), vec![bob.id]);
    // A direct room Bob asked for with Alice: the relay listing Mallory first
    // does not make her the peer; calling it a group does not lift the rule.
    let dm = Uuid::from_u128(0xd1);
    bobs.expect_peer(dm, alice.id);
    let mut view = details(RoomKind::Group, bob.id, &[bob.id, mallory.id], &[]);
    view.room.id = dm;
    let _ = bobs.observe(&view);
    assert_eq!(
        bobs.recipients(dm),
        Err(SendRefused::DirectRoomTampered(vec![mallory.id]))
    );
}

#[test]
fn after_a_reconnect_the_owner_forwards_again_only_if_the_members_changed() {
    let (alice, bob) = (Person::new(1), Person::new(2));
    let g = |epoch, m: &[Uuid]| details_at(epoch, RoomKind::Group, alice.id, m, &[]);
    let mut rooms = Rooms::load(alice.id, []);
    rooms.created(ROOM);
    let _ = rooms.observe(&g(100, &[alice.id]));
    rooms.sign(ROOM, &[], alice.device, &alice.keys).unwrap();
    let members = rooms.adding(ROOM, bob.id);
    let s = rooms
        .sign(ROOM, &members, alice.device, &alice.keys)
        .unwrap();
    rooms.announce(ROOM, [alice.device]);
    // Bob joins: the event comes first, then the view the client fetches.
    rooms.member_added(ROOM);
    let _ = rooms.observe(&g(101, &[alice.id, bob.id]));
    let targets = [(alice.id, alice.device), (bob.id, bob.device)];
    assert_eq!(rooms.reposts(ROOM, &targets), Some(s.to_bytes()));
    rooms.announce(ROOM, [alice.device, bob.device]);
    // A new connection, nothing changed meanwhile (the same epoch): no
    // forwarding again, across a restart too.
    rooms.forget_relay_view(None);
    let _ = rooms.observe(&g(101, &[alice.id, bob.id]));
    assert_eq!(rooms.reposts(ROOM, &targets), None);
    let saved: Vec<_> = rooms
        .take_changes()
        .into_iter()
        .map(|(id, r)| (id, r.unwrap()))
        .collect();
    let mut rooms = Rooms::load(alice.id, saved);
    rooms.forget_relay_view(None);
    let _ = rooms.observe(&g(101, &[alice.id, bob.id]));
    assert_eq!(rooms.reposts(ROOM, &targets), None);
    // While this device was away, the relay removed Bob and added him back
    // (his history starts again at the rejoin, without the statement): the
    // epoch moved, so the statement goes to every device again.
    rooms.forget_relay_view(None);
    let _ = rooms.observe(&g(103, &[alice.id, bob.id]));
    assert_eq!(rooms.reposts(ROOM, &targets), Some(s.to_bytes()));
    // A record from before the epoch was kept: forwarded again after every
    // new connection, as before.
    let mut old = rooms.record(ROOM).unwrap().clone();
    old.announced_epoch = 0;
    old.announced = [alice.device, bob.device].into_iter().collect();
    let mut rooms = Rooms::load(alice.id, [(ROOM, old)]);
    rooms.forget_relay_view(None);
    let _ = rooms.observe(&g(103, &[alice.id, bob.id]));
    assert_eq!(rooms.reposts(ROOM, &targets), Some(s.to_bytes()));
}
