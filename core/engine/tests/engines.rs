//! Three engines against a simulated relay, in memory and deterministic: the
//! engine's parts a client is made of (the feed, room membership, pins and the
//! device cache), driven the way both SDKs drive them, for Alice (the room's
//! owner), Bob and Carol, while a hostile relay writes Mallory into the room.
//!
//! Random schedules of sends, invitations (accepted or declined), removals,
//! re-invitations, an intruder written into the member list, a new device and
//! its revocation, duplicated, reordered and dropped frames, stale room views
//! (answers overtaken by a later change), reconnects, and crashes between a
//! step and its store apply. Whatever happens:
//! - nothing an honest client sends is sealed to Mallory's device, nor to a
//!   user the owner never signed into the room, nor to a device the relay had
//!   revoked when the sender last fetched the list;
//! - every client shows each message at most once, in its room's order;
//! - after everyone reconnects and catches up, every message sealed to a
//!   member's device after it joined is shown to it exactly once (or, for a
//!   device that was not a recipient, reported as not for it);
//! - and then a message from each member reaches exactly the devices of the
//!   members the owner's newest statement names: the relay's intruder is left
//!   out and warned about, nobody legitimate is.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use proptest::prelude::*;
use sotto_core::api::RoomDetails;
use sotto_core::api::invitations::RoomInvitee;
use sotto_core::api::rooms::{Room, RoomKind, RoomMember};
use sotto_core::keys::{
    DeviceBundle, DeviceKeyOptions, DeviceKeys, IdentityKeyPair, VerifiedDevice,
};
use sotto_core::membership::MembershipStatement;
use sotto_engine::devices::{Devices, Known, Sender};
use sotto_engine::feed::{Arrival, Feed, Resume, Seen};
use sotto_engine::pins::Pins;
use sotto_engine::{Received, Rooms, SendRefused, Warning};
use uuid::Uuid;

const ROOM: Uuid = Uuid::from_u128(0x7007);
const ALICE: usize = 0;
const BOB: usize = 1;
const CAROL: usize = 2;
const MALLORY: usize = 3;
/// Honest clients (Mallory has no client: she only receives what is sealed to her).
const CLIENTS: [usize; 3] = [ALICE, BOB, CAROL];

fn user(i: usize) -> Uuid {
    Uuid::from_u128(0x100 + i as u128)
}

/// A user's identity and devices (the test holds every key).
struct Person {
    identity: IdentityKeyPair,
    /// (device id, keys, verified bundle).
    devices: Vec<(Uuid, DeviceKeys, VerifiedDevice)>,
}

fn device(identity: &IdentityKeyPair, u: usize, n: u128) -> (Uuid, DeviceKeys, VerifiedDevice) {
    let keys = DeviceKeys::generate(DeviceKeyOptions::default()).unwrap();
    let id = Uuid::from_u128(0x1000 + (u as u128) * 16 + n);
    let v = DeviceBundle::create(identity, &keys, user(u), id)
        .unwrap()
        .verify()
        .unwrap();
    (id, keys, v)
}

fn people() -> Vec<Person> {
    (0..4)
        .map(|u| {
            let identity = IdentityKeyPair::generate().unwrap();
            let d = device(&identity, u, 1);
            Person {
                identity,
                devices: vec![d],
            }
        })
        .collect()
}

#[derive(Debug, Clone)]
enum Body {
    Text(u64),
    Statement(Vec<u8>),
}

/// One message in the relay's log.
#[derive(Debug, Clone)]
struct Stored {
    sender: usize,
    device: Uuid,
    client_id: Uuid,
    recipients: Vec<Uuid>,
    body: Body,
    created_at: String,
}

#[derive(Debug, Clone)]
enum Frame {
    Message(u64),
    /// A room event (the client fetches the room again); `true`: `member_added`.
    Room(bool),
    HistoryStart(u64),
    KeysChanged(usize),
}

/// A room view as the relay answered at one epoch.
#[derive(Debug, Clone)]
struct View {
    epoch: u64,
    members: Vec<usize>,
    invited: Vec<usize>,
}

struct Relay {
    members: Vec<usize>,
    invited: Vec<usize>,
    epoch: u64,
    /// Every view the relay ever answered (for stale answers).
    views: Vec<View>,
    log: Vec<Stored>,
    /// Where each user's history starts (their last join).
    joined: [u64; 4],
    /// Per user: (device, revoked at).
    devices: Vec<Vec<(Uuid, Option<String>)>>,
    queues: [VecDeque<Frame>; 3],
    clock: u64,
}

