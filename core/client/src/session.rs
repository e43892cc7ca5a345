//! [`Session`]: one device of one account, doing the encryption for the app.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sotto_core::api::{ClientFrame, Device, ReceiptKind, RoomDetails, User};
use sotto_core::backup::{self, BackupParams, DeviceSecrets, RecoveryKey};
use sotto_core::envelope::{self, Header, Recipient};
use sotto_core::keys::{
    DeviceBundle, DeviceKeyOptions, DeviceKeys, IdentityKeyPair, IdentityPublicKey, RsaBits,
    VerifiedDevice,
};
use sotto_core::safety::SafetyNumber;
use sotto_core::suite::Suite;
use sotto_core::trust::{Pin, TrustDecision, TrustStore};
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::content::Content;
use crate::error::{Error, Result};
use crate::events::{Event, SenderTrust};
use crate::store::{OutboxEntry, Store, StoredAccount};
use crate::transport::Client;

/// How long a `send` over the socket waits for the relay's `ack` before it
/// posts the same message (same `client_id`) over HTTP instead.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);

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
#[derive(Debug)]
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
    /// Its place in the room.
    pub seq: u64,
}

/// What a peer device got sealed to: one verified device and the suite chosen
/// for it.
struct Target {
    device: VerifiedDevice,
    revoked: bool,
}

pub(crate) type AckResult = std::result::Result<u64, (String, Option<String>)>;

pub(crate) struct Inner {
    pub(crate) client: Client,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) user: User,
    pub(crate) device_id: Uuid,
    pub(crate) identity: IdentityKeyPair,
    pub(crate) keys: DeviceKeys,
    pub(crate) trust: Mutex<TrustStore>,
    /// Verified devices per user (revoked ones too: to verify old messages).
    devices: Mutex<HashMap<Uuid, Arc<Vec<Target>>>>,
    /// Room members while the live stream is up (room events keep it right).
    pub(crate) members: Mutex<HashMap<Uuid, Vec<Uuid>>>,
    /// Identity changes already reported (user, new key).
    warned: Mutex<HashSet<(Uuid, [u8; 32])>>,
    /// Rejected devices already reported (user, device).
    rejected: Mutex<HashSet<(Uuid, Uuid)>>,
    pub(crate) events: mpsc::Sender<Event>,
    events_rx: Mutex<Option<mpsc::Receiver<Event>>>,
    /// The live socket's outgoing frames, while connected.
    pub(crate) live: Mutex<Option<mpsc::UnboundedSender<ClientFrame>>>,
    /// `send`s over the socket waiting for their `ack`.
    pub(crate) acks: Mutex<HashMap<Uuid, oneshot::Sender<AckResult>>>,
    pub(crate) shutdown: watch::Sender<bool>,
    sync: Mutex<Option<tokio::task::JoinHandle<()>>>,
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

