//! Rooms and their members.

use sotto_core::api::pagination::Page;
use sotto_core::api::rooms::{Room, RoomDetails, RoomKind, RoomMember};
use uuid::Uuid;

use super::Writer;
use crate::db::{Db, WriteTx, rfc3339};
use crate::error::{ApiError, ApiResult};
use crate::ids::parse_id;
use crate::membership::not_a_member;

const ROOM_SELECT: &str = "SELECT r.id, r.kind, r.name, r.owner_id, r.last_seq, r.created_at, r.updated_at, \
    (SELECT COUNT(*) FROM messages x WHERE x.room_id = r.id AND x.seq > m.read_seq \
       AND x.sender_id <> m.user_id AND x.deleted_at IS NULL) AS unread \
    FROM room_members m JOIN rooms r ON r.id = m.room_id";

#[derive(sqlx::FromRow)]
struct RoomRow {
    id: String,
    kind: String,
    name: String,
    owner_id: String,
    last_seq: i64,
    created_at: i64,
    updated_at: i64,
    unread: i64,
}

impl RoomRow {
    fn to_api(&self) -> ApiResult<Room> {
        Ok(Room {
            id: parse_id(&self.id)?,
            name: self.name.clone(),
            kind: match self.kind.as_str() {
                "direct" => RoomKind::Direct,
                "group" => RoomKind::Group,
                other => {
                    return Err(ApiError::internal(crate::db::corrupt("rooms.kind", &other)));
                }
            },
            owner_id: parse_id(&self.owner_id)?,
            created_at: rfc3339(self.created_at),
            updated_at: rfc3339(self.updated_at),
            unread: crate::db::u64_of("unread", self.unread)?,
            last_seq: crate::db::u64_of("last_seq", self.last_seq)?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct MemberRow {
    user_id: String,
    username: String,
    display_name: Option<String>,
    joined_at: i64,
}

pub async fn members(db: &Db, room: Uuid, owner: &str) -> ApiResult<Vec<RoomMember>> {
    let rows = sqlx::query_as::<_, MemberRow>(
        "SELECT m.user_id, u.username, u.display_name, m.joined_at FROM room_members m \
         JOIN users u ON u.id = m.user_id WHERE m.room_id = $1 ORDER BY m.joined_at, u.username",
    )
    .bind(room.to_string())
    .fetch_all(db.read())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(RoomMember {
                user_id: parse_id(&r.user_id)?,
                username: r.username.clone(),
                display_name: r.display_name.clone(),
                is_owner: r.user_id == owner,
                joined_at: rfc3339(r.joined_at),
            })
        })
        .collect()
}

/// The room as `viewer` (a member) sees it, with its members; 404 otherwise.
pub async fn details(db: &Db, room: Uuid, viewer: Uuid) -> ApiResult<RoomDetails> {
    let row = sqlx::query_as::<_, RoomRow>(sqlx::AssertSqlSafe(format!(
        "{ROOM_SELECT} WHERE m.user_id = $1 AND r.id = $2"
    )))
    .bind(viewer.to_string())
    .bind(room.to_string())
    .fetch_optional(db.read())
    .await?
    .ok_or_else(not_a_member)?;
    let members = members(db, room, &row.owner_id).await?;
    Ok(RoomDetails {
        room: row.to_api()?,
        members,
    })
}

/// Adds `user` to `room` inside `tx`, joining at the room's current `seq` (no
/// earlier history, nothing unread). False when they already are a member.
pub async fn insert_member(tx: &mut WriteTx, room: Uuid, user: Uuid, now: i64) -> ApiResult<bool> {
    let added = sqlx::query(
        "INSERT INTO room_members (room_id, user_id, joined_at, joined_seq, delivered_seq, delivered_at, read_seq, read_at) \
         SELECT r.id, $2, $3, r.last_seq, r.last_seq, $3, r.last_seq, $3 FROM rooms r WHERE r.id = $1 \
         ON CONFLICT (room_id, user_id) DO NOTHING",
    )
    .bind(room.to_string())
    .bind(user.to_string())
    .bind(now)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(added > 0)
}

/// Whether `id` is a user others may add: an account with a verified address
/// (the same set search finds). Anyone else is answered like an unknown id.
pub async fn addable_user(db: &Db, id: Uuid) -> ApiResult<bool> {
    Ok(existing_users(db, &[id]).await? == 1)
}

pub async fn existing_users(db: &Db, ids: &[Uuid]) -> ApiResult<usize> {
    if ids.is_empty() {
        return Ok(0);
    }
    let sql = format!(
        "SELECT COUNT(*) FROM users WHERE email_verified = 1 AND id IN ({})",
        Db::placeholders(1, ids.len())
    );
    let mut q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql));
    for id in ids {
        q = q.bind(id.to_string());
    }
    let n = crate::db::u64_of("count", q.fetch_one(db.read()).await?)?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// Locks the room's row for the rest of the transaction (PostgreSQL; SQLite
/// has one writer anyway), stamps `updated_at` and bumps `member_epoch`, so
/// membership changes of one room serialize and a post racing one notices (it
/// re-checks the epoch under the same row lock). 404 when the room is gone.
pub async fn lock_room(tx: &mut WriteTx, room: Uuid, now: i64) -> ApiResult<()> {
    let n = sqlx::query(
        "UPDATE rooms SET updated_at = $1, member_epoch = member_epoch + 1 WHERE id = $2",
    )
    .bind(now)
    .bind(room.to_string())
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if n == 0 {
        return Err(not_a_member());
    }
    Ok(())
}

/// After a user is deleted (inside that transaction): their rooms pass to the
/// longest-standing remaining member, and rooms with no members left are
/// deleted. Returns the attachment files to remove after the commit.
pub async fn hand_over_rooms(tx: &mut WriteTx, user: Uuid) -> ApiResult<Vec<Uuid>> {
    let uid = user.to_string();
    sqlx::query(
        "UPDATE rooms SET owner_id = (SELECT m.user_id FROM room_members m WHERE m.room_id = rooms.id \
           ORDER BY m.joined_at, m.user_id LIMIT 1) \
         WHERE owner_id = $1 AND EXISTS (SELECT 1 FROM room_members m WHERE m.room_id = rooms.id)",
    )
    .bind(&uid)
    .execute(&mut **tx)
    .await?;
    let files: Vec<String> = sqlx::query_scalar(
        "SELECT a.id FROM attachments a JOIN rooms r ON r.id = a.room_id \
         WHERE a.data IS NULL AND NOT EXISTS (SELECT 1 FROM room_members m WHERE m.room_id = r.id)",
    )
    .fetch_all(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM rooms WHERE NOT EXISTS (SELECT 1 FROM room_members m WHERE m.room_id = rooms.id)")
        .execute(&mut **tx)
        .await?;
    files
        .iter()
        .map(|s| crate::ids::parse_stored_id("attachments.id", s))
        .collect()
}

/// Creates group room `id` owned by `owner`.
pub async fn create_group(
    tx: &mut WriteTx,
    id: Uuid,
    name: &str,
    owner: Uuid,
    now: i64,
) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO rooms (id, kind, name, owner_id, direct_key, last_seq, created_at, updated_at) \
         VALUES ($1, 'group', $2, $3, NULL, 0, $4, $4)",
    )
    .bind(id.to_string())
    .bind(name)
    .bind(owner.to_string())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Creates direct room `id` for the pair `key` unless it exists; whether it did.
pub async fn create_direct(
    tx: &mut WriteTx,
    id: Uuid,
    creator: Uuid,
    key: &str,
    now: i64,
) -> ApiResult<bool> {
    Ok(sqlx::query(
        "INSERT INTO rooms (id, kind, name, owner_id, direct_key, last_seq, created_at, updated_at) \
         VALUES ($1, 'direct', '', $2, $3, 0, $4, $4) ON CONFLICT (direct_key) DO NOTHING",
    )
    .bind(id.to_string())
    .bind(creator.to_string())
    .bind(key)
    .bind(now)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        > 0)
}

/// The direct room of the pair `key`.
pub async fn direct_room(tx: &mut WriteTx, key: &str) -> ApiResult<Uuid> {
    let room: String = sqlx::query_scalar("SELECT id FROM rooms WHERE direct_key = $1")
        .bind(key)
        .fetch_one(&mut **tx)
        .await?;
    parse_id(&room)
}

/// A page of `user`'s rooms after the cursor `after` (a room id, or empty).
pub async fn page_of_member(db: &Db, user: Uuid, after: &str, limit: u32) -> ApiResult<Page<Room>> {
    let rows = sqlx::query_as::<_, RoomRow>(sqlx::AssertSqlSafe(format!(
        "{ROOM_SELECT} WHERE m.user_id = $1 AND r.id > $2 ORDER BY r.id LIMIT $3"
    )))
    .bind(user.to_string())
    .bind(after)
    .bind(i64::from(limit) + 1)
    .fetch_all(db.read())
    .await?;
    crate::pagination::try_page_of(rows, limit, |r| r.id.clone(), RoomRow::to_api)
}

/// Renames room `id`.
pub async fn rename(w: Writer<'_>, id: Uuid, name: &str, now: i64) -> ApiResult<()> {
    sqlx::query("UPDATE rooms SET name = $1, updated_at = $2 WHERE id = $3")
        .bind(name)
        .bind(now)
        .bind(id.to_string())
        .execute(w.pool())
        .await?;
    Ok(())
}

/// Deletes room `id` (its members, messages and attachment rows cascade).
pub async fn delete(w: Writer<'_>, id: Uuid) -> ApiResult<()> {
    sqlx::query("DELETE FROM rooms WHERE id = $1")
        .bind(id.to_string())
        .execute(w.pool())
        .await?;
    Ok(())
}

/// Deletes room `id` within `tx`.
pub async fn delete_in(tx: &mut WriteTx, id: Uuid) -> ApiResult<()> {
    sqlx::query("DELETE FROM rooms WHERE id = $1")
        .bind(id.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// How many members `room` has.
pub async fn member_count(tx: &mut WriteTx, room: Uuid) -> ApiResult<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM room_members WHERE room_id = $1")
            .bind(room.to_string())
            .fetch_one(&mut **tx)
            .await?,
    )
}

/// Removes `user` from `room`; whether they were a member.
pub async fn remove_member(tx: &mut WriteTx, room: Uuid, user: Uuid) -> ApiResult<bool> {
    Ok(
        sqlx::query("DELETE FROM room_members WHERE room_id = $1 AND user_id = $2")
            .bind(room.to_string())
            .bind(user.to_string())
            .execute(&mut **tx)
            .await?
            .rows_affected()
            > 0,
    )
}

/// If `left` owned `room`, its longest-standing remaining member becomes owner.
pub async fn pass_ownership(tx: &mut WriteTx, room: Uuid, left: Uuid) -> ApiResult<()> {
    sqlx::query(
        "UPDATE rooms SET owner_id = CASE WHEN owner_id = $1 THEN \
           (SELECT user_id FROM room_members WHERE room_id = $2 ORDER BY joined_at, user_id LIMIT 1) \
         ELSE owner_id END WHERE id = $2",
    )
    .bind(left.to_string())
    .bind(room.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
