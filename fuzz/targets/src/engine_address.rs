//! The `engine_address` target: the engine's addressing (`sotto_engine::address`)
//! and device-list fetches (`Devices::query`, `Devices::served_list`) driven
//! against a hostile relay. See [`engine_address`].

use sotto_core::keys::{DeviceBundle, IdentityKeyPair, VerifiedDevice};
use sotto_core::membership::MembershipStatement;
use sotto_engine::Plaintext;
use sotto_engine::Rooms;
use sotto_engine::address::{Addressing, Need, Purpose, Signer};
use sotto_engine::devices::{Devices, Listed, Query};
use sotto_engine::pins::Pins;
use sotto_engine::room_ops::RoomView;
use uuid::Uuid;

const ROOM: Uuid = Uuid::from_u128(0x7003);

/// One of four people (index 0 is this device's user): their real device and
/// an impostor's (another identity key, the same user id) that a hostile
/// relay can list for them.
struct Person {
    user: Uuid,
    device: Uuid,
    keys: sotto_core::keys::DeviceKeys,
    identity: [u8; 32],
    real: DeviceBundle,
    impostor: DeviceBundle,
    verified: VerifiedDevice,
}

fn people() -> &'static [Person; 4] {
    static PEOPLE: std::sync::OnceLock<[Person; 4]> = std::sync::OnceLock::new();
    PEOPLE.get_or_init(|| {
        std::array::from_fn(|i| {
            let n = u8::try_from(i).expect("four people") + 1;
            let user = Uuid::from_u128(0x1000 + u128::from(n));
            let device = Uuid::from_u128(0x2000 + u128::from(n));
            let identity = IdentityKeyPair::from_seed(&[n; 32]);
            let keys =
                sotto_core::keys::DeviceKeys::from_secret_parts(&[n; 32], &[n ^ 0x55; 32], None)
                    .expect("fixed device keys");
            let real = DeviceBundle::create(&identity, &keys, user, device).expect("a bundle");
            let other = IdentityKeyPair::from_seed(&[n ^ 0xaa; 32]);
            let other_keys =
                sotto_core::keys::DeviceKeys::from_secret_parts(&[n ^ 0xaa; 32], &[n; 32], None)
                    .expect("fixed device keys");
            let impostor = DeviceBundle::create(
                &other,
                &other_keys,
                user,
                Uuid::from_u128(0x3000 + u128::from(n)),
            )
            .expect("a bundle");
            let verified = real.verify().expect("it verifies");
            // The same person as `engine_people`'s (their statements are signed there).
            assert_eq!(verified, crate::engine_people()[i].verified);
            Person {
                user,
                device,
                verified,
                identity: identity.public_key().to_bytes(),
                keys,
                real,
                impostor,
            }
        })
    })
}

/// What the hostile relay says, changed by the input at will.
struct Relay {
    direct: bool,
    owner: usize,
    /// Bit `i`: person `i` is listed as a member.
    members: u8,
    epoch: u64,
    /// Per person: bit 0 list the real device, bit 1 the impostor, bit 2 the
    /// real one as revoked.
    serving: [u8; 4],
}

impl Relay {
    fn view(&self) -> RoomView {
        let p = people();
        RoomView {
            id: ROOM,
            member_epoch: self.epoch,
            direct: self.direct,
            owner: p[self.owner].user,
            members: (0..4)
                .filter(|i| self.members & (1 << i) != 0)
                .map(|i| p[i].user)
                .collect(),
            invited: Vec::new(),
        }
    }

    fn list(&self, user: Uuid) -> Vec<Listed<'static>> {
        let Some((i, p)) = people().iter().enumerate().find(|(_, p)| p.user == user) else {
            return Vec::new();
        };
        let mode = self.serving[i];
        let mut out = Vec::new();
        if mode & 1 != 0 {
            out.push(Listed {
                device_id: p.device,
                user_id: p.user,
                bundle: &p.real,
                revoked_at: (mode & 4 != 0).then_some("2026-01-01T00:00:00Z"),
            });
        }
        if mode & 2 != 0 {
            out.push(Listed {
                device_id: p.impostor.device_id,
                user_id: p.user,
                bundle: &p.impostor,
                revoked_at: None,
            });
        }
        out
    }

    fn revoked(&self, device: Uuid) -> bool {
        people()
            .iter()
            .enumerate()
            .any(|(i, p)| p.device == device && self.serving[i] & 4 != 0)
    }
}

struct World {
    pins: Pins,
    devices: Devices<VerifiedDevice>,
    rooms: Rooms,
    relay: Relay,
}

