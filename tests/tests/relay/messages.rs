//! Messages: posting sealed envelopes (idempotent, gapless `seq`), receipts and unread counts, forged headers, concurrent senders, posts racing a removal, history pages bounded in bytes.

use serde_json::json;
use sotto_core::api::ServerFrame;
use sotto_core::envelope::Envelope;
use sotto_tests::{Backend, Member, both_backends, spawn_app};
use uuid::Uuid;

use super::support::*;

both_backends!(
    a_batch_is_one_transaction_that_skips_retries_and_stale_epochs,
    messages_receipts_and_unread,
    forged_headers_are_refused_and_store_nothing,
    concurrent_senders_get_gapless_seq,
    posts_racing_a_removal_are_not_stored,
    history_pages_are_bounded_in_bytes,
);

async fn messages_receipts_and_unread(backend: Backend) {
    let app = spawn_app(backend).await;
    let m = app.members("msg", 3).await;
    app.acquaint(&m.iter().map(|x| x.id()).collect::<Vec<_>>())
        .await;
    let (alice, bob, carol) = (&m[0], &m[1], &m[2]);
    let room = app.room(&alice.account, "chat", &[bob.id()]).await;
    let mut events = subscribe(&app, bob.id());
    let to = [alice.verified(), bob.verified()];
    let mp = format!("/api/v1/rooms/{room}/messages");

    let (cid, env) = alice.seal(room, b"hello bob", &to);
    let r = app.send(alice, room, cid, &env).await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["seq"], 1);
    let first = r.body.clone();
    let ev = next_event(&mut events).await;
    match &*ev {
        ServerFrame::Message {
            seq,
            envelope,
            sender_id,
            ..
        } => {
            assert_eq!(*seq, 1);
            assert_eq!(envelope.as_bytes(), &env[..]);
            assert_eq!(*sender_id, alice.id());
        }
        f => panic!("{f:?}"),
    }
    // A retry answers the first result and stores nothing.
    let r = app.send(alice, room, cid, &env).await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body, first);
    // Reusing the client id for another message is a conflict.
    let other = alice.seal_with(room, cid, b"something else", &to, false);
    app.send(alice, room, cid, &other)
        .await
        .problem(409, "envelope_mismatch");
    assert_eq!(app.count("SELECT COUNT(*) FROM messages", &[]).await, 1);

    for i in 0..5 {
        let (cid, env) = bob.seal(room, format!("reply {i}").as_bytes(), &to);
        assert_eq!(app.send(bob, room, cid, &env).await.body["seq"], 2 + i);
    }
    // Alice reads the stored envelope untouched and opens it.
    let r = app
        .get(&format!("{mp}?after_seq=1&limit=2"), Some(alice.token()))
        .await;
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["seq"], 2);
    assert_eq!(r.body["next_cursor"], "3");
    let bytes = sotto_core::encoding::b64_decode(items[0]["envelope"].as_str().unwrap()).unwrap();
    let bv = bob.verified();
    let opened = sotto_core::envelope::open(
        &bytes,
        alice.device_id,
        &alice.keys,
        &sotto_core::envelope::OpenContext {
            room_id: room,
            sender: &bv,
        },
    )
    .unwrap();
    assert_eq!(&opened.plaintext[..], b"reply 0");
    let r = app
        .get(&format!("{mp}?after_seq=3"), Some(alice.token()))
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 3);
    assert!(r.body["next_cursor"].is_null());

    // Unread: Alice has 5 from Bob; Bob has 1 from Alice.
    let r = app.get("/api/v1/unread", Some(alice.token())).await;
    assert_eq!(r.body[room.to_string()], 5, "{r:?}");
    assert_eq!(
        app.get("/api/v1/unread", Some(bob.token())).await.body[room.to_string()],
        1
    );
    let r = app.get("/api/v1/rooms", Some(alice.token())).await;
    assert_eq!(r.body["items"][0]["unread"], 5);
    assert_eq!(r.body["items"][0]["last_seq"], 6);

    // Receipts move forward only; read implies delivered; beyond last_seq is 400.
    let rp = format!("/api/v1/rooms/{room}/receipts");
    drain(&mut events);
    let r = app
        .post(&rp, Some(alice.token()), json!({"kind": "read", "seq": 4}))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["seq"], 4);
    let ev = next_event(&mut events).await;
    assert!(matches!(*ev, ServerFrame::Receipt { seq: 4, .. }), "{ev:?}");
    assert_eq!(
        app.get("/api/v1/unread", Some(alice.token())).await.body[room.to_string()],
        2
    );
    let r = app
        .post(&rp, Some(alice.token()), json!({"kind": "read", "seq": 2}))
        .await;
    assert_eq!(r.body["seq"], 4, "receipts never move back: {r:?}");
    let r = app
        .post(
            &rp,
            Some(alice.token()),
            json!({"kind": "delivered", "seq": 3}),
        )
        .await;
    assert_eq!(r.body["seq"], 4, "read implies delivered: {r:?}");
    let r = app
        .post(
            &rp,
            Some(alice.token()),
            json!({"kind": "delivered", "seq": 6}),
        )
        .await;
    assert_eq!(r.body["seq"], 6);
    app.post(&rp, Some(alice.token()), json!({"kind": "read", "seq": 7}))
        .await
        .problem(400, "validation_failed");
    app.post(&rp, Some(alice.token()), json!({"kind": "seen", "seq": 1}))
        .await
        .problem(400, "validation_failed");

    // Delete: the sender or the owner; another member is 403. Tombstones keep seq.
    let ids: Vec<String> = app.get(&mp, Some(alice.token())).await.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    app.req(
        "DELETE",
        &format!("{mp}/{}", ids[0]),
        Some(bob.token()),
        None,
    )
    .await
    .problem(403, "forbidden");
    assert_eq!(
        app.req(
            "DELETE",
            &format!("{mp}/{}", ids[0]),
            Some(alice.token()),
            None
        )
        .await
        .status,
        204
    );
    assert_eq!(
        app.req(
            "DELETE",
            &format!("{mp}/{}", ids[1]),
            Some(alice.token()),
            None
        )
        .await
        .status,
        204,
        "owner deletes"
    );
    assert_eq!(
        app.req(
            "DELETE",
            &format!("{mp}/{}", ids[2]),
            Some(bob.token()),
            None
        )
        .await
        .status,
        204
    );
    app.req(
        "DELETE",
        &format!("{mp}/{}", Uuid::new_v4()),
        Some(alice.token()),
        None,
    )
    .await
    .problem(404, "not_found");
    let r = app.get(&mp, Some(bob.token())).await;
    let items = r.body["items"].as_array().unwrap();
    let seqs: Vec<u64> = items.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(items[0]["deleted"], true);
    assert!(items[0]["envelope"].is_null());
    assert_eq!(items[3]["deleted"], false);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM messages WHERE envelope IS NULL", &[])
            .await,
        3
    );
    // Deleted messages are not unread.
    assert_eq!(
        app.get("/api/v1/unread", Some(bob.token())).await.body[room.to_string()],
        0
    );

    // A member added later sees only what follows their joining.
    app.post(
        &format!("/api/v1/rooms/{room}/members"),
        Some(alice.token()),
        json!({"user_id": carol.id()}),
    )
    .await;
    assert!(
        app.get(&mp, Some(carol.token())).await.body["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        app.get("/api/v1/unread", Some(carol.token())).await.body[room.to_string()],
        0
    );
    let to3 = [alice.verified(), bob.verified(), carol.verified()];
    let (cid, env) = bob.seal(room, b"welcome carol", &to3);
    assert_eq!(app.send(bob, room, cid, &env).await.body["seq"], 7);
    let r = app.get(&mp, Some(carol.token())).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["items"][0]["seq"], 7);
    app.req(
        "DELETE",
        &format!("{mp}/{}", ids[3]),
        Some(carol.token()),
        None,
    )
    .await
    .problem(404, "not_found");

    // A removed member can neither read nor post.
    app.req(
        "DELETE",
        &format!("/api/v1/rooms/{room}/members/{}", carol.id()),
        Some(alice.token()),
        None,
    )
    .await;
    let (cid, env) = carol.seal(room, b"still here?", &to3);
    app.send(carol, room, cid, &env)
        .await
        .problem(404, "not_a_member");
    app.get(&mp, Some(carol.token()))
        .await
        .problem(404, "not_a_member");

    // Envelopes over the configured size are 413; under it they pass.
    let max = app.state.config.max_message_bytes;
    let (cid, env) = alice.seal(room, &vec![7u8; max / 2], &to);
    assert_eq!(app.send(alice, room, cid, &env).await.status, 201);
    let (cid, env) = alice.seal(room, &vec![7u8; max + 1], &to);
    assert!(env.len() > max);
    app.send(alice, room, cid, &env)
        .await
        .problem(413, "payload_too_large");
}

