//! Web Push, the sender: the VAPID key, RFC 8291 encryption, and the rounds
//! that push "room R has news up to seq S" to the members without a live
//! socket. The routes (subscribe, unsubscribe, test) are in `push.rs`.
//!
//! A member of a room who has no live socket (on this relay) gets a push saying
//! only that the room has news up to a `seq` ([`PushPayload::News`]): no
//! plaintext, no ciphertext, no sender. The push goes to every subscription of
//! the user's active devices, through the push service the browser named
//! (RFC 8030), encrypted for the browser (RFC 8291, `aes128gcm`) and signed by
//! the relay's VAPID key (RFC 8292).
//!
//! - **Coalescing.** A post only marks its room as having news; a round sends
//!   the marked rooms' pushes after `--push-coalesce-ms`, so a burst of a
//!   thousand messages is one push per subscription, carrying the latest
//!   `seq`. Each push also has a `Topic` per (subscription, room), so a push
//!   service holding an undelivered push for that room replaces it with the
//!   newer one. The topic is a hash: the push service does not learn room ids.
//! - **Where pushes may go** (`egress.rs`): public addresses on port 443
//!   only, checked on the address each connection is made to, unless
//!   `--push-allow-private`.
//! - **Nobody waits for someone else's dead endpoints.** A round ends at its
//!   deadline (`--push-round-deadline-ms`); what is still in flight then is
//!   cancelled and counts as failed. Pushes to one destination host run at most
//!   [`PER_HOST`] at a time, every host at once beside the others. Each
//!   subscription has a circuit: a failure (refused, timed out, unreachable)
//!   sends it to a slow lane of [`SUSPECT_CONCURRENCY`] and keeps it out of the
//!   next rounds for a back-off that doubles (30 s to 1 h); after
//!   `--push-max-failures` failures in a row it is deleted. A success closes it.
//!   A push service answering 404 or 410 says the subscription is gone: it is
//!   deleted at once.
//!
//! Why not the `web-push` crate: it builds the same request, but its encryption
//! comes from the `ece` crate, whose only backend is OpenSSL, and its HTTP client
//! is isahc (libcurl) or hyper 0.14; the relay would carry a C crypto library
//! and a second HTTP stack beside RustCrypto and rustls. RFC 8291 is a fixed
//! composition of primitives the workspace already has from RustCrypto (P-256
//! ECDH from `p256`, HKDF-SHA-256 from `hkdf`, AES-128-GCM from `aes-gcm`), and
//! the VAPID token is an ES256 JWT, signed by `jsonwebtoken`. [`encrypt`]
//! reproduces the RFC's own example byte for byte (the unit test below), and the
//! push test decrypts what the relay sends with the browser's key, written
//! independently from the RFC.
//!
//! A service: it takes the database and the presence registry, never the
//! application state.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Key, Nonce};
use base64ct::{Base64UrlUnpadded, Encoding};
use hkdf::Hkdf;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::EncodePrivateKey;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use sotto_core::api::push::PushPayload;
use tokio::sync::{Semaphore, mpsc};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::db::{Db, now_ms};
use crate::egress::{self, GuardedResolver, Policy};
use crate::presence::Presence;
use crate::store::push::{self as store, Subscription};

/// Record size announced in the `aes128gcm` header (one record carries it all).
const RECORD_SIZE: u32 = 4096;
/// How long a push service keeps an undelivered push (RFC 8030 `TTL`), seconds.
const PUSH_TTL: &str = "86400";
/// Lifetime of a VAPID token (RFC 8292 allows at most 24 hours).
const VAPID_TTL_SECS: u64 = 12 * 3600;
/// Pushes in flight at once to one destination host (`host:port`).
pub const PER_HOST: usize = 16;
/// Pushes in flight at once to subscriptions that did not fail last time.
pub const HEALTHY_CONCURRENCY: usize = 512;
/// Pushes in flight at once to subscriptions that failed last time.
pub const SUSPECT_CONCURRENCY: usize = 16;
/// The first back-off of a failed subscription; it doubles per failure.
const BACKOFF_FIRST_MS: i64 = 30_000;
/// The longest back-off.
const BACKOFF_MAX_MS: i64 = 3_600_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PushCryptoError {
    #[error("the subscription's p256dh is not a P-256 public key")]
    BadPublicKey,
    #[error("the subscription's auth secret is not 16 bytes")]
    BadAuth,
    #[error("the payload does not fit one record")]
    TooLong,
    #[error("encryption failed")]
    Encrypt,
}

