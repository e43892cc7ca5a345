//! Sealing and posting one message (`sotto_engine::post`) on real keys and
//! envelopes: the order of a post (socket, HTTP, out of the store), each
//! answer's effect, single flight, and the history item of a sent message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use sotto_core::api::ClientFrame;
use sotto_core::envelope::{self, OpenContext};
use sotto_core::keys::VerifiedDevice;
use sotto_engine::Content;
use sotto_engine::open::Me;
use sotto_engine::outbox::{HttpAnswer, Outbox, SocketAnswer};
use sotto_engine::post::{Do, Flush, FlushStep, OutboxEntry, Posted, Posting};
use sotto_engine::vault::HistoryTrust;
use uuid::Uuid;

mod common;
use common::Person;

const ROOM: Uuid = Uuid::from_u128(0x7007);
const CLIENT_ID: Uuid = Uuid::from_u128(0xc1);
const ID: Uuid = Uuid::from_u128(0x1d);
const AT: u64 = 1_700_000_000_000;

struct Sender {
    me: Person,
    own: VerifiedDevice,
    outbox: Outbox,
}

impl Sender {
    fn new() -> Self {
        let me = Person::new(1);
        let own = me.verified();
        Self {
            me,
            own,
            outbox: Outbox::new(),
        }
    }

    fn me(&self) -> Me<'_> {
        Me {
            user: self.me.id,
            device: &self.own,
            keys: &self.me.keys,
        }
    }

    fn seal(&mut self, body: &str, to: &[VerifiedDevice], control: bool) -> Posting {
        let me = Me {
            user: self.me.id,
            device: &self.own,
            keys: &self.me.keys,
        };
        let plaintext = Content::text(body).encode();
        let mut p = Posting::seal(&me, ROOM, &plaintext, to, control, CLIENT_ID, AT).unwrap();
        assert!(p.claim(&mut self.outbox));
        p
    }

    /// Steps through a socket frame, answering `answer`.
    fn socket(&mut self, p: &mut Posting, answer: SocketAnswer<'_>) {
        let Do::Socket(frame) = p.step(&mut self.outbox) else {
            panic!("the socket first");
        };
        let ClientFrame::Send {
            room_id,
            client_id,
            envelope,
        } = frame
        else {
            panic!("a send frame");
        };
        assert_eq!((room_id, client_id), (ROOM, CLIENT_ID));
        assert_eq!(envelope.0, p.entry().envelope, "the entry's envelope");
        p.socket(&mut self.outbox, answer);
    }

    /// A resumed entry asks whether the store still holds it.
    fn check(&mut self, p: &mut Posting, still: bool) {
        assert!(matches!(p.step(&mut self.outbox), Do::Check));
        p.checked(&mut self.outbox, still);
    }

    fn done(&mut self, p: &mut Posting) -> Posted {
        match p.step(&mut self.outbox) {
            Do::Done(r) => r,
            other => panic!("expected the end, got {other:?}"),
        }
    }

    fn remove(&mut self, p: &mut Posting) {
        assert!(matches!(p.step(&mut self.outbox), Do::Remove));
        assert!(
            self.outbox.is_posting(CLIENT_ID),
            "still claimed until the entry left the store"
        );
        p.removed(&mut self.outbox);
    }
}

fn opens_for(p: &Posting, who: &Person, sender: &VerifiedDevice) -> bool {
    let ctx = OpenContext {
        room_id: ROOM,
        sender,
    };
    envelope::open(&p.entry().envelope, who.device, &who.keys, &ctx).is_ok()
}

