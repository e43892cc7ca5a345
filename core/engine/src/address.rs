//! Whom this device seals to in a room, and the membership statements it
//! must post first, in one order for both SDKs (`docs/protocol.md` §12.4).
//!
//! An [`Addressing`] runs one of these ([`Purpose`]):
//! - **send**: the room's view (fetched if not held) → as the owner, the
//!   statement the room needs now (its first, or one without members the
//!   relay reports gone), posted → members the relay lists that no statement
//!   names: the backlog read for statements, then one warning → the allowed
//!   users ([`Rooms::recipients`]) → their active, trusted devices
//!   ([`Devices::sealable`]) → as the owner, the held statement forwarded to
//!   devices not known to hold it → the devices to seal to;
//! - **maintain** (after a room event): the same without the send, the
//!   forwarding only as the owner;
//! - **create** a group, **add** or **withdraw** a member, as the owner: the
//!   first statement, or the statement with or without them, posted.
//!
//! Posting a statement is itself: the allowed users' devices → counted as
//! reached ([`Rooms::announce`]) → [`Need::Post`]; a post refused for good
//! takes the count back ([`Addressing::post_refused`]).
//!
//! Sans-I/O: each [`Addressing::step`] says what it needs ([`Need`]); the
//! driver does it, saves the rooms' changed records ([`Rooms::take_changes`])
//! before acting on a step's output, and steps again. Fetches are bounded
//! (four of the room's view and four rounds of device lists for each
//! statement post and for the targets): lists or views that keep changing
//! end in [`AddressError::KeepsChanging`].

use sotto_core::keys::DeviceKeys;
use sotto_core::membership::MembershipError;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::content::Plaintext;
use crate::devices::{Devices, Unsealable};
use crate::membership::{Rooms, SendRefused, ViewFetch, Warning};
use crate::open::SenderDevice;
use crate::pins::Pins;

/// What an [`Addressing`] is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Purpose {
    /// A message is about to be sealed: the devices to seal it to.
    Send,
    /// After a room event: keep the statement right, warn about members no
    /// statement names.
    Maintain,
    /// This device created the room ([`Rooms::created`]): its first
    /// statement, with these members, before the relay is asked to add them.
    Create(Vec<Uuid>),
    /// As the owner, before asking the relay to add this user: the statement
    /// naming them.
    Add(Uuid),
    /// As the owner, after the relay removed (or refused to add) this user:
    /// the statement without them, if the held one names them.
    Withdraw(Uuid),
}

/// Why nothing can be sealed (or posted) now.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// A direct room lists someone besides its two users.
    #[error("the direct room lists someone besides its two users: nothing was sent")]
    DirectRoomTampered(Vec<Uuid>),
    /// The owner's statement has not arrived yet (a room joined late).
    #[error("the room owner's membership statement has not arrived yet: nothing was sent")]
    MembershipPending,
    /// These members' identity keys changed and were not accepted.
    #[error("the identity key of a member changed: nothing was sent")]
    IdentityChanged(Vec<Uuid>),
    /// Nobody in the room has a device.
    #[error("nobody in this room has a device")]
    NoDevices,
    /// The room's view or device lists kept changing under the fetches.
    #[error("{0}")]
    KeepsChanging(&'static str),
    /// A statement's post was refused for good ([`Addressing::post_refused`]):
    /// nothing more is posted or sealed (the driver reports the refusal).
    #[error("the membership statement's post was refused")]
    PostRefused,
    /// Signing the statement failed.
    #[error(transparent)]
    Membership(#[from] MembershipError),
}

/// What the addressing needs next, or its end.
#[derive(Debug)]
pub enum Need<D> {
    /// The relay's view of the room: fetch its details and hand them to
    /// [`Rooms::observe_fetched`] with this token (an answer a room event
    /// overtook is not taken, and asked for again).
    Room(ViewFetch),
    /// These users' device lists: fetch and hand to [`Devices::served`].
    Devices(Vec<Uuid>),
    /// Open the room's messages after this device's cursor for their
    /// statements only ([`crate::open::Opening::statements_only`]).
    ReadAhead,
    /// Show this warning.
    Warn(Warning),
    /// Another statement's post in this room is under way (another
    /// addressing's): wait until a post ends, then step again, so this
    /// message does not overtake the statement its devices were counted for.
    Wait,
    /// Seal this control message (a statement) to `targets` and post it
    /// through the outbox; a refusal for good: [`Addressing::post_refused`].
    Post {
        /// The plaintext (zeroized on drop).
        plaintext: Zeroizing<Vec<u8>>,
        /// The devices to seal it to.
        targets: Vec<D>,
    },
    /// Done: the devices to seal to (for [`Purpose::Send`]; for
    /// [`Purpose::Maintain`] as the owner, the devices the statement was
    /// checked against; otherwise empty).
    Done(Vec<D>),
    /// Stopped: nothing more is posted.
    Failed(AddressError),
}

/// Where an addressing stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Observe,
    Sign,
    Unconfirmed,
    Targets,
    Forward,
    Done,
    Refused,
}

