//! Blocks: who blocked whom.

use sotto_core::api::blocks::BlockedUser;
use sotto_core::api::pagination::Page;
use sotto_core::api::users::PublicUser;
use uuid::Uuid;

use super::{Id, Millis, Writer, q};
use crate::db::{Db, WriteTx, rfc3339};
use crate::error::ApiResult;
use crate::pagination::page_of;

/// Takes the consent locks of `users` for the rest of `tx` (PostgreSQL; SQLite
/// already runs one writer at a time). A block takes both users' locks before
/// it reads the invitations and the direct room between them; every path that
/// adds or invites someone into a room, or opens a direct room, takes its
/// acting user's lock before its block check. So the two are serialized: an
/// invitation whose block check came before a block's commit is committed
/// before the block reads the invitations between the two, and removed by it
/// (under READ COMMITTED it used to survive the block). Taken first in the
/// transaction, before any room lock, in one order (by key), so it adds no
/// deadlock to the rooms-then-invitations order.
pub async fn lock_users(tx: &mut WriteTx, users: &[Uuid]) -> ApiResult<()> {
    let mut keys: Vec<i64> = users.iter().map(|u| consent_key(*u)).collect();
    keys.sort_unstable();
    keys.dedup();
    super::advisory_xact_locks(tx, &keys).await
}

/// A user's advisory-lock key (two users sharing one only wait for each other).
fn consent_key(user: Uuid) -> i64 {
    let (hi, lo) = user.as_u64_pair();
    // (Bits reinterpreted: any 64-bit value is a key.)
    i64::from_ne_bytes((hi ^ lo).to_ne_bytes())
}

/// Records that `blocker` blocked `blocked`; false when they had already.
pub async fn insert(tx: &mut WriteTx, blocker: Uuid, blocked: Uuid, now: i64) -> ApiResult<bool> {
    Ok(q!(
        tx,
        execute,
        "INSERT INTO blocks (blocker_id, blocked_id, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (blocker_id, blocked_id) DO NOTHING",
        Id(blocker),
        Id(blocked),
        Millis(now)
    ) > 0)
}

/// Lifts `blocker`'s block of `blocked`; whether there was one.
pub async fn remove(w: Writer<'_>, blocker: Uuid, blocked: Uuid) -> ApiResult<bool> {
    Ok(q!(
        w,
        execute,
        "DELETE FROM blocks WHERE blocker_id = $1 AND blocked_id = $2",
        Id(blocker),
        Id(blocked)
    ) > 0)
}

/// `blocker`'s block of `blocked`, as listed.
pub async fn one(tx: &mut WriteTx, blocker: Uuid, blocked: Uuid) -> ApiResult<Option<BlockedUser>> {
    Ok(q!(
        tx,
        optional,
        r#"SELECT b.blocked_id AS "blocked_id: Id", u.username, u.display_name,
           b.created_at AS "created_at: Millis"
           FROM blocks b JOIN users u ON u.id = b.blocked_id
           WHERE b.blocker_id = $1 AND b.blocked_id = $2"#,
        Id(blocker),
        Id(blocked)
        => |r| BlockedUser {
            user: PublicUser { id: r.blocked_id.0, username: r.username, display_name: r.display_name },
            created_at: rfc3339(r.created_at.0),
        }
    ))
}

/// A page of the users `blocker` blocked, by user id, after `after`.
pub async fn page(db: &Db, blocker: Uuid, after: Uuid, limit: u32) -> ApiResult<Page<BlockedUser>> {
    let rows = q!(
        db,
        all,
        r#"SELECT b.blocked_id AS "blocked_id: Id", u.username, u.display_name,
           b.created_at AS "created_at: Millis"
           FROM blocks b JOIN users u ON u.id = b.blocked_id
           WHERE b.blocker_id = $1 AND b.blocked_id > $2 ORDER BY b.blocked_id LIMIT $3"#,
        Id(blocker),
        Id(after),
        i64::from(limit) + 1
        => |r| BlockedUser {
            user: PublicUser { id: r.blocked_id.0, username: r.username, display_name: r.display_name },
            created_at: rfc3339(r.created_at.0),
        }
    );
    Ok(page_of(
        rows,
        limit,
        |b| b.user.id.to_string(),
        Clone::clone,
    ))
}

/// Whether either of `a` and `b` blocked the other.
pub async fn between(db: &Db, a: Uuid, b: Uuid) -> ApiResult<bool> {
    Ok(q!(
        db,
        optional,
        r#"SELECT blocker_id AS "blocker_id: Id" FROM blocks
           WHERE (blocker_id = $1 AND blocked_id = $2) OR (blocker_id = $2 AND blocked_id = $1)"#,
        Id(a),
        Id(b)
        => |r| r.blocker_id
    )
    .is_some())
}

/// The same, inside a write transaction (so a concurrent block is seen).
pub async fn between_in(tx: &mut WriteTx, a: Uuid, b: Uuid) -> ApiResult<bool> {
    Ok(q!(
        tx,
        optional,
        r#"SELECT blocker_id AS "blocker_id: Id" FROM blocks
           WHERE (blocker_id = $1 AND blocked_id = $2) OR (blocker_id = $2 AND blocked_id = $1)"#,
        Id(a),
        Id(b)
        => |r| r.blocker_id
    )
    .is_some())
}

/// The users `user` blocked or was blocked by.
pub async fn either_way(db: &Db, user: Uuid) -> ApiResult<Vec<Uuid>> {
    Ok(q!(
        db,
        all,
        r#"SELECT blocked_id AS "other!: Id" FROM blocks WHERE blocker_id = $1
           UNION SELECT blocker_id AS "other!: Id" FROM blocks WHERE blocked_id = $1"#,
        Id(user)
        => |r| r.other.0
    ))
}
