//! Web Push against a real push service on loopback (`sotto_tests::push`): what
//! the relay sends is checked as a push service and a browser would, the VAPID
//! token verified (ES256, `aud`, `exp`, `sub`) and the body decrypted with the
//! subscription's private key (RFC 8291), and it holds only which room has news
//! up to which seq.

use std::time::Duration;

use base64ct::{Base64UrlUnpadded, Encoding};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use sotto_core::api::push::{PushTestResponse, VapidPublicKey};
use sotto_tests::push::{PushService, Received, UserAgent};
use sotto_tests::{AppOptions, Backend, Member, TestApp, both_backends, spawn_app_with};
use uuid::Uuid;

both_backends!(
    offline_members_get_coalesced_pushes_saying_only_room_and_seq,
    subscriptions_are_validated_and_tied_to_an_own_device,
);

async fn subscribe(app: &TestApp, who: &Member, ua: &UserAgent, endpoint: &str) -> u16 {
    app.post(
        "/api/v1/push/subscriptions",
        Some(who.token()),
        json!({"device_id": who.device_id, "subscription": ua.subscription(endpoint)}),
    )
    .await
    .status
}

async fn push_test(app: &TestApp, who: &Member) -> PushTestResponse {
    app.post("/api/v1/push/test", Some(who.token()), json!({}))
        .await
        .typed(200)
}

/// Checks the RFC 8292 `Authorization: vapid t=<JWT>, k=<key>` of a push and
/// the RFC 8030 headers; returns the JWT's claims.
fn check_request(r: &Received, vapid_key: &str, origin: &str) -> Value {
    assert_eq!(r.header("content-encoding"), Some("aes128gcm"));
    assert_eq!(r.header("ttl"), Some("86400"));
    let auth = r.header("authorization").expect("no Authorization header");
    let rest = auth.strip_prefix("vapid ").expect("not the vapid scheme");
    let mut t = None;
    let mut k = None;
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("t=") {
            t = Some(v);
        } else if let Some(v) = part.strip_prefix("k=") {
            k = Some(v);
        }
    }
    let (t, k) = (t.expect("no t="), k.expect("no k="));
    assert_eq!(k, vapid_key, "k must be the key served at vapid-public-key");
    let point = Base64UrlUnpadded::decode_vec(k).unwrap();
    assert_eq!(
        (point.len(), point[0]),
        (65, 4),
        "k must be an uncompressed P-256 point"
    );
    let key = DecodingKey::from_ec_components(
        &Base64UrlUnpadded::encode_string(&point[1..33]),
        &Base64UrlUnpadded::encode_string(&point[33..65]),
    )
    .unwrap();
    let mut v = Validation::new(Algorithm::ES256);
    v.set_audience(&[origin]);
    v.set_required_spec_claims(&["exp", "aud", "sub"]);
    let data = jsonwebtoken::decode::<Value>(t, &key, &v).expect("the VAPID token does not verify");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let exp = data.claims["exp"].as_u64().unwrap();
    assert!(
        exp > now && exp <= now + 24 * 3600,
        "exp must be within 24 h (RFC 8292)"
    );
    data.claims
}