#[test]
fn a_message_is_sealed_to_its_targets_posted_on_the_socket_and_kept() {
    let mut s = Sender::new();
    let bob = Person::new(2);
    let carol = Person::new(3);
    let mut p = s.seal("hello", &[bob.verified(), s.own.clone()], false);
    assert!(s.outbox.is_posting(CLIENT_ID), "claimed when sealed");
    assert!(!p.entry().control);
    assert!(opens_for(&p, &bob, &s.own));
    assert!(opens_for(&p, &s.me, &s.own), "to this device too");
    assert!(!opens_for(&p, &carol, &s.own), "not to anyone else");
    s.socket(&mut p, SocketAnswer::Ack { id: ID, seq: 4 });
    s.remove(&mut p);
    assert_eq!(
        s.done(&mut p),
        Posted::Sent {
            id: ID,
            seq: 4,
            announce: true
        }
    );
    assert!(!s.outbox.is_posting(CLIENT_ID), "the post has ended");
    let item = p
        .history_item(&s.me(), ID, 4, "2026-12-07T10:00:00Z".into())
        .unwrap();
    assert_eq!(item.content, Content::text("hello"));
    assert_eq!((item.client_id, item.sent_at_ms), (CLIENT_ID, AT));
    assert_eq!((item.sender_id, item.sender_device), (s.me.id, s.me.device));
    assert_eq!(item.trust, HistoryTrust::Own);
}

#[test]
fn a_control_message_is_not_announced_nor_kept() {
    let mut s = Sender::new();
    let bob = Person::new(2);
    let mut p = s.seal("statement", &[bob.verified()], true);
    assert!(p.entry().control);
    s.socket(&mut p, SocketAnswer::NoAck);
    assert!(matches!(p.step(&mut s.outbox), Do::Http { after_ms: 0 }));
    p.http(&mut s.outbox, HttpAnswer::Stored { id: ID, seq: 9 });
    s.remove(&mut p);
    assert_eq!(
        s.done(&mut p),
        Posted::Sent {
            id: ID,
            seq: 9,
            announce: false
        }
    );
    assert!(p.history_item(&s.me(), ID, 9, String::new()).is_none());
}

#[test]
fn a_rate_limit_waits_then_an_unreachable_relay_keeps_it_queued() {
    let mut s = Sender::new();
    let mut p = s.seal("later", &[s.own.clone()], false);
    s.socket(
        &mut p,
        SocketAnswer::Refused {
            code: "rate_limited",
            retry_after_ms: Some(1500),
        },
    );
    assert!(matches!(p.step(&mut s.outbox), Do::Http { after_ms: 1500 }));
    p.http(&mut s.outbox, HttpAnswer::Unreachable);
    assert_eq!(
        s.done(&mut p),
        Posted::Queued,
        "no removal: it stays stored"
    );
    assert!(
        !s.outbox.is_posting(CLIENT_ID),
        "the next flush may post it"
    );
}

#[test]
fn a_final_refusal_takes_it_out_of_the_store() {
    let mut s = Sender::new();
    let mut p = s.seal("no", &[s.own.clone()], false);
    s.socket(
        &mut p,
        SocketAnswer::Refused {
            code: "not_a_member",
            retry_after_ms: None,
        },
    );
    s.remove(&mut p);
    assert_eq!(s.done(&mut p), Posted::Refused);
    assert!(!s.outbox.is_posting(CLIENT_ID));
    // The same over HTTP: a 403 is final, a 503 is not.
    let mut p = s.seal("no", &[s.own.clone()], false);
    s.socket(&mut p, SocketAnswer::NoAck);
    let _ = p.step(&mut s.outbox);
    p.http(&mut s.outbox, HttpAnswer::Refused { status: 403 });
    s.remove(&mut p);
    assert_eq!(s.done(&mut p), Posted::Refused);
    let mut p = s.seal("no", &[s.own.clone()], false);
    s.socket(&mut p, SocketAnswer::NoAck);
    let _ = p.step(&mut s.outbox);
    p.http(&mut s.outbox, HttpAnswer::Refused { status: 503 });
    assert_eq!(s.done(&mut p), Posted::Queued);
}

