//! Messages: opaque envelopes with a gapless per-room `seq`, receipts and
//! unread counts.

use std::collections::BTreeMap;

use sotto_core::api::messages::{Message, PostMessageResponse, ReceiptKind};
use sotto_core::api::pagination::Page;
use sotto_core::api::problem::codes;
use sotto_core::encoding::B64;
use uuid::Uuid;

use super::{Conn, Id, Millis, Writer, q};
use crate::db::{Db, rfc3339, u64_of};
use crate::error::{ApiError, ApiResult};

/// Most envelope bytes in one page of history (a page holds at least one message).
pub const PAGE_BYTES: i64 = 8 * 1024 * 1024;

/// A stored message's identity (what a retry of its post is answered).
pub struct StoredRef {
    id: Uuid,
    room_id: Uuid,
    seq: i64,
    envelope_sha256: String,
    created_at: i64,
}

impl StoredRef {
    pub fn response(&self) -> ApiResult<PostMessageResponse> {
        Ok(PostMessageResponse {
            id: self.id,
            seq: u64_of("seq", self.seq)?,
            created_at: rfc3339(self.created_at),
        })
    }
}

pub async fn find_stored(db: &Db, sender: Uuid, client_id: Uuid) -> ApiResult<Option<StoredRef>> {
    Ok(q!(
        db,
        optional,
        r#"SELECT id AS "id: Id", room_id AS "room_id: Id", seq, envelope_sha256,
           created_at AS "created_at: Millis" FROM messages WHERE sender_id = $1 AND client_id = $2"#,
        Id(sender),
        Id(client_id)
        => |r| StoredRef {
            id: r.id.0,
            room_id: r.room_id.0,
            seq: r.seq,
            envelope_sha256: r.envelope_sha256,
            created_at: r.created_at.0,
        }
    ))
}

/// What storing a message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Stored with this `seq`.
    Seq(i64),
    /// Not stored: the room's membership epoch moved (or the sender is no longer
    /// a member), or this (sender, client_id) is stored already (a retry);
    /// [`find_stored`] tells which.
    NotStored,
}

/// A message to store.
pub struct NewMessage {
    pub id: Uuid,
    pub room: Uuid,
    pub sender: Uuid,
    pub device: Uuid,
    pub client_id: Uuid,
    pub envelope: Vec<u8>,
    pub digest: String,
    pub now: i64,
    /// The room's membership epoch the sender's membership was checked at.
    pub epoch: i64,
}

/// Stores each message of `batch` with its room's next `seq`, all in one
/// write transaction (the group commit of `crate::ingest`): one commit for the
/// batch, so nothing of it is visible, or acknowledged, before all of it is
/// durable. Any error rolls the whole batch back (the caller then stores the
/// messages one at a time, to answer each on its own).
///
/// Callers order the batch by room: on PostgreSQL each statement takes its
/// room's row lock until the commit, and one order everywhere means two
/// batches never wait for each other in a cycle.
pub async fn store_batch(db: &Db, batch: &[&NewMessage]) -> Result<Vec<Stored>, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let mut out = Vec::with_capacity(batch.len());
    for m in batch {
        let mut held = tx.hold().await?;
        out.push(insert(held.conn(), m).await?);
    }
    tx.commit().await?;
    Ok(out)
}

/// Stores one message in a transaction of its own (see [`insert`]).
pub async fn store_one(w: Writer<'_>, m: &NewMessage) -> Result<Stored, sqlx::Error> {
    let mut held = w.hold().await?;
    insert(held.conn(), m).await
}

