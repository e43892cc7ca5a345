//! A hostile relay and room membership (`docs/protocol.md` §12.4): the test
//! writes a stranger with a real device into a room's members straight into
//! the relay's database (no API call, no event), and plays a member who posts
//! forged membership statements. The clients seal nothing to the intruder
//! (checked on every stored envelope), say so loudly, and refuse the forgeries.

use std::collections::HashSet;

use sotto_client::sotto_core::api::{MessageListQuery, PutDeviceRequest};
use sotto_client::sotto_core::envelope::{self, Envelope, Header, Recipient};
use sotto_client::sotto_core::keys::{
    DeviceBundle, DeviceKeyOptions, DeviceKeys, IdentityKeyPair, VerifiedDevice,
};
use sotto_client::sotto_core::membership::{MembershipStatement, Signer};
use sotto_client::sotto_engine::{Plaintext, Warning};
use sotto_client::{Client, Connection, Error, Event, UndecryptableReason};
use sotto_tests::Backend;
use sotto_tests::process::RelayProcess;
use uuid::Uuid;

use crate::support::{
    PASSWORD, Person, alice_and_bob, assert_no_plaintext_at_rest, register_account, text,
};

/// What a hostile operator does: `user` becomes a member of `room`, written
/// into the database while the relay is down (no API call, no event).
pub(crate) async fn write_member_into(relay: &mut RelayProcess, room: Uuid, user: Uuid) {
    relay.kill();
    relay.tamper_sqlite(
        &[(
            "INSERT INTO room_members (room_id, user_id, joined_at, joined_seq, delivered_seq, delivered_at, read_seq, read_at)
             SELECT id, ?2, created_at, last_seq, last_seq, 0, last_seq, 0 FROM rooms WHERE id = ?1",
            vec![room.to_string(), user.to_string()],
        )],
    )
    .await;
    relay.restart();
}

/// A stranger with a real device whose keys the test holds (to seal and sign as her).
pub(crate) struct Intruder {
    client: Client,
    pub(crate) id: Uuid,
    pub(crate) device: Uuid,
    keys: DeviceKeys,
}

impl Intruder {
    pub(crate) async fn register(relay: &RelayProcess, url: &str) -> Self {
        register_account(relay, url, "mallory").await;
        let client = Client::new(url).unwrap();
        let user = client.login("mallory", PASSWORD).await.unwrap();
        let identity = IdentityKeyPair::generate().unwrap();
        let keys = DeviceKeys::generate(DeviceKeyOptions::default()).unwrap();
        let device = Uuid::now_v7();
        let bundle = DeviceBundle::create(&identity, &keys, user.id, device).unwrap();
        client
            .put_device(&PutDeviceRequest {
                bundle,
                display_name: Some("mallory's phone".into()),
                replace_identity: false,
                current_password: None,
            })
            .await
            .unwrap();
        Self {
            client,
            id: user.id,
            device,
            keys,
        }
    }

    /// The verified active devices of `users`, as the relay serves them.
    async fn devices_of(&self, users: &[Uuid]) -> Vec<VerifiedDevice> {
        let resp = self.client.query_keys(users, false).await.unwrap();
        resp.devices
            .values()
            .flatten()
            .map(|d| d.bundle.verify().unwrap())
            .collect()
    }

    /// Seals `plaintext` as this intruder's device for `to` and posts it in `room`.
    async fn post(&self, room: Uuid, plaintext: &[u8], to: &[VerifiedDevice]) {
        let header = Header {
            room_id: room,
            sender_user_id: self.id,
            sender_device_id: self.device,
            client_message_id: Uuid::now_v7(),
            timestamp_ms: 0,
        };
        let recipients: Vec<Recipient<'_>> = to.iter().map(Recipient::x25519).collect();
        let sealed = envelope::seal(plaintext, &header, &recipients, &self.keys)
            .unwrap()
            .to_bytes();
        self.client
            .post_message(room, header.client_message_id, sealed)
            .await
            .unwrap();
    }

