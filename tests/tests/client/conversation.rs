//! Alice and Bob through the SDK, end to end: registration with e-mail
//! verification, both key-wrap suites in one room, a second device linked from
//! a key backup, a revoked device, and a device restored from its backup.

use sotto_client::sotto_core::api::rooms::RoomChange;
use sotto_client::sotto_core::api::{AddedMember, MessageListQuery};
use sotto_client::sotto_core::envelope::Envelope;
use sotto_client::sotto_core::keys::RsaBits;
use sotto_client::sotto_core::suite::Suite;
use sotto_client::{DeviceSetup, Event, SenderTrust, UndecryptableReason};
use sotto_tests::Backend;
use sotto_tests::process::RelayProcess;
use uuid::Uuid;

use crate::support::{Person, alice_and_bob, assert_no_plaintext_at_rest, text};

sotto_tests::both_backends!(alice_and_bob_talk_across_suites_devices_and_backups);

/// The suites of the stored envelope of message `seq`, per recipient device.
async fn suites(p: &Person, room: Uuid, seq: u64) -> Vec<(Uuid, Suite)> {
    let page = p
        .session
        .client()
        .list_messages(
            room,
            &MessageListQuery {
                after_seq: Some(seq - 1),
                limit: Some(1),
            },
        )
        .await
        .unwrap();
    let env = Envelope::from_bytes(page.items[0].envelope.as_ref().unwrap().as_bytes()).unwrap();
    env.recipients
        .iter()
        .map(|r| (r.device_id, r.suite))
        .collect()
}

