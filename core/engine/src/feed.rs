//! The incoming stream of one device, decided once for both clients: room
//! cursors, gaps and `resume`, de-duplication of redelivered and replayed
//! messages, `delivered` receipts, and the [`Changes`] a step leaves for the
//! store.
//!
//! A room's cursor is the last `seq` this device handled (shown, reported
//! undecryptable, or deleted). It moves one step at a time: a message or
//! tombstone that skips ahead (live delivery that overtook the replay) is
//! dropped and the room is resumed from its cursor, once per gap, so nothing is
//! ever skipped. A message the driver cannot check now (the sender's keys did
//! not load, the store failed) is simply not settled: the cursor stays, and the
//! next connection resumes there.
//!
//! ## One step, one store transaction
//!
//! The feed never touches storage. What the driver must keep (cursors, seen
//! message ids, sealed history items, history deletions) collects in a
//! [`Changes`] batch. The driver handles every frame it has at hand (a
//! catch-up of 10,000 messages arrives in bursts), then takes the batch with
//! [`Feed::take_changes`], applies it to its store in **one** transaction, and
//! only then shows the events of those frames and sends their receipts. A crash
//! before the apply loses nothing: the store still holds the old cursors, the
//! relay replays from them, and the frames are handled again (their message
//! ids are not in the store, so they are new again, not replays).
//!
//! If the apply fails, the driver drops the events and reconnects; the next
//! [`Feed::connect`] starts from what the store holds.

use sotto_core::api::{ClientFrame, ReceiptKind};
use uuid::Uuid;

use crate::ids::{IdMap, IdSet};

/// What a step leaves for the store, applied all or none before the step's
/// events are shown (`Store::apply` in the native SDK, `KeyStore.apply` in the
/// npm package). Plain vectors (a step is at most a few hundred frames), which
/// keeps the WASM package small.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// A room's new cursor, once per room (the store keeps the larger of this
    /// and its own).
    pub cursors: Vec<(Uuid, u64)>,
    /// A sender's message id first delivered at a place: `(sender, client
    /// message id, room, seq)`, once per id. A store that knows the id keeps
    /// its first place.
    pub seen: Vec<(Uuid, Uuid, Uuid, u64)>,
    /// Sealed history items to keep at `(room, seq)` (replacing one there),
    /// once per place.
    pub history_put: Vec<(Uuid, u64, Vec<u8>)>,
    /// History items to drop (deleted messages), once per place. Applied
    /// after the puts.
    pub history_delete: Vec<(Uuid, u64)>,
}

impl Changes {
    /// Nothing to apply.
    pub fn is_empty(&self) -> bool {
        self.cursors.is_empty()
            && self.seen.is_empty()
            && self.history_put.is_empty()
            && self.history_delete.is_empty()
    }
}

/// A `resume` request: replay each room after its cursor (`(room, cursor)`,
/// ascending by room).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume(pub Vec<(Uuid, u64)>);

impl Resume {
    /// As the relay frame.
    pub fn frame(&self) -> ClientFrame {
        ClientFrame::Resume {
            cursors: self.0.iter().copied().collect(),
        }
    }
}

/// A `delivered` receipt (`(room, seq)` from [`Feed::receipts`]) as the relay frame.
pub fn receipt_frame((room_id, seq): (Uuid, u64)) -> ClientFrame {
    ClientFrame::Receipt {
        room_id,
        kind: ReceiptKind::Delivered,
        seq,
    }
}

/// Where a message stands against its room's cursor ([`Feed::message`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arrival {
    /// Nothing to do: handled before, or a gap whose `resume` is already asked.
    Skip,
    /// A gap: drop the message and send this `resume` (the replay brings it
    /// back in order).
    Resume(Resume),
    /// This device's own message, handled (its cursor is in the changes).
    Handled,
    /// The next message of its room from someone else: open it, then
    /// [`Feed::settle`] it (or leave it unsettled if it cannot be checked now).
    Open,
}