    /// A membership statement for `room` signed by this intruder's device.
    fn sign(&self, room: Uuid, epoch: u64, owner: Uuid, members: &[Uuid]) -> Vec<u8> {
        MembershipStatement::sign(
            room,
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

/// The room's stored messages (the first 200), as `p` may list them.
async fn stored(p: &Person, room: Uuid) -> Vec<sotto_client::sotto_core::api::Message> {
    p.session
        .client()
        .list_messages(
            room,
            &MessageListQuery {
                after_seq: Some(0),
                limit: Some(200),
            },
        )
        .await
        .unwrap()
        .items
}

/// Every device any stored envelope of `room` carries a key for.
pub(crate) async fn sealed_to(p: &Person, room: Uuid) -> HashSet<Uuid> {
    stored(p, room)
        .await
        .iter()
        .filter_map(|m| m.envelope.as_ref())
        .flat_map(|e| {
            Envelope::from_bytes(e.as_bytes())
                .unwrap()
                .recipient_devices()
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The first message of `room`'s owner sealed to `device`.
async fn forwarded_to(owner: &Person, room: Uuid, device: Uuid) -> u64 {
    stored(owner, room)
        .await
        .iter()
        .find(|m| {
            m.sender_id == owner.id()
                && m.envelope.as_ref().is_some_and(|e| {
                    Envelope::from_bytes(e.as_bytes())
                        .unwrap()
                        .recipient_devices()
                        .any(|d| d == device)
                })
        })
        .unwrap()
        .seq
}

async fn online(p: &mut Person) {
    p.wait_for(|e| matches!(e, Event::Connection(Connection::Online)))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_written_into_a_direct_room_gets_nothing_and_is_announced() {
    let mut relay = RelayProcess::start(Backend::Sqlite).await;
    let url = relay.url();
    let mut alice = Person::register(&relay, &url, "alice", None).await;
    let mut bob = Person::register(&relay, &url, "bob", None).await;
    bob.session
        .client()
        .add_contact(alice.id(), None)
        .await
        .unwrap();
    let room = alice.session.direct_room(bob.id()).await.unwrap().room.id;
    let before = text("before the intruder");
    alice.session.send_text(room, &before).await.unwrap();
    bob.expect_text(&before).await;

    let mallory = Intruder::register(&relay, &url).await;
    write_member_into(&mut relay, room, mallory.id).await;
    online(&mut alice).await;
    online(&mut bob).await;

    // "the launch code is 4711": neither side sends it anywhere.
    let secret = text("the launch code is 4711");
    for p in [&alice, &bob] {
        let err = p.session.send_text(room, &secret).await.unwrap_err();
        assert!(
            matches!(&err, Error::DirectRoomTampered(users) if users == &vec![mallory.id]),
            "{}: {err:?}",
            p.name
        );
    }
    for p in [&mut alice, &mut bob] {
        let ev = p
            .wait_for(|e| matches!(e, Event::Membership(Warning::DirectRoomTampered { .. })))
            .await;
        assert_eq!(
            ev,
            Event::Membership(Warning::DirectRoomTampered {
                room_id: room,
                users: vec![mallory.id]
            })
        );
    }
    let sealed = sealed_to(&alice, room).await;
    assert!(!sealed.contains(&mallory.device), "a key for the intruder");
    assert!(sealed.contains(&bob.session.device_id()));
    assert_no_plaintext_at_rest(&relay, &[before, secret], "alice");
}

/// Bob accepts Alice's invitation to a direct room, but the operator has
/// swapped Alice for Mallory in its members first (no API call, no event):
/// Bob's client pins the inviter he accepted, so nothing of his is sealed to
/// Mallory, and he is told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_direct_invitation_pins_the_inviter_whoever_the_relay_lists() {
    let mut relay = RelayProcess::start(Backend::Sqlite).await;
    let url = relay.url();
    let alice = Person::register(&relay, &url, "alice", None).await;
    let mut bob = Person::register(&relay, &url, "bob", None).await;
    // Alice is not in Bob's contacts: he is invited.
    let room = alice.session.direct_room(bob.id()).await.unwrap().room.id;
    bob.wait_for(|e| matches!(e, Event::Invitation { room_id, .. } if *room_id == room))
        .await;
    let mallory = Intruder::register(&relay, &url).await;
    relay.kill();
    relay
        .tamper_sqlite(&[(
            "UPDATE room_members SET user_id = ?2 WHERE room_id = ?1 AND user_id = ?3",
            vec![
                room.to_string(),
                mallory.id.to_string(),
                alice.id().to_string(),
            ],
        )])
        .await;
    relay.restart();
    online(&mut bob).await;

    let invitations = bob.session.invitations().await.unwrap();
    assert_eq!(invitations.len(), 1);
    assert_eq!(invitations[0].inviter.id, alice.id());
    let joined = bob
        .session
        .accept_invitation(&invitations[0])
        .await
        .unwrap();
    assert_eq!(joined.room.id, room);
    let mut listed: Vec<Uuid> = joined.members.iter().map(|m| m.user_id).collect();
    listed.sort();
    let mut expected = vec![bob.id(), mallory.id];
    expected.sort();
    assert_eq!(listed, expected, "the relay lists Mallory, not Alice");

    let secret = text("for alice only");
    let err = bob.session.send_text(room, &secret).await.unwrap_err();
    assert!(
        matches!(&err, Error::DirectRoomTampered(_)),
        "sent to a swapped direct room: {err:?}"
    );
    bob.wait_for(|e| matches!(e, Event::Membership(Warning::DirectRoomTampered { room_id, .. }) if *room_id == room))
        .await;
    let sealed = sealed_to(&bob, room).await;
    assert!(!sealed.contains(&mallory.device), "a key for the intruder");
    assert_no_plaintext_at_rest(&relay, &[secret], "bob");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_written_into_a_group_room_gets_no_key_and_forged_statements_are_refused() {
    let mut relay = RelayProcess::start(Backend::Sqlite).await;
    let url = relay.url();
    let (mut alice, mut bob, room) = alice_and_bob(&relay, &url, None, "g").await;
    let mut sent = vec![text("before the intruder")];
    let first = alice.session.send_text(room, &sent[0]).await.unwrap();
    bob.expect_text(&sent[0]).await;

    let mallory = Intruder::register(&relay, &url).await;
    write_member_into(&mut relay, room, mallory.id).await;
    online(&mut alice).await;
    online(&mut bob).await;

    // Both still talk, sealed to each other only; each learns of the intruder
    // when it next looks at the room (here: to send).
    let unconfirmed = Event::Membership(Warning::Unconfirmed {
        room_id: room,
        users: vec![mallory.id],
    });
    let a = text("alice: the launch code is 4711");
    alice.session.send_text(room, &a).await.unwrap();
    let ev = alice.wait_for(|e| matches!(e, Event::Membership(_))).await;
    assert_eq!(ev, unconfirmed);
    bob.expect_text(&a).await;
    let b = text("bob: noted");
    bob.session.send_text(room, &b).await.unwrap();
    let ev = bob.wait_for(|e| matches!(e, Event::Membership(_))).await;
    assert_eq!(ev, unconfirmed);
    alice.expect_text(&b).await;
    sent.extend([a, b]);
    assert!(!sealed_to(&alice, room).await.contains(&mallory.device));

    // The intruder posts statements naming herself: signed by herself as
    // owner, signed by herself in Alice's name, and Alice's own statement
    // with the signature stripped. Each is refused; nothing changes.
    let mut members = vec![alice.id(), bob.id(), mallory.id];
    members.sort();
    let targets = mallory.devices_of(&[alice.id(), bob.id()]).await;
    let self_owned = mallory.sign(room, 1000, mallory.id, &members);
    let in_alices_name = mallory.sign(room, 1000, alice.id(), &members);
    let mut stripped = MembershipStatement::from_bytes(&in_alices_name)
        .unwrap()
        .to_bytes();
    // Claim Alice's device as signer, and zero the signature.
    let signer_device = alice.session.device_id().as_bytes().to_vec();
    let at = 1 + 16 + 8 + 16 + 16;
    stripped[at..at + 16].copy_from_slice(&signer_device);
    let n = stripped.len();
    stripped[n - 64..].fill(0);
    for forged in [&self_owned, &in_alices_name, &stripped] {
        mallory
            .post(room, &Plaintext::membership(forged), &targets)
            .await;
    }
    for p in [&mut alice, &mut bob] {
        for _ in 0..3 {
            p.wait_for(|e| matches!(e, Event::Membership(Warning::StatementRefused { room_id, .. }) if *room_id == room))
                .await;
        }
    }
    let c = text("after the forgeries");
    bob.session.send_text(room, &c).await.unwrap();
    alice.expect_text(&c).await;
    sent.push(c);
    assert!(!sealed_to(&alice, room).await.contains(&mallory.device));

    // (The relay's `messages_take_seq` trigger moves the room's counter.)
    // A replayed statement: the relay copies Alice's statement as Bob got it
    // (her first message sealed to him: the statement forwarded when he
    // joined, before her first text) to a new place in the room. Bob's client
    // refuses the copy.
    let forwarded = forwarded_to(&alice, room, bob.session.device_id()).await;
    assert!(forwarded < first.seq, "{forwarded} {first:?}");
    bob.session.disconnect().await;
    relay.kill();
    relay.tamper_sqlite(
        &[
            (
                "INSERT INTO messages (id, room_id, seq, sender_id, device_id, client_id, envelope, envelope_sha256, created_at)
                 SELECT ?2, room_id, (SELECT last_seq + 1 FROM rooms WHERE id = ?1), sender_id, device_id, ?3, envelope, envelope_sha256, created_at
                 FROM messages WHERE room_id = ?1 AND seq = ?4",
                vec![room.to_string(), Uuid::now_v7().to_string(), Uuid::now_v7().to_string(), forwarded.to_string()],
            ),
        ],
    )
    .await;
    relay.restart();
    let mut bob = bob.restart(&url).await;
    bob.wait_for(|e| {
        matches!(
            e,
            Event::Undecryptable {
                reason: UndecryptableReason::Replayed,
                ..
            }
        )
    })
    .await;
    online(&mut alice).await;
    let d = text("still only us");
    bob.session.send_text(room, &d).await.unwrap();
    alice.expect_text(&d).await;
    sent.push(d);
    assert!(!sealed_to(&alice, room).await.contains(&mallory.device));
    assert_no_plaintext_at_rest(&relay, &sent, "alice");
}

/// The owner removes a member through the SDK: the statement without them is
/// signed and posted with it, so when the operator writes them back into the
/// room (no API call, no event), nothing more is sealed to their device, and
/// the owner is told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_written_back_gets_no_key() {
    let mut relay = RelayProcess::start(Backend::Sqlite).await;
    let url = relay.url();
    let (mut alice, mut bob, room) = alice_and_bob(&relay, &url, None, "rm").await;
    let first = text("before the removal");
    alice.session.send_text(room, &first).await.unwrap();
    bob.expect_text(&first).await;
    alice.session.remove_member(room, bob.id()).await.unwrap();
    write_member_into(&mut relay, room, bob.id()).await;
    // The warning may come before Alice is online again (a room check of
    // hers still running meets the restarted relay) or after her next send.
    let unconfirmed = Event::Membership(Warning::Unconfirmed {
        room_id: room,
        users: vec![bob.id()],
    });
    let mut warned = false;
    loop {
        let e = alice
            .wait_for(|e| {
                matches!(
                    e,
                    Event::Connection(Connection::Online) | Event::Membership(_)
                )
            })
            .await;
        if e == unconfirmed {
            warned = true;
        } else if matches!(e, Event::Connection(Connection::Online)) {
            break;
        } else {
            panic!("{e:?}");
        }
    }
    let after = text("after the removal");
    let sent = alice.session.send_text(room, &after).await.unwrap();
    let m = stored(&alice, room)
        .await
        .into_iter()
        .find(|m| m.seq == sent.seq)
        .unwrap();
    let to: Vec<Uuid> = Envelope::from_bytes(m.envelope.unwrap().as_bytes())
        .unwrap()
        .recipient_devices()
        .collect();
    assert_eq!(
        to,
        vec![alice.session.device_id()],
        "only Alice's own device"
    );
    if !warned {
        let ev = alice.wait_for(|e| matches!(e, Event::Membership(_))).await;
        assert_eq!(ev, unconfirmed);
    }
    assert_no_plaintext_at_rest(&relay, &[first, after], "alice");
}