async fn alice_and_bob_talk_across_suites_devices_and_backups(backend: Backend) {
    let relay = RelayProcess::start(backend).await;
    let url = relay.url();
    let mut sent = Vec::new();
    // Alice's device wraps with X25519 (HPKE), Bob's first device with RSA-OAEP.
    let (mut alice, mut bob, room) =
        alice_and_bob(&relay, &url, Some(RsaBits::Rsa2048), "garden").await;

    let t1 = text("alice to bob");
    let s1 = alice.session.send_text(room, &t1).await.unwrap();
    let m = bob.expect_text(&t1).await;
    assert_eq!(
        (m.sender_id, m.room_id, m.seq, m.client_id),
        (alice.id(), room, s1.seq, s1.client_id)
    );
    assert_eq!(m.trust, SenderTrust::Unverified);
    let mut want = vec![
        (alice.session.device_id(), Suite::X25519),
        (bob.session.device_id(), Suite::Rsa),
    ];
    want.sort_by_key(|(d, _)| *d);
    assert_eq!(
        suites(&alice, room, s1.seq).await,
        want,
        "one envelope, both suites"
    );
    sent.push(t1);

    let t2 = text("bob to alice");
    bob.session.send_text(room, &t2).await.unwrap();
    assert_eq!(alice.expect_text(&t2).await.sender_id, bob.id());
    sent.push(t2);

    // Safety numbers match on both sides; marking verified shows in the trust.
    let a_sn = alice
        .session
        .safety_number(bob.id())
        .await
        .unwrap()
        .unwrap();
    let b_sn = bob
        .session
        .safety_number(alice.id())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a_sn.digits(), b_sn.digits());
    assert!(bob.session.mark_verified(alice.id()).unwrap());

    // Bob links a second device (X25519) from a key backup of the first.
    let (backup, secret) = bob.backup().await;
    let mut bob2 = Person::login(
        &url,
        "bob",
        DeviceSetup::Link {
            backup,
            secret,
            rsa: None,
        },
    )
    .await;
    assert_ne!(bob2.session.device_id(), bob.session.device_id());
    // The room's history from before the laptop existed was not sealed to it.
    let ev = bob2
        .wait_for(|e| matches!(e, Event::Undecryptable { seq, .. } if *seq == s1.seq))
        .await;
    assert!(
        matches!(
            ev,
            Event::Undecryptable {
                reason: UndecryptableReason::NotForThisDevice,
                ..
            }
        ),
        "{ev:?}"
    );
    // Alice hears of Bob's new device before she writes again.
    alice
        .wait_for(|e| matches!(e, Event::DevicesChanged { user_id } if *user_id == bob.id()))
        .await;
    let t3 = text("alice to both of bob's devices");
    let s3 = alice.session.send_text(room, &t3).await.unwrap();
    assert_eq!(bob.expect_text(&t3).await.trust, SenderTrust::Verified);
    assert_eq!(bob2.expect_text(&t3).await.seq, s3.seq);
    assert_eq!(
        suites(&alice, room, s3.seq).await.len(),
        3,
        "alice, bob's phone, bob's laptop"
    );
    sent.push(t3);
    // What Bob's second device writes, his first device reads as his own.
    let t4 = text("bob's laptop to the room");
    bob2.session.send_text(room, &t4).await.unwrap();
    let m = bob.expect_text(&t4).await;
    assert!(m.own && m.trust == SenderTrust::Own, "{m:?}");
    alice.expect_text(&t4).await;
    let t4_copy = t4.clone();
    sent.push(t4);

    // Bob revokes the second device: new messages are not sealed to it.
    bob.session
        .revoke_device(bob2.session.device_id(), crate::support::PASSWORD)
        .await
        .unwrap();
    alice
        .wait_for(|e| matches!(e, Event::DevicesChanged { user_id } if *user_id == bob.id()))
        .await;
    // The revocation ended the laptop's session at once: its socket is closed
    // and its tokens no longer work, so it reads nothing more from the relay.
    bob2.wait_for(|e| matches!(e, Event::LoggedOut)).await;
    let t5 = text("after the revocation");
    let s5 = alice.session.send_text(room, &t5).await.unwrap();
    bob.expect_text(&t5).await;
    let refused = bob2
        .session
        .client()
        .list_messages(
            room,
            &MessageListQuery {
                after_seq: Some(s5.seq - 1),
                limit: Some(1),
            },
        )
        .await
        .unwrap_err();
    assert!(
        refused.status() == Some(401) || matches!(refused, sotto_client::Error::NotLoggedIn),
        "{refused:?}"
    );
    // And nothing new is sealed to it.
    assert!(
        !suites(&alice, room, s5.seq)
            .await
            .iter()
            .any(|(d, _)| *d == bob2.session.device_id())
    );
    sent.push(t5);

    // Bob's first device is restored from its key backup into a fresh store
    // (a new computer): it reads on, and sends as the same device.
    let (backup, secret) = bob.backup().await;
    bob.session.disconnect().await;
    let mut restored = Person::login(&url, "bob", DeviceSetup::Restore { backup, secret }).await;
    assert_eq!(restored.session.device_id(), bob.session.device_id());
    // It replays the history sealed to it. What the since-revoked laptop wrote
    // before its revocation still verifies; it is its own user's: `Own`.
    let m4 = restored.expect_text(&t4_copy).await;
    assert!(m4.own && m4.trust == SenderTrust::Own, "{m4:?}");
    let t6 = text("to the restored device");
    alice.session.send_text(room, &t6).await.unwrap();
    restored.expect_text(&t6).await;
    let t7 = text("from the restored device");
    restored.session.send_text(room, &t7).await.unwrap();
    alice.expect_text(&t7).await;
    sent.extend([t6, t7]);

    assert_no_plaintext_at_rest(&relay, &sent, "garden");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_stream_encrypted_with_progress_both_ways() {
    use std::sync::{Arc, Mutex};

    use sotto_client::{Content, Progress};

    let relay = RelayProcess::start(Backend::Sqlite).await;
    let url = relay.url();
    let alice = Person::register(&relay, &url, "alice", None).await;
    let mut bob = Person::register(&relay, &url, "bob", Some(RsaBits::Rsa2048)).await;
    bob.session
        .client()
        .add_contact(alice.id(), None)
        .await
        .unwrap();
    let room = alice.session.direct_room(bob.id()).await.unwrap().room.id;

    // 300 KiB and a bit: several chunks, the last one partial.
    let dir = tempfile::tempdir().unwrap();
    let secret_line = text("the file's own words");
    let mut data = Vec::new();
    while data.len() < 300 * 1024 + 123 {
        data.extend_from_slice(secret_line.as_bytes());
        data.push(b'\n');
    }
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, &data).unwrap();

    let up: Arc<Mutex<Vec<Progress>>> = Arc::default();
    let log = up.clone();
    alice
        .session
        .send_file(
            room,
            &path,
            Some("text/plain"),
            Some(Arc::new(move |p| log.lock().unwrap().push(p))),
        )
        .await
        .unwrap();
    let up = up.lock().unwrap().clone();
    assert!(up.len() >= 5, "progress per chunk: {up:?}");
    assert!(up.windows(2).all(|w| w[0].done <= w[1].done));
    assert_eq!(
        up.last().unwrap(),
        &Progress {
            done: data.len() as u64,
            total: data.len() as u64
        }
    );

    let m = bob
        .wait_for(|e| matches!(e, Event::Message(m) if matches!(m.content, Content::File { .. })))
        .await;
    let Event::Message(m) = m else { unreachable!() };
    let Content::File { file } = m.content else {
        unreachable!()
    };
    assert_eq!(file.name.as_deref(), Some("notes.txt"));
    assert_eq!(file.content_type.as_deref(), Some("text/plain"));
    assert_eq!(file.size, data.len() as u64);

    let down: Arc<Mutex<Vec<Progress>>> = Arc::default();
    let log = down.clone();
    let dest = dir.path().join("received.txt");
    let n = bob
        .session
        .download_file(
            &file,
            &dest,
            Some(Arc::new(move |p| log.lock().unwrap().push(p))),
        )
        .await
        .unwrap();
    assert_eq!(n, data.len() as u64);
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    assert_eq!(down.lock().unwrap().last().unwrap().done, data.len() as u64);

    // A pointer whose digest does not match the blob writes nothing.
    let mut forged = file.clone();
    forged.sha256 = vec![0u8; 32].into();
    let dest2 = dir.path().join("forged.txt");
    assert!(
        bob.session
            .download_file(&forged, &dest2, None)
            .await
            .is_err()
    );
    assert!(!dest2.exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        2,
        "no partial file left behind: {leftovers:?}"
    );

    assert_no_plaintext_at_rest(&relay, &[secret_line], "alice");
}

