//! Addressing (`sotto_engine::address`): whom a device seals to, and the
//! statements it posts first, with a driver answering from an in-memory relay.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use sotto_core::api::RoomDetails;
use sotto_core::api::rooms::{Room, RoomKind, RoomMember};
use sotto_core::keys::{DeviceKeyOptions, DeviceKeys, IdentityKeyPair, VerifiedDevice};
use sotto_core::membership::MembershipStatement;
use sotto_engine::address::{AddressError, Addressing, Need, Purpose, Signer};
use sotto_engine::devices::Devices;
use sotto_engine::pins::Pins;
use sotto_engine::{Plaintext, Rooms, Warning};
use uuid::Uuid;

mod common;
use common::{Person, known};

const ROOM: Uuid = Uuid::from_u128(0x7007);

/// The relay's room, as a driver would fetch it.
struct Relay {
    kind: RoomKind,
    owner: Uuid,
    members: Vec<Uuid>,
    epoch: u64,
    serves_rooms: bool,
    devices: Vec<VerifiedDevice>,
}

impl Relay {
    fn details(&mut self) -> RoomDetails {
        self.epoch += 1;
        RoomDetails {
            room: Room {
                id: ROOM,
                name: "r".into(),
                kind: self.kind,
                owner_id: self.owner,
                created_at: "2026-12-07T00:00:00Z".into(),
                updated_at: "2026-12-07T00:00:00Z".into(),
                unread: 0,
                last_seq: 0,
                member_epoch: self.epoch,
            },
            members: self
                .members
                .iter()
                .map(|u| RoomMember {
                    user_id: *u,
                    username: format!("u{}", u.as_u128()),
                    display_name: None,
                    is_owner: *u == self.owner,
                    joined_at: "2026-12-07T00:00:00Z".into(),
                })
                .collect(),
            invited: Vec::new(),
        }
    }
}

/// One client: its pins, device cache, rooms; what it did.
struct Client {
    me: Person,
    pins: Pins,
    devices: Devices<VerifiedDevice>,
    rooms: Rooms,
    log: Vec<String>,
    /// Statements posted: (members, sealed to).
    posts: Vec<(Vec<Uuid>, Vec<Uuid>)>,
    warnings: Vec<Warning>,
    refuse_posts: bool,
    /// This many answers of the room's view are overtaken by a room event.
    overtaken: usize,
    /// Whether the driver says it is online when the addressing finishes.
    online: bool,
}

impl Client {
    fn new(me: Person) -> Self {
        Self {
            pins: Pins::load(me.id, me.identity.public_key().to_bytes(), []),
            rooms: Rooms::load(me.id, []),
            devices: Devices::default(),
            me,
            log: Vec::new(),
            posts: Vec::new(),
            warnings: Vec::new(),
            refuse_posts: false,
            overtaken: 0,
            online: true,
        }
    }

    /// The relay's lists of `users`, as a fetch hands them to the cache.
    fn serve(&mut self, relay: &Relay, users: Vec<Uuid>) {
        for u in users {
            let fetch = self.devices.fetching();
            let list = relay
                .devices
                .iter()
                .filter(|d| d.user_id() == u)
                .map(|v| known(v, None))
                .collect();
            self.devices.served(&mut self.pins, u, list, &[], fetch);
        }
    }

    fn me_verified(&self) -> VerifiedDevice {
        self.me.verified()
    }

    fn run(&mut self, relay: &mut Relay, purpose: Purpose) -> Result<Vec<Uuid>, AddressError> {
        let mut a = Addressing::new(ROOM, purpose);
        let result = self.drive(&mut a, relay);
        a.finish(&mut self.rooms, self.online);
        result
    }

