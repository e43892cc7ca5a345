//! Room membership the relay cannot forge (`docs/protocol.md` §12.4): who may
//! receive this device's messages in each room, decided from what the room's
//! owner signed and the relay's own list, never from the relay's list alone.
//!
//! [`Rooms`] keeps, per room, a [`RoomRecord`] the driver persists (the peer of
//! a direct room pinned at first sight; the newest accepted membership
//! statement of a group room, or, for a room from before statements, the member
//! list first seen), and the relay's current view in memory. The driver feeds it
//! the relay's room details ([`Rooms::observe`]) and every membership message
//! it opens ([`Rooms::receive`]); it asks it whom to seal to
//! ([`Rooms::recipients`]) and, as the owner, what to sign
//! ([`Rooms::owner_update`], [`Rooms::adding`], [`Rooms::sign`]). Everything that must reach
//! the user comes back as a [`Warning`]; what must be saved, from
//! [`Rooms::take_changes`].

use serde::{Deserialize, Serialize};
use sotto_core::api::RoomDetails;
use sotto_core::encoding::B64;
use sotto_core::keys::{DeviceKeys, VerifiedDevice};
use sotto_core::membership::{self, MembershipError, MembershipStatement, Signer, Successor};
use uuid::Uuid;

use crate::ids::{IdMap, IdSet};

/// What this device keeps about one room's membership (persisted by the driver).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomRecord {
    /// `true` for a direct room.
    #[serde(default)]
    pub direct: bool,
    /// A direct room's other user, pinned the first time this device saw the room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<Uuid>,
    /// A group room's newest accepted membership statement (its bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement: Option<B64>,
    /// A group room without a statement yet: its members as first seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<Vec<Uuid>>,
    /// Users already reported in a [`Warning`] (each is reported once).
    #[serde(default, skip_serializing_if = "IdSet::is_empty")]
    pub reported: IdSet,
    /// Whether the "not yet signed" notice was given.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub noticed_unsigned: bool,
    /// A room this device knew before signed membership existed
    /// ([`Rooms::adopt_legacy`]): until a statement arrives, its members are
    /// pinned as first seen. Any other group room waits for its statement.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub legacy: bool,
    /// The devices known to hold the held statement: those its message was
    /// sealed to, and those this device forwarded it to since ([`Rooms::reposts`]).
    #[serde(default, skip_serializing_if = "IdSet::is_empty")]
    pub announced: IdSet,
    /// As the owner: the members of the held statement the relay has listed
    /// (as members or invited) since it was signed. Only these are dropped
    /// from the next statement when the relay stops listing them; a member
    /// signed in but not yet added is not "gone".
    #[serde(default, skip_serializing_if = "IdSet::is_empty")]
    pub listed: IdSet,
    /// Whether the room's kind (`direct`) is pinned: set the first time this
    /// device saw the room, and never from the relay after that.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub seen: bool,
    /// This device created the room ([`Rooms::created`]): it may sign the
    /// room's first statement. No other device signs a first statement.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub created: bool,
    /// A legacy room: its owner as the relay said when its members were pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_owner: Option<Uuid>,
    /// As the owner: the relay's `member_epoch` of the view the held statement
    /// was signed against. Only views of a later epoch add to
    /// [`RoomRecord::listed`]: a view fetched before the signing (a re-invite
    /// racing a decline) says nothing about whether the relay has listed a
    /// member since.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub signed_epoch: u64,
    /// As the owner: the newest `member_epoch` this device had seen when
    /// [`RoomRecord::announced`] was last emptied or reset (0: unknown). After
    /// a new connection the set is kept only if the room's epoch is still this
    /// one. A device is wrongly counted as reached only when a post was
    /// sealed to a user the relay had removed, which takes a removal and a
    /// re-addition after the reset: two changes of the epoch.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub announced_epoch: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl RoomRecord {
    fn statement(&self) -> Option<MembershipStatement> {
        self.statement
            .as_ref()
            .and_then(|b| MembershipStatement::from_bytes(b.as_bytes()).ok())
    }
}

/// The relay's current view of a room (not persisted: refreshed from the relay).
#[derive(Debug, Clone)]
struct RelayView {
    /// The relay's `member_epoch` when it answered.
    epoch: u64,
    direct: bool,
    owner: Uuid,
    members: Vec<Uuid>,
    invited: Vec<Uuid>,
}

/// Something about a room's membership the user must learn (loud).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "MembershipWarning"))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Warning {
    /// The relay lists members of a group room that no membership statement of
    /// its owner names: nothing is sealed to them.
    Unconfirmed {
        /// The room.
        room_id: Uuid,
        /// Who.
        users: Vec<Uuid>,
    },
    /// A direct room lists someone besides its two users: this device sends
    /// nothing there.
    DirectRoomTampered {
        /// The room.
        room_id: Uuid,
        /// Who besides the pinned pair.
        users: Vec<Uuid>,
    },
    /// A membership statement was refused (forged, replayed, not signed by the
    /// owner, signed by a revoked or unknown device).
    StatementRefused {
        /// The room.
        room_id: Uuid,
        /// Why.
        reason: String,
    },
    /// A group room from before signed membership: its members are pinned as
    /// first seen until its owner signs a statement (a one-time notice).
    Unsigned {
        /// The room.
        room_id: Uuid,
    },
}

