//! Pending invitations to rooms.

use sotto_core::api::invitations::{Invitation, RoomInvitee};
use sotto_core::api::pagination::Page;
use sotto_core::api::users::PublicUser;
use uuid::Uuid;

use super::{Id, Millis, parse_kind, q};
use crate::db::{Db, ReadTx, WriteTx, rfc3339};
use crate::error::ApiResult;

/// An invitation as it is taken (accepted or declined).
#[derive(Debug, Clone, Copy)]
pub struct Taken {
    pub id: Uuid,
    pub room: Uuid,
    pub invitee: Uuid,
    pub inviter: Uuid,
}

/// Invites `invitee` to `room`; false when they are invited already.
pub async fn insert(
    tx: &mut WriteTx,
    id: Uuid,
    room: Uuid,
    invitee: Uuid,
    inviter: Uuid,
    now: i64,
) -> ApiResult<bool> {
    Ok(q!(
        tx,
        execute,
        "INSERT INTO invitations (id, room_id, invitee_id, inviter_id, created_at)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (room_id, invitee_id) DO NOTHING",
        Id(id),
        Id(room),
        Id(invitee),
        Id(inviter),
        Millis(now)
    ) > 0)
}

/// Invitations `inviter` sent that are still pending.
pub async fn count_sent(tx: &mut WriteTx, inviter: Uuid) -> ApiResult<i64> {
    Ok(q!(
        tx,
        one,
        r#"SELECT COUNT(*) AS "n!: i64" FROM invitations WHERE inviter_id = $1"#,
        Id(inviter)
        => |r| r.n
    ))
}

/// Invitations `invitee` has not answered yet.
pub async fn count_received(tx: &mut WriteTx, invitee: Uuid) -> ApiResult<i64> {
    Ok(q!(
        tx,
        one,
        r#"SELECT COUNT(*) AS "n!: i64" FROM invitations WHERE invitee_id = $1"#,
        Id(invitee)
        => |r| r.n
    ))
}

/// Members and pending invitees of `room` together (the room's size cap).
pub async fn room_size(tx: &mut WriteTx, room: Uuid) -> ApiResult<i64> {
    Ok(q!(
        tx,
        one,
        r#"SELECT (SELECT COUNT(*) FROM room_members WHERE room_id = $1)
             + (SELECT COUNT(*) FROM invitations WHERE room_id = $1) AS "n!: i64""#,
        Id(room)
        => |r| r.n
    ))
}

/// `invitee`'s pending invitation to `room`, if any.
pub async fn pending(tx: &mut WriteTx, room: Uuid, invitee: Uuid) -> ApiResult<Option<Uuid>> {
    Ok(q!(
        tx,
        optional,
        r#"SELECT id AS "id: Id" FROM invitations WHERE room_id = $1 AND invitee_id = $2"#,
        Id(room),
        Id(invitee)
        => |r| r.id.0
    ))
}

/// The room of `invitee`'s invitation `id`, if it is pending: read first, so
/// that the room is locked before the invitation is taken (every path locks
/// the room before it writes an invitation: one order, no deadlock).
pub async fn room_of(tx: &mut WriteTx, id: Uuid, invitee: Uuid) -> ApiResult<Option<Uuid>> {
    Ok(q!(
        tx,
        optional,
        r#"SELECT room_id AS "room_id: Id" FROM invitations WHERE id = $1 AND invitee_id = $2"#,
        Id(id),
        Id(invitee)
        => |r| r.room_id.0
    ))
}

/// The rooms of the pending invitations between `a` and `b`, either way (a
/// block locks them, then removes their invitations room by room).
pub async fn rooms_between(tx: &mut WriteTx, a: Uuid, b: Uuid) -> ApiResult<Vec<Uuid>> {
    Ok(q!(
        tx,
        all,
        r#"SELECT room_id AS "room_id: Id" FROM invitations
           WHERE (invitee_id = $1 AND inviter_id = $2) OR (invitee_id = $2 AND inviter_id = $1)"#,
        Id(a),
        Id(b)
        => |r| r.room_id.0
    ))
}

/// Removes invitation `id` of `invitee` (accepting, declining); what it was.
pub async fn take(tx: &mut WriteTx, id: Uuid, invitee: Uuid) -> ApiResult<Option<Taken>> {
    Ok(q!(
        tx,
        optional,
        r#"DELETE FROM invitations WHERE id = $1 AND invitee_id = $2
           RETURNING id AS "id: Id", room_id AS "room_id: Id", invitee_id AS "invitee_id: Id",
           inviter_id AS "inviter_id: Id""#,
        Id(id),
        Id(invitee)
        => |r| Taken { id: r.id.0, room: r.room_id.0, invitee: r.invitee_id.0, inviter: r.inviter_id.0 }
    ))
}

/// Removes `invitee`'s pending invitation to `room` (withdrawn); what it was.
pub async fn withdraw(tx: &mut WriteTx, room: Uuid, invitee: Uuid) -> ApiResult<Option<Taken>> {
    Ok(q!(
        tx,
        optional,
        r#"DELETE FROM invitations WHERE room_id = $1 AND invitee_id = $2
           RETURNING id AS "id: Id", room_id AS "room_id: Id", invitee_id AS "invitee_id: Id",
           inviter_id AS "inviter_id: Id""#,
        Id(room),
        Id(invitee)
        => |r| Taken { id: r.id.0, room: r.room_id.0, invitee: r.invitee_id.0, inviter: r.inviter_id.0 }
    ))
}

