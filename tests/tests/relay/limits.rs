//! Limits and quotas on every write (`docs/config.md`, "Limits and quotas"),
//! and the socket's answers: every `send` gets one `ack` or one `error` naming
//! its `client_id`, whatever refused it; rate and quota refusals say when to
//! retry. Also: message quotas (429, nothing stored, shared through the
//! database), the sweeps of expired rows, `resume` served at a pace instead of
//! refused, the pre-authentication budget, the connection caps, and the
//! smaller limits (check-username, refreshes, devices, contacts).

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;
use sotto_core::api::ServerFrame;
use sotto_core::api::auth::TokenResponse;
use sotto_core::api::ws::ClientFrame;
use sotto_core::encoding::B64;
use sotto_tests::{
    AppOptions, Backend, PASSWORD, both_backends, metric, spawn_app, spawn_app_with,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

both_backends!(
    every_send_is_answered_with_its_client_id,
    message_quotas_refuse_with_429_and_store_nothing,
    expired_rows_are_swept,
    a_resume_of_many_rooms_is_paced_not_refused,
    unauthenticated_sockets_may_not_buffer_much,
    connection_caps_global_and_per_client_through_a_proxy,
    smaller_limits_answer_429,
    attachments_can_be_deleted_by_their_uploader,
    display_names_refuse_bidi_and_control_characters,
);

/// Past the frame rate, the post rate and the daily quota, with malformed and
/// refused sends among them: each `send` gets exactly one answer, which names
/// its `client_id`; `rate_limited` and `quota_exceeded` say when to retry.
async fn every_send_is_answered_with_its_client_id(backend: Backend) {
    let app = spawn_app_with(
        backend,
        AppOptions {
            post_rate: 20,
            ..AppOptions::default()
        }
        .with_config(|c| {
            c.ws_frame_rate = 25;
            c.message_bytes_per_day = 24 * 1024;
        }),
    )
    .await;
    let m = app.members("lim", 2).await;
    let (alice, bob) = (&m[0], &m[1]);
    let room = app.room(&alice.account, "r", &[bob.id()]).await;
    let elsewhere = app.room(&bob.account, "bob's", &[]).await;
    let to = [alice.verified(), bob.verified()];
    let mut ws = app.ws(alice.token()).await;
    let mut sent: Vec<Uuid> = Vec::new();
    // 400 sends as fast as the socket takes them, about 1 KiB each.
    let body = vec![b'x'; 900];
    for i in 0..400 {
        let (cid, env) = alice.seal(room, &body, &to);
        let frame = match i % 50 {
            // A send into a room she is not in.
            7 => {
                json!({"type": "send", "room_id": elsewhere, "client_id": cid, "envelope": B64(env)})
            }
            // An envelope that is not one.
            13 => {
                json!({"type": "send", "room_id": room, "client_id": cid, "envelope": B64(b"nope".to_vec())})
            }
            // Not base64url at all: the frame does not parse, its client_id is read anyway.
            21 => json!({"type": "send", "room_id": room, "client_id": cid, "envelope": "!!!"}),
            // A field too many.
            33 => {
                json!({"type": "send", "room_id": room, "client_id": cid, "envelope": B64(env), "x": 1})
            }
            _ => json!({"type": "send", "room_id": room, "client_id": cid, "envelope": B64(env)}),
        };
        ws.send_text(&frame.to_string()).await;
        sent.push(cid);
    }
    let mut answers: HashMap<Uuid, Vec<ServerFrame>> = HashMap::new();
    let mut codes: HashMap<String, usize> = HashMap::new();
    let mut answered = 0;
    while answered < sent.len() {
        let f = ws
            .try_next(Duration::from_secs(20))
            .await
            .unwrap_or_else(|| panic!("only {answered} of {} sends answered", sent.len()));
        let cid = match &f {
            ServerFrame::Ack { client_id, .. } => *client_id,
            ServerFrame::Error {
                code,
                client_id,
                retry_after_ms,
                ..
            } => {
                let cid = client_id.unwrap_or_else(|| panic!("an error without client_id: {f:?}"));
                if code == "rate_limited" || code == "quota_exceeded" {
                    assert!(
                        retry_after_ms.is_some_and(|ms| ms > 0),
                        "{code} without retry_after_ms: {f:?}"
                    );
                }
                *codes.entry(code.clone()).or_default() += 1;
                cid
            }
            _ => continue,
        };
        answers.entry(cid).or_default().push(f);
        answered += 1;
    }
    for cid in &sent {
        let a = answers.get(cid).map_or(0, Vec::len);
        assert_eq!(a, 1, "{cid} answered {a} times");
    }
    let acked = answers
        .values()
        .filter(|v| matches!(v[0], ServerFrame::Ack { .. }))
        .count();
    for code in [
        "rate_limited",
        "quota_exceeded",
        "not_a_member",
        "invalid_envelope",
        "invalid_frame",
    ] {
        assert!(
            codes.get(code).is_some_and(|n| *n > 0),
            "no {code}: {codes:?}"
        );
    }
    // What was acked is what is stored.
    let stored = app
        .count("SELECT COUNT(*) FROM messages WHERE room_id = $1", &[room])
        .await;
    assert_eq!(stored as usize, acked, "{codes:?}");
}

async fn message_quotas_refuse_with_429_and_store_nothing(backend: Backend) {
    const SECRET: &str = "a JWT secret shared by the relays of one database";
    let app = spawn_app_with(
        backend,
        AppOptions::default().with_config(|c| {
            c.message_bytes_per_day = 10 * 1024;
            c.message_bytes_stored = 8 * 1024;
            c.quota_sync_ms = 100;
            c.jwt_secret = Some(SECRET.into());
        }),
    )
    .await;
    let m = app.members("quota", 2).await;
    let (alice, bob) = (&m[0], &m[1]);
    let room = app.room(&alice.account, "r", &[bob.id()]).await;
    let to = [alice.verified()];
    let body = vec![b'q'; 1500];
    let mut stored = Vec::new();
    let refused = loop {
        let (cid, env) = alice.seal(room, &body, &to);
        let r = app.send(alice, room, cid, &env).await;
        if r.status == 201 {
            stored.push((r.body["id"].as_str().unwrap().to_string(), cid, env));
            assert!(stored.len() < 20, "never refused");
            continue;
        }
        break (r, cid, env);
    };
    let (r, cid, env) = refused;
    // The stored quota (8 KiB) ends it: 429 with Retry-After, nothing stored.
    r.problem(429, "quota_exceeded");
    assert!(r.headers.get("retry-after").is_some());
    let n = app
        .count(
            "SELECT COUNT(*) FROM messages WHERE sender_id = $1",
            &[alice.id()],
        )
        .await;
    assert_eq!(n as usize, stored.len());
    // A retry of a message stored before is still answered with its first result.
    let (id0, cid0, env0) = &stored[0];
    let again = app.send(alice, room, *cid0, env0).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.body["id"].as_str(), Some(id0.as_str()));
    // Others are not affected.
    let (c2, e2) = bob.seal(room, &body, &[bob.verified()]);
    assert_eq!(app.send(bob, room, c2, &e2).await.status, 201);
    // Deleting frees stored bytes: the refused message fits after two deletions,
    let _ = cid;
    for (id, _, _) in &stored[..2] {
        let r = app
            .req(
                "DELETE",
                &format!("/api/v1/rooms/{room}/messages/{id}"),
                Some(alice.token()),
                None,
            )
            .await;
        assert_eq!(r.status, 204);
    }
    let (cid, env2) = alice.seal(room, &body, &to);
    let r = app.send(alice, room, cid, &env2).await;
    assert_eq!(r.status, 201, "{r:?}");
    // ...until the daily quota (10 KiB) stops it whatever was deleted.
    let mut daily = None;
    for _ in 0..10 {
        app.req(
            "DELETE",
            &format!(
                "/api/v1/rooms/{room}/messages/{}",
                r.body["id"].as_str().unwrap()
            ),
            Some(alice.token()),
            None,
        )
        .await;
        let (cid, env) = alice.seal(room, &body, &to);
        let r2 = app.send(alice, room, cid, &env).await;
        if r2.status == 429 {
            daily = Some(r2);
            break;
        }
    }
    let daily = daily.expect("the daily quota never refused");
    daily.problem(429, "quota_exceeded");
    assert!(daily.body["detail"].as_str().unwrap().contains("daily"));
    let retry: u64 = daily.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry <= 86_400);
    let _ = env;
    // The counters reach the database (where other relays see them).
    tokio::time::sleep(Duration::from_millis(400)).await;
    let day_bytes = app
        .count(
            "SELECT day_bytes FROM user_usage WHERE user_id = $1",
            &[alice.id()],
        )
        .await;
    assert!(day_bytes > 8 * 1024, "day_bytes {day_bytes}");
    // Shared through the database: another relay on it refuses Alice too.
    if backend == Backend::Postgres {
        let other = spawn_app_with(
            backend,
            AppOptions {
                database_url: app.database_url.clone(),
                ..AppOptions::default()
            }
            .with_config(|c| {
                c.message_bytes_per_day = 10 * 1024;
                c.message_bytes_stored = 8 * 1024;
                c.jwt_secret = Some(SECRET.into());
            }),
        )
        .await;
        let (cid, env) = alice.seal(room, &body, &to);
        let r = other.send(alice, room, cid, &env).await;
        r.problem(429, "quota_exceeded");
    }
}