#[test]
fn a_stored_entry_is_posted_once_and_its_history_comes_from_the_envelope() {
    let mut s = Sender::new();
    let bob = Person::new(2);
    let sealed = s.seal("from before", &[bob.verified(), s.own.clone()], false);
    let entry: OutboxEntry = sealed.entry().clone();
    assert!(
        Posting::resume(&mut s.outbox, entry.clone()).is_none(),
        "a post in flight is joined, not repeated"
    );
    drop(sealed);
    s.outbox.abandon(CLIENT_ID); // the app restarted: nothing in flight
    let mut p = Posting::resume(&mut s.outbox, entry).unwrap();
    s.check(&mut p, true);
    s.socket(&mut p, SocketAnswer::Ack { id: ID, seq: 2 });
    s.remove(&mut p);
    assert_eq!(
        s.done(&mut p),
        Posted::Sent {
            id: ID,
            seq: 2,
            announce: true
        }
    );
    let item = p.history_item(&s.me(), ID, 2, String::new()).unwrap();
    assert_eq!(item.content, Content::text("from before"));
    assert_eq!((item.client_id, item.sent_at_ms), (CLIENT_ID, AT));
    // A stored control message stays unannounced after a restart.
    let control = s.seal("statement", &[bob.verified()], true);
    let entry = control.entry().clone();
    s.outbox.abandon(CLIENT_ID);
    let mut p = Posting::resume(&mut s.outbox, entry).unwrap();
    s.check(&mut p, true);
    s.socket(&mut p, SocketAnswer::Ack { id: ID, seq: 3 });
    s.remove(&mut p);
    assert_eq!(
        s.done(&mut p),
        Posted::Sent {
            id: ID,
            seq: 3,
            announce: false
        }
    );
}

#[test]
fn a_driver_that_stops_or_skips_an_answer_leaves_it_queued() {
    let mut s = Sender::new();
    let mut p = s.seal("x", &[s.own.clone()], false);
    p.abandon(&mut s.outbox);
    assert!(!s.outbox.is_posting(CLIENT_ID));
    assert_eq!(s.done(&mut p), Posted::Queued);
    // Stepping again without answering the socket: queued, claim released.
    let mut p = s.seal("x", &[s.own.clone()], false);
    assert!(matches!(p.step(&mut s.outbox), Do::Socket(_)));
    assert_eq!(s.done(&mut p), Posted::Queued);
    assert!(!s.outbox.is_posting(CLIENT_ID));
    // An answer that comes too late changes nothing.
    p.socket(&mut s.outbox, SocketAnswer::Ack { id: ID, seq: 1 });
    assert_eq!(s.done(&mut p), Posted::Queued);
}

#[test]
fn nothing_to_seal_to_is_an_error_and_claims_nothing() {
    let s = Sender::new();
    let me = Me {
        user: s.me.id,
        device: &s.own,
        keys: &s.me.keys,
    };
    let none: [VerifiedDevice; 0] = [];
    let r = Posting::seal(&me, ROOM, b"x", &none, false, CLIENT_ID, AT);
    assert!(r.is_err());
    assert!(!s.outbox.is_posting(CLIENT_ID));
}

#[test]
fn a_post_never_releases_a_claim_it_does_not_hold() {
    let mut s = Sender::new();
    let mut first = s.seal("one", &[s.own.clone()], false);
    // The same client id sealed again (not a fresh id): it does not post.
    let me = Me {
        user: s.me.id,
        device: &s.own,
        keys: &s.me.keys,
    };
    let mut twin = Posting::seal(&me, ROOM, b"x", &[s.own.clone()], false, CLIENT_ID, AT).unwrap();
    assert!(!twin.claim(&mut s.outbox));
    assert!(matches!(twin.step(&mut s.outbox), Do::Done(Posted::Queued)));
    twin.abandon(&mut s.outbox);
    assert!(
        s.outbox.is_posting(CLIENT_ID),
        "the first post keeps its claim"
    );
    // The first post ends; a flush takes the entry again; a late abandon of
    // the first (its driver's guard going out of scope) leaves that claim.
    s.socket(&mut first, SocketAnswer::Ack { id: ID, seq: 1 });
    s.remove(&mut first);
    let entry = first.entry().clone();
    let _again = Posting::resume(&mut s.outbox, entry).unwrap();
    first.abandon(&mut s.outbox);
    assert!(s.outbox.is_posting(CLIENT_ID), "the flush's claim stands");
}

/// A sealed entry under `client_id`, as the store keeps it.
fn sealed_entry(s: &Sender, client_id: u128) -> OutboxEntry {
    let p = Posting::seal(
        &s.me(),
        ROOM,
        b"x",
        std::slice::from_ref(&s.own),
        false,
        Uuid::from_u128(client_id),
        AT,
    )
    .unwrap();
    p.entry().clone()
}

