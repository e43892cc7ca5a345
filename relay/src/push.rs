//! Web Push: the routes of api.md "Push" and the sender.
//!
//! A member of a room who has no live socket (on this relay) gets a push saying
//! only that the room has news up to a `seq` ([`PushPayload::News`]): no
//! plaintext, no ciphertext, no sender. The push goes to every subscription of
//! the user's active devices, through the push service the browser named
//! (RFC 8030), encrypted for the browser (RFC 8291, `aes128gcm`) and signed by
//! the relay's VAPID key (RFC 8292).
//!
//! - **Coalescing.** A post only marks its room as having news; a task sends the
//!   marked rooms' pushes every `--push-coalesce-ms`, so a burst of a thousand
//!   messages is one push per subscription, carrying the latest `seq`. Each push
//!   also has a `Topic` per (subscription, room), so a push service holding an
//!   undelivered push for that room replaces it with the newer one. The topic is
//!   a hash: the push service does not learn room ids.
//! - **Gone subscriptions.** A push service answering 404 or 410 says the
//!   subscription no longer exists: it is deleted. Other failures are counted
//!   and logged, and the subscription is kept.
//! - **Where pushes may go.** Endpoints must be `https` unless
//!   `--push-allow-http` (tests, a push service on loopback). Redirects are not
//!   followed.
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

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Key, Nonce};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use base64ct::{Base64UrlUnpadded, Encoding};
use futures_util::StreamExt;
use hkdf::Hkdf;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::EncodePrivateKey;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use sotto_core::api::problem::{Problem, codes};
use sotto_core::api::push::{
    DeletePushSubscriptionRequest, PushPayload, PushSubscriptionRequest, PushTestResponse,
    VapidPublicKey,
};
use tokio::sync::mpsc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::auth::AuthUser;
use crate::db::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::state::{AppState, WeakState};
use crate::store::push::{self as store, Subscription};

/// Record size announced in the `aes128gcm` header (one record carries it all).
const RECORD_SIZE: u32 = 4096;
/// How long a push service keeps an undelivered push (RFC 8030 `TTL`), seconds.
const PUSH_TTL: &str = "86400";
/// Lifetime of a VAPID token (RFC 8292 allows at most 24 hours).
const VAPID_TTL_SECS: u64 = 12 * 3600;
/// Longest endpoint URL accepted.
const MAX_ENDPOINT: usize = 2048;
/// Pushes in flight at once.
const CONCURRENCY: usize = 16;

/// Why a message could not be encrypted for a subscription.
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
                std::fs::create_dir_all(data_dir)?;
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

/// The push sender: the VAPID key, the HTTP client and the rooms with news.
pub struct Pusher {
    vapid: Vapid,
    client: reqwest::Client,
    allow_http: bool,
    coalesce: Duration,
    pending: Mutex<HashMap<Uuid, News>>,
    wake: mpsc::Sender<()>,
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
enum Outcome {
    Sent,
    Removed,
    Failed,
}

impl Pusher {
    /// The sender, and the wake-up channel [`run`] takes.
    pub fn new(
        vapid: Vapid,
        allow_http: bool,
        coalesce: Duration,
    ) -> Result<(Self, mpsc::Receiver<()>), reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .build()?;
        let (wake, rx) = mpsc::channel(1);
        Ok((
            Self {
                vapid,
                client,
                allow_http,
                coalesce,
                pending: Mutex::new(HashMap::new()),
                wake,
            },
            rx,
        ))
    }

