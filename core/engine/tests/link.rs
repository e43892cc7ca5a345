//! The live connection's state machine, driven by hand with a fake clock: the
//! handshake, the step order (stored before shown), acks and their timeout,
//! back-off, keep-alive, receipts, stop during a step, late events of an old
//! socket.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use sotto_core::api::{ClientFrame, ReceiptKind, RoomChange, ServerFrame};
use sotto_core::encoding::B64;
use sotto_engine::feed::Seen;
use sotto_engine::link::{Ack, Conn, Link, LinkState, Output, PrepareFailed, Settle};
use sotto_engine::policy;
use uuid::Uuid;

const ME: Uuid = Uuid::from_u128(1);
const MY_DEVICE: Uuid = Uuid::from_u128(2);
const BOB: Uuid = Uuid::from_u128(3);
const BOB_DEVICE: Uuid = Uuid::from_u128(4);
const ROOM: Uuid = Uuid::from_u128(10);

fn link() -> Link<&'static str> {
    Link::new(ME, MY_DEVICE, 5_000, Box::new(|| u32::MAX / 2))
}

fn drain(link: &mut Link<&'static str>, now: u64) -> Vec<Output<&'static str>> {
    std::iter::from_fn(|| link.poll(now)).collect()
}

/// Settles ROOM's message `seq` as shown with `event` (no history item).
fn shown(link: &mut Link<&'static str>, seq: u64, event: &'static str) {
    link.settle(
        ROOM,
        seq,
        Settle::Handled {
            kept: None,
            event: Some(event),
        },
    );
}

fn text(frame: &ServerFrame) -> String {
    serde_json::to_string(frame).unwrap()
}

fn message(seq: u64) -> String {
    text(&ServerFrame::Message {
        room_id: ROOM,
        id: Uuid::from_u128(1000 + u128::from(seq)),
        seq,
        sender_id: BOB,
        device_id: BOB_DEVICE,
        envelope: B64(vec![seq as u8]),
        created_at: "2026-12-07T00:00:00Z".into(),
    })
}

/// Connects at `now` with ROOM's stored cursor at `cursor`; returns the attempt.
fn online(link: &mut Link<&'static str>, now: u64, cursor: u64) -> Conn {
    link.start(now);
    let out = drain(link, now);
    assert!(matches!(out[0], Output::State(LinkState::Connecting)));
    let Output::Prepare(conn) = out[1] else {
        panic!("{out:?}")
    };
    link.prepared(conn, now, Ok((vec![ROOM], vec![(ROOM, cursor)])));
    assert!(matches!(drain(link, now)[..], [Output::Open(c)] if c == conn));
    link.opened(conn, now);
    assert!(matches!(drain(link, now)[..], [Output::Authenticate(c)] if c == conn));
    link.received(
        conn,
        now,
        &text(&ServerFrame::Ready {
            user_id: ME,
            device_id: Some(MY_DEVICE),
        }),
    );
    let out = drain(link, now);
    match &out[..] {
        [
            Output::Send(ClientFrame::Resume { cursors }),
            Output::Online(c),
            Output::State(LinkState::Online),
        ] => {
            assert_eq!(*c, conn);
            assert_eq!(cursors.get(&ROOM), Some(&cursor));
        }
        other => panic!("{other:?}"),
    }
    assert!(link.is_online());
    conn
}

#[test]
fn a_step_is_stored_before_its_events_are_shown_and_its_receipt_sent() {
    let mut link = link();
    let conn = online(&mut link, 0, 0);
    link.received(conn, 1, &message(1));
    link.received(
        conn,
        1,
        &text(&ServerFrame::Typing {
            room_id: ROOM,
            user_id: BOB,
            active: true,
        }),
    );
    link.received(conn, 1, &message(2));
    // The first message goes out to be opened; the link waits.
    let out = drain(&mut link, 1);
    let [Output::Receive(m)] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!((m.seq, m.envelope.as_slice()), (1, &[1u8][..]));
    assert_eq!(link.deadline(), None, "no timer fires during a step");
    link.settle(
        ROOM,
        1,
        Settle::Handled {
            kept: Some(vec![9]),
            event: Some("one"),
        },
    );
    let out = drain(&mut link, 1);
    let [Output::Receive(m)] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(m.seq, 2);
    shown(&mut link, 2, "two");
    // The step's changes: both cursors in one batch, the history item.
    let out = drain(&mut link, 1);
    let [Output::Store(changes)] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(changes.cursors, vec![(ROOM, 2)]);
    assert_eq!(changes.history_put, vec![(ROOM, 1, vec![9])]);
    assert!(
        drain(&mut link, 1).is_empty(),
        "nothing is shown before the store"
    );
    link.stored(1, Ok(()));
    let out = drain(&mut link, 1);
    assert!(
        matches!(
            &out[..],
            [
                Output::App("one"),
                Output::Show(ServerFrame::Typing { .. }),
                Output::App("two")
            ]
        ),
        "{out:?}"
    );
    // The receipt goes out on the batching timer, once.
    let due = link.deadline().unwrap();
    assert_eq!(due, 1 + policy::RECEIPT_EVERY_MS);
    let out = drain(&mut link, due);
    assert!(
        matches!(
            &out[..],
            [Output::Send(ClientFrame::Receipt {
                kind: ReceiptKind::Delivered,
                seq: 2,
                ..
            })]
        ),
        "{out:?}"
    );
    assert_eq!(link.deadline(), Some(policy::PING_EVERY_MS));
}

#[test]
fn a_message_that_cannot_be_checked_ends_the_connection_without_moving_its_cursor() {
    let mut link = link();
    let conn = online(&mut link, 0, 4);
    link.received(conn, 1, &message(5));
    link.received(conn, 1, &message(6));
    assert!(matches!(drain(&mut link, 1)[..], [Output::Receive(_)]));
    link.settle(ROOM, 5, Settle::Later("keys did not load".into()));
    // Nothing to store: the step ends, the connection with it.
    let out = drain(&mut link, 1);
    match &out[..] {
        [
            Output::Close(c),
            Output::State(LinkState::Offline {
                reason,
                retry_in_ms: Some(d),
            }),
        ] => {
            assert_eq!(*c, conn);
            assert_eq!(reason, "keys did not load");
            assert_eq!(*d, policy::reconnect_delay_ms(1, u32::MAX / 2));
        }
        other => panic!("{other:?}"),
    }
    // The next attempt resumes from 4, not 5.
    let later = link.deadline().unwrap();
    let out = drain(&mut link, later);
    let Output::Prepare(next) = out[1] else {
        panic!("{out:?}")
    };
    link.prepared(next, later, Ok((vec![ROOM], vec![(ROOM, 4)])));
    link.opened(next, later);
    drain(&mut link, later);
    link.received(
        next,
        later,
        &text(&ServerFrame::Ready {
            user_id: ME,
            device_id: None,
        }),
    );
    let out = drain(&mut link, later);
    let Output::Send(ClientFrame::Resume { cursors }) = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!(cursors.get(&ROOM), Some(&4));
}

#[test]
fn a_message_settled_later_is_not_stored_as_seen() {
    let mut link = link();
    let conn = online(&mut link, 0, 4);
    link.received(conn, 1, &message(5));
    link.received(conn, 1, &message(6));
    assert!(matches!(drain(&mut link, 1)[..], [Output::Receive(_)]));
    let (five, six) = (Uuid::from_u128(55), Uuid::from_u128(66));
    assert_eq!(link.seen(BOB, five, ROOM, 5, None), Seen::New);
    shown(&mut link, 5, "five");
    assert!(matches!(drain(&mut link, 1)[..], [Output::Receive(_)]));
    // Opened and checked against replays, then a signer's keys did not load.
    assert_eq!(link.seen(BOB, six, ROOM, 6, None), Seen::New);
    link.settle(ROOM, 6, Settle::Later("keys did not load".into()));
    let out = drain(&mut link, 1);
    let Some(Output::Store(changes)) = out.first() else {
        panic!("{out:?}")
    };
    assert_eq!(
        changes.seen,
        vec![(BOB, five, ROOM, 5)],
        "six comes again, unseen"
    );
    assert_eq!(changes.cursors, vec![(ROOM, 5)]);
}

#[test]
fn a_failed_store_drops_the_steps_events_and_reconnects() {
    let mut link = link();
    let conn = online(&mut link, 0, 0);
    link.received(conn, 1, &message(1));
    drain(&mut link, 1);
    shown(&mut link, 1, "one");
    assert!(matches!(drain(&mut link, 1)[..], [Output::Store(_)]));
    link.stored(1, Err("disk full".into()));
    let out = drain(&mut link, 1);
    assert!(
        matches!(&out[..], [Output::Close(_), Output::State(LinkState::Offline { reason, .. })] if reason == "store: disk full"),
        "{out:?}"
    );
}

#[test]
fn acks_route_to_their_send_and_time_out_to_http() {
    let mut link = link();
    let conn = online(&mut link, 0, 0);
    let (a, b, c) = (
        Uuid::from_u128(51),
        Uuid::from_u128(52),
        Uuid::from_u128(53),
    );
    let frame = |client_id| ClientFrame::Send {
        room_id: ROOM,
        client_id,
        envelope: B64(vec![1]),
    };
    assert!(link.send_message(10, a, frame(a)));
    assert!(link.send_message(10, b, frame(b)));
    assert!(link.send_message(20, c, frame(c)));
    assert_eq!(drain(&mut link, 20).len(), 3);
    link.received(
        conn,
        30,
        &text(&ServerFrame::Ack {
            client_id: a,
            id: Uuid::from_u128(99),
            seq: 7,
        }),
    );
    link.received(
        conn,
        30,
        &text(&ServerFrame::Error {
            code: "rate_limited".into(),
            detail: None,
            client_id: Some(b),
            retry_after_ms: Some(500),
        }),
    );
    let out = drain(&mut link, 30);
    assert!(
        matches!(&out[0], Output::Acked { client_id, ack: Ack::Stored { seq: 7, .. } } if *client_id == a),
        "{out:?}"
    );
    assert!(
        matches!(&out[1], Output::Acked { client_id, ack: Ack::Refused { retry_after_ms: Some(500), .. } } if *client_id == b),
        "{out:?}"
    );
    assert_eq!(link.deadline(), Some(20 + policy::ACK_TIMEOUT_MS));
    let out = drain(&mut link, 20 + policy::ACK_TIMEOUT_MS);
    assert!(
        matches!(&out[..], [Output::Acked { client_id, ack: Ack::Offline }] if *client_id == c),
        "{out:?}"
    );
    // An ack nobody waits for, and an error nobody waits for (shown).
    link.received(
        conn,
        40,
        &text(&ServerFrame::Ack {
            client_id: c,
            id: Uuid::from_u128(98),
            seq: 8,
        }),
    );
    link.received(
        conn,
        40,
        &text(&ServerFrame::Error {
            code: "bad_frame".into(),
            detail: None,
            client_id: Some(c),
            retry_after_ms: None,
        }),
    );
    let out = drain(&mut link, 40 + policy::ACK_TIMEOUT_MS);
    assert!(
        matches!(&out[..], [Output::Show(ServerFrame::Error { .. })]),
        "{out:?}"
    );
}

#[test]
fn a_lost_socket_sends_waiting_messages_to_http_and_backs_off_more_each_time() {
    let mut link = link();
    let mut now = 0;
    let conn = online(&mut link, now, 0);
    let a = Uuid::from_u128(51);
    assert!(link.send_message(now, a, ClientFrame::Ping));
    drain(&mut link, now);
    link.closed(conn, now, "reset".into());
    let out = drain(&mut link, now);
    assert!(matches!(&out[0], Output::Close(_)), "{out:?}");
    assert!(
        matches!(
            &out[1],
            Output::Acked {
                ack: Ack::Offline,
                ..
            }
        ),
        "{out:?}"
    );
    assert!(
        !link.send_message(now, a, ClientFrame::Ping),
        "offline: HTTP"
    );
    // Failing attempts wait longer each time; the old socket's events are ignored.
    let mut last = out;
    let mut delays = Vec::new();
    for _ in 0..4 {
        let Some(Output::State(LinkState::Offline {
            retry_in_ms: Some(d),
            ..
        })) = link_last_state(&last)
        else {
            panic!("{last:?}")
        };
        delays.push(d);
        now = link.deadline().unwrap();
        let out = drain(&mut link, now);
        let Output::Prepare(next) = out[1] else {
            panic!("{out:?}")
        };
        link.closed(conn, now, "late close of the old socket".into());
        assert!(drain(&mut link, now).is_empty());
        link.prepared(next, now, Err(PrepareFailed::Retry("relay down".into())));
        last = drain(&mut link, now);
    }
    assert!(delays.windows(2).all(|w| w[1] > w[0]), "{delays:?}");
}

fn link_last_state(out: &[Output<&'static str>]) -> Option<Output<&'static str>> {
    out.iter().rev().find_map(|o| match o {
        Output::State(s) => Some(Output::State(s.clone())),
        _ => None,
    })
}

#[test]
fn the_first_attempt_after_a_lost_stable_connection_waits_the_least() {
    let mut link = link();
    let conn = online(&mut link, 0, 0);
    // Kept alive by pongs past the stable time.
    let mut now = 0;
    while now < policy::STABLE_AFTER_MS * 2 {
        now = link.deadline().unwrap();
        let out = drain(&mut link, now);
        assert!(
            matches!(&out[..], [Output::Send(ClientFrame::Ping)]),
            "{out:?}"
        );
        link.received(conn, now, &text(&ServerFrame::Pong));
    }
    link.closed(conn, now, "relay restarted".into());
    let out = drain(&mut link, now);
    assert!(
        matches!(link_last_state(&out), Some(Output::State(LinkState::Offline { retry_in_ms: Some(d), .. })) if d == policy::reconnect_delay_ms(1, u32::MAX / 2)),
        "{out:?}"
    );
}

#[test]
fn a_silent_relay_is_left_after_three_ping_periods() {
    let mut link = link();
    let _conn = online(&mut link, 0, 0);
    let mut pings = 0;
    loop {
        let now = link.deadline().unwrap();
        let out = drain(&mut link, now);
        match &out[..] {
            [Output::Send(ClientFrame::Ping)] => pings += 1,
            [
                Output::Close(_),
                Output::State(LinkState::Offline { reason, .. }),
            ] => {
                assert_eq!(reason, "no answer from the relay");
                assert!(now > policy::PING_EVERY_MS * 3);
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(pings, 3);
}

#[test]
fn a_handshake_that_stalls_or_answers_wrong_is_retried() {
    let mut link = link();
    link.start(0);
    let out = drain(&mut link, 0);
    let Output::Prepare(conn) = out[1] else {
        panic!()
    };
    link.prepared(conn, 0, Ok((vec![], vec![])));
    drain(&mut link, 0);
    // The socket never opens: the connect timeout given at construction.
    assert_eq!(link.deadline(), Some(5_000));
    let out = drain(&mut link, 5_000);
    assert!(
        matches!(&out[..], [Output::Close(_), Output::State(LinkState::Offline { reason, .. })] if reason == "connect: timed out"),
        "{out:?}"
    );
    // Next: `ready` for another user.
    let now = link.deadline().unwrap();
    let out = drain(&mut link, now);
    let Output::Prepare(conn) = out[1] else {
        panic!()
    };
    link.prepared(conn, now, Ok((vec![], vec![])));
    link.opened(conn, now);
    drain(&mut link, now);
    link.received(
        conn,
        now,
        &text(&ServerFrame::Ready {
            user_id: BOB,
            device_id: None,
        }),
    );
    let out = drain(&mut link, now);
    assert!(
        matches!(&out[..], [Output::Close(_), Output::State(LinkState::Offline { reason, .. })] if reason.starts_with("expected ready")),
        "{out:?}"
    );
    assert!(!link.is_online());
}

#[test]
fn logged_out_stops_for_good() {
    let mut link = link();
    link.start(0);
    let out = drain(&mut link, 0);
    let Output::Prepare(conn) = out[1] else {
        panic!()
    };
    link.prepared(conn, 0, Err(PrepareFailed::LoggedOut));
    let out = drain(&mut link, 0);
    assert!(
        matches!(
            &out[..],
            [
                Output::State(LinkState::Offline {
                    retry_in_ms: None,
                    ..
                }),
                Output::LoggedOut
            ]
        ),
        "{out:?}"
    );
    assert!(!link.is_active());
    assert_eq!(link.deadline(), None);
}

#[test]
fn stop_during_a_step_lets_it_finish_then_sends_the_receipts_and_closes() {
    let mut link = link();
    let conn = online(&mut link, 0, 0);
    link.received(conn, 1, &message(1));
    link.received(conn, 1, &message(2));
    drain(&mut link, 1);
    link.stop(2);
    assert!(link.is_active());
    shown(&mut link, 1, "one");
    // The step ends at the stop: message 2 is left for the next connection.
    let out = drain(&mut link, 2);
    let [Output::Store(changes)] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(changes.cursors, vec![(ROOM, 1)]);
    link.stored(2, Ok(()));
    let out = drain(&mut link, 2);
    match &out[..] {
        [
            Output::App("one"),
            Output::Send(ClientFrame::Receipt { seq: 1, .. }),
            Output::Close(c),
            Output::State(LinkState::Offline {
                retry_in_ms: None, ..
            }),
        ] => assert_eq!(*c, conn),
        other => panic!("{other:?}"),
    }
    assert!(!link.is_active());
    assert!(!link.send(ClientFrame::Ping));
}

#[test]
fn a_gap_is_resumed_after_the_step_and_a_joined_room_is_followed() {
    let mut link = link();
    let conn = online(&mut link, 0, 0);
    let other = Uuid::from_u128(11);
    link.received(conn, 1, &message(3));
    link.received(
        conn,
        1,
        &text(&ServerFrame::Room {
            room_id: other,
            change: RoomChange::MemberAdded,
        }),
    );
    let out = drain(&mut link, 1);
    match &out[..] {
        [
            Output::RoomChanged {
                room_id,
                change: RoomChange::MemberAdded,
            },
            Output::Show(ServerFrame::Room { .. }),
            Output::Send(ClientFrame::Resume { cursors: gap }),
            Output::Send(ClientFrame::Resume { cursors: joined }),
        ] => {
            assert_eq!(*room_id, other);
            assert_eq!(gap.get(&ROOM), Some(&0));
            assert_eq!(joined.get(&other), Some(&0));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_close_is_handled_after_the_frames_before_it() {
    let mut link = link();
    let conn = online(&mut link, 0, 0);
    link.received(conn, 1, &message(1));
    link.closed(conn, 1, "bye".into());
    drain(&mut link, 1);
    shown(&mut link, 1, "one");
    assert!(matches!(drain(&mut link, 1)[..], [Output::Store(_)]));
    link.stored(1, Ok(()));
    let out = drain(&mut link, 1);
    assert!(
        matches!(&out[..], [Output::App("one"), Output::Close(_), Output::State(LinkState::Offline { reason, .. })] if reason == "bye"),
        "{out:?}"
    );
}

#[test]
fn a_long_step_is_not_the_relays_silence() {
    let mut link = link();
    let conn = online(&mut link, 0, 0);
    link.received(conn, 1, &message(1));
    drain(&mut link, 1);
    // Opening it takes 70 s (a slow device fetch); nothing is read meanwhile.
    let later = 70_000;
    shown(&mut link, 1, "one");
    drain(&mut link, later);
    link.stored(later, Ok(()));
    let out = drain(&mut link, later);
    assert!(
        !out.iter().any(|o| matches!(o, Output::Close(_))),
        "the connection survives: {out:?}"
    );
    assert!(link.is_online());
    let next = link.deadline().unwrap();
    let out = drain(&mut link, next);
    assert!(
        matches!(
            &out[..],
            [Output::Send(ClientFrame::Ping)] | [Output::Send(ClientFrame::Receipt { .. })]
        ),
        "{out:?}"
    );
}

#[test]
fn a_frame_the_driver_writes_itself_still_has_its_ack_awaited() {
    let mut link = link();
    assert_eq!(link.live(), None);
    assert!(!link.expect_ack(0, Uuid::from_u128(7)), "offline: HTTP");
    let conn = online(&mut link, 0, 0);
    assert_eq!(link.live(), Some(conn));
    assert!(link.expect_ack(5, Uuid::from_u128(7)));
    assert!(
        drain(&mut link, 5).is_empty(),
        "nothing queued: the driver sent it"
    );
    let out = drain(&mut link, 5 + policy::ACK_TIMEOUT_MS);
    assert!(
        matches!(
            &out[..],
            [Output::Acked {
                ack: Ack::Offline,
                ..
            }]
        ),
        "{out:?}"
    );
    link.stop(6 + policy::ACK_TIMEOUT_MS);
    assert_eq!(link.live(), None);
}