async fn forged_headers_are_refused_and_store_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let m = app.members("forge", 3).await;
    let (alice, bob, mallory) = (&m[0], &m[1], &m[2]);
    let room = app
        .room(&alice.account, "r", &[bob.id(), mallory.id()])
        .await;
    let other_room = app.room(&mallory.account, "m", &[alice.id()]).await;
    let to = [alice.verified(), bob.verified()];

    // Addressed to another room (one Mallory is also in).
    let (cid, env) = mallory.seal(other_room, b"x", &to);
    app.send(mallory, room, cid, &env)
        .await
        .problem(400, "envelope_mismatch");
    // Naming another sender: an envelope "from Alice" built and signed by Mallory.
    let header = sotto_core::envelope::Header {
        room_id: room,
        sender_user_id: alice.id(),
        sender_device_id: alice.device_id,
        client_message_id: Uuid::new_v4(),
        timestamp_ms: 1,
    };
    let recips = [sotto_core::envelope::Recipient::x25519(&to[1])];
    let forged = sotto_core::envelope::seal(b"x", &header, &recips, &mallory.keys)
        .unwrap()
        .to_bytes();
    app.send(mallory, room, header.client_message_id, &forged)
        .await
        .problem(400, "envelope_mismatch");
    // Mallory as sender, but a device of Bob's.
    let header = sotto_core::envelope::Header {
        room_id: room,
        sender_user_id: mallory.id(),
        sender_device_id: bob.device_id,
        client_message_id: Uuid::new_v4(),
        timestamp_ms: 1,
    };
    let forged = sotto_core::envelope::seal(b"x", &header, &recips, &bob.keys)
        .unwrap()
        .to_bytes();
    app.send(mallory, room, header.client_message_id, &forged)
        .await
        .problem(400, "envelope_mismatch");
    // A device id Mallory never registered.
    let header = sotto_core::envelope::Header {
        sender_device_id: Uuid::new_v4(),
        ..header
    };
    let forged = sotto_core::envelope::seal(b"x", &header, &recips, &mallory.keys)
        .unwrap()
        .to_bytes();
    app.send(mallory, room, header.client_message_id, &forged)
        .await
        .problem(400, "envelope_mismatch");
    // Mallory's own device in the header, but signed with another key.
    let header = sotto_core::envelope::Header {
        sender_device_id: mallory.device_id,
        ..header
    };
    let forged = sotto_core::envelope::seal(b"x", &header, &recips, &bob.keys)
        .unwrap()
        .to_bytes();
    app.send(mallory, room, header.client_message_id, &forged)
        .await
        .problem(400, "invalid_envelope");
    // Ciphertext altered after signing.
    let (cid, env) = mallory.seal(room, b"hello", &to);
    let mut t = env.clone();
    let n = t.len();
    t[n - 70] ^= 1;
    app.send(mallory, room, cid, &t)
        .await
        .problem(400, "invalid_envelope");
    // client_id in the request differs from the header's.
    app.send(mallory, room, Uuid::new_v4(), &env)
        .await
        .problem(400, "envelope_mismatch");
    // Not an envelope at all; truncated; trailing bytes.
    app.send(mallory, room, cid, b"garbage")
        .await
        .problem(400, "invalid_envelope");
    app.send(mallory, room, cid, &env[..env.len() - 1])
        .await
        .problem(400, "invalid_envelope");
    let mut long = env.clone();
    long.push(0);
    app.send(mallory, room, cid, &long)
        .await
        .problem(400, "invalid_envelope");

    assert_eq!(app.count("SELECT COUNT(*) FROM messages", &[]).await, 0);
    assert_eq!(
        app.count("SELECT COALESCE(MAX(last_seq), 0) FROM rooms", &[])
            .await,
        0
    );
    // The genuine one goes through, with seq 1 (nothing was consumed).
    let r = app.send(mallory, room, cid, &env).await;
    assert_eq!(r.body["seq"], 1, "{r:?}");
    assert_eq!(
        Envelope::peek_header(&env).unwrap().sender_user_id,
        mallory.id()
    );
}

