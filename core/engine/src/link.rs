//! The live connection as a state machine, written once for both drivers: when
//! to connect, authenticate and `resume`, the keep-alive and its verdict,
//! `delivered` receipt batching, the wait for a socket `ack` and its timeout,
//! reconnecting with back-off, and the steps that carry frames to the
//! [`Feed`] (one store transaction per step, its events shown only after it).
//!
//! Sans-I/O in the manner of quinn-proto and rustls: the driver owns the socket,
//! the timers, the store and the HTTP client. It feeds the link what happened
//! ([`Link::start`], [`Link::prepared`], [`Link::opened`], [`Link::received`],
//! [`Link::closed`], [`Link::settle`], [`Link::stored`], and the current time
//! on every call), then drains [`Link::poll`] and does each [`Output`] in order,
//! and sleeps until [`Link::deadline`] or the next input. Time is the driver's
//! monotonic clock in milliseconds; the back-off jitter comes from the RNG the
//! driver injects (the OS RNG in production, a seeded one in tests: see
//! `docs/architecture.md` on how this squares with the core's rule that
//! production entry points take no seed).
//!
//! One connection goes through `Prepare` (the driver lists the rooms, reads
//! the stored cursors and gets an access token) → `Open` (socket) →
//! `Authenticate` (the driver sends `auth` with its token: the link never
//! holds it) → `ready` → `resume` (the first frame after `ready`, so replay and
//! live delivery join without a gap) → online. Any failure ends the
//! connection with a reason, and the next attempt waits
//! [`policy::reconnect_delay_ms`].
//!
//! A step is every frame received and not yet handled (up to [`BURST`]). Each
//! message the feed says to open goes out as [`Output::Receive`]; the link then
//! waits for [`Link::settle`]. When the step is done, its changes go out as
//! [`Output::Store`]; after [`Link::stored`] its events ([`Output::Show`],
//! [`Output::App`]) and frames (`resume`) are released. A message the driver
//! cannot check now ([`Settle::Later`]) ends the connection after the step
//! without moving its room's cursor; the next connection resumes there.

use std::collections::VecDeque;

use sotto_core::api::{ClientFrame, RoomChange, ServerFrame, Timestamp};
use uuid::Uuid;

use crate::feed::{Arrival, Changes, Deletion, Feed, Seen, receipt_frame};
use crate::ids::IdMap;
use crate::policy;

/// At most this many frames make one step (one store transaction).
pub const BURST: usize = 256;

/// The driver's monotonic clock, in milliseconds (any origin).
pub type Millis = u64;

/// One connection attempt. Inputs name the attempt they answer; an answer for
/// an attempt that already ended is ignored (a late `close` event of an old
/// socket cannot end the new one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Conn(pub u64);

/// The connection state apps see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// An attempt is under way.
    Connecting,
    /// Connected and resumed: live from here.
    Online,
    /// Not connected. `retry_in_ms`: the next attempt starts then (`None`:
    /// stopped, no attempt coming).
    Offline {
        /// Why.
        reason: String,
        /// Wait before the next attempt.
        retry_in_ms: Option<u64>,
    },
}

/// How the wait for a socket `ack` ended ([`Output::Acked`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ack {
    /// Stored by the relay as `id` at `seq`.
    Stored {
        /// The relay's message id.
        id: Uuid,
        /// Its place in the room.
        seq: u64,
    },
    /// Refused by the relay (an `error` frame naming the client id).
    Refused {
        /// The problem code.
        code: String,
        /// Its detail.
        detail: Option<String>,
        /// `rate_limited`: when to try again.
        retry_after_ms: Option<u64>,
    },
    /// No answer: the socket went, or [`policy::ACK_TIMEOUT_MS`] passed. The
    /// driver posts the entry over HTTP (same client id: stored once).
    Offline,
}

