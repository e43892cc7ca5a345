//! Membership reads: whether a user is a member of a room, and the audiences
//! of events (a room's members, a user's peers).

use uuid::Uuid;

use super::{Id, q};
use crate::db::Db;
use crate::error::ApiResult;
use crate::membership::not_a_member;

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
/// stream of each room starts).
pub async fn last_seqs(db: &Db, user: Uuid) -> ApiResult<Vec<(Uuid, i64)>> {
    Ok(q!(
        db,
        all,
        r#"SELECT r.id AS "id: Id", r.last_seq FROM room_members m JOIN rooms r ON r.id = m.room_id
           WHERE m.user_id = $1"#,
        Id(user)
        => |r| (r.id.0, r.last_seq)
    ))
}