    fn drive(
        &mut self,
        a: &mut Addressing<VerifiedDevice>,
        relay: &mut Relay,
    ) -> Result<Vec<Uuid>, AddressError> {
        for _ in 0..50 {
            let signer = Signer {
                device: self.me.device,
                keys: &self.me.keys,
            };
            let need = a.step(&signer, &self.pins, &self.devices, &mut self.rooms);
            // The driver saves the changed records before acting on a step.
            let _ = self.rooms.take_changes();
            match need {
                Need::Room(fetch) => {
                    self.log.push("room".into());
                    if relay.serves_rooms {
                        let d = relay.details();
                        if self.overtaken > 0 {
                            // A room event arrives before the answer.
                            self.overtaken -= 1;
                            self.rooms.forget_relay_view(Some(ROOM));
                        }
                        match self.rooms.observe_fetched(fetch, &d) {
                            Some(w) => self.warnings.extend(w),
                            None => self.log.push("overtaken".into()),
                        }
                    }
                }
                Need::Devices(users) => {
                    self.log.push(format!("devices {}", users.len()));
                    self.serve(relay, users);
                }
                Need::ReadAhead => self.log.push("read ahead".into()),
                Need::Wait => panic!("nothing else posts here"),
                Need::Warn(w) => self.warnings.push(w),
                Need::Post { plaintext, targets } => {
                    let Plaintext::Membership(bytes) = Plaintext::decode(&plaintext) else {
                        panic!("a post that is no statement");
                    };
                    let s = MembershipStatement::from_bytes(&bytes).unwrap();
                    self.log.push("post".into());
                    self.posts.push((
                        s.members().to_vec(),
                        targets.iter().map(VerifiedDevice::device_id).collect(),
                    ));
                    if self.refuse_posts {
                        a.post_refused(&mut self.rooms);
                    } else {
                        a.posted(&mut self.rooms);
                    }
                }
                Need::Done(targets) => {
                    return Ok(targets.iter().map(VerifiedDevice::device_id).collect());
                }
                Need::Failed(e) => return Err(e),
            }
        }
        panic!("the addressing did not end");
    }
}

fn sorted(mut v: Vec<Uuid>) -> Vec<Uuid> {
    v.sort();
    v
}

fn group(owner: &Person, members: &[&Person]) -> Relay {
    Relay {
        kind: RoomKind::Group,
        owner: owner.id,
        members: members.iter().map(|p| p.id).collect(),
        epoch: 0,
        serves_rooms: true,
        devices: members.iter().map(|p| p.verified()).collect(),
    }
}

#[test]
fn the_owner_posts_the_first_statement_before_the_first_message() {
    let (alice, bob) = (Person::new(1), Person::new(2));
    let mut relay = group(&alice, &[&alice, &bob]);
    let (a_dev, b_dev) = (alice.device, bob.device);
    let mut c = Client::new(alice);
    c.rooms.created(ROOM);
    let targets = c.run(&mut relay, Purpose::Send).unwrap();
    assert_eq!(sorted(targets), sorted(vec![a_dev, b_dev]));
    assert_eq!(
        c.log,
        ["room", "devices 2", "post"],
        "view, lists, statement, then seal"
    );
    let (members, to) = &c.posts[0];
    assert_eq!(
        sorted(members.clone()),
        sorted(vec![Uuid::from_u128(1), Uuid::from_u128(2)])
    );
    assert_eq!(sorted(to.clone()), sorted(vec![a_dev, b_dev]));
    // Next send: nothing to sign, nothing to forward, nothing fetched.
    c.log.clear();
    assert_eq!(c.run(&mut relay, Purpose::Send).unwrap().len(), 2);
    assert!(c.log.is_empty(), "{:?}", c.log);
    assert_eq!(c.posts.len(), 1);
}