impl World {
    /// The fetch a driver makes for `users`: the queries the engine names.
    fn fetch(&mut self, users: &[Uuid], input: &mut impl Iterator<Item = u8>) {
        let mut asked = 0;
        loop {
            match self.devices.query(users, asked) {
                Query::Done | Query::KeepsChanging => break,
                Query::Keys {
                    users: chunk,
                    fetch,
                } => {
                    asked += 1;
                    assert!(
                        chunk.iter().all(|u| users.contains(u)),
                        "asks only for what it was asked"
                    );
                    if input.next().unwrap_or(0) & 2 != 0 {
                        // A new connection while the query was on its way.
                        self.devices.forget(None);
                    }
                    for u in chunk {
                        let list = self.relay.list(u);
                        self.devices
                            .served_list(&mut self.pins, u, &list, &[], fetch, |v, _| v);
                    }
                }
            }
            assert!(
                asked <= 4,
                "a fetch of up to four users takes at most four queries"
            );
        }
    }

    /// Whatever the relay said: each device sealed to is of a user the
    /// engine allows in the room now, under that user's pinned identity key,
    /// not revoked; in a direct room, of this user or the pinned peer.
    fn check_targets(&self, targets: &[VerifiedDevice], what: &str) {
        let allowed = match self.rooms.recipients(ROOM) {
            Ok(users) => users,
            Err(e) => panic!("{what} sealed while the room refuses: {e:?}"),
        };
        let record = self.rooms.record(ROOM);
        for t in targets {
            let u = t.user_id();
            assert!(allowed.contains(&u), "{what} sealed to {u}, not allowed");
            let pin = self.pins.pin(u).expect("sealed only to a pinned user");
            assert_eq!(
                pin.key,
                t.identity_key().to_bytes(),
                "{what} sealed to a device under another key than the pin"
            );
            assert!(
                !self.relay.revoked(t.device_id()),
                "{what} sealed to a revoked device"
            );
            if record.is_some_and(|r| r.direct) {
                assert!(
                    u == people()[0].user || record.and_then(|r| r.peer) == Some(u),
                    "{what} sealed to a third user of a direct room"
                );
            }
        }
    }

    /// One addressing, driven to its end as a driver does, with the relay's
    /// answers; the input decides overtaken views, refused posts, and
    /// whether the device is online at the end.
    fn address(&mut self, purpose: Purpose, input: &mut impl Iterator<Item = u8>) {
        let me = &people()[0];
        let mut a = Addressing::new(ROOM, purpose.clone());
        let mut fetched = false;
        let mut ended = false;
        for _ in 0..300 {
            let signer = Signer {
                device: me.device,
                keys: &me.keys,
            };
            let need = a.step(&signer, &self.pins, &self.devices, &mut self.rooms);
            let _ = self.rooms.take_changes();
            match need {
                Need::Room(fetch) => {
                    fetched = true;
                    if input.next().unwrap_or(0) & 1 == 1 {
                        // A room event before the answer.
                        self.rooms.forget_relay_view(Some(ROOM));
                    }
                    let _ = self.rooms.observe_fetched(fetch, self.relay.view());
                }
                Need::Devices(users) => self.fetch(&users, input),
                Need::ReadAhead | Need::Warn(_) | Need::Wait => {}
                Need::Post { plaintext, targets } => {
                    self.check_targets(&targets, "a statement");
                    let Plaintext::Membership(bytes) = Plaintext::decode(&plaintext) else {
                        panic!("a post that is not a statement");
                    };
                    let s = MembershipStatement::from_bytes(&bytes).expect("it parses");
                    assert_eq!(s.room_id(), ROOM);
                    // Signed now by this device, or the held one forwarded.
                    let held = self.rooms.statement(ROOM).map(|h| h.to_bytes());
                    assert!(
                        s.verify_signature(&me.verified).is_ok() || held == Some(bytes),
                        "a statement posted is this device's or the one it holds"
                    );
                    match input.next().unwrap_or(0) & 3 {
                        1 => a.post_refused(&mut self.rooms),
                        // The driver gives up (a caller's timeout): only `finish`.
                        2 => {
                            ended = true;
                            break;
                        }
                        _ => a.posted(&mut self.rooms),
                    }
                }
                Need::Done(targets) => {
                    if purpose == Purpose::Send {
                        assert!(!targets.is_empty(), "a send seals to someone");
                        self.check_targets(&targets, "a message");
                    }
                    ended = true;
                    break;
                }
                Need::Failed(_) => {
                    ended = true;
                    break;
                }
            }
        }
        assert!(ended, "the addressing did not end");
        let online = input.next().unwrap_or(1) & 1 == 1;
        a.finish(&mut self.rooms, online);
        if fetched && !online {
            assert!(
                !self.rooms.knows(ROOM),
                "a view fetched offline is not kept"
            );
        }
        assert!(
            !self.rooms.posting(ROOM),
            "no statement post left under way"
        );
    }
}

