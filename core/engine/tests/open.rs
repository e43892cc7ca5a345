//! The open pipeline (`sotto_engine::open`) on real keys and envelopes, with a
//! driver that answers its fetches from an in-memory relay.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use sotto_core::envelope::{self, Header, Recipient};
use sotto_core::keys::{IdentityKeyPair, VerifiedDevice};
use sotto_core::membership::{MembershipStatement, Signer};
use sotto_engine::devices::Devices;
use sotto_engine::feed::Seen;
use sotto_engine::link::Incoming;
use sotto_engine::open::{Me, Opening, Outcome, Step, UndecryptableReason};
use sotto_engine::pins::Pins;
use sotto_engine::vault::HistoryTrust;
use sotto_engine::{Content, Plaintext, Rooms, Warning};
use uuid::Uuid;

mod common;
use common::{Person, known};

const ROOM: Uuid = Uuid::from_u128(0x7007);

impl Person {
    /// `plaintext` sealed by this device to `to`, as the relay delivers it.
    fn message(&self, client_id: u128, plaintext: &[u8], to: &[&VerifiedDevice]) -> Incoming {
        let header = Header {
            room_id: ROOM,
            sender_user_id: self.id,
            sender_device_id: self.device,
            client_message_id: Uuid::from_u128(client_id),
            timestamp_ms: 1_700_000_000_000,
        };
        let recipients: Vec<Recipient<'_>> = to.iter().map(|d| Recipient::x25519(d)).collect();
        let env = envelope::seal(plaintext, &header, &recipients, &self.keys).unwrap();
        Incoming {
            room_id: ROOM,
            id: Uuid::from_u128(0xabc0 + client_id),
            seq: 7,
            sender_id: self.id,
            device_id: self.device,
            created_at: "2026-12-07T10:00:00Z".into(),
            envelope: env.to_bytes(),
        }
    }
    fn text(&self, client_id: u128, body: &str, to: &[&VerifiedDevice]) -> Incoming {
        self.message(client_id, &Content::text(body).encode(), to)
    }
}

/// Bob's client: his pins, device cache and rooms, and what the relay serves.
struct Client {
    me: Person,
    me_verified: VerifiedDevice,
    pins: Pins,
    devices: Devices<VerifiedDevice>,
    rooms: Rooms,
    /// The relay's device lists: (device, revoked at).
    served: Vec<(Uuid, VerifiedDevice, Option<String>)>,
    fetched: Vec<Uuid>,
    fetch_fails: bool,
    seen: Seen,
    asked_seen: u32,
}

impl Client {
    fn new() -> Self {
        let me = Person::new(0xb0b);
        let me_verified = me.verified();
        let pins = Pins::load(me.id, me.identity.public_key().to_bytes(), []);
        Self {
            rooms: Rooms::load(me.id, []),
            me,
            me_verified,
            pins,
            devices: Devices::default(),
            served: Vec::new(),
            fetched: Vec::new(),
            fetch_fails: false,
            seen: Seen::New,
            asked_seen: 0,
        }
    }
    fn serve(&mut self, p: &Person, revoked_at: Option<&str>) {
        self.served
            .push((p.id, p.verified(), revoked_at.map(str::to_owned)));
    }
    /// Opens `m` and asserts it is shown.
    fn shows(&mut self, m: Incoming) {
        let o = self.open(&mut Opening::new(m));
        assert!(matches!(o, Outcome::Message(_)), "not shown: {o:?}");
    }

