//! The engine's step cost (issue 19): a catch-up of 10,000 queued messages
//! (1 KiB texts, sealed to 2 devices), per message, against the core's own
//! `open` of the same envelopes in the same run. No relay and no socket: the
//! relay frames are already received (as text), and the engine does what the
//! native driver makes it do, on this thread:
//!
//! - the link (`sotto_engine::link::Link`): the feed's cursor, gap and de-dup
//!   checks, steps of up to 256 frames; the frames are parsed on a reader
//!   thread of their own, as the native driver's reader task does;
//! - per message, the open pipeline (`Opening`: peek, the sender check against
//!   the pinned, cached device list, open, the replay check with the store's
//!   `seen_at` read, decode) and the sealing of its local-history item under
//!   the store key (the OS RNG read ahead for its nonce, as the SDK);
//! - per step, the store's `apply` of the step's `Changes` (cursor, seen ids,
//!   history items) in one SQLite transaction on a real file, before the
//!   step's events are handed out.
//!
//! Prints a Markdown table, per message: one round at each of nine places on
//! the stack (`PLACES`), each on a fresh store, with `open` measured right
//! before it at the same place, and where the engine's time went. Run by `scripts/bench-sdk` (release build).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use sotto_client::sotto_core::api::ServerFrame;
use sotto_client::sotto_core::encoding::B64;
use sotto_client::sotto_core::envelope::{self, Header, OpenContext, Recipient};
use sotto_client::sotto_core::keys::{
    DeviceBundle, DeviceKeyOptions, DeviceKeys, IdentityKeyPair, VerifiedDevice,
};
use sotto_client::sotto_engine::devices::{Devices, Known};
use sotto_client::sotto_engine::link::{Link, LinkState, Output, Settle};
use sotto_client::sotto_engine::open::{Me, Opening, Outcome, Step};
use sotto_client::sotto_engine::pins::Pins;
use sotto_client::sotto_engine::vault::{ReadAhead, StoreKey};
use sotto_client::sotto_engine::{Content, Rooms};
use sotto_client::{SqliteStore, Store};
use uuid::Uuid;

const MESSAGES: usize = 10_000;
const ROOM: Uuid = Uuid::from_u128(0x7007);

struct Person {
    id: Uuid,
    device: Uuid,
    identity: IdentityKeyPair,
    keys: DeviceKeys,
}

impl Person {
    fn new(n: u128) -> Self {
        Self {
            id: Uuid::from_u128(n),
            device: Uuid::from_u128(n << 8 | 1),
            identity: IdentityKeyPair::generate().unwrap(),
            keys: DeviceKeys::generate(DeviceKeyOptions::default()).unwrap(),
        }
    }

    fn verified(&self) -> VerifiedDevice {
        DeviceBundle::create(&self.identity, &self.keys, self.id, self.device)
            .unwrap()
            .verify()
            .unwrap()
    }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Where a catch-up's time went (the rest is the link: parsing frames, the
/// feed's checks, building steps).
#[derive(Default)]
struct Parts {
    /// The open pipeline, its `seen_at` reads included.
    open: Duration,
    /// The `seen_at` reads alone.
    seen: Duration,
    /// Sealing the history items.
    seal: Duration,
    /// The store's `apply` of each step.
    apply: Duration,
}

/// One catch-up through the engine and a fresh SQLite store; the time it
/// took, and its parts.
fn engine_catch_up(alice: &Person, bob: &Person, frames: &[String]) -> (Duration, Parts) {
    let mut parts = Parts::default();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("bob.db")).unwrap();
    let history = StoreKey::generate(&mut rand_core::UnwrapErr(getrandom::SysRng)).history();
    // The history items' nonces: the OS RNG read ahead, as the SDK draws them.
    let mut rng = ReadAhead::new(rand_core::UnwrapErr(getrandom::SysRng));
    let bob_device = bob.verified();
    let alice_device = alice.verified();
    // Bob's engine state as after his first contact with Alice: her pin and
    // her device list cached (a catch-up fetches nothing).
    let mut pins = Pins::load(bob.id, bob.identity.public_key().to_bytes(), []);
    let mut devices: Devices<VerifiedDevice> = Devices::default();
    let fetch = devices.fetching();
    let known = Known {
        device_id: alice.device,
        identity_key: alice.identity.public_key().to_bytes(),
        revoked_at: None,
        handle: alice_device,
    };
    devices.served(&mut pins, alice.id, vec![known], &[], fetch);
    let mut rooms = Rooms::load(bob.id, []);
    let me = Me {
        user: bob.id,
        device: &bob_device,
        keys: &bob.keys,
    };
    let mut link: Link<u64> = Link::new(bob.id, bob.device, 10_000, Box::new(|| u32::MAX / 2));

