//! Shared application state: the configuration and the services the features
//! use. Services (below this layer) never see it; they are built with what
//! they need (`docs/architecture.md`, "Layers").

use std::ops::Deref;
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::auth::JwtKeys;
use crate::clientip::TrustedProxies;
use crate::config::Config;
use crate::db::Db;
use crate::events::Events;
use crate::files::{Files, UploadSlots};
use crate::ingest::Ingest;
use crate::keycache::DeviceCache;
use crate::mail::Mailer;
use crate::presence::Presence;
use crate::pusher::Pusher;
use crate::quotas::Quotas;
use crate::ratelimit::RateLimits;
use crate::server::PeerCounts;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub db: Db,
    pub jwt: JwtKeys,
    pub mailer: Arc<Mailer>,
    pub limits: Arc<RateLimits>,
    pub metrics: PrometheusHandle,
    /// Events for the real-time layer.
    pub events: Events,
    /// The group commit of posted messages.
    pub ingest: Ingest,
    /// Web Push: the VAPID key and the sender.
    pub push: Arc<Pusher>,
    /// Who is online, the typing limit, session-change watchers.
    pub presence: Arc<Presence>,
    /// Message quotas, counted in memory.
    pub quotas: Arc<Quotas>,
    /// Verified device bundles (see `keycache::DeviceCache`).
    pub device_cache: DeviceCache,
    /// Attachment uploads in progress per user.
    pub uploads: UploadSlots,
    /// Attachment files.
    pub files: Arc<Files>,
    /// Reverse proxies whose forwarding headers are believed.
    pub trusted: Arc<TrustedProxies>,
    /// WebSockets per client address, for those that came through a trusted
    /// proxy (direct ones count in the connection layer).
    pub ws_clients: Arc<PeerCounts>,
    /// A valid Argon2id hash of a random password: login verifies against it when the
    /// account does not exist, so both answers take the same time.
    pub dummy_hash: String,
}

impl AppState {
    pub fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }
}

/// A handle on the state that does not keep it alive (for background tasks
/// that end with the relay).
#[derive(Clone)]
pub struct WeakState(std::sync::Weak<Inner>);

impl WeakState {
    pub fn upgrade(&self) -> Option<AppState> {
        self.0.upgrade().map(AppState)
    }
}

impl AppState {
    pub fn downgrade(&self) -> WeakState {
        WeakState(Arc::downgrade(&self.0))
    }
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