/// Takes the room's next `seq` and stores the message with it, atomically:
/// either both happen or neither.
///
/// One statement on both backends: on PostgreSQL the `UPDATE` in the `WITH`
/// takes the next seq under the room's row lock; SQLite runs one `INSERT ...
/// SELECT` under its single write lock, the `messages_take_seq` trigger moving
/// the room's counter to the new seq.
///
/// The statement stores nothing ([`Stored::NotStored`]) unless the sender is a
/// member, the room's `member_epoch` is still `epoch`, and the sender has no
/// message with this `client_id` yet (so a retry inside a batch neither takes a
/// seq nor aborts the batch's transaction). On PostgreSQL the epoch is what
/// makes the membership check safe: a post that waited for the row lock
/// re-evaluates the row's epoch (but not the `EXISTS`, which reads the
/// statement's older snapshot), so a removal that committed meanwhile is
/// noticed. Two transactions storing the same (sender, client_id) at once are
/// still refused by the unique index.
async fn insert(conn: Conn<'_>, m: &NewMessage) -> Result<Stored, sqlx::Error> {
    let seq = match conn {
        #[cfg(feature = "sqlite")]
        Conn::Sqlite(c) => {
            sqlx::query_scalar!(
                "INSERT INTO messages (id, room_id, seq, sender_id, device_id, client_id, envelope, envelope_sha256, created_at)
                 SELECT $3, $1, r.last_seq + 1, $2, $4, $5, $6, $7, $8 FROM rooms r WHERE r.id = $1 AND r.member_epoch = $9
                 AND EXISTS (SELECT 1 FROM room_members WHERE room_id = $1 AND user_id = $2)
                 AND NOT EXISTS (SELECT 1 FROM messages WHERE sender_id = $2 AND client_id = $5) RETURNING seq",
                Id(m.room),
                Id(m.sender),
                Id(m.id),
                Id(m.device),
                Id(m.client_id),
                &m.envelope,
                &m.digest,
                Millis(m.now),
                m.epoch
            )
            .fetch_optional(&mut *c)
            .await?
        }
        #[cfg(feature = "postgres")]
        Conn::Postgres(c) => {
            sqlx::query_scalar!(
                "WITH s AS (UPDATE rooms SET last_seq = last_seq + 1 WHERE id = $1 AND member_epoch = $9
                   AND EXISTS (SELECT 1 FROM room_members WHERE room_id = $1 AND user_id = $2)
                   AND NOT EXISTS (SELECT 1 FROM messages WHERE sender_id = $2 AND client_id = $5) RETURNING last_seq)
                 INSERT INTO messages (id, room_id, seq, sender_id, device_id, client_id, envelope, envelope_sha256, created_at)
                 SELECT $3, $1, s.last_seq, $2, $4, $5, $6, $7, $8 FROM s RETURNING seq",
                Id(m.room),
                Id(m.sender),
                Id(m.id),
                Id(m.device),
                Id(m.client_id),
                &m.envelope,
                &m.digest,
                Millis(m.now),
                m.epoch
            )
            .fetch_optional(&mut *c)
            .await?
        }
    };
    Ok(seq.map_or(Stored::NotStored, Stored::Seq))
}

/// A [`Message`] from a record with the message columns (`id, room_id, seq,
/// sender_id, device_id, client_id, envelope, created_at, deleted_at`).
macro_rules! message {
    ($r:expr) => {{
        let r = $r;
        u64_of("seq", r.seq).map(|seq| Message {
            id: r.id.0,
            room_id: r.room_id.0,
            seq,
            sender_id: r.sender_id.0,
            device_id: r.device_id.0,
            client_id: r.client_id.0,
            envelope: r.envelope.map(B64),
            deleted: r.deleted_at.is_some(),
            created_at: rfc3339(r.created_at.0),
            updated_at: rfc3339(r.deleted_at.unwrap_or(r.created_at).0),
        })
    }};
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
    let sizes: Vec<(i64, Option<i64>)> = q!(
        db,
        all,
        r#"SELECT seq, CAST(LENGTH(envelope) AS BIGINT) AS "size?: i64" FROM messages
           WHERE room_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"#,
        Id(room),
        after,
        i64::from(limit) + 1
        => |r| (r.seq, r.size)
    );
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
    let items = q!(
        db,
        all,
        r#"SELECT id AS "id: Id", room_id AS "room_id: Id", seq, sender_id AS "sender_id: Id",
           device_id AS "device_id: Id", client_id AS "client_id: Id", envelope,
           created_at AS "created_at: Millis", deleted_at AS "deleted_at: Millis"
           FROM messages WHERE room_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq"#,
        Id(room),
        after,
        last
        => |r| message!(r)
    )
    .into_iter()
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
    stored.room_id == room && stored.envelope_sha256 == digest
}

/// What posting needs to know, read in one query.
pub struct SendContext {
    /// The room's membership epoch.
    pub epoch: i64,
    /// The sender device's active bundle.
    pub bundle: Option<String>,
    /// A direct room whose other member and the sender: one blocked the other.
    pub blocked: bool,
}