    fn open(&mut self, op: &mut Opening) -> Outcome {
        for _ in 0..20 {
            let me = Me {
                user: self.me.id,
                device: &self.me_verified,
                keys: &self.me.keys,
            };
            match op.step(&me, &self.pins, &mut self.devices, &mut self.rooms) {
                Step::Done(o) => return o,
                Step::Fetch(user) => {
                    self.fetched.push(user);
                    if self.fetch_fails {
                        op.failed("checking a sender: relay down");
                        continue;
                    }
                    let fetch = self.devices.fetching();
                    let list = self
                        .served
                        .iter()
                        .filter(|(u, _, _)| *u == user)
                        .map(|(_, v, r)| known(v, r.clone()))
                        .collect();
                    self.devices.served(&mut self.pins, user, list, &[], fetch);
                }
                Step::Seen { .. } => {
                    self.asked_seen += 1;
                    op.seen(self.seen);
                }
            }
        }
        panic!("the pipeline did not end");
    }
}

#[test]
fn a_text_from_a_trusted_device_is_shown_with_its_fields() {
    let alice = Person::new(0xa11ce);
    let mut bob = Client::new();
    bob.serve(&alice, None);
    let to = bob.me_verified.clone();
    let m = alice.text(1, "hello", &[&to]);
    let Outcome::Message(item) = bob.open(&mut Opening::new(m.clone())) else {
        panic!("not shown");
    };
    assert_eq!(item.content, Content::text("hello"));
    assert_eq!(item.client_id, Uuid::from_u128(1));
    assert_eq!((item.room_id, item.id, item.seq), (ROOM, m.id, 7));
    assert_eq!(
        (item.sender_id, item.sender_device),
        (alice.id, alice.device)
    );
    assert_eq!(item.sent_at_ms, 1_700_000_000_000);
    assert_eq!(item.received_at, "2026-12-07T10:00:00Z");
    assert_eq!(item.trust, HistoryTrust::Unverified);
    assert_eq!(bob.fetched, vec![alice.id], "one fetch, first contact pins");
    assert_eq!(bob.asked_seen, 1);
    // The list is cached now: the next message needs no fetch.
    let m = alice.text(2, "again", &[&to]);
    bob.shows(m);
    assert_eq!(bob.fetched.len(), 1);
}

#[test]
fn cheap_refusals_come_before_any_fetch() {
    let alice = Person::new(0xa11ce);
    let carol = Person::new(0xca401);
    let mut bob = Client::new();
    bob.serve(&alice, None);
    let mut garbage = alice.text(1, "x", &[&bob.me_verified.clone()]);
    garbage.envelope.truncate(10);
    let o = bob.open(&mut Opening::new(garbage));
    assert!(matches!(
        o,
        Outcome::Undecryptable(UndecryptableReason::Invalid)
    ));
    let o = bob.open(&mut Opening::new(alice.text(2, "x", &[&carol.verified()])));
    assert!(matches!(
        o,
        Outcome::Undecryptable(UndecryptableReason::NotForThisDevice)
    ));
    assert!(bob.fetched.is_empty());
}

#[test]
fn an_unknown_device_is_fetched_once_more_then_refused() {
    let alice = Person::new(0xa11ce);
    let mut bob = Client::new();
    bob.serve(&alice, None);
    let to = bob.me_verified.clone();
    // Cached list first.
    bob.shows(alice.text(1, "a", &[&to]));
    // A second device of Alice's, not served yet: refetched once, refused.
    let laptop = Person::with_identity(0xa11ce, 2, alice.identity.clone());
    let o = bob.open(&mut Opening::new(laptop.text(2, "b", &[&to])));
    assert!(matches!(
        o,
        Outcome::Undecryptable(UndecryptableReason::UnknownDevice)
    ));
    assert_eq!(bob.fetched, vec![alice.id, alice.id]);
    // Served now (a new device): the refetch finds it.
    bob.serve(&laptop, None);
    let o = bob.open(&mut Opening::new(laptop.text(3, "c", &[&to])));
    assert!(matches!(o, Outcome::Message(_)), "{o:?}");
    assert_eq!(bob.fetched.len(), 3);
    // A first contact whose list lacks the device: one fetch, not two.
    let dave = Person::new(0xdae);
    let o = bob.open(&mut Opening::new(dave.text(4, "d", &[&to])));
    assert!(matches!(
        o,
        Outcome::Undecryptable(UndecryptableReason::UnknownDevice)
    ));
    assert_eq!(bob.fetched.len(), 4);
}

