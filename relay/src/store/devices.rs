//! Devices and their public bundles, and each user's pinned identity key.

use sotto_core::api::devices::Device;
use sotto_core::keys::DeviceBundle;
use uuid::Uuid;

use super::{Conn, Id, Millis, q};
use crate::db::{Db, WriteTx, rfc3339};
use crate::error::{ApiError, ApiResult};

/// A device as the API shows it, from its stored columns.
fn device(
    id: Id,
    user_id: Id,
    display_name: Option<String>,
    bundle: &str,
    created_at: Millis,
    updated_at: Millis,
    revoked_at: Option<Millis>,
) -> ApiResult<Device> {
    let bundle: DeviceBundle = serde_json::from_str(bundle)
        .map_err(|e| ApiError::internal(format!("stored bundle of {}: {e}", id.0)))?;
    Ok(Device {
        device_id: id.0,
        user_id: user_id.0,
        display_name,
        bundle,
        created_at: rfc3339(created_at.0),
        updated_at: rfc3339(updated_at.0),
        revoked_at: revoked_at.map(|t| rfc3339(t.0)),
    })
}

/// A device from a record with the device columns (`id, user_id,
/// display_name, bundle, created_at, updated_at, revoked_at`).
macro_rules! device_row {
    ($r:expr) => {{
        let r = $r;
        device(
            r.id,
            r.user_id,
            r.display_name,
            &r.bundle,
            r.created_at,
            r.updated_at,
            r.revoked_at,
        )
    }};
}

/// The identity key on record for `user` (base64url), recording `identity` if
/// there is none yet. Locks the user's identity row (PostgreSQL) for the rest of
/// the transaction, so a concurrent upload cannot slip a device signed by an
/// identity being replaced past a revocation.
pub async fn pin_identity(
    tx: &mut WriteTx,
    user: Uuid,
    identity: &str,
    now: i64,
) -> ApiResult<String> {
    Ok(q!(
        tx,
        one,
        "INSERT INTO identities (user_id, identity_key, created_at, updated_at) VALUES ($1, $2, $3, $3)
         ON CONFLICT (user_id) DO UPDATE SET updated_at = identities.updated_at RETURNING identity_key",
        Id(user),
        identity,
        Millis(now)
        => |r| r.identity_key
    ))
}

/// Replaces `user`'s identity key and revokes the devices signed by another one
/// (kept, flagged, for verifying old messages).
pub async fn replace_identity(
    tx: &mut WriteTx,
    user: Uuid,
    identity: &str,
    now: i64,
) -> ApiResult<()> {
    q!(
        tx,
        execute,
        "UPDATE identities SET identity_key = $1, updated_at = $2 WHERE user_id = $3",
        identity,
        Millis(now),
        Id(user)
    );
    q!(
        tx,
        execute,
        "UPDATE devices SET revoked_at = $1 WHERE user_id = $2 AND identity_key <> $3 AND revoked_at IS NULL",
        Millis(now),
        Id(user),
        identity
    );
    Ok(())
}

/// The owner of device `id` and whether it is revoked, if it exists.
pub async fn owner_of(tx: &mut WriteTx, id: Uuid) -> ApiResult<Option<(Uuid, bool)>> {
    Ok(q!(
        tx,
        optional,
        r#"SELECT user_id AS "user_id: Id", revoked_at AS "revoked_at: Millis" FROM devices WHERE id = $1"#,
        Id(id)
        => |r| (r.user_id.0, r.revoked_at.is_some())
    ))
}

/// A device's stored fields.
pub struct DeviceWrite<'a> {
    pub id: Uuid,
    pub user: Uuid,
    pub display_name: Option<&'a str>,
    /// The identity key that signed the bundle (base64url).
    pub identity: &'a str,
    /// The bundle as JSON.
    pub bundle_json: &'a str,
    pub now: i64,
}

/// Replaces an existing device's bundle and name.
pub async fn update(tx: &mut WriteTx, d: &DeviceWrite<'_>) -> ApiResult<()> {
    q!(
        tx,
        execute,
        "UPDATE devices SET display_name = $1, identity_key = $2, bundle = $3, updated_at = $4 WHERE id = $5",
        d.display_name,
        d.identity,
        d.bundle_json,
        Millis(d.now),
        Id(d.id)
    );
    Ok(())
}

/// How many active devices `user` has.
pub async fn count_active(tx: &mut WriteTx, user: Uuid) -> ApiResult<i64> {
    Ok(q!(
        tx,
        one,
        r#"SELECT COUNT(*) AS "n!: i64" FROM devices WHERE user_id = $1 AND revoked_at IS NULL"#,
        Id(user)
        => |r| r.n
    ))
}

/// Registers a new device.
pub async fn insert(tx: &mut WriteTx, d: &DeviceWrite<'_>) -> ApiResult<()> {
    q!(
        tx,
        execute,
        "INSERT INTO devices (id, user_id, display_name, identity_key, bundle, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6)",
        Id(d.id),
        Id(d.user),
        d.display_name,
        d.identity,
        d.bundle_json,
        Millis(d.now)
    );
    Ok(())
}

/// Device `id` as stored (within the transaction that wrote it).
pub async fn get(tx: &mut WriteTx, id: Uuid) -> ApiResult<Device> {
    q!(
        tx,
        one,
        r#"SELECT id AS "id: Id", user_id AS "user_id: Id", display_name, bundle,
           created_at AS "created_at: Millis", updated_at AS "updated_at: Millis",
           revoked_at AS "revoked_at: Millis" FROM devices WHERE id = $1"#,
        Id(id)
        => |r| device_row!(r)
    )
}