/// A message to open ([`Output::Receive`]): the frame's routing fields (the
/// relay asserts them; the envelope's signed header must agree) and the
/// envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// The room.
    pub room_id: Uuid,
    /// The relay's message id.
    pub id: Uuid,
    /// Its place in the room.
    pub seq: u64,
    /// The sending user.
    pub sender_id: Uuid,
    /// The sending device.
    pub device_id: Uuid,
    /// When the relay stored it.
    pub created_at: Timestamp,
    /// The sealed envelope.
    pub envelope: Vec<u8>,
}

/// What became of a message the link asked the driver to open.
#[derive(Debug)]
pub enum Settle<E> {
    /// Handled: shown (`event`, with its sealed history item in `kept`), a
    /// control message, reported undecryptable, or a redelivery already
    /// handled ([`Seen::Again`]: no event). Its room's cursor moves.
    Handled {
        /// The sealed local-history item to store with the cursor.
        kept: Option<Vec<u8>>,
        /// What to show the app once the step is stored.
        event: Option<E>,
    },
    /// Cannot be checked now (the sender's keys did not load, the store
    /// failed): the step ends here, the connection after it, and the cursor
    /// stays before this message.
    Later(String),
}

/// Something the driver must do, in the order [`Link::poll`] gives them.
#[derive(Debug)]
pub enum Output<E> {
    /// Start attempt `Conn`: list the rooms the relay has for this user, read
    /// the stored cursors and get an access token, then call
    /// [`Link::prepared`].
    Prepare(Conn),
    /// Open the socket, then call [`Link::opened`] (or [`Link::closed`]).
    Open(Conn),
    /// Send the `auth` frame with the access token got at `Prepare`.
    Authenticate(Conn),
    /// The connection is resumed and live: forget the cached device lists
    /// and room views (announcements may have been missed), and post the
    /// outbox.
    Online(Conn),
    /// Send this frame on the socket (a failure: [`Link::closed`]).
    Send(ClientFrame),
    /// Close the socket of this attempt (cleanly; its events are ignored
    /// from now on).
    Close(Conn),
    /// The connection state changed: tell the app.
    State(LinkState),
    /// The wait for this message's `ack` ended.
    Acked {
        /// The message's client id.
        client_id: Uuid,
        /// How.
        ack: Ack,
    },
    /// Open this message (sender check, open, [`Link::seen`]), then call
    /// [`Link::settle`]. The link waits.
    Receive(Incoming),
    /// A room's members or state changed (before the step is stored): drop
    /// the cached view and let the membership engine look at the room (not
    /// awaited by the step).
    RoomChanged {
        /// The room.
        room_id: Uuid,
        /// What changed.
        change: RoomChange,
    },
    /// A user's keys changed: refetch their device list (not awaited by the
    /// step).
    KeysChanged(Uuid),
    /// Apply these changes to the store in one transaction, then call
    /// [`Link::stored`]. The link waits.
    Store(Changes),
    /// Show this frame to the app (after its step is stored): `message_deleted`,
    /// `typing` (of others), `presence`, `receipt`, `room`, `invitation`,
    /// `keys_changed`, or an `error` no send waits for.
    Show(ServerFrame),
    /// Show what the driver made of an opened message ([`Settle::Handled`]).
    App(E),
    /// The relay says the session is over (the driver's `Prepare` found no
    /// valid token): the link has stopped.
    LoggedOut,
}

/// What an attempt starts from ([`Link::prepared`]): the rooms the relay
/// lists for this user, and every cursor the store holds.
pub type Prepared = (Vec<Uuid>, Vec<(Uuid, u64)>);

/// Why an attempt could not be prepared ([`Link::prepared`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrepareFailed {
    /// The session is over: stop for good.
    LoggedOut,
    /// Try again after a back-off.
    Retry(String),
}

/// What the driver's clock and RNG give the link.
type Jitter = Box<dyn FnMut() -> u32 + Send>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Not connecting.
    Idle,
    /// Waiting for `prepared`.
    Preparing,
    /// Waiting for `opened`, until then.
    Opening(Millis),
    /// Waiting for `ready`, until then.
    Handshake(Millis),
    /// Live.
    Online,
    /// Waiting to try again, until then.
    Waiting(Millis),
}

/// A received item not handled yet.
enum Inbound {
    Frame(ServerFrame),
    Closed(String),
}