/// The engine's addressing of one room (`sotto_engine::address`) and its
/// device-list fetches, driven as the clients drive them against a relay
/// that says what the input says: the room's kind, owner and members at any
/// epoch, views overtaken by room events, room events, device lists with
/// impostor devices (another identity key under a user's id), revoked
/// devices or none, new connections, statements by anyone, refused posts,
/// online or not. Byte 0 sets the room up (this user its owner, another's
/// group, a direct room with person 1, or a group joined without a
/// statement); then 3-byte operations: a send, a maintain, adding or
/// withdrawing a person, the relay changing its story, a room event, a
/// device list changing (`keys_changed`), a new connection (also while a
/// device-list query is on its way), a statement arriving, a driver giving
/// up at a post. Invariants: every addressing ends; every device a message or
/// a statement is sealed to is of a user the engine allows in the room,
/// under the user's pinned key, not revoked, and in a direct room of this
/// user or the pinned peer; every statement posted is for this room, and
/// this device's or the one it holds (forwarded); a device-list fetch asks only for the users it was given and
/// is bounded; a view fetched offline is not kept; no statement post is
/// left counted as under way.
pub fn engine_address(data: &[u8]) {
    let p = people();
    let me = &p[0];
    let setup = data.first().copied().unwrap_or(0);
    let mut world = World {
        pins: Pins::load(me.user, me.identity, []),
        devices: Devices::default(),
        rooms: Rooms::load(me.user, []),
        relay: Relay {
            direct: false,
            owner: 0,
            members: 0b0111,
            epoch: 1,
            serving: [1; 4],
        },
    };
    match setup & 3 {
        0 => world.rooms.created(ROOM),
        1 => world.relay.owner = 1 + usize::from(setup >> 2 & 1),
        2 => {
            world.relay.direct = true;
            world.relay.owner = 1;
            world.relay.members = 0b0011;
            world.rooms.expect_peer(ROOM, p[1].user);
        }
        _ => {
            world.relay.owner = 2;
            world.rooms.adopt_legacy([ROOM]);
        }
    }
    let mut bytes = data.get(1..).unwrap_or_default().iter().copied();
    for _ in 0..24 {
        let (Some(op), Some(a), Some(b)) = (bytes.next(), bytes.next(), bytes.next()) else {
            break;
        };
        let who = usize::from(a & 3);
        match op & 7 {
            0 => world.address(Purpose::Send, &mut bytes),
            1 => world.address(Purpose::Maintain, &mut bytes),
            2 => world.address(Purpose::Add(p[who].user), &mut bytes),
            3 => world.address(Purpose::Withdraw(p[who].user), &mut bytes),
            4 => {
                // The relay changes its story, with an event or silently.
                world.relay.members = a & 0x0f;
                world.relay.owner = usize::from(b & 3);
                world.relay.epoch += u64::from(b >> 2 & 1);
                if b & 0x80 != 0 {
                    let _ = world
                        .rooms
                        .room_changed(ROOM, sotto_core::api::RoomChange::MemberAdded);
                }
            }
            5 => {
                use sotto_core::api::RoomChange::*;
                let change = [
                    Created,
                    Renamed,
                    MemberAdded,
                    MemberRemoved,
                    MemberInvited,
                    InvitationRemoved,
                ][usize::from(b % 6)];
                let _ = world.rooms.room_changed(ROOM, change);
            }
            6 => {
                // A user's devices change on the relay (`keys_changed`).
                world.relay.serving[who] = b & 7;
                world.devices.forget(Some(p[who].user));
            }
            _ if a & 0x80 != 0 => {
                // A new connection: announcements may have been missed.
                world.devices.forget(None);
                world.rooms.forget_relay_view(None);
            }
            _ => {
                // A statement by person `who`, owner `b & 3`: as the open
                // pipeline hands it over from a trusted device of the signer.
                // (Person `i` here is person `i` of `engine_people`: the same keys.)
                if let Some(bytes) = crate::statement_by(ROOM, a & 3, b & 3, a >> 2 & 0x0f, b >> 2)
                {
                    let _ = world
                        .rooms
                        .receive(ROOM, &bytes, Some(&p[who].verified), &[]);
                }
            }
        }
        // Whatever happened: the engine never names as a recipient of a
        // direct room anyone but its two users.
        if let (Ok(users), Some(r)) = (world.rooms.recipients(ROOM), world.rooms.record(ROOM))
            && r.direct
        {
            assert!(
                users.iter().all(|u| *u == me.user || Some(*u) == r.peer),
                "a direct room's recipients: {users:?}"
            );
        }
    }
}
