//! Membership reads: whether a user is a member of a room, and the audiences
//! of events (a room's members, a user's peers).

use uuid::Uuid;

use axum::http::StatusCode;
use sotto_core::api::problem::codes;

use super::{Id, q};
use crate::db::{Db, WriteTx};
use crate::error::{ApiError, ApiResult};

/// 404 `not_a_member`: the answer for a room the caller is not in, the same as
/// for a room that does not exist.
pub fn not_a_member() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        codes::NOT_A_MEMBER,
        "no such room, or you are not a member of it",
    )
}

/// The caller's view of a room they belong to.
#[derive(Debug, Clone)]
pub struct Membership {
    pub kind: String,
    pub owner_id: Uuid,
    pub joined_seq: i64,
    pub last_seq: i64,
}

impl Membership {
    pub fn is_owner(&self, user: Uuid) -> bool {
        self.owner_id == user
    }
    pub fn is_direct(&self) -> bool {
        self.kind == "direct"
    }
}

/// The caller's membership of `room`, or 404 `not_a_member` (also for unknown rooms).
pub async fn require_member(db: &Db, room: Uuid, user: Uuid) -> ApiResult<Membership> {
    q!(
        db,
        optional,
        r#"SELECT r.kind, r.owner_id AS "owner_id: Id", m.joined_seq, r.last_seq FROM rooms r
           JOIN room_members m ON m.room_id = r.id AND m.user_id = $2 WHERE r.id = $1"#,
        Id(room),
        Id(user)
        => |r| Membership {
            kind: r.kind,
            owner_id: r.owner_id.0,
            joined_seq: r.joined_seq,
            last_seq: r.last_seq,
        }
    )
    .ok_or_else(not_a_member)
}

/// Users sharing at least one room with `user` (not including them).
pub async fn peers_of(db: &Db, user: Uuid) -> ApiResult<Vec<Uuid>> {
    Ok(q!(
        db,
        all,
        r#"SELECT DISTINCT m2.user_id AS "user_id: Id" FROM room_members m1
           JOIN room_members m2 ON m2.room_id = m1.room_id
           WHERE m1.user_id = $1 AND m2.user_id <> $1"#,
        Id(user)
        => |r| r.user_id.0
    ))
}

/// Users sharing at least one room with `user` who may see each other's
/// presence: neither blocked the other.
pub async fn presence_peers_of(db: &Db, user: Uuid) -> ApiResult<Vec<Uuid>> {
    Ok(q!(
        db,
        all,
        r#"SELECT DISTINCT m2.user_id AS "user_id: Id" FROM room_members m1
           JOIN room_members m2 ON m2.room_id = m1.room_id
           WHERE m1.user_id = $1 AND m2.user_id <> $1
           AND NOT EXISTS (SELECT 1 FROM blocks b WHERE (b.blocker_id = $1 AND b.blocked_id = m2.user_id)
                                                  OR (b.blocker_id = m2.user_id AND b.blocked_id = $1))"#,
        Id(user)
        => |r| r.user_id.0
    ))
}

/// Who hears that `user` types in `room`: the other members but those who
/// blocked them or whom they blocked; `None` when `user` is not a member.
pub async fn typing_audience(db: &Db, room: Uuid, user: Uuid) -> ApiResult<Option<Vec<Uuid>>> {
    let rows = q!(
        db,
        all,
        r#"SELECT m.user_id AS "user_id: Id",
           EXISTS (SELECT 1 FROM blocks b WHERE (b.blocker_id = $2 AND b.blocked_id = m.user_id)
                                          OR (b.blocker_id = m.user_id AND b.blocked_id = $2)) AS "blocked!: bool"
           FROM room_members m WHERE m.room_id = $1"#,
        Id(room),
        Id(user)
        => |r| (r.user_id.0, r.blocked)
    );
    if !rows.iter().any(|(u, _)| *u == user) {
        return Ok(None);
    }
    Ok(Some(
        rows.into_iter()
            .filter(|(u, blocked)| *u != user && !blocked)
            .map(|(u, _)| u)
            .collect(),
    ))
}

/// How many rooms `user` is a member of.
pub async fn room_count(tx: &mut WriteTx, user: Uuid) -> ApiResult<i64> {
    Ok(q!(
        tx,
        one,
        r#"SELECT COUNT(*) AS "n!: i64" FROM room_members WHERE user_id = $1"#,
        Id(user)
        => |r| r.n
    ))
}

/// The rooms of `user` with their other members.
pub async fn rooms_and_peers(db: &Db, user: Uuid) -> ApiResult<Vec<(Uuid, Vec<Uuid>)>> {
    let rows = q!(
        db,
        all,
        r#"SELECT m1.room_id AS "room_id: Id", m2.user_id AS "user_id: Id" FROM room_members m1
           JOIN room_members m2 ON m2.room_id = m1.room_id
           WHERE m1.user_id = $1 AND m2.user_id <> $1 ORDER BY m1.room_id"#,
        Id(user)
        => |r| (r.room_id.0, r.user_id.0)
    );
    let mut out: Vec<(Uuid, Vec<Uuid>)> = Vec::new();
    for (room, member) in rows {
        match out.last_mut() {
            Some((r, members)) if *r == room => members.push(member),
            _ => out.push((room, vec![member])),
        }
    }
    Ok(out)
}

/// The members of `room`, read inside a write transaction (after
/// `rooms::lock_room`: no membership change can come between this read and
/// the commit).
pub async fn member_ids_in(tx: &mut WriteTx, room: Uuid) -> ApiResult<Vec<Uuid>> {
    Ok(q!(
        tx,
        all,
        r#"SELECT user_id AS "user_id: Id" FROM room_members WHERE room_id = $1"#,
        Id(room)
        => |r| r.user_id.0
    ))
}

/// The members of `room`.
pub async fn member_ids(db: &Db, room: Uuid) -> ApiResult<Vec<Uuid>> {
    Ok(q!(
        db,
        all,
        r#"SELECT user_id AS "user_id: Id" FROM room_members WHERE room_id = $1"#,
        Id(room)
        => |r| r.user_id.0
    ))
}

/// The members of `room` with the room's membership epoch they are the members
/// of (read together, in one statement); no epoch when the room has no members.
pub async fn members_with_epoch(db: &Db, room: Uuid) -> ApiResult<(Option<i64>, Vec<Uuid>)> {
    let rows = q!(
        db,
        all,
        r#"SELECT r.member_epoch AS "member_epoch!", m.user_id AS "user_id!: Id"
           FROM rooms r JOIN room_members m ON m.room_id = r.id WHERE r.id = $1"#,
        Id(room)
        => |r| (r.member_epoch, r.user_id.0)
    );
    let epoch = rows.first().map(|(epoch, _)| *epoch);
    Ok((epoch, rows.into_iter().map(|(_, user)| user).collect()))
}

/// The rooms of `user` with each room's latest `seq` (where a socket's live
/// stream of each room starts) and the user's join point.
pub async fn last_seqs(db: &Db, user: Uuid) -> ApiResult<Vec<(Uuid, i64, i64)>> {
    Ok(q!(
        db,
        all,
        r#"SELECT r.id AS "id: Id", r.last_seq, m.joined_seq FROM room_members m JOIN rooms r ON r.id = m.room_id
           WHERE m.user_id = $1"#,
        Id(user)
        => |r| (r.id.0, r.last_seq, r.joined_seq)
    ))
}
