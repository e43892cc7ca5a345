//! Rooms and their members.

use sotto_core::api::pagination::Page;
use sotto_core::api::rooms::{Room, RoomDetails, RoomKind, RoomMember};
use uuid::Uuid;

use super::membership::not_a_member;
pub(crate) use super::parse_kind;
use super::{Conn, Id, Millis, Writer, q};
use crate::db::{Db, ReadTx, WriteTx, rfc3339, u64_of};
use crate::error::{ApiError, ApiResult};

/// A `rooms` row as its member sees it.
struct RoomRow {
    id: Uuid,
    kind: String,
    name: String,
    owner_id: Uuid,
    last_seq: i64,
    created_at: i64,
    updated_at: i64,
    unread: i64,
    member_epoch: i64,
}

/// Builds a [`RoomRow`] from a record with its columns.
macro_rules! room_row {
    ($r:expr) => {{
        let r = $r;
        RoomRow {
            id: r.id.0,
            kind: r.kind,
            name: r.name,
            owner_id: r.owner_id.0,
            last_seq: r.last_seq,
            created_at: r.created_at.0,
            updated_at: r.updated_at.0,
            unread: r.unread,
            member_epoch: r.member_epoch,
        }
    }};
}

impl RoomRow {
    fn to_api(&self) -> ApiResult<Room> {
        Ok(Room {
            id: self.id,
            name: self.name.clone(),
            kind: parse_kind(&self.kind)?,
            owner_id: self.owner_id,
            created_at: rfc3339(self.created_at),
            updated_at: rfc3339(self.updated_at),
            unread: u64_of("unread", self.unread)?,
            last_seq: u64_of("last_seq", self.last_seq)?,
            member_epoch: u64_of("member_epoch", self.member_epoch)?,
        })
    }
}

pub async fn members(tx: &mut ReadTx, room: Uuid, owner: Uuid) -> ApiResult<Vec<RoomMember>> {
    Ok(q!(
        tx,
        all,
        r#"SELECT m.user_id AS "user_id: Id", u.username, u.display_name, m.joined_at AS "joined_at: Millis"
           FROM room_members m JOIN users u ON u.id = m.user_id
           WHERE m.room_id = $1 ORDER BY m.joined_at, u.username"#,
        Id(room)
        => |r| RoomMember {
            user_id: r.user_id.0,
            username: r.username,
            display_name: r.display_name,
            is_owner: r.user_id.0 == owner,
            joined_at: rfc3339(r.joined_at.0),
        }
    ))
}

/// `user`'s membership of `room` as written in `tx` (the answer to adding
/// them: read before the commit, so a removal right after it cannot make the
/// answer fail).
pub async fn member_in(
    tx: &mut WriteTx,
    room: Uuid,
    user: Uuid,
    owner: Uuid,
) -> ApiResult<Option<RoomMember>> {
    Ok(q!(
        tx,
        optional,
        r#"SELECT m.user_id AS "user_id: Id", u.username, u.display_name, m.joined_at AS "joined_at: Millis"
           FROM room_members m JOIN users u ON u.id = m.user_id
           WHERE m.room_id = $1 AND m.user_id = $2"#,
        Id(room),
        Id(user)
        => |r| RoomMember {
            user_id: r.user_id.0,
            username: r.username,
            display_name: r.display_name,
            is_owner: r.user_id.0 == owner,
            joined_at: rfc3339(r.joined_at.0),
        }
    ))
}

/// The room as `viewer` (a member) sees it, with its members; 404 otherwise.
/// One snapshot: its `member_epoch`, members and invitees agree (a client
/// signs membership statements from them: a view torn across someone's
/// acceptance would show them nowhere, and the owner would sign them out).
pub async fn details(db: &Db, room: Uuid, viewer: Uuid) -> ApiResult<RoomDetails> {
    let mut tx = db.begin_read().await?;
    let row = q!(
        tx,
        optional,
        r#"SELECT r.id AS "id: Id", r.kind, r.name, r.owner_id AS "owner_id: Id", r.last_seq,
           r.created_at AS "created_at: Millis", r.updated_at AS "updated_at: Millis",
           r.member_epoch AS "member_epoch!: i64",
           (SELECT COUNT(*) FROM messages x WHERE x.room_id = r.id AND x.seq > m.read_seq
              AND x.sender_id <> m.user_id AND x.deleted_at IS NULL) AS "unread!: i64"
           FROM room_members m JOIN rooms r ON r.id = m.room_id WHERE m.user_id = $1 AND r.id = $2"#,
        Id(viewer),
        Id(room)
        => |r| room_row!(r)
    )
    .ok_or_else(not_a_member)?;
    let members = members(&mut tx, room, row.owner_id).await?;
    let invited = super::invitations::invitees(&mut tx, room).await?;
    tx.end().await?;
    Ok(RoomDetails {
        room: row.to_api()?,
        members,
        invited,
    })
}

