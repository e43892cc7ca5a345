//! Who is online, as the WebSocket gateway knows it (presence with its
//! debounce), the per-user typing limit, and the session-change watchers that
//! make every socket of a user re-check its session at once.
//!
//! A service: it knows no handler and no application state; the gateway
//! (`ws.rs`), the push sender and the features that end sessions use it.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use uuid::Uuid;

/// The gateway's shared state: who is online, and the per-user typing limit.
pub struct Presence {
    presence: Mutex<HashMap<Uuid, PresenceEntry>>,
    pub typing: DefaultKeyedRateLimiter<Uuid>,
    /// Per user with sockets: woken when the user's sessions change (logout,
    /// password reset or change, role change, deletion), so every socket of
    /// theirs checks its own session at once.
    session_checks: Mutex<HashMap<Uuid, tokio::sync::watch::Sender<()>>>,
}

#[derive(Clone, Copy)]
struct PresenceEntry {
    sockets: usize,
    /// Bumped by every change, so a debounced `offline` fires only if nothing
    /// happened since it was scheduled.
    generation: u64,
}

impl Presence {
    pub fn new(typing_per_second: u32) -> Self {
        let rate = NonZeroU32::new(typing_per_second).unwrap_or(NonZeroU32::MIN);
        let burst = rate.saturating_mul(NonZeroU32::new(2).unwrap_or(NonZeroU32::MIN));
        Self {
            presence: Mutex::new(HashMap::new()),
            typing: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            session_checks: Mutex::new(HashMap::new()),
        }
    }

    /// Sessions of `user` ended (or may have): their sockets re-check theirs now
    /// and close with 4401 if it is over.
    pub fn sessions_changed(&self, user: Uuid) {
        let map = self
            .session_checks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(tx) = map.get(&user) {
            tx.send_modify(|_| {});
        }
    }

    pub fn session_check(&self, user: Uuid) -> tokio::sync::watch::Receiver<()> {
        self.session_checks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(user)
            .or_insert_with(|| tokio::sync::watch::channel(()).0)
            .subscribe()
    }

    pub fn drop_session_check(&self, user: Uuid) {
        let mut map = self
            .session_checks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // No socket of the user watches it any more.
        if map.get(&user).is_some_and(|tx| tx.receiver_count() == 0) {
            map.remove(&user);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, PresenceEntry>> {
        self.presence
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `user` counts as online (a socket, or within the debounce after
    /// the last one closed).
    pub fn is_online(&self, user: Uuid) -> bool {
        self.lock().contains_key(&user)
    }

    /// A socket of `user` opened; whether they just came online.
    pub fn connected(&self, user: Uuid) -> bool {
        let mut map = self.lock();
        match map.get_mut(&user) {
            Some(e) => {
                e.sockets += 1;
                e.generation += 1;
                false
            }
            None => {
                map.insert(
                    user,
                    PresenceEntry {
                        sockets: 1,
                        generation: 0,
                    },
                );
                metrics::gauge!("sotto_ws_users_online").set(map.len() as f64);
                true
            }
        }
    }

    /// A socket of `user` closed; the generation to check after the debounce
    /// when it was the last one.
    pub fn disconnected(&self, user: Uuid) -> Option<u64> {
        let mut map = self.lock();
        let e = map.get_mut(&user)?;
        e.sockets = e.sockets.saturating_sub(1);
        e.generation += 1;
        (e.sockets == 0).then_some(e.generation)
    }

    /// After the debounce: whether `user` went offline (no socket came back).
    pub fn settle_offline(&self, user: Uuid, generation: u64) -> bool {
        let mut map = self.lock();
        match map.get(&user) {
            Some(e) if e.sockets == 0 && e.generation == generation => {
                map.remove(&user);
                metrics::gauge!("sotto_ws_users_online").set(map.len() as f64);
                true
            }
            _ => false,
        }
    }
}