/// Why this device will not send in a room now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendRefused {
    /// The relay's view of the room is not known yet: fetch its details.
    #[error("the room's members are not known yet")]
    Unknown,
    /// A direct room lists someone besides its two users.
    #[error("the direct room lists someone besides its two users")]
    DirectRoomTampered(Vec<Uuid>),
    /// A group room this device joined late, before it received the owner's statement.
    #[error("the room's membership statement has not arrived yet")]
    AwaitingStatement,
}

/// What a received statement did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// It is the room's membership from now on.
    Accepted,
    /// The statement held already (a re-post).
    Same,
    /// An older statement of the held lineage (one opened late, after a newer
    /// one): ignored, and not a warning.
    Older,
}

/// Every room's membership as this device decides it.
#[derive(Debug)]
pub struct Rooms {
    me: Uuid,
    records: IdMap<RoomRecord>,
    relay: IdMap<RelayView>,
    /// The newest `member_epoch` seen per room (kept when a view is forgotten):
    /// an answer older than it is stale and never replaces what came after.
    epochs: IdMap<u64>,
    /// Owned rooms whose `announced` set waits for the first view of a new
    /// connection: kept if its epoch is the one it was announced at.
    recheck: IdSet,
    changed: IdSet,
    /// Statement posts under way per room (memory only: after a restart the
    /// outbox posts what is left in order).
    posting: IdMap<u32>,
    /// Bumped whenever a view is forgotten: a view fetched before is not the
    /// relay's current one ([`Rooms::fetching_view`]).
    views: u64,
}

/// A fetch of a room's view the driver is about to make
/// ([`Rooms::fetching_view`]): its answer is taken only if no room event or
/// new connection overtook it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewFetch(u64);

impl ViewFetch {
    /// The fetch's number (the bindings pass it through JavaScript).
    pub fn number(self) -> u64 {
        self.0
    }

    /// A fetch from [`ViewFetch::number`].
    pub fn from_number(n: u64) -> Self {
        Self(n)
    }
}

impl Rooms {
    /// The rooms of user `me`, from the records the driver saved.
    pub fn load(me: Uuid, records: impl IntoIterator<Item = (Uuid, RoomRecord)>) -> Self {
        Self {
            me,
            records: records.into_iter().collect(),
            relay: IdMap::default(),
            epochs: IdMap::default(),
            recheck: IdSet::default(),
            changed: IdSet::default(),
            posting: IdMap::default(),
            views: 0,
        }
    }

    /// The records again from the store (another tab of this device changed
    /// them): the records replaced, every relay view forgotten, and every
    /// view fetch under way overtaken (the count of views goes on; statement
    /// posts under way are kept).
    pub fn reload(&mut self, records: impl IntoIterator<Item = (Uuid, RoomRecord)>) {
        let views = self.views;
        let posting = std::mem::take(&mut self.posting);
        *self = Self::load(self.me, records);
        self.views = views;
        self.posting = posting;
        self.forget_relay_view(None);
    }

    /// Drops a view the driver fetched for one send and cannot keep right
    /// (no live stream): unlike [`Rooms::forget_relay_view`] nothing changed
    /// at the relay, so other fetches under way are not overtaken.
    pub fn drop_fetched_view(&mut self, room: Uuid) {
        self.relay.remove(&room);
    }

    /// The driver is about to fetch a room's view: the token to check with
    /// [`Rooms::view_overtaken`] before observing the answer.
    pub fn fetching_view(&self) -> ViewFetch {
        ViewFetch(self.views)
    }

    /// Whether a view fetched under `fetch` was overtaken (a view was
    /// forgotten since: a room event, a change of this device's own, a new
    /// connection). It is not the relay's current view: the driver does not
    /// observe it (an owner would sign from it), and fetches again.
    pub fn view_overtaken(&self, fetch: ViewFetch) -> bool {
        fetch.0 != self.views
    }

    /// Takes the relay's details of a room fetched under `fetch`
    /// ([`Rooms::fetching_view`]), with the warnings to show; `None` if the
    /// answer was overtaken ([`Rooms::view_overtaken`]): it is not observed,
    /// and the addressing that asked fetches again.
    pub fn observe_fetched(
        &mut self,
        fetch: ViewFetch,
        details: impl Into<crate::room_ops::RoomView>,
    ) -> Option<Vec<Warning>> {
        (!self.view_overtaken(fetch)).then(|| self.observe_view(details.into()))
    }

    /// The record of a room, if any.
    pub fn record(&self, room: Uuid) -> Option<&RoomRecord> {
        self.records.get(&room)
    }