/// What is shown after a step is stored, in order.
enum Shown<E> {
    Frame(ServerFrame),
    App(E),
}

/// The step under way.
struct Step<E> {
    /// Frames handled in it.
    handled: usize,
    /// A message sent out to open, awaiting `settle`.
    opening: Option<(Uuid, u64)>,
    /// Its changes went out, awaiting `stored`.
    storing: bool,
    shown: Vec<Shown<E>>,
    frames: Vec<ClientFrame>,
    /// Ends the connection after the step.
    end: Option<String>,
}

impl<E> Default for Step<E> {
    fn default() -> Self {
        Self {
            handled: 0,
            opening: None,
            storing: false,
            shown: Vec::new(),
            frames: Vec::new(),
            end: None,
        }
    }
}

/// The live connection of one device (see the module docs).
pub struct Link<E> {
    user_id: Uuid,
    connect_timeout_ms: u64,
    jitter: Jitter,
    /// The app wants a connection.
    running: bool,
    phase: Phase,
    conn: Conn,
    failures: u32,
    /// When the current attempt started.
    started: Millis,
    feed: Feed,
    /// The `resume` to send once `ready` comes.
    resume: Option<ClientFrame>,
    last_rx: Millis,
    ping_due: Millis,
    receipts_due: Option<Millis>,
    /// Client ids of sends awaiting an `ack`, with their deadlines.
    acks: IdMap<Millis>,
    inbox: VecDeque<Inbound>,
    step: Step<E>,
    out: VecDeque<Output<E>>,
}

impl<E> std::fmt::Debug for Link<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("running", &self.running)
            .field("phase", &self.phase)
            .field("conn", &self.conn)
            .field("failures", &self.failures)
            .finish_non_exhaustive()
    }
}

impl<E> Link<E> {
    /// The link of this device. `connect_timeout_ms`: how long opening the
    /// socket may take; `jitter`: uniform `u32`s for the back-off (the OS
    /// RNG in production).
    pub fn new(user_id: Uuid, device_id: Uuid, connect_timeout_ms: u64, jitter: Jitter) -> Self {
        Self {
            user_id,
            connect_timeout_ms,
            jitter,
            running: false,
            phase: Phase::Idle,
            conn: Conn(0),
            failures: 0,
            started: 0,
            feed: Feed::new(user_id, device_id),
            resume: None,
            last_rx: 0,
            ping_due: 0,
            receipts_due: None,
            acks: IdMap::default(),
            inbox: VecDeque::new(),
            step: Step::default(),
            out: VecDeque::new(),
        }
    }

    /// Connected and resumed.
    pub fn is_online(&self) -> bool {
        self.phase == Phase::Online
    }

    /// Whether the link has work left: the app wants a connection, or the
    /// last one is still winding down (a step finishing, outputs to drain).
    /// A driver's loop ends when this is false.
    pub fn is_active(&self) -> bool {
        self.running || self.phase != Phase::Idle || !self.out.is_empty() || self.in_step()
    }

    fn in_step(&self) -> bool {
        self.step.opening.is_some() || self.step.storing
    }

    /// The app wants the connection (`connect`). Idempotent; a link still
    /// winding down after [`Link::stop`] simply keeps its connection.
    pub fn start(&mut self, now: Millis) {
        if self.running {
            return;
        }
        self.running = true;
        if self.phase == Phase::Idle {
            self.failures = 0;
            self.attempt(now);
        }
    }

    /// The app stops the connection (`disconnect`): the due receipts are sent
    /// and the socket closed once the step under way (if any) is stored.
    /// Sends waiting for an `ack` fall back to HTTP.
    pub fn stop(&mut self, now: Millis) {
        if !self.running {
            return;
        }
        self.running = false;
        if !self.in_step() {
            self.wind_down(now);
        }
    }

    fn wind_down(&mut self, _now: Millis) {
        if self.phase == Phase::Online {
            for receipt in self.feed.receipts() {
                self.out.push_back(Output::Send(receipt_frame(receipt)));
            }
        }
        self.end_socket();
        self.phase = Phase::Idle;
        self.out.push_back(Output::State(LinkState::Offline {
            reason: "disconnected".into(),
            retry_in_ms: None,
        }));
    }

