//! Real time over real sockets (`GET /api/v1/ws`): delivery to every connected
//! device of every member, acks, typing, receipts, presence, room and key
//! changes, deletions; bad frames; authentication; resume without gap or
//! duplicate.

use std::time::Duration;

use serde_json::json;
use sotto_core::api::ServerFrame;
use sotto_core::api::messages::ReceiptKind;
use sotto_core::api::rooms::RoomChange;
use sotto_core::api::ws::ClientFrame;
use sotto_core::encoding::B64;
use sotto_core::keys::{DeviceBundle, DeviceKeyOptions, DeviceKeys};
use sotto_tests::fuzz::Rng;
use sotto_tests::{AppOptions, Backend, WsEnd, both_backends, spawn_app, spawn_app_with};
use uuid::Uuid;

both_backends!(
    members_hear_everything_live,
    bad_frames_get_errors_and_the_socket_stays_usable,
    authentication_is_the_first_frame,
    resume_replays_then_streams_without_gap_or_duplicate,
    presence_and_typing_can_be_switched_off,
    a_receiver_cut_off_at_random_resumes_with_every_message_once,
    a_slow_client_is_closed_and_others_go_on,
    posts_are_rate_limited_per_user_over_rest_and_sockets,
    random_frames_never_break_the_socket_or_the_relay,
);

fn is_message(f: &ServerFrame) -> bool {
    matches!(f, ServerFrame::Message { .. })
}

