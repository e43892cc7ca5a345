//! [`Session`]: one device of one account, doing the encryption for the app.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sotto_core::api::{
    AddedMember, ClientFrame, Device, Invitation, ReceiptKind, RoomDetails, User,
};
use sotto_core::backup::{self, BackupParams, DeviceSecrets, RecoveryKey};
use sotto_core::envelope;
use sotto_core::keys::{
    DeviceBundle, DeviceKeyOptions, DeviceKeys, IdentityKeyPair, IdentityPublicKey, RsaBits,
    VerifiedDevice,
};
use sotto_core::safety::SafetyNumber;
use sotto_core::trust::Pin;
use sotto_engine::Rooms;
use sotto_engine::address::{AddressError, Addressing, Need, Purpose, Signer};
use sotto_engine::devices::{Devices, Fetch, Listed, Query};
use sotto_engine::feed::Seen;
use sotto_engine::link::{Ack, Link};
use sotto_engine::open::{Me, Opening, Outcome, Step};
use sotto_engine::outbox::{HttpAnswer, Outbox, SocketAnswer};
use sotto_engine::pins::{self, Pins};
use sotto_engine::post::{Do, Flush, FlushStep, Posted, Posting};
use sotto_engine::room_ops::{Answer, Call, OpNeed, RoomOp, RoomOperation, RoomView};
use sotto_engine::setup::{Mode, OwnDevice, SetUp, SetupError, SetupNeed};
use sotto_engine::vault::{HistoryItem, HistoryKey, ReadAhead, StoreKey, VaultError};
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::content::Content;
use crate::error::{Error, Result};
use crate::events::{Event, ReceivedMessage};
use crate::store::{Store, StoredAccount};
use crate::transport::Client;

/// How long a `send` over the socket waits for the relay's `ack` before it
/// posts the same message (same `client_id`) over HTTP instead.
const ACK_TIMEOUT: Duration = Duration::from_millis(sotto_engine::policy::ACK_TIMEOUT_MS);

/// The secret that opens a key backup.
pub enum BackupSecret {
    /// A passphrase (Argon2id).
    Passphrase(Zeroizing<String>),
    /// A recovery key (as printed by [`Session::export_backup_with_recovery_key`]).
    RecoveryKey(RecoveryKey),
}

impl std::fmt::Debug for BackupSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Passphrase(_) => "Passphrase([redacted])",
            Self::RecoveryKey(_) => "RecoveryKey([redacted])",
        })
    }
}

impl BackupSecret {
    fn open(&self, blob: &[u8]) -> Result<DeviceSecrets> {
        Ok(match self {
            Self::Passphrase(p) => backup::import_with_passphrase(blob, p.as_bytes())?,
            Self::RecoveryKey(k) => backup::import_with_recovery_key(blob, k)?,
        })
    }
}

/// How to set this device up when the store has no account yet.
#[non_exhaustive]
pub enum DeviceSetup {
    /// The account's first device: generate an identity key and device keys.
    New {
        /// Also an RSA key (the `rsa` suite: others then wrap for this device with RSA-OAEP).
        rsa: Option<RsaBits>,
    },
    /// Another device of an account that has one: the identity from a key
    /// backup of any of its devices, fresh device keys.
    Link {
        /// The backup blob.
        backup: Vec<u8>,
        /// Its secret.
        secret: BackupSecret,
        /// Also an RSA key.
        rsa: Option<RsaBits>,
    },
    /// Restore this very device (same device id and keys) from its key backup,
    /// e.g. on a new computer; it reads on from where the relay is.
    Restore {
        /// The backup blob.
        backup: Vec<u8>,
        /// Its secret.
        secret: BackupSecret,
    },
}

impl std::fmt::Debug for DeviceSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The backup blob is encrypted, but printing it would hand an offline
        // guessing attack on its passphrase to whoever reads the log.
        match self {
            Self::New { rsa } => f.debug_struct("New").field("rsa", rsa).finish(),
            Self::Link { rsa, .. } => f
                .debug_struct("Link")
                .field("backup", &"[redacted]")
                .field("rsa", rsa)
                .finish_non_exhaustive(),
            Self::Restore { .. } => f
                .debug_struct("Restore")
                .field("backup", &"[redacted]")
                .finish_non_exhaustive(),
        }
    }
}

/// Options of [`Session::open`].
#[derive(Debug)]
pub struct SessionOptions {
    /// Encrypts the device's keys in the store (Argon2id). Apps often use the
    /// account password; it may be anything the user can type again.
    pub store_passphrase: Zeroizing<String>,
    /// Used only when the store has no account yet.
    pub setup: DeviceSetup,
    /// A name for this device shown in device lists (e.g. "laptop").
    pub device_name: Option<String>,
}

/// A message handed to the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// The message id (the idempotency key of the post).
    pub client_id: Uuid,
    /// The relay's id of the stored message (as in `Message.id`).
    pub id: Uuid,
    /// Its place in the room.
    pub seq: u64,
}

/// The OS RNG, as the engine's entry points take it.
pub(crate) type OsRng = rand_core::UnwrapErr<getrandom::SysRng>;

pub(crate) struct Inner {
    /// Local history is sealed under this (derived from the store key).
    pub(crate) history: HistoryKey,
    /// The nonces of history items: the OS RNG read ahead (one call per 64).
    pub(crate) nonces: Mutex<ReadAhead<OsRng>>,
    /// This device, as a sender of its own messages.
    own: VerifiedDevice,
    pub(crate) client: Client,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) user: User,
    pub(crate) device_id: Uuid,
    pub(crate) identity: IdentityKeyPair,
    pub(crate) keys: DeviceKeys,
    pub(crate) trust: Mutex<Pins>,
    /// Verified devices per user (revoked ones too: to verify old messages),
    /// as the engine caches them (memory only: dropped on every connection).
    devices: Mutex<Devices<VerifiedDevice>>,
    /// Room membership as the engine decides it (`docs/protocol.md` §12.4):
    /// the records saved in the store, and the relay's view of each room while
    /// the live stream keeps it right.
    pub(crate) rooms: Mutex<Rooms>,
    /// The outbox's posts in flight (the engine's single-flight rule) and the
    /// control messages among them (their `Sent` is not the app's).
    outbox: Mutex<Outbox>,
    /// Woken whenever a post ends, for a flush waiting on another's post.
    outbox_done: tokio::sync::Notify,
    /// Events go nowhere until the app takes the stream (no unbounded buffer
    /// for an app that never reads them); after that they are never dropped.
    pub(crate) events: mpsc::UnboundedSender<Event>,
    events_rx: Mutex<Option<mpsc::UnboundedReceiver<Event>>>,
    events_taken: std::sync::atomic::AtomicBool,
    /// The engine's live connection (`sotto_engine::link`) while a
    /// connection task runs; the task does its outputs.
    /// Tagged with the number of the task that drives it: a task still
    /// winding down after a `disconnect` touches only its own link.
    pub(crate) link: Mutex<Option<(u64, Link<Event>)>>,
    /// Numbers the connection tasks.
    pub(crate) link_tasks: std::sync::atomic::AtomicU64,
    /// Wakes the connection task when an input from elsewhere (a send, a
    /// typing frame) left outputs to do.
    pub(crate) link_wake: tokio::sync::Notify,
    /// The origin of the link's clock.
    pub(crate) epoch: std::time::Instant,
    /// `send`s over the socket waiting for their `ack` (the link decides when
    /// the wait ends).
    pub(crate) acks: Mutex<HashMap<Uuid, oneshot::Sender<Ack>>>,
    /// The live connection's task and the switch that stops it (one per `connect`).
    sync: Mutex<Option<(tokio::task::JoinHandle<()>, watch::Sender<bool>)>>,
}