    pub fn vapid(&self) -> &Vapid {
        &self.vapid
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

    /// Encrypts and posts `payload` to `sub`; a subscription the push service
    /// says is gone is deleted.
    async fn send(
        &self,
        state: &AppState,
        sub: &Subscription,
        payload: &PushPayload,
        topic: Option<Uuid>,
    ) -> Outcome {
        let outcome = self.try_send(state, sub, payload, topic).await;
        let name = match outcome {
            Outcome::Sent => "sotto_push_sent_total",
            Outcome::Removed => "sotto_push_removed_total",
            Outcome::Failed => "sotto_push_failed_total",
        };
        metrics::counter!(name).increment(1);
        outcome
    }

    async fn try_send(
        &self,
        state: &AppState,
        sub: &Subscription,
        payload: &PushPayload,
        topic: Option<Uuid>,
    ) -> Outcome {
        let Ok(url) = reqwest::Url::parse(&sub.endpoint) else {
            return Outcome::Failed;
        };
        let (Ok(ua_public), Ok(auth)) = (
            Base64UrlUnpadded::decode_vec(&sub.p256dh),
            Base64UrlUnpadded::decode_vec(&sub.auth),
        ) else {
            return Outcome::Failed;
        };
        let Ok(plaintext) = serde_json::to_vec(payload) else {
            return Outcome::Failed;
        };
        let mut salt = [0u8; 16];
        let (Ok(()), Ok(key)) = (getrandom::fill(&mut salt), random_secret_key()) else {
            return Outcome::Failed;
        };
        let body = match encrypt(&ua_public, &auth, &plaintext, &key, &salt) {
            Ok(body) => body,
            Err(e) => {
                tracing::warn!(error = %e, "cannot encrypt a push for a stored subscription");
                return Outcome::Failed;
            }
        };
        let Ok(authorization) = self.vapid.authorization(&url) else {
            return Outcome::Failed;
        };
        let mut request = self
            .client
            .post(url)
            .header("TTL", PUSH_TTL)
            .header("Urgency", "normal")
            .header("Content-Encoding", "aes128gcm")
            .header("Content-Type", "application/octet-stream")
            .header("Authorization", authorization)
            .body(body);
        if let Some(room) = topic {
            request = request.header("Topic", topic_of(&sub.endpoint, room));
        }
        match request.send().await {
            Ok(r) if r.status().is_success() => Outcome::Sent,
            Ok(r) if matches!(r.status().as_u16(), 404 | 410) => {
                match store::delete(state.db.writer(), &sub.endpoint).await {
                    Ok(()) => Outcome::Removed,
                    Err(_) => Outcome::Failed,
                }
            }
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
        }
    }

    /// One round: a push for each room with news to each subscription of its
    /// members who have no live socket.
    async fn round(&self, state: &AppState) {
        let news = self.take();
        let mut sends = Vec::new();
        for (room, n) in news {
            let subs = match store::of_room(&state.db, room).await {
                Ok(subs) => subs,
                Err(e) => {
                    tracing::warn!(%room, code = e.code, "cannot read a room's push subscriptions");
                    continue;
                }
            };
            for sub in subs {
                if Some(sub.user_id) == n.only_sender || state.realtime.is_online(sub.user_id) {
                    continue;
                }
                sends.push((room, n.seq, sub));
            }
        }
        futures_util::stream::iter(sends)
            .for_each_concurrent(CONCURRENCY, |(room, seq, sub)| async move {
                let payload = PushPayload::News { room_id: room, seq };
                self.send(state, &sub, &payload, Some(room)).await;
            })
            .await;
    }
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
/// coalescing interval, then pushes what has accumulated.
pub async fn run(state: WeakState, mut wake: mpsc::Receiver<()>) {
    while wake.recv().await.is_some() {
        let Some(s) = state.upgrade() else {
            return;
        };
        let interval = s.push.coalesce;
        drop(s);
        tokio::time::sleep(interval).await;
        let Some(s) = state.upgrade() else {
            return;
        };
        s.push.round(&s).await;
    }
}

fn invalid(detail: impl Into<String>) -> ApiError {
    ApiError::bad_request(codes::INVALID_SUBSCRIPTION, detail)
}

fn decode_key(text: &str, what: &str) -> ApiResult<Vec<u8>> {
    // Browsers write these unpadded; some libraries pad them.
    Base64UrlUnpadded::decode_vec(text.trim_end_matches('='))
        .map_err(|_| invalid(format!("keys.{what} is not base64url")))
}

#[utoipa::path(get, path = "/api/v1/push/vapid-public-key", tag = "push",
    responses((status = 200, body = VapidPublicKey, description = "the relay's VAPID public key")))]
/// The relay's VAPID public key: the `applicationServerKey` to subscribe with.
pub async fn vapid_public_key(State(state): State<AppState>) -> Json<VapidPublicKey> {
    Json(VapidPublicKey {
        public_key: state.push.vapid.public_key().to_owned(),
    })
}