/// Adds `user` to `room` inside `tx`, joining at the room's current `seq` (no
/// earlier history, nothing unread). False when they already are a member.
pub async fn insert_member(tx: &mut WriteTx, room: Uuid, user: Uuid, now: i64) -> ApiResult<bool> {
    Ok(q!(
        tx,
        execute,
        "INSERT INTO room_members (room_id, user_id, joined_at, joined_seq, delivered_seq, delivered_at, read_seq, read_at)
         SELECT r.id, $2, $3, r.last_seq, r.last_seq, $3, r.last_seq, $3 FROM rooms r WHERE r.id = $1
         ON CONFLICT (room_id, user_id) DO NOTHING",
        Id(room),
        Id(user),
        Millis(now)
    ) > 0)
}

/// Whether `id` is a user others may add: an account with a verified address
/// (the same set search finds). Anyone else is answered like an unknown id.
pub async fn addable_user(db: &Db, id: Uuid) -> ApiResult<bool> {
    Ok(existing_users(db, &[id]).await? == 1)
}

/// How many of `ids` (distinct) are users others may add (see [`addable_user`]).
pub async fn existing_users(db: &Db, ids: &[Uuid]) -> ApiResult<usize> {
    if ids.is_empty() {
        return Ok(0);
    }
    let mut held = db.hold().await?;
    let n = match held.conn() {
        #[cfg(feature = "sqlite")]
        Conn::Sqlite(c) => {
            let list = serde_json::to_string(ids).map_err(ApiError::internal)?;
            sqlx::query_scalar!(
                r#"SELECT COUNT(*) AS "n!: i64" FROM users WHERE email_verified = TRUE
                   AND id IN (SELECT value FROM json_each($1))"#,
                list
            )
            .fetch_one(&mut *c)
            .await?
        }
        #[cfg(feature = "postgres")]
        Conn::Postgres(c) => {
            sqlx::query_scalar!(
                r#"SELECT COUNT(*) AS "n!: i64" FROM users WHERE email_verified = TRUE AND id = ANY($1)"#,
                ids
            )
            .fetch_one(&mut *c)
            .await?
        }
    };
    let n = u64_of("count", n)?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// Locks the room's row for the rest of the transaction (PostgreSQL; SQLite
/// has one writer anyway), stamps `updated_at` and bumps `member_epoch`, so
/// membership changes of one room serialize and a post racing one notices (it
/// re-checks the epoch under the same row lock). 404 when the room is gone.
pub async fn lock_room(tx: &mut WriteTx, room: Uuid, now: i64) -> ApiResult<()> {
    if !lock_room_if_there(tx, room, now).await? {
        return Err(not_a_member());
    }
    Ok(())
}

/// [`lock_room`] for a room that may have gone meanwhile (a block going
/// through rooms it read a moment before): whether it is there (locked).
pub async fn lock_room_if_there(tx: &mut WriteTx, room: Uuid, now: i64) -> ApiResult<bool> {
    let n = q!(
        tx,
        execute,
        "UPDATE rooms SET updated_at = $1, member_epoch = member_epoch + 1 WHERE id = $2",
        Millis(now),
        Id(room)
    );
    Ok(n > 0)
}

/// After a user is deleted (inside that transaction): their rooms pass to the
/// longest-standing remaining member, and rooms with no members left are
/// deleted. Returns the attachment files to remove after the commit.
pub async fn hand_over_rooms(tx: &mut WriteTx, user: Uuid) -> ApiResult<Vec<Uuid>> {
    q!(
        tx,
        execute,
        "UPDATE rooms SET owner_id = (SELECT m.user_id FROM room_members m WHERE m.room_id = rooms.id
           ORDER BY m.joined_at, m.user_id LIMIT 1)
         WHERE owner_id = $1 AND EXISTS (SELECT 1 FROM room_members m WHERE m.room_id = rooms.id)",
        Id(user)
    );
    let files = q!(
        tx,
        all,
        r#"SELECT a.id AS "id: Id" FROM attachments a JOIN rooms r ON r.id = a.room_id
           WHERE a.data IS NULL AND NOT EXISTS (SELECT 1 FROM room_members m WHERE m.room_id = r.id)"#
        => |r| r.id.0
    );
    q!(
        tx,
        execute,
        "DELETE FROM rooms WHERE NOT EXISTS (SELECT 1 FROM room_members m WHERE m.room_id = rooms.id)"
    );
    Ok(files)
}

/// Creates group room `id` owned by `owner`.
pub async fn create_group(
    tx: &mut WriteTx,
    id: Uuid,
    name: &str,
    owner: Uuid,
    now: i64,
) -> ApiResult<()> {
    q!(
        tx,
        execute,
        "INSERT INTO rooms (id, kind, name, owner_id, direct_key, last_seq, created_at, updated_at)
         VALUES ($1, 'group', $2, $3, NULL, 0, $4, $4)",
        Id(id),
        name,
        Id(owner),
        Millis(now)
    );
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
    Ok(q!(
        tx,
        execute,
        "INSERT INTO rooms (id, kind, name, owner_id, direct_key, last_seq, created_at, updated_at)
         VALUES ($1, 'direct', '', $2, $3, 0, $4, $4) ON CONFLICT (direct_key) DO NOTHING",
        Id(id),
        Id(creator),
        key,
        Millis(now)
    ) > 0)
}

