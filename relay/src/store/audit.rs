//! The security audit log.

use uuid::Uuid;

use super::{Id, Millis, Writer, q};
use crate::db::Db;
use crate::error::ApiResult;

/// One stored audit entry.
pub struct AuditRow {
    pub id: Uuid,
    pub at: i64,
    pub event: String,
    pub actor_id: Option<Uuid>,
    pub target_id: Option<Uuid>,
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
    q!(
        w,
        execute,
        "INSERT INTO audit_log (id, at, event, actor_id, target_id, ip, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        Id(Uuid::now_v7()),
        Millis(at),
        event,
        actor.map(Id),
        target.map(Id),
        ip,
        detail
    );
    Ok(())
}

/// Up to `limit + 1` entries older than the entry id `before` (`None`: the
/// newest), optionally of one `event` kind (empty: all), newest first.
pub async fn page(
    db: &Db,
    before: Option<Uuid>,
    event: &str,
    limit: u32,
) -> ApiResult<Vec<AuditRow>> {
    Ok(q!(
        db,
        all,
        r#"SELECT id AS "id: Id", at AS "at: Millis", event, actor_id AS "actor_id: Id",
           target_id AS "target_id: Id", ip, detail FROM audit_log
           WHERE id < $1 AND ($2 = '' OR event = $2) ORDER BY id DESC LIMIT $3"#,
        Id(before.unwrap_or_else(Uuid::max)),
        event,
        i64::from(limit) + 1
        => |r| AuditRow {
            id: r.id.0,
            at: r.at.0,
            event: r.event,
            actor_id: r.actor_id.map(Uuid::from),
            target_id: r.target_id.map(Uuid::from),
            ip: r.ip,
            detail: r.detail,
        }
    ))
}
