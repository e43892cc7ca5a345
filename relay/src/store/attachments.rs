//! Attachments: opaque encrypted bytes, kept in the row (small) or as a file
//! under the data directory (large; the row then has no data).

use uuid::Uuid;

use super::Writer;
use crate::db::{Db, u64_of};
use crate::error::ApiResult;
use crate::ids::parse_stored_id;

/// Ids of `room`'s attachments stored as files.
pub async fn file_ids_of_room(db: &Db, room: Uuid) -> ApiResult<Vec<Uuid>> {
    let rows: Vec<String> =
        sqlx::query_scalar("SELECT id FROM attachments WHERE room_id = $1 AND data IS NULL")
            .bind(room.to_string())
            .fetch_all(db.read())
            .await?;
    rows.iter()
        .map(|s| parse_stored_id("attachments.id", s))
        .collect()
}

/// Whether a row for attachment `id` exists.
pub async fn exists(db: &Db, id: Uuid) -> ApiResult<bool> {
    let known: Option<String> = sqlx::query_scalar("SELECT id FROM attachments WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(db.read())
        .await?;
    Ok(known.is_some())
}

/// Bytes of attachments `user` uploaded that are still stored.
pub async fn used_by(db: &Db, user: Uuid) -> ApiResult<u64> {
    let used: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM attachments WHERE uploader_id = $1",
    )
    .bind(user.to_string())
    .fetch_one(db.read())
    .await?;
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
/// within `quota` bytes with it, in one statement; whether it was stored.
pub async fn insert(w: Writer<'_>, a: NewAttachment, quota: i64) -> ApiResult<bool> {
    Ok(sqlx::query(
        "INSERT INTO attachments (id, room_id, uploader_id, size, data, created_at) \
         SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS \
           (SELECT 1 FROM room_members WHERE room_id = $2 AND user_id = $3) \
         AND (SELECT COALESCE(SUM(size), 0) FROM attachments WHERE uploader_id = $3) + $4 <= $7",
    )
    .bind(a.id.to_string())
    .bind(a.room.to_string())
    .bind(a.uploader.to_string())
    .bind(a.size)
    .bind(a.data)
    .bind(a.now)
    .bind(quota)
    .execute(w.pool())
    .await?
    .rows_affected()
        == 1)
}

/// An attachment as a member may read it.
pub struct Readable {
    pub size: u64,
    /// The bytes when kept in the row; `None` when stored as a file.
    pub data: Option<Vec<u8>>,
}

/// Attachment `id` if `reader` is a member of its room.
pub async fn readable_by(db: &Db, id: Uuid, reader: Uuid) -> ApiResult<Option<Readable>> {
    let row: Option<(i64, Option<Vec<u8>>)> = sqlx::query_as(
        "SELECT a.size, a.data FROM attachments a \
         JOIN room_members m ON m.room_id = a.room_id AND m.user_id = $2 WHERE a.id = $1",
    )
    .bind(id.to_string())
    .bind(reader.to_string())
    .fetch_optional(db.read())
    .await?;
    row.map(|(size, data)| {
        Ok(Readable {
            size: u64_of("attachments.size", size)?,
            data,
        })
    })
    .transpose()
}