    /// The statement this device holds for a group room.
    pub fn statement(&self, room: Uuid) -> Option<MembershipStatement> {
        self.records.get(&room).and_then(RoomRecord::statement)
    }

    /// The rooms of user `me` when a session opens: the records the driver
    /// saved, or, when the store never saved any (`records` `None`: a store
    /// of a version without signed membership), the rooms this device knew
    /// (`known`: those it keeps a cursor for) adopted as legacy rooms
    /// ([`Rooms::adopt_legacy`]). The driver saves [`Rooms::take_changes`]
    /// next (the store then remembers that records are kept).
    pub fn open(
        me: Uuid,
        records: Option<impl IntoIterator<Item = (Uuid, RoomRecord)>>,
        known: impl IntoIterator<Item = Uuid>,
    ) -> Self {
        match records {
            Some(records) => Self::load(me, records),
            None => {
                let mut rooms = Self::load(me, []);
                rooms.adopt_legacy(known);
                rooms
            }
        }
    }

    /// Marks rooms this device knew before it kept membership records (the
    /// first start of a version with signed membership): each is pinned as
    /// first seen until its owner signs a statement (§12.4, "Rooms made before
    /// statements existed"). Rooms with a record already are left alone.
    pub fn adopt_legacy(&mut self, rooms: impl IntoIterator<Item = Uuid>) {
        for room in rooms {
            if !self.records.contains_key(&room) {
                self.records.insert(
                    room,
                    RoomRecord {
                        legacy: true,
                        ..RoomRecord::default()
                    },
                );
                self.changed.insert(room);
            }
        }
    }

    /// Records that changed since the last call, to save (`None`: delete).
    pub fn take_changes(&mut self) -> Vec<(Uuid, Option<RoomRecord>)> {
        std::mem::take(&mut self.changed)
            .into_iter()
            .map(|id| (id, self.records.get(&id).cloned()))
            .collect()
    }

    /// Whether the relay's view of `room` is known (else fetch its details).
    pub fn knows(&self, room: Uuid) -> bool {
        self.relay.contains_key(&room)
    }

    /// Forgets the relay's view of one room (a room event: fetch it again) or of
    /// all (a new connection). A new connection may have missed a
    /// `member_added`: as the owner, a held statement is forwarded again with
    /// the next message of its room ([`Rooms::member_added`]) unless the room's
    /// first view on the new connection has the `member_epoch` the statement
    /// was last announced at ([`RoomRecord::announced_epoch`]).
    pub fn forget_relay_view(&mut self, room: Option<Uuid>) {
        self.views = self.views.wrapping_add(1);
        match room {
            Some(r) => {
                self.relay.remove(&r);
            }
            None => {
                self.relay.clear();
                // Epochs start again with the connection: a relay that once
                // answered an absurd epoch cannot freeze a room's view for good.
                self.epochs.clear();
                let owned: Vec<Uuid> = self
                    .records
                    .keys()
                    .filter(|r| self.statement(*r).is_some_and(|s| s.owner() == self.me))
                    .collect();
                for room in owned {
                    self.recheck.insert(room);
                }
            }
        }
    }

    /// Forgets a room entirely, its record too. Only for a decision of this
    /// user's own (the app deleting local data): never on the relay's word, or
    /// the relay could make the client forget a pinned peer or the held
    /// statement, then pin someone else or replay an older statement.
    pub fn remove(&mut self, room: Uuid) {
        self.relay.remove(&room);
        if self.records.remove(&room).is_some() {
            self.changed.insert(room);
        }
    }

    /// Takes the relay's view of a room; returns what the user must learn.
    pub fn observe(&mut self, details: &RoomDetails) -> Vec<Warning> {
        self.observe_view(details.into())
    }

    /// [`Rooms::observe`] from a [`RoomView`](crate::room_ops::RoomView).
    pub fn observe_view(&mut self, v: crate::room_ops::RoomView) -> Vec<Warning> {
        self.observe_parts(
            v.id,
            v.member_epoch,
            v.direct,
            v.owner,
            v.members,
            v.invited,
        )
    }