/// A member added to a room that already has messages: its history starts at
/// the join point (`history_start`), so the first message after it arrives live,
/// and again after a restart and after an offline join (the cursor is not a gap).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_added_later_gets_every_message_after_joining() {
    let relay = RelayProcess::start(Backend::Sqlite).await;
    let url = relay.url();
    let (mut alice, mut bob, room) = alice_and_bob(&relay, &url, None, "late").await;
    for i in 0..3 {
        let t = text(&format!("before carol {i}"));
        alice.session.send_text(room, &t).await.unwrap();
        bob.expect_text(&t).await;
    }

    // Carol is online when she is invited (she does not know Alice), and
    // accepts through the SDK.
    let mut carol = Person::register(&relay, &url, "carol", None).await;
    let added = alice.session.add_member(room, carol.id()).await.unwrap();
    assert!(matches!(added, AddedMember::Invited(_)), "{added:?}");
    // Past the room's earlier events (Bob's join at its creation), so that
    // the `MemberAdded` waited for below is Carol's.
    for p in [&mut alice, &mut bob] {
        p.wait_for(|e| matches!(e, Event::Room { room_id, change: RoomChange::MemberInvited } if *room_id == room))
            .await;
    }
    carol
        .wait_for(|e| matches!(e, Event::Invitation { room_id, .. } if *room_id == room))
        .await;
    let invitations = carol.session.invitations().await.unwrap();
    assert_eq!(invitations.len(), 1);
    carol
        .session
        .accept_invitation(&invitations[0])
        .await
        .unwrap();
    // Alice seals for the members she knows: wait until she has heard of the new one.
    alice
        .wait_for(|e| matches!(e, Event::Room { room_id, change: RoomChange::MemberAdded } if *room_id == room))
        .await;
    let t4 = text("welcome carol");
    let s4 = alice.session.send_text(room, &t4).await.unwrap();
    let m = carol.expect_text(&t4).await;
    // (Membership statements take sequence numbers too: they are messages.)
    assert_eq!((m.room_id, m.seq), (room, s4.seq));
    // `Sent` names the relay's id of the stored message, as the TS client's does.
    assert_eq!(m.id, s4.id);
    // Bob seals for the members he knows: he too waits until he has heard of her.
    bob.wait_for(|e| matches!(e, Event::Room { room_id, change: RoomChange::MemberAdded } if *room_id == room))
        .await;
    let t5 = text("bob says hi to carol");
    bob.session.send_text(room, &t5).await.unwrap();
    carol.expect_text(&t5).await;

    // After a restart, the stored cursor resumes; a message sent while she was
    // away arrives.
    carol.session.disconnect().await;
    let t6 = text("while carol was away");
    alice.session.send_text(room, &t6).await.unwrap();
    let mut carol = carol.restart(&url).await;
    carol.expect_text(&t6).await;

    // Dave is offline when he is added; his first connection resumes the room
    // from cursor 0 and gets the history from his join point on.
    // (He has Alice in his contacts: added at once, no invitation.)
    let dave = Person::register(&relay, &url, "dave", None).await;
    let dave_id = dave.id();
    dave.session
        .client()
        .add_contact(alice.id(), None)
        .await
        .unwrap();
    dave.session.disconnect().await;
    alice.session.add_member(room, dave_id).await.unwrap();
    // Alice seals for the members she knows: wait until she has heard of the new one.
    alice
        .wait_for(|e| matches!(e, Event::Room { room_id, change: RoomChange::MemberAdded } if *room_id == room))
        .await;
    let t7 = text("dave joined while away");
    let s7 = alice.session.send_text(room, &t7).await.unwrap();
    let Person {
        name, store_dir, ..
    } = dave;
    let session = Person::open(
        &url,
        &name,
        DeviceSetup::New { rsa: None },
        &store_dir.path().join("store.db"),
    )
    .await;
    let mut dave = Person::connected(&name, session, store_dir).await;
    let m = dave.expect_text(&t7).await;
    assert_eq!(m.seq, s7.seq);
    let t8 = text("and live after that");
    bob.session.send_text(room, &t8).await.unwrap();
    dave.expect_text(&t8).await;
    carol.expect_text(&t8).await;
    // Nothing from before anyone's join point was offered to them.
    for p in [&carol, &dave] {
        assert!(
            !p.texts.keys().any(|t| t.starts_with("before carol")),
            "{}: {:?}",
            p.name,
            p.texts
        );
    }
}
