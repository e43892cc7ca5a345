//! The relay's devices and keys, rooms, messages, receipts, contacts and
//! attachments, end to end over real sockets, on SQLite and on PostgreSQL.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;

use serde_json::{Value, json};
use sotto_core::api::ServerFrame;
use sotto_core::envelope::Envelope;
use sotto_core::keys::{DeviceBundle, DeviceKeyOptions, DeviceKeys, IdentityKeyPair};
use sotto_relay::events::Subscription;
use sotto_tests::{Backend, Member, TestApp, b64, both_backends, spawn_app};
use uuid::Uuid;

both_backends!(
    devices_and_identity_keys,
    key_visibility,
    rooms_and_membership,
    direct_rooms_are_one_per_pair_even_under_races,
    messages_receipts_and_unread,
    forged_headers_are_refused_and_store_nothing,
    concurrent_senders_get_gapless_seq,
    attachments_stream_and_die_with_their_room,
    contacts_and_search,
    authorization_matrix,
    bad_input_is_a_problem_never_a_500,
    deleting_a_user_hands_rooms_over,
    concurrent_membership_changes_stay_consistent,
    revoked_devices_stay_verifiable_but_cannot_post,
    unverified_users_cannot_be_added,
    upload_limits_quota_and_stalls,
    posts_racing_a_removal_are_not_stored,
    history_pages_are_bounded_in_bytes,
);

/// The next event delivered to a user's subscription, or a failure after 10 s (a
/// missing event must fail the test, not hang it).
async fn next_event(rx: &mut Subscription) -> std::sync::Arc<ServerFrame> {
    tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
        .await
        .expect("no event within 10 s")
        .unwrap()
}

/// Drops what a subscription has queued so far.
fn drain(rx: &mut Subscription) {
    while let Ok(Some(_)) = rx.try_recv() {}
}

fn subscribe(app: &TestApp, user: Uuid) -> Subscription {
    app.state.events.subscribe(user, 256)
}

async fn put_device(app: &TestApp, token: &str, body: Value) -> sotto_tests::Res {
    let id = body["bundle"]["device_id"].as_str().unwrap().to_string();
    app.req(
        "PUT",
        &format!("/api/v1/devices/{id}"),
        Some(token),
        Some(body),
    )
    .await
}