/// One device of one account: sets keys up, encrypts and decrypts for the app,
/// keeps trust, and syncs in real time. The app speaks plaintext, users, devices
/// and rooms; envelopes never reach it, so a new protocol version changes no app
/// code.
///
/// Cheap to clone (shared).
#[derive(Clone)]
pub struct Session {
    pub(crate) inner: Arc<Inner>,
    /// Held by the app's handles only: when the last is dropped, the live
    /// connection closes (the SDK's own tasks hold detached handles).
    _alive: Option<Arc<Alive>>,
}

struct Alive(std::sync::Weak<Inner>);

impl Drop for Alive {
    fn drop(&mut self) {
        if let Some(inner) = self.0.upgrade()
            && let Some((_, stop)) = lock(&inner.sync).as_ref()
        {
            stop.send_replace(true);
        }
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("user_id", &self.inner.user.id)
            .field("device_id", &self.inner.device_id)
            .finish_non_exhaustive()
    }
}

/// The relay's last answer in a room operation.
enum Reply {
    Nothing,
    Details(RoomDetails),
    Added(AddedMember),
}

/// Now as RFC 3339 (what history shows as "stored" for this device's own
/// messages; the relay's ack does not say).
fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Store(format!("worker failed: {e}")))?
}

/// The OS RNG, as the engine's entry points take it (checked to answer).
pub(crate) fn os_rng() -> Result<OsRng> {
    let mut probe = [0u8; 1];
    getrandom::fill(&mut probe).map_err(|e| Error::Store(format!("no randomness: {e}")))?;
    Ok(rand_core::UnwrapErr(getrandom::SysRng))
}

fn vault_error(e: VaultError) -> Error {
    match e {
        VaultError::WrongPassphrase | VaultError::EmptyPassphrase => Error::Locked,
        VaultError::SecretsCorrupted => Error::Store(e.to_string()),
        other => Error::Store(format!("store key: {other}")),
    }
}

/// Unlocks a stored account (`sotto_engine::vault`): the store key under
/// the passphrase (one Argon2id), then the device's secrets under it. A store
/// made before the store key comes back upgraded, for the caller to save.
fn unlock(
    acct: StoredAccount,
    passphrase: &str,
) -> Result<(StoreKey, DeviceSecrets, Option<StoredAccount>)> {
    let unlocked = StoreKey::unlock(
        acct.store_key.as_deref(),
        &acct.secrets,
        passphrase.as_bytes(),
        &BackupParams::default(),
        &mut os_rng()?,
    )
    .map_err(vault_error)?;
    let upgraded = unlocked.upgraded.map(|u| StoredAccount {
        secrets: u.secrets,
        store_key: Some(u.wrapped_key),
        ..acct
    });
    Ok((unlocked.key, unlocked.secrets, upgraded))
}

fn clone_secrets(s: &DeviceSecrets) -> Result<DeviceSecrets> {
    let rsa = s.device.rsa_pkcs8_der()?;
    Ok(DeviceSecrets {
        user_id: s.user_id,
        device_id: s.device_id,
        identity: IdentityKeyPair::from_seed(&s.identity.to_seed()),
        device: DeviceKeys::from_secret_parts(
            &s.device.signing_seed(),
            &s.device.x25519_secret(),
            rsa.as_deref().map(|d| &d[..]),
        )?,
    })
}