async fn expired_rows_are_swept(backend: Backend) {
    let app = spawn_app(backend).await;
    let u = app.users("sweep", 2).await;
    // Rows of every kind: sessions with refresh tokens (logins), e-mail tokens
    // (a reset request), audit entries.
    let r = app
        .post(
            "/api/v1/auth/password/forgot",
            None,
            json!({"email": u[0].email}),
        )
        .await;
    assert_eq!(r.status, 202);
    app.smtp.wait_for(&u[0].email, "reset-password").await;
    let count = |table: &'static str| {
        let app = &app;
        async move {
            app.count(&format!("SELECT COUNT(*) FROM {table}"), &[])
                .await
        }
    };
    let tables = ["sessions", "refresh_tokens", "email_tokens", "audit_log"];
    let mut before = Vec::new();
    for t in tables {
        let n = count(t).await;
        assert!(n > 0, "no {t} rows to sweep");
        before.push(n);
    }
    let ttl = Duration::from_secs(app.state.config.refresh_token_ttl);
    let now = sotto_relay::db::now_ms();
    // Now, nothing is expired: nothing goes.
    let swept = sotto_relay::housekeeping::sweep_expired(&app.state.db, now, ttl, 180).await;
    assert_eq!(swept, sotto_relay::housekeeping::Swept::default());
    for (t, n) in tables.iter().zip(&before) {
        assert_eq!(count(t).await, *n, "{t}");
    }
    // A year on, everything is: sessions unused for the refresh lifetime, their
    // tokens, the expired e-mail tokens, audit entries past their retention.
    let later = now + 400 * 86_400_000;
    let swept = sotto_relay::housekeeping::sweep_expired(&app.state.db, later, ttl, 180).await;
    assert!(swept.sessions > 0 && swept.refresh_tokens > 0, "{swept:?}");
    assert!(swept.email_tokens > 0 && swept.audit > 0, "{swept:?}");
    for t in tables {
        assert_eq!(count(t).await, 0, "{t} not swept");
    }
    // A revoked session goes a day after its revocation.
    let a = app.login(&u[1].username, PASSWORD).await;
    let t: TokenResponse = a.typed(200);
    let r = app
        .post(
            "/api/v1/auth/logout",
            Some(&t.access_token),
            json!({"refresh_token": t.refresh_token}),
        )
        .await;
    assert_eq!(r.status, 204);
    let now = sotto_relay::db::now_ms();
    sotto_relay::housekeeping::sweep_expired(&app.state.db, now + 3_600_000, ttl, 180).await;
    assert_eq!(count("sessions").await, 1);
    sotto_relay::housekeeping::sweep_expired(&app.state.db, now + 2 * 86_400_000, ttl, 180).await;
    assert_eq!(count("sessions").await, 0);
}

