//! A Web Push service for tests, on loopback over plain HTTP: it records every
//! push it receives and answers each endpoint with the status the test sets
//! (201 unless told otherwise). [`UserAgent`] is the browser's side: its own
//! P-256 key and auth secret (what `PushManager.subscribe` makes) and the
//! decryption of RFC 8291 `aes128gcm` pushes, written from the RFC
//! independently of the relay's encryption.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Key, Nonce};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use base64ct::{Base64UrlUnpadded, Encoding};
use hkdf::Hkdf;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// One push as the service received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The last path segment of the endpoint it was posted to.
    pub name: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Default)]
struct Inner {
    received: Mutex<Vec<Received>>,
    status: Mutex<HashMap<String, u16>>,
    arrived: Notify,
}

/// The push service (stops when dropped).
pub struct PushService {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn receive(
    State(inner): State<Arc<Inner>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let status = inner
        .status
        .lock()
        .unwrap()
        .get(&name)
        .copied()
        .unwrap_or(201);
    inner.received.lock().unwrap().push(Received {
        name,
        headers,
        body: body.to_vec(),
    });
    inner.arrived.notify_waiters();
    StatusCode::from_u16(status).unwrap()
}

impl PushService {
    pub async fn start() -> Self {
        let inner = Arc::new(Inner::default());
        let app = axum::Router::new()
            .route("/push/{name}", axum::routing::post(receive))
            .with_state(Arc::clone(&inner));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Self {
            addr,
            inner,
            _stop: stop,
        }
    }

    /// The endpoint URL called `name`.
    pub fn endpoint(&self, name: &str) -> String {
        format!("http://{}/push/{name}", self.addr)
    }

    /// The origin of every endpoint (the VAPID token's `aud`).
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answer pushes to `name` with `status` from now on.
    pub fn answer(&self, name: &str, status: u16) {
        self.inner
            .status
            .lock()
            .unwrap()
            .insert(name.into(), status);
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.inner.received.lock().unwrap().clone()
    }

    /// Pushes received for `name` so far.
    pub fn received_by(&self, name: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.name == name)
            .collect()
    }

    /// Waits (up to 10 s) until `name` has received at least `n` pushes.
    pub async fn wait_for(&self, name: &str, n: usize) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let arrived = self.inner.arrived.notified();
            let got = self.received_by(name);
            if got.len() >= n {
                return got;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!("{name} received {} pushes in 10 s, expected {n}", got.len());
            }
        }
    }
}

/// A browser's push subscription keys, and the decryption of what it receives.
pub struct UserAgent {
    secret: p256::SecretKey,
    auth: [u8; 16],
}

impl Default for UserAgent {
    fn default() -> Self {
        Self::new()
    }
}

impl UserAgent {
    pub fn new() -> Self {
        let secret = loop {
            let mut b = [0u8; 32];
            getrandom::fill(&mut b).unwrap();
            if let Ok(k) = p256::SecretKey::from_slice(&b) {
                break k;
            }
        };
        let mut auth = [0u8; 16];
        getrandom::fill(&mut auth).unwrap();
        Self { secret, auth }
    }

    /// `keys.p256dh` of the subscription (base64url, uncompressed point).
    pub fn p256dh(&self) -> String {
        Base64UrlUnpadded::encode_string(self.public().as_bytes())
    }

    /// `keys.auth` of the subscription.
    pub fn auth(&self) -> String {
        Base64UrlUnpadded::encode_string(&self.auth)
    }

    fn public(&self) -> p256::EncodedPoint {
        self.secret.public_key().to_encoded_point(false)
    }

    /// A browser `PushSubscription.toJSON()` for `endpoint`.
    pub fn subscription(&self, endpoint: &str) -> serde_json::Value {
        serde_json::json!({
            "endpoint": endpoint,
            "expirationTime": null,
            "keys": {"p256dh": self.p256dh(), "auth": self.auth()},
        })
    }

    /// Decrypts an `aes128gcm` push body (RFC 8188 framing, RFC 8291 keys):
    /// `salt(16) ‖ rs(4) ‖ idlen(1) ‖ keyid(idlen = the sender's public key) ‖
    /// records`. Panics on anything malformed.
    pub fn decrypt(&self, body: &[u8]) -> Vec<u8> {
        assert!(body.len() > 21, "push body too short");
        let salt = &body[..16];
        let rs = u32::from_be_bytes(body[16..20].try_into().unwrap()) as usize;
        let idlen = body[20] as usize;
        assert_eq!(
            idlen, 65,
            "keyid must be the sender's uncompressed P-256 key"
        );
        let as_public = &body[21..21 + idlen];
        let records = &body[21 + idlen..];
        assert!(records.len() <= rs, "expected a single record");
        let sender = p256::PublicKey::from_sec1_bytes(as_public).unwrap();
        let shared =
            p256::ecdh::diffie_hellman(self.secret.to_nonzero_scalar(), sender.as_affine());
        // PRK_key = HMAC(auth, ecdh); IKM = HMAC(PRK_key, "WebPush: info\0" ua as 0x01)
        let mut info = b"WebPush: info\0".to_vec();
        info.extend_from_slice(self.public().as_bytes());
        info.extend_from_slice(as_public);
        let mut ikm = [0u8; 32];
        Hkdf::<Sha256>::new(Some(&self.auth), &shared.raw_secret_bytes()[..])
            .expand(&info, &mut ikm)
            .unwrap();
        let hk = Hkdf::<Sha256>::new(Some(salt), &ikm);
        let mut cek = [0u8; 16];
        let mut nonce = [0u8; 12];
        hk.expand(b"Content-Encoding: aes128gcm\0", &mut cek)
            .unwrap();
        hk.expand(b"Content-Encoding: nonce\0", &mut nonce).unwrap();
        let mut plain = Aes128Gcm::new(&Key::<Aes128Gcm>::from(cek))
            .decrypt(&Nonce::from(nonce), records)
            .expect("the push does not decrypt with the subscription's keys");
        // Strip the padding: zeros, then the last record's delimiter 0x02.
        while plain.last() == Some(&0) {
            plain.pop();
        }
        assert_eq!(
            plain.pop(),
            Some(2),
            "the last record must end with delimiter 2"
        );
        plain
    }
}

/// A TCP listener that never accepts (backlog 1): a connection to it hangs,
/// in the handshake or waiting for an answer. A dead push endpoint.
pub struct BlackHole {
    pub addr: SocketAddr,
    _listener: tokio::net::TcpListener,
}

impl BlackHole {
    pub fn start() -> Self {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(1).unwrap();
        Self {
            addr: listener.local_addr().unwrap(),
            _listener: listener,
        }
    }
}