impl Session {
    /// Opens the session of the logged-in `client`'s user on this device.
    ///
    /// With an account in `store`, unlocks its keys with the store passphrase
    /// (and checks the device was not revoked). Without one, sets the device up
    /// as `options.setup` says: generates or imports keys, uploads the device's
    /// signed bundle, and saves the keys encrypted in the store.
    pub async fn open(
        client: Client,
        store: Arc<dyn Store>,
        options: SessionOptions,
    ) -> Result<Self> {
        let user = client.me().await?;
        let SessionOptions {
            store_passphrase: passphrase,
            setup,
            device_name,
        } = options;
        let (mode, rsa, mut backup) = match setup {
            DeviceSetup::New { rsa } => (Mode::New, rsa, None),
            DeviceSetup::Link {
                backup,
                secret,
                rsa,
            } => (Mode::Link, rsa, Some((backup, secret))),
            DeviceSetup::Restore { backup, secret } => {
                (Mode::Restore, None, Some((backup, secret)))
            }
        };
        let mut acct = store.account()?;
        // The engine decides the order and the checks (`sotto_engine::setup`);
        // the key derivations and generation run off the async threads.
        let mut set_up = SetUp::new(user.id, acct.as_ref().map(|a| a.user_id), mode);
        let mut secrets: Option<DeviceSecrets> = None;
        let mut opened: Option<DeviceSecrets> = None;
        let mut store_key: Option<StoreKey> = None;
        let out_of_order = || Error::Protocol("the session set-up went out of order".into());
        loop {
            match set_up.step() {
                SetupNeed::Unlock => {
                    let a = acct.take().ok_or_else(out_of_order)?;
                    let pass = passphrase.clone();
                    let (key, s, upgraded) = blocking(move || unlock(a, &pass)).await?;
                    if let Some(a) = upgraded {
                        store.set_account(&a)?;
                    }
                    set_up.unlocked(s.device_id);
                    store_key = Some(key);
                    secrets = Some(s);
                }
                SetupNeed::OwnDevices => {
                    let all = client.list_devices(true).await?;
                    let own = all.items.iter().map(|d| OwnDevice {
                        device_id: d.device_id,
                        revoked: d.revoked_at.is_some(),
                    });
                    set_up.own_devices(own.collect());
                }
                SetupNeed::Generate => {
                    let user_id = user.id;
                    let s = blocking(move || {
                        Ok(DeviceSecrets {
                            user_id,
                            device_id: Uuid::now_v7(),
                            identity: IdentityKeyPair::generate()?,
                            device: DeviceKeys::generate(DeviceKeyOptions { rsa })?,
                        })
                    })
                    .await?;
                    set_up.generated(s.device_id);
                    secrets = Some(s);
                }
                SetupNeed::OpenBackup => {
                    let (blob, secret) = backup.take().ok_or_else(out_of_order)?;
                    let s = blocking(move || secret.open(&blob)).await?;
                    set_up.backup_opened(s.user_id, s.device_id);
                    opened = Some(s);
                }
                SetupNeed::NewDeviceKeys => {
                    let old = opened.take().ok_or_else(out_of_order)?;
                    let device =
                        blocking(move || Ok(DeviceKeys::generate(DeviceKeyOptions { rsa })?))
                            .await?;
                    let s = DeviceSecrets {
                        user_id: user.id,
                        device_id: Uuid::now_v7(),
                        identity: old.identity,
                        device,
                    };
                    set_up.generated(s.device_id);
                    secrets = Some(s);
                }
                SetupNeed::SaveAccount => {
                    // (Restore: this very device, from its backup.)
                    let s = match secrets.take().or_else(|| opened.take()) {
                        Some(s) => s,
                        None => return Err(out_of_order()),
                    };
                    let copy = clone_secrets(&s)?;
                    let pass = passphrase.clone();
                    let kept = blocking(move || {
                        let params = BackupParams::default();
                        StoreKey::keep(&copy, pass.as_bytes(), &params, &mut os_rng()?)
                            .map_err(vault_error)
                    })
                    .await?;
                    store.set_account(&StoredAccount {
                        relay: client.base_url().to_owned(),
                        user_id: user.id,
                        device_id: s.device_id,
                        secrets: kept.secrets,
                        store_key: Some(kept.wrapped_key),
                    })?;
                    set_up.saved();
                    store_key = Some(kept.key);
                    secrets = Some(s);
                }
                SetupNeed::Upload => {
                    let s = secrets.as_ref().ok_or_else(out_of_order)?;
                    upload(&client, s, device_name.clone()).await?;
                    set_up.uploaded();
                }
                SetupNeed::Done => break,
                SetupNeed::Failed(e) => {
                    return Err(match e {
                        SetupError::StoreMismatch(why) => Error::StoreMismatch(why),
                        SetupError::IdentityExists => Error::IdentityExists,
                        SetupError::DeviceRevoked => Error::DeviceRevoked,
                        _ => out_of_order(),
                    });
                }
            }
        }
        let (Some(secrets), Some(store_key)) = (secrets, store_key) else {
            return Err(out_of_order());
        };

        // The engine's pins: the store's, and this user's own key (verified:
        // the engine pins it itself, whatever the store holds).
        let stored_pins = store.pins()?;
        let own = secrets.identity.public_key();
        let trust = Pins::load(
            user.id,
            own.to_bytes(),
            stored_pins.into_iter().map(|(u, p)| (u, engine_pin(&p))),
        );
        // (A store from before signed membership: the rooms this device knew
        // are adopted as legacy rooms, saved at once.)
        let mut rooms = Rooms::open(user.id, store.rooms()?, store.cursors()?.into_keys());
        store.save_rooms(&rooms.take_changes())?;
        let history = store_key.history();
        let own = DeviceBundle::create(
            &secrets.identity,
            &secrets.device,
            secrets.user_id,
            secrets.device_id,
        )?
        .verify()
        .map_err(|e| Error::Store(format!("this device's own bundle does not verify: {e}")))?;
        let (events, events_rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            history,
            own,
            client,
            store,
            user,
            device_id: secrets.device_id,
            identity: secrets.identity,
            keys: secrets.device,
            trust: Mutex::new(trust),
            devices: Mutex::new(Devices::default()),
            rooms: Mutex::new(rooms),
            outbox: Mutex::new(Outbox::new()),
            outbox_done: tokio::sync::Notify::new(),
            events,
            events_rx: Mutex::new(Some(events_rx)),
            events_taken: std::sync::atomic::AtomicBool::new(false),
            link: Mutex::new(None),
            link_tasks: std::sync::atomic::AtomicU64::new(0),
            link_wake: tokio::sync::Notify::new(),
            epoch: std::time::Instant::now(),
            acks: Mutex::new(HashMap::new()),
            sync: Mutex::new(None),
            nonces: Mutex::new(ReadAhead::new(os_rng()?)),
        });
        Ok(Self {
            _alive: Some(Arc::new(Alive(Arc::downgrade(&inner)))),
            inner,
        })
    }

    /// A handle for the SDK's own tasks, which does not keep the session alive.
    pub(crate) fn detached(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            _alive: None,
        }
    }

    /// The transport, for calls the session does not wrap (rooms, contacts, users...).
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// The user.
    pub fn user(&self) -> &User {
        &self.inner.user
    }

    /// The user's id.
    pub fn user_id(&self) -> Uuid {
        self.inner.user.id
    }

    /// This device's id.
    pub fn device_id(&self) -> Uuid {
        self.inner.device_id
    }

    /// The event stream; there is one per session (`None` once taken).
    /// Start the live connection with [`Session::connect`].
    pub fn events(&self) -> Option<crate::EventStream> {
        self.inner
            .events_taken
            .store(true, std::sync::atomic::Ordering::SeqCst);
        lock(&self.inner.events_rx)
            .take()
            .map(crate::EventStream::new)
    }

    /// Starts the live connection: a background task that connects, resumes
    /// every room from the stored cursors, delivers [`Event`]s, flushes the
    /// outbox, and reconnects with back-off whenever the connection drops.
    /// Idempotent.
    pub fn connect(&self) {
        let mut sync = lock(&self.inner.sync);
        if let Some((handle, stop)) = sync.as_ref()
            && !handle.is_finished()
        {
            if !*stop.borrow() {
                return; // already running
            }
            // Still winding down after a disconnect: stop it for good now.
            handle.abort();
        }
        let (stop, stopped) = watch::channel(false);
        let handle = tokio::spawn(crate::sync::run(self.detached(), stopped));
        *sync = Some((handle, stop));
    }

    /// Stops the live connection: what is queued is sent, the socket closed.
    /// Messages not yet acknowledged stay in the outbox for the next connection.
    pub async fn disconnect(&self) {
        let current = lock(&self.inner.sync).take();
        if let Some((handle, stop)) = current {
            stop.send_replace(true);
            let _ = handle.await;
        }
    }

    /// Whether the live connection is up.
    pub fn is_online(&self) -> bool {
        lock(&self.inner.link)
            .as_ref()
            .is_some_and(|(_, link)| link.is_online())
    }

    // ---- Sending -----------------------------------------------------------

    /// Encrypts `text` for every device of every member of the room and posts it.
    pub async fn send_text(&self, room_id: Uuid, text: &str) -> Result<Sent> {
        self.send(room_id, &Content::text(text)).await
    }

    /// Encrypts `content` for every current device of every member of `room_id`
    /// (verified against the pinned identity keys; devices that publish an RSA
    /// key get an RSA-OAEP wrap, the others X25519), then posts it over the live
    /// socket, or over HTTP, with an idempotent `client_id`. The sealed message
    /// waits in the store's outbox until the relay acknowledges it, so a crash
    /// or restart in between re-sends the same message, never a second one.
    ///
    /// Refuses ([`Error::IdentityChanged`]) when a member's identity key changed
    /// and was not accepted.
    pub async fn send(&self, room_id: Uuid, content: &Content) -> Result<Sent> {
        let plaintext = Zeroizing::new(content.encode());
        if plaintext.len() > envelope::MAX_PLAINTEXT {
            return Err(Error::TooLarge);
        }
        let targets = self.address(room_id, Purpose::Send).await?;
        self.seal_and_post(room_id, &plaintext, &targets, false)
            .await
    }

    /// Seals `plaintext` for `targets` and posts it through the outbox
    /// (`sotto_engine::post`): an app message (kept in local history once
    /// stored) or, with `control`, a membership statement (no `Event::Sent`,
    /// not in history).
    async fn seal_and_post(
        &self,
        room_id: Uuid,
        plaintext: &[u8],
        targets: &[VerifiedDevice],
        control: bool,
    ) -> Result<Sent> {
        let inner = &self.inner;
        let mut posting = Posting::seal(
            &self.me(),
            room_id,
            plaintext,
            targets,
            control,
            Uuid::now_v7(),
            now_ms(),
        )?;
        // Claimed before it is in the store, so a flush that reads the store
        // meanwhile waits for this post instead of making its own.
        posting.claim(&mut lock(&inner.outbox));
        if let Err(e) = inner.store.outbox_push(posting.entry()) {
            posting.abandon(&mut lock(&inner.outbox));
            inner.outbox_done.notify_waiters();
            return Err(e);
        }
        self.post(posting)
            .await?
            .ok_or_else(|| Error::Protocol("a new message left the outbox unposted".into()))
    }

    /// This device as the engine's open and seal code sees it.
    fn me(&self) -> Me<'_> {
        Me {
            user: self.inner.user.id,
            device: &self.inner.own,
            keys: &self.inner.keys,
        }
    }

    // ---- Rooms and their signed membership ---------------------------------

    /// Creates a group room owned by this user with `members` (`docs/protocol.md`
    /// §12.4): the room is created empty, this device signs its first
    /// membership statement listing `members` and posts it, and only then asks
    /// the relay to add each (members who have this user in their contacts
    /// join at once, the others are invited). Returns the room as it is then.
    pub async fn create_room(&self, name: &str, members: &[Uuid]) -> Result<RoomDetails> {
        let op = RoomOp::Create {
            members: members.to_vec(),
        };
        match self.room_op(op, name).await? {
            Reply::Details(d) => Ok(d),
            _ => Err(Error::Protocol("the relay's answer is not a room".into())),
        }
    }

    /// The direct room with `user` (existing or new, as the relay's
    /// `POST /rooms/direct`): its peer is pinned to `user` now, so a relay that
    /// lists someone else there gets nothing sealed to them.
    pub async fn direct_room(&self, user: Uuid) -> Result<RoomDetails> {
        match self.room_op(RoomOp::Direct { peer: user }, "").await? {
            Reply::Details(d) => Ok(d),
            _ => Err(Error::Protocol("the relay's answer is not a room".into())),
        }
    }

    /// Adds `user` to a room this user owns: signs the next membership
    /// statement listing them, posts it, then asks the relay to add them (they
    /// join at once if they have this user in their contacts; otherwise they
    /// are invited and join when they accept). If the relay refuses, the
    /// statement is withdrawn again.
    pub async fn add_member(&self, room_id: Uuid, user: Uuid) -> Result<AddedMember> {
        match self
            .room_op(
                RoomOp::Add {
                    room: room_id,
                    user,
                },
                "",
            )
            .await?
        {
            Reply::Added(a) => Ok(a),
            _ => Err(Error::Protocol(
                "the relay's answer is not an added member".into(),
            )),
        }
    }

    /// Removes `user` from a room this user owns, or withdraws their pending
    /// invitation; with `user` this user, leaves the room. As the owner, then
    /// signs and posts the statement without them, whatever the relay
    /// answered, so the removal holds even if the relay keeps them (or later
    /// writes them back) in its member list. (Signed after the relay's
    /// removal, not before: until then the relay lists them, and a client
    /// holding the new statement would warn about a member its owner is
    /// removing.)
    pub async fn remove_member(&self, room_id: Uuid, user: Uuid) -> Result<()> {
        self.room_op(
            RoomOp::Remove {
                room: room_id,
                user,
            },
            "",
        )
        .await
        .map(|_| ())
    }

    /// This user's pending invitations (all pages), to rooms they are not in yet.
    pub async fn invitations(&self) -> Result<Vec<Invitation>> {
        self.inner.client.all_invitations().await
    }

    /// Accepts an invitation as [`Session::invitations`] listed it: the room
    /// joins this user's rooms (its history starts now). This device gets the
    /// room's messages once the owner's statement names this user
    /// (`docs/protocol.md` §12.4); a direct room's peer is pinned to the
    /// inviter, so a relay that lists someone else there gets nothing sealed
    /// to them.
    pub async fn accept_invitation(&self, invitation: &Invitation) -> Result<RoomDetails> {
        match self.room_op(RoomOp::from(invitation), "").await? {
            Reply::Details(d) => Ok(d),
            _ => Err(Error::Protocol("the relay's answer is not a room".into())),
        }
    }

    /// Declines an invitation.
    pub async fn decline_invitation(&self, invitation_id: Uuid) -> Result<()> {
        self.inner.client.decline_invitation(invitation_id).await
    }

    /// Drives the engine's room operation (`sotto_engine::room_ops`): the
    /// relay calls and addressing runs it asks for, in its order, and the
    /// warnings it shows. Returns the relay's last answer, or the error kept
    /// (a refusal, or a failed addressing's error, which replaces it).
    async fn room_op(&self, op: RoomOp, name: &str) -> Result<Reply> {
        let client = &self.inner.client;
        let mut o = RoomOperation::new(self.inner.user.id, op);
        let mut last = Reply::Nothing;
        let mut error = None;
        loop {
            let need = o.step(&mut lock(&self.inner.rooms));
            self.save_rooms()?;
            match need {
                OpNeed::Call(call) => {
                    let reply = match call {
                        Call::CreateRoom => client.create_room(name, &[]).await.map(Reply::Details),
                        Call::DirectRoom(u) => client.direct_room(u).await.map(Reply::Details),
                        Call::AddMember { room, user } => {
                            client.add_member(room, user).await.map(Reply::Added)
                        }
                        Call::RemoveMember { room, user } => client
                            .remove_member(room, user)
                            .await
                            .map(|()| Reply::Nothing),
                        Call::GetRoom(room) => client.get_room(room).await.map(Reply::Details),
                        Call::AcceptInvitation(id) => {
                            client.accept_invitation(id).await.map(Reply::Details)
                        }
                    };
                    let answer = match reply {
                        Ok(r) => {
                            let a = match &r {
                                Reply::Details(d) => Answer::View(RoomView::from(d)),
                                _ => Answer::Ok,
                            };
                            last = r;
                            a
                        }
                        Err(e) => {
                            let a = Answer::refusal(e.code());
                            error = Some(e);
                            a
                        }
                    };
                    o.answered(&mut lock(&self.inner.rooms), answer);
                }
                OpNeed::Address(room, purpose) => match self.address(room, purpose).await {
                    Ok(_) => o.addressed(true),
                    Err(e) => {
                        error = Some(e);
                        o.addressed(false);
                    }
                },
                OpNeed::Warn(w) => self.emit(Event::Membership(w)).await,
                OpNeed::Done => return Ok(last),
                OpNeed::Failed => {
                    return Err(error.unwrap_or_else(|| {
                        Error::Protocol("the relay's answer does not fit the room operation".into())
                    }));
                }
            }
        }
    }

    /// Saves the engine's changed membership records.
    pub(crate) fn save_rooms(&self) -> Result<()> {
        let changes = lock(&self.inner.rooms).take_changes();
        if changes.is_empty() {
            return Ok(());
        }
        self.inner.store.save_rooms(&changes)
    }

    /// Drives the engine's addressing for `room_id` (`sotto_engine::address`):
    /// fetches what it asks for, posts the statements it signs, shows its
    /// warnings, and saves the rooms' records before acting on each step.
    /// Returns the devices to seal to ([`Purpose::Send`]).
    pub(crate) async fn address(
        &self,
        room_id: Uuid,
        purpose: Purpose,
    ) -> Result<Vec<VerifiedDevice>> {
        // Finished however it ends, even dropped half-way (a caller's
        // timeout): whether a view it fetched is kept is the engine's rule,
        // and a statement post it started must not stay counted as under way.
        let mut run = AddressingRun {
            session: self,
            a: Addressing::new(room_id, purpose),
        };
        self.drive_addressing(&mut run.a).await
    }

    async fn drive_addressing(
        &self,
        a: &mut Addressing<VerifiedDevice>,
    ) -> Result<Vec<VerifiedDevice>> {
        let inner = &self.inner;
        let room_id = a.room();
        loop {
            let need = {
                let signer = Signer {
                    device: inner.device_id,
                    keys: &inner.keys,
                };
                let trust = lock(&inner.trust);
                let devices = lock(&inner.devices);
                let mut rooms = lock(&inner.rooms);
                a.step(&signer, &trust, &devices, &mut rooms)
            };
            if let Err(e) = self.save_rooms() {
                if matches!(need, Need::Post { .. }) {
                    // Never posted: its devices are not counted as reached.
                    a.post_refused(&mut lock(&inner.rooms));
                }
                return Err(e);
            }
            match need {
                Need::Room(fetch) => {
                    let details: RoomDetails = inner.client.get_room(room_id).await?;
                    // `None`: a room event overtook the answer; asked again.
                    let taken = lock(&inner.rooms).observe_fetched(fetch, &details);
                    self.save_rooms()?;
                    for w in taken.unwrap_or_default() {
                        self.emit(Event::Membership(w)).await;
                    }
                }
                Need::Devices(users) => self.fetch_devices(&users).await?,
                Need::ReadAhead => crate::sync::catch_up_statements(self, room_id).await,
                Need::Warn(w) => self.emit(Event::Membership(w)).await,
                Need::Wait => {
                    // Woken when a post ends (bounded: the engine waits a few times only).
                    let ended = inner.outbox_done.notified();
                    let _ = tokio::time::timeout(Duration::from_millis(100), ended).await;
                }
                Need::Post { plaintext, targets } => {
                    match self
                        .seal_and_post(room_id, &plaintext, &targets, true)
                        .await
                    {
                        Ok(_) | Err(Error::Queued { .. }) => {
                            a.posted(&mut lock(&inner.rooms));
                            inner.outbox_done.notify_waiters();
                        }
                        Err(e) => {
                            a.post_refused(&mut lock(&inner.rooms));
                            inner.outbox_done.notify_waiters();
                            self.save_rooms()?;
                            return Err(e);
                        }
                    }
                }
                Need::Done(targets) => return Ok(targets),
                Need::Failed(e) => {
                    return Err(match e {
                        AddressError::DirectRoomTampered(users) => Error::DirectRoomTampered(users),
                        AddressError::MembershipPending => Error::MembershipPending,
                        AddressError::IdentityChanged(users) => Error::IdentityChanged(users),
                        AddressError::NoDevices => Error::NoDevices(inner.user.id),
                        AddressError::Membership(e) => Error::Membership(e),
                        other => Error::Network(other.to_string()),
                    });
                }
            }
        }
    }

    /// Drives the engine's posting of one outbox entry this caller claimed
    /// (`sotto_engine::post`): the socket first, HTTP when the outbox says so,
    /// the entry out of the store once stored or refused for good; then local
    /// history and `Event::Sent` for an app message. A store failure after
    /// the relay stored the message does not make it unsent: it is reported
    /// (`Event::RelayError` with code `store`), and the entry goes out again
    /// on the next connection under the same client id. `None`: a resumed
    /// entry had left the store (posted since by another).
    pub(crate) async fn post(&self, p: Posting) -> Result<Option<Sent>> {
        let inner = &self.inner;
        let (room_id, client_id) = (p.entry().room_id, p.entry().client_id);
        // Ends the post however this future ends: answered, or dropped by its
        // caller mid-way (the entry then waits in the store for the next flush).
        let mut claim = Claim {
            session: self,
            posting: p,
        };
        let p = &mut claim.posting;
        // Why it was refused or queued, for the caller.
        let mut cause: Option<Error> = None;
        loop {
            let next = p.step(&mut lock(&inner.outbox));
            match next {
                Do::Check => {
                    // (A store that cannot tell: post it; the relay stores a client id once.)
                    let still = inner.store.outbox_contains(client_id).unwrap_or(true);
                    p.checked(&mut lock(&inner.outbox), still);
                }
                Do::Socket(frame) => {
                    let answer = self.post_on_socket(client_id, frame).await;
                    {
                        let mut outbox = lock(&inner.outbox);
                        p.socket(
                            &mut outbox,
                            match &answer {
                                Ack::Stored { id, seq } => SocketAnswer::Ack { id: *id, seq: *seq },
                                Ack::Refused {
                                    code,
                                    retry_after_ms,
                                    ..
                                } => SocketAnswer::Refused {
                                    code,
                                    retry_after_ms: *retry_after_ms,
                                },
                                Ack::Offline => SocketAnswer::NoAck,
                            },
                        );
                    }
                    if let Ack::Refused {
                        code,
                        detail,
                        retry_after_ms,
                    } = answer
                    {
                        let mut problem = sotto_core::api::Problem::new(
                            400,
                            &code,
                            "the relay refused the message",
                        );
                        if let Some(d) = detail {
                            problem = problem.with_detail(d);
                        }
                        cause = Some(Error::Relay {
                            problem: Box::new(problem),
                            retry_after: retry_after_ms.map(Duration::from_millis),
                        });
                    }
                }
                Do::Http { after_ms } => {
                    if after_ms > 0 {
                        tokio::time::sleep(Duration::from_millis(after_ms)).await;
                    }
                    let posted = inner
                        .client
                        .post_message(room_id, client_id, p.entry().envelope.clone())
                        .await;
                    let answer = match &posted {
                        Ok(r) => HttpAnswer::Stored {
                            id: r.id,
                            seq: r.seq,
                        },
                        Err(e) => match e.status() {
                            Some(status) => HttpAnswer::Refused { status },
                            None => HttpAnswer::Unreachable,
                        },
                    };
                    p.http(&mut lock(&inner.outbox), answer);
                    if let Err(e) = posted {
                        cause = Some(e);
                    }
                }
                Do::Remove => {
                    if let Err(e) = inner.store.outbox_remove(client_id) {
                        self.store_failed(format!("message {client_id} stays in the outbox: {e}"))
                            .await;
                    }
                    p.removed(&mut lock(&inner.outbox));
                }
                Do::Done(Posted::Sent { id, seq, announce }) => {
                    if announce {
                        let item = p.history_item(&self.me(), id, seq, now_rfc3339());
                        if let Some(item) = item
                            && let Err(e) = self.keep_items(&[item])
                        {
                            // History is the app's convenience: a sent message stays sent.
                            self.store_failed(format!("local history: {e}")).await;
                        }
                        self.emit(Event::Sent {
                            room_id,
                            client_id,
                            id,
                            seq,
                        })
                        .await;
                    }
                    return Ok(Some(Sent { client_id, id, seq }));
                }
                Do::Done(Posted::Gone) => return Ok(None),
                Do::Done(Posted::Refused) => {
                    return Err(cause.unwrap_or_else(|| {
                        Error::Protocol("the relay refused the message".into())
                    }));
                }
                Do::Done(Posted::Queued) => {
                    let cause = cause
                        .unwrap_or_else(|| Error::Network("the relay cannot be reached".into()));
                    return Err(Error::Queued {
                        client_id,
                        cause: Box::new(cause),
                    });
                }
            }
        }
    }

    /// Sends a `send` frame on the live socket and waits for its answer
    /// (`Ack::Offline`: no socket, or no answer in time).
    async fn post_on_socket(&self, client_id: Uuid, frame: ClientFrame) -> Ack {
        let (tx, rx) = oneshot::channel();
        lock(&self.inner.acks).insert(client_id, tx);
        let now = self.now_ms();
        let on_socket = lock(&self.inner.link)
            .as_mut()
            .is_some_and(|(_, link)| link.send_message(now, client_id, frame));
        if !on_socket {
            lock(&self.inner.acks).remove(&client_id);
            return Ack::Offline;
        }
        self.inner.link_wake.notify_one();
        // The link ends the wait (ack, refusal, timeout, socket gone); the
        // timeout here only guards against a connection task that was
        // aborted with the wait in flight.
        let answer = tokio::time::timeout(ACK_TIMEOUT * 2, rx)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(Ack::Offline);
        lock(&self.inner.acks).remove(&client_id);
        answer
    }

    /// Reports a failure of the local store that did not stop the operation.
    async fn store_failed(&self, detail: String) {
        tracing::warn!(%detail, "store failure");
        self.emit(Event::RelayError {
            code: "store".into(),
            detail: Some(detail),
        })
        .await;
    }

    /// Keeps history items, sealed under the store key, in one store transaction.
    fn keep_items(&self, items: &[HistoryItem]) -> Result<()> {
        let mut sealed = Vec::with_capacity(items.len());
        {
            // (Not held over the store's write.)
            let mut nonces = lock(&self.inner.nonces);
            for item in items {
                let bytes = self
                    .inner
                    .history
                    .seal(item, &mut *nonces)
                    .map_err(vault_error)?;
                sealed.push((item.room_id, item.seq, bytes));
            }
        }
        self.inner.store.history_put(&sealed)
    }

    /// A message sealed as a local history item under the store key.
    pub(crate) fn seal_kept(
        &self,
        m: &ReceivedMessage,
        rng: &mut impl rand_core::CryptoRng,
    ) -> Result<Vec<u8>> {
        let item = HistoryItem {
            room_id: m.room_id,
            id: m.id,
            seq: m.seq,
            sender_id: m.sender_id,
            sender_device: m.sender_device,
            client_id: m.client_id,
            sent_at_ms: m.sent_at_ms,
            received_at: m.received_at.clone(),
            trust: m.trust,
            content: m.content.clone(),
        };
        self.inner.history.seal(&item, rng).map_err(vault_error)
    }

    /// Local history of a room, from this device's store (no network): up to
    /// `limit` messages with `seq < before` (the newest when `None`), oldest
    /// first. Every message this device opened or sent since it was set up
    /// is there, across restarts; deleted ones are not. Scroll back by passing
    /// the first `seq` of the previous page as `before`. An item that does not
    /// authenticate under this store's key (a modified store file) is left out.
    pub fn history(
        &self,
        room_id: Uuid,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<ReceivedMessage>> {
        let page = self.inner.store.history_page(room_id, before, limit)?;
        let mut out = Vec::with_capacity(page.len());
        for (seq, sealed) in page.into_iter().rev() {
            let Ok(item) = self.inner.history.open(room_id, seq, &sealed) else {
                tracing::warn!(%room_id, seq, "a local history item does not authenticate");
                continue;
            };
            out.push(ReceivedMessage::from(item));
        }
        Ok(out)
    }

    /// Changes the store passphrase: the store key is wrapped again under
    /// `new` (one Argon2id; nothing else is re-encrypted). `current` must
    /// unlock the store ([`Error::Locked`] otherwise).
    pub async fn change_store_passphrase(&self, current: &str, new: &str) -> Result<()> {
        let store = self.inner.store.clone();
        let (current, new) = (
            Zeroizing::new(current.to_owned()),
            Zeroizing::new(new.to_owned()),
        );
        blocking(move || {
            let acct = store
                .account()?
                .ok_or(Error::Store("the store has no account".into()))?;
            let wrapped = acct
                .store_key
                .as_deref()
                .ok_or(Error::Store("the store has no store key".into()))?;
            let key = StoreKey::unwrap(wrapped, current.as_bytes()).map_err(vault_error)?;
            let mut rng = os_rng()?;
            let rewrapped = key
                .wrap(new.as_bytes(), &BackupParams::default(), &mut rng)
                .map_err(vault_error)?;
            store.set_account(&StoredAccount {
                store_key: Some(rewrapped),
                ..acct
            })
        })
        .await
    }

    /// Re-posts everything in the outbox (after a restart or reconnect), in
    /// order (the engine's [`Flush`]): an entry a post in flight holds is
    /// waited for, never posted twice. A message the relay refuses for good
    /// is dropped (and reported in the result); one that cannot be posted yet
    /// stops the flush, and the rest waits behind it.
    pub async fn flush_outbox(&self) -> Result<Vec<(Uuid, Error)>> {
        let mut flush = Flush::new(self.inner.store.outbox()?);
        let mut refused = Vec::new();
        loop {
            // Registered before the step: a post that ends after it still wakes this.
            let ended = self.inner.outbox_done.notified();
            let next = flush.step(&mut lock(&self.inner.outbox));
            match next {
                FlushStep::Post(p) => {
                    let client_id = p.entry().client_id;
                    let outcome = match self.post(p).await {
                        Ok(Some(_)) => Posted::Sent {
                            id: Uuid::nil(),
                            seq: 0,
                            announce: false,
                        },
                        Ok(None) => Posted::Gone,
                        Err(e @ Error::Queued { .. }) => {
                            flush.posted(Posted::Queued);
                            return Err(e);
                        }
                        Err(e) => {
                            refused.push((client_id, e));
                            Posted::Refused
                        }
                    };
                    flush.posted(outcome);
                }
                FlushStep::Join(_) => {
                    ended.await;
                    flush.joined();
                }
                FlushStep::Done => return Ok(refused),
            }
        }
    }

    pub(crate) async fn emit(&self, event: Event) {
        if self
            .inner
            .events_taken
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            let _ = self.inner.events.send(event);
        }
    }

    /// Makes sure the engine caches these users' device lists: the queries
    /// the engine asks for ([`Devices::query`](sotto_engine::devices::Devices::query):
    /// the missing users, in chunks; again for an answer a `keys_changed` or
    /// reconnect overtook, so a stale list is never used; bounded).
    async fn fetch_devices(&self, users: &[Uuid]) -> Result<()> {
        let mut asked = 0;
        loop {
            let query = lock(&self.inner.devices).query(users, asked);
            match query {
                Query::Done => return Ok(()),
                Query::KeepsChanging => {
                    return Err(Error::Network(
                        "device lists keep changing; try again".into(),
                    ));
                }
                Query::Keys {
                    users: chunk,
                    fetch,
                } => {
                    asked += 1;
                    let resp = self.inner.client.query_keys(&chunk, true).await?;
                    for u in &chunk {
                        let list = resp.devices.get(u).map_or(&[][..], Vec::as_slice);
                        self.accept_devices(*u, list, fetch).await?;
                    }
                }
            }
        }
    }

    /// Refetches one user's devices (after `keys_changed`, or an unknown sender
    /// device), reporting identity changes and rejected devices.
    pub(crate) async fn refresh_devices(&self, user: Uuid) -> Result<()> {
        lock(&self.inner.devices).forget(Some(user));
        self.fetch_devices(&[user]).await
    }

    /// Hands a served device list to the engine, which verifies each bundle
    /// (signatures and ids), checks it against the pin (pinning it on first
    /// sight when all devices agree), and caches it unless `fetch` was
    /// overtaken. Devices under another identity key are reported and never
    /// pass a pin check.
    async fn accept_devices(&self, user: Uuid, list: &[Device], fetch: Fetch) -> Result<()> {
        // The engine decides: first-contact pin, identity changes, rejections.
        let listed: Vec<Listed<'_>> = list.iter().map(Listed::from).collect();
        let observed = {
            let mut trust = lock(&self.inner.trust);
            lock(&self.inner.devices).served_list(&mut trust, user, &listed, &[], fetch, |v, _| v)
        };
        if let Some(pin) = observed.pinned.as_ref().and_then(core_pin) {
            self.inner.store.set_pin(user, &pin)?;
        }
        let changed =
            observed
                .identity_changed
                .iter()
                .map(|was_verified| Event::IdentityKeyChanged {
                    user_id: user,
                    was_verified: *was_verified,
                });
        let rejected = observed
            .rejected
            .iter()
            .map(|device_id| Event::DeviceRejected {
                user_id: user,
                device_id: *device_id,
            });
        for e in changed.chain(rejected).collect::<Vec<_>>() {
            self.emit(e).await;
        }
        Ok(())
    }

    /// Drives the engine's open pipeline for one message
    /// (`sotto_engine::open`): fetches the device lists it asks for, and asks
    /// `seen` for the feed's verdict on the sender's message id.
    pub(crate) async fn open_message(
        &self,
        op: &mut Opening,
        mut seen: impl FnMut(Uuid, Uuid) -> std::result::Result<Seen, String>,
    ) -> Outcome {
        let inner = &self.inner;
        loop {
            let step = {
                let me = Me {
                    user: inner.user.id,
                    device: &inner.own,
                    keys: &inner.keys,
                };
                let trust = lock(&inner.trust);
                let mut devices = lock(&inner.devices);
                let mut rooms = lock(&inner.rooms);
                op.step(&me, &trust, &mut devices, &mut rooms)
            };
            match step {
                Step::Done(outcome) => return outcome,
                Step::Fetch(user) => {
                    if let Err(e) = self.fetch_devices(&[user]).await {
                        op.failed(format!("checking a sender: {e}"));
                    }
                }
                Step::Seen { sender, client_id } => match seen(sender, client_id) {
                    Ok(verdict) => op.seen(verdict),
                    Err(why) => op.failed(why),
                },
            }
        }
    }

    pub(crate) fn forget_devices(&self, user: Uuid) {
        lock(&self.inner.devices).forget(Some(user));
    }

    pub(crate) fn forget_all_caches(&self) {
        lock(&self.inner.devices).forget(None);
        // (The owner's statements are forwarded again after a new connection;
        // the records say so with their next save.)
        lock(&self.inner.rooms).forget_relay_view(None);
    }

    // ---- Typing and receipts -----------------------------------------------

    /// Shows or hides this user's typing indicator in a room (live only; dropped
    /// when offline).
    pub fn set_typing(&self, room_id: Uuid, active: bool) {
        self.send_live(ClientFrame::Typing { room_id, active });
    }

    /// Sends a frame on the live connection; false when offline.
    fn send_live(&self, frame: ClientFrame) -> bool {
        let sent = lock(&self.inner.link)
            .as_mut()
            .is_some_and(|(_, link)| link.send(frame));
        if sent {
            self.inner.link_wake.notify_one();
        }
        sent
    }

    /// The link's clock: milliseconds since the session opened.
    pub(crate) fn now_ms(&self) -> u64 {
        u64::try_from(self.inner.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Marks the room read up to `seq` (others see a `read` receipt).
    pub async fn mark_read(&self, room_id: Uuid, seq: u64) -> Result<()> {
        if self.send_live(ClientFrame::Receipt {
            room_id,
            kind: ReceiptKind::Read,
            seq,
        }) {
            return Ok(());
        }
        self.inner
            .client
            .post_receipt(room_id, ReceiptKind::Read, seq)
            .await
            .map(drop)
    }

    // ---- Trust -------------------------------------------------------------

    /// The safety number of this user and `user_id` (compare it in person or
    /// over another channel, then [`Session::mark_verified`]). Fetches their
    /// keys if needed; `None` if they have no pinned identity.
    pub async fn safety_number(&self, user_id: Uuid) -> Result<Option<SafetyNumber>> {
        self.fetch_devices(&[user_id]).await?;
        let pin = lock(&self.inner.trust)
            .pin(user_id)
            .as_ref()
            .and_then(core_pin);
        Ok(pin.map(|p| SafetyNumber::new(&self.inner.identity.public_key(), &p.key)))
    }

    /// The pin of a user: their identity key as this device trusts it.
    pub fn pin(&self, user_id: Uuid) -> Option<Pin> {
        lock(&self.inner.trust)
            .pin(user_id)
            .as_ref()
            .and_then(core_pin)
    }

    /// A user's trust state (the engine's `pins`): `Unknown` (no pin yet),
    /// `Unverified`, `Verified`, or `Changed` (the relay serves an active
    /// device of theirs under another identity key: nothing flows to or from
    /// it until [`Session::accept_identity`]). The npm package's `trust(user)`.
    pub fn trust(&self, user_id: Uuid) -> pins::Trust {
        lock(&self.inner.trust).trust(user_id)
    }

    /// Marks `user_id`'s pinned identity key as verified (after the safety
    /// numbers matched).
    pub fn mark_verified(&self, user_id: Uuid) -> Result<bool> {
        let mut trust = lock(&self.inner.trust);
        let Some(pin) = trust.mark_verified(user_id).as_ref().and_then(core_pin) else {
            return Ok(false);
        };
        self.inner.store.set_pin(user_id, &pin)?;
        Ok(true)
    }

    /// Accepts the identity key the relay now serves for `user_id` (after an
    /// [`Event::IdentityKeyChanged`]): it is pinned, unverified, and messages to
    /// and from it flow again. Fails if their devices do not agree on one key.
    pub async fn accept_identity(&self, user_id: Uuid) -> Result<()> {
        self.refresh_devices(user_id).await?;
        let Some(key) = lock(&self.inner.devices).agreed_key(user_id) else {
            return Err(Error::NoDevices(user_id));
        };
        let pin = lock(&self.inner.trust).accept(user_id, key);
        if let Some(pin) = core_pin(&pin) {
            self.inner.store.set_pin(user_id, &pin)?;
        }
        self.refresh_devices(user_id).await
    }

    // ---- Devices and backups -----------------------------------------------

    /// Revokes one of this user's devices (another one, or this one when it is
    /// being retired), with the account's password. Nobody encrypts to it
    /// afterwards, and the sessions that registered it end.
    pub async fn revoke_device(&self, device_id: Uuid, current_password: &str) -> Result<()> {
        self.inner
            .client
            .revoke_device(device_id, current_password)
            .await?;
        self.forget_devices(self.inner.user.id);
        Ok(())
    }

    fn secrets(&self) -> Result<DeviceSecrets> {
        let rsa = self.inner.keys.rsa_pkcs8_der()?;
        Ok(DeviceSecrets {
            user_id: self.inner.user.id,
            device_id: self.inner.device_id,
            identity: IdentityKeyPair::from_seed(&self.inner.identity.to_seed()),
            device: DeviceKeys::from_secret_parts(
                &self.inner.keys.signing_seed(),
                &self.inner.keys.x25519_secret(),
                rsa.as_deref().map(|d| &d[..]),
            )?,
        })
    }

    /// A key backup of this device under a passphrase (Argon2id). Use it with
    /// [`DeviceSetup::Link`] (another device) or [`DeviceSetup::Restore`] (this one).
    pub async fn export_backup(&self, passphrase: &str) -> Result<Vec<u8>> {
        let secrets = self.secrets()?;
        let pass = Zeroizing::new(passphrase.to_owned());
        blocking(move || {
            Ok(backup::export_with_passphrase(
                &secrets,
                pass.as_bytes(),
                &BackupParams::default(),
            )?)
        })
        .await
    }

    /// A key backup under a fresh recovery key; returns the blob and the key to
    /// show the user once.
    pub fn export_backup_with_recovery_key(&self) -> Result<(Vec<u8>, RecoveryKey)> {
        let key = RecoveryKey::generate()?;
        let blob = backup::export_with_recovery_key(&self.secrets()?, &key)?;
        Ok((blob, key))
    }

    /// This device's own signed bundle (what the relay serves for it).
    pub fn bundle(&self) -> Result<DeviceBundle> {
        Ok(DeviceBundle::create(
            &self.inner.identity,
            &self.inner.keys,
            self.inner.user.id,
            self.inner.device_id,
        )?)
    }

    /// Cursors of the rooms this device has read up to.
    pub fn cursors(&self) -> Result<BTreeMap<Uuid, u64>> {
        self.inner.store.cursors()
    }
}

/// An outbox post in flight: abandons it when dropped (`Posting::abandon`:
/// a no-op once the post ended, so a claim taken since by another post
/// stands), whether the post was answered or its caller dropped the future
/// mid-way; and wakes whoever waits for a post to end.
struct Claim<'a> {
    session: &'a Session,
    posting: Posting,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.posting.abandon(&mut lock(&self.session.inner.outbox));
        self.session.inner.outbox_done.notify_waiters();
    }
}