/// A `resume` naming thousands of rooms (most not the user's) is not refused:
/// rooms without news cost nothing, the others are replayed page by page at
/// the socket's replay pace, and the unknown ones are named in one error.
async fn a_resume_of_many_rooms_is_paced_not_refused(backend: Backend) {
    // The production frame limit (about 700 KB), which holds 10,000 cursors.
    let app = spawn_app_with(
        backend,
        AppOptions {
            max_message_bytes: 512 * 1024,
            max_body_bytes: 1024 * 1024,
            ..AppOptions::default()
        }
        .with_config(|c| c.ws_replay_rate = 5),
    )
    .await;
    let m = app.members("many", 1).await;
    let alice = &m[0];
    let mut rooms = Vec::new();
    for i in 0..40 {
        rooms.push(app.room(&alice.account, &format!("r{i}"), &[]).await);
    }
    let to = [alice.verified()];
    for room in rooms.iter().take(20) {
        for _ in 0..3 {
            let (cid, env) = alice.seal(*room, b"news", &to);
            app.post_message(alice, *room, cid, &env, 201).await;
        }
    }
    let mut ws = app.ws(alice.token()).await;
    let mut cursors = serde_json::Map::new();
    for room in &rooms {
        cursors.insert(room.to_string(), json!(0));
    }
    for _ in 0..10_000 {
        cursors.insert(Uuid::new_v4().to_string(), json!(0));
    }
    let throttled_before = metric(&app.metrics_text().await, "sotto_ws_replay_throttled_total");
    ws.send_text(&json!({"type": "resume", "cursors": cursors}).to_string())
        .await;
    let mut got: HashMap<Uuid, Vec<u64>> = HashMap::new();
    let mut unknown_errors = 0;
    let start = std::time::Instant::now();
    while got.values().map(Vec::len).sum::<usize>() < 60 {
        match ws
            .try_next(Duration::from_secs(30))
            .await
            .expect("the replay stopped")
        {
            ServerFrame::Message { room_id, seq, .. } => got.entry(room_id).or_default().push(seq),
            ServerFrame::Error { code, detail, .. } => {
                assert_eq!(code, "not_a_member");
                assert!(detail.unwrap_or_default().contains("10000"));
                unknown_errors += 1;
            }
            _ => {}
        }
    }
    assert_eq!(unknown_errors, 1);
    assert_eq!(got.len(), 20);
    assert!(got.values().all(|s| s == &[1, 2, 3]));
    // 20 rooms to fill at 5 reads a second (bursts of 10): paced.
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    let throttled = metric(&app.metrics_text().await, "sotto_ws_replay_throttled_total");
    assert!(throttled > throttled_before);
    // The socket stays usable.
    ws.send(&ClientFrame::Ping).await;
    assert_eq!(
        ws.next_where(|f| matches!(f, ServerFrame::Pong)).await,
        ServerFrame::Pong
    );
}