/// The direct room of the pair `key`.
pub async fn direct_room(tx: &mut WriteTx, key: &str) -> ApiResult<Uuid> {
    Ok(q!(
        tx,
        one,
        r#"SELECT id AS "id: Id" FROM rooms WHERE direct_key = $1"#,
        key
        => |r| r.id.0
    ))
}

/// The direct room of the pair `key`, if there is one.
pub async fn find_direct(tx: &mut WriteTx, key: &str) -> ApiResult<Option<Uuid>> {
    Ok(q!(
        tx,
        optional,
        r#"SELECT id AS "id: Id" FROM rooms WHERE direct_key = $1"#,
        key
        => |r| r.id.0
    ))
}

/// Whether `user` is a member of `room` (inside a write transaction).
pub async fn is_member(tx: &mut WriteTx, room: Uuid, user: Uuid) -> ApiResult<bool> {
    Ok(q!(
        tx,
        optional,
        r#"SELECT user_id AS "user_id: Id" FROM room_members WHERE room_id = $1 AND user_id = $2"#,
        Id(room),
        Id(user)
        => |r| r.user_id
    )
    .is_some())
}

/// A room's kind and owner (inside a write transaction); `None` when it is gone.
pub async fn kind_and_owner(tx: &mut WriteTx, room: Uuid) -> ApiResult<Option<(RoomKind, Uuid)>> {
    q!(
        tx,
        optional,
        r#"SELECT kind, owner_id AS "owner_id: Id" FROM rooms WHERE id = $1"#,
        Id(room)
        => |r| parse_kind(&r.kind).map(|k| (k, r.owner_id.0))
    )
    .transpose()
}

/// A page of `user`'s rooms after the room id `after` (nil: from the start).
pub async fn page_of_member(db: &Db, user: Uuid, after: Uuid, limit: u32) -> ApiResult<Page<Room>> {
    let rows = q!(
        db,
        all,
        r#"SELECT r.id AS "id: Id", r.kind, r.name, r.owner_id AS "owner_id: Id", r.last_seq,
           r.created_at AS "created_at: Millis", r.updated_at AS "updated_at: Millis",
           r.member_epoch AS "member_epoch!: i64",
           (SELECT COUNT(*) FROM messages x WHERE x.room_id = r.id AND x.seq > m.read_seq
              AND x.sender_id <> m.user_id AND x.deleted_at IS NULL) AS "unread!: i64"
           FROM room_members m JOIN rooms r ON r.id = m.room_id
           WHERE m.user_id = $1 AND r.id > $2 ORDER BY r.id LIMIT $3"#,
        Id(user),
        Id(after),
        i64::from(limit) + 1
        => |r| room_row!(r)
    );
    crate::pagination::try_page_of(rows, limit, |r| r.id.to_string(), RoomRow::to_api)
}

/// Renames room `id`.
pub async fn rename(w: Writer<'_>, id: Uuid, name: &str, now: i64) -> ApiResult<()> {
    q!(
        w,
        execute,
        "UPDATE rooms SET name = $1, updated_at = $2 WHERE id = $3",
        name,
        Millis(now),
        Id(id)
    );
    Ok(())
}

/// Deletes room `id` (its members, messages and attachment rows cascade).
pub async fn delete(w: Writer<'_>, id: Uuid) -> ApiResult<()> {
    q!(w, execute, "DELETE FROM rooms WHERE id = $1", Id(id));
    Ok(())
}

/// Deletes room `id` within `tx`.
pub async fn delete_in(tx: &mut WriteTx, id: Uuid) -> ApiResult<()> {
    q!(tx, execute, "DELETE FROM rooms WHERE id = $1", Id(id));
    Ok(())
}

/// How many members `room` has.
pub async fn member_count(tx: &mut WriteTx, room: Uuid) -> ApiResult<i64> {
    Ok(q!(
        tx,
        one,
        r#"SELECT COUNT(*) AS "n!: i64" FROM room_members WHERE room_id = $1"#,
        Id(room)
        => |r| r.n
    ))
}

/// Removes `user` from `room`; whether they were a member.
pub async fn remove_member(tx: &mut WriteTx, room: Uuid, user: Uuid) -> ApiResult<bool> {
    Ok(q!(
        tx,
        execute,
        "DELETE FROM room_members WHERE room_id = $1 AND user_id = $2",
        Id(room),
        Id(user)
    ) > 0)
}

/// If `left` owned `room`, its longest-standing remaining member becomes owner.
pub async fn pass_ownership(tx: &mut WriteTx, room: Uuid, left: Uuid) -> ApiResult<()> {
    q!(
        tx,
        execute,
        "UPDATE rooms SET owner_id = CASE WHEN owner_id = $1 THEN
           (SELECT user_id FROM room_members WHERE room_id = $2 ORDER BY joined_at, user_id LIMIT 1)
         ELSE owner_id END WHERE id = $2",
        Id(left),
        Id(room)
    );
    Ok(())
}