/// Encrypts `plaintext` for a user agent (RFC 8291 §3.4, one `aes128gcm`
/// record, RFC 8188): `ua_public` is the subscription's uncompressed P-256
/// key, `auth` its 16-byte secret, `as_secret` the sender's one-time key and
/// `salt` 16 random bytes.
pub fn encrypt(
    ua_public: &[u8],
    auth: &[u8],
    plaintext: &[u8],
    as_secret: &p256::SecretKey,
    salt: &[u8; 16],
) -> Result<Vec<u8>, PushCryptoError> {
    let ua =
        p256::PublicKey::from_sec1_bytes(ua_public).map_err(|_| PushCryptoError::BadPublicKey)?;
    if auth.len() != 16 {
        return Err(PushCryptoError::BadAuth);
    }
    // The padding delimiter and the tag must fit the one record.
    if plaintext.len() + 1 + 16 > RECORD_SIZE as usize {
        return Err(PushCryptoError::TooLong);
    }
    let ua_public = ua.to_encoded_point(false);
    let as_public = as_secret.public_key().to_encoded_point(false);
    let shared = p256::ecdh::diffie_hellman(as_secret.to_nonzero_scalar(), ua.as_affine());

    // IKM = HKDF(auth, ecdh_secret, "WebPush: info" 0x00 ua_public as_public, 32)
    let mut key_info = Vec::with_capacity(14 + 65 + 65);
    key_info.extend_from_slice(b"WebPush: info\0");
    key_info.extend_from_slice(ua_public.as_bytes());
    key_info.extend_from_slice(as_public.as_bytes());
    let mut ikm = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(Some(auth), &shared.raw_secret_bytes()[..])
        .expand(&key_info, ikm.as_mut())
        .map_err(|_| PushCryptoError::Encrypt)?;
    // CEK and nonce from HKDF(salt, IKM).
    let hk = Hkdf::<Sha256>::new(Some(salt), ikm.as_ref());
    let mut cek = Zeroizing::new([0u8; 16]);
    let mut nonce = [0u8; 12];
    hk.expand(b"Content-Encoding: aes128gcm\0", cek.as_mut())
        .map_err(|_| PushCryptoError::Encrypt)?;
    hk.expand(b"Content-Encoding: nonce\0", &mut nonce)
        .map_err(|_| PushCryptoError::Encrypt)?;

    let mut record = Zeroizing::new(Vec::with_capacity(plaintext.len() + 1));
    record.extend_from_slice(plaintext);
    record.push(2); // the last (and only) record's delimiter, no padding
    let cipher = Aes128Gcm::new(&Key::<Aes128Gcm>::from(*cek));
    let sealed = cipher
        .encrypt(&Nonce::from(nonce), record.as_slice())
        .map_err(|_| PushCryptoError::Encrypt)?;

    let mut out = Vec::with_capacity(16 + 4 + 1 + 65 + sealed.len());
    out.extend_from_slice(salt);
    out.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    out.push(65);
    out.extend_from_slice(as_public.as_bytes());
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// The relay's VAPID key pair (RFC 8292) and the subject its tokens name.
pub struct Vapid {
    key: jsonwebtoken::EncodingKey,
    public_key: String,
    subject: String,
}

impl std::fmt::Debug for Vapid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vapid")
            .field("public_key", &self.public_key)
            .finish_non_exhaustive()
    }
}

fn random_secret_key() -> std::io::Result<p256::SecretKey> {
    loop {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(bytes.as_mut()).map_err(std::io::Error::other)?;
        // Fails only for zero or a value above the group order (about 2^-32).
        if let Ok(key) = p256::SecretKey::from_slice(bytes.as_ref()) {
            return Ok(key);
        }
    }
}

