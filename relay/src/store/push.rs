//! Web Push subscriptions: one row per push endpoint, tied to a device.

use uuid::Uuid;

use super::{Id, Millis, Writer, q};
use crate::db::Db;
use crate::error::ApiResult;

/// A stored subscription, as a push is sent to it.
#[derive(Clone)]
pub struct Subscription {
    pub endpoint: String,
    pub user_id: Uuid,
    pub p256dh: String,
    pub auth: String,
}

/// Stores `endpoint` for `device` of `user`, replacing any earlier subscription
/// of that endpoint (a browser re-subscribing, possibly for another device or
/// user of the same browser profile); false (nothing stored) unless `device` is
/// an active device of `user`.
pub async fn upsert(
    w: Writer<'_>,
    user: Uuid,
    device: Uuid,
    endpoint: &str,
    p256dh: &str,
    auth: &str,
    now: i64,
) -> ApiResult<bool> {
    Ok(q!(
        w,
        execute,
        "INSERT INTO push_subscriptions (endpoint, user_id, device_id, p256dh, auth, created_at)
         SELECT $1, $2, $3, $4, $5, $6 FROM devices WHERE id = $3 AND user_id = $2 AND revoked_at IS NULL
         ON CONFLICT (endpoint) DO UPDATE SET user_id = excluded.user_id, device_id = excluded.device_id,
           p256dh = excluded.p256dh, auth = excluded.auth, created_at = excluded.created_at",
        endpoint,
        Id(user),
        Id(device),
        p256dh,
        auth,
        Millis(now)
    ) == 1)
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

/// The subscriptions of `user`'s active devices.
pub async fn of_user(db: &Db, user: Uuid) -> ApiResult<Vec<Subscription>> {
    Ok(q!(
        db,
        all,
        r#"SELECT s.endpoint, s.user_id AS "user_id: Id", s.p256dh, s.auth FROM push_subscriptions s
           JOIN devices d ON d.id = s.device_id WHERE s.user_id = $1 AND d.revoked_at IS NULL"#,
        Id(user)
        => |r| Subscription { endpoint: r.endpoint, user_id: r.user_id.0, p256dh: r.p256dh, auth: r.auth }
    ))
}

/// The subscriptions of the active devices of `room`'s members.
pub async fn of_room(db: &Db, room: Uuid) -> ApiResult<Vec<Subscription>> {
    Ok(q!(
        db,
        all,
        r#"SELECT s.endpoint, s.user_id AS "user_id: Id", s.p256dh, s.auth FROM room_members m
           JOIN push_subscriptions s ON s.user_id = m.user_id JOIN devices d ON d.id = s.device_id
           WHERE m.room_id = $1 AND d.revoked_at IS NULL"#,
        Id(room)
        => |r| Subscription { endpoint: r.endpoint, user_id: r.user_id.0, p256dh: r.p256dh, auth: r.auth }
    ))
}
