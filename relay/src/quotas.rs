//! Message quotas: envelope bytes per user per UTC day
//! (`--message-bytes-per-day`) and stored in all (`--message-bytes-stored`).
//!
//! Counting costs a post no database round trip. Each relay process keeps a
//! user's usage in memory: what the database said when it last looked, plus
//! what this process has counted since. A post is checked and counted against
//! that (a reservation, given back if the post is not stored after all); a
//! task writes the counted deltas to the `usage` table every
//! `--quota-sync-ms` in one transaction, reading back the totals, which then
//! include what the other relays sharing the database wrote. A user's usage is
//! read from the database once, at their first post after a quiet minute.
//!
//! So the quotas are shared between relays, and can be overshot by what the
//! relays accept from one user between two writes (a few seconds of posts at
//! `--post-rate`), or by what was counted and not yet written when a relay is
//! killed; the stored total is corrected whenever messages are deleted, by the
//! sizes the deletion reports.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::db::{Db, now_ms};
use crate::error::{ApiError, ApiResult};
use crate::store::usage::{self, Delta};

const DAY_MS: i64 = 86_400_000;
/// Users unused this long are forgotten (read again at their next post).
const IDLE: Duration = Duration::from_secs(60);
/// What a full stored quota's `Retry-After` says (it frees only when something
/// is deleted).
const STORED_RETRY: Duration = Duration::from_secs(3600);

/// One user's usage as this process knows it.
#[derive(Debug, Clone, Copy)]
struct Usage {
    /// The UTC day `day_db` counts.
    day: i64,
    /// From the database at the last read or write.
    day_db: i64,
    stored_db: i64,
    /// Counted here and not yet written.
    pending_day: i64,
    pending_stored: i64,
    last_used: Instant,
}

/// The quotas and the usage counted in this process.
pub struct Quotas {
    db: Db,
    per_day: i64,
    stored_max: i64,
    users: Mutex<HashMap<Uuid, Usage>>,
}

fn today(now: i64) -> i64 {
    now.div_euclid(DAY_MS)
}

impl Quotas {
    pub fn new(db: Db, per_day: u64, stored_max: u64) -> Self {
        Self {
            db,
            per_day: i64::try_from(per_day).unwrap_or(i64::MAX),
            stored_max: i64::try_from(stored_max).unwrap_or(i64::MAX),
            users: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Usage>> {
        self.users
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts `bytes` posted by `user` now, or refuses them (429
    /// `quota_exceeded`, with the wait) without counting. Give the bytes back
    /// with [`Quotas::release`] if the post is not stored.
    pub async fn reserve(&self, user: Uuid, bytes: usize) -> ApiResult<()> {
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        let now = now_ms();
        let day = today(now);
        if !self.lock().contains_key(&user) {
            // First post in a while: one read (another post may race it; the
            // first to finish inserts, the other keeps what is there).
            let (stored, at_day, day_bytes) = usage::load(&self.db, user).await?;
            self.lock().entry(user).or_insert(Usage {
                day: at_day,
                day_db: day_bytes,
                stored_db: stored,
                pending_day: 0,
                pending_stored: 0,
                last_used: Instant::now(),
            });
        }
        let mut users = self.lock();
        let u = users
            .get_mut(&user)
            .ok_or_else(|| ApiError::internal("quota entry vanished"))?;
        if u.day != day {
            // A new UTC day: nothing posted today has been written yet.
            u.day = day;
            u.day_db = 0;
            u.pending_day = 0;
        }
        u.last_used = Instant::now();
        let used_today = u.day_db.saturating_add(u.pending_day);
        if used_today.saturating_add(bytes) > self.per_day {
            metrics::counter!("sotto_quota_refused_total", "quota" => "bytes_per_day").increment(1);
            let wait = (day + 1) * DAY_MS - now;
            return Err(ApiError::quota_exceeded(
                Duration::from_millis(u64::try_from(wait).unwrap_or(1000)),
                format!(
                    "your messages of today reached the relay's daily quota of {} bytes",
                    self.per_day
                ),
            ));
        }
        let stored = u.stored_db.saturating_add(u.pending_stored);
        if stored.saturating_add(bytes) > self.stored_max {
            metrics::counter!("sotto_quota_refused_total", "quota" => "bytes_stored").increment(1);
            return Err(ApiError::quota_exceeded(
                STORED_RETRY,
                format!(
                    "your stored messages reached the relay's quota of {} bytes; delete some to post again",
                    self.stored_max
                ),
            ));
        }
        u.pending_day += bytes;
        u.pending_stored += bytes;
        Ok(())
    }

    /// Gives back bytes reserved for a post that was not stored (a retry of a
    /// stored message, or a refusal after the reservation).
    pub fn release(&self, user: Uuid, bytes: usize) {
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        if let Some(u) = self.lock().get_mut(&user) {
            u.pending_day -= bytes;
            u.pending_stored -= bytes;
        }
    }

    /// Messages of these senders were deleted: their stored bytes go down.
    /// Written with the next sync (directly when the sender is not cached).
    pub async fn freed(&self, freed: &[(Uuid, i64)]) {
        let mut direct = Vec::new();
        {
            let mut users = self.lock();
            for (user, bytes) in freed {
                match users.get_mut(user) {
                    Some(u) => u.pending_stored -= bytes,
                    None => direct.push(Delta {
                        user: *user,
                        day: today(now_ms()),
                        day_bytes: 0,
                        stored_bytes: -bytes,
                    }),
                }
            }
        }
        if !direct.is_empty()
            && let Err(e) = usage::apply(&self.db, &direct, now_ms()).await
        {
            tracing::warn!(code = e.code, "cannot record freed message bytes");
        }
    }

    /// Writes what was counted since the last sync and reads the totals back;
    /// forgets users idle for a minute. Called every `--quota-sync-ms`.
    pub async fn sync(&self) {
        let now = now_ms();
        let deltas: Vec<Delta> = {
            let mut users = self.lock();
            users.retain(|_, u| {
                u.pending_day != 0 || u.pending_stored != 0 || u.last_used.elapsed() < IDLE
            });
            users
                .iter_mut()
                .filter(|(_, u)| u.pending_day != 0 || u.pending_stored != 0)
                .map(|(user, u)| {
                    let d = Delta {
                        user: *user,
                        day: u.day,
                        day_bytes: u.pending_day,
                        stored_bytes: u.pending_stored,
                    };
                    // Moved to the database side now; put back if the write fails.
                    u.day_db += u.pending_day;
                    u.stored_db += u.pending_stored;
                    u.pending_day = 0;
                    u.pending_stored = 0;
                    d
                })
                .collect()
        };
        if deltas.is_empty() {
            return;
        }
        match usage::apply(&self.db, &deltas, now).await {
            Ok(totals) => {
                let mut users = self.lock();
                for (user, stored, day, day_bytes) in totals {
                    if let Some(u) = users.get_mut(&user)
                        && u.day == day
                    {
                        u.stored_db = stored;
                        u.day_db = day_bytes;
                    }
                }
            }
            Err(e) => {
                tracing::warn!(
                    code = e.code,
                    "cannot write message quota counters; retrying"
                );
                let mut users = self.lock();
                for d in deltas {
                    if let Some(u) = users.get_mut(&d.user) {
                        u.day_db -= d.day_bytes;
                        u.stored_db -= d.stored_bytes;
                        u.pending_day += d.day_bytes;
                        u.pending_stored += d.stored_bytes;
                    }
                }
            }
        }
    }
}