/// A tombstone against its room's cursor ([`Feed::deletion`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deletion {
    /// Out of history (in the changes): tell the app.
    Deleted,
    /// A gap whose `resume` is already asked: drop it.
    Skip,
    /// A gap: drop it and send this `resume`.
    Resume(Resume),
}

/// Whether a message id was seen before ([`Feed::seen`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// First time.
    New,
    /// The same message at the same place: already handled in a stored step
    /// (its id and its room's cursor are stored in one transaction), so a
    /// redelivery (a relay replaying from an old cursor, a second tab):
    /// settle it without showing it again.
    Again,
    /// The same sender's message id at another place: a replay, refused.
    Replay,
}

/// The incoming stream of one device (see the module docs).
#[derive(Debug, Clone)]
pub struct Feed {
    user_id: Uuid,
    device_id: Uuid,
    /// Last seq handled per room, including what is in `changes`.
    cursors: IdMap<u64>,
    /// Rooms resumed after a gap whose replay has not reached the cursor yet.
    resuming: IdSet,
    /// Highest seq per room to confirm with a `delivered` receipt.
    delivered: IdMap<u64>,
    /// Rooms whose cursor moved since the changes were last taken.
    moved: IdSet,
    /// The store's cursors at connect, for rooms the relay did not list (a
    /// room it left out still resumes from where this device is).
    stored: IdMap<u64>,
    changes: Changes,
}

impl Feed {
    /// The feed of this device (`user_id`, `device_id`), before any connection.
    pub fn new(user_id: Uuid, device_id: Uuid) -> Self {
        Self {
            user_id,
            device_id,
            cursors: IdMap::default(),
            resuming: IdSet::default(),
            delivered: IdMap::default(),
            moved: IdSet::default(),
            stored: IdMap::default(),
            changes: Changes::default(),
        }
    }

    /// A new connection is authenticated: `rooms` are the rooms the relay
    /// lists for this user, `stored` the store's cursors. Forgets everything of
    /// the previous connection (changes it did not apply included: the store is
    /// the truth) and returns the `resume` to send first, before the relay
    /// starts live delivery. `stored` is every cursor the store holds.
    pub fn connect(
        &mut self,
        rooms: impl IntoIterator<Item = Uuid>,
        stored: impl IntoIterator<Item = (Uuid, u64)>,
    ) -> Resume {
        self.stored.clear();
        for (room, cursor) in stored {
            self.stored.insert(room, cursor);
        }
        self.cursors.clear();
        for room in rooms {
            // (no sort: a sort's code weighs kilobytes in the WASM package)
            let cursor = self.stored.get(&room).copied().unwrap_or(0);
            self.cursors.insert(room, cursor);
        }
        self.resuming.clear();
        self.delivered.clear();
        self.moved.clear();
        self.changes = Changes::default();
        Resume(self.cursors.iter().collect())
    }

    /// The cursor of a room as this feed holds it (the store's for a room the
    /// relay did not list; 0: nothing handled).
    pub fn cursor(&self, room_id: Uuid) -> u64 {
        self.cursors
            .get(&room_id)
            .or_else(|| self.stored.get(&room_id))
            .copied()
            .unwrap_or(0)
    }

    fn resume(&mut self, room_id: Uuid) -> Option<Resume> {
        let cursor = self.cursor(room_id);
        self.cursors.insert(room_id, cursor);
        self.resuming
            .insert(room_id)
            .then(|| Resume(vec![(room_id, cursor)]))
    }

    fn advance(&mut self, room_id: Uuid, seq: u64) {
        self.cursors.insert(room_id, seq);
        self.moved.insert(room_id);
    }

    /// A `message` frame arrived.
    pub fn message(
        &mut self,
        room_id: Uuid,
        seq: u64,
        sender_id: Uuid,
        device_id: Uuid,
    ) -> Arrival {
        let cursor = self.cursor(room_id);
        if seq <= cursor {
            return Arrival::Skip;
        }
        if Some(seq) != cursor.checked_add(1) {
            return self.resume(room_id).map_or(Arrival::Skip, Arrival::Resume);
        }
        self.resuming.retain_not([room_id]);
        if sender_id == self.user_id && device_id == self.device_id {
            // Its own message (kept in history when it was sent).
            self.advance(room_id, seq);
            return Arrival::Handled;
        }
        Arrival::Open
    }