#[test]
fn a_member_written_in_by_the_relay_is_warned_about_and_gets_nothing() {
    let (alice, bob, mallory) = (Person::new(1), Person::new(2), Person::new(3));
    let mut relay = group(&alice, &[&alice, &bob]);
    let mut owner = Client::new(alice);
    owner.rooms.created(ROOM);
    owner.run(&mut relay, Purpose::Send).unwrap();
    // The relay writes Mallory in (no event); the owner's view is dropped.
    relay.members.push(mallory.id);
    relay.devices.push(mallory.verified());
    owner.rooms.forget_relay_view(Some(ROOM));
    let targets = owner.run(&mut relay, Purpose::Send).unwrap();
    assert!(!targets.contains(&mallory.device));
    assert_eq!(targets.len(), 2);
    assert!(
        owner
            .warnings
            .iter()
            .any(|w| matches!(w, Warning::Unconfirmed { users, .. } if users == &vec![mallory.id])),
        "{:?}",
        owner.warnings
    );
    assert!(
        owner.log.contains(&"read ahead".to_string()),
        "the backlog is read first"
    );
    // The owner signs nobody new: the statement still names Alice and Bob.
    assert!(owner.posts.iter().all(|(m, _)| !m.contains(&mallory.id)));
}

#[test]
fn a_direct_room_with_a_third_member_sends_nothing() {
    let (alice, bob, mallory) = (Person::new(1), Person::new(2), Person::new(3));
    let mut relay = group(&alice, &[&alice, &bob, &mallory]);
    relay.kind = RoomKind::Direct;
    let bob_id = bob.id;
    let mut c = Client::new(alice);
    c.rooms.expect_peer(ROOM, bob_id);
    let e = c.run(&mut relay, Purpose::Send).unwrap_err();
    assert!(
        matches!(e, AddressError::DirectRoomTampered(ref u) if u == &vec![mallory.id]),
        "{e:?}"
    );
    assert!(c.posts.is_empty());
}

#[test]
fn a_late_member_without_the_statement_waits() {
    let (alice, bob) = (Person::new(1), Person::new(2));
    let mut relay = group(&alice, &[&alice, &bob]);
    let mut c = Client::new(bob);
    let e = c.run(&mut relay, Purpose::Send).unwrap_err();
    assert!(matches!(e, AddressError::MembershipPending), "{e:?}");
    assert!(c.posts.is_empty());
}

#[test]
fn a_refused_statement_is_forwarded_again_next_time() {
    let (alice, bob) = (Person::new(1), Person::new(2));
    let mut relay = group(&alice, &[&alice, &bob]);
    let mut c = Client::new(alice);
    c.rooms.created(ROOM);
    c.refuse_posts = true;
    // Refused for good: the addressing ends, nothing sealed (the driver
    // reports the refusal).
    let e = c.run(&mut relay, Purpose::Send).unwrap_err();
    assert!(matches!(e, AddressError::PostRefused), "{e:?}");
    assert_eq!(c.posts.len(), 1);
    c.refuse_posts = false;
    c.run(&mut relay, Purpose::Send).unwrap();
    assert_eq!(
        c.posts.len(),
        2,
        "forwarded to the devices it did not reach"
    );
    c.run(&mut relay, Purpose::Send).unwrap();
    assert_eq!(c.posts.len(), 2);
}

#[test]
fn a_room_that_never_loads_ends_the_addressing() {
    let (alice, bob) = (Person::new(1), Person::new(2));
    let mut relay = group(&alice, &[&alice, &bob]);
    relay.serves_rooms = false;
    let mut c = Client::new(alice);
    let e = c.run(&mut relay, Purpose::Send).unwrap_err();
    assert!(matches!(e, AddressError::KeepsChanging(_)), "{e:?}");
    assert_eq!(c.log.iter().filter(|l| *l == "room").count(), 4);
    assert_eq!(e.to_string(), "the room keeps changing; try again");
}

