//! The relay's periodic upkeep, off every request path:
//! - every second on SQLite, the write-ahead-log checkpoint
//!   (`store::maintenance::checkpoint`);
//! - every `--quota-sync-ms`, the message quota counters (`quotas.rs`);
//! - every minute, the rate limiters forget keys back at full capacity, and the
//!   metrics exporter does its upkeep;
//! - every hour (and at start), the sweeps: sessions revoked more than a day ago
//!   or unused for the refresh-token lifetime (their refresh tokens with them),
//!   expired refresh tokens, e-mail tokens expired or used more than a day ago,
//!   audit entries older than `--audit-retention-days`, and attachment files no
//!   row refers to.

use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::db::{Backend, Db, now_ms};
use crate::files::Files;
use crate::quotas::Quotas;
use crate::ratelimit::RateLimits;
use crate::store::maintenance;

const DAY_MS: i64 = 86_400_000;

/// What the upkeep works on.
pub struct Upkeep {
    pub db: Db,
    pub quotas: Arc<Quotas>,
    pub files: Arc<Files>,
    pub metrics: PrometheusHandle,
    pub refresh_token_ttl: Duration,
    pub audit_retention_days: u32,
    pub quota_sync: Duration,
}

/// Rows removed by one sweep.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    pub sessions: u64,
    pub refresh_tokens: u64,
    pub email_tokens: u64,
    pub audit: u64,
}

/// Removes expired rows (see the module docs) as of `now`.
pub async fn sweep_expired(
    db: &Db,
    now: i64,
    refresh_token_ttl: Duration,
    audit_retention_days: u32,
) -> Swept {
    let ttl = i64::try_from(refresh_token_ttl.as_millis()).unwrap_or(i64::MAX);
    let mut swept = Swept::default();
    let w = db.writer();
    let log = |what: &'static str, r: crate::error::ApiResult<u64>| -> u64 {
        match r {
            Ok(n) => {
                metrics::counter!("sotto_housekeeping_removed_total", "what" => what).increment(n);
                n
            }
            Err(e) => {
                tracing::warn!(what, code = e.code, "housekeeping sweep failed");
                0
            }
        }
    };
    swept.refresh_tokens = log(
        "refresh_tokens",
        maintenance::sweep_refresh_tokens(w, now).await,
    );
    swept.sessions = log(
        "sessions",
        maintenance::sweep_sessions(w, now - DAY_MS, now.saturating_sub(ttl)).await,
    );
    swept.email_tokens = log(
        "email_tokens",
        maintenance::sweep_email_tokens(w, now, now - DAY_MS).await,
    );
    swept.audit = log(
        "audit",
        maintenance::sweep_audit(w, now - i64::from(audit_retention_days) * DAY_MS).await,
    );
    if swept != Swept::default() {
        tracing::info!(?swept, "removed expired rows");
    }
    swept
}

/// Starts the upkeep tasks; they end when aborted.
pub fn start(upkeep: Upkeep, limits: Arc<RateLimits>) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    let upkeep = Arc::new(upkeep);
    {
        let u = Arc::clone(&upkeep);
        tasks.push(tokio::spawn(async move {
            let mut minutes = 0u64;
            loop {
                if minutes.is_multiple_of(60) {
                    sweep_expired(&u.db, now_ms(), u.refresh_token_ttl, u.audit_retention_days)
                        .await;
                    u.files
                        .sweep_orphans(&u.db, Duration::from_secs(3600))
                        .await;
                }
                tokio::time::sleep(Duration::from_secs(60)).await;
                minutes += 1;
                limits.housekeeping();
                u.metrics.run_upkeep();
            }
        }));
    }
    {
        let u = Arc::clone(&upkeep);
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(u.quota_sync);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                u.quotas.sync().await;
            }
        }));
    }
    // SQLite: restart the write-ahead log every second (see
    // `store::maintenance::checkpoint`).
    if upkeep.db.backend == Backend::Sqlite {
        let u = Arc::clone(&upkeep);
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if let Err(e) = maintenance::checkpoint(u.db.writer()).await {
                    tracing::warn!(code = e.code, "WAL checkpoint failed");
                }
            }
        }));
    }
    tasks
}