/// The flush's next post, of `entry`, past its store check (still stored)
/// and on the socket.
fn next_post(f: &mut Flush, s: &mut Sender, entry: &OutboxEntry) -> Posting {
    let FlushStep::Post(mut p) = f.step(&mut s.outbox) else {
        panic!("{} next", entry.client_id);
    };
    assert_eq!(p.entry().client_id, entry.client_id);
    assert!(matches!(p.step(&mut s.outbox), Do::Check));
    p.checked(&mut s.outbox, true);
    assert!(matches!(p.step(&mut s.outbox), Do::Socket(_)));
    p
}

#[test]
fn a_flush_joins_a_post_in_flight_skips_what_left_the_store_and_stops_at_the_first_queued() {
    let mut s = Sender::new();
    let (a, b, c, d) = (
        sealed_entry(&s, 0xa),
        sealed_entry(&s, 0xb),
        sealed_entry(&s, 0xc),
        sealed_entry(&s, 0xd),
    );
    let mut store = vec![a.clone(), b.clone(), c.clone(), d.clone()];
    // A send of `a` is in flight when the flush reads the store.
    let mut send = Posting::resume(&mut s.outbox, a.clone()).unwrap();
    let mut f = Flush::new(store.clone());
    assert!(matches!(f.step(&mut s.outbox), FlushStep::Join(id) if id == a.client_id));
    // That post ends: stored, out of the store.
    assert!(matches!(send.step(&mut s.outbox), Do::Check));
    send.checked(&mut s.outbox, true);
    assert!(matches!(send.step(&mut s.outbox), Do::Socket(_)));
    send.socket(&mut s.outbox, SocketAnswer::Ack { id: ID, seq: 1 });
    assert!(matches!(send.step(&mut s.outbox), Do::Remove));
    store.retain(|e| e.client_id != a.client_id);
    send.removed(&mut s.outbox);
    f.joined();
    // Tried again: it left the store, so nothing is posted.
    let FlushStep::Post(mut p) = f.step(&mut s.outbox) else {
        panic!("a post of the joined entry");
    };
    assert_eq!(p.entry().client_id, a.client_id);
    assert!(matches!(p.step(&mut s.outbox), Do::Check));
    p.checked(
        &mut s.outbox,
        store.iter().any(|e| e.client_id == a.client_id),
    );
    assert!(matches!(p.step(&mut s.outbox), Do::Done(Posted::Gone)));
    assert!(
        !s.outbox.is_posting(a.client_id),
        "a gone entry holds no claim"
    );
    f.posted(Posted::Gone);
    // `b` is refused for good: dropped, and the flush goes on.
    let mut p = next_post(&mut f, &mut s, &b);
    let refusal = SocketAnswer::Refused {
        code: "forbidden",
        retry_after_ms: None,
    };
    p.socket(&mut s.outbox, refusal);
    assert!(matches!(p.step(&mut s.outbox), Do::Remove));
    p.removed(&mut s.outbox);
    assert!(matches!(p.step(&mut s.outbox), Do::Done(Posted::Refused)));
    f.posted(Posted::Refused);
    // `c` cannot go out now: the flush stops, and `d` waits behind it.
    let mut p = next_post(&mut f, &mut s, &c);
    p.socket(&mut s.outbox, SocketAnswer::NoAck);
    assert!(matches!(p.step(&mut s.outbox), Do::Http { after_ms: 0 }));
    p.http(&mut s.outbox, HttpAnswer::Unreachable);
    assert!(matches!(p.step(&mut s.outbox), Do::Done(Posted::Queued)));
    f.posted(Posted::Queued);
    assert!(matches!(f.step(&mut s.outbox), FlushStep::Done));
    assert!(f.is_done());
    assert!(!s.outbox.is_posting(c.client_id) && !s.outbox.is_posting(d.client_id));
}