#[test]
fn another_identity_and_a_device_revoked_before_the_message_are_refused() {
    let alice = Person::new(0xa11ce);
    let mut bob = Client::new();
    bob.serve(&alice, None);
    let to = bob.me_verified.clone();
    bob.shows(alice.text(1, "a", &[&to]));
    // The relay serves a device of Alice under another identity key.
    let impostor = Person::with_identity(0xa11ce, 3, IdentityKeyPair::generate().unwrap().into());
    bob.serve(&impostor, None);
    let o = bob.open(&mut Opening::new(impostor.text(2, "b", &[&to])));
    assert!(
        matches!(
            o,
            Outcome::Undecryptable(UndecryptableReason::UntrustedSender)
        ),
        "{o:?}"
    );
    // A device revoked before the relay stored the message.
    let old = Person::with_identity(0xa11ce, 4, alice.identity.clone());
    bob.serve(&old, Some("2026-12-07T09:00:00Z"));
    let o = bob.open(&mut Opening::new(old.text(3, "c", &[&to])));
    assert!(
        matches!(
            o,
            Outcome::Undecryptable(UndecryptableReason::UnknownDevice)
        ),
        "{o:?}"
    );
    // Stored before the revocation: shown, but never as verified.
    let mut early = old.text(4, "d", &[&to]);
    early.created_at = "2026-12-07T08:00:00Z".into();
    let o = bob.open(&mut Opening::new(early));
    let Outcome::Message(item) = o else {
        panic!("{o:?}")
    };
    assert_eq!(item.trust, HistoryTrust::Unverified);
}

#[test]
fn a_forged_envelope_does_not_open() {
    let alice = Person::new(0xa11ce);
    let mallory = Person::new(0x3a1);
    let mut bob = Client::new();
    bob.serve(&alice, None);
    let to = bob.me_verified.clone();
    // Mallory seals, the relay says Alice sent it.
    let mut m = mallory.text(1, "give me the code", &[&to]);
    m.sender_id = alice.id;
    m.device_id = alice.device;
    let o = bob.open(&mut Opening::new(m));
    assert!(matches!(
        o,
        Outcome::Undecryptable(UndecryptableReason::Invalid)
    ));
    // The relay says this device sent what Mallory sealed.
    let mut m = mallory.text(3, "mine?", &[&to]);
    m.sender_id = bob.me.id;
    m.device_id = bob.me.device;
    let o = bob.open(&mut Opening::new(m));
    assert!(matches!(
        o,
        Outcome::Undecryptable(UndecryptableReason::Invalid)
    ));
    // The right sender in another room.
    let mut m = alice.text(2, "x", &[&to]);
    m.room_id = Uuid::from_u128(0x8008);
    let o = bob.open(&mut Opening::new(m));
    assert!(matches!(
        o,
        Outcome::Undecryptable(UndecryptableReason::Invalid)
    ));
}

#[test]
fn own_device_needs_no_fetch_and_replays_follow_the_feed() {
    let mut bob = Client::new();
    let to = bob.me_verified.clone();
    let mine = bob.me.text(1, "mine", &[&to]);
    let o = bob.open(&mut Opening::new(mine.clone()));
    let Outcome::Message(item) = o else {
        panic!("{o:?}")
    };
    assert_eq!(item.trust, HistoryTrust::Own);
    assert!(bob.fetched.is_empty());
    bob.seen = Seen::Again;
    assert!(matches!(
        bob.open(&mut Opening::new(mine.clone())),
        Outcome::Again
    ));
    bob.seen = Seen::Replay;
    assert!(matches!(
        bob.open(&mut Opening::new(mine)),
        Outcome::Undecryptable(UndecryptableReason::Replayed)
    ));
    // Read ahead for statements: no replay check, content not shown.
    let asked = bob.asked_seen;
    let ahead = bob.me.text(5, "x", &[&to]);
    assert!(matches!(
        bob.open(&mut Opening::statements_only(ahead)),
        Outcome::Again
    ));
    assert_eq!(bob.asked_seen, asked);
    // This device's own statement, read ahead: skipped unopened (both
    // drivers read ahead through this, none skips on its own).
    let own = bob
        .me
        .message(6, &statement(&bob.me, bob.me.id, &[bob.me.id]), &[&to]);
    assert!(matches!(
        bob.open(&mut Opening::statements_only(own.clone())),
        Outcome::Again
    ));
    assert!(bob.rooms.statement(ROOM).is_none());
    // The live stream opens it.
    bob.seen = Seen::New;
    assert!(matches!(
        bob.open(&mut Opening::new(own)),
        Outcome::Control(_)
    ));
}