/// Before its `auth` frame, a socket may send only a little: a large frame
/// ends the connection; an `auth` then works on a new socket.
async fn unauthenticated_sockets_may_not_buffer_much(backend: Backend) {
    let app = spawn_app(backend).await;
    let u = app.users("pre", 1).await;
    let mut ws = app.ws_connect().await;
    let big = format!(
        "{{\"type\":\"auth\",\"token\":\"{}\"}}",
        "a".repeat(100 * 1024)
    );
    let _ = ws.try_send_text(&big).await;
    let end = ws.end(Duration::from_secs(10)).await;
    assert_eq!(end, sotto_tests::WsEnd::Dropped, "{end:?}");
    let mut ok = app.ws(&u[0].access).await;
    ok.send(&ClientFrame::Ping).await;
    assert_eq!(
        ok.next_where(|f| matches!(f, ServerFrame::Pong)).await,
        ServerFrame::Pong
    );
    // Authenticated, the socket takes large frames again (up to the frame limit).
    let big_ping = json!({"type": "typing", "room_id": Uuid::new_v4(), "active": true, "pad": "a".repeat(50 * 1024)});
    ok.send_text(&big_ping.to_string()).await;
    assert!(matches!(
        ok.next_where(|f| matches!(f, ServerFrame::Error { .. }))
            .await,
        ServerFrame::Error { .. }
    ));
}

