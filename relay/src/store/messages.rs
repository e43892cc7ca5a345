//! Messages: opaque envelopes with a gapless per-room `seq`, receipts and
//! unread counts.

use std::collections::BTreeMap;

use sotto_core::api::messages::{Message, PostMessageResponse, ReceiptKind};
use sotto_core::api::pagination::Page;
use sotto_core::api::problem::codes;
use sotto_core::encoding::B64;
use uuid::Uuid;

use crate::db::{Backend, Db, rfc3339, u64_of};
use crate::error::{ApiError, ApiResult};
use crate::ids::parse_id;

/// Most envelope bytes in one page of history (a page holds at least one message).
pub const PAGE_BYTES: i64 = 8 * 1024 * 1024;

#[derive(sqlx::FromRow)]
pub struct StoredRef {
    id: String,
    room_id: String,
    seq: i64,
    envelope_sha256: String,
    created_at: i64,
}

impl StoredRef {
    pub fn response(&self) -> ApiResult<PostMessageResponse> {
        Ok(PostMessageResponse {
            id: parse_id(&self.id)?,
            seq: u64_of("seq", self.seq)?,
            created_at: rfc3339(self.created_at),
        })
    }
}

pub async fn find_stored(db: &Db, sender: Uuid, client_id: Uuid) -> ApiResult<Option<StoredRef>> {
    Ok(sqlx::query_as::<_, StoredRef>(
        "SELECT id, room_id, seq, envelope_sha256, created_at FROM messages WHERE sender_id = $1 AND client_id = $2",
    )
    .bind(sender.to_string())
    .bind(client_id.to_string())
    .fetch_optional(db.read())
    .await?)
}

/// What storing a message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Stored with this `seq`.
    Seq(i64),
    /// Not stored: the room's membership epoch moved (or the sender is no longer
    /// a member); look again.
    EpochMoved,
    /// Not stored: this (sender, client_id) is stored already (a retry).
    Duplicate,
}

/// Stores a message with the room's next `seq`, in one statement (see
/// `docs/relay.md`), if the room's membership epoch is still `epoch`.
#[allow(clippy::too_many_arguments)]
pub async fn store(
    db: &Db,
    id: Uuid,
    room: Uuid,
    sender: Uuid,
    device: Uuid,
    client_id: Uuid,
    bytes: &[u8],
    digest: &str,
    now: i64,
    epoch: i64,
) -> ApiResult<Stored> {
    let res = store_statement(
        db, id, room, sender, device, client_id, bytes, digest, now, epoch,
    )
    .await;
    match res {
        Ok(Some(seq)) => Ok(Stored::Seq(seq)),
        Ok(None) => Ok(Stored::EpochMoved),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(Stored::Duplicate),
        Err(e) => Err(e.into()),
    }
}

/// Takes the room's next `seq` and stores the message with it, atomically:
/// either both happen or neither. `None` when the sender is no longer a member.
///
/// One statement on both backends: on PostgreSQL the `UPDATE` in the `WITH`
/// locks the room's row while it runs; SQLite has a single writer and a trigger.
///
/// The statement stores nothing (`None`) unless the sender is a member and the
/// room's `member_epoch` is still `epoch`. On PostgreSQL the epoch is what makes
/// the membership check safe: a post that waited for the row lock re-evaluates
/// the row's epoch (but not the `EXISTS`, which reads the statement's older
/// snapshot), so a removal that committed meanwhile is noticed.
#[allow(clippy::too_many_arguments)]
async fn store_statement(
    db: &Db,
    id: Uuid,
    room: Uuid,
    sender: Uuid,
    device: Uuid,
    client_id: Uuid,
    bytes: &[u8],
    digest: &str,
    now: i64,
    epoch: i64,
) -> Result<Option<i64>, sqlx::Error> {
    const NEXT_SEQ: &str = "UPDATE rooms SET last_seq = last_seq + 1 WHERE id = $1 AND member_epoch = $9 \
        AND EXISTS (SELECT 1 FROM room_members WHERE room_id = $1 AND user_id = $2) RETURNING last_seq";
    // PostgreSQL: the `UPDATE` in the `WITH` takes the next seq under the room's
    // row lock. SQLite: one `INSERT ... SELECT` under its single write lock, the
    // `messages_take_seq` trigger moving the room's counter to the new seq.
    let sql = match db.backend {
        Backend::Postgres => format!(
            "WITH s AS ({NEXT_SEQ}) \
             INSERT INTO messages (id, room_id, seq, sender_id, device_id, client_id, envelope, envelope_sha256, created_at) \
             SELECT $3, $1, s.last_seq, $2, $4, $5, $6, $7, $8 FROM s RETURNING seq"
        ),
        Backend::Sqlite => "INSERT INTO messages (id, room_id, seq, sender_id, device_id, client_id, envelope, envelope_sha256, created_at) \
             SELECT $3, $1, r.last_seq + 1, $2, $4, $5, $6, $7, $8 FROM rooms r WHERE r.id = $1 AND r.member_epoch = $9 \
             AND EXISTS (SELECT 1 FROM room_members WHERE room_id = $1 AND user_id = $2) RETURNING seq"
            .to_string(),
    };
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(room.to_string())
        .bind(sender.to_string())
        .bind(id.to_string())
        .bind(device.to_string())
        .bind(client_id.to_string())
        .bind(bytes.to_vec())
        .bind(digest)
        .bind(now)
        .bind(epoch)
        .fetch_optional(db.write())
        .await
}