/// The devices of `users` (active ones, or all with `include_revoked`), by
/// user, then age.
pub async fn of_users(db: &Db, users: &[Uuid], include_revoked: bool) -> ApiResult<Vec<Device>> {
    if users.is_empty() {
        return Ok(Vec::new());
    }
    let mut held = db.hold().await?;
    let rows = match held.conn() {
        #[cfg(feature = "sqlite")]
        Conn::Sqlite(c) => {
            let list = serde_json::to_string(users).map_err(ApiError::internal)?;
            sqlx::query!(
                r#"SELECT id AS "id: Id", user_id AS "user_id: Id", display_name, bundle,
                   created_at AS "created_at: Millis", updated_at AS "updated_at: Millis",
                   revoked_at AS "revoked_at: Millis" FROM devices
                   WHERE user_id IN (SELECT value FROM json_each($1)) AND ($2 OR revoked_at IS NULL)
                   ORDER BY user_id, created_at, id"#,
                list,
                include_revoked
            )
            .fetch_all(&mut *c)
            .await?
            .into_iter()
            .map(|r| device_row!(r))
            .collect::<Vec<_>>()
        }
        #[cfg(feature = "postgres")]
        Conn::Postgres(c) => sqlx::query!(
            r#"SELECT id AS "id: Id", user_id AS "user_id: Id", display_name, bundle,
               created_at AS "created_at: Millis", updated_at AS "updated_at: Millis",
               revoked_at AS "revoked_at: Millis" FROM devices
               WHERE user_id = ANY($1) AND ($2 OR revoked_at IS NULL)
               ORDER BY user_id, created_at, id"#,
            users,
            include_revoked
        )
        .fetch_all(&mut *c)
        .await?
        .into_iter()
        .map(|r| device_row!(r))
        .collect::<Vec<_>>(),
    };
    rows.into_iter().collect()
}

/// Revokes `user`'s device `id` and ends the sessions that uploaded its
/// bundle; `false` if there is no such active device.
pub async fn revoke(tx: &mut WriteTx, user: Uuid, id: Uuid, now: i64) -> ApiResult<bool> {
    let n = q!(
        tx,
        execute,
        "UPDATE devices SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL",
        Millis(now),
        Id(id),
        Id(user)
    );
    if n != 1 {
        return Ok(false);
    }
    q!(
        tx,
        execute,
        "UPDATE sessions SET revoked_at = $1 WHERE revoked_at IS NULL
         AND id IN (SELECT session_id FROM device_sessions WHERE device_id = $2)",
        Millis(now),
        Id(id)
    );
    Ok(true)
}

/// Records that `session` uploaded device `id`'s bundle (revoking the device
/// ends it).
pub async fn record_session(tx: &mut WriteTx, id: Uuid, session: Uuid) -> ApiResult<()> {
    q!(
        tx,
        execute,
        "INSERT INTO device_sessions (device_id, session_id) SELECT $1, $2
         WHERE EXISTS (SELECT 1 FROM sessions WHERE id = $2) ON CONFLICT (device_id, session_id) DO NOTHING",
        Id(id),
        Id(session)
    );
    Ok(())
}

/// Ends the sessions that uploaded `user`'s revoked devices, but `keep` (after
/// an identity replacement revoked them).
pub async fn end_sessions_of_revoked(
    tx: &mut WriteTx,
    user: Uuid,
    keep: Uuid,
    now: i64,
) -> ApiResult<()> {
    q!(
        tx,
        execute,
        "UPDATE sessions SET revoked_at = $1 WHERE revoked_at IS NULL AND id <> $3
         AND id IN (SELECT s.session_id FROM device_sessions s JOIN devices d ON d.id = s.device_id
                    WHERE d.user_id = $2 AND d.revoked_at IS NOT NULL)",
        Millis(now),
        Id(user),
        Id(keep)
    );
    Ok(())
}

/// Which of `users` share a room or a contact (either direction) with `me`.
pub async fn related_users(db: &Db, me: Uuid, users: &[Uuid]) -> ApiResult<Vec<Uuid>> {
    if users.is_empty() {
        return Ok(Vec::new());
    }
    let mut held = db.hold().await?;
    Ok(match held.conn() {
        #[cfg(feature = "sqlite")]
        Conn::Sqlite(c) => {
            let list = serde_json::to_string(users).map_err(ApiError::internal)?;
            sqlx::query_scalar!(
                r#"SELECT m2.user_id AS "id!: Id" FROM room_members m1 JOIN room_members m2 ON m2.room_id = m1.room_id
                   WHERE m1.user_id = $1 AND m2.user_id IN (SELECT value FROM json_each($2))
                 UNION SELECT contact_id FROM contacts WHERE owner_id = $1 AND contact_id IN (SELECT value FROM json_each($2))
                 UNION SELECT owner_id FROM contacts WHERE contact_id = $1 AND owner_id IN (SELECT value FROM json_each($2))"#,
                Id(me),
                list
            )
            .fetch_all(&mut *c)
            .await?
        }
        #[cfg(feature = "postgres")]
        Conn::Postgres(c) => {
            sqlx::query_scalar!(
                r#"SELECT m2.user_id AS "id!: Id" FROM room_members m1 JOIN room_members m2 ON m2.room_id = m1.room_id
                   WHERE m1.user_id = $1 AND m2.user_id = ANY($2)
                 UNION SELECT contact_id FROM contacts WHERE owner_id = $1 AND contact_id = ANY($2)
                 UNION SELECT owner_id FROM contacts WHERE contact_id = $1 AND owner_id = ANY($2)"#,
                Id(me),
                users
            )
            .fetch_all(&mut *c)
            .await?
        }
    }
    .into_iter()
    .map(Uuid::from)
    .collect())
}