/// Removes the pending invitations between `a` and `b`, either way, in
/// `room` (a block, room by room, each after its lock).
pub async fn remove_between_in(
    tx: &mut WriteTx,
    room: Uuid,
    a: Uuid,
    b: Uuid,
) -> ApiResult<Vec<Taken>> {
    Ok(q!(
        tx,
        all,
        r#"DELETE FROM invitations
           WHERE room_id = $1 AND ((invitee_id = $2 AND inviter_id = $3) OR (invitee_id = $3 AND inviter_id = $2))
           RETURNING id AS "id: Id", room_id AS "room_id: Id", invitee_id AS "invitee_id: Id",
           inviter_id AS "inviter_id: Id""#,
        Id(room),
        Id(a),
        Id(b)
        => |r| Taken { id: r.id.0, room: r.room_id.0, invitee: r.invitee_id.0, inviter: r.inviter_id.0 }
    ))
}

/// The pending invitations of `room`, as `(invitation, invitee)` (to tell the
/// invitees when the room goes).
pub async fn of_room_ids(db: &Db, room: Uuid) -> ApiResult<Vec<(Uuid, Uuid)>> {
    Ok(q!(
        db,
        all,
        r#"SELECT id AS "id: Id", invitee_id AS "invitee_id: Id" FROM invitations WHERE room_id = $1"#,
        Id(room)
        => |r| (r.id.0, r.invitee_id.0)
    ))
}

/// `invitee`'s pending invitation to `room` as written in `tx`, as the
/// room's members see it (the answer to inviting them: read before the
/// commit, so a block or withdrawal right after it cannot make the answer
/// fail).
pub async fn invitee_in(
    tx: &mut WriteTx,
    room: Uuid,
    invitee: Uuid,
) -> ApiResult<Option<RoomInvitee>> {
    Ok(q!(
        tx,
        optional,
        r#"SELECT i.invitee_id AS "invitee_id: Id", u.username, u.display_name,
           i.inviter_id AS "inviter_id: Id", i.created_at AS "created_at: Millis"
           FROM invitations i JOIN users u ON u.id = i.invitee_id
           WHERE i.room_id = $1 AND i.invitee_id = $2"#,
        Id(room),
        Id(invitee)
        => |r| RoomInvitee {
            user_id: r.invitee_id.0,
            username: r.username,
            display_name: r.display_name,
            invited_by: r.inviter_id.0,
            invited_at: rfc3339(r.created_at.0),
        }
    ))
}

/// The pending invitees of `room`, as its members see them.
pub async fn invitees(tx: &mut ReadTx, room: Uuid) -> ApiResult<Vec<RoomInvitee>> {
    Ok(q!(
        tx,
        all,
        r#"SELECT i.invitee_id AS "invitee_id: Id", u.username, u.display_name,
           i.inviter_id AS "inviter_id: Id", i.created_at AS "created_at: Millis"
           FROM invitations i JOIN users u ON u.id = i.invitee_id
           WHERE i.room_id = $1 ORDER BY i.created_at, u.username"#,
        Id(room)
        => |r| RoomInvitee {
            user_id: r.invitee_id.0,
            username: r.username,
            display_name: r.display_name,
            invited_by: r.inviter_id.0,
            invited_at: rfc3339(r.created_at.0),
        }
    ))
}

/// A page of `invitee`'s pending invitations, by invitation id (oldest first:
/// ids are UUIDv7), after `after`.
pub async fn page_for(
    db: &Db,
    invitee: Uuid,
    after: Uuid,
    limit: u32,
) -> ApiResult<Page<Invitation>> {
    let rows = q!(
        db,
        all,
        r#"SELECT i.id AS "id: Id", i.room_id AS "room_id: Id", r.name, r.kind,
           i.inviter_id AS "inviter_id: Id", u.username, u.display_name,
           i.created_at AS "created_at: Millis"
           FROM invitations i JOIN rooms r ON r.id = i.room_id JOIN users u ON u.id = i.inviter_id
           WHERE i.invitee_id = $1 AND i.id > $2 ORDER BY i.id LIMIT $3"#,
        Id(invitee),
        Id(after),
        i64::from(limit) + 1
        => |r| (r.id.0, r.room_id.0, r.name, r.kind, r.inviter_id.0, r.username, r.display_name, r.created_at.0)
    );
    crate::pagination::try_page_of(
        rows,
        limit,
        |r| r.0.to_string(),
        |(id, room, name, kind, inviter, username, display_name, at)| {
            Ok(Invitation {
                id: *id,
                room_id: *room,
                room_name: name.clone(),
                room_kind: parse_kind(kind)?,
                inviter: PublicUser {
                    id: *inviter,
                    username: username.clone(),
                    display_name: display_name.clone(),
                },
                created_at: rfc3339(*at),
            })
        },
    )
}
