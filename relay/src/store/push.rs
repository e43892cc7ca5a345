//! Web Push subscriptions: one row per push endpoint, tied to a device, with
//! its circuit (failed pushes in a row).

use uuid::Uuid;

use super::{Id, Millis, Writer, q};
use crate::db::{Db, WriteTx};
use crate::error::ApiResult;

/// A stored subscription, as a push is sent to it.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub endpoint: String,
    pub user_id: Uuid,
    pub p256dh: String,
    pub auth: String,
    /// Failed pushes in a row.
    pub failures: i64,
    /// When the last one failed.
    pub failed_at: Option<i64>,
}

/// What storing a subscription did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    /// Stored, new or replacing the caller's own subscription of the endpoint.
    Stored,
    /// The device is not an active device of the caller.
    NoSuchDevice,
    /// The endpoint is another account's subscription: left alone.
    Taken,
}

/// The owner of `endpoint`'s subscription, if any.
pub async fn owner(tx: &mut WriteTx, endpoint: &str) -> ApiResult<Option<Uuid>> {
    Ok(q!(
        tx,
        optional,
        r#"SELECT user_id AS "user_id: Id" FROM push_subscriptions WHERE endpoint = $1"#,
        endpoint
        => |r| r.user_id.0
    ))
}

/// Subscriptions of `user`, and of `device` among them, other than `endpoint`.
pub async fn counts(
    tx: &mut WriteTx,
    user: Uuid,
    device: Uuid,
    endpoint: &str,
) -> ApiResult<(i64, i64)> {
    Ok(q!(
        tx,
        one,
        r#"SELECT COUNT(*) AS "of_user!: i64",
           COALESCE(SUM(CASE WHEN device_id = $2 THEN 1 ELSE 0 END), 0) AS "of_device!: i64"
           FROM push_subscriptions WHERE user_id = $1 AND endpoint <> $3"#,
        Id(user),
        Id(device),
        endpoint
        => |r| (r.of_user, r.of_device)
    ))
}

/// Stores `endpoint` for `device` of `user`: new, or replacing `user`'s own
/// subscription of it (a browser re-subscribing, possibly for another of the
/// user's devices). Never takes another account's endpoint over.
pub async fn upsert(
    tx: &mut WriteTx,
    user: Uuid,
    device: Uuid,
    endpoint: &str,
    p256dh: &str,
    auth: &str,
    now: i64,
) -> ApiResult<Upsert> {
    let active = q!(
        tx,
        optional,
        r#"SELECT id AS "id: Id" FROM devices WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL"#,
        Id(device),
        Id(user)
        => |r| r.id
    );
    if active.is_none() {
        return Ok(Upsert::NoSuchDevice);
    }
    let n = q!(
        tx,
        execute,
        "INSERT INTO push_subscriptions (endpoint, user_id, device_id, p256dh, auth, created_at, failures, failed_at)
         VALUES ($1, $2, $3, $4, $5, $6, 0, NULL)
         ON CONFLICT (endpoint) DO UPDATE SET device_id = excluded.device_id,
           p256dh = excluded.p256dh, auth = excluded.auth, created_at = excluded.created_at,
           failures = 0, failed_at = NULL
         WHERE push_subscriptions.user_id = excluded.user_id",
        endpoint,
        Id(user),
        Id(device),
        p256dh,
        auth,
        Millis(now)
    );
    Ok(if n == 1 {
        Upsert::Stored
    } else {
        Upsert::Taken
    })
}

/// Removes `user`'s subscription of `endpoint`; whether there was one.
pub async fn delete_own(w: Writer<'_>, user: Uuid, endpoint: &str) -> ApiResult<bool> {
    Ok(q!(
        w,
        execute,
        "DELETE FROM push_subscriptions WHERE endpoint = $1 AND user_id = $2",
        endpoint,
        Id(user)
    ) == 1)
}

/// Removes a subscription the push service says is gone (404/410).
pub async fn delete(w: Writer<'_>, endpoint: &str) -> ApiResult<()> {
    q!(
        w,
        execute,
        "DELETE FROM push_subscriptions WHERE endpoint = $1",
        endpoint
    );
    Ok(())
}

/// Records a failed push: one more failure in a row; the subscription is
/// deleted when that makes `max` (whether it was).
pub async fn record_failure(w: Writer<'_>, endpoint: &str, now: i64, max: i64) -> ApiResult<bool> {
    q!(
        w,
        execute,
        "UPDATE push_subscriptions SET failures = failures + 1, failed_at = $2 WHERE endpoint = $1",
        endpoint,
        Millis(now)
    );
    Ok(q!(
        w,
        execute,
        "DELETE FROM push_subscriptions WHERE endpoint = $1 AND failures >= $2",
        endpoint,
        max
    ) > 0)
}

/// Records a push that went through after failures: the circuit closes.
pub async fn record_success(w: Writer<'_>, endpoint: &str) -> ApiResult<()> {
    q!(
        w,
        execute,
        "UPDATE push_subscriptions SET failures = 0, failed_at = NULL WHERE endpoint = $1",
        endpoint
    );
    Ok(())
}

/// The subscriptions of `user`'s active devices.
pub async fn of_user(db: &Db, user: Uuid) -> ApiResult<Vec<Subscription>> {
    Ok(q!(
        db,
        all,
        r#"SELECT s.endpoint, s.user_id AS "user_id: Id", s.p256dh, s.auth, s.failures,
           s.failed_at AS "failed_at: Millis" FROM push_subscriptions s
           JOIN devices d ON d.id = s.device_id WHERE s.user_id = $1 AND d.revoked_at IS NULL"#,
        Id(user)
        => |r| Subscription { endpoint: r.endpoint, user_id: r.user_id.0, p256dh: r.p256dh, auth: r.auth,
            failures: r.failures, failed_at: r.failed_at.map(|m| m.0) }
    ))
}

/// The subscriptions of the active devices of `room`'s members.
pub async fn of_room(db: &Db, room: Uuid) -> ApiResult<Vec<Subscription>> {
    Ok(q!(
        db,
        all,
        r#"SELECT s.endpoint, s.user_id AS "user_id: Id", s.p256dh, s.auth, s.failures,
           s.failed_at AS "failed_at: Millis" FROM room_members m
           JOIN push_subscriptions s ON s.user_id = m.user_id JOIN devices d ON d.id = s.device_id
           WHERE m.room_id = $1 AND d.revoked_at IS NULL"#,
        Id(room)
        => |r| Subscription { endpoint: r.endpoint, user_id: r.user_id.0, p256dh: r.p256dh, auth: r.auth,
            failures: r.failures, failed_at: r.failed_at.map(|m| m.0) }
    ))
}