    fn attempt(&mut self, now: Millis) {
        self.conn = Conn(self.conn.0.wrapping_add(1));
        self.started = now;
        self.phase = Phase::Preparing;
        self.out.push_back(Output::State(LinkState::Connecting));
        self.out.push_back(Output::Prepare(self.conn));
    }

    /// The answer to [`Output::Prepare`]: the rooms the relay lists and the
    /// store's cursors, or why not.
    pub fn prepared(&mut self, conn: Conn, now: Millis, prepared: Result<Prepared, PrepareFailed>) {
        if conn != self.conn || self.phase != Phase::Preparing {
            return;
        }
        match prepared {
            Ok((rooms, cursors)) => {
                self.resume = Some(self.feed.connect(rooms, cursors).frame());
                self.phase = Phase::Opening(now.saturating_add(self.connect_timeout_ms));
                self.out.push_back(Output::Open(conn));
            }
            Err(PrepareFailed::LoggedOut) => {
                self.running = false;
                self.phase = Phase::Idle;
                self.out.push_back(Output::State(LinkState::Offline {
                    reason: "logged out".into(),
                    retry_in_ms: None,
                }));
                self.out.push_back(Output::LoggedOut);
            }
            Err(PrepareFailed::Retry(reason)) => self.end(now, reason),
        }
    }

    /// The socket of `conn` is open.
    pub fn opened(&mut self, conn: Conn, now: Millis) {
        if conn != self.conn || !matches!(self.phase, Phase::Opening(_)) {
            return;
        }
        self.last_rx = now;
        self.phase = Phase::Handshake(now.saturating_add(policy::HANDSHAKE_TIMEOUT_MS));
        self.out.push_back(Output::Authenticate(conn));
    }

    /// The socket of `conn` ended (closed, failed, a send failed). Frames
    /// received before are handled first.
    pub fn closed(&mut self, conn: Conn, now: Millis, reason: String) {
        if conn != self.conn {
            return;
        }
        match self.phase {
            Phase::Opening(_) | Phase::Handshake(_) => self.end(now, reason),
            Phase::Online => self.inbox.push_back(Inbound::Closed(reason)),
            Phase::Idle | Phase::Preparing | Phase::Waiting(_) => {}
        }
    }

    /// A text frame arrived on the socket of `conn`. Unreadable or unknown
    /// frames are ignored (a newer relay may send more).
    pub fn received(&mut self, conn: Conn, now: Millis, text: &str) {
        if conn != self.conn {
            return;
        }
        match serde_json::from_str::<ServerFrame>(text) {
            Ok(frame) => self.received_frame(conn, now, frame),
            // Still a sign of life.
            Err(_) => self.last_rx = now,
        }
    }

    /// [`Link::received`] for a frame the driver parsed itself.
    pub fn received_frame(&mut self, conn: Conn, now: Millis, frame: ServerFrame) {
        if conn != self.conn {
            return;
        }
        self.last_rx = now;
        match self.phase {
            Phase::Handshake(_) => match frame {
                ServerFrame::Ready { user_id, .. } if user_id == self.user_id => {
                    if let Some(resume) = self.resume.take() {
                        self.out.push_back(Output::Send(resume));
                    }
                    self.phase = Phase::Online;
                    self.ping_due = now.saturating_add(policy::PING_EVERY_MS);
                    self.receipts_due = None;
                    self.out.push_back(Output::Online(conn));
                    self.out.push_back(Output::State(LinkState::Online));
                }
                other => {
                    let got = match other {
                        ServerFrame::Ready { .. } => "ready for another user",
                        _ => "another frame",
                    };
                    self.end(now, format!("expected ready, got {got}"));
                }
            },
            Phase::Online => match frame {
                ServerFrame::Ack { client_id, id, seq } => {
                    if self.acks.remove(&client_id).is_some() {
                        self.out.push_back(Output::Acked {
                            client_id,
                            ack: Ack::Stored { id, seq },
                        });
                    }
                }
                ServerFrame::Error {
                    code,
                    detail,
                    client_id: Some(client_id),
                    retry_after_ms,
                } if self.acks.contains_key(&client_id) => {
                    self.acks.remove(&client_id);
                    self.out.push_back(Output::Acked {
                        client_id,
                        ack: Ack::Refused {
                            code,
                            detail,
                            retry_after_ms,
                        },
                    });
                }
                ServerFrame::Ready { .. } | ServerFrame::Pong => {}
                frame => self.inbox.push_back(Inbound::Frame(frame)),
            },
            Phase::Idle | Phase::Preparing | Phase::Opening(_) | Phase::Waiting(_) => {}
        }
    }

