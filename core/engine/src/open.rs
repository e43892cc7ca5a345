//! The open pipeline: one message from the relay, from its bytes to what the
//! app sees, in one order for both SDKs.
//!
//! 1. **Peek**: the envelope parses, and it is sealed to this device.
//! 2. **Sender check**: the sending device is in its user's device list,
//!    under the pinned identity key, and not revoked before the relay stored
//!    the message ([`crate::trust::check_sender`]). A device not in the list
//!    makes the list fetched again once (a new device). This device's own
//!    messages are checked against itself, without a fetch.
//! 3. **Open**: the core opens and authenticates the envelope for that sender
//!    in that room.
//! 4. **Replay check**: the sender's message id, through the feed's
//!    [`Seen`] verdict (a redelivery at the same place is settled without
//!    being shown; the same id elsewhere is a replay).
//! 5. **Decode**: content for the app, or a membership statement: its signer
//!    goes through the sender check too, and [`Rooms::receive`] takes it or
//!    says why not.
//!
//! [`Opening`] is sans-I/O: it says what it needs ([`Step::Fetch`]: a user's
//! device list; [`Step::Seen`]: the feed's verdict, which may need the store)
//! and the driver answers, then steps again. Nothing here blocks, and one
//! `Opening` never touches another message.

use sotto_core::envelope::{self, Envelope, OpenContext};
use sotto_core::keys::{DeviceKeys, VerifiedDevice};
use sotto_core::membership::MembershipStatement;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::content::Plaintext;
use crate::devices::{Devices, Sender};
use crate::feed::Seen;
use crate::link::Incoming;
use crate::membership::{Rooms, Warning};
use crate::pins::Pins;
use crate::trust::{SenderRefused, SenderTrust};
use crate::vault::HistoryItem;

/// Why a message could not be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UndecryptableReason {
    /// The message was not sealed to this device (sent before it existed, or
    /// after it was revoked).
    NotForThisDevice,
    /// The sending device is unknown or its bundle does not verify.
    UnknownDevice,
    /// The sender's identity key differs from the pinned one.
    UntrustedSender,
    /// The envelope is malformed, forged or tampered with.
    Invalid,
    /// The same sender's message id was already delivered (a replay).
    Replayed,
}

impl UndecryptableReason {
    /// The wire-style name (`not_for_this_device`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotForThisDevice => "not_for_this_device",
            Self::UnknownDevice => "unknown_device",
            Self::UntrustedSender => "untrusted_sender",
            Self::Invalid => "invalid",
            Self::Replayed => "replayed",
        }
    }
}

/// The verified device behind a driver's device-list handle.
pub trait SenderDevice {
    /// The device whose bundle verified.
    fn verified(&self) -> &VerifiedDevice;
}

impl SenderDevice for VerifiedDevice {
    fn verified(&self) -> &VerifiedDevice {
        self
    }
}

/// This device, as the pipeline needs it.
pub struct Me<'a> {
    /// This user.
    pub user: Uuid,
    /// This device, verified (the sender of its own messages).
    pub device: &'a VerifiedDevice,
    /// Its secret keys (to open).
    pub keys: &'a DeviceKeys,
}

/// What the pipeline needs next, or its outcome.
#[derive(Debug)]
pub enum Step {
    /// Make sure `user`'s device list is cached ([`Devices::missing`]: fetch
    /// it, hand the answer to [`Devices::served`]), then step again. A fetch
    /// that fails: [`Opening::failed`].
    Fetch(Uuid),
    /// Ask the feed whether the sender's message id `client_id` was handled
    /// ([`crate::Feed::seen`], with the store's record), then
    /// [`Opening::seen`] and step again.
    Seen {
        /// The sending user.
        sender: Uuid,
        /// The sender's message id.
        client_id: Uuid,
    },
    /// Done.
    Done(Outcome),
}

/// What became of the message.
#[derive(Debug)]
pub enum Outcome {
    /// Content for the app, as local history keeps it.
    Message(Box<HistoryItem>),
    /// A membership statement (not the app's): taken (`None`), or refused
    /// with the warning to show. The rooms' records may have changed: the
    /// driver saves them.
    Control(Option<Warning>),
    /// Shown as undecryptable, for this reason.
    Undecryptable(UndecryptableReason),
    /// Handled in a stored step already: settled, not shown again.
    Again,
    /// Cannot tell now (a device list did not load, the store failed): the
    /// room's cursor must not move; the message comes again.
    Later(String),
}

/// Where the pipeline stands.
enum Stage {
    Sender,
    Seen {
        opened: envelope::Opened,
        trust: SenderTrust,
        reached: Vec<Uuid>,
        verdict: Option<Seen>,
    },
    Signer {
        statement: Zeroizing<Vec<u8>>,
        reached: Vec<Uuid>,
    },
    Failed(String),
    Done,
}

