//! Attachments: opaque encrypted bytes, kept in the row (small) or as a file
//! under the data directory (large; the row then has no data).

use uuid::Uuid;

use super::{Id, Millis, Writer, q};
use crate::db::{Db, WriteTx, u64_of};
use crate::error::ApiResult;

/// Ids of `room`'s attachments stored as files.
pub async fn file_ids_of_room(db: &Db, room: Uuid) -> ApiResult<Vec<Uuid>> {
    Ok(q!(
        db,
        all,
        r#"SELECT id AS "id: Id" FROM attachments WHERE room_id = $1 AND data IS NULL"#,
        Id(room)
        => |r| r.id.0
    ))
}

/// Whether a row for attachment `id` exists.
pub async fn exists(db: &Db, id: Uuid) -> ApiResult<bool> {
    Ok(q!(
        db,
        optional,
        r#"SELECT id AS "id: Id" FROM attachments WHERE id = $1"#,
        Id(id)
        => |r| r.id
    )
    .is_some())
}

/// Bytes of attachments `user` uploaded that are still stored.
pub async fn used_by(db: &Db, user: Uuid) -> ApiResult<u64> {
    let used = q!(
        db,
        one,
        r#"SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) AS "n!: i64" FROM attachments WHERE uploader_id = $1"#,
        Id(user)
        => |r| r.n
    );
    u64_of("attachments.size", used)
}

/// A new attachment's row.
pub struct NewAttachment {
    pub id: Uuid,
    pub room: Uuid,
    pub uploader: Uuid,
    pub size: i64,
    /// The bytes when kept in the row; `None` when stored as a file.
    pub data: Option<Vec<u8>>,
    pub now: i64,
}

/// Stores the row if the uploader is (still) a member of the room and stays
/// within `quota` bytes with it; whether it was stored. Race-free: on
/// PostgreSQL the uploader's user row is locked first, so two uploads of one
/// user check the quota one after the other (each seeing the other's row);
/// SQLite has one writer.
pub async fn insert(tx: &mut WriteTx, a: NewAttachment, quota: i64) -> ApiResult<bool> {
    #[cfg(feature = "postgres")]
    if let WriteTx::Postgres(t) = tx {
        sqlx::query!(
            "SELECT id FROM users WHERE id = $1 FOR UPDATE",
            Id(a.uploader)
        )
        .fetch_optional(&mut **t)
        .await?;
    }
    Ok(q!(
        tx,
        execute,
        "INSERT INTO attachments (id, room_id, uploader_id, size, data, created_at)
         SELECT $1, $2, $3, CAST($4 AS BIGINT), $5, $6 WHERE EXISTS
           (SELECT 1 FROM room_members WHERE room_id = $2 AND user_id = $3)
         AND (SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM attachments WHERE uploader_id = $3) + CAST($4 AS BIGINT) <= $7",
        Id(a.id),
        Id(a.room),
        Id(a.uploader),
        a.size,
        a.data,
        Millis(a.now),
        quota
    ) == 1)
}

/// Deletes attachment `id` if `uploader` uploaded it; `Some(true)` when it
/// was kept as a file (to remove after the commit), `None` when there is no
/// such attachment of theirs.
pub async fn delete_own(w: Writer<'_>, id: Uuid, uploader: Uuid) -> ApiResult<Option<bool>> {
    Ok(q!(
        w,
        optional,
        r#"DELETE FROM attachments WHERE id = $1 AND uploader_id = $2
           RETURNING (data IS NULL) AS "is_file!: bool""#,
        Id(id),
        Id(uploader)
        => |r| r.is_file
    ))
}

/// An attachment as a member may read it.
pub struct Readable {
    pub size: u64,
    /// The bytes when kept in the row; `None` when stored as a file.
    pub data: Option<Vec<u8>>,
}

/// Attachment `id` if `reader` is a member of its room.
pub async fn readable_by(db: &Db, id: Uuid, reader: Uuid) -> ApiResult<Option<Readable>> {
    q!(
        db,
        optional,
        "SELECT a.size, a.data FROM attachments a
         JOIN room_members m ON m.room_id = a.room_id AND m.user_id = $2 WHERE a.id = $1",
        Id(id),
        Id(reader)
        => |r| u64_of("attachments.size", r.size).map(|size| Readable { size, data: r.data })
    )
    .transpose()
}