    /// Says whether the opened message `client_id` of `sender_id`, at
    /// `room_id`/`seq`, was seen before: in this step's changes, or in the
    /// store (`stored`: where the store says it was first delivered). A new one
    /// is recorded in the changes.
    pub fn seen(
        &mut self,
        sender_id: Uuid,
        client_id: Uuid,
        room_id: Uuid,
        seq: u64,
        stored: Option<(Uuid, u64)>,
    ) -> Seen {
        let pending = self
            .changes
            .seen
            .iter()
            .find(|(s, c, _, _)| (*s, *c) == (sender_id, client_id))
            .map(|(_, _, room, seq)| (*room, *seq));
        match pending.or(stored) {
            None => {
                self.changes.seen.push((sender_id, client_id, room_id, seq));
                Seen::New
            }
            Some(at) if at == (room_id, seq) => Seen::Again,
            Some(_) => Seen::Replay,
        }
    }

    /// The message at `room_id`/`seq` was not handled after all (it comes
    /// again): a sender's id [`Feed::seen`] recorded for it in this step is
    /// dropped, so its redelivery is not taken for one already handled.
    pub fn unsee(&mut self, room_id: Uuid, seq: u64) {
        self.changes
            .seen
            .retain(|(_, _, room, s)| (*room, *s) != (room_id, seq));
    }

    /// The message [`Arrival::Open`] asked for is handled: shown (with its
    /// sealed history item in `kept`), a control message, or reported
    /// undecryptable. Moves the cursor and queues a `delivered` receipt. A
    /// message that is not the room's next one is ignored.
    pub fn settle(&mut self, room_id: Uuid, seq: u64, kept: Option<Vec<u8>>) {
        if self.cursor(room_id).checked_add(1) != Some(seq) {
            return;
        }
        if let Some(sealed) = kept {
            self.changes.history_put.push((room_id, seq, sealed));
        }
        self.advance(room_id, seq);
        self.delivered.insert(room_id, seq);
    }

    /// A `message_deleted` frame arrived. An old or next tombstone takes the
    /// message out of local history (and moves the cursor past the next one);
    /// one that skips ahead is a gap.
    pub fn deletion(&mut self, room_id: Uuid, seq: u64) -> Deletion {
        let cursor = self.cursor(room_id);
        if seq > cursor {
            if Some(seq) != cursor.checked_add(1) {
                return self
                    .resume(room_id)
                    .map_or(Deletion::Skip, Deletion::Resume);
            }
            self.resuming.retain_not([room_id]);
            self.advance(room_id, seq);
        }
        let place = (room_id, seq);
        self.changes
            .history_put
            .retain(|(r, s, _)| (*r, *s) != place);
        if !self.changes.history_delete.contains(&place) {
            self.changes.history_delete.push(place);
        }
        Deletion::Deleted
    }

    /// A `history_start` frame: messages up to `seq` predate this user's
    /// membership, so the room's next visible message is `seq + 1`.
    pub fn history_start(&mut self, room_id: Uuid, seq: u64) {
        if seq > self.cursor(room_id) {
            self.advance(room_id, seq);
        }
        self.resuming.retain_not([room_id]);
    }

    /// This user joined a room the connection did not resume (created, or
    /// added to it): it resumes from the store's cursor for it (as of
    /// [`Feed::connect`]; a room not followed since cannot have moved).
    /// Returns the `resume` to send, or `None` when the room is already
    /// followed.
    pub fn joined(&mut self, room_id: Uuid) -> Option<Resume> {
        if self.cursors.contains_key(&room_id) {
            return None;
        }
        let cursor = self.cursor(room_id);
        self.cursors.insert(room_id, cursor);
        Some(Resume(vec![(room_id, cursor)]))
    }

    /// The `delivered` receipts due (the highest settled seq per room since
    /// the last call, [`receipt_frame`]); send them on the receipt timer.
    pub fn receipts(&mut self) -> Vec<(Uuid, u64)> {
        std::mem::take(&mut self.delivered).into_iter().collect()
    }

