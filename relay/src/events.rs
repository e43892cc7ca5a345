//! The event registry: every state change other users should hear about (a
//! message, a receipt, a room change, a user's keys) is published here with its
//! audience, as the WebSocket frame it becomes, and delivered to the
//! subscriptions of exactly those users.
//!
//! - Subscriptions are keyed by user: publishing to an audience touches only the
//!   queues of its members, never every subscriber (a socket sees only what is
//!   addressed to its user).
//! - Each subscription has a bounded queue. A subscriber that falls behind is not
//!   waited for: its queue overflows, it is marked lagged, and its next `recv`
//!   says so (the socket closes with 4408 and the client resumes from its cursors).
//!   Publishing never blocks and never slows delivery to others.
//! - The audience is computed once per event by the publisher, from what it knows
//!   already ([`Events::publish`]), or read once when it does not
//!   ([`Events::publish_to_room`], skipped when nobody subscribes at all).
//! - A PostgreSQL notifier (several relays) feeds remote events in through the
//!   same [`Events::publish`].
//!
//! Delivery is best effort by design: the database is the source of truth and
//! clients that miss events resume from their cursors.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use sotto_core::api::ServerFrame;
use tokio::sync::mpsc;
use uuid::Uuid;

/// Queue length of one subscription unless the subscriber asks otherwise.
pub const DEFAULT_QUEUE: usize = 256;

/// Why a subscription yields no more events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecvError {
    /// The queue overflowed: at least one event was lost.
    #[error("the subscriber fell behind and lost events")]
    Lagged,
    /// The registry is gone (the relay is shutting down).
    #[error("the event registry closed")]
    Closed,
}

/// A published frame, and its JSON text, encoded once for all the sockets it
/// goes to (a message to a room of ten is serialized, with its base64
/// envelope, once rather than ten times). Dereferences to the frame.
pub struct Event {
    frame: ServerFrame,
    text: std::sync::OnceLock<Result<axum::extract::ws::Utf8Bytes, ()>>,
}

impl Event {
    pub fn new(frame: ServerFrame) -> Self {
        Self {
            frame,
            text: std::sync::OnceLock::new(),
        }
    }

    /// The frame as JSON text (a cheap clone of the shared bytes after the
    /// first call); `None` if it cannot be encoded.
    pub fn text(&self) -> Option<axum::extract::ws::Utf8Bytes> {
        self.text
            .get_or_init(|| {
                serde_json::to_string(&self.frame)
                    .map(axum::extract::ws::Utf8Bytes::from)
                    .map_err(|_| ())
            })
            .as_ref()
            .ok()
            .cloned()
    }
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Event").field(&self.frame).finish()
    }
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.frame == other.frame
    }
}

impl std::ops::Deref for Event {
    type Target = ServerFrame;
    fn deref(&self) -> &ServerFrame {
        &self.frame
    }
}

struct Slot {
    id: u64,
    tx: mpsc::Sender<Arc<Event>>,
    lagged: Arc<AtomicBool>,
}

#[derive(Default)]
struct Inner {
    by_user: RwLock<HashMap<Uuid, Vec<Arc<Slot>>>>,
    next_id: AtomicU64,
    /// Where events go to the other relays sharing the database (PostgreSQL
    /// only; see `crate::fanout`).
    forward: std::sync::OnceLock<mpsc::Sender<Remote>>,
    /// Room members as of a membership epoch (see [`Events::publish_message`]).
    members: std::sync::Mutex<HashMap<Uuid, MembersAt>>,
}

/// A room's membership epoch and its members at that epoch.
type MembersAt = (i64, Arc<[Uuid]>);

/// Rooms whose members are remembered at most (the memory is dropped whole
/// past it; it refills from the next posts).
const MEMBER_CACHE_ROOMS: usize = 10_000;

/// An event as it travels to the other relays: small (a PostgreSQL `NOTIFY`
/// payload is at most 8000 bytes), so a message travels as its ids and the
/// receiving relay reads the row, and a room's audience is read by the
/// receiver.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub enum Remote {
    /// A frame for these users.
    Frame { a: Vec<Uuid>, f: ServerFrame },
    /// A frame for the members of a room.
    Room { room: Uuid, f: ServerFrame },
    /// A stored message, for the members of its room.
    Message { room: Uuid, id: Uuid },
}

/// The registry (cheap to clone; clones share it).
#[derive(Clone, Default)]
pub struct Events {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("users", &self.read().len())
            .finish()
    }
}

/// One subscriber's stream of the frames addressed to its user. Dropping it
/// unsubscribes.
pub struct Subscription {
    user: Uuid,
    id: u64,
    /// Shared with the registry's slot; the sender stays in the registry only, so
    /// the channel closes when the registry goes.
    lagged: Arc<AtomicBool>,
    rx: mpsc::Receiver<Arc<Event>>,
    registry: std::sync::Weak<Inner>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("user", &self.user)
            .finish()
    }
}

