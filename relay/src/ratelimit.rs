//! Rate limits, each a GCRA keyed limiter (`governor`), counted in memory per
//! relay process: the unauthenticated auth routes per client address and per
//! account, message posts per user, and every other kind of write per user
//! ([`Write`]). A refusal is 429 `rate_limited` with `Retry-After` in whole
//! seconds, rounded up (`retry_after_ms` on a socket), and counts in
//! `sotto_rate_limited_total{limit}`. Client addresses are those of
//! `clientip.rs` (through trusted proxies), IPv6 grouped by /64.
//!
//! Login attempts on an existing account are counted against the account itself
//! (its id), whichever spelling (username or e-mail) names it, so two spellings
//! do not double the guesses. Every attempt also counts against the pair
//! (account, client address). An address from which the account signed in
//! successfully within [`KNOWN_FOR`] is *known*: attempts from it count only
//! against that pair, so strangers spending the account's budget do not lock the
//! owner out of the places they usually sign in from. Attempts from any other
//! address count against the account's budget as well. Limits are per relay
//! process (see `docs/config.md`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use uuid::Uuid;

use crate::error::ApiError;

/// How long an address stays known for an account after a successful sign-in.
pub const KNOWN_FOR: Duration = Duration::from_secs(30 * 24 * 3600);
/// At most this many accounts have known addresses remembered...
const KNOWN_ACCOUNTS_MAX: usize = 100_000;
/// ...and at most this many addresses each (the most recent).
const KNOWN_PER_ACCOUNT: usize = 16;

/// Writes limited per user per minute (`docs/config.md`, "Limits and quotas").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Write {
    /// Creating a room, group or direct (`--room-create-rate`).
    RoomCreate,
    /// Sending an invitation (`--invite-rate`).
    Invite,
    /// Moving a receipt (`--receipt-rate`).
    Receipt,
    /// Uploading, replacing or revoking a device or identity (`--device-update-rate`).
    DeviceUpdate,
    /// Adding, renaming or removing a contact, blocking, unblocking (`--contact-rate`).
    Contact,
    /// `POST /api/v1/push/test` (`--push-test-rate`).
    PushTest,
}

impl Write {
    fn name(self) -> &'static str {
        match self {
            Write::RoomCreate => "room_create",
            Write::Invite => "invite",
            Write::Receipt => "receipt",
            Write::DeviceUpdate => "device_update",
            Write::Contact => "contact",
            Write::PushTest => "push_test",
        }
    }
}

/// The per-minute rates of the limits (from `Config`).
#[derive(Debug, Clone, Copy)]
pub struct Rates {
    pub auth_per_ip: u32,
    pub auth_per_account: u32,
    pub posts_per_second: u32,
    pub room_create: u32,
    pub invite: u32,
    pub receipt: u32,
    pub device_update: u32,
    pub contact: u32,
    pub push_test: u32,
    pub refresh_per_session: u32,
    pub check_username_per_ip: u32,
}

impl Rates {
    pub fn of(c: &crate::config::Config) -> Self {
        Self {
            auth_per_ip: c.auth_rate_per_ip,
            auth_per_account: c.auth_rate_per_account,
            posts_per_second: c.post_rate,
            room_create: c.room_create_rate,
            invite: c.invite_rate,
            receipt: c.receipt_rate,
            device_update: c.device_update_rate,
            contact: c.contact_rate,
            push_test: c.push_test_rate,
            refresh_per_session: c.refresh_rate,
            check_username_per_ip: c.check_username_rate,
        }
    }
}

pub struct RateLimits {
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    per_account: DefaultKeyedRateLimiter<String>,
    per_user: DefaultKeyedRateLimiter<Uuid>,
    per_user_ip: DefaultKeyedRateLimiter<(Uuid, IpAddr)>,
    /// Messages posted per user (REST and WebSocket alike).
    posts: DefaultKeyedRateLimiter<Uuid>,
    known: Mutex<HashMap<Uuid, Vec<(IpAddr, Instant)>>>,
    writes: HashMap<Write, DefaultKeyedRateLimiter<Uuid>>,
    refresh_session: DefaultKeyedRateLimiter<Uuid>,
    refresh_ip: DefaultKeyedRateLimiter<IpAddr>,
    check_username: DefaultKeyedRateLimiter<IpAddr>,
}

fn quota(per_minute: u32) -> Quota {
    let n = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(n).allow_burst(n)
}

impl RateLimits {
    pub fn new(rates: Rates) -> Self {
        let per_ip_per_minute = rates.auth_per_ip;
        let per_account_per_minute = rates.auth_per_account;
        let posts = NonZeroU32::new(rates.posts_per_second.max(1)).unwrap_or(NonZeroU32::MIN);
        let writes = [
            (Write::RoomCreate, rates.room_create),
            (Write::Invite, rates.invite),
            (Write::Receipt, rates.receipt),
            (Write::DeviceUpdate, rates.device_update),
            (Write::Contact, rates.contact),
            (Write::PushTest, rates.push_test),
        ]
        .into_iter()
        .map(|(w, n)| (w, RateLimiter::keyed(quota(n))))
        .collect();
        Self {
            writes,
            refresh_session: RateLimiter::keyed(quota(rates.refresh_per_session)),
            refresh_ip: RateLimiter::keyed(quota(rates.refresh_per_session.saturating_mul(10))),
            check_username: RateLimiter::keyed(quota(rates.check_username_per_ip)),
            posts: RateLimiter::keyed(
                Quota::per_second(posts).allow_burst(
                    posts.saturating_mul(NonZeroU32::new(2).unwrap_or(NonZeroU32::MIN)),
                ),
            ),
            per_ip: RateLimiter::keyed(quota(per_ip_per_minute)),
            per_account: RateLimiter::keyed(quota(per_account_per_minute)),
            per_user: RateLimiter::keyed(quota(per_account_per_minute)),
            per_user_ip: RateLimiter::keyed(quota(per_account_per_minute)),
            known: Mutex::new(HashMap::new()),
        }
    }