impl Vapid {
    /// The configured private key (base64url, 32 bytes), or the one in
    /// `<data dir>/vapid.key`, generated (0600) on first start.
    pub fn load(
        configured: Option<&SecretString>,
        data_dir: &Path,
        subject: String,
    ) -> std::io::Result<Self> {
        let secret = match configured {
            Some(text) => Self::parse(text.expose_secret().trim())
                .map_err(|e| std::io::Error::other(format!("SOTTO_VAPID_PRIVATE_KEY: {e}")))?,
            None => {
                crate::fsutil::create_private_dir(data_dir)?;
                let path = data_dir.join("vapid.key");
                match std::fs::read_to_string(&path) {
                    Ok(text) => Self::parse(text.trim())
                        .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))?,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        let key = random_secret_key()?;
                        let text =
                            Zeroizing::new(Base64UrlUnpadded::encode_string(&key.to_bytes()));
                        let mut opts = std::fs::OpenOptions::new();
                        opts.write(true).create_new(true);
                        #[cfg(unix)]
                        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
                        std::io::Write::write_all(&mut opts.open(&path)?, text.as_bytes())?;
                        tracing::info!(path = %path.display(), "generated a new VAPID key pair");
                        key
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        let der = secret
            .to_pkcs8_der()
            .map_err(|_| std::io::Error::other("cannot encode the VAPID key"))?;
        Ok(Self {
            key: jsonwebtoken::EncodingKey::from_ec_der(der.as_bytes()),
            public_key: Base64UrlUnpadded::encode_string(
                secret.public_key().to_encoded_point(false).as_bytes(),
            ),
            subject,
        })
    }

    fn parse(text: &str) -> Result<p256::SecretKey, &'static str> {
        let bytes = Zeroizing::new(
            Base64UrlUnpadded::decode_vec(text).map_err(|_| "not base64url without padding")?,
        );
        p256::SecretKey::from_slice(&bytes).map_err(|_| "not a P-256 private key (32 bytes)")
    }

    /// The public key, uncompressed, base64url: the browser's `applicationServerKey`.
    pub fn public_key(&self) -> &str {
        &self.public_key
    }

    /// The `Authorization` header for a push to `endpoint` (RFC 8292 §3).
    fn authorization(
        &self,
        endpoint: &reqwest::Url,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        #[derive(serde::Serialize)]
        struct Claims<'a> {
            aud: String,
            exp: u64,
            sub: &'a str,
        }
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.typ = Some("JWT".into());
        let now = u64::try_from(now_ms() / 1000).unwrap_or(0);
        let claims = Claims {
            aud: endpoint.origin().ascii_serialization(),
            exp: now + VAPID_TTL_SECS,
            sub: &self.subject,
        };
        let token = jsonwebtoken::encode(&header, &claims, &self.key)?;
        Ok(format!("vapid t={token}, k={}", self.public_key))
    }
}

/// News waiting for the next push round: the room's latest `seq`, and its
/// sender when all of it is from one user (who is not told of their own posts).
struct News {
    seq: u64,
    only_sender: Option<Uuid>,
}

/// The sender's settings (`docs/config.md`, "Web Push").
#[derive(Debug, Clone, Copy)]
pub struct PushSettings {
    pub policy: Policy,
    pub coalesce: Duration,
    /// A round's deadline; also each request's timeout.
    pub round_deadline: Duration,
    /// Failures in a row after which a subscription is deleted.
    pub max_failures: u32,
    /// The nameserver of the guarded resolver (`--push-dns-server`), else the system's.
    pub nameserver: Option<SocketAddr>,
}

/// The push sender: the VAPID key, the guarded HTTP client, the rooms with news.
pub struct Pusher {
    vapid: Vapid,
    client: reqwest::Client,
    resolver: Arc<GuardedResolver>,
    settings: PushSettings,
    db: Db,
    presence: Arc<Presence>,
    pending: Mutex<HashMap<Uuid, News>>,
    wake: mpsc::Sender<()>,
    /// Per destination host: its in-flight pushes (at most [`PER_HOST`]).
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl std::fmt::Debug for Pusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pusher")
            .field("vapid", &self.vapid)
            .finish_non_exhaustive()
    }
}