#[test]
fn a_member_sees_the_warning_after_the_read_ahead_and_keeps_sending_around_the_intruder() {
    let (alice, bob, mallory) = (Person::new(1), Person::new(2), Person::new(3));
    let mut relay = group(&alice, &[&alice, &bob]);
    let mut owner = Client::new(alice);
    owner.rooms.created(ROOM);
    owner.run(&mut relay, Purpose::Send).unwrap();
    // Bob holds Alice's statement (as if opened from her post).
    let statement = owner.rooms.statement(ROOM).unwrap().to_bytes();
    let (b_dev, a_verified) = (bob.device, owner.me_verified());
    let mut bob = Client::new(bob);
    relay.members.push(mallory.id);
    relay.devices.push(mallory.verified());
    bob.run(&mut relay, Purpose::Maintain).unwrap();
    bob.log.clear();
    bob.warnings.clear();
    bob.rooms.forget_relay_view(Some(ROOM));
    let _ = bob.rooms.observe(&relay.details());
    let got = bob
        .rooms
        .receive(ROOM, &statement, Some(&a_verified), &[b_dev]);
    assert!(got.is_ok(), "{got:?}");
    bob.rooms.forget_relay_view(Some(ROOM));
    let targets = bob.run(&mut relay, Purpose::Send).unwrap();
    assert!(!targets.contains(&mallory.device));
    assert_eq!(targets.len(), 2);
    assert_eq!(bob.log[..2], ["room", "read ahead"], "{:?}", bob.log);
    assert!(
        matches!(&bob.warnings[..], [Warning::Unconfirmed { users, .. }] if users == &vec![mallory.id]),
        "{:?}",
        bob.warnings
    );
    assert!(bob.posts.is_empty(), "a member signs nothing");
}

#[test]
fn a_changed_identity_or_an_empty_room_stops_the_send() {
    let (alice, bob) = (Person::new(1), Person::new(2));
    let mut relay = group(&alice, &[&alice, &bob]);
    let bob_id = bob.id;
    let mut c = Client::new(alice);
    c.rooms.created(ROOM);
    c.run(&mut relay, Purpose::Send).unwrap();
    // Bob's devices are now all under another identity key.
    let impostor = Person {
        id: bob_id,
        device: Uuid::from_u128(0x99),
        identity: IdentityKeyPair::generate().unwrap().into(),
        keys: DeviceKeys::generate(DeviceKeyOptions::default()).unwrap(),
    };
    relay.devices.retain(|d| d.user_id() != bob_id);
    relay.devices.push(impostor.verified());
    c.devices.forget(Some(bob_id));
    let e = c.run(&mut relay, Purpose::Send).unwrap_err();
    assert!(
        matches!(e, AddressError::IdentityChanged(ref u) if u == &vec![bob_id]),
        "{e:?}"
    );
}

#[test]
fn adding_and_withdrawing_post_the_statement_with_and_without_them() {
    let (alice, bob, carol) = (Person::new(1), Person::new(2), Person::new(3));
    let carol_id = carol.id;
    let mut relay = group(&alice, &[&alice, &bob]);
    relay.devices.push(carol.verified());
    let mut c = Client::new(alice);
    c.rooms.created(ROOM);
    c.run(&mut relay, Purpose::Maintain).unwrap();
    assert_eq!(c.posts.len(), 1, "maintain signs the first statement");
    assert!(
        c.run(&mut relay, Purpose::Add(carol_id))
            .unwrap()
            .is_empty()
    );
    assert!(
        c.posts[1].0.contains(&carol_id),
        "signed before the relay is asked"
    );
    // The relay refused to add her: the statement without her.
    c.run(&mut relay, Purpose::Withdraw(carol_id)).unwrap();
    assert_eq!(c.posts.len(), 3);
    assert!(!c.posts[2].0.contains(&carol_id));
    // Nothing names her now: nothing more to withdraw.
    c.run(&mut relay, Purpose::Withdraw(carol_id)).unwrap();
    assert_eq!(c.posts.len(), 3);
}