/// This device, to sign statements.
pub struct Signer<'a> {
    /// This device.
    pub device: Uuid,
    /// Its secret keys.
    pub keys: &'a DeviceKeys,
}

/// One addressing (see the module docs).
pub struct Addressing<D> {
    room: Uuid,
    purpose: Purpose,
    stage: Stage,
    /// A statement to post before going on (its plaintext).
    posting: Option<Zeroizing<Vec<u8>>>,
    /// This addressing's statement post is under way ([`Rooms::post_started`]).
    in_flight: bool,
    waits: u8,
    /// The devices a posted statement was sealed to (for `post_refused`).
    posted: Vec<Uuid>,
    read_ahead: bool,
    targets: Vec<D>,
    room_fetches: u8,
    device_fetches: u8,
    /// The token of this addressing's last fetch of the room's view.
    fetched: Option<ViewFetch>,
}

impl<D> std::fmt::Debug for Addressing<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Addressing")
            .field("room", &self.room)
            .field("purpose", &self.purpose)
            .field("stage", &self.stage)
            .finish_non_exhaustive()
    }
}

/// At most this many fetches of the room's view, and of device lists.
const MAX_FETCHES: u8 = 4;

/// At most this many waits for another statement's post (then the message
/// is sealed anyway: the relay orders it after the statement or not, and a
/// member without the statement still opens it).
const MAX_WAITS: u8 = 50;

enum Devs<D> {
    Need(Need<D>),
    Got(Vec<D>),
}

impl<D: SenderDevice + Clone> Addressing<D> {
    /// Starts one for `room`.
    pub fn new(room: Uuid, purpose: Purpose) -> Self {
        Self {
            room,
            purpose,
            stage: Stage::Observe,
            posting: None,
            in_flight: false,
            waits: 0,
            posted: Vec::new(),
            read_ahead: false,
            targets: Vec::new(),
            room_fetches: 0,
            device_fetches: 0,
            fetched: None,
        }
    }

    /// The room.
    pub fn room(&self) -> Uuid {
        self.room
    }

    /// The statement of the last [`Need::Post`] was refused for good: its
    /// devices do not hold it (forwarded next time). The addressing ends
    /// ([`AddressError::PostRefused`]); the driver reports the refusal.
    pub fn post_refused(&mut self, rooms: &mut Rooms) {
        self.post_ended(rooms);
        rooms.retract(self.room, self.posted.drain(..));
        self.posting = None;
        self.targets.clear();
        self.stage = Stage::Refused;
    }

    /// The statement of the last [`Need::Post`] is stored by the relay, or
    /// queued in the outbox (it goes out before anything queued after it).
    pub fn posted(&mut self, rooms: &mut Rooms) {
        self.post_ended(rooms);
    }

