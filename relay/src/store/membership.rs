//! Membership reads: whether a user is a member of a room, and the audiences
//! of events (a room's members, a user's peers).

use uuid::Uuid;

use crate::db::Db;
use crate::error::ApiResult;
use crate::membership::not_a_member;

/// The caller's view of a room they belong to.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Membership {
    pub kind: String,
    pub owner_id: String,
    pub joined_seq: i64,
    pub last_seq: i64,
}

impl Membership {
    pub fn is_owner(&self, user: Uuid) -> bool {
        self.owner_id == user.to_string()
    }
    pub fn is_direct(&self) -> bool {
        self.kind == "direct"
    }
}

/// The caller's membership of `room`, or 404 `not_a_member` (also for unknown rooms).
pub async fn require_member(db: &Db, room: Uuid, user: Uuid) -> ApiResult<Membership> {
    sqlx::query_as::<_, Membership>(
        "SELECT r.kind, r.owner_id, m.joined_seq, r.last_seq FROM rooms r \
         JOIN room_members m ON m.room_id = r.id AND m.user_id = $2 WHERE r.id = $1",
    )
    .bind(room.to_string())
    .bind(user.to_string())
    .fetch_optional(db.read())
    .await?
    .ok_or_else(not_a_member)
}

/// Users sharing at least one room with `user` (not including them).
pub async fn peers_of(db: &Db, user: Uuid) -> ApiResult<Vec<Uuid>> {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT m2.user_id FROM room_members m1 JOIN room_members m2 ON m2.room_id = m1.room_id \
         WHERE m1.user_id = $1 AND m2.user_id <> $1",
    )
    .bind(user.to_string())
    .fetch_all(db.read())
    .await?;
    rows.iter()
        .map(|s| crate::ids::parse_stored_id("room_members.user_id", s))
        .collect()
}

/// The rooms of `user` with their other members.
pub async fn rooms_and_peers(db: &Db, user: Uuid) -> ApiResult<Vec<(Uuid, Vec<Uuid>)>> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT m1.room_id, m2.user_id FROM room_members m1 JOIN room_members m2 ON m2.room_id = m1.room_id \
         WHERE m1.user_id = $1 AND m2.user_id <> $1 ORDER BY m1.room_id",
    )
    .bind(user.to_string())
    .fetch_all(db.read())
    .await?;
    let mut out: Vec<(Uuid, Vec<Uuid>)> = Vec::new();
    for (room, member) in rows {
        let (Ok(room), Ok(member)) = (Uuid::parse_str(&room), Uuid::parse_str(&member)) else {
            continue;
        };
        match out.last_mut() {
            Some((r, members)) if *r == room => members.push(member),
            _ => out.push((room, vec![member])),
        }
    }
    Ok(out)
}

/// The members of `room`.
pub async fn member_ids(db: &Db, room: Uuid) -> ApiResult<Vec<Uuid>> {
    let rows: Vec<String> =
        sqlx::query_scalar("SELECT user_id FROM room_members WHERE room_id = $1")
            .bind(room.to_string())
            .fetch_all(db.read())
            .await?;
    rows.iter()
        .map(|s| crate::ids::parse_stored_id("room_members.user_id", s))
        .collect()
}