struct Alive(watch::Sender<bool>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.send_replace(true);
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
        let passphrase = options.store_passphrase.clone();
        let secrets = match store.account()? {
            Some(acct) => {
                if acct.user_id != user.id {
                    return Err(Error::StoreMismatch(
                        "the store holds another account's keys",
                    ));
                }
                let blob = acct.secrets.clone();
                let secrets = blocking(move || {
                    backup::import_with_passphrase(&blob, passphrase.as_bytes())
                        .map_err(|_| Error::Locked)
                })
                .await?;
                let all = client.list_devices(true).await?;
                match all.items.iter().find(|d| d.device_id == secrets.device_id) {
                    Some(d) if d.revoked_at.is_some() => return Err(Error::DeviceRevoked),
                    Some(_) => {}
                    None => upload(&client, &secrets, options.device_name.clone()).await?,
                }
                secrets
            }
            None => {
                let existing = client.list_devices(true).await?;
                let secrets = match options.setup {
                    DeviceSetup::New { rsa } => {
                        if !existing.items.is_empty() {
                            return Err(Error::IdentityExists);
                        }
                        let user_id = user.id;
                        blocking(move || {
                            Ok(DeviceSecrets {
                                user_id,
                                device_id: Uuid::now_v7(),
                                identity: IdentityKeyPair::generate()?,
                                device: DeviceKeys::generate(DeviceKeyOptions { rsa })?,
                            })
                        })
                        .await?
                    }
                    DeviceSetup::Link {
                        backup,
                        secret,
                        rsa,
                    } => {
                        let old = blocking(move || secret.open(&backup)).await?;
                        if old.user_id != user.id {
                            return Err(Error::StoreMismatch("the backup is of another account"));
                        }
                        let device =
                            blocking(move || Ok(DeviceKeys::generate(DeviceKeyOptions { rsa })?))
                                .await?;
                        DeviceSecrets {
                            user_id: user.id,
                            device_id: Uuid::now_v7(),
                            identity: old.identity,
                            device,
                        }
                    }
                    DeviceSetup::Restore { backup, secret } => {
                        let s = blocking(move || secret.open(&backup)).await?;
                        if s.user_id != user.id {
                            return Err(Error::StoreMismatch("the backup is of another account"));
                        }
                        if existing
                            .items
                            .iter()
                            .any(|d| d.device_id == s.device_id && d.revoked_at.is_some())
                        {
                            return Err(Error::DeviceRevoked);
                        }
                        s
                    }
                };
                upload(&client, &secrets, options.device_name.clone()).await?;
                let copy = clone_secrets(&secrets)?;
                let blob = blocking(move || {
                    Ok(backup::export_with_passphrase(
                        &copy,
                        passphrase.as_bytes(),
                        &BackupParams::default(),
                    )?)
                })
                .await?;
                store.set_account(&StoredAccount {
                    relay: client.base_url().to_owned(),
                    user_id: user.id,
                    device_id: secrets.device_id,
                    secrets: blob,
                })?;
                secrets
            }
        };

        let mut trust = TrustStore::new();
        for (user_id, pin) in store.pins()? {
            trust.accept(user_id, pin.key);
            if pin.verified {
                trust.mark_verified(user_id, &pin.key);
            }
        }
        let own = secrets.identity.public_key();
        if let TrustDecision::FirstSeen = trust.observe(user.id, &own) {
            store.set_pin(
                user.id,
                &Pin {
                    key: own,
                    verified: true,
                },
            )?;
            trust.mark_verified(user.id, &own);
        }
        let (events, events_rx) = mpsc::channel(4096);
        let (shutdown, _) = watch::channel(false);
        let alive = Arc::new(Alive(shutdown.clone()));
        Ok(Self {
            _alive: Some(alive),
            inner: Arc::new(Inner {
                client,
                store,
                user,
                device_id: secrets.device_id,
                identity: secrets.identity,
                keys: secrets.device,
                trust: Mutex::new(trust),
                devices: Mutex::new(HashMap::new()),
                members: Mutex::new(HashMap::new()),
                warned: Mutex::new(HashSet::new()),
                rejected: Mutex::new(HashSet::new()),
                events,
                events_rx: Mutex::new(Some(events_rx)),
                live: Mutex::new(None),
                acks: Mutex::new(HashMap::new()),
                shutdown,
                sync: Mutex::new(None),
            }),
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
        if sync.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        let _ = self.inner.shutdown.send_replace(false);
        *sync = Some(tokio::spawn(crate::sync::run(self.detached())));
    }

    /// Stops the live connection (messages already in the outbox stay there).
    pub async fn disconnect(&self) {
        let _ = self.inner.shutdown.send_replace(true);
        let handle = lock(&self.inner.sync).take();
        if let Some(h) = handle {
            let _ = h.await;
        }
    }

    /// Whether the live connection is up.
    pub fn is_online(&self) -> bool {
        lock(&self.inner.live).is_some()
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
        let targets = self.recipients(room_id).await?;
        let header = Header {
            room_id,
            sender_user_id: self.inner.user.id,
            sender_device_id: self.inner.device_id,
            client_message_id: Uuid::now_v7(),
            timestamp_ms: now_ms(),
        };
        let recipients: Vec<Recipient<'_>> = targets
            .iter()
            .map(|d| {
                Recipient::new(
                    d,
                    if d.has_rsa() {
                        Suite::Rsa
                    } else {
                        Suite::X25519
                    },
                )
            })
            .collect();
        let sealed = envelope::seal(&plaintext, &header, &recipients, &self.inner.keys)?.to_bytes();
        let entry = OutboxEntry {
            client_id: header.client_message_id,
            room_id,
            envelope: sealed,
        };
        self.inner.store.outbox_push(&entry)?;
        self.post(entry).await
    }

    /// Posts an outbox entry (socket first, HTTP if the socket is down or slow),
    /// then clears it from the outbox.
    pub(crate) async fn post(&self, entry: OutboxEntry) -> Result<Sent> {
        let client_id = entry.client_id;
        let mut seq = None;
        let live = lock(&self.inner.live).clone();
        if let Some(live) = live {
            let (tx, rx) = oneshot::channel();
            lock(&self.inner.acks).insert(client_id, tx);
            let frame = ClientFrame::Send {
                room_id: entry.room_id,
                client_id,
                envelope: entry.envelope.clone().into(),
            };
            if live.send(frame).is_ok() {
                match tokio::time::timeout(ACK_TIMEOUT, rx).await {
                    Ok(Ok(Ok(s))) => seq = Some(s),
                    Ok(Ok(Err((code, detail)))) => {
                        lock(&self.inner.acks).remove(&client_id);
                        if code != sotto_core::api::codes::RATE_LIMITED {
                            let _ = self.inner.store.outbox_remove(client_id);
                            let mut p = sotto_core::api::Problem::new(
                                400,
                                &code,
                                "the relay refused the message",
                            );
                            if let Some(d) = detail {
                                p = p.with_detail(d);
                            }
                            return Err(Error::Relay {
                                problem: Box::new(p),
                                retry_after: None,
                            });
                        }
                    }
                    _ => {}
                }
            }
            lock(&self.inner.acks).remove(&client_id);
        }
        let seq = match seq {
            Some(s) => s,
            None => match self
                .inner
                .client
                .post_message(entry.room_id, client_id, entry.envelope)
                .await
            {
                Ok(r) => r.seq,
                Err(e) => {
                    // A refusal will not change on retry: drop it from the outbox.
                    // Network trouble keeps it there for the next connection.
                    if e.status()
                        .is_some_and(|s| (400..500).contains(&s) && s != 429 && s != 401)
                    {
                        let _ = self.inner.store.outbox_remove(client_id);
                    }
                    return Err(e);
                }
            },
        };
        self.inner.store.outbox_remove(client_id)?;
        self.inner.store.mark_seen(self.inner.user.id, client_id)?;
        self.emit(Event::Sent {
            room_id: entry.room_id,
            client_id,
            seq,
        })
        .await;
        Ok(Sent { client_id, seq })
    }

    /// Re-posts everything in the outbox (after a restart or reconnect).
    pub async fn flush_outbox(&self) -> Result<usize> {
        let entries = self.inner.store.outbox()?;
        let n = entries.len();
        for e in entries {
            self.post(e).await?;
        }
        Ok(n)
    }

    pub(crate) async fn emit(&self, event: Event) {
        let _ = self.inner.events.send(event).await;
    }

    /// The room's members (cached while the live stream keeps the cache right).
    async fn room_members(&self, room_id: Uuid) -> Result<Vec<Uuid>> {
        if let Some(m) = lock(&self.inner.members).get(&room_id) {
            return Ok(m.clone());
        }
        let details: RoomDetails = self.inner.client.get_room(room_id).await?;
        let ids: Vec<Uuid> = details.members.iter().map(|m| m.user_id).collect();
        if self.is_online() {
            lock(&self.inner.members).insert(room_id, ids.clone());
        }
        Ok(ids)
    }

    /// Every active device of every member, verified against the pins.
    async fn recipients(&self, room_id: Uuid) -> Result<Vec<VerifiedDevice>> {
        let members = self.room_members(room_id).await?;
        self.ensure_devices(&members).await?;
        let mut out = Vec::new();
        let mut changed = Vec::new();
        for user in &members {
            let Some(targets) = self.cached_devices(*user) else {
                continue;
            };
            let pin = lock(&self.inner.trust).pin(user).copied();
            let before = out.len();
            let mut other_identity = false;
            for t in targets.iter().filter(|t| !t.revoked) {
                match &pin {
                    Some(p) if p.key == *t.device.identity_key() => out.push(t.device.clone()),
                    _ => other_identity = true,
                }
            }
            if out.len() == before && other_identity {
                changed.push(*user);
            }
        }
        if !changed.is_empty() {
            return Err(Error::IdentityChanged(changed));
        }
        if out.is_empty() {
            return Err(Error::NoDevices(self.inner.user.id));
        }
        Ok(out)
    }

    fn cached_devices(&self, user: Uuid) -> Option<Arc<Vec<Target>>> {
        lock(&self.inner.devices).get(&user).cloned()
    }

    /// Loads (store, else relay) and verifies the devices of these users.
    async fn ensure_devices(&self, users: &[Uuid]) -> Result<()> {
        let mut missing = Vec::new();
        for u in users {
            if self.cached_devices(*u).is_some() {
                continue;
            }
            match self.inner.store.devices(*u)? {
                Some(list) => self.accept_devices(*u, list).await?,
                None => missing.push(*u),
            }
        }
        for chunk in missing.chunks(sotto_core::api::devices::MAX_KEYS_QUERY_USERS) {
            let resp = self.inner.client.query_keys(chunk, true).await?;
            for u in chunk {
                let list = resp.devices.get(u).cloned().unwrap_or_default();
                self.inner.store.set_devices(*u, &list)?;
                self.accept_devices(*u, list).await?;
            }
        }
        Ok(())
    }

    /// Refetches one user's devices (after `keys_changed`, or an unknown sender
    /// device), reporting identity changes and rejected devices.
    pub(crate) async fn refresh_devices(&self, user: Uuid) -> Result<()> {
        lock(&self.inner.devices).remove(&user);
        self.inner.store.forget_devices(user)?;
        self.ensure_devices(&[user]).await
    }

    /// Verifies a served device list: each bundle's signatures and ids, then its
    /// identity key against the pin (pinning it on first sight when all devices
    /// agree). Devices under another identity key are reported and left out.
    async fn accept_devices(&self, user: Uuid, list: Vec<Device>) -> Result<()> {
        let mut verified = Vec::new();
        let mut rejected = Vec::new();
        for d in list {
            let ok =
                d.user_id == user && d.bundle.user_id == user && d.bundle.device_id == d.device_id;
            match d.bundle.verify() {
                Ok(v) if ok => verified.push(Target {
                    device: v,
                    revoked: d.revoked_at.is_some(),
                }),
                _ => rejected.push(d.device_id),
            }
        }
        let keys: Vec<IdentityPublicKey> = {
            let mut k: Vec<IdentityPublicKey> = Vec::new();
            for t in verified.iter().filter(|t| !t.revoked) {
                if !k.contains(t.device.identity_key()) {
                    k.push(*t.device.identity_key());
                }
            }
            k
        };
        let mut events = Vec::new();
        let kept: Vec<Target> = {
            let mut trust = lock(&self.inner.trust);
            let pinned = trust.pin(&user).copied();
            match pinned {
                None if keys.len() == 1 => {
                    if let Some(k) = keys.first() {
                        trust.observe(user, k);
                        self.inner.store.set_pin(
                            user,
                            &Pin {
                                key: *k,
                                verified: false,
                            },
                        )?;
                    }
                }
                None => {
                    // Devices disagree on the identity at first contact: trust none.
                }
                Some(pin) => {
                    for k in keys.iter().filter(|k| **k != pin.key) {
                        let mut warned = lock(&self.inner.warned);
                        if warned.insert((user, k.to_bytes())) {
                            events.push(Event::IdentityKeyChanged {
                                user_id: user,
                                was_verified: pin.verified,
                            });
                        }
                    }
                }
            }
            let pin = trust.pin(&user).copied();
            let (good, bad): (Vec<Target>, Vec<Target>) = verified
                .into_iter()
                .partition(|t| pin.is_some_and(|p| p.key == *t.device.identity_key()));
            let all_other = good.iter().all(|t| t.revoked);
            for t in bad.iter().filter(|t| !t.revoked) {
                // A device of a changed identity is reported by the
                // identity-change event; a stray device next to good ones is rejected.
                if !all_other {
                    rejected.push(t.device.device_id());
                }
            }
            // Keep devices of other identities (flagged by key) so that the sender
            // check can tell "changed" from "unknown", but they never pass a pin check.
            good.into_iter().chain(bad).collect()
        };
        for device_id in rejected {
            if lock(&self.inner.rejected).insert((user, device_id)) {
                events.push(Event::DeviceRejected {
                    user_id: user,
                    device_id,
                });
            }
        }
        lock(&self.inner.devices).insert(user, Arc::new(kept));
        for e in events {
            self.emit(e).await;
        }
        Ok(())
    }

    /// The verified, pinned device `device_id` of `user`, to check a message
    /// from it. Refetches once when it is unknown (a new device).
    pub(crate) async fn sender_device(
        &self,
        user: Uuid,
        device_id: Uuid,
    ) -> std::result::Result<(VerifiedDevice, SenderTrust), crate::events::UndecryptableReason>
    {
        use crate::events::UndecryptableReason as R;
        for attempt in 0..2 {
            if attempt == 1 && self.refresh_devices(user).await.is_err() {
                return Err(R::UnknownDevice);
            }
            if self.ensure_devices(&[user]).await.is_err() {
                return Err(R::UnknownDevice);
            }
            let Some(targets) = self.cached_devices(user) else {
                continue;
            };
            let Some(t) = targets.iter().find(|t| t.device.device_id() == device_id) else {
                continue;
            };
            let pin = lock(&self.inner.trust).pin(&user).copied();
            return match pin {
                Some(p) if p.key == *t.device.identity_key() => Ok((
                    t.device.clone(),
                    if p.verified {
                        SenderTrust::Verified
                    } else {
                        SenderTrust::Unverified
                    },
                )),
                _ => Err(R::UntrustedSender),
            };
        }
        Err(R::UnknownDevice)
    }

    pub(crate) fn forget_devices(&self, user: Uuid) {
        lock(&self.inner.devices).remove(&user);
        let _ = self.inner.store.forget_devices(user);
    }

    pub(crate) fn forget_all_caches(&self) {
        lock(&self.inner.devices).clear();
        lock(&self.inner.members).clear();
        let _ = self.inner.store.forget_all_devices();
    }

    // ---- Typing and receipts -----------------------------------------------

    /// Shows or hides this user's typing indicator in a room (live only; dropped
    /// when offline).
    pub fn set_typing(&self, room_id: Uuid, active: bool) {
        if let Some(live) = lock(&self.inner.live).as_ref() {
            let _ = live.send(ClientFrame::Typing { room_id, active });
        }
    }

    /// Marks the room read up to `seq` (others see a `read` receipt).
    pub async fn mark_read(&self, room_id: Uuid, seq: u64) -> Result<()> {
        let live = lock(&self.inner.live).clone();
        if let Some(live) = live
            && live
                .send(ClientFrame::Receipt {
                    room_id,
                    kind: ReceiptKind::Read,
                    seq,
                })
                .is_ok()
        {
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
        self.ensure_devices(&[user_id]).await?;
        let pin = lock(&self.inner.trust).pin(&user_id).copied();
        Ok(pin.map(|p| SafetyNumber::new(&self.inner.identity.public_key(), &p.key)))
    }

    /// The pin of a user: their identity key as this device trusts it.
    pub fn pin(&self, user_id: Uuid) -> Option<Pin> {
        lock(&self.inner.trust).pin(&user_id).copied()
    }

    /// Marks `user_id`'s pinned identity key as verified (after the safety
    /// numbers matched).
    pub fn mark_verified(&self, user_id: Uuid) -> Result<bool> {
        let mut trust = lock(&self.inner.trust);
        let Some(pin) = trust.pin(&user_id).copied() else {
            return Ok(false);
        };
        trust.mark_verified(user_id, &pin.key);
        self.inner.store.set_pin(
            user_id,
            &Pin {
                key: pin.key,
                verified: true,
            },
        )?;
        Ok(true)
    }

    /// Accepts the identity key the relay now serves for `user_id` (after an
    /// [`Event::IdentityKeyChanged`]): it is pinned, unverified, and messages to
    /// and from it flow again. Fails if their devices do not agree on one key.
    pub async fn accept_identity(&self, user_id: Uuid) -> Result<()> {
        self.refresh_devices(user_id).await?;
        let targets = self.cached_devices(user_id).unwrap_or_default();
        let mut keys: Vec<IdentityPublicKey> = Vec::new();
        for t in targets.iter().filter(|t| !t.revoked) {
            if !keys.contains(t.device.identity_key()) {
                keys.push(*t.device.identity_key());
            }
        }
        let [key] = keys.as_slice() else {
            return Err(Error::NoDevices(user_id));
        };
        lock(&self.inner.trust).accept(user_id, *key);
        self.inner.store.set_pin(
            user_id,
            &Pin {
                key: *key,
                verified: false,
            },
        )?;
        lock(&self.inner.warned).retain(|(u, _)| *u != user_id);
        self.refresh_devices(user_id).await
    }

    // ---- Devices and backups -----------------------------------------------

    /// Revokes one of this user's devices (another one, or this one when it is
    /// being retired). Nobody encrypts to it afterwards.
    pub async fn revoke_device(&self, device_id: Uuid) -> Result<()> {
        self.inner.client.revoke_device(device_id).await?;
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

async fn upload(client: &Client, s: &DeviceSecrets, name: Option<String>) -> Result<()> {
    let bundle = DeviceBundle::create(&s.identity, &s.device, s.user_id, s.device_id)?;
    client
        .put_device(&sotto_core::api::PutDeviceRequest {
            bundle,
            display_name: name,
            replace_identity: false,
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
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