    /// [`Rooms::observe`] from the fields it reads: the room, its
    /// `member_epoch`, whether it is direct, its owner, its members and the
    /// users invited (for drivers that do not parse the whole `RoomDetails`,
    /// such as the WASM bindings).
    ///
    /// A view older than one already seen (a smaller `member_epoch`: an
    /// answer overtaken by a later change) is stale: ignored, no warnings.
    pub fn observe_parts(
        &mut self,
        room: Uuid,
        epoch: u64,
        direct: bool,
        owner: Uuid,
        members: Vec<Uuid>,
        invited: Vec<Uuid>,
    ) -> Vec<Warning> {
        let newest = self.epochs.or_default(room);
        if epoch < *newest {
            return Vec::new();
        }
        *newest = epoch;
        if self.recheck.contains(&room) {
            self.recheck.retain_not([room]);
            let kept = self
                .records
                .get(&room)
                .is_some_and(|r| r.announced_epoch != 0 && r.announced_epoch == epoch);
            if !kept {
                self.member_added(room);
            }
        }
        // An empty set holds no device counted wrongly: its basis may move up.
        if let Some(r) = self.records.get_mut(&room)
            && r.announced.is_empty()
            && r.statement.is_some()
            && r.announced_epoch != epoch
        {
            r.announced_epoch = epoch;
            self.changed.insert(room);
        }
        let view = RelayView {
            epoch,
            direct,
            owner,
            members,
            invited,
        };
        let me = self.me;
        let record = self.records.or_default(room);
        let before = record.clone();
        // The kind is pinned at first sight (a room holding a statement, or
        // created here, is a group): the relay cannot turn a group into a
        // direct room to get around its statement, nor the reverse.
        if !record.seen {
            record.seen = true;
            record.direct = view.direct && record.statement.is_none() && !record.created;
        }
        let view = RelayView {
            direct: record.direct,
            ..view
        };
        let mut warnings = Vec::new();
        if view.direct {
            record.direct = true;
            if record.peer.is_none() {
                // Pinned at first sight: the other member, or the one invited.
                let others: Vec<Uuid> = view.members.iter().copied().filter(|u| *u != me).collect();
                record.peer = match (others.as_slice(), view.invited.as_slice()) {
                    ([peer], _) => Some(*peer),
                    ([], [peer]) => Some(*peer),
                    _ => None,
                };
            }
            let extra = direct_extras(&view, me, record.peer);
            let new: Vec<Uuid> = extra
                .iter()
                .copied()
                .filter(|u| record.reported.insert(*u))
                .collect();
            if !new.is_empty() {
                warnings.push(Warning::DirectRoomTampered {
                    room_id: room,
                    users: new,
                });
            }
        } else {
            if let Some(s) = record
                .statement()
                .filter(|s| s.owner() == me && view.epoch > record.signed_epoch)
            {
                for u in view.members.iter().chain(&view.invited) {
                    if s.lists(*u) {
                        record.listed.insert(*u);
                    }
                }
            }
            // A legacy room without a statement pins the members first seen.
            if record.statement.is_none() && record.legacy && record.first_seen.is_none() {
                record.first_seen = Some(view.members.clone());
                record.first_owner = Some(view.owner);
                if view.owner != me && !record.noticed_unsigned {
                    record.noticed_unsigned = true;
                    warnings.push(Warning::Unsigned { room_id: room });
                }
            }
            // Members no statement names are reported by [`Rooms::unconfirmed`],
            // once the driver has caught up with the room's messages (the
            // statement naming them may be among those not opened yet).
        }
        if *record != before {
            self.changed.insert(room);
        }
        self.relay.insert(room, view);
        warnings
    }

    /// The users whose devices may receive this device's next message in
    /// `room` (this user among them): those the relay lists as members that the
    /// held statement (or the pinned first-seen list, or the pinned peer) also
    /// names. Anyone else gets nothing.
    pub fn recipients(&self, room: Uuid) -> Result<Vec<Uuid>, SendRefused> {
        let view = self.relay.get(&room).ok_or(SendRefused::Unknown)?;
        let record = self.records.get(&room).ok_or(SendRefused::Unknown)?;
        if view.direct {
            let extra = direct_extras(view, self.me, record.peer);
            if !extra.is_empty() {
                return Err(SendRefused::DirectRoomTampered(extra));
            }
            return Ok(view.members.clone());
        }
        let allowed = match (record.statement(), &record.first_seen) {
            (Some(s), _) => s.members().to_vec(),
            (None, Some(first)) => first.clone(),
            (None, None) => return Err(SendRefused::AwaitingStatement),
        };
        Ok(view
            .members
            .iter()
            .copied()
            .filter(|u| allowed.contains(u))
            .collect())
    }

    /// The users the relay lists in a group room that the held statement (or the
    /// first-seen pin) does not name. Before warning about them, the driver
    /// catches up with the room's messages: a statement naming them may be
    /// among those it has not opened yet.
    pub fn unconfirmed_users(&self, room: Uuid) -> Vec<Uuid> {
        let (Some(view), Some(record)) = (self.relay.get(&room), self.records.get(&room)) else {
            return Vec::new();
        };
        if view.direct {
            return Vec::new();
        }
        let allowed = match (record.statement(), &record.first_seen) {
            (Some(s), _) => s.members().to_vec(),
            (None, Some(first)) => first.clone(),
            (None, None) => return Vec::new(),
        };
        view.members
            .iter()
            .copied()
            .filter(|u| !allowed.contains(u))
            .collect()
    }

    /// The warning about [`Rooms::unconfirmed_users`] not reported yet (each
    /// user once, until a statement names them).
    pub fn unconfirmed(&mut self, room: Uuid) -> Option<Warning> {
        let users = self.unconfirmed_users(room);
        let record = self.records.get_mut(&room)?;
        let new: Vec<Uuid> = users
            .into_iter()
            .filter(|u| record.reported.insert(*u))
            .collect();
        if new.is_empty() {
            return None;
        }
        self.changed.insert(room);
        Some(Warning::Unconfirmed {
            room_id: room,
            users: new,
        })
    }