/// What one push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted by the push service.
    Sent,
    /// The push service says the subscription is gone: deleted.
    Removed,
    /// Refused, unreachable, timed out, or not a public destination.
    Failed,
}

/// One push to make.
struct Job {
    sub: Subscription,
    payload: PushPayload,
    topic: Option<Uuid>,
}

impl Pusher {
    /// The sender, and the wake-up channel [`run`] takes.
    pub fn new(
        vapid: Vapid,
        settings: PushSettings,
        db: Db,
        presence: Arc<Presence>,
    ) -> std::io::Result<(Arc<Self>, mpsc::Receiver<()>)> {
        let resolver = Arc::new(GuardedResolver::new(
            settings.nameserver,
            settings.policy.allow_private,
        )?);
        let connect = settings.round_deadline.min(Duration::from_secs(5));
        let client = egress::push_client(Arc::clone(&resolver), connect, settings.round_deadline)
            .map_err(std::io::Error::other)?;
        let (wake, rx) = mpsc::channel(1);
        Ok((
            Arc::new(Self {
                vapid,
                client,
                resolver,
                settings,
                db,
                presence,
                pending: Mutex::new(HashMap::new()),
                wake,
                hosts: Mutex::new(HashMap::new()),
            }),
            rx,
        ))
    }

    pub fn vapid(&self) -> &Vapid {
        &self.vapid
    }

    pub fn settings(&self) -> &PushSettings {
        &self.settings
    }

    /// Whether `url` may be subscribed: the policy's checks of the URL, and
    /// (unless private destinations are allowed) its name resolving to a
    /// public address now. Early feedback only: every push checks again where
    /// it connects.
    pub async fn check_endpoint(&self, url: &reqwest::Url) -> Result<(), String> {
        egress::check_url(url, self.settings.policy).map_err(|e| e.to_string())?;
        if self.settings.policy.allow_private {
            return Ok(());
        }
        if let Some(url::Host::Domain(name)) = url.host() {
            match self.resolver.resolve_allowed(name).await {
                Ok(_) => {}
                Err(egress::ResolveError::NotPublic) => {
                    return Err("the endpoint's name resolves to no public internet address".into());
                }
                Err(egress::ResolveError::Lookup(_)) => {
                    return Err("the endpoint's name cannot be resolved now".into());
                }
            }
        }
        Ok(())
    }

    /// Notes that `room` has news up to `seq`, posted by `sender`; its pushes go
    /// out with the next round.
    pub fn news(&self, room: Uuid, seq: u64, sender: Uuid) {
        let mut pending = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        pending
            .entry(room)
            .and_modify(|n| {
                n.seq = n.seq.max(seq);
                if n.only_sender != Some(sender) {
                    n.only_sender = None;
                }
            })
            .or_insert(News {
                seq,
                only_sender: Some(sender),
            });
        drop(pending);
        let _ = self.wake.try_send(());
    }