/// What posting needs to know, read in one query: the caller's membership (None
/// if not a member), the room's membership epoch, the sender device's active
/// bundle, and whether the room is a direct room between a blocked pair.
pub async fn send_context(
    db: &Db,
    room: Uuid,
    me: Uuid,
    device: Uuid,
) -> ApiResult<Option<SendContext>> {
    Ok(q!(
        db,
        optional,
        r#"SELECT r.member_epoch AS "member_epoch!: i64", d.bundle AS "bundle?: String",
           (r.kind = 'direct' AND EXISTS (SELECT 1 FROM room_members o JOIN blocks b
              ON (b.blocker_id = $2 AND b.blocked_id = o.user_id) OR (b.blocker_id = o.user_id AND b.blocked_id = $2)
              WHERE o.room_id = r.id AND o.user_id <> $2)) AS "blocked!: bool"
           FROM room_members m JOIN rooms r ON r.id = m.room_id
           LEFT JOIN devices d ON d.id = $3 AND d.user_id = $2 AND d.revoked_at IS NULL
           WHERE m.room_id = $1 AND m.user_id = $2"#,
        Id(room),
        Id(me),
        Id(device)
        => |r| SendContext { epoch: r.member_epoch, bundle: r.bundle, blocked: r.blocked }
    ))
}

/// The sender and `seq` of message `id` in `room`.
pub async fn sender_and_seq(db: &Db, room: Uuid, id: Uuid) -> ApiResult<Option<(Uuid, i64)>> {
    Ok(q!(
        db,
        optional,
        r#"SELECT sender_id AS "sender_id: Id", seq FROM messages WHERE id = $1 AND room_id = $2"#,
        Id(id),
        Id(room)
        => |r| (r.sender_id.0, r.seq)
    ))
}

/// Erases message `id`'s envelope, leaving a tombstone; the sender and the
/// envelope's size when it did (it was not erased already).
pub async fn erase(w: Writer<'_>, id: Uuid, now: i64) -> ApiResult<Option<(Uuid, i64)>> {
    let mut held = w.hold().await?;
    // The size is read and the envelope erased in one statement per backend
    // (PostgreSQL's RETURNING sees the new row; its FROM clause the old one).
    Ok(match held.conn() {
        #[cfg(feature = "sqlite")]
        Conn::Sqlite(c) => {
            let old = sqlx::query!(
                r#"/* sqlite */ SELECT sender_id AS "sender_id: Id", CAST(COALESCE(length(envelope), 0) AS BIGINT) AS "size!: i64"
                   FROM messages WHERE id = $1 AND deleted_at IS NULL"#,
                Id(id)
            )
            .fetch_optional(&mut *c)
            .await?;
            let n = sqlx::query!(
                "/* sqlite */ UPDATE messages SET envelope = NULL, deleted_at = $1 WHERE id = $2 AND deleted_at IS NULL",
                Millis(now),
                Id(id)
            )
            .execute(&mut *c)
            .await?
            .rows_affected();
            old.filter(|_| n == 1).map(|r| (r.sender_id.0, r.size))
        }
        #[cfg(feature = "postgres")]
        Conn::Postgres(c) => sqlx::query!(
            r#"UPDATE messages m SET envelope = NULL, deleted_at = $1 FROM messages o
               WHERE m.id = $2 AND o.id = m.id AND m.deleted_at IS NULL
               RETURNING m.sender_id AS "sender_id: Id", CAST(COALESCE(octet_length(o.envelope), 0) AS BIGINT) AS "size!: i64""#,
            Millis(now),
            Id(id)
        )
        .fetch_optional(&mut *c)
        .await?
        .map(|r| (r.sender_id.0, r.size)),
    })
}

/// Envelope bytes stored in `room`, per sender (what deleting it frees).
pub async fn bytes_by_sender(db: &Db, room: Uuid) -> ApiResult<Vec<(Uuid, i64)>> {
    let mut held = db.hold().await?;
    Ok(match held.conn() {
        #[cfg(feature = "sqlite")]
        Conn::Sqlite(c) => sqlx::query!(
            r#"/* sqlite */ SELECT sender_id AS "sender_id: Id", CAST(SUM(length(envelope)) AS BIGINT) AS "n!: i64"
               FROM messages WHERE room_id = $1 AND envelope IS NOT NULL GROUP BY sender_id"#,
            Id(room)
        )
        .fetch_all(&mut *c)
        .await?
        .into_iter()
        .map(|r| (r.sender_id.0, r.n))
        .collect(),
        #[cfg(feature = "postgres")]
        Conn::Postgres(c) => sqlx::query!(
            r#"SELECT sender_id AS "sender_id: Id", CAST(SUM(octet_length(envelope)) AS BIGINT) AS "n!: i64"
               FROM messages WHERE room_id = $1 AND envelope IS NOT NULL GROUP BY sender_id"#,
            Id(room)
        )
        .fetch_all(&mut *c)
        .await?
        .into_iter()
        .map(|r| (r.sender_id.0, r.n))
        .collect(),
    })
}