    /// Takes a membership statement opened from a message in `room`, signed (as
    /// it says) by `signer`: a device the driver verified against the signer's
    /// pinned identity and found not revoked before the message was stored
    /// (`None` when it could not: unknown, other identity, revoked). A refusal
    /// leaves the held statement as it was and comes back as a warning.
    pub fn receive(
        &mut self,
        room: Uuid,
        bytes: &[u8],
        signer: Option<&VerifiedDevice>,
        reached: &[Uuid],
    ) -> Result<Received, Warning> {
        let refuse = |reason: String| Warning::StatementRefused {
            room_id: room,
            reason,
        };
        let statement =
            MembershipStatement::from_bytes(bytes).map_err(|e| refuse(e.to_string()))?;
        let signer = signer.ok_or_else(|| {
            refuse(format!(
                "signed by device {} of {}, which is not a trusted device of theirs",
                statement.signer_device(),
                statement.signer_user()
            ))
        })?;
        statement
            .verify_signature(signer)
            .map_err(|e| refuse(e.to_string()))?;
        let record = self.records.or_default(room);
        let held = record.statement();
        match membership::check_successor(room, held.as_ref(), &statement) {
            Ok(Successor::Same) => {
                if reached.iter().any(|d| record.announced.insert(*d)) {
                    // A post read from the backlog may predate a removal and
                    // re-addition the epoch already counts: after the next
                    // connection the set is checked again.
                    record.announced_epoch = 0;
                    self.changed.insert(room);
                }
                Ok(Received::Same)
            }
            Ok(Successor::Newer) => {
                record.statement = Some(B64(statement.to_bytes()));
                record.announced = reached.iter().copied().collect();
                // (As above: whom a post reached is trusted only until the
                // next connection.)
                record.announced_epoch = 0;
                record.first_seen = None;
                // Users named now may be reported again if they are dropped later.
                record.reported.retain(|u| !statement.lists(*u));
                self.changed.insert(room);
                Ok(Received::Accepted)
            }
            Err(MembershipError::Stale) => Ok(Received::Older),
            Err(e) => Err(refuse(e.to_string())),
        }
    }

    /// Whether this user owns `room`: as its held statement says, or, with none,
    /// as the relay says.
    pub fn is_owner(&self, room: Uuid) -> bool {
        match self.statement(room) {
            Some(s) => s.owner() == self.me,
            None => self
                .records
                .get(&room)
                .is_some_and(|r| self.may_sign_first(r)),
        }
    }

    /// Whether this device may sign a room's first statement: it created the
    /// room, or (a room from before statements) the relay named this user its
    /// owner when the members were pinned. Never on the relay's word now: a
    /// relay that names a member owner would have it sign the relay's list.
    fn may_sign_first(&self, record: &RoomRecord) -> bool {
        !record.direct && (record.created || (record.legacy && record.first_owner == Some(self.me)))
    }

    /// As the owner: the member list to sign now for `room`, if the held
    /// statement does not say it yet (the first statement of a room, or
    /// members the relay reports gone). `None` when nothing is to be signed or
    /// this user is not the owner.
    pub fn owner_update(&self, room: Uuid) -> Option<Vec<Uuid>> {
        let view = self.relay.get(&room)?;
        let record = self.records.get(&room)?;
        if view.direct {
            return None;
        }
        let held = record.statement();
        let mine = match &held {
            Some(s) => s.owner() == self.me,
            None => self.may_sign_first(record),
        };
        if !mine {
            return None;
        }
        let base: Vec<Uuid> = match (&held, &record.first_seen) {
            (Some(s), _) => s.members().to_vec(),
            (None, Some(first)) => first.clone(),
            (None, None) => view.members.clone(),
        };
        // Gone: listed by the relay since the statement, and no longer.
        let mut want: Vec<Uuid> = base
            .iter()
            .copied()
            .filter(|u| {
                view.members.contains(u)
                    || view.invited.contains(u)
                    || (held.is_some() && !record.listed.contains(u))
            })
            .collect();
        if !want.contains(&self.me) {
            want.push(self.me);
        }
        want.sort_unstable();
        match &held {
            Some(s) if s.members() == want.as_slice() => None,
            _ => Some(want),
        }
    }