    let t = Instant::now();
    link.start(0);
    let mut shown = 0usize;
    let mut conn = None;
    // The relay's frames, parsed ahead on a reader thread of their own, as
    // the native driver's reader task does (up to 1,024 ahead).
    let mut reader: Option<std::sync::mpsc::Receiver<ServerFrame>> = None;
    std::thread::scope(|scope| {
        while shown < MESSAGES {
            let Some(out) = link.poll(1) else {
                // The link waits for the relay: the next frame the reader parsed.
                let (Some(c), Some(r)) = (conn, &reader) else {
                    panic!("the link waits with {shown} shown");
                };
                // Then what else is parsed already, up to a step's worth (the
                // native driver's burst).
                link.received_frame(c, 1, r.recv().unwrap());
                for frame in r.try_iter().take(255) {
                    link.received_frame(c, 1, frame);
                }
                continue;
            };
            match out {
                Output::Prepare(c) => link.prepared(c, 1, Ok((vec![ROOM], vec![(ROOM, 0)]))),
                Output::Open(c) => link.opened(c, 1),
                Output::Authenticate(c) => {
                    conn = Some(c);
                    let ready = ServerFrame::Ready {
                        user_id: bob.id,
                        device_id: Some(bob.device),
                    };
                    link.received(c, 1, &serde_json::to_string(&ready).unwrap());
                }
                Output::Online(_) => {
                    // The relay's answer to `resume`: every queued message, as text.
                    let (tx, rx) = std::sync::mpsc::sync_channel(1024);
                    scope.spawn(move || {
                        for f in frames {
                            let frame: ServerFrame = serde_json::from_str(f).unwrap();
                            if tx.send(frame).is_err() {
                                return;
                            }
                        }
                    });
                    reader = Some(rx);
                }
                Output::Receive(m) => {
                    let (room, seq) = (m.room_id, m.seq);
                    let t_open = Instant::now();
                    let mut op = Opening::new(m);
                    let outcome = loop {
                        match op.step(&me, &pins, &mut devices, &mut rooms) {
                            Step::Done(o) => break o,
                            Step::Seen { sender, client_id } => {
                                let t_seen = Instant::now();
                                let stored = store.seen_at(sender, client_id).unwrap();
                                parts.seen += t_seen.elapsed();
                                op.seen(link.seen(sender, client_id, room, seq, stored));
                            }
                            Step::Fetch(user) => panic!("a fetch of {user}'s devices"),
                        }
                    };
                    parts.open += t_open.elapsed();
                    let Outcome::Message(item) = outcome else {
                        panic!("not shown: {outcome:?}");
                    };
                    let t_seal = Instant::now();
                    let kept = history.seal(&item, &mut rng).unwrap();
                    parts.seal += t_seal.elapsed();
                    link.settle(
                        room,
                        seq,
                        Settle::Handled {
                            kept: Some(kept),
                            event: Some(seq),
                        },
                    );
                }
                Output::Store(changes) => {
                    let t_apply = Instant::now();
                    store.apply(&changes).unwrap();
                    parts.apply += t_apply.elapsed();
                    link.stored(1, Ok(()));
                }
                Output::App(_) => shown += 1,
                Output::State(LinkState::Offline { .. }) => panic!("offline"),
                Output::Send(_) | Output::State(_) | Output::Show(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    });
    let took = t.elapsed();
    assert!(conn.is_some());
    assert_eq!(
        store.cursors().unwrap().get(&ROOM),
        Some(&(MESSAGES as u64)),
        "every message stored"
    );
    (took, parts)
}

/// Where on the stack each round runs: this many frames of [`padded`]
/// deeper (about 100 bytes each, so the nine cover more than a 4 KiB page).
/// On this VM the open pipeline's cost depends on the stack's place (in some
/// it took 5–10 µs more a message, see `BENCHMARKS.md`, stop 32), and a
/// process's stack starts at a random offset within its page: both `open`
/// and the engine are measured at each place, and the median over the places
/// is the figure.
const PLACES: [usize; 9] = [0, 5, 10, 15, 20, 25, 30, 35, 40];

/// Calls `f` `levels` frames deeper (each frame holds bytes the optimizer
/// cannot remove).
#[inline(never)]
fn padded<R>(levels: usize, f: &mut dyn FnMut() -> R) -> R {
    let pad = std::hint::black_box([0u8; 64]);
    let r = if levels == 0 {
        f()
    } else {
        padded(levels - 1, f)
    };
    std::hint::black_box(&pad);
    r
}

fn main() {
    let alice = Person::new(0xa11ce);
    let bob = Person::new(0xb0b);
    let to = [alice.verified(), bob.verified()];
    let recipients: Vec<Recipient<'_>> = to.iter().map(Recipient::x25519).collect();
    let body = Content::text("y".repeat(1024)).encode();
    let envelopes: Vec<(Uuid, Vec<u8>)> = (0..MESSAGES)
        .map(|_| {
            let header = Header {
                room_id: ROOM,
                sender_user_id: alice.id,
                sender_device_id: alice.device,
                client_message_id: Uuid::now_v7(),
                timestamp_ms: 1_765_000_000_000,
            };
            let sealed = envelope::seal(&body, &header, &recipients, &alice.keys).unwrap();
            (header.client_message_id, sealed.to_bytes())
        })
        .collect();
    let frames: Vec<String> = envelopes
        .iter()
        .enumerate()
        .map(|(i, (_, bytes))| {
            serde_json::to_string(&ServerFrame::Message {
                room_id: ROOM,
                id: Uuid::now_v7(),
                seq: i as u64 + 1,
                sender_id: alice.id,
                device_id: alice.device,
                envelope: B64(bytes.clone()),
                created_at: "2026-12-07T12:00:00Z".into(),
            })
            .unwrap()
        })
        .collect();
    let alice_device = alice.verified();
    let ctx = OpenContext {
        room_id: ROOM,
        sender: &alice_device,
    };

    println!(
        "| stack place | core `open` | engine step | engine / `open` | its open pipeline (`seen_at` reads) | history seal | store `apply` | the link (the rest) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    // (Once first, not counted: the first catch-up of a process warms it.)
    let _ = engine_catch_up(&alice, &bob, &frames);
    let mut ratios = Vec::new();
    for place in PLACES {
        let open = padded(place, &mut || {
            let t = Instant::now();
            for (_, bytes) in &envelopes {
                envelope::open(bytes, bob.device, &bob.keys, &ctx).unwrap();
            }
            t.elapsed()
        });
        let (engine, parts) = padded(place, &mut || engine_catch_up(&alice, &bob, &frames));
        let per = |d: Duration| us(d) / MESSAGES as f64;
        let ratio = engine.as_secs_f64() / open.as_secs_f64();
        ratios.push(ratio);
        let link = engine.saturating_sub(parts.open + parts.seal + parts.apply);
        println!(
            "| {place} | {:.1} µs | {:.1} µs | {ratio:.3} | {:.1} µs ({:.1}) | {:.1} µs | {:.1} µs | {:.1} µs |",
            per(open),
            per(engine),
            per(parts.open),
            per(parts.seen),
            per(parts.seal),
            per(parts.apply),
            per(link),
        );
    }
    ratios.sort_by(f64::total_cmp);
    println!();
    println!(
        "median over the stack places, engine step / `open`: {:.3} (target ≤ 1.1)",
        ratios[ratios.len() / 2]
    );
}