impl Events {
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Uuid, Vec<Arc<Slot>>>> {
        self.inner
            .by_user
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Subscribes to the frames addressed to `user`, with a queue of `capacity`.
    pub fn subscribe(&self, user: Uuid, capacity: usize) -> Subscription {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let lagged = Arc::new(AtomicBool::new(false));
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::new(Slot {
            id,
            tx,
            lagged: Arc::clone(&lagged),
        });
        self.inner
            .by_user
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(user)
            .or_default()
            .push(slot);
        metrics::gauge!("sotto_event_subscriptions").increment(1.0);
        Subscription {
            user,
            id,
            lagged,
            rx,
            registry: Arc::downgrade(&self.inner),
        }
    }

    /// Whether anyone subscribes at all (publishers skip computing audiences
    /// nobody would receive).
    pub fn has_subscribers(&self) -> bool {
        !self.read().is_empty()
    }

    /// Whether `user` has at least one subscription (e.g. a connected socket).
    pub fn is_subscribed(&self, user: Uuid) -> bool {
        self.read().contains_key(&user)
    }

    /// Sends events on to the other relays too (see `crate::fanout`).
    pub fn forward_to(&self, tx: mpsc::Sender<Remote>) {
        let _ = self.inner.forward.set(tx);
    }

    fn forward(&self, remote: impl FnOnce() -> Remote) {
        if let Some(tx) = self.inner.forward.get()
            && tx.try_send(remote()).is_err()
        {
            // The forwarder is behind or gone: remote sockets may miss this
            // event; they fill the gap at the room's next message or resume.
            metrics::counter!("sotto_fanout_dropped_total").increment(1);
        }
    }

    /// Ends every subscription (their sockets close and the clients resume):
    /// after events may have been lost, e.g. when the connection that brings
    /// other relays' events was lost.
    pub fn reset_all(&self) {
        self.inner
            .by_user
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// Delivers `frame` to every subscription of every user in `audience`
    /// (duplicates ignored), here and on the other relays. Never blocks: a full
    /// queue marks its subscriber lagged.
    pub fn publish(&self, audience: &[Uuid], frame: ServerFrame) {
        self.forward(|| Remote::Frame {
            a: audience.to_vec(),
            f: frame.clone(),
        });
        self.publish_local(audience, frame);
    }

    /// Delivers `frame` to the subscriptions of `audience` in this process only
    /// (events that came from another relay).
    pub fn publish_local(&self, audience: &[Uuid], frame: ServerFrame) {
        metrics::counter!("sotto_events_published_total").increment(1);
        let map = self.read();
        if map.is_empty() {
            return;
        }
        let frame = Arc::new(Event::new(frame));
        let mut seen: Vec<Uuid> = Vec::with_capacity(audience.len());
        for user in audience {
            if seen.contains(user) {
                continue;
            }
            seen.push(*user);
            for slot in map.get(user).into_iter().flatten() {
                if slot.lagged.load(Ordering::Relaxed) {
                    continue;
                }
                match slot.tx.try_send(Arc::clone(&frame)) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        slot.lagged.store(true, Ordering::Relaxed);
                        metrics::counter!("sotto_event_overflows_total").increment(1);
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => {}
                }
            }
        }
    }

    /// Publishes `frame` to the members of `room`, read from the database only
    /// when someone subscribes at all. Use [`Events::publish`] when the caller
    /// already knows the members.
    pub async fn publish_to_room(&self, db: &crate::db::Db, room: Uuid, frame: ServerFrame) {
        self.forward(|| match &frame {
            ServerFrame::Message { room_id, id, .. } => Remote::Message {
                room: *room_id,
                id: *id,
            },
            f => Remote::Room { room, f: f.clone() },
        });
        self.publish_room_local(db, room, frame).await;
    }

    /// Publishes a stored message (a [`ServerFrame::Message`]) to the members of
    /// its room, who are remembered per room as of its membership epoch: a
    /// message stored at epoch `epoch` (the store checked it) goes to the members
    /// of that epoch, so while a room's membership does not change its posts
    /// read no members.
    pub async fn publish_message(&self, db: &crate::db::Db, epoch: i64, frame: ServerFrame) {
        let ServerFrame::Message {
            room_id: room, id, ..
        } = &frame
        else {
            return;
        };
        let (room, id) = (*room, *id);
        self.forward(|| Remote::Message { room, id });
        if !self.has_subscribers() {
            metrics::counter!("sotto_events_published_total").increment(1);
            return;
        }
        match self.members_at(db, room, epoch).await {
            Ok(members) => self.publish_local(&members, frame),
            Err(e) => {
                tracing::warn!(%room, code = e.code, "cannot publish an event: members unavailable")
            }
        }
    }

    /// The members of `room` at membership epoch `epoch` (or, when it has moved
    /// on since, at the current one).
    async fn members_at(
        &self,
        db: &crate::db::Db,
        room: Uuid,
        epoch: i64,
    ) -> crate::error::ApiResult<Arc<[Uuid]>> {
        let cache = || {
            self.inner
                .members
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if let Some((at, members)) = cache().get(&room)
            && *at == epoch
        {
            return Ok(Arc::clone(members));
        }
        let (at, members) = crate::store::membership::members_with_epoch(db, room).await?;
        let members: Arc<[Uuid]> = members.into();
        let mut cache = cache();
        if cache.len() >= MEMBER_CACHE_ROOMS {
            cache.clear();
        }
        if let Some(at) = at {
            cache.insert(room, (at, Arc::clone(&members)));
        }
        Ok(members)
    }

    /// [`Events::publish_to_room`] in this process only.
    pub async fn publish_room_local(&self, db: &crate::db::Db, room: Uuid, frame: ServerFrame) {
        if !self.has_subscribers() {
            metrics::counter!("sotto_events_published_total").increment(1);
            return;
        }
        match crate::membership::member_ids(db, room).await {
            Ok(members) => self.publish_local(&members, frame),
            Err(e) => {
                tracing::warn!(%room, code = e.code, "cannot publish an event: members unavailable")
            }
        }
    }
}

impl Subscription {
    /// The user this subscription is for.
    pub fn user(&self) -> Uuid {
        self.user
    }

    /// The next frame; [`RecvError::Lagged`] as soon as the queue overflowed
    /// (queued frames are not delivered after a loss: the subscriber resumes).
    pub async fn recv(&mut self) -> Result<Arc<Event>, RecvError> {
        if self.lagged.load(Ordering::Relaxed) {
            return Err(RecvError::Lagged);
        }
        match self.rx.recv().await {
            Some(f) if !self.lagged.load(Ordering::Relaxed) => Ok(f),
            Some(_) => Err(RecvError::Lagged),
            None => Err(RecvError::Closed),
        }
    }

    /// A frame if one is queued now.
    pub fn try_recv(&mut self) -> Result<Option<Arc<Event>>, RecvError> {
        if self.lagged.load(Ordering::Relaxed) {
            return Err(RecvError::Lagged);
        }
        match self.rx.try_recv() {
            Ok(f) => Ok(Some(f)),
            Err(mpsc::error::TryRecvError::Empty) => Ok(None),
            Err(mpsc::error::TryRecvError::Disconnected) => Err(RecvError::Closed),
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        metrics::gauge!("sotto_event_subscriptions").decrement(1.0);
        let Some(inner) = self.registry.upgrade() else {
            return;
        };
        let mut map = inner
            .by_user
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(slots) = map.get_mut(&self.user) {
            slots.retain(|s| s.id != self.id);
            if slots.is_empty() {
                map.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn frame(n: u128) -> ServerFrame {
        ServerFrame::KeysChanged {
            user_id: Uuid::from_u128(n),
        }
    }

    #[tokio::test]
    async fn delivers_to_the_audience_only() {
        let events = Events::new();
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let mut sa = events.subscribe(a, 8);
        let mut sa2 = events.subscribe(a, 8);
        let mut sb = events.subscribe(b, 8);
        let mut sc = events.subscribe(c, 8);
        events.publish(&[a, b, a], frame(1));
        assert_eq!(**sa.recv().await.unwrap(), frame(1));
        assert_eq!(**sa2.recv().await.unwrap(), frame(1));
        assert_eq!(**sb.recv().await.unwrap(), frame(1));
        assert_eq!(sa.try_recv().unwrap(), None, "duplicate audience entry");
        assert_eq!(sc.try_recv().unwrap(), None);
        drop(sb);
        assert!(!events.is_subscribed(b));
        assert!(events.is_subscribed(a));
    }

    #[tokio::test]
    async fn a_slow_subscriber_is_marked_lagged_and_others_go_on() {
        let events = Events::new();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let mut slow = events.subscribe(a, 2);
        let mut fast = events.subscribe(b, 64);
        for n in 0..10 {
            events.publish(&[a, b], frame(n));
            assert_eq!(**fast.recv().await.unwrap(), frame(n));
        }
        assert_eq!(slow.recv().await, Err(RecvError::Lagged));
        assert_eq!(slow.try_recv(), Err(RecvError::Lagged));
    }

    #[tokio::test]
    async fn subscriptions_end_when_the_registry_goes() {
        let events = Events::new();
        let mut sub = events.subscribe(Uuid::new_v4(), 4);
        drop(events);
        assert_eq!(sub.recv().await, Err(RecvError::Closed));
    }

    #[test]
    fn an_event_is_encoded_once_for_all_its_sockets() {
        let e = Event::new(frame(1));
        let (a, b) = (e.text().unwrap(), e.text().unwrap());
        assert_eq!(a.as_str(), serde_json::to_string(&frame(1)).unwrap());
        // The second socket gets the same bytes, not a new encoding.
        assert_eq!(a.as_str().as_ptr(), b.as_str().as_ptr());
    }
}