/// Moves `user`'s `kind` receipt in `room` forward to `seq` (never back; read
/// implies delivered); whether it moved.
pub async fn move_receipt(
    w: Writer<'_>,
    room: Uuid,
    user: Uuid,
    kind: ReceiptKind,
    seq: i64,
    now: i64,
) -> ApiResult<bool> {
    let moved = match kind {
        ReceiptKind::Read => q!(
            w,
            execute,
            "UPDATE room_members SET
               read_at = CASE WHEN read_seq < $1 THEN $2 ELSE read_at END,
               read_seq = CASE WHEN read_seq < $1 THEN $1 ELSE read_seq END,
               delivered_at = CASE WHEN delivered_seq < $1 THEN $2 ELSE delivered_at END,
               delivered_seq = CASE WHEN delivered_seq < $1 THEN $1 ELSE delivered_seq END
             WHERE room_id = $3 AND user_id = $4 AND (read_seq < $1 OR delivered_seq < $1)",
            seq,
            Millis(now),
            Id(room),
            Id(user)
        ),
        ReceiptKind::Delivered => q!(
            w,
            execute,
            "UPDATE room_members SET delivered_seq = $1, delivered_at = $2
             WHERE room_id = $3 AND user_id = $4 AND delivered_seq < $1",
            seq,
            Millis(now),
            Id(room),
            Id(user)
        ),
    };
    Ok(moved > 0)
}

/// `user`'s current `kind` receipt in `room`: (seq, when), if a member.
pub async fn receipt(
    db: &Db,
    room: Uuid,
    user: Uuid,
    kind: ReceiptKind,
) -> ApiResult<Option<(i64, i64)>> {
    Ok(match kind {
        ReceiptKind::Read => q!(
            db,
            optional,
            r#"SELECT read_seq, read_at AS "read_at: Millis" FROM room_members WHERE room_id = $1 AND user_id = $2"#,
            Id(room),
            Id(user)
            => |r| (r.read_seq, r.read_at.0)
        ),
        ReceiptKind::Delivered => q!(
            db,
            optional,
            r#"SELECT delivered_seq, delivered_at AS "delivered_at: Millis" FROM room_members WHERE room_id = $1 AND user_id = $2"#,
            Id(room),
            Id(user)
            => |r| (r.delivered_seq, r.delivered_at.0)
        ),
    })
}

/// Unread counts of `user`'s rooms: messages from others after their read
/// receipt, not counting deleted ones.
pub async fn unread_counts(db: &Db, user: Uuid) -> ApiResult<BTreeMap<Uuid, u64>> {
    let rows = q!(
        db,
        all,
        r#"SELECT m.room_id AS "room_id: Id", (SELECT COUNT(*) FROM messages x WHERE x.room_id = m.room_id
             AND x.seq > m.read_seq AND x.sender_id <> m.user_id AND x.deleted_at IS NULL) AS "n!: i64"
           FROM room_members m WHERE m.user_id = $1"#,
        Id(user)
        => |r| (r.room_id.0, r.n)
    );
    let mut out = BTreeMap::new();
    for (room, n) in rows {
        out.insert(room, u64_of("unread", n)?);
    }
    Ok(out)
}

/// Message `id` of `room` as history shows it.
pub async fn one(db: &Db, room: Uuid, id: Uuid) -> ApiResult<Option<Message>> {
    q!(
        db,
        optional,
        r#"SELECT id AS "id: Id", room_id AS "room_id: Id", seq, sender_id AS "sender_id: Id",
           device_id AS "device_id: Id", client_id AS "client_id: Id", envelope,
           created_at AS "created_at: Millis", deleted_at AS "deleted_at: Millis"
           FROM messages WHERE id = $1 AND room_id = $2"#,
        Id(id),
        Id(room)
        => |r| message!(r)
    )
    .transpose()
}