impl Relay {
    fn now(&mut self) -> String {
        self.clock += 1;
        let s = self.clock;
        format!(
            "2026-01-01T{:02}:{:02}:{:02}Z",
            s / 3600,
            s / 60 % 60,
            s % 60
        )
    }

    fn view(&self) -> View {
        View {
            epoch: self.epoch,
            members: self.members.clone(),
            invited: self.invited.clone(),
        }
    }

    /// A membership change: the epoch grows; members hear of it (`announce`;
    /// `joined`: someone was added).
    fn changed(&mut self, announce: bool, joined: bool) {
        self.epoch += 1;
        self.views.push(self.view());
        if announce {
            for c in CLIENTS {
                if self.members.contains(&c) {
                    self.queues[c].push_back(Frame::Room(joined));
                }
            }
        }
    }

    fn post(&mut self, m: Stored) -> Option<u64> {
        if !self.members.contains(&m.sender) {
            return None; // the relay refuses a non-member's post
        }
        self.log.push(m);
        let seq = self.log.len() as u64;
        for c in CLIENTS {
            if self.members.contains(&c) {
                self.queues[c].push_back(Frame::Message(seq));
            }
        }
        Some(seq)
    }

    /// What a `resume` from `cursor` replays to client `c` (a member).
    fn resume(&mut self, c: usize, resume: &Resume) {
        if !self.members.contains(&c) {
            return;
        }
        for (_, cursor) in &resume.0 {
            let from = if *cursor < self.joined[c] {
                self.queues[c].push_back(Frame::HistoryStart(self.joined[c]));
                self.joined[c]
            } else {
                *cursor
            };
            for seq in from + 1..=self.log.len() as u64 {
                self.queues[c].push_back(Frame::Message(seq));
            }
        }
    }

    fn keys_changed(&mut self, u: usize) {
        for c in CLIENTS {
            self.queues[c].push_back(Frame::KeysChanged(u));
        }
    }
}