/// `--max-connections` closes connections beyond it at once; through a
/// trusted proxy, WebSockets count per client address.
async fn connection_caps_global_and_per_client_through_a_proxy(backend: Backend) {
    let app = spawn_app_with(
        backend,
        AppOptions::default().with_config(|c| {
            c.max_connections = 8;
            c.max_connections_per_ip = 2;
            c.trusted_proxies = vec![sotto_relay::clientip::parse_net("127.0.0.1").unwrap()];
        }),
    )
    .await;
    let _u = app.users("cap", 1).await;
    // Through the "proxy" (the test, from 127.0.0.1, trusted): two sockets for
    // client 203.0.113.9, the third refused; another client still gets one.
    let connect = |client: &'static str| {
        let url = format!("ws://{}/api/v1/ws", app.addr);
        async move {
            let mut req =
                tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url)
                    .unwrap();
            req.headers_mut()
                .insert("x-forwarded-for", client.parse().unwrap());
            tokio_tungstenite::connect_async(req).await
        }
    };
    let a1 = connect("203.0.113.9").await.unwrap();
    let a2 = connect("203.0.113.9").await.unwrap();
    match connect("203.0.113.9").await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 429),
        other => panic!("a third socket of one client: {:?}", other.map(|_| ())),
    }
    let b1 = connect("198.51.100.20").await.unwrap();
    drop((a1, a2, b1));
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The global cap: of 12 idle connections at most 8 stay (some may be the
    // test client's pooled ones); the others are closed at once.
    let mut conns = Vec::new();
    for _ in 0..12 {
        conns.push(tokio::net::TcpStream::connect(app.addr).await.unwrap());
    }
    let mut closed = 0;
    for c in &mut conns {
        let mut buf = [0u8; 16];
        match tokio::time::timeout(Duration::from_millis(500), c.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => closed += 1,
            Ok(Ok(_)) => panic!("an idle connection got bytes"),
            Err(_) => {}
        }
    }
    assert!(
        closed >= 4,
        "only {closed} of 12 connections refused at a cap of 8"
    );
    drop(conns);
    // Once they are gone, connections are served again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    s.write_all(
        format!(
            "GET /health HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            app.addr
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
}

async fn smaller_limits_answer_429(backend: Backend) {
    let app = spawn_app_with(
        backend,
        AppOptions::default().with_config(|c| {
            c.check_username_rate = 3;
            c.refresh_rate = 2;
            c.contact_rate = 2;
            c.device_update_rate = 2;
            c.receipt_rate = 3;
        }),
    )
    .await;
    let m = app.members("small", 3).await;
    let (alice, bob, carol) = (&m[0], &m[1], &m[2]);
    // check-username: 3 a minute per address.
    for _ in 0..3 {
        assert_eq!(
            app.get("/api/v1/users/check-username?username=zed", None)
                .await
                .status,
            200
        );
    }
    let r = app
        .get("/api/v1/users/check-username?username=zed", None)
        .await;
    r.problem(429, "rate_limited");
    assert!(r.headers.get("retry-after").is_some());
    // Refreshes: 2 a minute per session; a refused one keeps the token usable.
    let mut refresh = alice.account.refresh.clone();
    for _ in 0..2 {
        let t: TokenResponse = app
            .post(
                "/api/v1/auth/refresh",
                None,
                json!({"refresh_token": refresh}),
            )
            .await
            .typed(200);
        refresh = t.refresh_token;
    }
    app.post(
        "/api/v1/auth/refresh",
        None,
        json!({"refresh_token": refresh}),
    )
    .await
    .problem(429, "rate_limited");
    // Contacts (and blocks): 2 a minute.
    assert_eq!(
        app.post(
            "/api/v1/contacts",
            Some(alice.token()),
            json!({"user_id": bob.id()})
        )
        .await
        .status,
        201
    );
    assert_eq!(
        app.post(
            "/api/v1/blocks",
            Some(alice.token()),
            json!({"user_id": carol.id()})
        )
        .await
        .status,
        201
    );
    app.post(
        "/api/v1/contacts",
        Some(alice.token()),
        json!({"user_id": carol.id()}),
    )
    .await
    .problem(429, "rate_limited");
    // Receipts: 3 a minute.
    let room = app.room(&bob.account, "r", &[]).await;
    let (cid, env) = bob.seal(room, b"x", &[bob.verified()]);
    app.post_message(bob, room, cid, &env, 201).await;
    for _ in 0..3 {
        let r = app
            .post(
                &format!("/api/v1/rooms/{room}/receipts"),
                Some(bob.token()),
                json!({"kind": "read", "seq": 1}),
            )
            .await;
        assert_eq!(r.status, 200, "{r:?}");
    }
    app.post(
        &format!("/api/v1/rooms/{room}/receipts"),
        Some(bob.token()),
        json!({"kind": "read", "seq": 1}),
    )
    .await
    .problem(429, "rate_limited");
    // Device changes: 2 a minute (one was the member's own registration).
    let keys = sotto_core::keys::DeviceKeys::generate(Default::default()).unwrap();
    let dev = Uuid::new_v4();
    let bundle =
        sotto_core::keys::DeviceBundle::create(&carol.identity, &keys, carol.id(), dev).unwrap();
    let put = |body: serde_json::Value| {
        let app = &app;
        async move {
            app.req(
                "PUT",
                &format!("/api/v1/devices/{dev}"),
                Some(carol.token()),
                Some(body),
            )
            .await
        }
    };
    assert_eq!(put(json!({"bundle": bundle})).await.status, 201);
    put(json!({"bundle": bundle}))
        .await
        .problem(429, "rate_limited");
    // Metrics count the refusals by limit.
    let text = app.metrics_text().await;
    for limit in [
        "check_username",
        "refresh",
        "contact",
        "receipt",
        "device_update",
    ] {
        assert!(
            text.contains(&format!("sotto_rate_limited_total{{limit=\"{limit}\"}}")),
            "{limit} not counted"
        );
    }
}

async fn attachments_can_be_deleted_by_their_uploader(backend: Backend) {
    let app = spawn_app_with(
        backend,
        AppOptions {
            attachment_quota_bytes: 300_000,
            ..AppOptions::default()
        },
    )
    .await;
    let m = app.members("att", 2).await;
    let (alice, bob) = (&m[0], &m[1]);
    let room = app.room(&alice.account, "r", &[bob.id()]).await;
    // Each upload on a connection of its own: a refused one (413 before the
    // body is read) ends its connection.
    let upload = |size: usize| {
        let url = app.url(&format!("/api/v1/rooms/{room}/attachments"));
        let token = alice.token().to_string();
        async move {
            let r = reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .header("content-type", "application/octet-stream")
                .body(vec![7u8; size])
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, (), r.bytes().await.unwrap_or_default().to_vec())
        }
    };
    let (st, _, body) = upload(200_000).await;
    assert_eq!(st, 201);
    let id = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, _, _) = upload(200_000).await;
    assert_eq!(st, 413, "over the quota");
    // Bob may not delete it; Alice may, which frees her quota and the file.
    let del = |token: &str| {
        let app = &app;
        let path = format!("/api/v1/attachments/{id}");
        let token = token.to_string();
        async move { app.req("DELETE", &path, Some(&token), None).await }
    };
    del(bob.token()).await.problem(404, "not_found");
    assert_eq!(del(alice.token()).await.status, 204);
    del(alice.token()).await.problem(404, "not_found");
    app.get(&format!("/api/v1/attachments/{id}"), Some(bob.token()))
        .await
        .problem(404, "not_found");
    assert!(!app.data_dir.path().join("attachments").join(&id).exists());
    let (st, _, _) = upload(200_000).await;
    assert_eq!(st, 201);
}

async fn display_names_refuse_bidi_and_control_characters(backend: Backend) {
    let app = spawn_app(backend).await;
    let u = app.users("names", 1).await;
    let path = format!("/api/v1/users/{}", u[0].id);
    for bad in [
        "evil\u{202e}gnp.exe",
        "a\u{2066}b",
        "\u{200f}admin",
        "bell\u{7}",
    ] {
        app.req(
            "PATCH",
            &path,
            Some(&u[0].access),
            Some(json!({"display_name": bad})),
        )
        .await
        .problem(400, "validation_failed");
    }
    let r = app
        .req(
            "PATCH",
            &path,
            Some(&u[0].access),
            Some(json!({"display_name": "Zoë 👩‍💻"})),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
}