    /// As the owner: signs `room`'s next statement with `members` (this user
    /// included) and holds it. The driver posts its bytes in the room
    /// ([`crate::Plaintext::membership`]) before asking the relay to add anyone.
    /// Refused (`NotOwner`) when the held statement names another owner.
    pub fn sign(
        &mut self,
        room: Uuid,
        members: &[Uuid],
        device: Uuid,
        keys: &DeviceKeys,
    ) -> Result<MembershipStatement, MembershipError> {
        if !self.is_owner(room) {
            return Err(MembershipError::NotOwner);
        }
        let record = self.records.or_default(room);
        let held = record.statement();
        // Only the owner the held statement names signs the next one (ownership
        // passes by a statement the owner signs, never by taking it).
        if held.as_ref().is_some_and(|s| s.owner() != self.me) {
            return Err(MembershipError::NotOwner);
        }
        let epoch = held.map_or(1, |s| s.epoch().saturating_add(1));
        let mut all = members.to_vec();
        all.push(self.me);
        let statement = MembershipStatement::sign(
            room,
            epoch,
            self.me,
            &all,
            Signer {
                user: self.me,
                device,
                keys,
            },
        )?;
        record.statement = Some(B64(statement.to_bytes()));
        record.first_seen = None;
        record.reported.retain(|u| !statement.lists(*u));
        // Only the signing device holds it yet: the driver's post marks whom it reaches.
        record.announced.clear();
        record.announced.insert(device);
        record.announced_epoch = self.epochs.get(&room).copied().unwrap_or(0);
        // Listed since the signing: those the view it was signed against
        // lists (members or invited). [`Rooms::sign_adding`] leaves out the
        // user it adds: the view may predate their removal or declining.
        let view = self.relay.get(&room);
        record.signed_epoch = view.map_or(0, |v| v.epoch);
        record.listed = view
            .map(|v| {
                v.members
                    .iter()
                    .chain(&v.invited)
                    .copied()
                    .filter(|u| statement.lists(*u))
                    .collect()
            })
            .unwrap_or_default();
        self.changed.insert(room);
        Ok(statement)
    }

    /// As the owner, before asking the relay to add or invite `user`: signs
    /// and holds the next statement ([`Rooms::adding`]'s members) as
    /// [`Rooms::sign`] does, except that `user` does not count as listed by the
    /// relay since the signing, even if the view it was signed against lists
    /// them: that view may predate their removal (or their declining), and a
    /// later view without them says nothing about this new addition.
    pub fn sign_adding(
        &mut self,
        room: Uuid,
        user: Uuid,
        device: Uuid,
        keys: &DeviceKeys,
    ) -> Result<MembershipStatement, MembershipError> {
        let members = self.adding(room, user);
        let statement = self.sign(room, &members, device, keys)?;
        if let Some(record) = self.records.get_mut(&room) {
            record.listed.retain_not([user]);
        }
        Ok(statement)
    }

    /// As the owner, after the relay added or invited `user` (its answer to
    /// the request [`Rooms::sign_adding`] came before): they count as listed
    /// from now on, so a later view without them (they declined, left, or
    /// were removed) signs them out. Answers fetched before the request are
    /// the driver's to drop (it forgets the room's view on its own change).
    pub fn added(&mut self, room: Uuid, user: Uuid) {
        let owner = self
            .statement(room)
            .is_some_and(|s| s.owner() == self.me && s.lists(user));
        if let Some(record) = self.records.get_mut(&room).filter(|_| owner)
            && record.listed.insert(user)
        {
            self.changed.insert(room);
        }
    }

    /// A room event of the relay (a `room` frame): the relay's view of the
    /// room is dropped (fetched again on next use, and any fetch under way is
    /// overtaken); after `member_added`, the owner forwards its statement
    /// again ([`Rooms::member_added`]). Whether the driver should now fetch
    /// the room's view and run the addressing's `Maintain` (so that the owner
    /// signs or forwards, and anyone unsigned is warned about): not for a
    /// deleted room, whose record stays (the pinned peer, the held statement:
    /// a relay that could make a client forget them could then pin someone
    /// else, or replay an older statement as a first one).
    pub fn room_changed(&mut self, room: Uuid, change: sotto_core::api::RoomChange) -> bool {
        use sotto_core::api::RoomChange;
        self.forget_relay_view(Some(room));
        match change {
            RoomChange::Deleted => false,
            RoomChange::MemberAdded => {
                // Whoever joined (or rejoined) may not hold the owner's statement.
                self.member_added(room);
                true
            }
            RoomChange::Created
            | RoomChange::Renamed
            | RoomChange::MemberRemoved
            | RoomChange::MemberInvited
            | RoomChange::InvitationRemoved => true,
        }
    }

    /// As the owner, after the relay reported a member added (`member_added`:
    /// a join, or a rejoin after a removal): the held statement is forwarded
    /// to every member device again with the next message. Whom its posts were
    /// sealed to says nothing about a rejoining member: a post sealed to their
    /// device from a view that still listed them after their removal never
    /// reached them, and their history starts again at the rejoin.
    pub fn member_added(&mut self, room: Uuid) {
        let owner = self.statement(room).is_some_and(|s| s.owner() == self.me);
        let epoch = self.epochs.get(&room).copied().unwrap_or(0);
        if let Some(record) = self.records.get_mut(&room).filter(|_| owner)
            && (!record.announced.is_empty() || record.announced_epoch != epoch)
        {
            record.announced.clear();
            record.announced_epoch = epoch;
            self.changed.insert(room);
        }
    }

