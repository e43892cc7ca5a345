//! The security audit log.

use uuid::Uuid;

use super::Writer;
use crate::db::Db;
use crate::error::ApiResult;

/// One stored audit entry.
#[derive(sqlx::FromRow)]
pub struct AuditRow {
    pub id: String,
    pub at: i64,
    pub event: String,
    pub actor_id: Option<String>,
    pub target_id: Option<String>,
    pub ip: Option<String>,
    pub detail: Option<String>,
}

/// Appends an entry.
pub async fn insert(
    w: Writer<'_>,
    at: i64,
    event: &str,
    actor: Option<Uuid>,
    target: Option<Uuid>,
    ip: Option<String>,
    detail: Option<&str>,
) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO audit_log (id, at, event, actor_id, target_id, ip, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(Uuid::now_v7().to_string())
    .bind(at)
    .bind(event)
    .bind(actor.map(|u| u.to_string()))
    .bind(target.map(|u| u.to_string()))
    .bind(ip)
    .bind(detail.map(str::to_string))
    .execute(w.pool())
    .await?;
    Ok(())
}

/// Up to `limit + 1` entries older than the entry id `before` (or the newest when
/// empty), optionally of one `event` kind (empty: all), newest first.
pub async fn page(db: &Db, before: &str, event: &str, limit: u32) -> ApiResult<Vec<AuditRow>> {
    Ok(sqlx::query_as::<_, AuditRow>(
        "SELECT id, at, event, actor_id, target_id, ip, detail FROM audit_log \
         WHERE ($1 = '' OR id < $1) AND ($2 = '' OR event = $2) ORDER BY id DESC LIMIT $3",
    )
    .bind(before)
    .bind(event)
    .bind(i64::from(limit) + 1)
    .fetch_all(db.read())
    .await?)
}
