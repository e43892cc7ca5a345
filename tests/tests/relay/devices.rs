//! Devices and public keys: registration, identity-key pinning and replacement, revocation, who may see whose keys.

use serde_json::{Value, json};
use sotto_core::api::ServerFrame;
use sotto_core::keys::{DeviceBundle, DeviceKeyOptions, DeviceKeys, IdentityKeyPair};
use sotto_tests::{Backend, Member, PASSWORD, b64, both_backends, spawn_app};
use uuid::Uuid;

use super::support::*;

both_backends!(
    devices_and_identity_keys,
    key_visibility,
    revoked_devices_stay_verifiable_but_cannot_post,
);

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
    // Replacing the identity needs the password.
    r.problem(400, "current_password_required");
    put_device(
        &app,
        &alice.access,
        json!({"bundle": bundle3, "replace_identity": true, "current_password": "wrong"}),
    )
    .await
    .problem(403, "invalid_credentials");
    let r = put_device(
        &app,
        &alice.access,
        json!({"bundle": bundle3, "replace_identity": true, "current_password": PASSWORD}),
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

    // Revoke (with the password): 204, then 404; Bob cannot revoke Alice's
    // device. Announced. The session that uploaded the device ends with it, so
    // Alice revokes from a session of her own that did not.
    drain(&mut events);
    let alice = {
        let t: sotto_core::api::auth::TokenResponse =
            app.login(&alice.username, PASSWORD).await.typed(200);
        sotto_tests::Account {
            access: t.access_token,
            refresh: t.refresh_token,
            ..alice.clone()
        }
    };
    let del = |who: &sotto_tests::Account| {
        let who = who.access.clone();
        let app = &app;
        async move {
            app.req(
                "DELETE",
                &format!("/api/v1/devices/{dev3}"),
                Some(&who),
                Some(json!({"current_password": PASSWORD})),
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
        json!({"bundle": bundle3, "replace_identity": true, "current_password": PASSWORD}),
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

async fn revoked_devices_stay_verifiable_but_cannot_post(backend: Backend) {
    let app = spawn_app(backend).await;
    let m = app.members("rev", 2).await;
    let (alice, bob) = (&m[0], &m[1]);
    let room = app.room(&alice.account, "r", &[bob.id()]).await;
    let to = [alice.verified(), bob.verified()];
    let (cid, env) = alice.seal(room, b"before revocation", &to);
    assert_eq!(app.send(alice, room, cid, &env).await.status, 201);
    // Revoking needs the password; Alice does it from another session (another
    // device of hers, say).
    let other: sotto_core::api::auth::TokenResponse = app
        .login(&alice.account.username, PASSWORD)
        .await
        .typed(200);
    let revoke = |token: String, body: Option<Value>| {
        let path = format!("/api/v1/devices/{}", alice.device_id);
        let app = &app;
        async move { app.req("DELETE", &path, Some(&token), body).await }
    };
    revoke(other.access_token.clone(), Some(json!({})))
        .await
        .problem(400, "validation_failed");
    revoke(
        other.access_token.clone(),
        Some(json!({"current_password": "not the password"})),
    )
    .await
    .problem(403, "invalid_credentials");
    let r = revoke(
        other.access_token.clone(),
        Some(json!({"current_password": PASSWORD})),
    )
    .await;
    assert_eq!(r.status, 204, "{r:?}");
    // The session that registered the device is over...
    app.get("/api/v1/auth/me", Some(alice.token()))
        .await
        .problem(401, "invalid_token");
    // ...and the revoked device can no longer post, whatever the session.
    let (cid, env) = alice.seal(room, b"after revocation", &to);
    let r = app
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            Some(&other.access_token),
            json!({"client_id": cid, "envelope": b64(&env)}),
        )
        .await;
    r.problem(400, "envelope_mismatch");
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
            Some(&other.access_token),
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
