//! SDK overhead: end-to-end `send` → the peer's `Event::Message` for a 1 KiB
//! text, in a room of 2 and of 50 devices, against the sum of its parts
//! measured in the same run on the same relay: `seal` for the same devices,
//! the relay round trip of a sealed envelope between two raw WebSockets, and
//! `open`, the two paths interleaved round by round (see `measure`). Then a catch-up of 10,000 messages stored while the receiver was
//! offline, per message, against `open` and the relay's own delivery.
//! Run by `scripts/bench-sdk` (release build, relay process on loopback).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand_core::SeedableRng;
use sotto_client::sotto_core::api::{ClientFrame, ServerFrame};
use sotto_client::sotto_core::backup::{self, DeviceSecrets};
use sotto_client::sotto_core::envelope::{self, Header, OpenContext, Recipient};
use sotto_client::sotto_core::keys::VerifiedDevice;
use sotto_client::sotto_core::suite::Suite;
use sotto_client::sotto_engine::vault::{HistoryItem, HistoryTrust, StoreKey};
use sotto_client::{
    Changes, Client, Content, DeviceSetup, Event, EventStream, Session, SessionOptions,
    SqliteStore, Store,
};
use sotto_tests::process::RelayProcess;
use sotto_tests::{Backend, Ws};
use uuid::Uuid;
use zeroize::Zeroizing;

const PASSWORD: &str = "a long enough bench passphrase";
const ROUNDS: usize = 300;