async fn devices_and_identity_keys(backend: Backend) {
    let app = spawn_app(backend).await;
    let accounts = app.users("dev", 2).await;
    let (alice, bob) = (accounts[0].clone(), accounts[1].clone());
    let mut events = subscribe(&app, alice.id);
    let mut bob_events = subscribe(&app, bob.id);
    let identity = IdentityKeyPair::generate().unwrap();
    let keys = DeviceKeys::generate(DeviceKeyOptions::default()).unwrap();
    let dev = Uuid::new_v4();
    let bundle = DeviceBundle::create(&identity, &keys, alice.id, dev).unwrap();

    // Register (201), replace (200).
    let r = put_device(
        &app,
        &alice.access,
        json!({"bundle": bundle, "display_name": "Laptop"}),
    )
    .await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["device_id"], dev.to_string());
    assert_eq!(r.body["display_name"], "Laptop");
    // Delivered to Alice herself.
    let ev = next_event(&mut events).await;
    assert_eq!(*ev, ServerFrame::KeysChanged { user_id: alice.id });
    let r = put_device(
        &app,
        &alice.access,
        json!({"bundle": bundle, "display_name": "Work laptop"}),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["display_name"], "Work laptop");

    // A second device under the same identity.
    let keys2 = DeviceKeys::generate(DeviceKeyOptions {
        rsa: Some(sotto_core::keys::RsaBits::Rsa2048),
    })
    .unwrap();
    let dev2 = Uuid::new_v4();
    let bundle2 = DeviceBundle::create(&identity, &keys2, alice.id, dev2).unwrap();
    assert_eq!(
        put_device(&app, &alice.access, json!({"bundle": bundle2}))
            .await
            .status,
        201
    );
    let r = app.get("/api/v1/devices", Some(&alice.access)).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2, "{r:?}");
    assert!(r.body["next_cursor"].is_null());

    // Path and bundle disagree; the bundle names someone else.
    let r = app
        .req(
            "PUT",
            &format!("/api/v1/devices/{}", Uuid::new_v4()),
            Some(&alice.access),
            Some(json!({"bundle": bundle})),
        )
        .await;
    r.problem(400, "device_mismatch");
    let bobs = DeviceBundle::create(&identity, &keys, bob.id, Uuid::new_v4()).unwrap();
    put_device(&app, &alice.access, json!({"bundle": bobs}))
        .await
        .problem(400, "device_mismatch");
    // Bob may not take Alice's device id either.
    let taken =
        DeviceBundle::create(&IdentityKeyPair::generate().unwrap(), &keys, bob.id, dev).unwrap();
    put_device(&app, &bob.access, json!({"bundle": taken}))
        .await
        .problem(409, "conflict");

    // Tampered signatures and malformed keys are 400 invalid_bundle.
    let mut j = serde_json::to_value(&bundle).unwrap();
    let mut sig =
        sotto_core::encoding::b64_decode(j["identity_signature"].as_str().unwrap()).unwrap();
    sig[0] ^= 1;
    j["identity_signature"] = json!(b64(&sig));
    put_device(&app, &alice.access, json!({"bundle": j}))
        .await
        .problem(400, "invalid_bundle");
    let mut j = serde_json::to_value(&bundle).unwrap();
    j["x25519_key"] = json!(b64(&[0u8; 31]));
    let r = put_device(&app, &alice.access, json!({"bundle": j})).await;
    assert_eq!(r.status, 400, "{r:?}");
    let mut j = serde_json::to_value(&bundle).unwrap();
    j["signing_key"] = json!("not base64!");
    assert_eq!(
        put_device(&app, &alice.access, json!({"bundle": j}))
            .await
            .status,
        400
    );
    let long = "x".repeat(65);
    put_device(
        &app,
        &alice.access,
        json!({"bundle": bundle, "display_name": long}),
    )
    .await
    .problem(400, "validation_failed");

    // A new identity key is refused unless it explicitly replaces the old one,
    // which drops the devices signed by the old identity and is announced.
    let identity2 = IdentityKeyPair::generate().unwrap();
    let dev3 = Uuid::new_v4();
    let bundle3 = DeviceBundle::create(&identity2, &keys, alice.id, dev3).unwrap();
    put_device(&app, &alice.access, json!({"bundle": bundle3}))
        .await
        .problem(409, "identity_key_changed");
    // Bob shares a room with Alice: he hears about her keys.
    app.room(&alice, "peers", &[bob.id]).await;
    drain(&mut events);
    drain(&mut bob_events);
    let r = put_device(
        &app,
        &alice.access,
        json!({"bundle": bundle3, "replace_identity": true}),
    )
    .await;
    assert_eq!(r.status, 201, "{r:?}");
    let ev = next_event(&mut bob_events).await;
    assert_eq!(*ev, ServerFrame::KeysChanged { user_id: alice.id });
    let r = app.get("/api/v1/devices", Some(&alice.access)).await;
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{r:?}");
    assert_eq!(items[0]["device_id"], dev3.to_string());
    // Every bundle served verifies.
    let d: sotto_core::api::Device = serde_json::from_value(items[0].clone()).unwrap();
    d.bundle.verify_for(&identity2.public_key()).unwrap();

    // Revoke: 204, then 404; Bob cannot revoke Alice's device. Announced.
    drain(&mut events);
    let del = |who: &sotto_tests::Account| {
        let who = who.access.clone();
        let app = &app;
        async move {
            app.req(
                "DELETE",
                &format!("/api/v1/devices/{dev3}"),
                Some(&who),
                None,
            )
            .await
        }
    };
    del(&bob).await.problem(404, "not_found");
    assert_eq!(del(&alice).await.status, 204);
    let ev = next_event(&mut events).await;
    assert_eq!(*ev, ServerFrame::KeysChanged { user_id: alice.id });
    del(&alice).await.problem(404, "not_found");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM devices WHERE revoked_at IS NULL", &[])
            .await,
        0
    );
    // Revoked devices stay listed on request, flagged, and their ids are not reusable.
    assert!(
        app.get("/api/v1/devices", Some(&alice.access)).await.body["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let r = app
        .get("/api/v1/devices?include_revoked=true", Some(&alice.access))
        .await;
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{r:?}");
    assert!(items.iter().all(|d| d["revoked_at"].is_string()));
    put_device(
        &app,
        &alice.access,
        json!({"bundle": bundle3, "replace_identity": true}),
    )
    .await
    .problem(409, "conflict");
}

async fn key_visibility(backend: Backend) {
    let app = spawn_app(backend).await;
    let m = app.members("vis", 4).await;
    let (alice, bob, carol, dave) = (&m[0], &m[1], &m[2], &m[3]);
    let admin = app.account_with_role("visadmin", "admin").await;
    let path = |u: &Member| format!("/api/v1/users/{}/devices", u.id());

    // Strangers: 404, and an empty list in a bulk query.
    app.get(&path(bob), Some(alice.token()))
        .await
        .problem(404, "not_found");
    let r = app
        .post(
            "/api/v1/keys/query",
            Some(alice.token()),
            json!({"user_ids": [bob.id(), carol.id(), Uuid::new_v4()]}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let devs = r.body["devices"].as_object().unwrap();
    assert_eq!(devs.len(), 3);
    assert!(
        devs.values().all(|v| v.as_array().unwrap().is_empty()),
        "{r:?}"
    );

    // Sharing a room reveals keys; so does a contact (in either direction); admins see all.
    app.room(&alice.account, "r", &[bob.id()]).await;
    let r = app
        .post(
            "/api/v1/contacts",
            Some(&dave.account.access),
            json!({"user_id": carol.id()}),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let r = app.get(&path(bob), Some(alice.token())).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["items"][0]["device_id"], bob.device_id.to_string());
    assert_eq!(app.get(&path(alice), Some(bob.token())).await.status, 200);
    assert_eq!(app.get(&path(carol), Some(dave.token())).await.status, 200);
    assert_eq!(app.get(&path(dave), Some(carol.token())).await.status, 200);
    app.get(&path(carol), Some(alice.token()))
        .await
        .problem(404, "not_found");
    assert_eq!(app.get(&path(carol), Some(&admin.access)).await.status, 200);
    assert_eq!(app.get(&path(alice), Some(alice.token())).await.status, 200);
    app.get(
        &format!("/api/v1/users/{}/devices", Uuid::new_v4()),
        Some(&admin.access),
    )
    .await
    .problem(404, "not_found");

    let r = app
        .post(
            "/api/v1/keys/query",
            Some(alice.token()),
            json!({"user_ids": [bob.id(), carol.id(), alice.id(), bob.id()]}),
        )
        .await;
    let devs = &r.body["devices"];
    assert_eq!(
        devs[bob.id().to_string()][0]["device_id"],
        bob.device_id.to_string(),
        "{r:?}"
    );
    assert_eq!(devs[alice.id().to_string()].as_array().unwrap().len(), 1);
    assert!(devs[carol.id().to_string()].as_array().unwrap().is_empty());

    let many: Vec<Uuid> = (0..201).map(|_| Uuid::new_v4()).collect();
    app.post(
        "/api/v1/keys/query",
        Some(alice.token()),
        json!({"user_ids": many}),
    )
    .await
    .problem(400, "validation_failed");
}

async fn rooms_and_membership(backend: Backend) {
    let app = spawn_app(backend).await;
    let u = app.users("rm", 4).await;
    let (alice, bob, carol, dave) = (&u[0], &u[1], &u[2], &u[3]);
    let mut subs: Vec<Subscription> = u.iter().map(|a| subscribe(&app, a.id)).collect();
    let r = app
        .post(
            "/api/v1/rooms",
            Some(&alice.access),
            json!({"name": "  Team  ", "member_ids": [bob.id, alice.id, bob.id]}),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["name"], "Team");
    assert_eq!(r.body["kind"], "group");
    assert_eq!(r.body["owner_id"], alice.id.to_string());
    assert_eq!(r.body["last_seq"], 0);
    assert_eq!(r.body["members"].as_array().unwrap().len(), 2);
    let room: Uuid = r.body["id"].as_str().unwrap().parse().unwrap();
    // The audience is the two members: Alice and Bob hear of it, Carol and Dave not.
    for sub in &mut subs[..2] {
        let ev = next_event(sub).await;
        assert!(matches!(
            *ev,
            ServerFrame::Room {
                change: sotto_core::api::RoomChange::Created,
                ..
            }
        ));
    }
    for sub in &mut subs[2..] {
        assert_eq!(sub.try_recv().unwrap(), None);
    }
    let rp = format!("/api/v1/rooms/{room}");

    // Listing and details.
    let r = app.get("/api/v1/rooms", Some(&bob.access)).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1, "{r:?}");
    assert_eq!(r.body["items"][0]["unread"], 0);
    assert!(
        app.get("/api/v1/rooms", Some(&carol.access)).await.body["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(app.get(&rp, Some(&bob.access)).await.status, 200);
    app.get(&rp, Some(&carol.access))
        .await
        .problem(404, "not_a_member");
    app.get(
        &format!("/api/v1/rooms/{}", Uuid::new_v4()),
        Some(&carol.access),
    )
    .await
    .problem(404, "not_a_member");

    // Rename: owner only.
    app.req(
        "PATCH",
        &rp,
        Some(&bob.access),
        Some(json!({"name": "Mine"})),
    )
    .await
    .problem(403, "forbidden");
    let r = app
        .req(
            "PATCH",
            &rp,
            Some(&alice.access),
            Some(json!({"name": "Renamed"})),
        )
        .await;
    assert_eq!(r.body["name"], "Renamed", "{r:?}");

    // Members: owner adds; duplicates 409; unknown user 404; a member cannot add.
    let mp = format!("{rp}/members");
    app.post(&mp, Some(&bob.access), json!({"user_id": carol.id}))
        .await
        .problem(403, "forbidden");
    let r = app
        .post(&mp, Some(&alice.access), json!({"user_id": carol.id}))
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["user_id"], carol.id.to_string());
    assert_eq!(r.body["is_owner"], false);
    app.post(&mp, Some(&alice.access), json!({"user_id": carol.id}))
        .await
        .problem(409, "already_member");
    app.post(&mp, Some(&alice.access), json!({"user_id": Uuid::new_v4()}))
        .await
        .problem(404, "not_found");
    app.post(&mp, Some(&alice.access), json!({"user_id": dave.id}))
        .await;

    // Removing: a member removes only themself; the owner anyone.
    let r = app
        .req(
            "DELETE",
            &format!("{mp}/{}", dave.id),
            Some(&bob.access),
            None,
        )
        .await;
    r.problem(403, "forbidden");
    assert_eq!(
        app.req(
            "DELETE",
            &format!("{mp}/{}", dave.id),
            Some(&alice.access),
            None
        )
        .await
        .status,
        204
    );
    app.get(&rp, Some(&dave.access))
        .await
        .problem(404, "not_a_member");
    assert_eq!(
        app.req(
            "DELETE",
            &format!("{mp}/{}", carol.id),
            Some(&carol.access),
            None
        )
        .await
        .status,
        204
    );
    app.req(
        "DELETE",
        &format!("{mp}/{}", carol.id),
        Some(&alice.access),
        None,
    )
    .await
    .problem(404, "not_found");

    // The owner leaves: the longest-standing member (Bob) owns the room.
    assert_eq!(
        app.req(
            "DELETE",
            &format!("{mp}/{}", alice.id),
            Some(&alice.access),
            None
        )
        .await
        .status,
        204
    );
    let r = app.get(&rp, Some(&bob.access)).await;
    assert_eq!(r.body["owner_id"], bob.id.to_string(), "{r:?}");
    // The last member leaves: the room is gone.
    assert_eq!(
        app.req(
            "DELETE",
            &format!("{mp}/{}", bob.id),
            Some(&bob.access),
            None
        )
        .await
        .status,
        204
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM rooms", &[]).await, 0);

    // Delete: owner only.
    let room2 = app.room(alice, "two", &[bob.id]).await;
    let rp2 = format!("/api/v1/rooms/{room2}");
    app.req("DELETE", &rp2, Some(&bob.access), None)
        .await
        .problem(403, "forbidden");
    assert_eq!(
        app.req("DELETE", &rp2, Some(&alice.access), None)
            .await
            .status,
        204
    );
    app.get(&rp2, Some(&alice.access))
        .await
        .problem(404, "not_a_member");

    // Pagination over rooms.
    for i in 0..5 {
        app.room(carol, &format!("p{i}"), &[]).await;
    }
    let mut seen = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = cursor
            .as_ref()
            .map_or(String::new(), |c| format!("&cursor={c}"));
        let r = app
            .get(&format!("/api/v1/rooms?limit=2{q}"), Some(&carol.access))
            .await;
        for it in r.body["items"].as_array().unwrap() {
            assert!(seen.insert(it["id"].as_str().unwrap().to_string()));
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.into()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);
}

async fn direct_rooms_are_one_per_pair_even_under_races(backend: Backend) {
    let app = std::sync::Arc::new(spawn_app(backend).await);
    let u = app.users("dm", 3).await;
    let (a, b) = (u[0].clone(), u[1].clone());
    app.post(
        "/api/v1/rooms/direct",
        Some(&a.access),
        json!({"user_id": a.id}),
    )
    .await
    .problem(400, "cannot_target_self");
    app.post(
        "/api/v1/rooms/direct",
        Some(&a.access),
        json!({"user_id": Uuid::new_v4()}),
    )
    .await
    .problem(404, "not_found");
    let mut tasks = Vec::new();
    for i in 0..16 {
        let app = app.clone();
        let (me, other) = if i % 2 == 0 {
            (a.clone(), b.id)
        } else {
            (b.clone(), a.id)
        };
        tasks.push(tokio::spawn(async move {
            let r = app
                .post(
                    "/api/v1/rooms/direct",
                    Some(&me.access),
                    json!({"user_id": other}),
                )
                .await;
            assert!(r.status == 200 || r.status == 201, "{r:?}");
            (r.status, r.body["id"].as_str().unwrap().to_string())
        }));
    }
    let mut ids = BTreeSet::new();
    let mut created = 0;
    for t in tasks {
        let (status, id) = t.await.unwrap();
        created += usize::from(status == 201);
        ids.insert(id);
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(created, 1);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM rooms WHERE kind = 'direct'", &[])
            .await,
        1
    );
    let id = ids.into_iter().next().unwrap();
    let r = app
        .get(&format!("/api/v1/rooms/{id}"), Some(&b.access))
        .await;
    assert_eq!(r.body["kind"], "direct");
    assert_eq!(r.body["members"].as_array().unwrap().len(), 2);
    // Membership and name of a direct room are fixed.
    let owner = if r.body["owner_id"] == a.id.to_string() {
        &a
    } else {
        &b
    };
    app.post(
        &format!("/api/v1/rooms/{id}/members"),
        Some(&owner.access),
        json!({"user_id": u[2].id}),
    )
    .await
    .problem(400, "direct_room");
    app.req(
        "PATCH",
        &format!("/api/v1/rooms/{id}"),
        Some(&owner.access),
        Some(json!({"name": "x"})),
    )
    .await
    .problem(400, "direct_room");
    app.req(
        "DELETE",
        &format!("/api/v1/rooms/{id}/members/{}", a.id),
        Some(&a.access),
        None,
    )
    .await
    .problem(400, "direct_room");
    // Either member may delete a direct room; the opener has no other powers.
    let other = if owner.id == a.id { &b } else { &a };
    let r = app
        .req(
            "DELETE",
            &format!("/api/v1/rooms/{id}"),
            Some(&other.access),
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    let r = app
        .post(
            "/api/v1/rooms/direct",
            Some(&a.access),
            json!({"user_id": b.id}),
        )
        .await;
    assert_eq!(r.status, 201, "a new direct room after deletion: {r:?}");
}

async fn messages_receipts_and_unread(backend: Backend) {
    let app = spawn_app(backend).await;
    let m = app.members("msg", 3).await;
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
        let r = app
            .get(
                &format!("/api/v1/rooms/{room}/messages?after_seq={after}&limit=200"),
                Some(owner.token()),
            )
            .await;
        for it in r.body["items"].as_array().unwrap() {
            listed.push((
                it["seq"].as_u64().unwrap(),
                it["client_id"].as_str().unwrap().parse::<Uuid>().unwrap(),
            ));
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => after = c.parse().unwrap(),
            None => break,
        }
    }
    assert_eq!(listed, by_seq.into_iter().collect::<Vec<_>>());
}

async fn attachments_stream_and_die_with_their_room(backend: Backend) {
    let app = spawn_app(backend).await;
    let u = app.users("att", 3).await;
    let (alice, bob, eve) = (&u[0], &u[1], &u[2]);
    let room = app.room(alice, "files", &[bob.id]).await;
    let up = format!("/api/v1/rooms/{room}/attachments");
    let oct = Some("application/octet-stream");

    let small = vec![1u8; 1000];
    let (st, _, body) = app
        .req_bytes("POST", &up, Some(&alice.access), oct, small.clone())
        .await;
    assert_eq!(st, 201);
    let small_id = serde_json::from_slice::<Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let (st, _, body) = app
        .req_bytes("POST", &up, Some(&bob.access), oct, big.clone())
        .await;
    assert_eq!(st, 201);
    let created: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(created["size"], 1_000_000);
    let big_id = created["id"].as_str().unwrap().to_string();
    let file = app.data_dir.path().join("attachments").join(&big_id);
    assert_eq!(
        std::fs::read(&file).unwrap(),
        big,
        "large attachments are files"
    );

    for (id, bytes) in [(&small_id, &small), (&big_id, &big)] {
        let (st, h, body) = app
            .req_bytes(
                "GET",
                &format!("/api/v1/attachments/{id}"),
                Some(&bob.access),
                None,
                vec![],
            )
            .await;
        assert_eq!(st, 200);
        assert_eq!(&body, bytes);
        assert_eq!(h["content-type"], "application/octet-stream");
        let (st, _, _) = app
            .req_bytes(
                "GET",
                &format!("/api/v1/attachments/{id}"),
                Some(&eve.access),
                None,
                vec![],
            )
            .await;
        assert_eq!(st, 404, "non-members do not see attachments");
        let (st, _, _) = app
            .req_bytes(
                "GET",
                &format!("/api/v1/attachments/{id}"),
                None,
                None,
                vec![],
            )
            .await;
        assert_eq!(st, 401);
    }
    let (st, _, _) = app
        .req_bytes("POST", &up, Some(&eve.access), oct, small.clone())
        .await;
    assert_eq!(st, 404);
    let (st, _, body) = app
        .req_bytes(
            "POST",
            &up,
            Some(&alice.access),
            Some("text/plain"),
            small.clone(),
        )
        .await;
    assert_eq!(st, 415, "{}", String::from_utf8_lossy(&body));
    let (st, _, _) = app
        .req_bytes("POST", &up, Some(&alice.access), oct, vec![])
        .await;
    assert_eq!(st, 400);

    // Over the limit: refused from Content-Length, and mid-stream without one.
    let max = app.state.config.max_attachment_bytes;
    let head = format!(
        "POST {up} HTTP/1.1\r\nAuthorization: Bearer {}\r\nContent-Type: application/octet-stream",
        alice.access
    );
    assert_eq!(app.raw_declared(&head, max + 1).await, 413);
    let chunks = usize::try_from(max / 65536).unwrap() + 4;
    assert_eq!(app.raw_chunked(&head, chunks, 65536).await, 413);
    // Exactly at the limit is fine (then removed again below with the room).
    assert_eq!(
        app.raw_chunked(&head, usize::try_from(max / 65536).unwrap(), 65536)
            .await,
        201
    );
    let at_limit: String = sqlx::query_scalar("SELECT id FROM attachments WHERE size = $1")
        .bind(i64::try_from(max).unwrap())
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM attachments WHERE id = $1")
        .bind(&at_limit)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    std::fs::remove_file(app.data_dir.path().join("attachments").join(&at_limit)).unwrap();
    assert_eq!(app.count("SELECT COUNT(*) FROM attachments", &[]).await, 2);
    let leftovers: Vec<_> = std::fs::read_dir(app.data_dir.path().join("attachments"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        leftovers,
        vec![big_id.clone()],
        "refused uploads leave no file"
    );

    // Deleting the room deletes its attachments, rows and files.
    assert_eq!(
        app.req(
            "DELETE",
            &format!("/api/v1/rooms/{room}"),
            Some(&alice.access),
            None
        )
        .await
        .status,
        204
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM attachments", &[]).await, 0);
    assert!(!file.exists());
    let (st, _, _) = app
        .req_bytes(
            "GET",
            &format!("/api/v1/attachments/{big_id}"),
            Some(&alice.access),
            None,
            vec![],
        )
        .await;
    assert_eq!(st, 404);

    // An orphaned file (say, after a crash) is swept once old enough.
    let orphan = app
        .data_dir
        .path()
        .join("attachments")
        .join(Uuid::new_v4().to_string());
    std::fs::write(&orphan, b"x").unwrap();
    assert_eq!(
        sotto_relay::attachments::sweep_orphans(&app.state, std::time::Duration::from_secs(3600))
            .await,
        0
    );
    assert_eq!(
        sotto_relay::attachments::sweep_orphans(&app.state, std::time::Duration::ZERO).await,
        1
    );
    assert!(!orphan.exists());
}

async fn contacts_and_search(backend: Backend) {
    let app = spawn_app(backend).await;
    let u = app.users("con", 3).await;
    let (alice, bob, carol) = (&u[0], &u[1], &u[2]);
    let r = app
        .post(
            "/api/v1/contacts",
            Some(&alice.access),
            json!({"user_id": bob.id, "nickname": "Bobby"}),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["user"]["username"], "con1");
    assert_eq!(r.body["nickname"], "Bobby");
    assert!(
        r.body["user"].get("email").is_none(),
        "contacts carry public profiles only"
    );
    let cid = r.body["id"].as_str().unwrap().to_string();
    app.post(
        "/api/v1/contacts",
        Some(&alice.access),
        json!({"user_id": bob.id}),
    )
    .await
    .problem(409, "contact_exists");
    app.post(
        "/api/v1/contacts",
        Some(&alice.access),
        json!({"user_id": alice.id}),
    )
    .await
    .problem(400, "cannot_target_self");
    app.post(
        "/api/v1/contacts",
        Some(&alice.access),
        json!({"user_id": Uuid::new_v4()}),
    )
    .await
    .problem(404, "not_found");
    app.post(
        "/api/v1/contacts",
        Some(&alice.access),
        json!({"user_id": carol.id}),
    )
    .await;
    let r = app
        .get("/api/v1/contacts?limit=1", Some(&alice.access))
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    let next = r.body["next_cursor"].as_str().unwrap().to_string();
    let r = app
        .get(
            &format!("/api/v1/contacts?limit=1&cursor={next}"),
            Some(&alice.access),
        )
        .await;
    assert_eq!(r.body["items"][0]["user"]["id"], carol.id.to_string());
    assert!(r.body["next_cursor"].is_null());
    app.get("/api/v1/contacts?cursor=nope", Some(&alice.access))
        .await
        .problem(400, "invalid_cursor");
    assert!(
        app.get("/api/v1/contacts", Some(&bob.access)).await.body["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    let r = app
        .req(
            "PATCH",
            &format!("/api/v1/contacts/{cid}"),
            Some(&alice.access),
            Some(json!({"nickname": "B"})),
        )
        .await;
    assert_eq!(r.body["nickname"], "B", "{r:?}");
    let r = app
        .req(
            "PATCH",
            &format!("/api/v1/contacts/{cid}"),
            Some(&alice.access),
            Some(json!({"nickname": null})),
        )
        .await;
    assert!(r.body["nickname"].is_null());
    app.req(
        "PATCH",
        &format!("/api/v1/contacts/{cid}"),
        Some(&bob.access),
        Some(json!({"nickname": "x"})),
    )
    .await
    .problem(404, "not_found");
    app.req(
        "PATCH",
        &format!("/api/v1/contacts/{cid}"),
        Some(&alice.access),
        Some(json!({"nickname": "a\u{0}b"})),
    )
    .await
    .problem(400, "validation_failed");
    app.req(
        "DELETE",
        &format!("/api/v1/contacts/{cid}"),
        Some(&bob.access),
        None,
    )
    .await
    .problem(404, "not_found");
    assert_eq!(
        app.req(
            "DELETE",
            &format!("/api/v1/contacts/{cid}"),
            Some(&alice.access),
            None
        )
        .await
        .status,
        204
    );
    app.req(
        "DELETE",
        &format!("/api/v1/contacts/{cid}"),
        Some(&alice.access),
        None,
    )
    .await
    .problem(404, "not_found");

    // Search: verified users by username prefix, public profiles only.
    let r = app
        .get("/api/v1/users/search?q=con", Some(&alice.access))
        .await;
    let names: Vec<&str> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["con0", "con1", "con2"]);
    assert!(r.body["items"][0].get("email").is_none());
    assert!(r.body["next_cursor"].is_null());
    let r = app
        .get("/api/v1/users/search?q=con&limit=2", Some(&alice.access))
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
    assert_eq!(r.body["next_cursor"], "con1");
    let r = app
        .get(
            "/api/v1/users/search?q=con&limit=2&cursor=con1",
            Some(&alice.access),
        )
        .await;
    assert_eq!(r.body["items"][0]["username"], "con2");
    assert!(r.body["next_cursor"].is_null());
    app.get(
        "/api/v1/users/search?q=con&cursor=%20%21",
        Some(&alice.access),
    )
    .await
    .problem(400, "invalid_cursor");
    assert_eq!(
        app.get("/api/v1/users/search?q=con", None).await.status,
        401
    );
}

type MatrixRow = (
    &'static str,
    String,
    Box<dyn Fn(&Member) -> Option<Value>>,
    [u16; 5],
);

/// Who may do what, for every route of this issue: anonymous, an outsider
/// (authenticated, not a member), a member, the room's owner, and an admin who
/// is not a member (admins get no access to rooms they are not in).
async fn authorization_matrix(backend: Backend) {
    let app = spawn_app(backend).await;
    let m = app.members("az", 3).await;
    let (owner, member, outsider) = (&m[0], &m[1], &m[2]);
    let admin = app
        .with_device(app.account_with_role("azadmin", "admin").await, None)
        .await;
    let room = app.room(&owner.account, "r", &[member.id()]).await;
    let to = [owner.verified(), member.verified()];
    let (cid, env) = member.seal(room, b"m", &to);
    let r = app.send(member, room, cid, &env).await;
    let msg = r.body["id"].as_str().unwrap().to_string();
    let (st, _, body) = app
        .req_bytes(
            "POST",
            &format!("/api/v1/rooms/{room}/attachments"),
            Some(member.token()),
            Some("application/octet-stream"),
            vec![9; 10],
        )
        .await;
    assert_eq!(st, 201);
    let att = serde_json::from_slice::<Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    #[derive(Clone, Copy, Debug)]
    enum Who {
        Anon,
        Outsider,
        Member,
        Owner,
        Admin,
    }
    let who_all = [
        Who::Anon,
        Who::Outsider,
        Who::Member,
        Who::Owner,
        Who::Admin,
    ];
    let actor = |w: Who| -> Option<&Member> {
        match w {
            Who::Anon => None,
            Who::Outsider => Some(outsider),
            Who::Member => Some(member),
            Who::Owner => Some(owner),
            Who::Admin => Some(&admin),
        }
    };
    // (method, path, body builder, expected codes for anon/outsider/member/owner/admin).
    // Bodies that would change the fixture for later rows are built to be harmless.
    let rp = format!("/api/v1/rooms/{room}");
    let rows: Vec<MatrixRow> = vec![
        (
            "GET",
            rp.clone(),
            Box::new(|_| None),
            [401, 404, 200, 200, 404],
        ),
        (
            "PATCH",
            rp.clone(),
            Box::new(|_| Some(json!({"name": "n"}))),
            [401, 404, 403, 200, 404],
        ),
        (
            "GET",
            format!("{rp}/messages"),
            Box::new(|_| None),
            [401, 404, 200, 200, 404],
        ),
        (
            "POST",
            format!("{rp}/messages"),
            Box::new(move |a: &Member| {
                let (cid, env) = a.seal(room, b"matrix", &[a.verified()]);
                Some(json!({"client_id": cid, "envelope": b64(&env)}))
            }),
            [401, 404, 201, 201, 404],
        ),
        (
            "POST",
            format!("{rp}/receipts"),
            Box::new(|_| Some(json!({"kind": "read", "seq": 1}))),
            [401, 404, 200, 200, 404],
        ),
        (
            "POST",
            format!("{rp}/members"),
            Box::new(|_| Some(json!({"user_id": Uuid::nil()}))),
            [401, 404, 403, 404, 404],
        ),
        (
            "DELETE",
            format!("{rp}/members/{}", Uuid::nil()),
            Box::new(|_| None),
            [401, 404, 403, 404, 404],
        ),
        (
            "DELETE",
            format!("{rp}/messages/{}", Uuid::nil()),
            Box::new(|_| None),
            [401, 404, 404, 404, 404],
        ),
        (
            "GET",
            format!("/api/v1/attachments/{att}"),
            Box::new(|_| None),
            [401, 404, 200, 200, 404],
        ),
        (
            "GET",
            "/api/v1/rooms".into(),
            Box::new(|_| None),
            [401, 200, 200, 200, 200],
        ),
        (
            "POST",
            "/api/v1/rooms".into(),
            Box::new(|_| Some(json!({"name": "x"}))),
            [401, 201, 201, 201, 201],
        ),
        (
            "GET",
            "/api/v1/unread".into(),
            Box::new(|_| None),
            [401, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/devices".into(),
            Box::new(|_| None),
            [401, 200, 200, 200, 200],
        ),
        (
            "GET",
            format!("/api/v1/users/{}/devices", member.id()),
            Box::new(|_| None),
            [401, 404, 200, 200, 200],
        ),
        (
            "POST",
            "/api/v1/keys/query".into(),
            Box::new(|_| Some(json!({"user_ids": []}))),
            [401, 200, 200, 200, 200],
        ),
        (
            "DELETE",
            format!("/api/v1/devices/{}", Uuid::nil()),
            Box::new(|_| None),
            [401, 404, 404, 404, 404],
        ),
        (
            "GET",
            "/api/v1/contacts".into(),
            Box::new(|_| None),
            [401, 200, 200, 200, 200],
        ),
        (
            "PATCH",
            format!("/api/v1/contacts/{}", Uuid::nil()),
            Box::new(|_| Some(json!({"nickname": "n"}))),
            [401, 404, 404, 404, 404],
        ),
        (
            "DELETE",
            format!("/api/v1/contacts/{}", Uuid::nil()),
            Box::new(|_| None),
            [401, 404, 404, 404, 404],
        ),
        (
            "POST",
            "/api/v1/rooms/direct".into(),
            Box::new(|_| Some(json!({"user_id": Uuid::nil()}))),
            [401, 404, 404, 404, 404],
        ),
        (
            "POST",
            "/api/v1/contacts".into(),
            Box::new(|_| Some(json!({"user_id": Uuid::nil()}))),
            [401, 404, 404, 404, 404],
        ),
        (
            "GET",
            "/api/v1/users/search?q=az".into(),
            Box::new(|_| None),
            [401, 200, 200, 200, 200],
        ),
    ];
    let mut failures = Vec::new();
    for (method, path, body, expected) in &rows {
        for (i, w) in who_all.iter().enumerate() {
            let a = actor(*w);
            let b = a.and_then(body).or_else(|| body(owner));
            let r = app.req(method, path, a.map(Member::token), b).await;
            if r.status != expected[i] {
                failures.push(format!(
                    "{method} {path} as {w:?}: {} (expected {}) {}",
                    r.status, expected[i], r.body
                ));
            }
            if r.status >= 400 {
                assert_eq!(
                    r.headers["content-type"], "application/problem+json",
                    "{method} {path}"
                );
            }
        }
    }
    // The mutating rows the matrix cannot repeat: delete a message, a member, the room.
    let mp = format!("{rp}/messages/{msg}");
    for (w, exp) in [(Who::Anon, 401), (Who::Outsider, 404), (Who::Admin, 404)] {
        let r = app
            .req("DELETE", &mp, actor(w).map(Member::token), None)
            .await;
        if r.status != exp {
            failures.push(format!("DELETE message as {w:?}: {}", r.status));
        }
    }
    assert_eq!(
        app.req("DELETE", &mp, Some(owner.token()), None)
            .await
            .status,
        204
    );
    for (w, exp) in [
        (Who::Anon, 401),
        (Who::Outsider, 404),
        (Who::Admin, 404),
        (Who::Member, 403),
    ] {
        let r = app
            .req("DELETE", &rp, actor(w).map(Member::token), None)
            .await;
        if r.status != exp {
            failures.push(format!("DELETE room as {w:?}: {}", r.status));
        }
        let r = app
            .req(
                "DELETE",
                &format!("{rp}/members/{}", owner.id()),
                actor(w).map(Member::token),
                None,
            )
            .await;
        if r.status != exp {
            failures.push(format!("DELETE owner's membership as {w:?}: {}", r.status));
        }
    }
    for (w, exp) in [(Who::Anon, 401), (Who::Outsider, 404), (Who::Admin, 404)] {
        let (st, _, _) = app
            .req_bytes(
                "POST",
                &format!("{rp}/attachments"),
                actor(w).map(Member::token),
                Some("application/octet-stream"),
                vec![1],
            )
            .await;
        if st != exp {
            failures.push(format!("POST attachment as {w:?}: {st}"));
        }
    }
    assert_eq!(
        app.req("DELETE", &rp, Some(owner.token()), None)
            .await
            .status,
        204
    );
    assert!(
        failures.is_empty(),
        "authorization failures:\n{}",
        failures.join("\n")
    );

    // Every route of this issue is in the OpenAPI document.
    let doc = app.get("/openapi.json", None).await.body;
    for (path, method) in [
        ("/api/v1/devices", "get"),
        ("/api/v1/devices/{device_id}", "put"),
        ("/api/v1/devices/{device_id}", "delete"),
        ("/api/v1/users/{id}/devices", "get"),
        ("/api/v1/keys/query", "post"),
        ("/api/v1/rooms", "post"),
        ("/api/v1/rooms", "get"),
        ("/api/v1/rooms/direct", "post"),
        ("/api/v1/rooms/{id}", "get"),
        ("/api/v1/rooms/{id}", "patch"),
        ("/api/v1/rooms/{id}", "delete"),
        ("/api/v1/rooms/{id}/members", "post"),
        ("/api/v1/rooms/{id}/members/{user_id}", "delete"),
        ("/api/v1/rooms/{id}/messages", "post"),
        ("/api/v1/rooms/{id}/messages", "get"),
        ("/api/v1/rooms/{id}/messages/{msg_id}", "delete"),
        ("/api/v1/rooms/{id}/receipts", "post"),
        ("/api/v1/unread", "get"),
        ("/api/v1/rooms/{id}/attachments", "post"),
        ("/api/v1/attachments/{id}", "get"),
        ("/api/v1/contacts", "get"),
        ("/api/v1/contacts", "post"),
        ("/api/v1/contacts/{id}", "patch"),
        ("/api/v1/contacts/{id}", "delete"),
        ("/api/v1/users/search", "get"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing from /openapi.json"
        );
    }
}

async fn bad_input_is_a_problem_never_a_500(backend: Backend) {
    let app = spawn_app(backend).await;
    let m = app.members("bad", 2).await;
    let (alice, bob) = (&m[0], &m[1]);
    let room = app.room(&alice.account, "r", &[bob.id()]).await;
    let t = Some(alice.token());
    let rp = format!("/api/v1/rooms/{room}");
    let cases: Vec<(&str, String, Option<Value>, u16)> = vec![
        (
            "POST",
            "/api/v1/rooms".into(),
            Some(json!({"name": ""})),
            400,
        ),
        (
            "POST",
            "/api/v1/rooms".into(),
            Some(json!({"name": "x".repeat(129)})),
            400,
        ),
        (
            "POST",
            "/api/v1/rooms".into(),
            Some(json!({"name": "a\u{202e}b"})),
            400,
        ),
        (
            "POST",
            "/api/v1/rooms".into(),
            Some(json!({"name": "x", "extra": 1})),
            400,
        ),
        (
            "POST",
            "/api/v1/rooms".into(),
            Some(json!({"name": "x", "member_ids": ["nope"]})),
            400,
        ),
        (
            "POST",
            "/api/v1/rooms".into(),
            Some(json!({"name": "x", "member_ids": [Uuid::new_v4()]})),
            400,
        ),
        (
            "POST",
            "/api/v1/rooms".into(),
            Some(json!({"name": 5})),
            400,
        ),
        ("POST", "/api/v1/rooms".into(), Some(json!([1, 2])), 400),
        ("GET", "/api/v1/rooms/not-a-uuid".into(), None, 400),
        ("GET", "/api/v1/rooms?limit=-1".into(), None, 400),
        ("GET", "/api/v1/rooms?cursor=%00".into(), None, 400),
        ("GET", format!("{rp}/messages?after_seq=-1"), None, 400),
        (
            "GET",
            format!("{rp}/messages?after_seq=99999999999999999999999"),
            None,
            400,
        ),
        (
            "GET",
            format!("{rp}/messages?after_seq=18446744073709551615"),
            None,
            400,
        ),
        ("GET", format!("{rp}/messages?limit=abc"), None, 400),
        (
            "POST",
            format!("{rp}/messages"),
            Some(json!({"client_id": Uuid::new_v4(), "envelope": "!!"})),
            400,
        ),
        (
            "POST",
            format!("{rp}/messages"),
            Some(json!({"client_id": Uuid::new_v4(), "envelope": "AAAA"})),
            400,
        ),
        (
            "POST",
            format!("{rp}/messages"),
            Some(json!({"client_id": Uuid::new_v4(), "envelope": ""})),
            400,
        ),
        (
            "POST",
            format!("{rp}/messages"),
            Some(json!({"client_id": "x", "envelope": "AAAA"})),
            400,
        ),
        (
            "POST",
            format!("{rp}/messages"),
            Some(json!({"envelope": "AAAA"})),
            400,
        ),
        (
            "POST",
            format!("{rp}/receipts"),
            Some(json!({"kind": "read", "seq": -1})),
            400,
        ),
        (
            "POST",
            format!("{rp}/receipts"),
            Some(json!({"kind": "read", "seq": u64::MAX})),
            400,
        ),
        (
            "POST",
            format!("{rp}/receipts"),
            Some(json!({"kind": "read"})),
            400,
        ),
        ("PATCH", rp.clone(), Some(json!({"name": "\u{0}"})), 400),
        ("PATCH", rp.clone(), Some(json!({})), 400),
        (
            "POST",
            format!("{rp}/members"),
            Some(json!({"user_id": 1})),
            400,
        ),
        ("DELETE", format!("{rp}/members/zzz"), None, 400),
        ("DELETE", format!("{rp}/messages/zzz"), None, 400),
        (
            "PUT",
            format!("/api/v1/devices/{}", Uuid::new_v4()),
            Some(json!({"bundle": {}})),
            400,
        ),
        (
            "PUT",
            format!("/api/v1/devices/{}", Uuid::new_v4()),
            Some(json!({"bundle": {"version": 9}})),
            400,
        ),
        ("PUT", "/api/v1/devices/x".into(), Some(json!({})), 400),
        (
            "POST",
            "/api/v1/keys/query".into(),
            Some(json!({"user_ids": "x"})),
            400,
        ),
        (
            "POST",
            "/api/v1/keys/query".into(),
            Some(json!({"user_ids": ["x"]})),
            400,
        ),
        (
            "POST",
            "/api/v1/contacts".into(),
            Some(json!({"user_id": bob.id(), "nickname": "x".repeat(65)})),
            400,
        ),
        (
            "POST",
            "/api/v1/contacts".into(),
            Some(json!({"user_id": "../../etc"})),
            400,
        ),
        (
            "GET",
            "/api/v1/contacts?limit=1000000000000".into(),
            None,
            400,
        ),
        ("POST", "/api/v1/rooms/direct".into(), Some(json!({})), 400),
        (
            "GET",
            "/api/v1/attachments/..%2F..%2Fjwt.key".into(),
            None,
            400,
        ),
        ("GET", "/api/v1/users/search?q=%00".into(), None, 400),
        ("GET", "/api/v1/users/search?q=".into(), None, 400),
    ];
    for (method, path, body, expected) in cases {
        let r = app.req(method, &path, t, body.clone()).await;
        assert_eq!(r.status, expected, "{method} {path} {body:?}: {r:?}");
        assert_eq!(
            r.headers["content-type"], "application/problem+json",
            "{method} {path}"
        );
        assert!(r.body["code"].is_string(), "{r:?}");
    }
    // Not JSON; wrong media type; invalid UTF-8.
    let (st, h, _) = app
        .req_bytes(
            "POST",
            &format!("{rp}/messages"),
            t,
            Some("application/json"),
            b"{".to_vec(),
        )
        .await;
    assert_eq!(
        (st, h["content-type"].to_str().unwrap()),
        (400, "application/problem+json")
    );
    let (st, _, _) = app
        .req_bytes(
            "POST",
            &format!("{rp}/messages"),
            t,
            Some("text/plain"),
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(st, 415);
    let (st, _, _) = app
        .req_bytes(
            "POST",
            "/api/v1/rooms",
            t,
            Some("application/json"),
            b"{\"name\": \"\xff\"}".to_vec(),
        )
        .await;
    assert_eq!(st, 400);
    // A body over the JSON limit.
    let huge = "A".repeat(crate_json_limit(&app) + 10);
    let (st, _, _) = app
        .req_bytes(
            "POST",
            &format!("{rp}/messages"),
            t,
            Some("application/json"),
            format!(
                "{{\"client_id\":\"{}\",\"envelope\":\"{huge}\"}}",
                Uuid::new_v4()
            )
            .into_bytes(),
        )
        .await;
    assert_eq!(st, 413);
    // Nothing was stored by any of it.
    assert_eq!(app.count("SELECT COUNT(*) FROM messages", &[]).await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM rooms", &[]).await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM contacts", &[]).await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM devices", &[]).await, 2);
}

fn crate_json_limit(app: &TestApp) -> usize {
    sotto_relay::app::json_body_limit(&app.state.config)
}

async fn concurrent_membership_changes_stay_consistent(backend: Backend) {
    let app = std::sync::Arc::new(spawn_app(backend).await);
    let u = app.users("leave", 8).await;
    let others: Vec<Uuid> = u[1..].iter().map(|a| a.id).collect();
    // Everyone leaves at once, the owner included: the room ends deleted, no 500.
    let room = app.room(&u[0], "r", &others).await;
    let mut tasks = Vec::new();
    for a in u.clone() {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            app.req(
                "DELETE",
                &format!("/api/v1/rooms/{room}/members/{}", a.id),
                Some(&a.access),
                None,
            )
            .await
            .status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 204);
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM rooms", &[]).await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM room_members", &[]).await, 0);

    // The owner and half the members leave at once: the owner is a remaining member.
    let room = app.room(&u[0], "r2", &others).await;
    let mut tasks = Vec::new();
    for a in u[..4].iter().cloned() {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            app.req(
                "DELETE",
                &format!("/api/v1/rooms/{room}/members/{}", a.id),
                Some(&a.access),
                None,
            )
            .await
            .status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 204);
    }
    let r = app
        .get(&format!("/api/v1/rooms/{room}"), Some(&u[7].access))
        .await;
    let members: Vec<String> = r.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(members.len(), 4);
    assert!(
        members.contains(&r.body["owner_id"].as_str().unwrap().to_string()),
        "{r:?}"
    );
    assert_eq!(
        r.body["owner_id"],
        u[4].id.to_string(),
        "the longest-standing member"
    );

    // Concurrent adds of the same user: one 201, the rest 409.
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (app, owner, target) = (app.clone(), u[4].clone(), u[0].id);
        tasks.push(tokio::spawn(async move {
            app.post(
                &format!("/api/v1/rooms/{room}/members"),
                Some(&owner.access),
                json!({"user_id": target}),
            )
            .await
            .status
        }));
    }
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.unwrap());
    }
    codes.sort_unstable();
    assert_eq!(codes, vec![201, 409, 409, 409, 409, 409]);
}

async fn revoked_devices_stay_verifiable_but_cannot_post(backend: Backend) {
    let app = spawn_app(backend).await;
    let m = app.members("rev", 2).await;
    let (alice, bob) = (&m[0], &m[1]);
    let room = app.room(&alice.account, "r", &[bob.id()]).await;
    let to = [alice.verified(), bob.verified()];
    let (cid, env) = alice.seal(room, b"before revocation", &to);
    assert_eq!(app.send(alice, room, cid, &env).await.status, 201);
    let r = app
        .req(
            "DELETE",
            &format!("/api/v1/devices/{}", alice.device_id),
            Some(alice.token()),
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    // The revoked device can no longer post...
    let (cid, env) = alice.seal(room, b"after revocation", &to);
    app.send(alice, room, cid, &env)
        .await
        .problem(400, "envelope_mismatch");
    // ...is not served for encryption...
    let r = app
        .post(
            "/api/v1/keys/query",
            Some(bob.token()),
            json!({"user_ids": [alice.id()]}),
        )
        .await;
    assert!(
        r.body["devices"][alice.id().to_string()]
            .as_array()
            .unwrap()
            .is_empty(),
        "{r:?}"
    );
    // ...but Bob can still fetch its bundle to verify what it sent before.
    let r = app
        .post(
            "/api/v1/keys/query",
            Some(bob.token()),
            json!({"user_ids": [alice.id()], "include_revoked": true}),
        )
        .await;
    let d = &r.body["devices"][alice.id().to_string()][0];
    assert!(d["revoked_at"].is_string(), "{r:?}");
    let device: sotto_core::api::Device = serde_json::from_value(d.clone()).unwrap();
    let verified = device
        .bundle
        .verify_for(&alice.identity.public_key())
        .unwrap();
    let msgs = app
        .get(&format!("/api/v1/rooms/{room}/messages"), Some(bob.token()))
        .await;
    let bytes =
        sotto_core::encoding::b64_decode(msgs.body["items"][0]["envelope"].as_str().unwrap())
            .unwrap();
    let opened = sotto_core::envelope::open(
        &bytes,
        bob.device_id,
        &bob.keys,
        &sotto_core::envelope::OpenContext {
            room_id: room,
            sender: &verified,
        },
    )
    .unwrap();
    assert_eq!(&opened.plaintext[..], b"before revocation");
    let r = app
        .get(
            &format!("/api/v1/users/{}/devices?include_revoked=true", alice.id()),
            Some(bob.token()),
        )
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    app.get(
        &format!("/api/v1/users/{}/devices?include_revoked=maybe", alice.id()),
        Some(bob.token()),
    )
    .await
    .problem(400, "validation_failed");

    // A message deletion is announced to the room.
    let mut events = subscribe(&app, bob.id());
    let id = msgs.body["items"][0]["id"].as_str().unwrap().to_string();
    let r = app
        .req(
            "DELETE",
            &format!("/api/v1/rooms/{room}/messages/{id}"),
            Some(alice.token()),
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    let ev = next_event(&mut events).await;
    assert!(
        matches!(*ev, ServerFrame::MessageDeleted { seq: 1, .. }),
        "{ev:?}"
    );
    let r = app
        .get(&format!("/api/v1/rooms/{room}/messages"), Some(bob.token()))
        .await;
    assert_eq!(r.body["items"][0]["deleted"], true);
    assert_ne!(
        r.body["items"][0]["updated_at"],
        r.body["items"][0]["created_at"]
    );
}

async fn unverified_users_cannot_be_added(backend: Backend) {
    let app = spawn_app(backend).await;
    let u = app.users("ver", 1).await;
    let alice = &u[0];
    let r = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"username": "pending", "email": "pending@example.org", "password": sotto_tests::PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let pending: Uuid =
        sqlx::query_scalar::<_, String>("SELECT id FROM users WHERE username = 'pending'")
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap()
            .parse()
            .unwrap();
    // Unverified accounts are answered exactly like unknown ones.
    for target in [pending, Uuid::new_v4()] {
        app.post(
            "/api/v1/rooms/direct",
            Some(&alice.access),
            json!({"user_id": target}),
        )
        .await
        .problem(404, "not_found");
        app.post(
            "/api/v1/contacts",
            Some(&alice.access),
            json!({"user_id": target}),
        )
        .await
        .problem(404, "not_found");
        app.post(
            "/api/v1/rooms",
            Some(&alice.access),
            json!({"name": "x", "member_ids": [target]}),
        )
        .await
        .problem(400, "validation_failed");
    }
    let room = app.room(alice, "r", &[]).await;
    app.post(
        &format!("/api/v1/rooms/{room}/members"),
        Some(&alice.access),
        json!({"user_id": pending}),
    )
    .await
    .problem(404, "not_found");
}

async fn upload_limits_quota_and_stalls(backend: Backend) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let app = sotto_tests::spawn_app_with(
        backend,
        sotto_tests::AppOptions {
            attachment_quota_bytes: 400_000,
            request_timeout: 2,
            ..Default::default()
        },
    )
    .await;
    let u = app.users("upl", 1).await;
    let alice = &u[0];
    let room = app.room(alice, "files", &[]).await;
    let up = format!("/api/v1/rooms/{room}/attachments");
    let oct = Some("application/octet-stream");
    let head = format!(
        "POST {up} HTTP/1.1\r\nAuthorization: Bearer {}\r\nContent-Type: application/octet-stream",
        alice.access
    );
    // Sends 32 KiB chunks, pausing after each as given; returns the status.
    let upload = |pauses_ms: Vec<u64>| {
        let head = head.clone();
        let addr = app.addr;
        async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            let h = format!(
                "{head}\r\nHost: {addr}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            );
            s.write_all(h.as_bytes()).await.unwrap();
            for pause in pauses_ms {
                let framed = [b"8000\r\n".to_vec(), vec![7u8; 0x8000], b"\r\n".to_vec()].concat();
                if s.write_all(&framed).await.is_err() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
            }
            let _ = s.write_all(b"0\r\n\r\n").await;
            let mut r = tokio::io::BufReader::new(s);
            let mut line = String::new();
            r.read_line(&mut line).await.unwrap();
            line.split_whitespace()
                .nth(1)
                .unwrap()
                .parse::<u16>()
                .unwrap()
        }
    };
    // A slow but steady upload outlives the 2 s request timeout...
    assert_eq!(
        upload(vec![700, 700, 700, 700]).await,
        201,
        "uploads are exempt from the request timeout"
    );
    // ...one that stalls (after spilling past the inline size) is cut off with
    // 408, and leaves no temporary file behind.
    assert_eq!(upload(vec![0, 0, 0, 4500]).await, 408);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let leftovers: Vec<String> = std::fs::read_dir(app.data_dir.path().join("attachments"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("upload-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // At most four uploads per user at once: hold four open, the fifth is 429.
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        let h = format!(
            "{head}\r\nHost: {}\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n",
            app.addr
        );
        s.write_all(h.as_bytes()).await.unwrap();
        held.push(s);
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (st, h, _) = app
        .req_bytes("POST", &up, Some(&alice.access), oct, vec![1; 10])
        .await;
    assert_eq!(st, 429);
    assert!(h.get("retry-after").is_some());
    drop(held);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    // The quota: 131 072 bytes stored so far, 400 000 allowed.
    let (st, _, _) = app
        .req_bytes("POST", &up, Some(&alice.access), oct, vec![1; 200_000])
        .await;
    assert_eq!(st, 201);
    let (st, _, body) = app
        .req_bytes("POST", &up, Some(&alice.access), oct, vec![1; 200_000])
        .await;
    assert_eq!(st, 413);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["code"],
        "quota_exceeded"
    );
    assert_eq!(
        app.raw_chunked(&head, 4, 65536).await,
        413,
        "quota while streaming"
    );
    // Other requests keep their timeout and work.
    assert_eq!(app.get("/health", None).await.status, 200);
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
    sqlx::query("UPDATE rooms SET member_epoch = member_epoch + 1 WHERE id = $1")
        .bind(room.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    let post = {
        let (app, m) = (app.clone(), m.clone());
        tokio::spawn(async move {
            let (cid, env) = m[1].seal(room, b"too late", &[m[0].verified()]);
            app.send(&m[1], room, cid, &env).await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(!post.is_finished(), "the post waits for the row lock");
    sqlx::query("DELETE FROM room_members WHERE room_id = $1 AND user_id = $2")
        .bind(room.to_string())
        .bind(m[1].id().to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
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
        let r = app
            .get(
                &format!("/api/v1/rooms/{room}/messages?after_seq={after}&limit=200"),
                Some(alice.token()),
            )
            .await;
        let items = r.body["items"].as_array().unwrap();
        let bytes: usize = items
            .iter()
            .map(|i| {
                sotto_core::encoding::b64_decode(i["envelope"].as_str().unwrap())
                    .unwrap()
                    .len()
            })
            .sum();
        assert!(
            bytes <= sotto_relay::messages::PAGE_BYTES as usize,
            "{bytes}"
        );
        pages.push(items.len());
        match r.body["next_cursor"].as_str() {
            Some(c) => after = c.parse().unwrap(),
            None => break,
        }
    }
    assert!(pages.len() >= 2, "{pages:?}");
    assert_eq!(pages.iter().sum::<usize>(), n);
}

async fn deleting_a_user_hands_rooms_over(backend: Backend) {
    let app = spawn_app(backend).await;
    let u = app.users("del", 3).await;
    let (alice, bob, carol) = (&u[0], &u[1], &u[2]);
    let shared = app.room(alice, "shared", &[bob.id, carol.id]).await;
    let alone = app.room(alice, "alone", &[]).await;
    let master = app.master().await;
    let r = app
        .req(
            "DELETE",
            &format!("/api/v1/users/{}", alice.id),
            Some(&master.access),
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    let r = app
        .get(&format!("/api/v1/rooms/{shared}"), Some(&bob.access))
        .await;
    assert_eq!(r.body["owner_id"], bob.id.to_string(), "{r:?}");
    assert_eq!(r.body["members"].as_array().unwrap().len(), 2);
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM rooms WHERE id = $1",
            &[&alone.to_string()]
        )
        .await,
        0
    );
    // Bob, the new owner, can manage the room.
    let r = app
        .req(
            "PATCH",
            &format!("/api/v1/rooms/{shared}"),
            Some(&bob.access),
            Some(json!({"name": "ours"})),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
}