    fn take(&self) -> HashMap<Uuid, News> {
        std::mem::take(
            &mut *self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// The in-flight limit of one destination host.
    fn host_slots(&self, host: &str) -> Arc<Semaphore> {
        let mut hosts = self
            .hosts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Forget idle hosts now and then (every entry is recreated on demand).
        if hosts.len() > 4 * HEALTHY_CONCURRENCY {
            hosts.retain(|_, s| s.available_permits() < PER_HOST);
        }
        Arc::clone(
            hosts
                .entry(host.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(PER_HOST))),
        )
    }

    /// Records an outcome: counters, the circuit, gone subscriptions.
    async fn record(&self, sub: &Subscription, outcome: Outcome) {
        let name = match outcome {
            Outcome::Sent => "sotto_push_sent_total",
            Outcome::Removed => "sotto_push_removed_total",
            Outcome::Failed => "sotto_push_failed_total",
        };
        metrics::counter!(name).increment(1);
        let res = match outcome {
            Outcome::Sent if sub.failures > 0 => {
                store::record_success(self.db.writer(), &sub.endpoint).await
            }
            Outcome::Sent => Ok(()),
            Outcome::Removed => store::delete(self.db.writer(), &sub.endpoint).await,
            Outcome::Failed => store::record_failure(
                self.db.writer(),
                &sub.endpoint,
                now_ms(),
                i64::from(self.settings.max_failures),
            )
            .await
            .map(|dropped| {
                if dropped {
                    metrics::counter!("sotto_push_circuit_dropped_total").increment(1);
                    tracing::info!("push: dropped a subscription after repeated failures");
                }
            }),
        };
        if let Err(e) = res {
            tracing::warn!(code = e.code, "push: cannot record a push's outcome");
        }
    }

    /// The request of one push, encrypted and signed; `None` when the
    /// subscription cannot be pushed to (its URL refused by the policy, its
    /// keys unusable).
    fn request(&self, job: &Job) -> Option<(String, reqwest::RequestBuilder)> {
        let sub = &job.sub;
        let url = reqwest::Url::parse(&sub.endpoint).ok()?;
        // Stored endpoints passed this when subscribed; a literal address is not
        // resolved (so not checked) by the client, and the policy may have changed.
        if egress::check_url(&url, self.settings.policy).is_err() {
            metrics::counter!("sotto_push_refused_total", "reason" => "url").increment(1);
            return None;
        }
        let ua_public = Base64UrlUnpadded::decode_vec(&sub.p256dh).ok()?;
        let auth = Base64UrlUnpadded::decode_vec(&sub.auth).ok()?;
        let plaintext = serde_json::to_vec(&job.payload).ok()?;
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).ok()?;
        let key = random_secret_key().ok()?;
        let body = match encrypt(&ua_public, &auth, &plaintext, &key, &salt) {
            Ok(body) => body,
            Err(e) => {
                tracing::warn!(error = %e, "cannot encrypt a push for a stored subscription");
                return None;
            }
        };
        let authorization = self.vapid.authorization(&url).ok()?;
        let host = format!(
            "{}:{}",
            url.host_str().unwrap_or(""),
            url.port_or_known_default().unwrap_or(0)
        );
        let mut request = self
            .client
            .post(url)
            .header("TTL", PUSH_TTL)
            .header("Urgency", "normal")
            .header("Content-Encoding", "aes128gcm")
            .header("Content-Type", "application/octet-stream")
            .header("Authorization", authorization)
            .body(body);
        if let Some(room) = job.topic {
            request = request.header("Topic", topic_of(&sub.endpoint, room));
        }
        Some((host, request))
    }

    /// One push of a round: within its host's and its lane's limits, its
    /// outcome recorded.
    async fn run_job(
        self: Arc<Self>,
        i: usize,
        jobs: Arc<Vec<Job>>,
        lane: Arc<Semaphore>,
        outcomes: Arc<Mutex<Vec<Option<Outcome>>>>,
        in_flight: Arc<Mutex<HashSet<usize>>>,
    ) {
        let Some(job) = jobs.get(i) else {
            return;
        };
        let outcome = match self.request(job) {
            None => Outcome::Failed,
            Some((host, request)) => {
                // The host's slot first, then the lane's: a push waiting for a
                // busy host holds no lane slot another host could use.
                let host_slots = self.host_slots(&host);
                let (Ok(_host), Ok(_lane)) = (host_slots.acquire().await, lane.acquire().await)
                else {
                    return;
                };
                lock(&in_flight).insert(i);
                let outcome = match request.send().await {
                    Ok(r) if r.status().is_success() => Outcome::Sent,
                    Ok(r) if matches!(r.status().as_u16(), 404 | 410) => Outcome::Removed,
                    Ok(r) => {
                        tracing::warn!(
                            status = r.status().as_u16(),
                            "a push service refused a push"
                        );
                        Outcome::Failed
                    }
                    Err(e) => {
                        tracing::warn!(error = %e.without_url(), "a push could not be delivered to its push service");
                        Outcome::Failed
                    }
                };
                lock(&in_flight).remove(&i);
                outcome
            }
        };
        self.record(&job.sub, outcome).await;
        lock(&outcomes)[i] = Some(outcome);
    }