    /// The attempt whose socket may carry a frame now (live and wanted), for a
    /// driver that writes an app's frame straight to its socket instead of
    /// queueing it behind a step ([`Link::send`] queues it).
    pub fn live(&self) -> Option<Conn> {
        (self.phase == Phase::Online && self.running).then_some(self.conn)
    }

    /// Waits for the `ack` of a message frame the driver wrote itself on the
    /// socket of [`Link::live`], until `now` + [`policy::ACK_TIMEOUT_MS`].
    /// False when the link is not live (post it over HTTP).
    pub fn expect_ack(&mut self, now: Millis, client_id: Uuid) -> bool {
        if self.live().is_none() {
            return false;
        }
        self.acks
            .insert(client_id, now.saturating_add(policy::ACK_TIMEOUT_MS));
        true
    }

    /// Sends a frame the app asked for (`typing`, a `read` receipt) if the
    /// connection is live; false when it is not (the driver falls back to
    /// HTTP or drops it).
    pub fn send(&mut self, frame: ClientFrame) -> bool {
        if self.phase != Phase::Online || !self.running {
            return false;
        }
        self.out.push_back(Output::Send(frame));
        true
    }

    /// Sends a message frame (`send` with `client_id`) if the connection is
    /// live, and waits for its `ack` until `now` + [`policy::ACK_TIMEOUT_MS`]
    /// ([`Output::Acked`]). False when offline: post it over HTTP.
    pub fn send_message(&mut self, now: Millis, client_id: Uuid, frame: ClientFrame) -> bool {
        if !self.send(frame) {
            return false;
        }
        self.expect_ack(now, client_id)
    }

    /// The driver no longer waits for this `ack`.
    pub fn forget_ack(&mut self, client_id: Uuid) {
        self.acks.remove(&client_id);
    }

    /// The feed's replay check for the message under [`Output::Receive`]
    /// ([`Feed::seen`]); `stored`: where the store says the id was first
    /// delivered.
    pub fn seen(
        &mut self,
        sender_id: Uuid,
        client_id: Uuid,
        room_id: Uuid,
        seq: u64,
        stored: Option<(Uuid, u64)>,
    ) -> Seen {
        self.feed.seen(sender_id, client_id, room_id, seq, stored)
    }

    /// The answer to [`Output::Receive`] for the message at `room_id`/`seq`.
    pub fn settle(&mut self, room_id: Uuid, seq: u64, settle: Settle<E>) {
        if self.step.opening != Some((room_id, seq)) {
            return;
        }
        self.step.opening = None;
        match settle {
            Settle::Handled { kept, event } => {
                self.feed.settle(room_id, seq, kept);
                if let Some(event) = event {
                    self.step.shown.push(Shown::App(event));
                }
            }
            Settle::Later(reason) => {
                // Not handled: its id is not stored as seen at this place.
                self.feed.unsee(room_id, seq);
                self.step.end = Some(reason);
            }
        }
    }

    /// The answer to [`Output::Store`]: the step's changes are stored (its
    /// events and frames go out now), or the store failed (they are dropped
    /// and the connection ends; the next resumes from what the store holds).
    pub fn stored(&mut self, now: Millis, result: Result<(), String>) {
        if !self.step.storing {
            return;
        }
        self.step.storing = false;
        match result {
            Ok(()) => self.release(now),
            Err(e) => {
                self.step = Step::default();
                self.end(now, format!("store: {e}"));
                self.after_step(now);
            }
        }
    }