/// One message through the open pipeline (see the module docs).
pub struct Opening {
    m: Incoming,
    /// Statements only (a read-ahead of the backlog): no replay check, and
    /// content is not the app's (the live stream shows it when it gets there).
    statements_only: bool,
    stage: Stage,
    /// Device-list fetches asked for so far (bounded: lists that keep
    /// changing end in [`Outcome::Later`]).
    fetches: u8,
    /// The users whose lists this opening asked for (a device missing from
    /// such a list is unknown, not fetched again).
    fetched: Vec<Uuid>,
}

/// At most this many device-list fetches for one message.
const MAX_FETCHES: u8 = 4;

impl std::fmt::Debug for Opening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opening")
            .field("room_id", &self.m.room_id)
            .field("seq", &self.m.seq)
            .finish_non_exhaustive()
    }
}

impl Opening {
    /// A message of the live stream (or a history page).
    pub fn new(m: Incoming) -> Self {
        Self {
            m,
            statements_only: false,
            stage: Stage::Sender,
            fetches: 0,
            fetched: Vec::new(),
        }
    }

    /// A message read ahead of the live stream for its membership statement
    /// only: no replay check (the live stream does it when it gets there),
    /// and content comes out as [`Outcome::Again`], as does a message of
    /// this device's own (not opened: its statements are the ones this
    /// device signed, taken when it signed them).
    /// The driver reads ahead up to [`crate::policy::READ_AHEAD_LIMIT`]
    /// messages after the room's stored cursor.
    pub fn statements_only(m: Incoming) -> Self {
        Self {
            statements_only: true,
            ..Self::new(m)
        }
    }

    /// The message.
    pub fn incoming(&self) -> &Incoming {
        &self.m
    }

    /// The driver could not do what the last step asked (`why`): the
    /// outcome is [`Outcome::Later`].
    pub fn failed(&mut self, why: impl Into<String>) {
        self.stage = Stage::Failed(why.into());
    }

    /// The feed's verdict on the sender's message id ([`Step::Seen`]).
    pub fn seen(&mut self, verdict: Seen) {
        if let Stage::Seen { verdict: v, .. } = &mut self.stage {
            *v = Some(verdict);
        }
    }

    /// Runs the pipeline as far as it can go without the driver.
    pub fn step<D: SenderDevice + Clone>(
        &mut self,
        me: &Me<'_>,
        pins: &Pins,
        devices: &mut Devices<D>,
        rooms: &mut Rooms,
    ) -> Step {
        if self.statements_only
            && self.m.sender_id == me.user
            && self.m.device_id == me.device.device_id()
            && matches!(self.stage, Stage::Sender)
        {
            self.stage = Stage::Done;
            return Step::Done(Outcome::Again);
        }
        loop {
            match std::mem::replace(&mut self.stage, Stage::Done) {
                Stage::Done => return Step::Done(Outcome::Later("opened already".into())),
                Stage::Failed(why) => return Step::Done(Outcome::Later(why)),
                Stage::Sender => match self.check_sender(me, pins, devices) {
                    Checked::Need(user) => {
                        self.stage = Stage::Sender;
                        return self.fetch(user);
                    }
                    Checked::Refused(reason) => {
                        return Step::Done(Outcome::Undecryptable(reason));
                    }
                    Checked::Next(stage) => self.stage = stage,
                },
                Stage::Seen {
                    opened,
                    trust,
                    reached,
                    verdict,
                } => {
                    let verdict = if self.statements_only {
                        Seen::New
                    } else if let Some(v) = verdict {
                        v
                    } else {
                        let step = Step::Seen {
                            sender: self.m.sender_id,
                            client_id: opened.replay_id(),
                        };
                        self.stage = Stage::Seen {
                            opened,
                            trust,
                            reached,
                            verdict: None,
                        };
                        return step;
                    };
                    match verdict {
                        Seen::New => {}
                        Seen::Again => return Step::Done(Outcome::Again),
                        Seen::Replay => {
                            return Step::Done(Outcome::Undecryptable(
                                UndecryptableReason::Replayed,
                            ));
                        }
                    }
                    match Plaintext::decode(&opened.plaintext) {
                        Plaintext::Membership(statement) => {
                            self.stage = Stage::Signer {
                                statement: Zeroizing::new(statement),
                                reached,
                            };
                        }
                        Plaintext::Content(_) if self.statements_only => {
                            return Step::Done(Outcome::Again);
                        }
                        Plaintext::Content(content) => {
                            let m = &self.m;
                            return Step::Done(Outcome::Message(Box::new(HistoryItem {
                                room_id: m.room_id,
                                id: m.id,
                                seq: m.seq,
                                sender_id: m.sender_id,
                                sender_device: m.device_id,
                                client_id: opened.replay_id(),
                                sent_at_ms: opened.header.timestamp_ms,
                                received_at: m.created_at.clone(),
                                trust,
                                content,
                            })));
                        }
                    }
                }
                Stage::Signer { statement, reached } => {
                    let signer = match MembershipStatement::from_bytes(&statement) {
                        // Does not parse: `receive` says why.
                        Err(_) => None,
                        Ok(s) => {
                            let (user, device) = (s.signer_user(), s.signer_device());
                            let at = &self.m.created_at;
                            match lookup(&mut self.fetched, at, me, pins, devices, user, device) {
                                Lookup::Need => {
                                    self.stage = Stage::Signer { statement, reached };
                                    return self.fetch(user);
                                }
                                Lookup::Found(d, _) => Some(d.clone()),
                                Lookup::Refused(_) => None,
                            }
                        }
                    };
                    let got = rooms.receive(self.m.room_id, &statement, signer.as_ref(), &reached);
                    return Step::Done(Outcome::Control(got.err()));
                }
            }
        }
    }