    /// The addressing is over (done, failed, or given up by the driver):
    /// a view of the room it fetched is kept only while room events keep it
    /// right, that is, while this device is `online` and no room event or
    /// new connection overtook the fetch. Otherwise it is dropped, and the
    /// next send fetches it again.
    pub fn finish(&mut self, rooms: &mut Rooms, online: bool) {
        self.post_ended(rooms);
        if let Some(fetch) = self.fetched.take()
            && (!online || rooms.view_overtaken(fetch))
        {
            rooms.drop_fetched_view(self.room);
        }
    }

    fn post_ended(&mut self, rooms: &mut Rooms) {
        if std::mem::take(&mut self.in_flight) {
            rooms.post_ended(self.room);
        }
    }

    /// Runs as far as it can go without the driver.
    pub fn step(
        &mut self,
        me: &Signer<'_>,
        pins: &Pins,
        devices: &Devices<D>,
        rooms: &mut Rooms,
    ) -> Need<D> {
        loop {
            if let Some(plaintext) = self.posting.take() {
                match self.devices_of_allowed(pins, devices, rooms) {
                    Ok(Devs::Got(targets)) => {
                        // Counted as reached before the post, so a concurrent
                        // send does not forward the same statement again.
                        self.posted = targets.iter().map(|t| t.verified().device_id()).collect();
                        rooms.announce(self.room, self.posted.iter().copied());
                        // (A driver that skips `posted` leaves no count behind.)
                        self.post_ended(rooms);
                        rooms.post_started(self.room);
                        self.in_flight = true;
                        return Need::Post { plaintext, targets };
                    }
                    Ok(Devs::Need(need)) => {
                        if !matches!(need, Need::Failed(_)) {
                            self.posting = Some(plaintext);
                        }
                        return need;
                    }
                    Err(e) => return self.fail(e),
                }
            }
            match self.stage {
                Stage::Done => return Need::Done(std::mem::take(&mut self.targets)),
                Stage::Refused => return Need::Failed(AddressError::PostRefused),
                Stage::Observe => {
                    if !rooms.knows(self.room) {
                        return self.fetch_room(rooms);
                    }
                    self.room_fetches = 0;
                    self.stage = Stage::Sign;
                }
                Stage::Sign => {
                    let members = match &self.purpose {
                        Purpose::Send | Purpose::Maintain => rooms.owner_update(self.room),
                        Purpose::Withdraw(user) => rooms.withdrawing(self.room, *user),
                        Purpose::Create(members) => Some(members.clone()),
                        Purpose::Add(_) => None,
                    };
                    let signed = match (&self.purpose, members) {
                        (Purpose::Add(user), _) if rooms.is_owner(self.room) => {
                            Some(rooms.sign_adding(self.room, *user, me.device, me.keys))
                        }
                        (_, Some(members)) => {
                            Some(rooms.sign(self.room, &members, me.device, me.keys))
                        }
                        _ => None,
                    };
                    self.stage = match self.purpose {
                        Purpose::Send => Stage::Unconfirmed,
                        Purpose::Maintain if rooms.is_owner(self.room) => Stage::Targets,
                        Purpose::Maintain => Stage::Unconfirmed,
                        _ => Stage::Done,
                    };
                    match signed {
                        Some(Ok(s)) => {
                            self.posting =
                                Some(Zeroizing::new(Plaintext::membership(&s.to_bytes())))
                        }
                        Some(Err(e)) => return self.fail(e.into()),
                        None => {}
                    }
                }
                Stage::Unconfirmed => {
                    if rooms.unconfirmed_users(self.room).is_empty() {
                        self.stage = self.after_unconfirmed();
                        continue;
                    }
                    if !self.read_ahead {
                        // The statement naming them may be queued behind the
                        // live stream: read it first.
                        self.read_ahead = true;
                        return Need::ReadAhead;
                    }
                    self.stage = self.after_unconfirmed();
                    if let Some(w) = rooms.unconfirmed(self.room) {
                        return Need::Warn(w);
                    }
                }
                Stage::Targets => match self.devices_of_allowed(pins, devices, rooms) {
                    Ok(Devs::Got(targets)) => {
                        self.targets = targets;
                        self.stage = Stage::Forward;
                    }
                    Ok(Devs::Need(need)) => return need,
                    Err(e) => return self.fail(e),
                },
                Stage::Forward => {
                    let pairs: Vec<(Uuid, Uuid)> = self
                        .targets
                        .iter()
                        .map(|t| (t.verified().user_id(), t.verified().device_id()))
                        .collect();
                    self.stage = match self.purpose {
                        Purpose::Maintain => Stage::Unconfirmed,
                        _ => Stage::Done,
                    };
                    if let Some(bytes) = rooms.reposts(self.room, &pairs) {
                        self.posting = Some(Zeroizing::new(Plaintext::membership(&bytes)));
                    } else if self.purpose == Purpose::Send
                        && rooms.posting(self.room)
                        && self.waits < MAX_WAITS
                    {
                        // Another addressing's statement counted these
                        // devices as reached and is being posted: seal after
                        // it is stored, then check the targets again.
                        self.waits += 1;
                        self.stage = Stage::Targets;
                        return Need::Wait;
                    }
                }
            }
        }
    }