async fn concurrent_senders_get_gapless_seq(backend: Backend) {
    let app = std::sync::Arc::new(spawn_app(backend).await);
    let members = std::sync::Arc::new(app.members("conc", 10).await);
    let owner = &members[0];
    let others: Vec<Uuid> = members[1..].iter().map(Member::id).collect();
    let room = app.room(&owner.account, "busy", &others).await;
    let devices: Vec<_> = members.iter().map(Member::verified).collect();

    // 50 concurrent senders (5 tasks per member), 4 messages each; every post is
    // also retried concurrently with the same client_id.
    let per_sender = 4;
    let mut tasks = Vec::new();
    for s in 0..50usize {
        let (app, members, devices) = (app.clone(), members.clone(), devices.clone());
        tasks.push(tokio::spawn(async move {
            let me = &members[s % members.len()];
            let mut sent = Vec::new();
            for i in 0..per_sender {
                let (cid, env) =
                    me.seal(room, format!("sender {s} message {i}").as_bytes(), &devices);
                let (a, b) =
                    tokio::join!(app.send(me, room, cid, &env), app.send(me, room, cid, &env));
                assert_eq!(a.status, 201, "{a:?}");
                assert_eq!(b.status, 201, "{b:?}");
                assert_eq!(a.body, b.body, "a retry answers the first result");
                sent.push((cid, a.body["seq"].as_u64().unwrap()));
            }
            sent
        }));
    }
    let mut by_seq = std::collections::BTreeMap::new();
    for t in tasks {
        for (cid, seq) in t.await.unwrap() {
            assert!(by_seq.insert(seq, cid).is_none(), "seq {seq} given twice");
        }
    }
    let n = 50 * per_sender as u64;
    assert_eq!(
        by_seq.keys().copied().collect::<Vec<_>>(),
        (1..=n).collect::<Vec<_>>()
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM messages", &[]).await,
        n as i64
    );
    // The stored history agrees, in order.
    let mut after = 0;
    let mut listed = Vec::new();
    loop {
        let page = app.history(&owner.account, room, after, 200).await;
        for m in &page.items {
            listed.push((m.seq, m.client_id));
        }
        match page.next_cursor {
            Some(c) => after = c.parse().unwrap(),
            None => break,
        }
    }
    assert_eq!(listed, by_seq.into_iter().collect::<Vec<_>>());
}