fn details(view: &View) -> RoomDetails {
    let stamp = || "2026-01-01T00:00:00Z".to_owned();
    RoomDetails {
        room: Room {
            id: ROOM,
            name: "sim".into(),
            kind: RoomKind::Group,
            owner_id: user(ALICE),
            created_at: stamp(),
            updated_at: stamp(),
            unread: 0,
            last_seq: 0,
            member_epoch: view.epoch,
        },
        members: view
            .members
            .iter()
            .map(|u| RoomMember {
                user_id: user(*u),
                username: format!("u{u}"),
                display_name: None,
                is_owner: *u == ALICE,
                joined_at: stamp(),
            })
            .collect(),
        invited: view
            .invited
            .iter()
            .map(|u| RoomInvitee {
                user_id: user(*u),
                username: format!("u{u}"),
                display_name: None,
                invited_by: user(ALICE),
                invited_at: stamp(),
            })
            .collect(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Shown {
    Text(u64),
    NotForMe(u64),
    Refused(u64),
    Replay(u64),
}

/// What a client keeps across a crash (its store).
#[derive(Default)]
struct Store {
    cursor: u64,
    seen: BTreeMap<(Uuid, Uuid), (Uuid, u64)>,
}

struct Client {
    device: Uuid,
    feed: Feed,
    rooms: Rooms,
    pins: Pins,
    devices: Devices<VerifiedDevice>,
    store: Store,
    shown: Vec<Shown>,
    warned: BTreeSet<Uuid>,
    /// The oldest relay view an answer may still show: both drivers drop an
    /// answer that a room event, a reconnect or their own change overtook
    /// while it was fetched, so only fetches started since then can arrive.
    floor: usize,
}

struct World {
    people: Vec<Person>,
    relay: Relay,
    clients: Vec<Client>,
    /// Every user the owner has ever signed into the room.
    ever_signed: BTreeSet<Uuid>,
    /// Users in the room by the owner's will (joined through her adding or
    /// inviting them, not since removed): the relay's other members are not.
    let_in: BTreeSet<usize>,
    /// Users Alice removed (or whose invitation she withdrew), not invited since.
    expelled: BTreeSet<usize>,
    next_text: u64,
    next_id: u128,
}

impl World {
    fn new() -> Self {
        let people = people();
        let clients = CLIENTS
            .iter()
            .map(|&c| Client {
                device: people[c].devices[0].0,
                feed: Feed::new(user(c), people[c].devices[0].0),
                rooms: Rooms::load(user(c), []),
                pins: Pins::load(user(c), people[c].identity.public_key().to_bytes(), []),
                devices: Devices::default(),
                store: Store::default(),
                shown: Vec::new(),
                warned: BTreeSet::new(),
                floor: 0,
            })
            .collect();
        let devices = people
            .iter()
            .map(|p| p.devices.iter().map(|d| (d.0, None)).collect())
            .collect();
        let mut w = World {
            people,
            relay: Relay {
                members: vec![ALICE],
                invited: Vec::new(),
                epoch: 1,
                views: Vec::new(),
                log: Vec::new(),
                joined: [0; 4],
                devices,
                queues: Default::default(),
                clock: 0,
            },
            clients,
            ever_signed: BTreeSet::new(),
            let_in: BTreeSet::new(),
            expelled: BTreeSet::new(),
            next_text: 0,
            next_id: 0x10_000,
        };
        w.relay.views.push(w.relay.view());
        // Alice creates the room and adds Bob (who has her in his contacts).
        w.clients[ALICE].rooms.created(ROOM);
        w.connect(ALICE);
        w.fetch_room(ALICE);
        w.maintain(ALICE);
        w.add(BOB, false);
        w.connect(BOB);
        w.connect(CAROL);
        w
    }

    fn client_id(&mut self) -> Uuid {
        self.next_id += 1;
        Uuid::from_u128(self.next_id)
    }

    /// The driver's generation moves: answers fetched before are dropped.
    fn overtaken(&mut self, c: usize) {
        self.clients[c].floor = self.relay.views.len() - 1;
    }

    fn connect(&mut self, c: usize) {
        self.overtaken(c);
        self.relay.queues[c].clear();
        let cl = &mut self.clients[c];
        cl.devices.forget(None);
        cl.rooms.forget_relay_view(None);
        let rooms: Vec<Uuid> = if self.relay.members.contains(&c) {
            vec![ROOM]
        } else {
            vec![]
        };
        let resume = cl.feed.connect(rooms, [(ROOM, cl.store.cursor)]);
        self.relay.resume(c, &resume);
    }

    /// The client fetches the room (the current view, or with `back` > 0 an
    /// answer from that many changes ago, overtaken).
    fn fetch_room_at(&mut self, c: usize, back: usize) {
        if !self.relay.members.contains(&c) {
            return;
        }
        let views = &self.relay.views;
        let at = (views.len() - 1)
            .saturating_sub(back)
            .max(self.clients[c].floor);
        let v = views[at].clone();
        let warnings = self.clients[c].rooms.observe(&details(&v));
        self.warn(c, warnings);
    }

    fn fetch_room(&mut self, c: usize) {
        self.fetch_room_at(c, 0);
    }

    fn warn(&mut self, c: usize, warnings: Vec<Warning>) {
        for w in warnings {
            if let Warning::Unconfirmed { users, .. } = w {
                self.clients[c].warned.extend(users);
            }
        }
    }

    /// Makes sure the client's engine caches these users' device lists.
    fn fetch_devices(&mut self, c: usize, users: &[Uuid]) {
        let missing = self.clients[c].devices.missing(users);
        let fetch = self.clients[c].devices.fetching();
        for u in missing {
            let i = (u.as_u128() - 0x100) as usize;
            let list: Vec<Known<VerifiedDevice>> = self.relay.devices[i]
                .iter()
                .map(|(id, revoked)| {
                    let v = self.people[i]
                        .devices
                        .iter()
                        .find(|d| d.0 == *id)
                        .unwrap()
                        .2
                        .clone();
                    Known {
                        device_id: *id,
                        identity_key: v.identity_key().to_bytes(),
                        revoked_at: revoked.clone(),
                        handle: v,
                    }
                })
                .collect();
            let cl = &mut self.clients[c];
            let _ = cl.devices.served(&mut cl.pins, u, list, &[], fetch);
        }
    }

    /// Seals `body` for the allowed devices and posts it, as the drivers do
    /// (the owner's statement first, forwarded to devices that lack it).
    fn send(&mut self, c: usize, body: Body) -> Option<u64> {
        if !self.clients[c].rooms.knows(ROOM) {
            self.fetch_room(c);
        }
        self.maintain(c);
        let users = match self.clients[c].rooms.recipients(ROOM) {
            Ok(u) => u,
            Err(SendRefused::AwaitingStatement | SendRefused::Unknown) => return None,
            Err(e) => panic!("{e:?}"),
        };
        self.check_unconfirmed(c);
        self.fetch_devices(c, &users);
        let cl = &self.clients[c];
        let targets = cl.devices.sealable(&cl.pins, &users).ok()?;
        let pairs: Vec<(Uuid, Uuid)> = targets.iter().map(|(u, d)| (*u, d.device_id())).collect();
        let devices: Vec<Uuid> = pairs.iter().map(|p| p.1).collect();
        if let Some(statement) = cl.rooms.reposts(ROOM, &pairs) {
            self.post(c, Body::Statement(statement), devices.clone());
            self.clients[c].rooms.announce(ROOM, devices.clone());
        }
        self.post(c, body, devices)
    }

    fn post(&mut self, c: usize, body: Body, recipients: Vec<Uuid>) -> Option<u64> {
        // Never sealed to the intruder, nor to anyone the owner never signed in.
        let mallory = self.people[MALLORY].devices[0].0;
        assert!(
            !recipients.contains(&mallory),
            "sealed to the intruder: {body:?}"
        );
        for d in &recipients {
            let (u, revoked) = self
                .relay
                .devices
                .iter()
                .enumerate()
                .find_map(|(u, l)| l.iter().find(|x| x.0 == *d).map(|x| (u, x.1.clone())))
                .unwrap();
            assert!(
                self.ever_signed.contains(&user(u)),
                "sealed to {u}, whom the owner never signed in"
            );
            // A device revoked before the sender's cached list was fetched is
            // never sealed to (a revocation the sender has not heard of yet may be).
            if let Some(at) = revoked {
                assert!(
                    self.clients[c].devices.list(user(u)).is_some_and(|l| l
                        .iter()
                        .any(|k| k.device_id == *d && k.revoked_at.is_none())),
                    "sealed to device {d} revoked at {at}"
                );
            }
        }
        let client_id = self.client_id();
        let created_at = self.relay.now();
        let seq = self.relay.post(Stored {
            sender: c,
            device: self.clients[c].device,
            client_id,
            recipients,
            body,
            created_at,
        })?;
        // The sender's own message: its feed handles it when it arrives.
        Some(seq)
    }

    /// As the owner: signs and posts the statement the room needs now, then
    /// forwards the held one to member devices it has not reached (the
    /// drivers' `maintain_room`).
    fn maintain(&mut self, c: usize) {
        if let Some(members) = self.clients[c].rooms.owner_update(ROOM) {
            self.sign_and_post(c, None, &members);
        }
        if !self.clients[c].rooms.is_owner(ROOM) {
            return;
        }
        let Ok(users) = self.clients[c].rooms.recipients(ROOM) else {
            return;
        };
        self.fetch_devices(c, &users);
        let cl = &self.clients[c];
        let Ok(targets) = cl.devices.sealable(&cl.pins, &users) else {
            return;
        };
        let pairs: Vec<(Uuid, Uuid)> = targets.iter().map(|(u, d)| (*u, d.device_id())).collect();
        if let Some(statement) = cl.rooms.reposts(ROOM, &pairs) {
            let devices: Vec<Uuid> = pairs.iter().map(|p| p.1).collect();
            self.clients[c].rooms.announce(ROOM, devices.clone());
            self.post(c, Body::Statement(statement), devices);
        }
    }

    /// Signs (adding `adding`, or listing `members`) and posts the statement.
    fn sign_and_post(&mut self, c: usize, adding: Option<Uuid>, members: &[Uuid]) {
        let keys = &self.people[c].devices[0].1;
        let device = self.clients[c].device;
        let rooms = &mut self.clients[c].rooms;
        let s = match adding {
            Some(u) => rooms.sign_adding(ROOM, u, device, keys),
            None => rooms.sign(ROOM, members, device, keys),
        }
        .unwrap();
        self.ever_signed.extend(s.members().iter().copied());
        let users = self.clients[c].rooms.recipients(ROOM).unwrap_or_default();
        self.fetch_devices(c, &users);
        let cl = &self.clients[c];
        let devices: Vec<Uuid> = match cl.devices.sealable(&cl.pins, &users) {
            Ok(t) => t.iter().map(|(_, d)| d.device_id()).collect(),
            Err(_) => return,
        };
        self.clients[c].rooms.announce(ROOM, devices.clone());
        self.post(c, Body::Statement(s.to_bytes()), devices);
    }

    fn check_unconfirmed(&mut self, c: usize) {
        if let Some(w) = self.clients[c].rooms.unconfirmed(ROOM) {
            self.warn(c, vec![w]);
        }
    }

    /// Alice removes `u` or withdraws their invitation, as the drivers'
    /// `remove_member` does: the statement without them is signed and posted
    /// with the relay's removal (the caller changes the relay next; nothing
    /// runs in between).
    fn expel(&mut self, u: usize) {
        self.expelled.insert(u);
        if !self.clients[ALICE].rooms.knows(ROOM) {
            self.fetch_room(ALICE);
        }
        if let Some(members) = self.clients[ALICE].rooms.withdrawing(ROOM, user(u)) {
            self.sign_and_post(ALICE, None, &members);
        }
        self.clients[ALICE].rooms.forget_relay_view(Some(ROOM));
        self.overtaken(ALICE);
    }

    /// Alice adds `u`: signs first, then asks the relay (an invitation, or
    /// at once when `u` has her in their contacts).
    fn add(&mut self, u: usize, invite: bool) {
        if self.relay.members.contains(&u) || self.relay.invited.contains(&u) {
            return;
        }
        self.expelled.remove(&u);
        if !self.clients[ALICE].rooms.knows(ROOM) {
            self.fetch_room(ALICE);
        }
        self.sign_and_post(ALICE, Some(user(u)), &[]);
        if invite {
            self.relay.invited.push(u);
            self.relay.changed(true, false);
        } else {
            self.join(u);
        }
        self.clients[ALICE].rooms.forget_relay_view(Some(ROOM));
        self.overtaken(ALICE);
        self.clients[ALICE].rooms.added(ROOM, user(u));
    }

    fn join(&mut self, u: usize) {
        self.let_in.insert(u);
        self.relay.invited.retain(|x| *x != u);
        self.relay.members.push(u);
        self.relay.joined[u] = self.relay.log.len() as u64;
        if u != MALLORY {
            let at = self.relay.joined[u];
            self.relay.queues[u].push_back(Frame::HistoryStart(at));
        }
        self.relay.changed(true, true);
    }

    /// Client `c` handles up to `n` frames as one step; stores it unless `crash`.
    fn step(&mut self, c: usize, n: usize, crash: bool) {
        let mut shown = Vec::new();
        for _ in 0..n {
            let Some(frame) = self.relay.queues[c].pop_front() else {
                break;
            };
            match frame {
                Frame::Message(seq) => self.message(c, seq, &mut shown),
                Frame::Room(joined) => {
                    self.overtaken(c);
                    let change = if joined {
                        sotto_core::api::RoomChange::MemberAdded
                    } else {
                        sotto_core::api::RoomChange::MemberRemoved
                    };
                    // (As both drivers: the engine drops the view, then it is looked at.)
                    assert!(self.clients[c].rooms.room_changed(ROOM, change));
                    if self.relay.members.contains(&c)
                        && let Some(r) = self.clients[c].feed.joined(ROOM)
                    {
                        self.relay.resume(c, &r);
                    }
                    self.fetch_room(c);
                    self.maintain(c);
                }
                Frame::HistoryStart(seq) => self.clients[c].feed.history_start(ROOM, seq),
                Frame::KeysChanged(u) => self.clients[c].devices.forget(Some(user(u))),
            }
        }
        let changes = self.clients[c].feed.take_changes();
        if crash {
            self.connect(c);
            return;
        }
        let store = &mut self.clients[c].store;
        for (_, seq) in changes.cursors {
            store.cursor = store.cursor.max(seq);
        }
        for (sender, client_id, room, seq) in changes.seen {
            store.seen.entry((sender, client_id)).or_insert((room, seq));
        }
        self.clients[c].shown.extend(shown);
    }

    fn message(&mut self, c: usize, seq: u64, shown: &mut Vec<Shown>) {
        let m = self.relay.log[seq as usize - 1].clone();
        let arrival = self.clients[c]
            .feed
            .message(ROOM, seq, user(m.sender), m.device);
        match arrival {
            Arrival::Skip | Arrival::Handled => {}
            Arrival::Resume(r) => self.relay.resume(c, &r),
            Arrival::Open => {
                let me = self.clients[c].device;
                if !m.recipients.contains(&me) {
                    self.clients[c].feed.settle(ROOM, seq, None);
                    shown.push(Shown::NotForMe(seq));
                    return;
                }
                let Some(_sender) = self.sender(c, m.sender, m.device, &m.created_at) else {
                    self.clients[c].feed.settle(ROOM, seq, None);
                    shown.push(Shown::Refused(seq));
                    return;
                };
                let stored = self.clients[c]
                    .store
                    .seen
                    .get(&(user(m.sender), m.client_id))
                    .copied();
                match self.clients[c]
                    .feed
                    .seen(user(m.sender), m.client_id, ROOM, seq, stored)
                {
                    Seen::New => {}
                    Seen::Again => {
                        self.clients[c].feed.settle(ROOM, seq, None);
                        return;
                    }
                    Seen::Replay => {
                        self.clients[c].feed.settle(ROOM, seq, None);
                        shown.push(Shown::Replay(seq));
                        return;
                    }
                }
                match &m.body {
                    Body::Text(t) => {
                        self.clients[c].feed.settle(ROOM, seq, Some(vec![1]));
                        shown.push(Shown::Text(*t));
                    }
                    Body::Statement(bytes) => {
                        self.clients[c].feed.settle(ROOM, seq, None);
                        let s = MembershipStatement::from_bytes(bytes).unwrap();
                        let signer_user = (s.signer_user().as_u128() - 0x100) as usize;
                        let signer = self.sender(c, signer_user, s.signer_device(), &m.created_at);
                        let got = self.clients[c].rooms.receive(
                            ROOM,
                            bytes,
                            signer.as_ref(),
                            &m.recipients,
                        );
                        assert!(
                            matches!(
                                got,
                                Ok(Received::Accepted | Received::Same | Received::Older)
                            ),
                            "an honest statement refused: {got:?}"
                        );
                        self.maintain(c);
                    }
                }
            }
        }
    }

    /// The sending device, if trusted (refetching the list once if unknown).
    fn sender(&mut self, c: usize, u: usize, device: Uuid, at: &str) -> Option<VerifiedDevice> {
        for attempt in 0..2 {
            if attempt == 1 {
                self.clients[c].devices.forget(Some(user(u)));
            }
            self.fetch_devices(c, &[user(u)]);
            let cl = &self.clients[c];
            match cl.devices.sender(&cl.pins, user(c), user(u), device, at) {
                Sender::Unknown => continue,
                Sender::Refused(_) => return None,
                Sender::Trusted(d, _) => return Some(d.clone()),
            }
        }
        None
    }
}

#[derive(Debug, Clone)]
enum Op {
    Send(usize),
    Invite(usize),
    Accept(usize),
    Decline(usize),
    /// Alice withdraws a pending invitation.
    Withdraw(usize),
    /// Alice removes a member.
    Remove(usize),
    /// A member leaves.
    Leave(usize),
    /// The hostile relay writes back a user who declined, left or was
    /// removed (a member again, no event).
    ReAdd(usize),
    /// The hostile relay writes Mallory into the members (announcing it or not).
    Intrude(bool),
    /// Bob gets a second device (announced by `keys_changed`).
    NewDevice,
    /// Bob's second device is revoked.
    Revoke,
    Step(usize, usize),
    Crash(usize, usize),
    Duplicate(usize),
    Swap(usize),
    Drop(usize),
    Reconnect(usize),
    /// Client fetches the room and gets an answer from `back` changes ago
    /// (one the driver cannot tell is overtaken: no room event, reconnect
    /// or own change of its since the fetch began).
    StaleView(usize, usize),
}

fn op() -> impl Strategy<Value = Op> {
    let who = || prop_oneof![Just(ALICE), Just(BOB), Just(CAROL)];
    let joiner = || prop_oneof![Just(BOB), Just(CAROL)];
    prop_oneof![
        5 => who().prop_map(Op::Send),
        2 => joiner().prop_map(Op::Invite),
        2 => joiner().prop_map(Op::Accept),
        1 => joiner().prop_map(Op::Decline),
        1 => joiner().prop_map(Op::Withdraw),
        1 => joiner().prop_map(Op::ReAdd),
        1 => joiner().prop_map(Op::Remove),
        1 => joiner().prop_map(Op::Leave),
        1 => any::<bool>().prop_map(Op::Intrude),
        1 => Just(Op::NewDevice),
        1 => Just(Op::Revoke),
        8 => (who(), 1..6usize).prop_map(|(c, n)| Op::Step(c, n)),
        1 => (who(), 1..6usize).prop_map(|(c, n)| Op::Crash(c, n)),
        1 => who().prop_map(Op::Duplicate),
        1 => who().prop_map(Op::Swap),
        1 => who().prop_map(Op::Drop),
        1 => who().prop_map(Op::Reconnect),
        1 => (who(), 1..4usize).prop_map(|(c, b)| Op::StaleView(c, b)),
    ]
}

fn run(ops: &[Op]) {
    let mut w = World::new();
    for op in ops {
        match *op {
            Op::Send(c) => {
                if w.relay.members.contains(&c) {
                    w.next_text += 1;
                    let t = w.next_text;
                    w.send(c, Body::Text(t));
                }
            }
            Op::Invite(u) => w.add(u, true),
            Op::Accept(u) => {
                if w.relay.invited.contains(&u) {
                    w.join(u);
                }
            }
            Op::Decline(u) => {
                if w.relay.invited.contains(&u) {
                    w.relay.invited.retain(|x| *x != u);
                    w.relay.changed(true, false);
                }
            }
            Op::Withdraw(u) => {
                if w.relay.invited.contains(&u) {
                    w.expel(u);
                    w.relay.invited.retain(|x| *x != u);
                    w.relay.changed(true, false);
                }
            }
            Op::ReAdd(u) => {
                if !w.relay.members.contains(&u) && !w.relay.invited.contains(&u) {
                    w.relay.members.push(u);
                    w.relay.joined[u] = w.relay.log.len() as u64;
                    w.relay.changed(false, false);
                }
            }
            Op::Remove(u) | Op::Leave(u) => {
                if w.relay.members.contains(&u) {
                    if matches!(op, Op::Remove(_)) {
                        w.expel(u);
                    }
                    w.let_in.remove(&u);
                    w.relay.members.retain(|x| *x != u);
                    w.relay.changed(true, false);
                    w.relay.queues[u].push_back(Frame::Room(false));
                }
            }
            Op::Intrude(announce) => {
                if !w.relay.members.contains(&MALLORY) {
                    w.relay.members.push(MALLORY);
                    w.relay.changed(announce, true);
                }
            }
            Op::NewDevice => {
                if w.people[BOB].devices.len() == 1 {
                    let d = device(&w.people[BOB].identity, BOB, 2);
                    w.relay.devices[BOB].push((d.0, None));
                    w.people[BOB].devices.push(d);
                    w.relay.keys_changed(BOB);
                }
            }
            Op::Revoke => {
                if w.relay.devices[BOB].len() == 2 && w.relay.devices[BOB][1].1.is_none() {
                    let at = w.relay.now();
                    w.relay.devices[BOB][1].1 = Some(at);
                    w.relay.keys_changed(BOB);
                }
            }
            Op::Step(c, n) => w.step(c, n, false),
            Op::Crash(c, n) => w.step(c, n, true),
            Op::Duplicate(c) => {
                if let Some(f) = w.relay.queues[c].front().cloned() {
                    w.relay.queues[c].push_front(f);
                }
            }
            Op::Swap(c) => {
                if w.relay.queues[c].len() >= 2 {
                    w.relay.queues[c].swap(0, 1);
                }
            }
            Op::Drop(c) => {
                w.relay.queues[c].pop_front();
            }
            Op::Reconnect(c) => w.connect(c),
            Op::StaleView(c, back) => {
                w.fetch_room_at(c, back);
                w.maintain(c);
            }
        }
    }
    // Everyone reconnects and catches up (the owner's statements included).
    let settle = |w: &mut World| {
        for _ in 0..3 {
            for c in CLIENTS {
                w.connect(c);
            }
            for _ in 0..200 {
                let mut idle = true;
                for c in CLIENTS {
                    if !w.relay.queues[c].is_empty() {
                        idle = false;
                        w.step(c, 16, false);
                    }
                }
                if idle {
                    break;
                }
            }
        }
    };
    settle(&mut w);

    for c in CLIENTS {
        let cl = &w.clients[c];
        // Each message at most once; texts in the room's order.
        let texts: Vec<u64> = cl
            .shown
            .iter()
            .filter_map(|s| match s {
                Shown::Text(t) => Some(*t),
                _ => None,
            })
            .collect();
        assert!(
            texts.windows(2).all(|p| p[0] < p[1]),
            "client {c}: {:?}",
            cl.shown
        );
        // Every text sealed to this device after it joined was shown once.
        if !w.relay.members.contains(&c) {
            continue;
        }
        for (i, m) in w.relay.log.iter().enumerate() {
            let seq = i as u64 + 1;
            let Body::Text(t) = m.body else { continue };
            if m.sender == c || seq <= w.relay.joined[c] {
                continue;
            }
            if m.recipients.contains(&cl.device) {
                assert!(
                    cl.shown.contains(&Shown::Text(t)),
                    "client {c} never showed text {t} (seq {seq}): {:?}",
                    cl.shown
                );
            }
        }
    }

    // A last message from each member, everyone caught up before it: to
    // exactly the active devices of the members the owner's newest statement
    // names; the intruder warned about.
    for c in CLIENTS {
        settle(&mut w);
        // (A member the relay wrote back after Alice removed them seals by
        // the statement they hold; what matters is that nobody else seals to
        // them, checked by the others' messages.)
        if !w.relay.members.contains(&c) || (c != ALICE && !w.let_in.contains(&c)) {
            continue;
        }
        let statement = w.clients[ALICE].rooms.statement(ROOM).unwrap();
        w.next_text += 1;
        let t = w.next_text;
        let Some(seq) = w.send(c, Body::Text(t)) else {
            // Only a member who has not received a statement yet waits.
            assert!(
                w.clients[c].rooms.statement(ROOM).is_none(),
                "client {c} holds a statement and sends nothing"
            );
            continue;
        };
        let mut want: Vec<Uuid> = w
            .relay
            .members
            .iter()
            .filter(|u| statement.lists(user(**u)))
            .flat_map(|u| {
                w.relay.devices[*u]
                    .iter()
                    .filter(|d| d.1.is_none())
                    .map(|d| d.0)
            })
            .collect();
        want.sort();
        let mut got = w.relay.log[seq as usize - 1].recipients.clone();
        got.sort();
        assert_eq!(got, want, "client {c}'s last message");
        if w.relay.members.contains(&MALLORY) {
            assert!(
                w.clients[c].warned.contains(&user(MALLORY)),
                "client {c} was not told of the intruder"
            );
        }
    }

    // After those sends (the owner's re-signs what it missed while away on
    // its next use of the room): every member Alice let in is in her
    // statement (nobody legitimate is
    // signed out by a stale or racing view), and nobody else: not the
    // intruder, nor anyone who declined, left, was removed or withdrawn
    // (whom the relay may have written back).
    let statement = w.clients[ALICE].rooms.statement(ROOM).unwrap();
    for u in 0..4 {
        let let_in = u == ALICE || (w.relay.members.contains(&u) && w.let_in.contains(&u));
        let named = statement.lists(user(u));
        assert!(
            named || !let_in,
            "user {u}, a member by Alice's will, signed out: {:?}",
            statement.members()
        );
        assert!(
            !named || !(w.expelled.contains(&u) || u == MALLORY),
            "user {u}, whom Alice removed (or the intruder), still signed in: {:?}",
            statement.members()
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn three_engines_against_a_hostile_relay(ops in prop::collection::vec(op(), 0..200)) {
        run(&ops);
    }
}

/// A member removed and invited again at once, while the owner's view still
/// listed them (so the statement adding them back was sealed to their device
/// but never reached it: the relay delivers nothing to a non-member, and
/// their history starts again at the rejoin), gets the statement forwarded
/// after the rejoin, and then every member's messages.
#[test]
fn a_member_rejoining_after_a_removal_gets_the_statement_again() {
    use Op::*;
    run(&[
        Step(ALICE, 3),
        Crash(BOB, 2),
        Invite(CAROL),
        Accept(CAROL),
        Crash(ALICE, 1),
        Duplicate(ALICE),
        Intrude(false),
        Send(ALICE),
        Remove(BOB),
        Duplicate(ALICE),
        Duplicate(ALICE),
        Invite(BOB),
        Accept(BOB),
    ]);
}