    /// As the owner, before adding or inviting `user`: the member list of the
    /// next statement (the held members the relay still lists, and `user`).
    pub fn adding(&self, room: Uuid, user: Uuid) -> Vec<Uuid> {
        let mut base = self.owner_update(room).unwrap_or_else(|| {
            self.statement(room)
                .map(|s| s.members().to_vec())
                .unwrap_or_default()
        });
        base.push(user);
        base
    }

    /// As the owner, after the relay refused to add `user` whom the held
    /// statement already names: the member list of the statement that takes
    /// them out again (`None` if it does not name them).
    pub fn withdrawing(&self, room: Uuid, user: Uuid) -> Option<Vec<Uuid>> {
        let held = self.statement(room)?;
        if held.owner() != self.me || !held.lists(user) {
            return None;
        }
        Some(
            held.members()
                .iter()
                .copied()
                .filter(|u| *u != user)
                .collect(),
        )
    }

    /// The held statement's bytes to forward with the next message sealed to
    /// `targets` (user, device), when some of those devices are not known to
    /// hold it: members who joined after it was posted, new devices of
    /// members. The owner forwards to every such device; any other member to
    /// the new devices of its own user (a statement is self-authenticating, so
    /// who forwards it does not matter to the receiver). The driver then calls
    /// [`Rooms::announce`] with the devices its post reached.
    pub fn reposts(&self, room: Uuid, targets: &[(Uuid, Uuid)]) -> Option<Vec<u8>> {
        let record = self.records.get(&room)?;
        let statement = record.statement()?;
        let owner = statement.owner() == self.me;
        targets
            .iter()
            .any(|(user, device)| {
                statement.lists(*user)
                    && (owner || *user == self.me)
                    && !record.announced.contains(device)
            })
            .then(|| statement.to_bytes())
    }

    /// This device created `room` (a group): it signs the room's first
    /// statement. Call before anything else about the room.
    pub fn created(&mut self, room: Uuid) {
        let record = self.records.or_default(room);
        record.seen = true;
        record.direct = false;
        record.created = true;
        self.changed.insert(room);
    }

    /// This user asked for the direct room with `peer`: the room's kind and
    /// peer are pinned now, not from what the relay lists first.
    pub fn expect_peer(&mut self, room: Uuid, peer: Uuid) {
        let record = self.records.or_default(room);
        if !record.seen {
            record.seen = true;
            record.direct = true;
        }
        if record.direct && record.peer.is_none() {
            record.peer = Some(peer);
        }
        self.changed.insert(room);
    }

    /// A statement's post in `room` begins (its devices were announced).
    pub fn post_started(&mut self, room: Uuid) {
        *self.posting.or_default(room) += 1;
    }

    /// A statement's post in `room` ended (stored, queued in the outbox, or
    /// refused).
    pub fn post_ended(&mut self, room: Uuid) {
        if let Some(n) = self.posting.get_mut(&room) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.posting.remove(&room);
            }
        }
    }

    /// Whether a statement's post in `room` is under way: a message sealed to
    /// the devices it announced must not overtake it.
    pub fn posting(&self, room: Uuid) -> bool {
        self.posting.contains_key(&room)
    }

    /// The post of the held statement to `devices` failed for good: they do
    /// not hold it (it is forwarded again next time).
    pub fn retract(&mut self, room: Uuid, devices: impl IntoIterator<Item = Uuid>) {
        if let Some(record) = self.records.get_mut(&room) {
            record.announced.retain_not(devices);
            self.changed.insert(room);
        }
    }

    /// Records that the held statement of `room` was posted to `devices`.
    pub fn announce(&mut self, room: Uuid, devices: impl IntoIterator<Item = Uuid>) {
        if let Some(record) = self.records.get_mut(&room) {
            let mut changed = false;
            for d in devices {
                changed |= record.announced.insert(d);
            }
            if changed {
                self.changed.insert(room);
            }
        }
    }
}

/// Members of a direct room besides this user and its pinned peer.
fn direct_extras(view: &RelayView, me: Uuid, peer: Option<Uuid>) -> Vec<Uuid> {
    view.members
        .iter()
        .copied()
        .filter(|u| *u != me && Some(*u) != peer)
        .collect()
}

/// Why saved record bytes were refused ([`RoomRecord::from_bytes`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Shorter than its fields say, or bytes left over.
    #[error("the room record is truncated or has trailing bytes")]
    Truncated,
    /// A format this version does not know.
    #[error("unknown room record version {0}")]
    Version(u8),
    /// Flags this version does not know, or a set not strictly ascending.
    #[error("the room record is not in its canonical form")]
    NotCanonical,
}

/// Record format version of [`RoomRecord::to_bytes`].
const RECORD_VERSION: u8 = 1;