    /// A message posted by `user` (429 with `Retry-After` beyond the rate).
    pub fn check_post(&self, user: Uuid) -> Result<(), ApiError> {
        self.posts
            .check_key(&user)
            .map_err(|nu| refusal_of("post", nu))
    }

    /// A write of kind `what` by `user`.
    pub fn check_write(&self, what: Write, user: Uuid) -> Result<(), ApiError> {
        match self.writes.get(&what) {
            Some(l) => l.check_key(&user).map_err(|nu| refusal_of(what.name(), nu)),
            None => Ok(()),
        }
    }

    /// A token refresh from `ip` (before the token is looked up).
    pub fn check_refresh_ip(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.refresh_ip
            .check_key(&crate::server::peer_key(ip))
            .map_err(|nu| refusal_of("refresh", nu))
    }

    /// A token refresh of `session`.
    pub fn check_refresh_session(&self, session: Uuid) -> Result<(), ApiError> {
        self.refresh_session
            .check_key(&session)
            .map_err(|nu| refusal_of("refresh", nu))
    }

    /// A username availability check from `ip`.
    pub fn check_username_probe(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.check_username
            .check_key(&crate::server::peer_key(ip))
            .map_err(|nu| refusal_of("check_username", nu))
    }

    /// A login attempt: `account` is the account the login names, when there is
    /// one; otherwise the attempt counts against the normalised login text.
    pub fn check_login(
        &self,
        account: Option<Uuid>,
        login: &str,
        ip: IpAddr,
    ) -> Result<(), ApiError> {
        let Some(id) = account else {
            return self.check_account("login", login);
        };
        let ip = crate::server::peer_key(ip);
        if !self.is_known(id, ip) {
            self.per_user
                .check_key(&id)
                .map_err(|nu| refusal_of("login", nu))?;
        }
        self.per_user_ip
            .check_key(&(id, ip))
            .map_err(|nu| refusal_of("login", nu))
    }

    /// Remembers that `account` signed in from `ip`. Bounded: the most recent
    /// addresses per account, and when too many accounts are remembered the one
    /// whose newest address is oldest is forgotten (one attacker signing in from
    /// many addresses pushes out only their own).
    pub fn remember_login(&self, account: Uuid, ip: IpAddr) {
        let ip = crate::server::peer_key(ip);
        let now = Instant::now();
        let mut known = self
            .known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !known.contains_key(&account) && known.len() >= KNOWN_ACCOUNTS_MAX {
            let stalest = known
                .iter()
                .min_by_key(|(_, addrs)| addrs.iter().map(|(_, at)| *at).max())
                .map(|(id, _)| *id);
            if let Some(id) = stalest {
                known.remove(&id);
            }
        }
        let addrs = known.entry(account).or_default();
        addrs.retain(|(a, at)| *a != ip && at.elapsed() < KNOWN_FOR);
        if addrs.len() >= KNOWN_PER_ACCOUNT {
            addrs.sort_by_key(|(_, at)| std::cmp::Reverse(*at));
            addrs.truncate(KNOWN_PER_ACCOUNT - 1);
        }
        addrs.push((ip, now));
    }

    fn is_known(&self, account: Uuid, ip: IpAddr) -> bool {
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&account)
            .is_some_and(|addrs| {
                addrs
                    .iter()
                    .any(|(a, at)| *a == ip && at.elapsed() < KNOWN_FOR)
            })
    }

    pub fn check_ip(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.per_ip
            .check_key(&crate::server::peer_key(ip))
            .map_err(|nu| refusal_of("auth_ip", nu))
    }

    /// `account` is normalised (trimmed, lower case) so case games do not multiply attempts.
    pub fn check_account(&self, scope: &str, account: &str) -> Result<(), ApiError> {
        // Bounded: the input is not validated yet and must not grow the limiter's map.
        let key: String = format!("{scope}:{}", account.trim().to_lowercase())
            .chars()
            .take(300)
            .collect();
        self.per_account
            .check_key(&key)
            .map_err(|nu| refusal_of("auth_account", nu))
    }

    /// Drops state of keys that are back to full capacity (called periodically).
    pub fn housekeeping(&self) {
        self.per_ip.retain_recent();
        self.per_account.retain_recent();
        self.per_user.retain_recent();
        self.per_user_ip.retain_recent();
        self.posts.retain_recent();
        for l in self.writes.values() {
            l.retain_recent();
        }
        self.refresh_session.retain_recent();
        self.refresh_ip.retain_recent();
        self.check_username.retain_recent();
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|_, addrs| {
                addrs.retain(|(_, at)| at.elapsed() < KNOWN_FOR);
                !addrs.is_empty()
            });
    }
}

fn refusal_of(
    limit: &'static str,
    nu: governor::NotUntil<<DefaultClock as Clock>::Instant>,
) -> ApiError {
    metrics::counter!("sotto_rate_limited_total", "limit" => limit).increment(1);
    ApiError::rate_limited(nu.wait_time_from(DefaultClock::default().now()))
}