/// A stored pin as the engine's.
fn engine_pin(p: &Pin) -> pins::Pin {
    pins::Pin {
        key: p.key.to_bytes(),
        verified: p.verified,
    }
}

/// The engine's pin as the store's (its key came from a verified bundle).
fn core_pin(p: &pins::Pin) -> Option<Pin> {
    IdentityPublicKey::from_bytes(&p.key).ok().map(|key| Pin {
        key,
        verified: p.verified,
    })
}

async fn upload(client: &Client, s: &DeviceSecrets, name: Option<String>) -> Result<()> {
    let bundle = DeviceBundle::create(&s.identity, &s.device, s.user_id, s.device_id)?;
    client
        .put_device(&sotto_core::api::PutDeviceRequest {
            bundle,
            display_name: name,
            replace_identity: false,
            current_password: None,
        })
        .await
        .map_err(|e| {
            if e.code() == Some(sotto_core::api::codes::IDENTITY_KEY_CHANGED) {
                Error::IdentityExists
            } else {
                e
            }
        })?;
    Ok(())
}

/// Locks a std mutex, recovering from poisoning (the data is caches and queues:
/// a panicked holder cannot leave them unsafe, only stale).
/// An addressing under way; its drop finishes it (`Addressing::finish`).
struct AddressingRun<'s> {
    session: &'s Session,
    a: Addressing<VerifiedDevice>,
}

impl Drop for AddressingRun<'_> {
    fn drop(&mut self) {
        let online = self.session.is_online();
        self.a.finish(&mut lock(&self.session.inner.rooms), online);
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