#[test]
fn a_failed_fetch_is_later_and_moves_nothing() {
    let alice = Person::new(0xa11ce);
    let mut bob = Client::new();
    bob.serve(&alice, None);
    bob.fetch_fails = true;
    let to = bob.me_verified.clone();
    let o = bob.open(&mut Opening::new(alice.text(1, "a", &[&to])));
    let Outcome::Later(why) = o else {
        panic!("{o:?}")
    };
    assert!(why.contains("relay down"), "{why}");
    assert!(bob.devices.missing(&[alice.id]) == vec![alice.id]);
}

#[test]
fn lists_that_never_load_end_in_later() {
    let alice = Person::new(0xa11ce);
    let mut bob = Client::new();
    let to = bob.me_verified.clone();
    let mut op = Opening::new(alice.text(1, "a", &[&to]));
    let me = Me {
        user: bob.me.id,
        device: &bob.me_verified,
        keys: &bob.me.keys,
    };
    let mut fetches = 0;
    // A driver whose fetches are always overtaken (nothing cached).
    let o = loop {
        match op.step(&me, &bob.pins, &mut bob.devices, &mut bob.rooms) {
            Step::Fetch(_) => fetches += 1,
            Step::Done(o) => break o,
            Step::Seen { .. } => panic!("not opened"),
        }
    };
    assert!(matches!(o, Outcome::Later(_)), "{o:?}");
    assert_eq!(fetches, 4);
}

fn statement(signer: &Person, owner: Uuid, members: &[Uuid]) -> Vec<u8> {
    let s = MembershipStatement::sign(
        ROOM,
        1,
        owner,
        members,
        Signer {
            user: signer.id,
            device: signer.device,
            keys: &signer.keys,
        },
    )
    .unwrap();
    Plaintext::membership(&s.to_bytes())
}

#[test]
fn a_statement_goes_to_the_rooms_after_its_signer_is_checked() {
    let alice = Person::new(0xa11ce);
    let carol = Person::new(0xca401);
    let mut bob = Client::new();
    bob.serve(&alice, None);
    bob.serve(&carol, None);
    let to = bob.me_verified.clone();
    let members = [alice.id, bob.me.id];
    // Signed by Alice's trusted device: taken, nothing to show.
    let m = alice.message(1, &statement(&alice, alice.id, &members), &[&to]);
    let o = bob.open(&mut Opening::new(m));
    assert!(matches!(o, Outcome::Control(None)), "{o:?}");
    assert!(bob.rooms.statement(ROOM).is_some());
    // Posted by Carol, signed by a device of Alice's that is in no list:
    // the signer's list is fetched again, then the statement refused.
    let ghost = Person::with_identity(0xa11ce, 9, alice.identity.clone());
    let m = carol.message(2, &statement(&ghost, alice.id, &members), &[&to]);
    let before = bob.fetched.len();
    let o = bob.open(&mut Opening::new(m));
    assert!(
        matches!(o, Outcome::Control(Some(Warning::StatementRefused { .. }))),
        "{o:?}"
    );
    assert_eq!(bob.fetched.len(), before + 2, "Carol's list, Alice's again");
    // A first contact whose statement names a device of theirs not in the
    // list fetched for this message: one fetch, not two.
    let dave = Person::new(0xdae);
    bob.serve(&dave, None);
    let dave_ghost = Person::with_identity(0xdae, 9, dave.identity.clone());
    let m = dave.message(
        4,
        &statement(&dave_ghost, dave.id, &[dave.id, bob.me.id]),
        &[&to],
    );
    let before = bob.fetched.len();
    let o = bob.open(&mut Opening::new(m));
    assert!(matches!(o, Outcome::Control(Some(_))), "{o:?}");
    assert_eq!(bob.fetched.len(), before + 1);
    // Bytes that are no statement: refused without a fetch of anyone.
    let m = alice.message(3, &Plaintext::membership(b"nonsense"), &[&to]);
    let before = bob.fetched.len();
    let o = bob.open(&mut Opening::new(m));
    assert!(matches!(o, Outcome::Control(Some(_))), "{o:?}");
    assert_eq!(bob.fetched.len(), before);
}