#[derive(sqlx::FromRow)]
struct MessageRow {
    id: String,
    room_id: String,
    seq: i64,
    sender_id: String,
    device_id: String,
    client_id: String,
    envelope: Option<Vec<u8>>,
    created_at: i64,
    deleted_at: Option<i64>,
}

impl MessageRow {
    fn into_api(self) -> ApiResult<Message> {
        Ok(Message {
            id: parse_id(&self.id)?,
            room_id: parse_id(&self.room_id)?,
            seq: u64_of("seq", self.seq)?,
            sender_id: parse_id(&self.sender_id)?,
            device_id: parse_id(&self.device_id)?,
            client_id: parse_id(&self.client_id)?,
            envelope: self.envelope.map(B64),
            deleted: self.deleted_at.is_some(),
            created_at: rfc3339(self.created_at),
            updated_at: rfc3339(self.deleted_at.unwrap_or(self.created_at)),
        })
    }
}

/// One page of `room`'s messages after `after_seq` for a member who joined at
/// `joined_seq` (earlier history is not theirs to read).
pub async fn page_after(
    db: &Db,
    room: Uuid,
    joined_seq: i64,
    after_seq: u64,
    limit: u32,
) -> ApiResult<Page<Message>> {
    let after = i64::try_from(after_seq)
        .map_err(|_| ApiError::bad_request(codes::VALIDATION_FAILED, "`after_seq` is too large"))?
        .max(joined_seq);
    // First the sizes (no envelopes): the page ends at `limit` messages or at
    // PAGE_BYTES of envelopes, whichever comes first (always at least one), so
    // a page of large envelopes cannot take unbounded memory.
    let sizes: Vec<(i64, Option<i64>)> = sqlx::query_as(
        "SELECT seq, CAST(LENGTH(envelope) AS BIGINT) FROM messages \
         WHERE room_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
    )
    .bind(room.to_string())
    .bind(after)
    .bind(i64::from(limit) + 1)
    .fetch_all(db.read())
    .await?;
    let mut taken = 0usize;
    let mut bytes = 0i64;
    for (_, size) in sizes.iter().take(limit as usize) {
        // A tombstone has no envelope (NULL size): it costs nothing.
        let size = size.unwrap_or(0);
        if taken > 0 && bytes.saturating_add(size) > PAGE_BYTES {
            break;
        }
        bytes = bytes.saturating_add(size);
        taken += 1;
    }
    let more = sizes.len() > taken;
    let Some(&(last, _)) = sizes.get(taken.wrapping_sub(1)) else {
        return Ok(Page::last(Vec::new()));
    };
    let rows = sqlx::query_as::<_, MessageRow>(
        "SELECT id, room_id, seq, sender_id, device_id, client_id, envelope, created_at, deleted_at \
         FROM messages WHERE room_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq",
    )
    .bind(room.to_string())
    .bind(after)
    .bind(last)
    .fetch_all(db.read())
    .await?;
    let items = rows
        .into_iter()
        .map(MessageRow::into_api)
        .collect::<ApiResult<Vec<_>>>()?;
    let next = if more {
        items.last().map(|m| m.seq.to_string())
    } else {
        None
    };
    Ok(Page::new(items, next))
}

/// Whether the stored message is this retry's: same room, same envelope.
pub fn same_message(stored: &StoredRef, room: Uuid, digest: &str) -> bool {
    stored.room_id == room.to_string() && stored.envelope_sha256 == digest
}

