//! Sealing and posting one outgoing message, once for both clients.
//!
//! [`Posting::seal`] seals a plaintext for the devices the addressing chose
//! (RSA-OAEP for a device that publishes an RSA key, X25519 for the others)
//! into an [`OutboxEntry`]; [`Posting::claim`] claims it for this caller (the
//! outbox's single-flight rule). [`Posting::resume`] takes an entry the store kept
//! (a flush after a restart or reconnect). Then the posting is driven the
//! sans-I/O way: [`Posting::step`] says what to do ([`Do`]), the driver does
//! it and reports what it saw, and steps again:
//!
//! 1. [`Do::Socket`]: send the frame on the live socket and wait for its
//!    `ack` (or report [`SocketAnswer::NoAck`]: no socket, no answer in
//!    time);
//! 2. [`Do::Http`]: if the answer asks for it, post over HTTP (same client
//!    id) after the wait it names;
//! 3. [`Do::Remove`]: once stored or refused for good, take the entry out of
//!    the store (a failure there is reported by the driver and changes
//!    nothing: a stored message is not unsent, and the entry goes out again
//!    under the same client id, which the relay answers with the first result);
//! 4. [`Do::Done`]: [`Posted::Sent`] (with `announce`: an app message; keep
//!    [`Posting::history_item`] and emit `Sent`), [`Posted::Refused`] (give
//!    the caller the refusal), or [`Posted::Queued`] (the entry waits in the
//!    store for the next connection).
//!
//! A resumed entry first asks [`Do::Check`]: whether the store still holds
//! it (the flush read the list before it claimed the entry; another post may
//! have sent it since). One that left the store ends [`Posted::Gone`].
//!
//! The verdict on each answer is [`Outbox`]'s. A driver that stops before
//! [`Do::Done`] (the session closed, the store push failed, the caller went
//! away) calls [`Posting::abandon`]; the entry stays in the store.
//!
//! [`Flush`] posts the store's outbox in order after a restart or reconnect:
//! it hands out each entry's [`Posting`], or asks the driver to wait for a
//! post of it in flight elsewhere ([`FlushStep::Join`]), and stops at the
//! first entry that cannot go out yet (the rest waits behind it).

use std::collections::VecDeque;

use sotto_core::SealError;
use sotto_core::api::ClientFrame;
use sotto_core::envelope::{self, Header, OpenContext, Recipient};
use sotto_core::suite::Suite;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::content::Plaintext;
use crate::open::{Me, SenderDevice};
use crate::outbox::{HttpAnswer, Outbox, SocketAnswer, Verdict};
use crate::trust::SenderTrust;
use crate::vault::HistoryItem;

/// A sealed message waiting for the relay's acknowledgement (what the store's
/// outbox keeps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// The idempotency key of the post.
    pub client_id: Uuid,
    /// The room.
    pub room_id: Uuid,
    /// The sealed envelope (ciphertext only).
    pub envelope: Vec<u8>,
    /// A control message (a membership statement), not the app's: its post
    /// is never announced as sent, after a restart too.
    pub control: bool,
}

/// What to do next for a [`Posting`].
#[derive(Debug)]
pub enum Do {
    /// Is the entry still in the store? Answer [`Posting::checked`] (a store
    /// that cannot tell: `true`; the relay stores a client id once).
    Check,
    /// Send this frame on the live socket and report its `ack` or refusal
    /// ([`Posting::socket`]); with no socket, or no answer within
    /// [`crate::policy::ACK_TIMEOUT_MS`], report [`SocketAnswer::NoAck`].
    Socket(ClientFrame),
    /// Wait `after_ms`, then `POST` the entry over HTTP and report the answer
    /// ([`Posting::http`]).
    Http {
        /// The wait first (a rate limit's `retry_after_ms`; 0: now).
        after_ms: u64,
    },
    /// Take the entry out of the store, then [`Posting::removed`].
    Remove,
    /// The post has ended.
    Done(Posted),
}