/// Measured rounds per room: `ROUNDS`, or `SOTTO_BENCH_ROUNDS` (e.g. longer,
/// under a profiler).
fn rounds() -> usize {
    std::env::var("SOTTO_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(ROUNDS)
        // (At least one round in each sixth.)
        .max(6)
}

async fn session(url: &str, name: &str, dir: &std::path::Path) -> Session {
    let client = Client::new(url).unwrap();
    client.login(name, PASSWORD).await.unwrap();
    Session::open(
        client,
        Arc::new(SqliteStore::open(dir.join(format!("{name}.db"))).unwrap()),
        SessionOptions {
            store_passphrase: Zeroizing::new(PASSWORD.into()),
            setup: DeviceSetup::New { rsa: None },
            device_name: None,
        },
    )
    .await
    .unwrap()
}

async fn online(s: &Session) -> EventStream {
    let mut events = s.events().unwrap();
    s.connect();
    loop {
        if let Some(Event::Connection(sotto_client::Connection::Online)) = events.next().await {
            return events;
        }
    }
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn p99(v: &mut [Duration]) -> Duration {
    v.sort();
    v[(v.len() * 99 / 100).min(v.len() - 1)]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

struct Parts {
    seal: Duration,
    relay: Duration,
    open: Duration,
    sdk: Duration,
    sdk_p99: Duration,
    /// SDK / sum of parts in each sixth of the rounds (medians of that sixth).
    blocks: Vec<f64>,
}

/// The rounds in six blocks, in order: each block's SDK median over the sum of
/// its parts' medians (how much the ratio moves within one run).
fn block_ratios(
    sdk: &[Duration],
    seal: &[Duration],
    rtt: &[Duration],
    open: &[Duration],
) -> Vec<f64> {
    let n = sdk.len() / 6;
    (0..6)
        .map(|b| {
            let part = |v: &[Duration]| median(&mut v[b * n..(b + 1) * n].to_vec());
            part(sdk).as_secs_f64() / (part(seal) + part(rtt) + part(open)).as_secs_f64()
        })
        .collect()
}

/// A session's device secrets, through a key backup: the only door the SDK
/// opens to them.
async fn secrets(s: &Session) -> DeviceSecrets {
    let blob = s.export_backup(PASSWORD).await.unwrap();
    backup::import_with_passphrase(&blob, PASSWORD.as_bytes()).unwrap()
}

/// Every active device of `members`, verified (the recipients of the parts'
/// own `seal`).
async fn devices_of(s: &Session, members: &[Uuid]) -> Vec<VerifiedDevice> {
    let keys = s.client().query_keys(members, false).await.unwrap();
    keys.devices
        .values()
        .flatten()
        .map(|d| d.bundle.verify().unwrap())
        .collect()
}

/// The header of a new message of `a` in `room` (a fresh client message id).
fn header_of(room: Uuid, a: &DeviceSecrets) -> Header {
    Header {
        room_id: room,
        sender_user_id: a.user_id,
        sender_device_id: a.device_id,
        client_message_id: Uuid::now_v7(),
        timestamp_ms: 0,
    }
}

/// Takes frames off a raw socket until none is waiting (untimed): what the
/// relay sent it while the other path was measured.
async fn drain(ws: &mut Ws) {
    while ws.try_next(Duration::from_millis(1)).await.is_some() {}
}

/// Waits (untimed) until `events` showed the message `client_id`.
async fn shown(events: &mut EventStream, client_id: Uuid) {
    let wait = async {
        loop {
            match events.next().await.unwrap() {
                Event::Message(m) if m.client_id == client_id => return,
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .unwrap_or_else(|_| panic!("message {client_id} not shown within 10 s"));
}

/// Waits (untimed) until `s` handled its room's messages up to `seq` (its
/// cursor there moved past it): a session's own message comes back to it and
/// moves its cursor, a store write, which must not overlap the next timed
/// round.
async fn handled(s: &Session, room: Uuid, seq: u64) {
    let until = Instant::now() + Duration::from_secs(10);
    while s.cursors().unwrap().get(&room).copied().unwrap_or(0) < seq {
        assert!(Instant::now() < until, "cursor not at {seq} within 10 s");
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

/// The SDK path and the parts' path, interleaved round by round, so that
/// both see the same machine (these VMs' speed drifts over a run). Neither
/// is timed while the other works: after an SDK round the raw sockets are
/// drained of its frames, and after a raw round both SDK sessions have
/// handled the raw message (they receive it too: it is sealed to their
/// devices) before the next round starts.
async fn measure(
    alice: &Session,
    bob: &Session,
    bob_events: &mut EventStream,
    room: Uuid,
) -> Parts {
    let text = "x".repeat(1024);
    // The parts: seal for the same devices; the sealed envelope from one raw
    // socket to another through the relay; open.
    let members: Vec<Uuid> = alice
        .client()
        .get_room(room)
        .await
        .unwrap()
        .members
        .iter()
        .map(|m| m.user_id)
        .collect();
    let devices = devices_of(alice, &members).await;
    let recipients: Vec<Recipient<'_>> = devices
        .iter()
        .map(|d| Recipient::new(d, Suite::X25519))
        .collect();
    let a = secrets(alice).await;
    let b = secrets(bob).await;
    let alice_device = alice.bundle().unwrap().verify().unwrap();
    let content = serde_json::to_vec(&serde_json::json!({"type": "text", "body": text})).unwrap();
    let ws_url = alice.client().ws_url();
    let mut wa = Ws::connect_to(&ws_url, None)
        .await
        .authenticate(&alice.client().access_token().await.unwrap())
        .await;
    let mut wb = Ws::connect_to(&ws_url, None)
        .await
        .authenticate(&bob.client().access_token().await.unwrap())
        .await;
    let (mut sdk, mut seal, mut open, mut rtt) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..rounds() + 20 {
        // The SDK, end to end.
        let t0 = Instant::now();
        let sent = alice.send_text(room, &text).await.unwrap();
        shown(bob_events, sent.client_id).await;
        let t_sdk = t0.elapsed();
        wb.next_where(|f| matches!(f, ServerFrame::Message { id, .. } if *id == sent.id))
            .await;
        handled(alice, room, sent.seq).await;
        drain(&mut wa).await;

        // The parts.
        let header = header_of(room, &a);
        let t0 = Instant::now();
        let bytes = envelope::seal(&content, &header, &recipients, &a.device)
            .unwrap()
            .to_bytes();
        let t_seal = t0.elapsed();
        let t1 = Instant::now();
        wa.send(&ClientFrame::Send {
            room_id: room,
            client_id: header.client_message_id,
            envelope: bytes.clone().into(),
        })
        .await;
        let got = wb
            .next_where(|f| matches!(f, ServerFrame::Message { sender_id, envelope, .. } if *sender_id == a.user_id && envelope.as_bytes() == bytes.as_slice()))
            .await;
        let t_rtt = t1.elapsed();
        let ServerFrame::Message {
            envelope: env, seq, ..
        } = got
        else {
            unreachable!()
        };
        let t2 = Instant::now();
        let ctx = OpenContext {
            room_id: room,
            sender: &alice_device,
        };
        envelope::open(env.as_bytes(), b.device_id, &b.device, &ctx).unwrap();
        let t_open = t2.elapsed();
        // Both sessions handle the raw message before the next round: Bob
        // shows it; Alice's session takes it for its own device's (not
        // opened, not shown) and moves its cursor past it.
        shown(bob_events, header.client_message_id).await;
        handled(alice, room, seq).await;
        drain(&mut wa).await;
        if i >= 20 {
            sdk.push(t_sdk);
            seal.push(t_seal);
            rtt.push(t_rtt);
            open.push(t_open);
        }
    }
    let blocks = block_ratios(&sdk, &seal, &rtt, &open);
    let sdk_p99 = p99(&mut sdk);
    Parts {
        seal: median(&mut seal),
        relay: median(&mut rtt),
        open: median(&mut open),
        sdk: median(&mut sdk),
        sdk_p99,
        blocks,
    }
}

const CATCH_UP: usize = 10_000;

/// Catch-up: `CATCH_UP` messages (1 KiB, sealed to Bob's and Alice's
/// devices) stored while Bob's session is offline, then Bob reconnects: the
/// time until his session yielded the last one as `Event::Message`, per
/// message, against the core's own `open` of the same envelopes and against
/// a raw socket's resume of the same messages (the relay's delivery), each
/// measured in the same run.
async fn catch_up(alice: &Session, bob: &Session, bob_events: &mut EventStream, room: Uuid) {
    let a = secrets(alice).await;
    let b = secrets(bob).await;
    let alice_device = alice.bundle().unwrap().verify().unwrap();
    let devices = devices_of(alice, &[alice.user_id(), bob.user_id()]).await;
    let recipients: Vec<Recipient<'_>> = devices
        .iter()
        .map(|d| Recipient::new(d, Suite::X25519))
        .collect();
    let content =
        serde_json::to_vec(&serde_json::json!({"type": "text", "body": "y".repeat(1024)})).unwrap();
    let envelopes: Vec<(Uuid, Vec<u8>)> = (0..CATCH_UP)
        .map(|_| {
            let header = header_of(room, &a);
            let bytes = envelope::seal(&content, &header, &recipients, &a.device)
                .unwrap()
                .to_bytes();
            (header.client_message_id, bytes)
        })
        .collect();

    // The core's own open of every envelope, as Bob's device.
    let ctx = OpenContext {
        room_id: room,
        sender: &alice_device,
    };
    let t = Instant::now();
    for (_, bytes) in &envelopes {
        envelope::open(bytes, b.device_id, &b.device, &ctx).unwrap();
    }
    let open = t.elapsed();

    // Bob goes offline; Alice stores every message through a raw socket.
    bob.disconnect().await;
    let start_seq = alice.client().get_room(room).await.unwrap().room.last_seq;
    let ws_url = alice.client().ws_url();
    let mut wa = Ws::connect_to(&ws_url, None)
        .await
        .authenticate(&alice.client().access_token().await.unwrap())
        .await;
    for (client_id, bytes) in &envelopes {
        wa.send(&ClientFrame::Send {
            room_id: room,
            client_id: *client_id,
            envelope: bytes.clone().into(),
        })
        .await;
        wa.next_where(|f| matches!(f, ServerFrame::Ack { client_id: c, .. } if c == client_id))
            .await;
    }
    let last_seq = alice.client().get_room(room).await.unwrap().room.last_seq;

    // The relay's delivery alone: a raw socket of Bob resumes from the same cursor.
    let mut wb = Ws::connect_to(&ws_url, None)
        .await
        .authenticate(&bob.client().access_token().await.unwrap())
        .await;
    let t = Instant::now();
    wb.send(&ClientFrame::Resume {
        cursors: [(room, start_seq)].into_iter().collect(),
    })
    .await;
    wb.next_where(|f| matches!(f, ServerFrame::Message { seq, .. } if *seq == last_seq))
        .await;
    let delivery = t.elapsed();
    drop(wb);

    // Bob's session: reconnect, resume from its stored cursor, open, check,
    // store (seen id, cursor, local history) and yield every message.
    let t = Instant::now();
    bob.connect();
    let mut got = 0usize;
    loop {
        if let Event::Message(m) = bob_events.next().await.unwrap()
            && m.room_id == room
            && m.seq > start_seq
        {
            got += 1;
            if m.seq == last_seq {
                break;
            }
        }
    }
    let sdk = t.elapsed();
    assert_eq!(got, CATCH_UP, "every message once");

    // What the SDK does per message besides `open`, each alone on a fresh
    // store file: the replay lookup (a read), the sealing of the history
    // item, and the store's share of a step: one `apply` per 256 messages
    // (cursor, seen id, history item), as the SDK's steps are at most 256
    // frames.
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("parts.db")).unwrap();
    let t = Instant::now();
    for (client_id, _) in &envelopes {
        assert!(store.seen_at(a.user_id, *client_id).unwrap().is_none());
    }
    let seen = t.elapsed();
    let mut rng = rand_chacha::ChaCha20Rng::from_seed([1; 32]);
    let key = StoreKey::generate(&mut rng).history();
    let item = |seq: u64| HistoryItem {
        room_id: room,
        id: Uuid::now_v7(),
        seq,
        sender_id: a.user_id,
        sender_device: a.device_id,
        client_id: Uuid::now_v7(),
        sent_at_ms: 0,
        received_at: "2026-12-06T12:00:00.000Z".into(),
        trust: HistoryTrust::Unverified,
        content: Content::text("y".repeat(1024)),
    };
    let items: Vec<HistoryItem> = (1..=CATCH_UP as u64).map(item).collect();
    let t = Instant::now();
    let sealed: Vec<Vec<u8>> = items
        .iter()
        .map(|i| key.seal(i, &mut rng).unwrap())
        .collect();
    let seal_history = t.elapsed();
    let mut steps = Vec::new();
    let mut step = Changes::default();
    for (i, (sealed, (client_id, _))) in sealed.into_iter().zip(&envelopes).enumerate() {
        let seq = i as u64 + 1;
        step.cursors = vec![(room, seq)];
        step.seen.push((a.user_id, *client_id, room, seq));
        step.history_put.push((room, seq, sealed));
        if step.history_put.len() == 256 {
            steps.push(std::mem::take(&mut step));
        }
    }
    steps.push(step);
    let t = Instant::now();
    for step in &steps {
        store.apply(step).unwrap();
    }
    let apply = t.elapsed();
    let per = |d: Duration| us(d) / CATCH_UP as f64;
    println!();
    println!("| catch-up of {CATCH_UP} messages (1 KiB, 2 devices), per message | µs |");
    println!("|---|---|");
    println!(
        "| SDK: reconnect → last `Event::Message` | {:.1} |",
        per(sdk)
    );
    println!("| core `open` alone | {:.1} |", per(open));
    println!(
        "| relay delivery alone (raw socket resume) | {:.1} |",
        per(delivery)
    );
    println!(
        "| **SDK / open** | **{:.2}** |",
        sdk.as_secs_f64() / open.as_secs_f64()
    );
    println!(
        "| SDK / (open + delivery) | {:.2} |",
        sdk.as_secs_f64() / (open + delivery).as_secs_f64()
    );
    println!(
        "| part alone: store `seen_at` (the replay lookup, a read) | {:.1} |",
        per(seen)
    );
    println!(
        "| part alone: seal the history item | {:.1} |",
        per(seal_history)
    );
    println!(
        "| part alone: store `apply`, one per 256 messages (cursor, seen id, history item) | {:.1} |",
        per(apply)
    );
    let parts = open + delivery + seen + seal_history + apply;
    println!("| sum of the parts | {:.1} |", per(parts));
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let relay = RelayProcess::start(Backend::Sqlite).await;
        let url = relay.url();
        let dir = tempfile::tempdir().unwrap();
        for name in ["alice", "bob"] {
            relay.register_verified(&url, name, PASSWORD).await;
        }
        let alice = session(&url, "alice", dir.path()).await;
        let bob = session(&url, "bob", dir.path()).await;
        let _alice_events = online(&alice).await;
        let mut bob_events = online(&bob).await;

        // A room of 2 devices, and one of 50 (48 more members, one device each);
        // each has Alice in their contacts, so her rooms take them in at once.
        bob.client().add_contact(alice.user_id(), None).await.unwrap();
        let small = alice.create_room("two", &[bob.user_id()]).await.unwrap().room.id;
        let mut others = Vec::new();
        for i in 0..48 {
            let name = format!("member{i}");
            relay.register_verified(&url, &name, PASSWORD).await;
            let member = session(&url, &name, dir.path()).await;
            member.client().add_contact(alice.user_id(), None).await.unwrap();
            others.push(member.user_id());
        }
        let mut ids = vec![bob.user_id()];
        ids.extend(&others);
        let big = alice.create_room("fifty", &ids).await.unwrap().room.id;

        println!("| room | SDK send → peer event, median (p99) | seal | relay round trip | open | sum of parts | SDK / sum | in sixths of the run |");
        println!("|---|---|---|---|---|---|---|---|");
        for (label, room) in [("2 devices", small), ("50 devices", big)] {
            let p = measure(&alice, &bob, &mut bob_events, room).await;
            let sum = p.seal + p.relay + p.open;
            println!(
                "| {label} | {:.0} µs ({:.0} µs) | {:.0} µs | {:.0} µs | {:.0} µs | {:.0} µs | {:.2} | {} |",
                us(p.sdk),
                us(p.sdk_p99),
                us(p.seal),
                us(p.relay),
                us(p.open),
                us(sum),
                p.sdk.as_secs_f64() / sum.as_secs_f64(),
                p.blocks
                    .iter()
                    .map(|r| format!("{r:.2}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
        catch_up(&alice, &bob, &mut bob_events, small).await;
    });
}
