//! Shared application state.

use std::ops::Deref;
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::auth::JwtKeys;
use crate::config::Config;
use crate::db::Db;
use crate::events::Events;
use crate::mail::Mailer;
use crate::ratelimit::RateLimits;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub db: Db,
    pub jwt: JwtKeys,
    pub mailer: Mailer,
    pub limits: RateLimits,
    pub metrics: PrometheusHandle,
    /// Events for the real-time layer.
    pub events: Events,
    /// The group commit of posted messages.
    pub ingest: crate::ingest::Ingest,
    /// Web Push: the VAPID key and the sender.
    pub push: crate::push::Pusher,
    /// The WebSocket gateway's presence and typing limits.
    pub realtime: crate::ws::Realtime,
    /// Verified device bundles (see `devices::DeviceCache`).
    pub device_cache: crate::devices::DeviceCache,
    /// Attachment uploads in progress per user.
    pub uploads: crate::attachments::UploadSlots,
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