/// How a post ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Posted {
    /// The relay stored it.
    Sent {
        /// The relay's message id.
        id: Uuid,
        /// Its place in the room.
        seq: u64,
        /// An app message: keep [`Posting::history_item`], emit `Sent`.
        announce: bool,
    },
    /// Refused for good: the caller gets the refusal.
    Refused,
    /// It waits in the store for the next connection.
    Queued,
    /// A resumed entry had left the store (another post sent or refused it
    /// since the list was read): nothing to do or report.
    Gone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Check,
    AwaitCheck,
    Socket,
    AwaitSocket,
    Http(u64),
    AwaitHttp,
    Remove(Posted),
    AwaitRemove(Posted),
    Done(Posted),
}

/// One outbox entry on its way to the relay (see the module docs).
pub struct Posting {
    entry: OutboxEntry,
    /// The plaintext and the sealing time, when sealed here (for the
    /// history item without opening the envelope again).
    sealed: Option<(Zeroizing<Vec<u8>>, u64)>,
    /// Whether this post holds the outbox's claim on its client id.
    claimed: bool,
    state: State,
}

impl std::fmt::Debug for Posting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Posting")
            .field("client_id", &self.entry.client_id)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// The suite a device is sealed to: RSA-OAEP if it publishes an RSA key.
fn suite(device: &sotto_core::keys::VerifiedDevice) -> Suite {
    if device.has_rsa() {
        Suite::Rsa
    } else {
        Suite::X25519
    }
}

impl Posting {
    /// Seals `plaintext` in `room` for `targets` (from the addressing) as
    /// this device, under a fresh `client_id` at the driver's clock
    /// `sent_at_ms`. `control`: a membership statement (no `Sent`, not in
    /// history). Then the driver [`Posting::claim`]s it (before pushing
    /// [`Posting::entry`] to the store's outbox, so that a flush reading the
    /// store joins this post), and [`Posting::abandon`]s if the push fails.
    /// (Sealing takes no lock of the driver's: it can be slow, RSA-OAEP for
    /// many devices.)
    ///
    /// # Errors
    /// The core's [`SealError`] (too large, no recipient, a key that does not
    /// take a wrap).
    pub fn seal<D: SenderDevice>(
        me: &Me<'_>,
        room: Uuid,
        plaintext: &[u8],
        targets: &[D],
        control: bool,
        client_id: Uuid,
        sent_at_ms: u64,
    ) -> Result<Self, SealError> {
        let header = Header {
            room_id: room,
            sender_user_id: me.user,
            sender_device_id: me.device.device_id(),
            client_message_id: client_id,
            timestamp_ms: sent_at_ms,
        };
        let recipients: Vec<Recipient<'_>> = targets
            .iter()
            .map(|d| Recipient::new(d.verified(), suite(d.verified())))
            .collect();
        let envelope = envelope::seal(plaintext, &header, &recipients, me.keys)?.to_bytes();
        Ok(Self {
            entry: OutboxEntry {
                client_id,
                room_id: room,
                envelope,
                control,
            },
            sealed: (!control).then(|| (Zeroizing::new(plaintext.to_vec()), sent_at_ms)),
            claimed: false,
            state: State::Socket,
        })
    }

    /// Claims the post of a message sealed here (the outbox's single-flight
    /// rule). `false` if its client id is in flight already (not a fresh
    /// id): the post then ends queued at the first step, and the other post
    /// goes on.
    pub fn claim(&mut self, outbox: &mut Outbox) -> bool {
        if self.claimed {
            return true;
        }
        if !outbox.begin(self.entry.client_id) {
            self.state = State::Done(Posted::Queued);
            return false;
        }
        self.claimed = true;
        if self.entry.control {
            outbox.control(self.entry.client_id);
        }
        true
    }

    /// An entry the store kept (a flush), claimed for this caller; `None`
    /// when a post of it is in flight already (join that one, do not post it
    /// again).
    pub fn resume(outbox: &mut Outbox, entry: OutboxEntry) -> Option<Self> {
        if !outbox.begin(entry.client_id) {
            return None;
        }
        if entry.control {
            // Not the app's (the store keeps the mark across restarts).
            outbox.control(entry.client_id);
        }
        Some(Self {
            entry,
            sealed: None,
            claimed: true,
            state: State::Check,
        })
    }

    /// The entry (to push to the store, to post over HTTP).
    pub fn entry(&self) -> &OutboxEntry {
        &self.entry
    }