#[test]
fn a_flush_whose_driver_skips_an_answer_ends() {
    let mut s = Sender::new();
    let (a, b) = (sealed_entry(&s, 0xa), sealed_entry(&s, 0xb));
    let mut f = Flush::new(vec![a, b]);
    let FlushStep::Post(mut p) = f.step(&mut s.outbox) else {
        panic!("a post");
    };
    // Stepped again without `posted`: it ends; the handed-out post still
    // holds its claim until its own end.
    assert!(matches!(f.step(&mut s.outbox), FlushStep::Done));
    p.abandon(&mut s.outbox);
    assert!(matches!(f.step(&mut s.outbox), FlushStep::Done));
    // A flush that joined and was never told: it ends too.
    let c = sealed_entry(&s, 0xc);
    let _in_flight = Posting::resume(&mut s.outbox, c.clone()).unwrap();
    let mut f = Flush::new(vec![c]);
    assert!(matches!(f.step(&mut s.outbox), FlushStep::Join(_)));
    assert!(matches!(f.step(&mut s.outbox), FlushStep::Done));
}

mod schedules {
    //! Two flushes and a post of a stored entry (a send's retry, a tab's
    //! flush) run against one outbox and one store, interleaved at random,
    //! each answer random. Whatever happens: no entry is ever on its way to
    //! the relay twice at once; an entry that left the store is never posted
    //! again; each flush hands entries out in the store's order; every claim
    //! ends with its post; and once everyone stops, nothing is left claimed
    //! and every entry either left the store or is still there to go out.
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    const ENTRIES: u128 = 4;

    #[derive(Debug, Clone, Copy)]
    enum Answer {
        Ack,
        Refused { final_: bool },
        Silent,
        HttpStored,
        HttpRefused { status: u16 },
        HttpUnreachable,
    }

    fn answer() -> impl Strategy<Value = Answer> {
        prop_oneof![
            3 => Just(Answer::Ack),
            1 => any::<bool>().prop_map(|final_| Answer::Refused { final_ }),
            2 => Just(Answer::Silent),
            2 => Just(Answer::HttpStored),
            1 => prop_oneof![Just(403u16), Just(503u16)].prop_map(|status| Answer::HttpRefused { status }),
            1 => Just(Answer::HttpUnreachable),
        ]
    }

    /// What an actor is doing.
    enum Actor {
        /// A flush, and the post it drives (if any), or the entry it joins.
        Flush {
            flush: Flush,
            post: Option<Live>,
            joining: Option<Uuid>,
            handed: Vec<Uuid>,
        },
        /// One post of a stored entry (a retry of one message).
        Post(Option<Live>),
        Done,
    }

    fn entry(n: u128) -> OutboxEntry {
        OutboxEntry {
            client_id: Uuid::from_u128(0xe0 + n),
            room_id: ROOM,
            envelope: vec![n as u8],
            control: false,
        }
    }

    /// A post and whether it is on its way to the relay (a frame sent or an
    /// HTTP post made, not answered yet).
    struct Live {
        p: Posting,
        on_air: bool,
    }

    /// One turn of a post: its next step, or the answer to the one on its
    /// way; `Some` when it ended.
    fn drive(
        live: &mut Live,
        outbox: &mut Outbox,
        store: &mut Vec<OutboxEntry>,
        on_air: &mut BTreeSet<Uuid>,
        removed: &mut BTreeSet<Uuid>,
        a: Answer,
    ) -> Option<Posted> {
        let p = &mut live.p;
        let id = p.entry().client_id;
        if live.on_air {
            live.on_air = false;
            on_air.remove(&id);
            match a {
                Answer::Ack => p.socket(outbox, SocketAnswer::Ack { id: ID, seq: 1 }),
                Answer::Refused { final_ } => p.socket(
                    outbox,
                    SocketAnswer::Refused {
                        code: if final_ { "forbidden" } else { "rate_limited" },
                        retry_after_ms: Some(10),
                    },
                ),
                Answer::Silent => p.socket(outbox, SocketAnswer::NoAck),
                Answer::HttpStored => p.http(outbox, HttpAnswer::Stored { id: ID, seq: 1 }),
                Answer::HttpRefused { status } => p.http(outbox, HttpAnswer::Refused { status }),
                Answer::HttpUnreachable => p.http(outbox, HttpAnswer::Unreachable),
            }
            return None;
        }
        match p.step(outbox) {
            Do::Check => p.checked(outbox, store.iter().any(|e| e.client_id == id)),
            Do::Socket(_) | Do::Http { .. } => {
                assert!(outbox.is_posting(id), "posted without the claim");
                assert!(
                    !removed.contains(&id),
                    "{id} posted after it left the store"
                );
                assert!(on_air.insert(id), "{id} on its way twice at once");
                live.on_air = true;
            }
            Do::Remove => {
                store.retain(|e| e.client_id != id);
                removed.insert(id);
                p.removed(outbox);
            }
            Do::Done(end) => return Some(end),
        }
        None
    }