#[utoipa::path(post, path = "/api/v1/push/subscriptions", tag = "push", request_body = PushSubscriptionRequest,
    responses((status = 201, description = "subscribed (an earlier subscription of this endpoint is replaced)"),
        (status = 400, body = Problem), (status = 401, body = Problem)),
    security(("bearer" = [])))]
/// Subscribe one of your devices to Web Push with a browser `PushSubscription`.
/// Pushes say only which room has news up to which `seq`.
pub async fn subscribe(
    State(state): State<AppState>,
    me: AuthUser,
    ApiJson(req): ApiJson<PushSubscriptionRequest>,
) -> ApiResult<StatusCode> {
    let sub = &req.subscription;
    if sub.endpoint.len() > MAX_ENDPOINT {
        return Err(invalid(format!(
            "the endpoint is longer than {MAX_ENDPOINT} bytes"
        )));
    }
    let url =
        reqwest::Url::parse(&sub.endpoint).map_err(|_| invalid("the endpoint is not a URL"))?;
    let scheme_ok = url.scheme() == "https" || (state.push.allow_http && url.scheme() == "http");
    if !scheme_ok
        || url.host_str().is_none()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(invalid(if state.push.allow_http {
            "the endpoint must be an http or https URL with a host"
        } else {
            "the endpoint must be an https URL with a host"
        }));
    }
    let p256dh = decode_key(&sub.keys.p256dh, "p256dh")?;
    if p256dh.len() != 65 || p256::PublicKey::from_sec1_bytes(&p256dh).is_err() {
        return Err(invalid(
            "keys.p256dh is not an uncompressed P-256 public key",
        ));
    }
    let auth = decode_key(&sub.keys.auth, "auth")?;
    if auth.len() != 16 {
        return Err(invalid("keys.auth is not 16 bytes"));
    }
    let stored = store::upsert(
        state.db.writer(),
        me.id(),
        req.device_id,
        &sub.endpoint,
        &Base64UrlUnpadded::encode_string(&p256dh),
        &Base64UrlUnpadded::encode_string(&auth),
        now_ms(),
    )
    .await?;
    if !stored {
        return Err(invalid("device_id is not one of your active devices"));
    }
    Ok(StatusCode::CREATED)
}

#[utoipa::path(delete, path = "/api/v1/push/subscriptions", tag = "push", request_body = DeletePushSubscriptionRequest,
    responses((status = 204, description = "unsubscribed (also when there was no such subscription of yours)"),
        (status = 400, body = Problem), (status = 401, body = Problem)),
    security(("bearer" = [])))]
/// Remove one of your push subscriptions by its endpoint.
pub async fn unsubscribe(
    State(state): State<AppState>,
    me: AuthUser,
    ApiJson(req): ApiJson<DeletePushSubscriptionRequest>,
) -> ApiResult<StatusCode> {
    store::delete_own(state.db.writer(), me.id(), &req.endpoint).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/push/test", tag = "push",
    responses((status = 200, body = PushTestResponse, description = "a test push was sent to each of your subscriptions"),
        (status = 401, body = Problem)),
    security(("bearer" = [])))]
/// Send a test push (`{"type":"test"}`) to each of your subscriptions now, and
/// say how each went.
pub async fn test(
    State(state): State<AppState>,
    me: AuthUser,
) -> ApiResult<Json<PushTestResponse>> {
    let subs = store::of_user(&state.db, me.id()).await?;
    let outcomes: Vec<Outcome> = futures_util::stream::iter(subs)
        .map(|sub| {
            let state = &state;
            async move { state.push.send(state, &sub, &PushPayload::Test, None).await }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let count = |o: Outcome| {
        u32::try_from(outcomes.iter().filter(|x| **x == o).count()).unwrap_or(u32::MAX)
    };
    Ok(Json(PushTestResponse {
        sent: count(Outcome::Sent),
        removed: count(Outcome::Removed),
        failed: count(Outcome::Failed),
    }))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(vapid_public_key))
        .routes(routes!(subscribe, unsubscribe))
        .routes(routes!(test))
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
    fn topics_are_32_chars_and_differ_per_room_and_endpoint() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let t = topic_of("https://push.example/x", a);
        assert_eq!(t.len(), 32);
        assert_ne!(t, topic_of("https://push.example/x", b));
        assert_ne!(t, topic_of("https://push.example/y", a));
        assert_eq!(t, topic_of("https://push.example/x", a));
    }
}