    /// What to do next. Asked again before the driver answered the last
    /// step, it ends the post as queued (the entry stays in the store).
    pub fn step(&mut self, outbox: &mut Outbox) -> Do {
        // (A driver that did not claim before the first step claims now.)
        if self.state == State::Socket && !self.claimed && !self.claim(outbox) {
            return Do::Done(Posted::Queued);
        }
        match self.state {
            State::Check => {
                self.state = State::AwaitCheck;
                Do::Check
            }
            State::Socket => {
                self.state = State::AwaitSocket;
                Do::Socket(ClientFrame::Send {
                    room_id: self.entry.room_id,
                    client_id: self.entry.client_id,
                    envelope: self.entry.envelope.clone().into(),
                })
            }
            State::Http(after_ms) => {
                self.state = State::AwaitHttp;
                Do::Http { after_ms }
            }
            State::Remove(p) => {
                self.state = State::AwaitRemove(p);
                Do::Remove
            }
            State::Done(p) => Do::Done(p),
            State::AwaitCheck | State::AwaitSocket | State::AwaitHttp | State::AwaitRemove(_) => {
                self.abandon(outbox);
                Do::Done(Posted::Queued)
            }
        }
    }

    fn verdict(&mut self, outbox: &mut Outbox, v: Verdict) {
        self.state = match v {
            Verdict::Sent { id, seq, announce } => {
                State::Remove(Posted::Sent { id, seq, announce })
            }
            Verdict::Refused => State::Remove(Posted::Refused),
            Verdict::PostOverHttp { after_ms } if self.state == State::AwaitSocket => {
                State::Http(after_ms)
            }
            Verdict::PostOverHttp { .. } | Verdict::Queued => {
                // (The outbox ended a `Queued` already; ending it again is a no-op
                // while this post holds the claim.)
                outbox.abandon(self.entry.client_id);
                self.claimed = false;
                State::Done(Posted::Queued)
            }
        };
    }

    /// The store's answer to [`Do::Check`]: whether it still holds the entry.
    pub fn checked(&mut self, outbox: &mut Outbox, still_stored: bool) {
        if self.state != State::AwaitCheck {
            return;
        }
        if still_stored {
            self.state = State::Socket;
        } else {
            self.abandon(outbox);
            self.state = State::Done(Posted::Gone);
        }
    }

    /// The socket's answer to [`Do::Socket`].
    pub fn socket(&mut self, outbox: &mut Outbox, answer: SocketAnswer<'_>) {
        if self.state != State::AwaitSocket {
            return;
        }
        let v = outbox.socket(self.entry.client_id, answer);
        self.verdict(outbox, v);
    }

    /// HTTP's answer to [`Do::Http`].
    pub fn http(&mut self, outbox: &mut Outbox, answer: HttpAnswer) {
        if self.state != State::AwaitHttp {
            return;
        }
        let v = outbox.http(self.entry.client_id, answer);
        self.verdict(outbox, v);
    }

    /// The driver acted on [`Do::Remove`] (the entry left the store, or the
    /// store failed and the driver reported it): the post has ended.
    pub fn removed(&mut self, outbox: &mut Outbox) {
        if let State::AwaitRemove(p) = self.state {
            outbox.finish(self.entry.client_id);
            self.claimed = false;
            self.state = State::Done(p);
        }
    }

    /// The driver stops before [`Do::Done`]: the entry stays in the store,
    /// and the next flush posts it.
    pub fn abandon(&mut self, outbox: &mut Outbox) {
        if self.claimed {
            // Only a claim this post holds: after its end, the client id may
            // be another post's.
            outbox.abandon(self.entry.client_id);
            self.claimed = false;
        }
        if !matches!(self.state, State::Done(_)) {
            self.state = State::Done(Posted::Queued);
        }
    }