/// What posting needs to know, read in one query: the caller's membership (None
/// if not a member), the room's membership epoch, and the sender device's
/// active bundle.
pub async fn send_context(
    db: &Db,
    room: Uuid,
    me: Uuid,
    device: Uuid,
) -> ApiResult<Option<(i64, Option<String>)>> {
    Ok(sqlx::query_as::<_, (i64, Option<String>)>(
        "SELECT r.member_epoch, d.bundle FROM room_members m JOIN rooms r ON r.id = m.room_id \
         LEFT JOIN devices d ON d.id = $3 AND d.user_id = $2 AND d.revoked_at IS NULL \
         WHERE m.room_id = $1 AND m.user_id = $2",
    )
    .bind(room.to_string())
    .bind(me.to_string())
    .bind(device.to_string())
    .fetch_optional(db.read())
    .await?)
}

/// The sender and `seq` of message `id` in `room`.
pub async fn sender_and_seq(db: &Db, room: Uuid, id: Uuid) -> ApiResult<Option<(Uuid, i64)>> {
    let row: Option<(String, i64)> =
        sqlx::query_as("SELECT sender_id, seq FROM messages WHERE id = $1 AND room_id = $2")
            .bind(id.to_string())
            .bind(room.to_string())
            .fetch_optional(db.read())
            .await?;
    row.map(|(sender, seq)| Ok((parse_id(&sender)?, seq)))
        .transpose()
}

/// Erases message `id`'s envelope, leaving a tombstone; whether it did (it was
/// not erased already).
pub async fn erase(w: super::Writer<'_>, id: Uuid, now: i64) -> ApiResult<bool> {
    Ok(sqlx::query(
        "UPDATE messages SET envelope = NULL, deleted_at = $1 WHERE id = $2 AND deleted_at IS NULL",
    )
    .bind(now)
    .bind(id.to_string())
    .execute(w.pool())
    .await?
    .rows_affected()
        == 1)
}

/// Moves `user`'s `kind` receipt in `room` forward to `seq` (never back; read
/// implies delivered); whether it moved.
pub async fn move_receipt(
    w: super::Writer<'_>,
    room: Uuid,
    user: Uuid,
    kind: ReceiptKind,
    seq: i64,
    now: i64,
) -> ApiResult<bool> {
    let sql = match kind {
        ReceiptKind::Read => {
            "UPDATE room_members SET \
               read_at = CASE WHEN read_seq < $1 THEN $2 ELSE read_at END, \
               read_seq = CASE WHEN read_seq < $1 THEN $1 ELSE read_seq END, \
               delivered_at = CASE WHEN delivered_seq < $1 THEN $2 ELSE delivered_at END, \
               delivered_seq = CASE WHEN delivered_seq < $1 THEN $1 ELSE delivered_seq END \
             WHERE room_id = $3 AND user_id = $4 AND (read_seq < $1 OR delivered_seq < $1)"
        }
        ReceiptKind::Delivered => {
            "UPDATE room_members SET delivered_seq = $1, delivered_at = $2 \
             WHERE room_id = $3 AND user_id = $4 AND delivered_seq < $1"
        }
    };
    Ok(sqlx::query(sql)
        .bind(seq)
        .bind(now)
        .bind(room.to_string())
        .bind(user.to_string())
        .execute(w.pool())
        .await?
        .rows_affected()
        > 0)
}

/// `user`'s current `kind` receipt in `room`: (seq, when), if a member.
pub async fn receipt(
    db: &Db,
    room: Uuid,
    user: Uuid,
    kind: ReceiptKind,
) -> ApiResult<Option<(i64, i64)>> {
    Ok(sqlx::query_as(match kind {
        ReceiptKind::Read => {
            "SELECT read_seq, read_at FROM room_members WHERE room_id = $1 AND user_id = $2"
        }
        ReceiptKind::Delivered => {
            "SELECT delivered_seq, delivered_at FROM room_members WHERE room_id = $1 AND user_id = $2"
        }
    })
    .bind(room.to_string())
    .bind(user.to_string())
    .fetch_optional(db.read())
    .await?)
}

/// Unread counts of `user`'s rooms: messages from others after their read
/// receipt, not counting deleted ones.
pub async fn unread_counts(db: &Db, user: Uuid) -> ApiResult<BTreeMap<Uuid, u64>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT m.room_id, (SELECT COUNT(*) FROM messages x WHERE x.room_id = m.room_id AND x.seq > m.read_seq \
           AND x.sender_id <> m.user_id AND x.deleted_at IS NULL) FROM room_members m WHERE m.user_id = $1",
    )
    .bind(user.to_string())
    .fetch_all(db.read())
    .await?;
    let mut out = BTreeMap::new();
    for (room, n) in rows {
        out.insert(parse_id(&room)?, u64_of("unread", n)?);
    }
    Ok(out)
}