    fn run(schedule: &[(usize, Answer)], post_of: u128) {
        let mut outbox = Outbox::new();
        let mut store: Vec<OutboxEntry> = (0..ENTRIES).map(entry).collect();
        let order: Vec<Uuid> = store.iter().map(|e| e.client_id).collect();
        let mut on_air = BTreeSet::new();
        let mut removed = BTreeSet::new();
        let mut actors = [
            Actor::Flush {
                flush: Flush::new(store.clone()),
                post: None,
                joining: None,
                handed: Vec::new(),
            },
            Actor::Flush {
                flush: Flush::new(store.clone()),
                post: None,
                joining: None,
                handed: Vec::new(),
            },
            Actor::Post(
                Posting::resume(&mut outbox, entry(post_of)).map(|p| Live { p, on_air: false }),
            ),
        ];
        let mut steps = schedule.to_vec();
        // Then everyone runs to its end, answering `Ack`.
        for _ in 0..200 {
            steps.push((0, Answer::Ack));
            steps.push((1, Answer::Ack));
            steps.push((2, Answer::Ack));
        }
        for (who, a) in steps {
            let actor = &mut actors[who % 3];
            match actor {
                Actor::Post(slot) => {
                    let Some(p) = slot else {
                        *actor = Actor::Done;
                        continue;
                    };
                    if drive(p, &mut outbox, &mut store, &mut on_air, &mut removed, a).is_some() {
                        *actor = Actor::Done;
                    }
                }
                Actor::Flush {
                    flush,
                    post,
                    joining,
                    handed,
                } => {
                    if let Some(p) = post {
                        if let Some(end) =
                            drive(p, &mut outbox, &mut store, &mut on_air, &mut removed, a)
                        {
                            flush.posted(end);
                            *post = None;
                        }
                        continue;
                    }
                    if let Some(id) = *joining {
                        // The joined post must end before the flush goes on.
                        if outbox.is_posting(id) {
                            continue;
                        }
                        flush.joined();
                        *joining = None;
                    }
                    match flush.step(&mut outbox) {
                        FlushStep::Post(p) => {
                            let id = p.entry().client_id;
                            // In the store's order (an entry tried again after a join comes again).
                            if handed.last() != Some(&id) {
                                let at = order.iter().position(|x| *x == id).unwrap();
                                if let Some(last) = handed.last() {
                                    assert!(
                                        order.iter().position(|x| x == last).unwrap() < at,
                                        "out of order"
                                    );
                                }
                                handed.push(id);
                            }
                            *post = Some(Live { p, on_air: false });
                        }
                        FlushStep::Join(id) => *joining = Some(id),
                        FlushStep::Done => *actor = Actor::Done,
                    }
                }
                Actor::Done => {}
            }
        }
        assert!(
            actors.iter().all(|a| matches!(a, Actor::Done)),
            "someone never ended"
        );
        for n in 0..ENTRIES {
            let id = entry(n).client_id;
            assert!(!outbox.is_posting(id), "a claim left over");
            // Sent or refused (out of the store), or still there to go out.
            assert!(removed.contains(&id) != store.iter().any(|e| e.client_id == id));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn concurrent_flushes_and_posts_never_post_an_entry_twice_at_once(
            schedule in prop::collection::vec((0..3usize, answer()), 0..60),
            post_of in 0..ENTRIES,
        ) {
            run(&schedule, post_of);
        }
    }
}