#[test]
fn a_statement_whose_signer_cannot_be_checked_now_is_later_and_changes_nothing() {
    let alice = Person::new(0xa11ce);
    let carol = Person::new(0xca401);
    let mut bob = Client::new();
    bob.serve(&carol, None);
    bob.serve(&alice, None);
    let to = bob.me_verified.clone();
    // Carol's list loads; then the relay goes down before Alice's (the signer).
    bob.shows(carol.text(1, "hi", &[&to]));
    bob.fetch_fails = true;
    let m = carol.message(
        2,
        &statement(&alice, alice.id, &[alice.id, bob.me.id]),
        &[&to],
    );
    let o = bob.open(&mut Opening::new(m.clone()));
    assert!(matches!(o, Outcome::Later(_)), "{o:?}");
    assert!(bob.rooms.statement(ROOM).is_none());
    assert!(bob.rooms.take_changes().is_empty());
    // Later it loads: taken.
    bob.fetch_fails = false;
    assert!(matches!(
        bob.open(&mut Opening::new(m)),
        Outcome::Control(None)
    ));
    assert!(bob.rooms.statement(ROOM).is_some());
}

#[test]
fn a_read_ahead_takes_statements_and_a_redelivered_statement_is_not_taken_again() {
    let alice = Person::new(0xa11ce);
    let mut bob = Client::new();
    bob.serve(&alice, None);
    let to = bob.me_verified.clone();
    let m = alice.message(
        1,
        &statement(&alice, alice.id, &[alice.id, bob.me.id]),
        &[&to],
    );
    bob.seen = Seen::Again;
    let o = bob.open(&mut Opening::new(m.clone()));
    assert!(matches!(o, Outcome::Again), "{o:?}");
    assert!(
        bob.rooms.statement(ROOM).is_none(),
        "handled in a stored step already"
    );
    let asked = bob.asked_seen;
    let o = bob.open(&mut Opening::statements_only(m));
    assert!(matches!(o, Outcome::Control(None)), "{o:?}");
    assert!(bob.rooms.statement(ROOM).is_some());
    assert_eq!(bob.asked_seen, asked, "no replay check when read ahead");
}

#[test]
fn a_statement_signed_by_a_device_revoked_before_it_was_stored_is_refused() {
    let alice = Person::new(0xa11ce);
    let mut bob = Client::new();
    bob.serve(&alice, Some("2026-12-07T09:00:00Z"));
    let laptop = Person::with_identity(0xa11ce, 2, alice.identity.clone());
    bob.serve(&laptop, None);
    let to = bob.me_verified.clone();
    let m = laptop.message(
        1,
        &statement(&alice, alice.id, &[alice.id, bob.me.id]),
        &[&to],
    );
    let o = bob.open(&mut Opening::new(m));
    assert!(
        matches!(o, Outcome::Control(Some(Warning::StatementRefused { .. }))),
        "{o:?}"
    );
    assert!(bob.rooms.statement(ROOM).is_none());
}