/// A post that was checked while the sender was a member, but reaches the
/// store after their removal committed, must not be stored. Deterministic: the
/// test holds the room's row lock (as `remove_member` does), lets a post block
/// on it, removes the sender, commits, and expects 404 and nothing stored.
async fn posts_racing_a_removal_are_not_stored(backend: Backend) {
    let app = std::sync::Arc::new(spawn_app(backend).await);
    let m = std::sync::Arc::new(app.members("race", 2).await);
    let room = app.room(&m[0].account, "r", &[m[1].id()]).await;
    let mut tx = app.state.db.begin_write().await.unwrap();
    sotto_tests::tx_exec(
        &mut tx,
        "UPDATE rooms SET member_epoch = member_epoch + 1 WHERE id = $1",
        &[room],
    )
    .await;
    let post = {
        let (app, m) = (app.clone(), m.clone());
        tokio::spawn(async move {
            let (cid, env) = m[1].seal(room, b"too late", &[m[0].verified()]);
            app.send(&m[1], room, cid, &env).await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(!post.is_finished(), "the post waits for the row lock");
    sotto_tests::tx_exec(
        &mut tx,
        "DELETE FROM room_members WHERE room_id = $1 AND user_id = $2",
        &[room, m[1].id()],
    )
    .await;
    tx.commit().await.unwrap();
    post.await.unwrap().problem(404, "not_a_member");
    assert_eq!(app.count("SELECT COUNT(*) FROM messages", &[]).await, 0);
    assert_eq!(app.count("SELECT last_seq FROM rooms", &[]).await, 0);
}

async fn history_pages_are_bounded_in_bytes(backend: Backend) {
    let app = spawn_app(backend).await;
    let m = app.members("big", 1).await;
    let alice = &m[0];
    let room = app.room(&alice.account, "big", &[]).await;
    let to = [alice.verified()];
    let n = 80;
    for _ in 0..n {
        let (cid, env) = alice.seal(room, &vec![3u8; 120 * 1024], &to);
        assert_eq!(app.send(alice, room, cid, &env).await.status, 201);
    }
    let mut after = 0;
    let mut pages = Vec::new();
    loop {
        let page = app.history(&alice.account, room, after, 200).await;
        let items = &page.items;
        let bytes: usize = items
            .iter()
            .map(|m| m.envelope.as_ref().map_or(0, |e| e.as_bytes().len()))
            .sum();
        assert!(
            bytes <= sotto_relay::messages::PAGE_BYTES as usize,
            "{bytes}"
        );
        pages.push(items.len());
        match page.next_cursor.as_deref() {
            Some(c) => after = c.parse().unwrap(),
            None => break,
        }
    }
    assert!(pages.len() >= 2, "{pages:?}");
    assert_eq!(pages.iter().sum::<usize>(), n);
}

/// The group commit's store call: one transaction for several messages, each
/// taking the next seq, a retry of a client_id already in the batch taking
/// none, and a message checked at an old membership epoch stored not at all.
async fn a_batch_is_one_transaction_that_skips_retries_and_stale_epochs(backend: Backend) {
    use sotto_relay::store::messages::{NewMessage, Stored, store_batch};
    let app = spawn_app(backend).await;
    let m = app.members("batch", 1).await;
    let alice = &m[0];
    let room = app.room(&alice.account, "batched", &[]).await;
    let epoch = app
        .count("SELECT member_epoch FROM rooms WHERE id = $1", &[room])
        .await;
    let msg = |client_id: Uuid, epoch: i64| NewMessage {
        id: Uuid::now_v7(),
        room,
        sender: alice.id(),
        device: alice.device_id,
        client_id,
        envelope: client_id.as_bytes().to_vec(),
        digest: client_id.simple().to_string(),
        now: 1_700_000_000_000,
        epoch,
    };
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let batch = [
        msg(a, epoch),
        msg(b, epoch),
        msg(a, epoch),
        msg(Uuid::new_v4(), epoch - 1),
    ];
    let stored = store_batch(&app.state.db, &batch.iter().collect::<Vec<_>>())
        .await
        .unwrap();
    assert_eq!(
        stored,
        [
            Stored::Seq(1),
            Stored::Seq(2),
            Stored::NotStored,
            Stored::NotStored
        ]
    );
    let page = app.history(&alice.account, room, 0, 50).await;
    let got: Vec<(u64, Uuid)> = page.items.iter().map(|m| (m.seq, m.client_id)).collect();
    assert_eq!(got, [(1, a), (2, b)]);
    // The next post continues the seq.
    let (cid, env) = alice.seal(room, b"after the batch", &[alice.verified()]);
    assert_eq!(app.post_message(alice, room, cid, &env, 201).await.seq, 3);
}
