//! Message quota counters per user (`crate::quotas`).

use uuid::Uuid;

use super::{Id, Millis, q};
use crate::db::Db;
use crate::error::ApiResult;

/// What one relay counted for one user since its last write.
#[derive(Debug, Clone, Copy)]
pub struct Delta {
    pub user: Uuid,
    /// The UTC day `day_bytes` were posted on (days since the epoch).
    pub day: i64,
    pub day_bytes: i64,
    /// Posted minus freed.
    pub stored_bytes: i64,
}

/// `user`'s counters: (stored bytes, day, bytes posted that day); zeros when
/// they have none.
pub async fn load(db: &Db, user: Uuid) -> ApiResult<(i64, i64, i64)> {
    Ok(q!(
        db,
        optional,
        "SELECT stored_bytes, day, day_bytes FROM user_usage WHERE user_id = $1",
        Id(user)
        => |r| (r.stored_bytes, r.day, r.day_bytes)
    )
    .unwrap_or((0, 0, 0)))
}

/// Adds the deltas in one transaction and answers each user's totals after it,
/// as (user, stored bytes, day, bytes that day). A user deleted meanwhile is
/// skipped. A delta of an older day than the row's only changes the stored
/// bytes.
pub async fn apply(db: &Db, deltas: &[Delta], now: i64) -> ApiResult<Vec<(Uuid, i64, i64, i64)>> {
    let mut tx = db.begin_write().await?;
    let mut out = Vec::with_capacity(deltas.len());
    for d in deltas {
        let row = q!(
            &mut tx,
            optional,
            "INSERT INTO user_usage (user_id, stored_bytes, day, day_bytes, updated_at)
             SELECT $1, CASE WHEN CAST($2 AS BIGINT) > 0 THEN CAST($2 AS BIGINT) ELSE 0 END, CAST($3 AS BIGINT),
               CASE WHEN CAST($4 AS BIGINT) > 0 THEN CAST($4 AS BIGINT) ELSE 0 END, $5 FROM users WHERE id = $1
             ON CONFLICT (user_id) DO UPDATE SET
               stored_bytes = CASE WHEN user_usage.stored_bytes + CAST($2 AS BIGINT) > 0
                                   THEN user_usage.stored_bytes + CAST($2 AS BIGINT) ELSE 0 END,
               day_bytes = CASE WHEN user_usage.day = CAST($3 AS BIGINT) THEN user_usage.day_bytes + CAST($4 AS BIGINT)
                                WHEN user_usage.day < CAST($3 AS BIGINT) THEN CAST($4 AS BIGINT)
                                ELSE user_usage.day_bytes END,
               day = CASE WHEN user_usage.day < CAST($3 AS BIGINT) THEN CAST($3 AS BIGINT) ELSE user_usage.day END,
               updated_at = $5
             RETURNING stored_bytes, day, day_bytes",
            Id(d.user),
            d.stored_bytes,
            d.day,
            d.day_bytes,
            Millis(now)
            => |r| (d.user, r.stored_bytes, r.day, r.day_bytes)
        );
        out.extend(row);
    }
    tx.commit().await?;
    Ok(out)
}
