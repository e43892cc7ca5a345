//! Rate limits for the unauthenticated auth routes: per client IP and per
//! account, each a GCRA keyed limiter (`governor`). A refusal is 429 with
//! `Retry-After` in whole seconds, rounded up.
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

pub struct RateLimits {
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    per_account: DefaultKeyedRateLimiter<String>,
    per_user: DefaultKeyedRateLimiter<Uuid>,
    per_user_ip: DefaultKeyedRateLimiter<(Uuid, IpAddr)>,
    /// Messages posted per user (REST and WebSocket alike).
    posts: DefaultKeyedRateLimiter<Uuid>,
    known: Mutex<HashMap<Uuid, Vec<(IpAddr, Instant)>>>,
}

fn quota(per_minute: u32) -> Quota {
    let n = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(n).allow_burst(n)
}

impl RateLimits {
    pub fn new(per_ip_per_minute: u32, per_account_per_minute: u32, posts_per_second: u32) -> Self {
        let posts = NonZeroU32::new(posts_per_second.max(1)).unwrap_or(NonZeroU32::MIN);
        Self {
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
        self.posts.check_key(&user).map_err(refusal)
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
            self.per_user.check_key(&id).map_err(refusal)?;
        }
        self.per_user_ip.check_key(&(id, ip)).map_err(refusal)
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
            .map_err(refusal)
    }

    /// `account` is normalised (trimmed, lower case) so case games do not multiply attempts.
    pub fn check_account(&self, scope: &str, account: &str) -> Result<(), ApiError> {
        // Bounded: the input is not validated yet and must not grow the limiter's map.
        let key: String = format!("{scope}:{}", account.trim().to_lowercase())
            .chars()
            .take(300)
            .collect();
        self.per_account.check_key(&key).map_err(refusal)
    }

    /// Drops state of keys that are back to full capacity (called periodically).
    pub fn housekeeping(&self) {
        self.per_ip.retain_recent();
        self.per_account.retain_recent();
        self.per_user.retain_recent();
        self.per_user_ip.retain_recent();
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|_, addrs| {
                addrs.retain(|(_, at)| at.elapsed() < KNOWN_FOR);
                !addrs.is_empty()
            });
    }
}

fn refusal(nu: governor::NotUntil<<DefaultClock as Clock>::Instant>) -> ApiError {
    ApiError::rate_limited(ceil_secs(nu.wait_time_from(DefaultClock::default().now())))
}

fn ceil_secs(d: std::time::Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}