    /// Shows a stored step's events and sends its frames.
    fn release(&mut self, now: Millis) {
        let step = std::mem::take(&mut self.step);
        // A long step (a slow device fetch) is not the relay's silence: a
        // driver may read nothing while it opens.
        self.last_rx = self.last_rx.max(now);
        for shown in step.shown {
            self.out.push_back(match shown {
                Shown::Frame(frame) => Output::Show(frame),
                Shown::App(event) => Output::App(event),
            });
        }
        if self.phase == Phase::Online && self.running {
            self.out.extend(step.frames.into_iter().map(Output::Send));
            if self.receipts_due.is_none() && self.feed.has_receipts() {
                self.receipts_due = Some(now.saturating_add(policy::RECEIPT_EVERY_MS));
            }
        }
        if let Some(reason) = step.end
            && self.phase == Phase::Online
        {
            self.end(now, reason);
        }
        self.after_step(now);
    }

    /// A stop that came during a step takes effect once it is done.
    fn after_step(&mut self, now: Millis) {
        if !self.running && self.phase != Phase::Idle {
            self.wind_down(now);
        }
    }

    /// Closes this attempt's socket and forgets what rode on it.
    fn end_socket(&mut self) {
        if matches!(
            self.phase,
            Phase::Opening(_) | Phase::Handshake(_) | Phase::Online
        ) {
            self.out.push_back(Output::Close(self.conn));
        }
        self.resume = None;
        self.inbox.clear();
        self.receipts_due = None;
        for (client_id, _) in std::mem::take(&mut self.acks) {
            self.out.push_back(Output::Acked {
                client_id,
                ack: Ack::Offline,
            });
        }
    }

    /// The attempt ended for `reason`: wait, then try again (if still wanted).
    fn end(&mut self, now: Millis, reason: String) {
        self.end_socket();
        if !self.running {
            self.phase = Phase::Idle;
            self.out.push_back(Output::State(LinkState::Offline {
                reason,
                retry_in_ms: None,
            }));
            return;
        }
        if now.saturating_sub(self.started) > policy::STABLE_AFTER_MS {
            self.failures = 0;
        }
        self.failures = self.failures.saturating_add(1);
        let delay = policy::reconnect_delay_ms(self.failures, (self.jitter)());
        self.phase = Phase::Waiting(now.saturating_add(delay));
        self.out.push_back(Output::State(LinkState::Offline {
            reason,
            retry_in_ms: Some(delay),
        }));
    }

    /// When the driver must call [`Link::poll`] again at the latest, if no
    /// input comes first (`None`: only an input can change anything).
    pub fn deadline(&self) -> Option<Millis> {
        let phase = match self.phase {
            Phase::Opening(t) | Phase::Handshake(t) | Phase::Waiting(t) => Some(t),
            Phase::Online if !self.in_step() => Some(self.ping_due),
            Phase::Idle | Phase::Preparing | Phase::Online => None,
        };
        let acks = self.acks.iter().map(|(_, t)| t).min();
        let receipts = self.receipts_due.filter(|_| !self.in_step());
        [phase, acks, receipts].into_iter().flatten().min()
    }

    /// The next thing to do, or `None` until an input or [`Link::deadline`].
    pub fn poll(&mut self, now: Millis) -> Option<Output<E>> {
        loop {
            if let Some(out) = self.out.pop_front() {
                return Some(out);
            }
            if self.in_step() {
                return None;
            }
            if self.phase == Phase::Online && self.next_in_step(now) {
                continue;
            }
            if !self.timers(now) {
                return None;
            }
        }
    }