    /// Pushes `jobs` within one deadline: every push in its own task, at most
    /// [`PER_HOST`] at once to one destination host, subscriptions that failed
    /// last time in a lane of [`SUSPECT_CONCURRENCY`], the others in a lane of
    /// [`HEALTHY_CONCURRENCY`]. What has not finished at the deadline is
    /// cancelled and its outcome is failed; a push cancelled in flight is
    /// recorded as a failure of its subscription (it backs off), one still
    /// waiting for a slot was not tried and is not (its endpoint may be fine:
    /// its host was busy). Returns the outcomes in order.
    async fn push_all(self: &Arc<Self>, jobs: Vec<Job>) -> Vec<Outcome> {
        let n = jobs.len();
        let jobs = Arc::new(jobs);
        let outcomes = Arc::new(Mutex::new(vec![None; n]));
        let in_flight = Arc::new(Mutex::new(HashSet::new()));
        let healthy = Arc::new(Semaphore::new(HEALTHY_CONCURRENCY));
        let suspect = Arc::new(Semaphore::new(SUSPECT_CONCURRENCY));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..n {
            let lane = if jobs[i].sub.failures > 0 {
                Arc::clone(&suspect)
            } else {
                Arc::clone(&healthy)
            };
            tasks.spawn(Arc::clone(self).run_job(
                i,
                Arc::clone(&jobs),
                lane,
                Arc::clone(&outcomes),
                Arc::clone(&in_flight),
            ));
        }
        let finished = tokio::time::timeout(self.settings.round_deadline, async {
            while tasks.join_next().await.is_some() {}
        })
        .await
        .is_ok();
        if !finished {
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
            metrics::counter!("sotto_push_rounds_cut_total").increment(1);
            // Cancelled in flight: a failure of that subscription.
            let cut: Vec<usize> = lock(&in_flight).drain().collect();
            tracing::warn!(cancelled = cut.len(), "a push round reached its deadline");
            for i in cut {
                if let Some(job) = jobs.get(i) {
                    self.record(&job.sub, Outcome::Failed).await;
                }
            }
        }
        let outcomes = lock(&outcomes).clone();
        outcomes
            .into_iter()
            .map(|o| o.unwrap_or(Outcome::Failed))
            .collect()
    }

    /// One round: a push for each room with news to each subscription of its
    /// members who have no live socket, skipping subscriptions in back-off.
    async fn round(self: &Arc<Self>) {
        let news = self.take();
        let now = now_ms();
        let mut jobs = Vec::new();
        for (room, n) in news {
            let subs = match store::of_room(&self.db, room).await {
                Ok(subs) => subs,
                Err(e) => {
                    tracing::warn!(%room, code = e.code, "cannot read a room's push subscriptions");
                    continue;
                }
            };
            for sub in subs {
                if Some(sub.user_id) == n.only_sender || self.presence.is_online(sub.user_id) {
                    continue;
                }
                if in_backoff(&sub, now) {
                    metrics::counter!("sotto_push_skipped_total", "reason" => "backoff")
                        .increment(1);
                    continue;
                }
                jobs.push(Job {
                    sub,
                    payload: PushPayload::News {
                        room_id: room,
                        seq: n.seq,
                    },
                    topic: Some(room),
                });
            }
        }
        if !jobs.is_empty() {
            self.push_all(jobs).await;
        }
    }