impl RoomRecord {
    /// The record as compact bytes for a store (the browser client keeps these;
    /// its layout is private to the engine): version, flags, then the optional
    /// peer, statement and first-seen list, then the three id sets.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![RECORD_VERSION];
        let flags = u8::from(self.direct)
            | u8::from(self.noticed_unsigned) << 1
            | u8::from(self.legacy) << 2
            | u8::from(self.peer.is_some()) << 3
            | u8::from(self.statement.is_some()) << 4
            | u8::from(self.first_seen.is_some()) << 5
            | u8::from(self.seen) << 6
            | u8::from(self.created) << 7;
        out.push(flags);
        out.push(
            u8::from(self.first_owner.is_some())
                | u8::from(self.signed_epoch != 0) << 1
                | u8::from(self.announced_epoch != 0) << 2,
        );
        if let Some(p) = self.peer {
            out.extend_from_slice(p.as_bytes());
        }
        if let Some(o) = self.first_owner {
            out.extend_from_slice(o.as_bytes());
        }
        if self.signed_epoch != 0 {
            out.extend_from_slice(&self.signed_epoch.to_be_bytes());
        }
        if self.announced_epoch != 0 {
            out.extend_from_slice(&self.announced_epoch.to_be_bytes());
        }
        if let Some(s) = &self.statement {
            put_len(&mut out, s.as_bytes().len());
            out.extend_from_slice(s.as_bytes());
        }
        if let Some(f) = &self.first_seen {
            put_ids(&mut out, f.iter());
        }
        for set in [&self.reported, &self.announced, &self.listed] {
            put_ids(&mut out, set.iter());
        }
        out
    }

    /// Parses [`RoomRecord::to_bytes`] strictly: what parses re-encodes to the same bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, RecordError> {
        let mut r = ByteReader(bytes);
        let version = r.u8()?;
        if version != RECORD_VERSION {
            return Err(RecordError::Version(version));
        }
        let flags = r.u8()?;
        let more = r.u8()?;
        if more >> 3 != 0 {
            return Err(RecordError::NotCanonical);
        }
        let bit = |n: u8| flags & (1 << n) != 0;
        let peer = if bit(3) { Some(r.uuid()?) } else { None };
        let first_owner = if more & 1 != 0 { Some(r.uuid()?) } else { None };
        let signed_epoch = if more & 2 != 0 {
            let n = r.u64()?;
            if n == 0 {
                return Err(RecordError::NotCanonical);
            }
            n
        } else {
            0
        };
        let announced_epoch = if more & 4 != 0 {
            let n = r.u64()?;
            if n == 0 {
                return Err(RecordError::NotCanonical);
            }
            n
        } else {
            0
        };
        let statement = if bit(4) {
            let n = r.len()?;
            Some(B64(r.take(n)?.to_vec()))
        } else {
            None
        };
        let first_seen = if bit(5) { Some(r.ids()?) } else { None };
        let reported = r.set()?;
        let announced = r.set()?;
        let listed = r.set()?;
        if !r.0.is_empty() {
            return Err(RecordError::Truncated);
        }
        Ok(Self {
            direct: bit(0),
            peer,
            statement,
            first_seen,
            reported,
            noticed_unsigned: bit(1),
            legacy: bit(2),
            announced,
            listed,
            seen: bit(6),
            created: bit(7),
            first_owner,
            signed_epoch,
            announced_epoch,
        })
    }
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes());
}

fn put_ids<'a>(out: &mut Vec<u8>, ids: impl ExactSizeIterator<Item = &'a Uuid>) {
    put_len(out, ids.len());
    for id in ids {
        out.extend_from_slice(id.as_bytes());
    }
}

struct ByteReader<'a>(&'a [u8]);

impl<'a> ByteReader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        if self.0.len() < n {
            return Err(RecordError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, RecordError> {
        self.take(1)?.first().copied().ok_or(RecordError::Truncated)
    }
    fn len(&mut self) -> Result<usize, RecordError> {
        let b: [u8; 4] = self
            .take(4)?
            .try_into()
            .map_err(|_| RecordError::Truncated)?;
        usize::try_from(u32::from_be_bytes(b)).map_err(|_| RecordError::Truncated)
    }
    fn u64(&mut self) -> Result<u64, RecordError> {
        let b: [u8; 8] = self
            .take(8)?
            .try_into()
            .map_err(|_| RecordError::Truncated)?;
        Ok(u64::from_be_bytes(b))
    }
    fn uuid(&mut self) -> Result<Uuid, RecordError> {
        let b: [u8; 16] = self
            .take(16)?
            .try_into()
            .map_err(|_| RecordError::Truncated)?;
        Ok(Uuid::from_bytes(b))
    }
    fn ids(&mut self) -> Result<Vec<Uuid>, RecordError> {
        let n = self.len()?;
        // Each id takes 16 bytes: a count the rest cannot hold is refused before allocating.
        if n > self.0.len() / 16 {
            return Err(RecordError::Truncated);
        }
        (0..n).map(|_| self.uuid()).collect()
    }
    fn set(&mut self) -> Result<IdSet, RecordError> {
        let ids = self.ids()?;
        if !ids.windows(2).all(|w| w.first() < w.get(1)) {
            return Err(RecordError::NotCanonical);
        }
        Ok(ids.into_iter().collect())
    }
}