async fn offline_members_get_coalesced_pushes_saying_only_room_and_seq(backend: Backend) {
    let app = spawn_app_with(
        backend,
        AppOptions {
            push_coalesce_ms: 300,
            ..AppOptions::default()
        },
    )
    .await;
    let service = PushService::start().await;
    let m = app.members("push", 2).await;
    let (alice, bob) = (&m[0], &m[1]);
    let room = app.room(&alice.account, "pushed", &[bob.id()]).await;
    let vapid: VapidPublicKey = app
        .get("/api/v1/push/vapid-public-key", None)
        .await
        .typed(200);

    let bob_ua = UserAgent::new();
    let gone_ua = UserAgent::new();
    let alice_ua = UserAgent::new();
    assert_eq!(
        subscribe(&app, bob, &bob_ua, &service.endpoint("bob")).await,
        201
    );
    assert_eq!(
        subscribe(&app, bob, &gone_ua, &service.endpoint("gone")).await,
        201
    );
    assert_eq!(
        subscribe(&app, alice, &alice_ua, &service.endpoint("alice")).await,
        201
    );
    service.answer("gone", 410);

    // A burst of 20 messages while Bob has no socket.
    let to = [alice.verified(), bob.verified()];
    let mut secrets = Vec::new();
    let burst = std::time::Instant::now();
    for i in 0..20 {
        let text = format!("push secret {i} {}", Uuid::new_v4());
        let (cid, env) = alice.seal(room, text.as_bytes(), &to);
        app.post_message(alice, room, cid, &env, 201).await;
        secrets.push((text, env));
    }
    let burst = burst.elapsed();
    // Bob's pushes arrive, coalesced, until one says seq 20.
    let mut n = 1;
    let pushes = loop {
        let got = service.wait_for("bob", n).await;
        let last = bob_ua.decrypt(&got[got.len() - 1].body);
        let last: Value = serde_json::from_slice(&last).unwrap();
        if last["seq"] == 20 {
            break got;
        }
        n = got.len() + 1;
    };
    // Coalesced: at most one push per 300 ms window of the burst (plus the
    // windows it started and ended in), and far fewer than the messages. The
    // bound follows the burst's own duration, so a slow machine (a loaded
    // PostgreSQL) does not fail it.
    let windows = burst.as_millis() / 300 + 2;
    assert!(
        pushes.len() as u128 <= windows.min(19),
        "20 messages in a {burst:?} burst made {} pushes (at most {} expected)",
        pushes.len(),
        windows.min(19)
    );
    let mut seqs = Vec::new();
    let topic = pushes[0].header("topic").unwrap().to_owned();
    for p in &pushes {
        let claims = check_request(p, &vapid.public_key, &service.origin());
        assert_eq!(claims["sub"], app.base.as_str());
        // One topic per (subscription, room), opaque: not the room id.
        assert_eq!(p.header("topic"), Some(topic.as_str()));
        assert_eq!(topic.len(), 32);
        assert!(!topic.contains(&room.simple().to_string()[..8]));
        let payload = bob_ua.decrypt(&p.body);
        for (text, env) in &secrets {
            assert!(memchr::memmem::find(&payload, text.as_bytes()).is_none());
            assert!(memchr::memmem::find(&p.body, text.as_bytes()).is_none());
            assert!(memchr::memmem::find(&payload, &env[..32]).is_none());
        }
        let payload: Value = serde_json::from_slice(&payload).unwrap();
        // Exactly the room and the seq: no sender, no content.
        let keys: Vec<&String> = payload.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 3, "{payload}");
        assert_eq!(payload["type"], "news");
        assert_eq!(payload["room_id"], room.to_string());
        seqs.push(payload["seq"].as_u64().unwrap());
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");

    // The endpoint that answered 410 got a push and is gone now; the sender is
    // not pushed her own messages.
    assert!(!service.received_by("gone").is_empty());
    assert!(service.received_by("alice").is_empty());
    assert_eq!(
        push_test(&app, bob).await,
        PushTestResponse { accepted: true }
    );
    let tests = service.wait_for("bob", pushes.len() + 1).await;
    let test_push = tests.last().unwrap();
    check_request(test_push, &vapid.public_key, &service.origin());
    assert_eq!(test_push.header("topic"), None);
    let payload: Value = serde_json::from_slice(&bob_ua.decrypt(&test_push.body)).unwrap();
    assert_eq!(payload, json!({"type": "test"}));

    // With a live socket Bob is not pushed.
    let before = service.received_by("bob").len();
    let mut ws = app.ws(bob.token()).await;
    let (cid, env) = alice.seal(room, b"while online", &to);
    app.post_message(alice, room, cid, &env, 201).await;
    loop {
        if let sotto_core::api::ServerFrame::Message { seq, .. } = ws.next().await {
            assert_eq!(seq, 21);
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(service.received_by("bob").len(), before);

    // A push service failing otherwise: counted, the subscription kept.
    service.answer("alice", 500);
    let failed = PushTestResponse { accepted: false };
    assert_eq!(push_test(&app, alice).await, failed);
    assert_eq!(push_test(&app, alice).await, failed);

    // Unsubscribing removes it; others' endpoints cannot be removed.
    let r = app
        .req(
            "DELETE",
            "/api/v1/push/subscriptions",
            Some(alice.token()),
            Some(json!({"endpoint": service.endpoint("bob")})),
        )
        .await;
    assert_eq!(r.status, 204);
    assert!(push_test(&app, bob).await.accepted);
    let r = app
        .req(
            "DELETE",
            "/api/v1/push/subscriptions",
            Some(bob.token()),
            Some(json!({"endpoint": service.endpoint("bob")})),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        push_test(&app, bob).await,
        PushTestResponse { accepted: false }
    );
    let text = app.metrics_text().await;
    for name in [
        "sotto_push_sent_total",
        "sotto_push_removed_total",
        "sotto_push_failed_total",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics");
    }
}

async fn subscriptions_are_validated_and_tied_to_an_own_device(backend: Backend) {
    let app = spawn_app_with(
        backend,
        AppOptions {
            push_allow_http: false,
            ..AppOptions::default()
        },
    )
    .await;
    let m = app.members("pushv", 2).await;
    let (alice, bob) = (&m[0], &m[1]);
    let ua = UserAgent::new();
    let post = |token: &str, body: Value| {
        let token = token.to_owned();
        let app = &app;
        async move {
            app.post("/api/v1/push/subscriptions", Some(&token), body)
                .await
        }
    };
    let good = "https://push.example/abc";
    let bad_subs = [
        // plain http is refused unless --push-allow-http
        ua.subscription("http://push.example/abc"),
        ua.subscription("not a url"),
        ua.subscription("https://user:pw@push.example/abc"),
        ua.subscription(&format!("https://push.example/{}", "a".repeat(2100))),
        json!({"endpoint": good, "keys": {"p256dh": "AAAA", "auth": ua.auth()}}),
        json!({"endpoint": good, "keys": {"p256dh": ua.p256dh(), "auth": "AAAA"}}),
        json!({"endpoint": good, "keys": {"p256dh": "!!!", "auth": ua.auth()}}),
        // a point not on the curve
        json!({"endpoint": good, "keys": {"p256dh": Base64UrlUnpadded::encode_string(&[4u8; 65]), "auth": ua.auth()}}),
    ];
    for sub in bad_subs {
        let r = post(
            alice.token(),
            json!({"device_id": alice.device_id, "subscription": sub}),
        )
        .await;
        r.problem(400, "invalid_subscription");
    }
    // Not her device.
    post(
        alice.token(),
        json!({"device_id": bob.device_id, "subscription": ua.subscription(good)}),
    )
    .await
    .problem(400, "invalid_subscription");
    // Unknown fields and missing keys are validation errors; no token is 401.
    post(
        alice.token(),
        json!({"device_id": alice.device_id, "subscription": ua.subscription(good), "extra": 1}),
    )
    .await
    .problem(400, "unknown_field");
    assert_eq!(
        app.post(
            "/api/v1/push/subscriptions",
            None,
            json!({"device_id": alice.device_id, "subscription": ua.subscription(good)})
        )
        .await
        .status,
        401
    );
    // A good one is stored; re-posting it replaces it (a browser subscribing
    // again), but another account cannot take the endpoint over.
    let r = post(
        alice.token(),
        json!({"device_id": alice.device_id, "subscription": ua.subscription(good)}),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let r = post(
        alice.token(),
        json!({"device_id": alice.device_id, "subscription": ua.subscription(good)}),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let r = post(
        bob.token(),
        json!({"device_id": bob.device_id, "subscription": ua.subscription(good)}),
    )
    .await;
    assert_eq!(r.status, 409, "{:?}", r.body);
    assert_eq!(r.body["code"], "conflict");
    let count = |who: uuid::Uuid| {
        let app = &app;
        async move {
            app.count(
                "SELECT COUNT(*) FROM push_subscriptions WHERE user_id = $1",
                &[who],
            )
            .await
        }
    };
    assert_eq!((count(alice.id()).await, count(bob.id()).await), (1, 0));
    // Bob cannot remove it either (his unsubscribe touches only his own).
    let r = app
        .req(
            "DELETE",
            "/api/v1/push/subscriptions",
            Some(bob.token()),
            Some(json!({"endpoint": good})),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(count(alice.id()).await, 1);
}