    /// A test push to each of `subs` now (within one round deadline); whether
    /// at least one push service accepted one.
    pub async fn test(self: &Arc<Self>, subs: Vec<Subscription>) -> bool {
        let jobs = subs
            .into_iter()
            .map(|sub| Job {
                sub,
                payload: PushPayload::Test,
                topic: None,
            })
            .collect();
        self.push_all(jobs).await.contains(&Outcome::Sent)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether a subscription that failed lately waits out its back-off.
fn in_backoff(sub: &Subscription, now: i64) -> bool {
    if sub.failures <= 0 {
        return false;
    }
    let doublings = u32::try_from(sub.failures - 1).unwrap_or(u32::MAX).min(16);
    let backoff = BACKOFF_FIRST_MS
        .saturating_mul(1i64 << doublings)
        .min(BACKOFF_MAX_MS);
    sub.failed_at
        .is_some_and(|at| now < at.saturating_add(backoff))
}

/// The `Topic` of pushes for `room` to `endpoint`: 32 base64url characters
/// (RFC 8030 §5.4), stable per (endpoint, room) and telling the push service
/// nothing about the room.
fn topic_of(endpoint: &str, room: Uuid) -> String {
    let mut h = Sha256::new();
    h.update(b"sotto push topic\0");
    h.update(endpoint.as_bytes());
    h.update(room.as_bytes());
    let digest = h.finalize();
    Base64UrlUnpadded::encode_string(&digest[..24])
}

/// Sends the rounds until the relay's state is gone: each wake-up waits the
/// Sends the rounds until the sender is gone: each wake-up waits the
/// coalescing interval, then pushes what has accumulated.
pub async fn run(pusher: std::sync::Weak<Pusher>, mut wake: mpsc::Receiver<()>) {
    while wake.recv().await.is_some() {
        let Some(p) = pusher.upgrade() else {
            return;
        };
        let interval = p.settings.coalesce;
        drop(p);
        tokio::time::sleep(interval).await;
        let Some(p) = pusher.upgrade() else {
            return;
        };
        p.round().await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn d(s: &str) -> Vec<u8> {
        Base64UrlUnpadded::decode_vec(s).unwrap()
    }

    /// RFC 8291 Appendix A: the example's keys and salt give its message exactly.
    #[test]
    fn rfc8291_appendix_a() {
        let as_secret =
            p256::SecretKey::from_slice(&d("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw")).unwrap();
        assert_eq!(
            Base64UrlUnpadded::encode_string(
                as_secret.public_key().to_encoded_point(false).as_bytes()
            ),
            "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8"
        );
        let salt: [u8; 16] = d("DGv6ra1nlYgDCS1FRnbzlw").try_into().unwrap();
        let out = encrypt(
            &d("BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"),
            &d("BTBZMqHH6r4Tts7J_aSIgg"),
            b"When I grow up, I want to be a watermelon",
            &as_secret,
            &salt,
        )
        .unwrap();
        assert_eq!(
            Base64UrlUnpadded::encode_string(&out),
            "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
        );
    }

    #[test]
    fn refuses_bad_keys() {
        let key = random_secret_key().unwrap();
        assert_eq!(
            encrypt(&[4; 65], &[0; 16], b"x", &key, &[0; 16]),
            Err(PushCryptoError::BadPublicKey)
        );
        let ua = random_secret_key()
            .unwrap()
            .public_key()
            .to_encoded_point(false);
        let ua = ua.as_bytes();
        assert_eq!(
            encrypt(ua, &[0; 15], b"x", &key, &[0; 16]),
            Err(PushCryptoError::BadAuth)
        );
        assert_eq!(
            encrypt(ua, &[0; 16], &[0; 4096], &key, &[0; 16]),
            Err(PushCryptoError::TooLong)
        );
        assert!(encrypt(ua, &[0; 16], &[0; 4079], &key, &[0; 16]).is_ok());
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let sub = |failures: i64, failed_at: Option<i64>| Subscription {
            endpoint: String::new(),
            user_id: Uuid::nil(),
            p256dh: String::new(),
            auth: String::new(),
            failures,
            failed_at,
        };
        assert!(!in_backoff(&sub(0, None), 0));
        assert!(in_backoff(&sub(1, Some(0)), 29_999));
        assert!(!in_backoff(&sub(1, Some(0)), 30_000));
        assert!(in_backoff(&sub(2, Some(0)), 59_999));
        assert!(!in_backoff(&sub(2, Some(0)), 60_000));
        assert!(in_backoff(&sub(40, Some(0)), 3_599_999));
        assert!(!in_backoff(&sub(40, Some(0)), 3_600_000));
    }

    #[test]
    fn topics_are_32_chars_and_differ_per_room_and_endpoint() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let t = topic_of("https://push.example/x", a);
        assert_eq!(t.len(), 32);
        assert_ne!(t, topic_of("https://push.example/x", b));
        assert_ne!(t, topic_of("https://push.example/y", a));
        assert_eq!(t, topic_of("https://push.example/x", a));
    }
}
