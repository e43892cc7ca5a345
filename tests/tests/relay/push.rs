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
use sotto_tests::dns::DnsServer;
use sotto_tests::push::{BlackHole, PushService, Received, UserAgent};
use sotto_tests::{AppOptions, Backend, Member, TestApp, both_backends, metric, spawn_app_with};
use uuid::Uuid;

both_backends!(
    offline_members_get_coalesced_pushes_saying_only_room_and_seq,
    subscriptions_are_validated_and_tied_to_an_own_device,
    push_destinations_inside_the_relays_network_are_refused,
    dead_subscriptions_delay_nobody_else,
    subscription_caps_test_rate_and_the_circuit,
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

    // The endpoint that answered 410 got a push and is gone now (waited for:
    // Bob's two subscriptions are pushed concurrently, and the last push to
    // "bob" may arrive before the one to "gone"); the sender is not pushed her
    // own messages.
    service.wait_for("gone", 1).await;
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

/// Push endpoints that lead into the relay's own network are refused: when
/// subscribed (literal addresses, internal names, names resolving to such
/// addresses, ports other than 443), and where the push connects, so a name
/// that resolved to a public address when subscribed and to 127.0.0.1 at the
/// push (DNS rebinding) gets no connection. The relay's push resolver asks a
/// DNS server of the test's on loopback (`--push-dns-server`).
async fn push_destinations_inside_the_relays_network_are_refused(backend: Backend) {
    use hickory_proto::rr::RecordType;
    use std::net::IpAddr;
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let dns = DnsServer::start(move |name, kind, asked| match (name, kind) {
        ("push.rebinding.example.net", RecordType::A) if asked == 0 => vec![ip("93.184.215.14")],
        ("push.rebinding.example.net", RecordType::A) => vec![ip("127.0.0.1")],
        ("private.example.net", RecordType::A) => vec![ip("10.1.2.3")],
        ("metadata.example.net", RecordType::A) => vec![ip("169.254.169.254")],
        ("cgnat.example.net", RecordType::A) => vec![ip("100.64.0.1")],
        ("mapped.example.net", RecordType::AAAA) => vec![ip("::ffff:127.0.0.1")],
        ("nat64.example.net", RecordType::AAAA) => vec![ip("64:ff9b::a00:1")],
        ("ula.example.net", RecordType::AAAA) => vec![ip("fd00::1")],
        _ => vec![],
    })
    .await;
    let server = dns.addr;
    let app = spawn_app_with(
        backend,
        AppOptions {
            push_allow_http: false,
            push_allow_private: false,
            ..AppOptions::default()
        }
        .with_config(move |c| {
            c.push_dns_server = Some(server);
            c.push_round_deadline_ms = 2000;
        }),
    )
    .await;
    let m = app.members("ssrf", 1).await;
    let alice = &m[0];
    let ua = UserAgent::new();
    for endpoint in [
        "https://127.0.0.1/x",
        "https://127.1.2.3/x",
        "https://0.0.0.0/x",
        "https://10.0.0.1/x",
        "https://172.16.5.4/x",
        "https://192.168.1.1/x",
        "https://169.254.169.254/latest/meta-data",
        "https://100.64.0.1/x",
        "https://224.0.0.1/x",
        "https://[::1]/x",
        "https://[::]/x",
        "https://[fe80::1]/x",
        "https://[fd12:3456::1]/x",
        "https://[ff02::1]/x",
        "https://[::ffff:127.0.0.1]/x",
        "https://[::ffff:10.0.0.1]/x",
        "https://[64:ff9b::7f00:1]/x",
        "https://[2002:7f00:1::1]/x",
        "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/x",
        "https://2130706433/x",
        "https://0x7f.0.0.1/x",
        "https://localhost/x",
        "https://push.localhost/x",
        "https://printer.local/x",
        "https://svc.cluster.internal/x",
        "https://metadata/x",
        "http://push.rebinding.example.net/x",
        "https://push.rebinding.example.net:8443/x",
        "https://private.example.net/x",
        "https://metadata.example.net/x",
        "https://cgnat.example.net/x",
        "https://mapped.example.net/x",
        "https://nat64.example.net/x",
        "https://ula.example.net/x",
        "https://nowhere.example.net/x",
    ] {
        let r = app
            .post(
                "/api/v1/push/subscriptions",
                Some(alice.token()),
                json!({"device_id": alice.device_id, "subscription": ua.subscription(endpoint)}),
            )
            .await;
        assert_eq!(r.status, 400, "{endpoint} was accepted: {r:?}");
        r.problem(400, "invalid_subscription");
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM push_subscriptions", &[])
            .await,
        0
    );

    // DNS rebinding: public when subscribed (the first answer)...
    let rebinding = "https://push.rebinding.example.net/push/x";
    assert_eq!(subscribe(&app, alice, &ua, rebinding).await, 201);
    assert_eq!(dns.asked("push.rebinding.example.net", RecordType::A), 1);
    // ...127.0.0.1 when pushed to (the second): the resolver hands the push
    // client no address, so no connection is made.
    let before = metric(
        &app.metrics_text().await,
        r#"sotto_push_refused_total{reason="address"}"#,
    );
    assert_eq!(
        push_test(&app, alice).await,
        PushTestResponse { accepted: false }
    );
    assert!(dns.asked("push.rebinding.example.net", RecordType::A) >= 2);
    let text = app.metrics_text().await;
    let after = metric(&text, r#"sotto_push_refused_total{reason="address"}"#);
    assert!(
        after >= before + 1.0,
        "no refusal counted: {before} -> {after}"
    );
    assert_eq!(
        metric(&text, "sotto_push_sent_total"),
        0.0,
        "a push went somewhere"
    );
}

/// Dead push endpoints (a listener that never accepts), as many as every cap
/// allows, delay another user's push by at most one round deadline, and after
/// they failed once they wait out a back-off instead of holding rounds up.
async fn dead_subscriptions_delay_nobody_else(backend: Backend) {
    use sotto_core::keys::IdentityKeyPair;
    const DEADLINE_MS: u64 = 1500;
    const COALESCE_MS: u64 = 100;
    let black = BlackHole::start();
    let service = PushService::start().await;
    let app = spawn_app_with(
        backend,
        AppOptions {
            push_coalesce_ms: COALESCE_MS,
            ..AppOptions::default()
        }
        .with_config(|c| {
            c.push_round_deadline_ms = DEADLINE_MS;
            c.push_max_per_device = 4;
            c.push_max_per_user = 8;
            c.push_max_failures = 5;
        }),
    )
    .await;
    let m = app.members("dead", 6).await;
    let (poster, victim, attackers) = (&m[0], &m[1], &m[2..]);
    // Every attacker: two devices, four dead subscriptions each (both caps full).
    let mut dead = 0;
    for a in attackers {
        let second = app
            .register_device(
                a.account.clone(),
                IdentityKeyPair::from_seed(&a.identity.to_seed()),
                None,
                false,
            )
            .await;
        for device in [a.device_id, second.device_id] {
            for _ in 0..4 {
                let r = app
                    .post(
                        "/api/v1/push/subscriptions",
                        Some(a.token()),
                        json!({"device_id": device, "subscription":
                            UserAgent::new().subscription(&format!("http://{}/dead/{dead}", black.addr))}),
                    )
                    .await;
                assert_eq!(r.status, 201, "{r:?}");
                dead += 1;
            }
        }
    }
    assert_eq!(dead, 32);
    let ids = |ms: &[Member]| ms.iter().map(Member::id).collect::<Vec<_>>();
    let noisy = app.room(&poster.account, "noisy", &ids(attackers)).await;
    let quiet = app.room(&poster.account, "quiet", &[victim.id()]).await;
    let ua = UserAgent::new();
    assert_eq!(
        subscribe(&app, victim, &ua, &service.endpoint("victim")).await,
        201
    );
    let bound = Duration::from_millis(DEADLINE_MS + COALESCE_MS + 1000);
    let mut delays = Vec::new();
    let failing = || {
        app.count(
            "SELECT COUNT(*) FROM push_subscriptions WHERE failures > 0",
            &[],
        )
    };
    // Rounds until every dead subscription was tried and failed (at most
    // `PER_HOST` of them, 16, are tried at once on their one host; one still
    // waiting for a slot when its round is cut was not tried and counts no
    // failure): three at least, eight at most.
    let mut round = 0;
    loop {
        // News for the attackers' room first: its round hangs on dead endpoints...
        let mut to = vec![poster.verified()];
        to.extend(attackers.iter().map(Member::verified));
        let (cid, env) = poster.seal(noisy, b"noise", &to);
        app.post_message(poster, noisy, cid, &env, 201).await;
        tokio::time::sleep(Duration::from_millis(COALESCE_MS + 200)).await;
        // ...and the victim's news while it hangs.
        let (cid, env) = poster.seal(quiet, b"hello", &[poster.verified(), victim.verified()]);
        let start = std::time::Instant::now();
        app.post_message(poster, quiet, cid, &env, 201).await;
        service.wait_for("victim", round + 1).await;
        let delay = start.elapsed();
        assert!(
            delay <= bound,
            "round {round}: the victim's push took {delay:?} (bound {bound:?})"
        );
        delays.push(delay);
        round += 1;
        if round >= 3 {
            // (The round's cut pushes are counted when its deadline passes.)
            tokio::time::sleep(Duration::from_millis(DEADLINE_MS)).await;
            if failing().await == 32 || round == 8 {
                break;
            }
        }
    }
    // The dead ones failed, so they back off: none is pushed again for now.
    assert_eq!(
        failing().await,
        32,
        "dead subscriptions in back-off after {round} rounds"
    );
    let (cid, env) = poster.seal(noisy, b"noise again", &[poster.verified()]);
    app.post_message(poster, noisy, cid, &env, 201).await;
    let (cid, env) = poster.seal(quiet, b"fast now", &[poster.verified(), victim.verified()]);
    let start = std::time::Instant::now();
    app.post_message(poster, quiet, cid, &env, 201).await;
    service.wait_for("victim", round + 1).await;
    let fast = start.elapsed();
    assert!(
        fast < Duration::from_millis(COALESCE_MS + 700),
        "with the dead endpoints in back-off the push took {fast:?} ({delays:?} before)"
    );
    assert!(
        metric(&app.metrics_text().await, "sotto_push_skipped_total") >= 32.0,
        "back-off skips not counted"
    );
}

/// Caps per device and per user, `/push/test`'s rate, and the circuit: a
/// subscription whose pushes fail `--push-max-failures` times in a row is
/// deleted, one that succeeds again starts over.
async fn subscription_caps_test_rate_and_the_circuit(backend: Backend) {
    use sotto_core::keys::IdentityKeyPair;
    let service = PushService::start().await;
    let app = spawn_app_with(
        backend,
        AppOptions::default().with_config(|c| {
            c.push_max_per_device = 2;
            c.push_max_per_user = 3;
            c.push_max_failures = 2;
            c.push_test_rate = 4;
        }),
    )
    .await;
    let m = app.members("caps", 1).await;
    let alice = &m[0];
    let second = app
        .register_device(
            alice.account.clone(),
            IdentityKeyPair::from_seed(&alice.identity.to_seed()),
            None,
            false,
        )
        .await;
    let sub = |device: Uuid, name: &str| {
        let body = json!({"device_id": device, "subscription": UserAgent::new().subscription(&service.endpoint(name))});
        let app = &app;
        async move {
            app.post("/api/v1/push/subscriptions", Some(alice.token()), body)
                .await
        }
    };
    assert_eq!(sub(alice.device_id, "a1").await.status, 201);
    assert_eq!(sub(alice.device_id, "a2").await.status, 201);
    sub(alice.device_id, "a3")
        .await
        .problem(409, "limit_reached");
    assert_eq!(sub(second.device_id, "b1").await.status, 201);
    sub(second.device_id, "b2")
        .await
        .problem(409, "limit_reached");
    // Re-posting one of them replaces it; it does not count twice.
    assert_eq!(sub(alice.device_id, "a1").await.status, 201);
    // The circuit: a1 fails twice in a row and is gone; a2 failed once, then
    // succeeds, and stays.
    service.answer("a1", 500);
    service.answer("a2", 503);
    assert!(push_test(&app, alice).await.accepted);
    service.answer("a2", 201);
    assert!(push_test(&app, alice).await.accepted);
    let left = app
        .texts("SELECT endpoint FROM push_subscriptions ORDER BY endpoint")
        .await;
    assert_eq!(left, [service.endpoint("a2"), service.endpoint("b1")]);
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM push_subscriptions WHERE failures > 0",
            &[]
        )
        .await,
        0
    );
    // `/push/test` is limited per user: 4 a minute (2 above).
    assert!(push_test(&app, alice).await.accepted);
    assert!(push_test(&app, alice).await.accepted);
    let r = app
        .post("/api/v1/push/test", Some(alice.token()), json!({}))
        .await;
    r.problem(429, "rate_limited");
    assert!(r.headers.get("retry-after").is_some());
}
