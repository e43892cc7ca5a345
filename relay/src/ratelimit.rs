//! Rate limits for the unauthenticated auth routes: per client IP and per
//! account (login name or e-mail), each a GCRA keyed limiter (`governor`).
//! A refusal is 429 with `Retry-After` in whole seconds, rounded up.

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::ApiError;

pub struct RateLimits {
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    per_account: DefaultKeyedRateLimiter<String>,
}

fn quota(per_minute: u32) -> Quota {
    let n = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(n).allow_burst(n)
}

impl RateLimits {
    pub fn new(per_ip_per_minute: u32, per_account_per_minute: u32) -> Self {
        Self {
            per_ip: RateLimiter::keyed(quota(per_ip_per_minute)),
            per_account: RateLimiter::keyed(quota(per_account_per_minute)),
        }
    }

    pub fn check_ip(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.per_ip.check_key(&ip).map_err(|nu| {
            ApiError::rate_limited(ceil_secs(nu.wait_time_from(DefaultClock::default().now())))
        })
    }

    /// `account` is normalised (trimmed, lower case) so case games do not multiply attempts.
    pub fn check_account(&self, scope: &str, account: &str) -> Result<(), ApiError> {
        // Bounded: the input is not validated yet and must not grow the limiter's map.
        let key: String = format!("{scope}:{}", account.trim().to_lowercase())
            .chars()
            .take(300)
            .collect();
        self.per_account.check_key(&key).map_err(|nu| {
            ApiError::rate_limited(ceil_secs(nu.wait_time_from(DefaultClock::default().now())))
        })
    }

    /// Drops state of keys that are back to full capacity (called periodically).
    pub fn housekeeping(&self) {
        self.per_ip.retain_recent();
        self.per_account.retain_recent();
    }
}

fn ceil_secs(d: std::time::Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}