    /// The message as local history keeps it, once the relay stored it as
    /// `id` at `seq` (`received_at`: the driver's clock, RFC 3339): from the
    /// plaintext sealed here, or opened from the envelope for an entry the
    /// store kept (sealed to this device too). `None` for a control message,
    /// or an envelope this device cannot open.
    pub fn history_item(
        &self,
        me: &Me<'_>,
        id: Uuid,
        seq: u64,
        received_at: String,
    ) -> Option<HistoryItem> {
        if self.entry.control {
            return None;
        }
        let (plaintext, client_id, sent_at_ms) = match &self.sealed {
            Some((p, at)) => (p.clone(), self.entry.client_id, *at),
            None => {
                let ctx = OpenContext {
                    room_id: self.entry.room_id,
                    sender: me.device,
                };
                let opened =
                    envelope::open(&self.entry.envelope, me.device.device_id(), me.keys, &ctx)
                        .ok()?;
                let at = opened.header.timestamp_ms;
                (
                    Zeroizing::new(opened.plaintext.to_vec()),
                    opened.replay_id(),
                    at,
                )
            }
        };
        let Plaintext::Content(content) = Plaintext::decode(&plaintext) else {
            return None;
        };
        Some(HistoryItem {
            room_id: self.entry.room_id,
            id,
            seq,
            sender_id: me.user,
            sender_device: me.device.device_id(),
            client_id,
            sent_at_ms,
            received_at,
            trust: SenderTrust::Own,
            content,
        })
    }
}

/// What a [`Flush`] asks next.
#[derive(Debug)]
pub enum FlushStep {
    /// Drive this post of the entry to its end (it starts with [`Do::Check`]),
    /// then [`Flush::posted`] with how it ended.
    Post(Posting),
    /// A post of the entry `client_id` is in flight elsewhere (a send, or
    /// another flush): wait until it ends, then [`Flush::joined`]. Never post
    /// it beside that one.
    Join(Uuid),
    /// The flush has ended: every entry went out, or one cannot go out yet
    /// and the rest waits behind it (in order, for the next flush).
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Awaiting {
    Nothing,
    Post,
    Join,
}

/// The store's outbox posted in order, one entry at a time (see the module
/// docs). A refusal for good drops that entry (its post reported it) and the
/// flush goes on; an entry that stays queued ends the flush.
#[derive(Debug)]
pub struct Flush {
    entries: VecDeque<OutboxEntry>,
    /// The entry being joined: tried again once the other post ended.
    joined: Option<OutboxEntry>,
    awaiting: Awaiting,
    ended: bool,
}

impl Flush {
    /// A flush of `entries`, as the store lists them (oldest first).
    pub fn new(entries: Vec<OutboxEntry>) -> Self {
        Self {
            entries: entries.into(),
            joined: None,
            awaiting: Awaiting::Nothing,
            ended: false,
        }
    }

    /// What to do next. Asked again before the driver answered the last
    /// step, the flush ends (what is left waits in the store).
    pub fn step(&mut self, outbox: &mut Outbox) -> FlushStep {
        if self.awaiting != Awaiting::Nothing {
            self.ended = true;
        }
        if self.ended {
            self.joined = None;
            return FlushStep::Done;
        }
        let Some(entry) = self.joined.take().or_else(|| self.entries.pop_front()) else {
            self.ended = true;
            return FlushStep::Done;
        };
        let client_id = entry.client_id;
        if outbox.is_posting(client_id) {
            self.joined = Some(entry);
            self.awaiting = Awaiting::Join;
            return FlushStep::Join(client_id);
        }
        match Posting::resume(outbox, entry) {
            Some(p) => {
                self.awaiting = Awaiting::Post;
                FlushStep::Post(p)
            }
            // (Not posting a moment ago: cannot happen with one outbox.)
            None => {
                self.ended = true;
                FlushStep::Done
            }
        }
    }

    /// The post that [`FlushStep::Join`] waited for has ended: the entry is
    /// tried again (its post first checks that the store still holds it).
    pub fn joined(&mut self) {
        if self.awaiting == Awaiting::Join {
            self.awaiting = Awaiting::Nothing;
        }
    }

    /// How the post that [`FlushStep::Post`] handed out ended. `Queued`
    /// ends the flush: later entries must not overtake it.
    pub fn posted(&mut self, outcome: Posted) {
        if self.awaiting != Awaiting::Post {
            return;
        }
        self.awaiting = Awaiting::Nothing;
        if outcome == Posted::Queued {
            self.ended = true;
        }
    }

    /// Whether it has ended.
    pub fn is_done(&self) -> bool {
        self.ended
    }
}