    /// Asks for `user`'s device list, unless asked too often already.
    fn fetch(&mut self, user: Uuid) -> Step {
        self.fetches = self.fetches.saturating_add(1);
        if self.fetches > MAX_FETCHES {
            self.stage = Stage::Done;
            return Step::Done(Outcome::Later(
                "device lists keep changing; try again".into(),
            ));
        }
        Step::Fetch(user)
    }

    /// Steps 1 to 3: peek, sender check, open.
    fn check_sender<D: SenderDevice + Clone>(
        &mut self,
        me: &Me<'_>,
        pins: &Pins,
        devices: &mut Devices<D>,
    ) -> Checked {
        let Self { m, fetched, .. } = self;
        let my_device = me.device.device_id();
        let Ok(parsed) = Envelope::from_bytes(&m.envelope) else {
            return Checked::Refused(UndecryptableReason::Invalid);
        };
        if !parsed.recipient_devices().any(|d| d == my_device) {
            return Checked::Refused(UndecryptableReason::NotForThisDevice);
        }
        let at = &m.created_at;
        let (sender, trust) = match lookup(fetched, at, me, pins, devices, m.sender_id, m.device_id)
        {
            Lookup::Need => return Checked::Need(m.sender_id),
            Lookup::Refused(reason) => return Checked::Refused(reason),
            Lookup::Found(d, trust) => (d, trust),
        };
        let ctx = OpenContext {
            room_id: m.room_id,
            sender,
        };
        let reached = parsed.recipient_devices().collect();
        // (Parsed once: the peek's parse is opened.)
        match parsed.open(my_device, me.keys, &ctx) {
            Ok(opened) => Checked::Next(Stage::Seen {
                opened,
                trust,
                reached,
                verdict: None,
            }),
            Err(sotto_core::OpenError::NotARecipient) => {
                Checked::Refused(UndecryptableReason::NotForThisDevice)
            }
            Err(_) => Checked::Refused(UndecryptableReason::Invalid),
        }
    }
}

/// The trusted device `device` of `user`, for a message the relay stored at
/// `stored_at`. Unknown in a list cached before: dropped and fetched once
/// more (a new device); unknown in a list this opening fetched (`fetched`):
/// unknown.
fn lookup<'a, D: SenderDevice + Clone>(
    fetched: &mut Vec<Uuid>,
    stored_at: &str,
    me: &Me<'a>,
    pins: &Pins,
    devices: &'a mut Devices<D>,
    user: Uuid,
    device: Uuid,
) -> Lookup<'a> {
    if user == me.user && device == me.device.device_id() {
        return Lookup::Found(me.device, SenderTrust::Own);
    }
    if !devices.missing(&[user]).is_empty() {
        fetched.push(user);
        return Lookup::Need;
    }
    let refused = match devices.sender(pins, me.user, user, device, stored_at) {
        Sender::Trusted(..) => None,
        Sender::Refused(SenderRefused::UntrustedSender) => {
            Some(Lookup::Refused(UndecryptableReason::UntrustedSender))
        }
        Sender::Refused(SenderRefused::UnknownDevice) => {
            Some(Lookup::Refused(UndecryptableReason::UnknownDevice))
        }
        Sender::Unknown if fetched.contains(&user) => {
            Some(Lookup::Refused(UndecryptableReason::UnknownDevice))
        }
        Sender::Unknown => {
            devices.forget(Some(user));
            fetched.push(user);
            Some(Lookup::Need)
        }
    };
    if let Some(not_found) = refused {
        return not_found;
    }
    // Trusted: the device as the cache holds it (looked up again to borrow it).
    match devices.sender(pins, me.user, user, device, stored_at) {
        Sender::Trusted(d, trust) => Lookup::Found(d.verified(), trust),
        // (Cannot be: nothing changed since the first lookup. Fails closed.)
        _ => Lookup::Refused(UndecryptableReason::UnknownDevice),
    }
}

enum Checked {
    Need(Uuid),
    Refused(UndecryptableReason),
    Next(Stage),
}

enum Lookup<'a> {
    Need,
    Found(&'a VerifiedDevice, SenderTrust),
    Refused(UndecryptableReason),
}