    /// Whether `delivered` receipts are due ([`Feed::receipts`]).
    pub fn has_receipts(&self) -> bool {
        !self.delivered.is_empty()
    }

    /// Whether changes wait to be applied.
    pub fn has_changes(&self) -> bool {
        !self.moved.is_empty() || !self.changes.is_empty()
    }

    /// The changes since the last call, to apply in one store transaction
    /// before the events of the frames that made them are shown. Take them
    /// every step: a step's replay check looks through them one by one.
    pub fn take_changes(&mut self) -> Changes {
        let mut changes = std::mem::take(&mut self.changes);
        changes.cursors = std::mem::take(&mut self.moved)
            .into_iter()
            .map(|room| (room, self.cursor(room)))
            .collect();
        changes
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    const ME: Uuid = Uuid::from_u128(1);
    const MY_DEVICE: Uuid = Uuid::from_u128(2);
    const BOB: Uuid = Uuid::from_u128(3);
    const BOB_DEVICE: Uuid = Uuid::from_u128(4);
    const ROOM: Uuid = Uuid::from_u128(10);

    fn feed() -> Feed {
        let mut f = Feed::new(ME, MY_DEVICE);
        let first = f.connect([ROOM], [(ROOM, 3)]);
        assert_eq!(first, Resume(vec![(ROOM, 3)]));
        assert_eq!(
            first.frame(),
            ClientFrame::Resume {
                cursors: [(ROOM, 3)].into()
            }
        );
        f
    }

    #[test]
    fn the_next_message_opens_and_settles_old_ones_are_skipped() {
        let mut f = feed();
        assert_eq!(f.message(ROOM, 3, BOB, BOB_DEVICE), Arrival::Skip);
        assert_eq!(f.message(ROOM, 4, BOB, BOB_DEVICE), Arrival::Open);
        f.settle(ROOM, 4, Some(vec![7]));
        assert_eq!(f.cursor(ROOM), 4);
        assert_eq!(f.message(ROOM, 4, BOB, BOB_DEVICE), Arrival::Skip);
        assert_eq!(f.message(ROOM, 5, ME, MY_DEVICE), Arrival::Handled);
        let c = f.take_changes();
        assert_eq!(c.cursors, vec![(ROOM, 5)]);
        assert_eq!(c.history_put, vec![(ROOM, 4, vec![7])]);
        assert!(!f.has_changes());
        let receipts = f.receipts();
        assert_eq!(receipts, vec![(ROOM, 4)]);
        assert_eq!(
            receipt_frame(receipts[0]),
            ClientFrame::Receipt {
                room_id: ROOM,
                kind: ReceiptKind::Delivered,
                seq: 4
            }
        );
        assert!(f.receipts().is_empty());
    }

    #[test]
    fn a_gap_resumes_once_until_the_replay_arrives() {
        let mut f = feed();
        let resume = Resume(vec![(ROOM, 3)]);
        assert_eq!(f.message(ROOM, 6, BOB, BOB_DEVICE), Arrival::Resume(resume));
        assert_eq!(f.message(ROOM, 7, BOB, BOB_DEVICE), Arrival::Skip);
        assert_eq!(f.deletion(ROOM, 8), Deletion::Skip);
        assert_eq!(f.message(ROOM, 4, BOB, BOB_DEVICE), Arrival::Open);
        f.settle(ROOM, 4, None);
        // The replay reached the cursor: a new gap resumes again.
        assert!(matches!(f.deletion(ROOM, 9), Deletion::Resume(_)));
        assert!(!f.take_changes().history_delete.contains(&(ROOM, 9)));
        assert!(!f.has_changes());
    }

    #[test]
    fn an_unsettled_message_keeps_the_cursor() {
        let mut f = feed();
        assert_eq!(f.message(ROOM, 4, BOB, BOB_DEVICE), Arrival::Open);
        // (the sender's keys did not load: the driver reconnects)
        let resume = f.connect([ROOM], [(ROOM, 3)]);
        assert_eq!(resume, Resume(vec![(ROOM, 3)]));
        assert_eq!(f.message(ROOM, 4, BOB, BOB_DEVICE), Arrival::Open);
        // Settling anything but the next one is ignored.
        f.settle(ROOM, 6, None);
        assert_eq!(f.cursor(ROOM), 3);
    }

    #[test]
    fn seen_checks_the_batch_then_the_store() {
        let mut f = feed();
        let id = Uuid::from_u128(99);
        assert_eq!(f.seen(BOB, id, ROOM, 4, None), Seen::New);
        assert_eq!(f.seen(BOB, id, ROOM, 4, None), Seen::Again);
        assert_eq!(f.seen(BOB, id, ROOM, 5, None), Seen::Replay);
        let c = f.take_changes();
        assert_eq!(c.seen, vec![(BOB, id, ROOM, 4)]);
        assert_eq!(f.seen(BOB, id, ROOM, 4, Some((ROOM, 4))), Seen::Again);
        assert_eq!(f.seen(BOB, id, ROOM, 9, Some((ROOM, 4))), Seen::Replay);
        assert!(!f.has_changes());
    }

    #[test]
    fn deletions_drop_history_and_move_the_next_cursor() {
        let mut f = feed();
        assert_eq!(f.message(ROOM, 4, BOB, BOB_DEVICE), Arrival::Open);
        f.settle(ROOM, 4, Some(vec![1]));
        assert_eq!(f.deletion(ROOM, 4), Deletion::Deleted);
        assert_eq!(f.deletion(ROOM, 4), Deletion::Deleted);
        assert_eq!(f.deletion(ROOM, 5), Deletion::Deleted);
        assert_eq!(f.cursor(ROOM), 5);
        let c = f.take_changes();
        assert!(c.history_put.is_empty(), "kept then deleted in one step");
        assert_eq!(c.history_delete, vec![(ROOM, 4), (ROOM, 5)]);
        assert_eq!(c.cursors, vec![(ROOM, 5)]);
    }

    #[test]
    fn history_start_and_joined_rooms() {
        let mut f = Feed::new(ME, MY_DEVICE);
        let other = Uuid::from_u128(11);
        f.connect([ROOM], [(ROOM, 3), (other, 2)]);
        assert_eq!(f.joined(other), Some(Resume(vec![(other, 2)])));
        assert_eq!(f.joined(other), None);
        assert_eq!(
            f.joined(Uuid::from_u128(12)),
            Some(Resume(vec![(Uuid::from_u128(12), 0)]))
        );
        f.history_start(other, 40);
        f.history_start(other, 10);
        assert_eq!(f.cursor(other), 40);
        assert_eq!(f.message(other, 41, BOB, BOB_DEVICE), Arrival::Open);
        let unknown = Uuid::from_u128(u128::MAX);
        assert_eq!(
            f.message(unknown, u64::MAX, BOB, BOB_DEVICE),
            Arrival::Resume(Resume(vec![(unknown, 0)]))
        );
    }

    #[test]
    fn a_room_the_relay_does_not_list_resumes_from_the_stored_cursor() {
        let mut f = Feed::new(ME, MY_DEVICE);
        let hidden = Uuid::from_u128(12);
        let first = f.connect([ROOM], [(ROOM, 3), (hidden, 40)]);
        assert_eq!(first, Resume(vec![(ROOM, 3)]));
        assert_eq!(f.cursor(hidden), 40);
        assert_eq!(f.message(hidden, 1, BOB, BOB_DEVICE), Arrival::Skip);
        assert_eq!(f.message(hidden, 41, BOB, BOB_DEVICE), Arrival::Open);
        assert_eq!(
            f.message(hidden, 45, BOB, BOB_DEVICE),
            Arrival::Resume(Resume(vec![(hidden, 40)]))
        );
        // Joining it later resumes from the stored cursor too.
        let other = Uuid::from_u128(13);
        f.connect([ROOM], [(other, 7)]);
        assert_eq!(f.joined(other), Some(Resume(vec![(other, 7)])));
    }
}