async fn members_hear_everything_live(backend: Backend) {
    let app = spawn_app(backend).await;
    let m = app.members("rt", 3).await;
    app.acquaint(&m.iter().map(|x| x.id()).collect::<Vec<_>>())
        .await;
    let (alice, bob, carol) = (&m[0], &m[1], &m[2]);
    let room = app.room(&alice.account, "live", &[bob.id()]).await;

    let mut a = app.ws(alice.token()).await;
    let mut b1 = app.ws(bob.token()).await;
    // Bob's second socket (another device of his) hears the same.
    let mut b2 = app.ws(bob.token()).await;
    // Bob came online: Alice, who shares a room with him, hears it; Bob's
    // sockets learn that Alice is online.
    assert_eq!(
        a.next_where(|f| matches!(f, ServerFrame::Presence { .. }))
            .await,
        ServerFrame::Presence {
            user_id: bob.id(),
            online: true
        }
    );
    assert_eq!(
        b1.next().await,
        ServerFrame::Presence {
            user_id: alice.id(),
            online: true
        }
    );

    // A send over the socket: acked, and delivered to every socket of every
    // member (the sender's own included), with the same envelope.
    let to = [alice.verified(), bob.verified()];
    let (cid, env) = alice.seal(room, b"hello over the socket", &to);
    a.send(&ClientFrame::Send {
        room_id: room,
        client_id: cid,
        envelope: B64(env.clone()),
    })
    .await;
    // The sender's socket gets the ack and its own message, in either order.
    let (mut ack, mut echo) = (None, None);
    while ack.is_none() || echo.is_none() {
        match a.next().await {
            f @ ServerFrame::Ack { .. } => ack = Some(f),
            f @ ServerFrame::Message { .. } => echo = Some(f),
            _ => {}
        }
    }
    let Some(ServerFrame::Ack { client_id, seq, id }) = ack else {
        unreachable!()
    };
    assert_eq!((client_id, seq), (cid, 1));
    for ws in [&mut a, &mut b1, &mut b2] {
        let frame = match echo.take() {
            Some(f) => f,
            None => ws.next_where(is_message).await,
        };
        match frame {
            ServerFrame::Message {
                room_id,
                id: mid,
                seq,
                sender_id,
                envelope,
                ..
            } => {
                assert_eq!((room_id, mid, seq, sender_id), (room, id, 1, alice.id()));
                assert_eq!(envelope.0, env);
            }
            _ => unreachable!(),
        }
    }
    // A retry of the same send is acked with the first result, nothing new.
    a.send(&ClientFrame::Send {
        room_id: room,
        client_id: cid,
        envelope: B64(env.clone()),
    })
    .await;
    assert_eq!(
        a.next_where(|f| matches!(f, ServerFrame::Ack { .. })).await,
        ServerFrame::Ack {
            client_id: cid,
            id,
            seq: 1
        }
    );
    // A REST post reaches the sockets too.
    let (cid2, env2) = bob.seal(room, b"over REST", &to);
    app.post_message(bob, room, cid2, &env2, 201).await;
    for ws in [&mut a, &mut b1, &mut b2] {
        assert!(matches!(
            ws.next_where(is_message).await,
            ServerFrame::Message { seq: 2, .. }
        ));
    }

    // Typing reaches the other members, not the typist.
    b1.send(&ClientFrame::Typing {
        room_id: room,
        active: true,
    })
    .await;
    assert_eq!(
        a.next_where(|f| matches!(f, ServerFrame::Typing { .. }))
            .await,
        ServerFrame::Typing {
            room_id: room,
            user_id: bob.id(),
            active: true
        }
    );
    // Receipts.
    b1.send(&ClientFrame::Receipt {
        room_id: room,
        kind: ReceiptKind::Read,
        seq: 2,
    })
    .await;
    assert_eq!(
        a.next_where(|f| matches!(f, ServerFrame::Receipt { .. }))
            .await,
        ServerFrame::Receipt {
            room_id: room,
            user_id: bob.id(),
            kind: ReceiptKind::Read,
            seq: 2
        }
    );
    assert!(
        !matches!(
            b2.try_next(Duration::from_millis(300)).await,
            Some(ServerFrame::Typing { .. })
        ),
        "the typist's own sockets do not hear their typing"
    );
    // A deletion.
    let del = app
        .req(
            "DELETE",
            &format!("/api/v1/rooms/{room}/messages/{id}"),
            Some(alice.token()),
            None,
        )
        .await;
    assert_eq!(del.status, 204);
    assert_eq!(
        b1.next_where(|f| matches!(f, ServerFrame::MessageDeleted { .. }))
            .await,
        ServerFrame::MessageDeleted {
            room_id: room,
            id,
            seq: 1
        }
    );
    // Room changes: Carol is added; she hears the room, the others the change.
    let mut c = app.ws(carol.token()).await;
    let r = app
        .post(
            &format!("/api/v1/rooms/{room}/members"),
            Some(alice.token()),
            json!({"user_id": carol.id()}),
        )
        .await;
    assert!(r.status < 300, "{r:?}");
    assert!(matches!(
        c.next_where(|f| matches!(f, ServerFrame::Room { .. })).await,
        ServerFrame::Room { room_id, change: RoomChange::MemberAdded } if room_id == room
    ));
    // New peers learn at once who of each other is online: Carol hears Alice
    // and Bob, and they hear Carol (no reconnect needed).
    let mut heard = Vec::new();
    for _ in 0..2 {
        heard.push(
            c.next_where(|f| matches!(f, ServerFrame::Presence { .. }))
                .await,
        );
    }
    for who in [alice.id(), bob.id()] {
        assert!(
            heard.contains(&ServerFrame::Presence {
                user_id: who,
                online: true
            }),
            "{heard:?}"
        );
    }
    assert_eq!(
        a.next_where(|f| matches!(f, ServerFrame::Presence { .. }))
            .await,
        ServerFrame::Presence {
            user_id: carol.id(),
            online: true
        }
    );
    assert!(matches!(
        b2.next_where(|f| matches!(f, ServerFrame::Room { .. })).await,
        ServerFrame::Room { room_id, change: RoomChange::MemberAdded } if room_id == room
    ));
    // Keys: Bob registers another device; those sharing a room hear it.
    let keys = DeviceKeys::generate(DeviceKeyOptions { rsa: None }).unwrap();
    let device = Uuid::new_v4();
    let bundle = DeviceBundle::create(&bob.identity, &keys, bob.id(), device).unwrap();
    let r = app
        .req(
            "PUT",
            &format!("/api/v1/devices/{device}"),
            Some(bob.token()),
            Some(json!({"bundle": bundle})),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(
        c.next_where(|f| matches!(f, ServerFrame::KeysChanged { .. }))
            .await,
        ServerFrame::KeysChanged { user_id: bob.id() }
    );
    // Bob's sockets close: after the debounce Alice hears him go offline.
    drop(b1);
    drop(b2);
    assert_eq!(
        a.next_where(|f| matches!(f, ServerFrame::Presence { .. }))
            .await,
        ServerFrame::Presence {
            user_id: bob.id(),
            online: false
        }
    );
    // Ping.
    a.send(&ClientFrame::Ping).await;
    assert_eq!(
        a.next_where(|f| matches!(f, ServerFrame::Pong)).await,
        ServerFrame::Pong
    );

    // What operators see: open and authenticated sockets, users online, frames
    // by direction and type, the group commit's batch sizes.
    let text = app.metrics_text().await;
    let value = |prefix: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{prefix} missing from /metrics:\n{text}"))
    };
    assert!(value("sotto_ws_connections ") >= 1.0);
    assert!(value("sotto_ws_authenticated ") >= 1.0);
    assert!(value("sotto_ws_users_online ") >= 1.0);
    assert!(value(r#"sotto_ws_frames_total{direction="in",type="send"}"#) >= 1.0);
    assert!(value(r#"sotto_ws_frames_total{direction="out",type="message"}"#) >= 1.0);
    assert!(value("sotto_ingest_batch_size_count ") >= 1.0);
}

fn error_code(f: &ServerFrame) -> Option<(&str, Option<Uuid>)> {
    match f {
        ServerFrame::Error {
            code, client_id, ..
        } => Some((code.as_str(), *client_id)),
        _ => None,
    }
}

async fn bad_frames_get_errors_and_the_socket_stays_usable(backend: Backend) {
    let app = spawn_app(backend).await;
    let m = app.members("bad", 2).await;
    let (alice, bob) = (&m[0], &m[1]);
    let room = app.room(&alice.account, "r", &[]).await;
    let other = app.room(&bob.account, "not alice's", &[]).await;
    let mut a = app.ws(alice.token()).await;
    for text in [
        "not json",
        "[1,2]",
        r#"{"type":"nonsense"}"#,
        r#"{"type":"ping","extra":1}"#,
        r#"{"type":"typing","room_id":"nope","active":true}"#,
        r#"{"type":"auth","token":"again"}"#,
    ] {
        a.send_text(text).await;
        let f = a.next().await;
        assert_eq!(
            error_code(&f).map(|e| e.0),
            Some("invalid_frame"),
            "{text}: {f:?}"
        );
    }
    a.send_binary(vec![1, 2, 3]).await;
    assert_eq!(
        error_code(&a.next().await).map(|e| e.0),
        Some("invalid_frame")
    );

    // Refused sends name their client_id: not a member; a header naming
    // another room; a bad signature.
    let to = [alice.verified()];
    let (cid, env) = alice.seal(other, b"x", &to);
    a.send(&ClientFrame::Send {
        room_id: other,
        client_id: cid,
        envelope: B64(env),
    })
    .await;
    assert_eq!(
        error_code(&a.next().await),
        Some(("not_a_member", Some(cid)))
    );
    let (cid, env) = alice.seal(other, b"x", &to);
    a.send(&ClientFrame::Send {
        room_id: room,
        client_id: cid,
        envelope: B64(env),
    })
    .await;
    assert_eq!(
        error_code(&a.next().await),
        Some(("envelope_mismatch", Some(cid)))
    );
    let (cid, mut env) = alice.seal(room, b"x", &to);
    let last = env.len() - 1;
    env[last] ^= 1;
    a.send(&ClientFrame::Send {
        room_id: room,
        client_id: cid,
        envelope: B64(env),
    })
    .await;
    let f = a.next().await;
    assert!(
        matches!(error_code(&f), Some((_, Some(c))) if c == cid),
        "{f:?}"
    );
    // A receipt beyond the room's last message; a typing frame for a room not
    // the user's.
    a.send(&ClientFrame::Receipt {
        room_id: room,
        kind: ReceiptKind::Read,
        seq: 9,
    })
    .await;
    assert_eq!(
        error_code(&a.next().await).map(|e| e.0),
        Some("validation_failed")
    );
    a.send(&ClientFrame::Typing {
        room_id: other,
        active: true,
    })
    .await;
    assert_eq!(
        error_code(&a.next().await).map(|e| e.0),
        Some("not_a_member")
    );

    // Still usable: a good send is acked.
    let (cid, env) = alice.seal(room, b"fine", &to);
    a.send(&ClientFrame::Send {
        room_id: room,
        client_id: cid,
        envelope: B64(env),
    })
    .await;
    assert!(matches!(
        a.next_where(|f| !is_message(f)).await,
        ServerFrame::Ack { seq: 1, .. }
    ));

    // A frame above the size limit closes the socket with 1009 (the client,
    // still writing, may see the connection reset before it reads the close).
    let huge = format!(
        r#"{{"type":"typing","pad":"{}"}}"#,
        "x".repeat(2 * 1024 * 1024)
    );
    let _ = a.try_send_text(&huge).await;
    let end = a.end(Duration::from_secs(10)).await;
    assert!(
        matches!(end, WsEnd::Closed(1009) | WsEnd::Dropped),
        "{end:?}"
    );
}

async fn authentication_is_the_first_frame(backend: Backend) {
    let app = spawn_app(backend).await;
    let u = app.users("auth", 1).await;
    // A bad token: 4401 at once.
    let mut ws = app.ws_connect().await;
    ws.send(&ClientFrame::Auth {
        token: "nope".into(),
    })
    .await;
    assert_eq!(ws.end(Duration::from_secs(5)).await, WsEnd::Closed(4401));
    // Another frame first: 4401.
    let mut ws = app.ws_connect().await;
    ws.send(&ClientFrame::Ping).await;
    assert_eq!(ws.end(Duration::from_secs(5)).await, WsEnd::Closed(4401));
    // Nothing within 10 s: 4401.
    let mut ws = app.ws_connect().await;
    let started = std::time::Instant::now();
    assert_eq!(ws.end(Duration::from_secs(15)).await, WsEnd::Closed(4401));
    assert!(started.elapsed() >= Duration::from_secs(9));
    // A session that ends while connected closes the socket (at the next
    // heartbeat check): logout.
    let mut ws = app.ws(&u[0].access).await;
    let r = app
        .post(
            "/api/v1/auth/logout",
            Some(&u[0].access),
            json!({"refresh_token": u[0].refresh}),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(ws.end(Duration::from_secs(10)).await, WsEnd::Closed(4401));
}

async fn resume_replays_then_streams_without_gap_or_duplicate(backend: Backend) {
    let app = std::sync::Arc::new(spawn_app(backend).await);
    let m = std::sync::Arc::new(app.members("res", 2).await);
    let room = app.room(&m[0].account, "r", &[m[1].id()]).await;
    let to = [m[0].verified(), m[1].verified()];
    for i in 0..250 {
        let (cid, env) = m[0].seal(room, format!("old {i}").as_bytes(), &to);
        app.post_message(&m[0], room, cid, &env, 201).await;
    }
    // Bob was away after seq 40; he resumes while new posts keep arriving
    // (from two senders at once, so live events can be published out of order).
    let mut b = app.ws(m[1].token()).await;
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let (app, m, to) = (app.clone(), m.clone(), to.clone());
            tokio::spawn(async move {
                for i in 0..50 {
                    let (cid, env) = m[w].seal(room, format!("new {w} {i}").as_bytes(), &to);
                    app.post_message(&m[w], room, cid, &env, 201).await;
                }
            })
        })
        .collect();
    b.send(&ClientFrame::Resume {
        cursors: [(room, 40)].into(),
    })
    .await;
    let mut seqs = Vec::new();
    while seqs.last() != Some(&350) {
        match b.next().await {
            ServerFrame::Message { seq, room_id, .. } => {
                assert_eq!(room_id, room);
                seqs.push(seq);
            }
            ServerFrame::Presence { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    for w in writers {
        w.await.unwrap();
    }
    assert_eq!(
        seqs,
        (41..=350).collect::<Vec<u64>>(),
        "every message once, in seq order"
    );
    assert_eq!(
        b.try_next(Duration::from_millis(500)).await,
        None,
        "nothing after"
    );
}

async fn presence_and_typing_can_be_switched_off(backend: Backend) {
    let opts = AppOptions {
        ws_typing: false,
        ws_presence: false,
        ..AppOptions::default()
    };
    let app = spawn_app_with(backend, opts).await;
    let m = app.members("off", 2).await;
    let room = app.room(&m[0].account, "r", &[m[1].id()]).await;
    let mut a = app.ws(m[0].token()).await;
    let mut b = app.ws(m[1].token()).await;
    b.send(&ClientFrame::Typing {
        room_id: room,
        active: true,
    })
    .await;
    assert_eq!(
        error_code(&b.next().await).map(|e| e.0),
        Some("invalid_frame")
    );
    assert_eq!(
        a.try_next(Duration::from_millis(500)).await,
        None,
        "no presence, no typing"
    );
}

/// A receiver whose socket is cut at random points during a burst of 1,000
/// messages from four senders reconnects with its cursor each time and ends
/// with every message exactly once, in seq order.
async fn a_receiver_cut_off_at_random_resumes_with_every_message_once(backend: Backend) {
    let app = std::sync::Arc::new(spawn_app(backend).await);
    let m = std::sync::Arc::new(app.members("cut", 5).await);
    let others: Vec<Uuid> = m[1..].iter().map(|x| x.id()).collect();
    let room = app.room(&m[0].account, "burst", &others).await;
    let to: Vec<_> = m.iter().map(|x| x.verified()).collect();
    let senders: Vec<_> = (1..5)
        .map(|s| {
            let (app, m, to) = (app.clone(), m.clone(), to.clone());
            tokio::spawn(async move {
                for i in 0..250 {
                    let (cid, env) = m[s].seal(room, format!("{s}/{i}").as_bytes(), &to);
                    app.post_message(&m[s], room, cid, &env, 201).await;
                }
            })
        })
        .collect();
    // A cheap deterministic "random" cut length.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut seen: Vec<u64> = Vec::new();
    let mut cuts = 0;
    while seen.last() != Some(&1000) {
        let mut ws = app.ws(m[0].token()).await;
        let cursor = seen.last().copied().unwrap_or(0);
        ws.send(&ClientFrame::Resume {
            cursors: [(room, cursor)].into(),
        })
        .await;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let take = 1 + x % 120;
        for _ in 0..take {
            match ws.try_next(Duration::from_secs(10)).await {
                Some(ServerFrame::Message { seq, .. }) => seen.push(seq),
                Some(_) => {}
                None => break,
            }
            if seen.last() == Some(&1000) {
                break;
            }
        }
        drop(ws);
        cuts += 1;
        assert!(cuts < 500, "no progress: {:?}", seen.last());
    }
    for s in senders {
        s.await.unwrap();
    }
    assert_eq!(seen, (1..=1000).collect::<Vec<u64>>(), "after {cuts} cuts");
}

/// A client that stops reading is closed (4408) without slowing delivery to
/// another client in the same room.
async fn a_slow_client_is_closed_and_others_go_on(backend: Backend) {
    let opts = AppOptions {
        ws_queue: 16,
        max_message_bytes: 256 * 1024,
        max_body_bytes: 1024 * 1024,
        ..AppOptions::default()
    };
    let app = spawn_app_with(backend, opts).await;
    let m = app.members("slow", 3).await;
    let (alice, bob, carol) = (&m[0], &m[1], &m[2]);
    let room = app.room(&alice.account, "r", &[bob.id(), carol.id()]).await;
    let to = [alice.verified(), bob.verified(), carol.verified()];
    let _slow = app.ws(bob.token()).await; // never read again
    let mut fast = app.ws(carol.token()).await;
    let big = vec![7u8; 150 * 1024];
    let mut worst = Duration::ZERO;
    for _ in 0..120 {
        let (cid, env) = alice.seal(room, &big, &to);
        app.post_message(alice, room, cid, &env, 201).await;
        let posted = std::time::Instant::now();
        fast.next_where(is_message).await;
        worst = worst.max(posted.elapsed());
    }
    eprintln!("the reading client's worst delivery after the post returned: {worst:?}");
    let mut slow = _slow;
    let end = slow.end(Duration::from_secs(30)).await;
    assert!(
        matches!(end, WsEnd::Closed(4408) | WsEnd::Dropped),
        "the slow socket ended with {end:?}"
    );
    let text = app.metrics_text().await;
    assert!(
        text.lines()
            .any(|l| l.starts_with("sotto_ws_slow_consumer_closes_total") && !l.ends_with(" 0")),
        "{text}"
    );
}

/// Two relays on one PostgreSQL database deliver each other's events (through
/// LISTEN/NOTIFY); when one stops, its clients reconnect to another and resume
/// without loss.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_on_one_postgres_share_events() {
    let one = spawn_app(Backend::Postgres).await;
    // The second relay: the same database, and the same JWT key (copied data dir).
    let shared = || AppOptions {
        database_url: one.database_url.clone(),
        data_from: Some(one.data_dir.path().to_path_buf()),
        ..AppOptions::default()
    };
    let two = spawn_app_with(Backend::Postgres, shared()).await;
    let m = one.members("two", 2).await;
    let (alice, bob) = (&m[0], &m[1]);
    let room = one.room(&alice.account, "across", &[bob.id()]).await;
    let to = [alice.verified(), bob.verified()];

    let mut a = one.ws(alice.token()).await;
    let mut b = two.ws(bob.token()).await;
    assert_eq!(
        a.next_where(|f| matches!(f, ServerFrame::Presence { .. }))
            .await,
        ServerFrame::Presence {
            user_id: bob.id(),
            online: true
        },
        "presence from the other relay"
    );
    // A message sent to relay one reaches the socket on relay two, and back.
    let (cid, env) = alice.seal(room, b"across relays", &to);
    a.send(&ClientFrame::Send {
        room_id: room,
        client_id: cid,
        envelope: B64(env.clone()),
    })
    .await;
    match b.next_where(is_message).await {
        ServerFrame::Message {
            seq,
            envelope,
            sender_id,
            ..
        } => {
            assert_eq!((seq, sender_id), (1, alice.id()));
            assert_eq!(envelope.0, env);
        }
        _ => unreachable!(),
    }
    // (Alice's own socket has her message too.)
    assert!(matches!(
        a.next_where(is_message).await,
        ServerFrame::Message { seq: 1, .. }
    ));
    let (cid, env) = bob.seal(room, b"and back", &to);
    b.send(&ClientFrame::Send {
        room_id: room,
        client_id: cid,
        envelope: B64(env),
    })
    .await;
    assert!(matches!(
        a.next_where(is_message).await,
        ServerFrame::Message { seq: 2, .. }
    ));
    // Typing, receipts and room changes.
    b.send(&ClientFrame::Typing {
        room_id: room,
        active: true,
    })
    .await;
    assert_eq!(
        a.next_where(|f| matches!(f, ServerFrame::Typing { .. }))
            .await,
        ServerFrame::Typing {
            room_id: room,
            user_id: bob.id(),
            active: true
        }
    );
    b.send(&ClientFrame::Receipt {
        room_id: room,
        kind: ReceiptKind::Read,
        seq: 1,
    })
    .await;
    assert_eq!(
        a.next_where(|f| matches!(f, ServerFrame::Receipt { .. }))
            .await,
        ServerFrame::Receipt {
            room_id: room,
            user_id: bob.id(),
            kind: ReceiptKind::Read,
            seq: 1
        }
    );
    let r = one
        .req(
            "PATCH",
            &format!("/api/v1/rooms/{room}"),
            Some(alice.token()),
            Some(json!({"name": "renamed"})),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(matches!(
        b.next_where(|f| matches!(f, ServerFrame::Room { .. })).await,
        ServerFrame::Room { room_id, .. } if room_id == room
    ));

    // Relay two stops; Bob's socket ends. Alice goes on posting; Bob
    // reconnects to a third relay with his cursor and misses nothing.
    drop(two);
    let end = b.end(Duration::from_secs(10)).await;
    assert!(matches!(end, WsEnd::Closed(_) | WsEnd::Dropped), "{end:?}");
    for i in 0..5 {
        let (cid, env) = alice.seal(room, format!("while away {i}").as_bytes(), &to);
        one.post_message(alice, room, cid, &env, 201).await;
    }
    let three = spawn_app_with(Backend::Postgres, shared()).await;
    let mut b = three.ws(bob.token()).await;
    b.send(&ClientFrame::Resume {
        cursors: [(room, 2)].into(),
    })
    .await;
    let mut seqs = Vec::new();
    while seqs.len() < 5 {
        if let ServerFrame::Message { seq, .. } = b.next_where(is_message).await {
            seqs.push(seq);
        }
    }
    assert_eq!(seqs, vec![3, 4, 5, 6, 7]);
}

/// `--post-rate`: messages per user per second over REST and sockets together
/// (bursts of twice that); beyond, 429 with `Retry-After`, or `error
/// rate_limited` naming the refused `client_id` on a socket.
async fn posts_are_rate_limited_per_user_over_rest_and_sockets(backend: Backend) {
    let opts = AppOptions {
        post_rate: 1,
        ..AppOptions::default()
    };
    let app = spawn_app_with(backend, opts).await;
    let m = app.members("rate", 2).await;
    let room = app.room(&m[0].account, "r", &[m[1].id()]).await;
    let to = [m[0].verified()];
    // A burst of two passes (one over REST, one over the socket)...
    let (cid, env) = m[0].seal(room, b"1", &to);
    app.post_message(&m[0], room, cid, &env, 201).await;
    let mut a = app.ws(m[0].token()).await;
    let (cid, env) = m[0].seal(room, b"2", &to);
    a.send(&ClientFrame::Send {
        room_id: room,
        client_id: cid,
        envelope: B64(env),
    })
    .await;
    assert!(matches!(
        a.next_where(|f| !is_message(f)).await,
        ServerFrame::Ack { seq: 2, .. }
    ));
    // ...the third is refused on both paths.
    let (cid, env) = m[0].seal(room, b"3", &to);
    a.send(&ClientFrame::Send {
        room_id: room,
        client_id: cid,
        envelope: B64(env.clone()),
    })
    .await;
    assert_eq!(
        error_code(&a.next_where(|f| !is_message(f)).await),
        Some(("rate_limited", Some(cid)))
    );
    let r = app.send(&m[0], room, cid, &env).await;
    r.problem(429, "rate_limited");
    assert!(r.headers.get("retry-after").is_some(), "{r:?}");
    // Another user is not affected.
    let (cid, env) = m[1].seal(room, b"other", &[m[1].verified()]);
    app.post_message(&m[1], room, cid, &env, 201).await;
}

/// A frame of any type with fields drawn at random: ids of real rooms and of
/// none, wrong types, extreme numbers, real and broken envelopes, missing and
/// extra fields, truncated JSON.
fn random_frame(rng: &mut Rng, ids: &[String], envelopes: &[(Uuid, String)]) -> String {
    let id = |rng: &mut Rng| -> serde_json::Value {
        match rng.below(25) {
            0 => json!("nope"),
            1 => json!(7),
            2 => json!(null),
            3 => json!(Uuid::new_v4()),
            _ => json!(rng.pick(ids)),
        }
    };
    let number = |rng: &mut Rng| -> serde_json::Value {
        if rng.chance(85) {
            return rng
                .pick(&[
                    json!(0),
                    json!(1),
                    json!(2),
                    json!(u64::MAX),
                    json!(i64::MAX),
                ])
                .clone();
        }
        rng.pick(&[json!(-1), json!(1e20), json!("3"), json!(null)])
            .clone()
    };
    let ty = *rng.pick(&[
        "auth", "send", "send", "typing", "receipt", "resume", "ping", "what",
    ]);
    let mut f = json!({ "type": ty });
    match ty {
        "auth" => f["token"] = json!(rng.pick(&["not.a.token", "", "x"])),
        "send" => {
            let (cid, env) = rng.pick(envelopes).clone();
            f["room_id"] = id(rng);
            f["client_id"] = if rng.chance(70) { json!(cid) } else { id(rng) };
            f["envelope"] = match rng.below(6) {
                0 => json!("!!not base64!!"),
                1 => json!(B64::from(vec![0u8; rng.below(2_000)])),
                _ => json!(env),
            };
        }
        "typing" => {
            f["room_id"] = id(rng);
            f["active"] = rng
                .pick(&[
                    json!(true),
                    json!(false),
                    json!(true),
                    json!(1),
                    json!("yes"),
                ])
                .clone();
        }
        "receipt" => {
            f["room_id"] = id(rng);
            f["kind"] = json!(rng.pick(&["delivered", "read", "seen"]));
            f["seq"] = number(rng);
        }
        "resume" => {
            let mut cursors = serde_json::Map::new();
            for _ in 0..rng.below(12) {
                let key = match id(rng) {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                cursors.insert(key, number(rng));
            }
            f["cursors"] = serde_json::Value::Object(cursors);
        }
        _ => {}
    }
    if rng.chance(15) {
        let keys: Vec<String> = f.as_object().unwrap().keys().cloned().collect();
        let k = rng.pick(&keys).clone();
        match rng.below(3) {
            0 => {
                f.as_object_mut().unwrap().remove(&k);
            }
            1 => f[k.as_str()] = json!([{}]),
            _ => f["extra"] = json!("\u{202e}"),
        }
    }
    let text = f.to_string();
    if rng.chance(5) {
        let cut = rng.below(text.len());
        return text.chars().take(cut).collect();
    }
    text
}

/// Thousands of random frames on one socket, interleaved with real traffic: the
/// relay answers only frames it knows (every error with a known code, a refused
/// `send` with its `client_id` whenever the frame had a readable one), never
/// closes the socket, still answers a ping, still delivers a real message to
/// another member, and stays healthy.
async fn random_frames_never_break_the_socket_or_the_relay(backend: Backend) {
    let app = spawn_app_with(
        backend,
        AppOptions::default().with_config(|c| {
            c.ws_frame_rate = 1_000_000;
            c.post_rate = 1_000_000;
            c.ws_typing_rate = 1_000_000;
        }),
    )
    .await;
    let mut rng = Rng::from_env("random_frames_never_break_the_socket_or_the_relay");
    let m = app.members("wsfz", 2).await;
    let (alice, bob) = (&m[0], &m[1]);
    let room = app.room(&alice.account, "fuzzed", &[bob.id()]).await;
    let bobs = app.room(&bob.account, "bob's own", &[]).await;
    let to = [alice.verified(), bob.verified()];
    // Envelopes with their client ids: Alice's to her room (each stored once, then
    // answered as a retry), and Bob's to his own room.
    let seal = |who: &sotto_tests::Member, room: Uuid, to: &[_]| {
        let (cid, env) = who.seal(room, b"fuzz", to);
        (cid, sotto_tests::b64(&env))
    };
    let envelopes: Vec<(Uuid, String)> = (0..50)
        .map(|_| seal(alice, room, &to))
        .chain([seal(bob, bobs, &[bob.verified()])])
        .collect();
    let ids = vec![room.to_string(), bobs.to_string(), alice.id().to_string()];
    let mut a = app.ws(alice.token()).await;
    let mut b = app.ws(bob.token()).await;
    let mut errors = std::collections::BTreeMap::<String, usize>::new();
    let mut answered = 0usize;
    let mut drain = |f: ServerFrame, errors: &mut std::collections::BTreeMap<String, usize>| {
        if let ServerFrame::Error { code, .. } = &f {
            assert!(
                !matches!(code.as_str(), "internal" | "unavailable"),
                "the relay failed on a frame: {f:?}"
            );
            *errors.entry(code.clone()).or_default() += 1;
        }
        if matches!(f, ServerFrame::Ack { .. }) {
            *errors.entry("(ack)".into()).or_default() += 1;
        }
        answered += 1;
    };
    for i in 0..3_000 {
        let text = random_frame(&mut rng, &ids, &envelopes);
        a.try_send_text(&text)
            .await
            .unwrap_or_else(|e| panic!("frame {i} could not be sent: {e}; it was {text}"));
        // Read what is there without waiting (a socket that is not read would be
        // closed as a slow consumer, which is not what this tests).
        while let Some(f) = a.try_next(Duration::ZERO).await {
            drain(f, &mut errors);
        }
        // Bob keeps reading too.
        while b.try_next(Duration::ZERO).await.is_some() {}
    }
    // Still the same socket, answering in order.
    a.send(&ClientFrame::Ping).await;
    loop {
        let f = a.next().await;
        if matches!(f, ServerFrame::Pong) {
            break;
        }
        drain(f, &mut errors);
    }
    eprintln!("{answered} frames answered; acks and errors by code: {errors:?}");
    assert!(
        errors.get("invalid_frame").copied().unwrap_or(0) > 100,
        "{errors:?}"
    );
    assert!(errors.get("(ack)").copied().unwrap_or(0) > 20, "{errors:?}");
    // Real traffic still flows both ways.
    let (cid, env) = alice.seal(room, b"after the storm", &to);
    a.send(&ClientFrame::Send {
        room_id: room,
        client_id: cid,
        envelope: env.into(),
    })
    .await;
    let ServerFrame::Ack { id: sent, .. } = a
        .next_where(|f| matches!(f, ServerFrame::Ack { client_id, .. } if *client_id == cid))
        .await
    else {
        unreachable!()
    };
    b.next_where(|f| matches!(f, ServerFrame::Message { id, .. } if *id == sent))
        .await;
    assert_eq!(app.get("/health", None).await.status, 200);
}