#[test]
fn a_send_waits_for_a_statement_another_addressing_is_posting() {
    let (alice, bob) = (Person::new(1), Person::new(2));
    let mut relay = group(&alice, &[&alice, &bob]);
    let b_dev = bob.device;
    let mut c = Client::new(alice);
    c.rooms.created(ROOM);
    // A room event's upkeep signs the first statement and starts posting it.
    let mut upkeep: Addressing<VerifiedDevice> = Addressing::new(ROOM, Purpose::Maintain);
    let mut send: Addressing<VerifiedDevice> = Addressing::new(ROOM, Purpose::Send);
    let step = |a: &mut Addressing<VerifiedDevice>, c: &mut Client| {
        let signer = Signer {
            device: c.me.device,
            keys: &c.me.keys,
        };
        a.step(&signer, &c.pins, &c.devices, &mut c.rooms)
    };
    let d = relay.details();
    let _ = c.rooms.observe(&d);
    let Need::Devices(users) = step(&mut upkeep, &mut c) else {
        panic!("the lists first")
    };
    c.serve(&relay, users);
    let Need::Post { targets, .. } = step(&mut upkeep, &mut c) else {
        panic!("the statement's post")
    };
    assert!(targets.iter().any(|t| t.device_id() == b_dev));
    // Meanwhile a send: Bob's device counts as reached, the post is under way.
    assert!(matches!(step(&mut send, &mut c), Need::Wait));
    assert!(
        matches!(step(&mut send, &mut c), Need::Wait),
        "still under way"
    );
    upkeep.posted(&mut c.rooms);
    let Need::Done(targets) = step(&mut send, &mut c) else {
        panic!("sealed after the statement is stored")
    };
    assert_eq!(targets.len(), 2);
    assert!(!c.rooms.posting(ROOM));
}

#[test]
fn an_overtaken_view_is_not_taken_and_is_fetched_again_a_bounded_number_of_times() {
    let (alice, bob) = (Person::new(1), Person::new(2));
    let mut relay = group(&alice, &[&alice, &bob]);
    let mut c = Client::new(alice);
    c.rooms.created(ROOM);
    c.overtaken = 2;
    c.run(&mut relay, Purpose::Send).unwrap();
    assert_eq!(
        c.log[..5],
        ["room", "overtaken", "room", "overtaken", "room"],
        "{:?}",
        c.log
    );
    let (alice, bob) = (Person::new(1), Person::new(2));
    let mut relay = group(&alice, &[&alice, &bob]);
    let mut c = Client::new(alice);
    c.overtaken = 10;
    let e = c.run(&mut relay, Purpose::Send).unwrap_err();
    assert!(matches!(e, AddressError::KeepsChanging(_)), "{e:?}");
    assert!(!c.rooms.knows(ROOM), "an overtaken view is never observed");
}

#[test]
fn a_view_fetched_for_a_send_is_kept_only_while_room_events_keep_it_right() {
    let (alice, bob) = (Person::new(1), Person::new(2));
    let mut relay = group(&alice, &[&alice, &bob]);
    let mut c = Client::new(alice);
    c.rooms.created(ROOM);
    // Online: kept, the next send fetches nothing.
    c.run(&mut relay, Purpose::Send).unwrap();
    assert!(c.rooms.knows(ROOM));
    c.log.clear();
    c.run(&mut relay, Purpose::Send).unwrap();
    assert!(!c.log.contains(&"room".to_string()), "{:?}", c.log);
    // Offline: no room event would say it changed, so it is dropped after
    // the send and the next send fetches it again.
    c.rooms.forget_relay_view(Some(ROOM));
    c.online = false;
    c.run(&mut relay, Purpose::Send).unwrap();
    assert!(!c.rooms.knows(ROOM));
    c.log.clear();
    c.run(&mut relay, Purpose::Send).unwrap();
    assert_eq!(c.log.iter().filter(|l| *l == "room").count(), 1);
    // A view this addressing did not fetch is left alone.
    c.online = true;
    c.run(&mut relay, Purpose::Send).unwrap();
    c.online = false;
    c.run(&mut relay, Purpose::Send).unwrap();
    assert!(c.rooms.knows(ROOM));
}