    fn after_unconfirmed(&self) -> Stage {
        match self.purpose {
            Purpose::Send => Stage::Targets,
            _ => Stage::Done,
        }
    }

    fn fail(&mut self, e: AddressError) -> Need<D> {
        self.stage = Stage::Done;
        self.posting = None;
        self.targets.clear();
        Need::Failed(e)
    }

    fn fetch_room(&mut self, rooms: &Rooms) -> Need<D> {
        self.room_fetches = self.room_fetches.saturating_add(1);
        if self.room_fetches > MAX_FETCHES {
            return self.fail(AddressError::KeepsChanging(
                "the room keeps changing; try again",
            ));
        }
        let fetch = rooms.fetching_view();
        self.fetched = Some(fetch);
        Need::Room(fetch)
    }

    /// Every active, trusted device of the users allowed in the room, or
    /// what is needed to know them.
    fn devices_of_allowed(
        &mut self,
        pins: &Pins,
        devices: &Devices<D>,
        rooms: &Rooms,
    ) -> Result<Devs<D>, AddressError> {
        let users = match rooms.recipients(self.room) {
            Ok(users) => users,
            // A room event dropped the view since: fetch it again.
            Err(SendRefused::Unknown) => return Ok(Devs::Need(self.fetch_room(rooms))),
            Err(SendRefused::DirectRoomTampered(users)) => {
                return Err(AddressError::DirectRoomTampered(users));
            }
            Err(SendRefused::AwaitingStatement) => return Err(AddressError::MembershipPending),
        };
        match devices.sealable(pins, &users) {
            Ok(targets) => {
                // Each sub-step (a statement's post, the targets) has its own bound.
                self.room_fetches = 0;
                self.device_fetches = 0;
                Ok(Devs::Got(targets.into_iter().map(|(_, d)| d).collect()))
            }
            // Never fetched, or dropped since (`keys_changed`): fetch them.
            Err(Unsealable::Unfetched(missing)) => {
                self.device_fetches = self.device_fetches.saturating_add(1);
                if self.device_fetches > MAX_FETCHES {
                    return Err(AddressError::KeepsChanging(
                        "device lists keep changing; try again",
                    ));
                }
                Ok(Devs::Need(Need::Devices(missing)))
            }
            Err(Unsealable::IdentityChanged(users)) => Err(AddressError::IdentityChanged(users)),
            Err(Unsealable::NoDevices) => Err(AddressError::NoDevices),
        }
    }
}
