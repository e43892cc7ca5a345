//! Devices and their public bundles, and each user's pinned identity key.

use sotto_core::api::devices::Device;
use sotto_core::keys::DeviceBundle;
use uuid::Uuid;

use super::Writer;
use crate::db::{Db, WriteTx, rfc3339};
use crate::error::{ApiError, ApiResult};
use crate::ids::{parse_id, parse_stored_id};

const DEVICE_COLUMNS: &str =
    "id, user_id, display_name, bundle, created_at, updated_at, revoked_at";

#[derive(sqlx::FromRow)]
struct DeviceRow {
    id: String,
    user_id: String,
    display_name: Option<String>,
    bundle: String,
    created_at: i64,
    updated_at: i64,
    revoked_at: Option<i64>,
}

impl DeviceRow {
    fn to_api(&self) -> ApiResult<Device> {
        let bundle: DeviceBundle = serde_json::from_str(&self.bundle)
            .map_err(|e| ApiError::internal(format!("stored bundle of {}: {e}", self.id)))?;
        Ok(Device {
            device_id: parse_id(&self.id)?,
            user_id: parse_id(&self.user_id)?,
            display_name: self.display_name.clone(),
            bundle,
            created_at: rfc3339(self.created_at),
            updated_at: rfc3339(self.updated_at),
            revoked_at: self.revoked_at.map(rfc3339),
        })
    }
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
    Ok(sqlx::query_scalar(
        "INSERT INTO identities (user_id, identity_key, created_at, updated_at) VALUES ($1, $2, $3, $3) \
         ON CONFLICT (user_id) DO UPDATE SET updated_at = identities.updated_at RETURNING identity_key",
    )
    .bind(user.to_string())
    .bind(identity)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?)
}

/// Replaces `user`'s identity key and revokes the devices signed by another one
/// (kept, flagged, for verifying old messages).
pub async fn replace_identity(
    tx: &mut WriteTx,
    user: Uuid,
    identity: &str,
    now: i64,
) -> ApiResult<()> {
    sqlx::query("UPDATE identities SET identity_key = $1, updated_at = $2 WHERE user_id = $3")
        .bind(identity)
        .bind(now)
        .bind(user.to_string())
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "UPDATE devices SET revoked_at = $1 WHERE user_id = $2 AND identity_key <> $3 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(user.to_string())
    .bind(identity)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The owner of device `id` and whether it is revoked, if it exists.
pub async fn owner_of(tx: &mut WriteTx, id: Uuid) -> ApiResult<Option<(Uuid, bool)>> {
    let row: Option<(String, Option<i64>)> =
        sqlx::query_as("SELECT user_id, revoked_at FROM devices WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&mut **tx)
            .await?;
    row.map(|(owner, revoked)| {
        Ok((
            parse_stored_id("devices.user_id", &owner)?,
            revoked.is_some(),
        ))
    })
    .transpose()
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
    sqlx::query(
        "UPDATE devices SET display_name = $1, identity_key = $2, bundle = $3, updated_at = $4 WHERE id = $5",
    )
    .bind(d.display_name)
    .bind(d.identity)
    .bind(d.bundle_json)
    .bind(d.now)
    .bind(d.id.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// How many active devices `user` has.
pub async fn count_active(tx: &mut WriteTx, user: Uuid) -> ApiResult<i64> {
    Ok(
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM devices WHERE user_id = $1 AND revoked_at IS NULL",
        )
        .bind(user.to_string())
        .fetch_one(&mut **tx)
        .await?,
    )
}

/// Registers a new device.
pub async fn insert(tx: &mut WriteTx, d: &DeviceWrite<'_>) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO devices (id, user_id, display_name, identity_key, bundle, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6)",
    )
    .bind(d.id.to_string())
    .bind(d.user.to_string())
    .bind(d.display_name)
    .bind(d.identity)
    .bind(d.bundle_json)
    .bind(d.now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Device `id` as stored (within the transaction that wrote it).
pub async fn get(tx: &mut WriteTx, id: Uuid) -> ApiResult<Device> {
    sqlx::query_as::<_, DeviceRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {DEVICE_COLUMNS} FROM devices WHERE id = $1"
    )))
    .bind(id.to_string())
    .fetch_one(&mut **tx)
    .await?
    .to_api()
}

/// The devices of `users` (active ones, or all with `include_revoked`), by
/// user, then age.
pub async fn of_users(db: &Db, users: &[Uuid], include_revoked: bool) -> ApiResult<Vec<Device>> {
    if users.is_empty() {
        return Ok(Vec::new());
    }
    let active = if include_revoked {
        ""
    } else {
        "AND revoked_at IS NULL"
    };
    let sql = format!(
        "SELECT {DEVICE_COLUMNS} FROM devices WHERE user_id IN ({}) {active} ORDER BY user_id, created_at, id",
        Db::placeholders(1, users.len())
    );
    let mut q = sqlx::query_as::<_, DeviceRow>(sqlx::AssertSqlSafe(sql));
    for u in users {
        q = q.bind(u.to_string());
    }
    q.fetch_all(db.read())
        .await?
        .iter()
        .map(DeviceRow::to_api)
        .collect()
}

/// Revokes `user`'s device `id`; `false` if there is no such active device.
pub async fn revoke(w: Writer<'_>, user: Uuid, id: Uuid, now: i64) -> ApiResult<bool> {
    Ok(sqlx::query(
        "UPDATE devices SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(id.to_string())
    .bind(user.to_string())
    .execute(w.pool())
    .await?
    .rows_affected()
        == 1)
}

/// Which of `users` share a room or a contact (either direction) with `me`.
pub async fn related_users(db: &Db, me: Uuid, users: &[Uuid]) -> ApiResult<Vec<Uuid>> {
    if users.is_empty() {
        return Ok(Vec::new());
    }
    let list = Db::placeholders(2, users.len());
    let sql = format!(
        "SELECT m2.user_id FROM room_members m1 JOIN room_members m2 ON m2.room_id = m1.room_id \
           WHERE m1.user_id = $1 AND m2.user_id IN ({list}) \
         UNION SELECT contact_id FROM contacts WHERE owner_id = $1 AND contact_id IN ({list}) \
         UNION SELECT owner_id FROM contacts WHERE contact_id = $1 AND owner_id IN ({list})"
    );
    let mut q = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql)).bind(me.to_string());
    for u in users {
        q = q.bind(u.to_string());
    }
    q.fetch_all(db.read())
        .await?
        .iter()
        .map(|s| parse_stored_id("users.id", s))
        .collect()
}