    /// Handles the next received item, or finishes the step. False: nothing
    /// to do.
    fn next_in_step(&mut self, now: Millis) -> bool {
        if self.step.end.is_none()
            && self.running
            && self.step.handled < BURST
            && let Some(item) = self.inbox.pop_front()
        {
            self.step.handled = self.step.handled.saturating_add(1);
            match item {
                Inbound::Frame(frame) => self.handle(frame),
                Inbound::Closed(reason) => self.step.end = Some(reason),
            }
            return true;
        }
        if self.step.handled == 0 {
            return false;
        }
        let changes = self.feed.take_changes();
        if changes.is_empty() {
            self.release(now);
        } else {
            self.step.storing = true;
            self.out.push_back(Output::Store(changes));
        }
        true
    }

    fn handle(&mut self, frame: ServerFrame) {
        match frame {
            ServerFrame::Message {
                room_id,
                id,
                seq,
                sender_id,
                device_id,
                envelope,
                created_at,
            } => match self.feed.message(room_id, seq, sender_id, device_id) {
                Arrival::Skip | Arrival::Handled => {}
                Arrival::Resume(resume) => self.step.frames.push(resume.frame()),
                Arrival::Open => {
                    self.step.opening = Some((room_id, seq));
                    self.out.push_back(Output::Receive(Incoming {
                        room_id,
                        id,
                        seq,
                        sender_id,
                        device_id,
                        created_at,
                        envelope: envelope.0,
                    }));
                }
            },
            ServerFrame::MessageDeleted { room_id, id, seq } => {
                match self.feed.deletion(room_id, seq) {
                    Deletion::Deleted => {
                        self.show(ServerFrame::MessageDeleted { room_id, id, seq })
                    }
                    Deletion::Skip => {}
                    Deletion::Resume(resume) => self.step.frames.push(resume.frame()),
                }
            }
            ServerFrame::HistoryStart { room_id, seq } => self.feed.history_start(room_id, seq),
            ServerFrame::Typing { user_id, .. } if user_id == self.user_id => {}
            ServerFrame::Room { room_id, change } => {
                self.out.push_back(Output::RoomChanged { room_id, change });
                if matches!(change, RoomChange::Created | RoomChange::MemberAdded)
                    && let Some(resume) = self.feed.joined(room_id)
                {
                    self.step.frames.push(resume.frame());
                }
                self.show(ServerFrame::Room { room_id, change });
            }
            ServerFrame::KeysChanged { user_id } => {
                self.out.push_back(Output::KeysChanged(user_id));
                self.show(ServerFrame::KeysChanged { user_id });
            }
            ServerFrame::Ready { .. } | ServerFrame::Pong | ServerFrame::Ack { .. } => {}
            frame => self.show(frame),
        }
    }

    fn show(&mut self, frame: ServerFrame) {
        self.step.shown.push(Shown::Frame(frame));
    }

    /// Fires what is due at `now`. False: nothing was.
    fn timers(&mut self, now: Millis) -> bool {
        match self.phase {
            Phase::Opening(t) if t <= now => {
                self.end(now, "connect: timed out".into());
                return true;
            }
            Phase::Handshake(t) if t <= now => {
                self.end(now, "no ready within 10 s".into());
                return true;
            }
            Phase::Waiting(t) if t <= now => {
                self.attempt(now);
                return true;
            }
            _ => {}
        }
        let expired: Vec<Uuid> = self
            .acks
            .iter()
            .filter(|(_, t)| *t <= now)
            .map(|(id, _)| id)
            .collect();
        if !expired.is_empty() {
            for client_id in expired {
                self.acks.remove(&client_id);
                self.out.push_back(Output::Acked {
                    client_id,
                    ack: Ack::Offline,
                });
            }
            return true;
        }
        if self.phase != Phase::Online {
            return false;
        }
        if self.receipts_due.is_some_and(|t| t <= now) {
            self.receipts_due = None;
            for receipt in self.feed.receipts() {
                self.out.push_back(Output::Send(receipt_frame(receipt)));
            }
            return true;
        }
        if self.ping_due <= now {
            if now.saturating_sub(self.last_rx) > policy::PING_EVERY_MS.saturating_mul(3) {
                self.end(now, "no answer from the relay".into());
            } else {
                self.ping_due = now.saturating_add(policy::PING_EVERY_MS);
                self.out.push_back(Output::Send(ClientFrame::Ping));
            }
            return true;
        }
        false
    }
}
