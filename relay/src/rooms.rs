//! Rooms and membership: `/api/v1/rooms...`.
//!
//! Only members read or write anything of a room; to everyone else a room does
//! not exist (404 `not_a_member`, the same answer as for an unknown room). The
//! creator owns a group room; the owner renames, deletes and manages members; a
//! member may only leave. Direct rooms have exactly two members, one per pair
//! of users (a unique key makes concurrent opens race-free), and their
//! membership cannot change.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use sotto_core::api::ServerFrame;
use sotto_core::api::pagination::{Page, PageQuery, effective_limit};
use sotto_core::api::problem::{Problem, codes};
use sotto_core::api::rooms::{
    AddMemberRequest, CreateRoomRequest, DirectRoomRequest, PatchRoomRequest, Room, RoomChange,
    RoomDetails, RoomKind, RoomMember,
};
use uuid::Uuid;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::attachments;
use crate::audit::{self, event};
use crate::auth::AuthUser;
use crate::db::{Db, now_ms, rfc3339};
use crate::error::{ApiError, ApiResult};
use crate::ids::parse_id;
use crate::json::ApiJson;
use crate::membership::{Membership, member_ids, not_a_member, require_member};
use crate::state::AppState;
use crate::validate::check_label;

/// Most members of one room (a message is wrapped for every device of every member).
pub const MAX_ROOM_MEMBERS: i64 = 1000;

/// After `user`'s account was deleted: tells each room's remaining members, and
/// everyone who shared a room with them that their keys are gone.
pub fn announce_user_deleted(state: &AppState, user: Uuid, rooms: Vec<(Uuid, Vec<Uuid>)>) {
    let mut peers: Vec<Uuid> = Vec::new();
    for (room, members) in rooms {
        peers.extend(&members);
        publish(state, members, room, RoomChange::MemberRemoved);
    }
    state
        .events
        .publish(&peers, ServerFrame::KeysChanged { user_id: user });
}

const ROOM_SELECT: &str = "SELECT r.id, r.kind, r.name, r.owner_id, r.last_seq, r.created_at, r.updated_at, \
    (SELECT COUNT(*) FROM messages x WHERE x.room_id = r.id AND x.seq > m.read_seq \
       AND x.sender_id <> m.user_id AND x.deleted_at IS NULL) AS unread \
    FROM room_members m JOIN rooms r ON r.id = m.room_id";

#[derive(sqlx::FromRow)]
struct RoomRow {
    id: String,
    kind: String,
    name: String,
    owner_id: String,
    last_seq: i64,
    created_at: i64,
    updated_at: i64,
    unread: i64,
}

impl RoomRow {
    fn to_api(&self) -> ApiResult<Room> {
        Ok(Room {
            id: parse_id(&self.id)?,
            name: self.name.clone(),
            kind: match self.kind.as_str() {
                "direct" => RoomKind::Direct,
                "group" => RoomKind::Group,
                other => {
                    return Err(ApiError::internal(crate::db::corrupt("rooms.kind", &other)));
                }
            },
            owner_id: parse_id(&self.owner_id)?,
            created_at: rfc3339(self.created_at),
            updated_at: rfc3339(self.updated_at),
            unread: crate::db::u64_of("unread", self.unread)?,
            last_seq: crate::db::u64_of("last_seq", self.last_seq)?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct MemberRow {
    user_id: String,
    username: String,
    display_name: Option<String>,
    joined_at: i64,
}

async fn members(db: &Db, room: Uuid, owner: &str) -> ApiResult<Vec<RoomMember>> {
    let rows = sqlx::query_as::<_, MemberRow>(
        "SELECT m.user_id, u.username, u.display_name, m.joined_at FROM room_members m \
         JOIN users u ON u.id = m.user_id WHERE m.room_id = $1 ORDER BY m.joined_at, u.username",
    )
    .bind(room.to_string())
    .fetch_all(db.read())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(RoomMember {
                user_id: parse_id(&r.user_id)?,
                username: r.username.clone(),
                display_name: r.display_name.clone(),
                is_owner: r.user_id == owner,
                joined_at: rfc3339(r.joined_at),
            })
        })
        .collect()
}

/// The room as `viewer` (a member) sees it, with its members; 404 otherwise.
pub async fn details(db: &Db, room: Uuid, viewer: Uuid) -> ApiResult<RoomDetails> {
    let row = sqlx::query_as::<_, RoomRow>(sqlx::AssertSqlSafe(format!(
        "{ROOM_SELECT} WHERE m.user_id = $1 AND r.id = $2"
    )))
    .bind(viewer.to_string())
    .bind(room.to_string())
    .fetch_optional(db.read())
    .await?
    .ok_or_else(not_a_member)?;
    let members = members(db, room, &row.owner_id).await?;
    Ok(RoomDetails {
        room: row.to_api()?,
        members,
    })
}

/// Adds `user` to `room` inside `tx`, joining at the room's current `seq` (no
/// earlier history, nothing unread). False when they already are a member.
async fn insert_member(
    conn: &mut sqlx::AnyConnection,
    room: &str,
    user: &str,
    now: i64,
) -> ApiResult<bool> {
    let added = sqlx::query(
        "INSERT INTO room_members (room_id, user_id, joined_at, joined_seq, delivered_seq, delivered_at, read_seq, read_at) \
         SELECT r.id, $2, $3, r.last_seq, r.last_seq, $3, r.last_seq, $3 FROM rooms r WHERE r.id = $1 \
         ON CONFLICT (room_id, user_id) DO NOTHING",
    )
    .bind(room)
    .bind(user)
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(added > 0)
}

/// Whether `id` is a user others may add: an account with a verified address
/// (the same set search finds). Anyone else is answered like an unknown id.
pub async fn addable_user(db: &Db, id: Uuid) -> ApiResult<bool> {
    Ok(existing_users(db, &[id]).await? == 1)
}

async fn existing_users(db: &Db, ids: &[Uuid]) -> ApiResult<usize> {
    if ids.is_empty() {
        return Ok(0);
    }
    let sql = format!(
        "SELECT COUNT(*) FROM users WHERE email_verified = 1 AND id IN ({})",
        Db::placeholders(1, ids.len())
    );
    let mut q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql));
    for id in ids {
        q = q.bind(id.to_string());
    }
    let n = crate::db::u64_of("count", q.fetch_one(db.read()).await?)?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// Locks the room's row for the rest of the transaction (PostgreSQL; SQLite
/// has one writer anyway), stamps `updated_at` and bumps `member_epoch`, so
/// membership changes of one room serialize and a post racing one notices (it
/// re-checks the epoch under the same row lock). 404 when the room is gone.
async fn lock_room(conn: &mut sqlx::AnyConnection, room: &str, now: i64) -> ApiResult<()> {
    let n = sqlx::query(
        "UPDATE rooms SET updated_at = $1, member_epoch = member_epoch + 1 WHERE id = $2",
    )
    .bind(now)
    .bind(room)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if n == 0 {
        return Err(not_a_member());
    }
    Ok(())
}

fn publish(state: &AppState, audience: Vec<Uuid>, room: Uuid, change: RoomChange) {
    state.events.publish(
        &audience,
        ServerFrame::Room {
            room_id: room,
            change,
        },
    );
}

#[utoipa::path(post, path = "/api/v1/rooms", tag = "rooms", request_body = CreateRoomRequest,
    responses((status = 201, body = RoomDetails), (status = 400, body = Problem), (status = 401, body = Problem)),
    security(("bearer" = [])))]
/// Create a group room; you own it. `member_ids` are added at once.
pub async fn create(
    State(state): State<AppState>,
    me: AuthUser,
    ApiJson(req): ApiJson<CreateRoomRequest>,
) -> ApiResult<(StatusCode, Json<RoomDetails>)> {
    let name = check_label(&req.name, "name", 128)?;
    let mut others = req.member_ids.unwrap_or_default();
    others.sort_unstable();
    others.dedup();
    others.retain(|u| *u != me.id());
    if others.len() >= usize::try_from(MAX_ROOM_MEMBERS).unwrap_or(usize::MAX) {
        return Err(ApiError::bad_request(
            codes::VALIDATION_FAILED,
            format!("a room has at most {MAX_ROOM_MEMBERS} members"),
        ));
    }
    if existing_users(&state.db, &others).await? != others.len() {
        return Err(ApiError::bad_request(
            codes::VALIDATION_FAILED,
            "`member_ids` names an unknown user",
        ));
    }
    let id = Uuid::now_v7();
    let (rid, now) = (id.to_string(), now_ms());
    let mut tx = state.db.begin_write().await?;
    sqlx::query(
        "INSERT INTO rooms (id, kind, name, owner_id, direct_key, last_seq, created_at, updated_at) \
         VALUES ($1, 'group', $2, $3, NULL, 0, $4, $4)",
    )
    .bind(&rid)
    .bind(&name)
    .bind(me.id().to_string())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    insert_member(&mut tx, &rid, &me.id().to_string(), now).await?;
    for u in &others {
        insert_member(&mut tx, &rid, &u.to_string(), now).await?;
    }
    tx.commit().await?;
    let mut audience = others;
    audience.push(me.id());
    publish(&state, audience, id, RoomChange::Created);
    Ok((
        StatusCode::CREATED,
        Json(details(&state.db, id, me.id()).await?),
    ))
}

#[utoipa::path(post, path = "/api/v1/rooms/direct", tag = "rooms", request_body = DirectRoomRequest,
    responses((status = 200, body = RoomDetails, description = "the existing direct room"),
        (status = 201, body = RoomDetails, description = "a new direct room"),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
/// The direct (two-person) room with `user_id`: the existing one, or a new one.
/// Concurrent calls from both sides end in the same room.
pub async fn direct(
    State(state): State<AppState>,
    me: AuthUser,
    ApiJson(req): ApiJson<DirectRoomRequest>,
) -> ApiResult<(StatusCode, Json<RoomDetails>)> {
    if req.user_id == me.id() {
        return Err(ApiError::bad_request(
            codes::CANNOT_TARGET_SELF,
            "a direct room needs another user",
        ));
    }
    if !addable_user(&state.db, req.user_id).await? {
        return Err(ApiError::not_found());
    }
    let (a, b) = if me.id() < req.user_id {
        (me.id(), req.user_id)
    } else {
        (req.user_id, me.id())
    };
    let key = format!("{a}:{b}");
    let id = Uuid::now_v7();
    let now = now_ms();
    let mut tx = state.db.begin_write().await?;
    let created = sqlx::query(
        "INSERT INTO rooms (id, kind, name, owner_id, direct_key, last_seq, created_at, updated_at) \
         VALUES ($1, 'direct', '', $2, $3, 0, $4, $4) ON CONFLICT (direct_key) DO NOTHING",
    )
    .bind(id.to_string())
    .bind(me.id().to_string())
    .bind(&key)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        > 0;
    if created {
        insert_member(&mut tx, &id.to_string(), &a.to_string(), now).await?;
        insert_member(&mut tx, &id.to_string(), &b.to_string(), now).await?;
    }
    let room: String = sqlx::query_scalar("SELECT id FROM rooms WHERE direct_key = $1")
        .bind(&key)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    let room = parse_id(&room)?;
    if created {
        publish(&state, vec![a, b], room, RoomChange::Created);
    }
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(details(&state.db, room, me.id()).await?)))
}

#[utoipa::path(get, path = "/api/v1/rooms", tag = "rooms", params(PageQuery),
    responses((status = 200, body = Page<Room>), (status = 400, body = Problem), (status = 401, body = Problem)),
    security(("bearer" = [])))]
/// The rooms you belong to, oldest first, each with its unread count.
pub async fn list(
    State(state): State<AppState>,
    me: AuthUser,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Page<Room>>> {
    let limit = effective_limit(q.limit);
    let after = crate::pagination::parse_cursor(&q.cursor)?;
    let rows = sqlx::query_as::<_, RoomRow>(sqlx::AssertSqlSafe(format!(
        "{ROOM_SELECT} WHERE m.user_id = $1 AND r.id > $2 ORDER BY r.id LIMIT $3"
    )))
    .bind(me.id().to_string())
    .bind(after)
    .bind(i64::from(limit) + 1)
    .fetch_all(state.db.read())
    .await?;
    Ok(Json(crate::pagination::try_page_of(
        rows,
        limit,
        |r| r.id.clone(),
        RoomRow::to_api,
    )?))
}

#[utoipa::path(get, path = "/api/v1/rooms/{id}", tag = "rooms", params(("id" = Uuid, Path)),
    responses((status = 200, body = RoomDetails), (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
/// A room's details and members (members only).
pub async fn get(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<RoomDetails>> {
    Ok(Json(details(&state.db, id, me.id()).await?))
}

fn owner_only(m: &Membership, me: Uuid) -> ApiResult<()> {
    if !m.is_owner(me) {
        return Err(ApiError::forbidden("only the room's owner may do this"));
    }
    Ok(())
}

fn not_direct(m: &Membership) -> ApiResult<()> {
    if m.is_direct() {
        return Err(ApiError::bad_request(
            codes::DIRECT_ROOM,
            "a direct room has exactly its two members and no name",
        ));
    }
    Ok(())
}

#[utoipa::path(patch, path = "/api/v1/rooms/{id}", tag = "rooms", params(("id" = Uuid, Path)), request_body = PatchRoomRequest,
    responses((status = 200, body = RoomDetails), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
/// Rename a room (owner only; not a direct room).
pub async fn patch(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<Uuid>,
    ApiJson(req): ApiJson<PatchRoomRequest>,
) -> ApiResult<Json<RoomDetails>> {
    let m = require_member(&state.db, id, me.id()).await?;
    owner_only(&m, me.id())?;
    not_direct(&m)?;
    let name = check_label(&req.name, "name", 128)?;
    sqlx::query("UPDATE rooms SET name = $1, updated_at = $2 WHERE id = $3")
        .bind(&name)
        .bind(now_ms())
        .bind(id.to_string())
        .execute(state.db.write())
        .await?;
    publish(
        &state,
        member_ids(&state.db, id).await?,
        id,
        RoomChange::Renamed,
    );
    Ok(Json(details(&state.db, id, me.id()).await?))
}

/// After a user is deleted (inside that transaction): their rooms pass to the
/// longest-standing remaining member, and rooms with no members left are
/// deleted. Returns the attachment files to remove after the commit.
pub async fn hand_over_rooms(conn: &mut sqlx::AnyConnection, user: Uuid) -> ApiResult<Vec<Uuid>> {
    let uid = user.to_string();
    sqlx::query(
        "UPDATE rooms SET owner_id = (SELECT m.user_id FROM room_members m WHERE m.room_id = rooms.id \
           ORDER BY m.joined_at, m.user_id LIMIT 1) \
         WHERE owner_id = $1 AND EXISTS (SELECT 1 FROM room_members m WHERE m.room_id = rooms.id)",
    )
    .bind(&uid)
    .execute(&mut *conn)
    .await?;
    let files: Vec<String> = sqlx::query_scalar(
        "SELECT a.id FROM attachments a JOIN rooms r ON r.id = a.room_id \
         WHERE a.data IS NULL AND NOT EXISTS (SELECT 1 FROM room_members m WHERE m.room_id = r.id)",
    )
    .fetch_all(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM rooms WHERE NOT EXISTS (SELECT 1 FROM room_members m WHERE m.room_id = rooms.id)")
        .execute(&mut *conn)
        .await?;
    files
        .iter()
        .map(|s| crate::ids::parse_stored_id("attachments.id", s))
        .collect()
}

/// Deletes a room with its messages and attachments (rows cascade; files are
/// removed after the commit) and tells its members.
async fn delete_room(state: &AppState, id: Uuid, actor: Uuid) -> ApiResult<()> {
    let audience = member_ids(&state.db, id).await?;
    let files = attachments::file_ids_of_room(&state.db, id).await?;
    sqlx::query("DELETE FROM rooms WHERE id = $1")
        .bind(id.to_string())
        .execute(state.db.write())
        .await?;
    attachments::remove_files(state, &files).await;
    audit::record(
        &state.db,
        event::ROOM_DELETED,
        Some(actor),
        Some(id),
        None,
        None,
    )
    .await;
    publish(state, audience, id, RoomChange::Deleted);
    Ok(())
}

#[utoipa::path(delete, path = "/api/v1/rooms/{id}", tag = "rooms", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
/// Delete a room with all its messages and attachments (owner only).
pub async fn delete(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    let m = require_member(&state.db, id, me.id()).await?;
    // A direct room belongs to both of its members: either may delete it.
    if !m.is_direct() {
        owner_only(&m, me.id())?;
    }
    delete_room(&state, id, me.id()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/rooms/{id}/members", tag = "rooms", params(("id" = Uuid, Path)), request_body = AddMemberRequest,
    responses((status = 201, body = RoomMember), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
/// Add a member (owner only; not in a direct room). The new member sees the
/// room's messages from now on, not its earlier history.
pub async fn add_member(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<Uuid>,
    ApiJson(req): ApiJson<AddMemberRequest>,
) -> ApiResult<(StatusCode, Json<RoomMember>)> {
    let m = require_member(&state.db, id, me.id()).await?;
    owner_only(&m, me.id())?;
    not_direct(&m)?;
    if !addable_user(&state.db, req.user_id).await? {
        return Err(ApiError::not_found());
    }
    let (rid, now) = (id.to_string(), now_ms());
    let mut tx = state.db.begin_write().await?;
    lock_room(&mut tx, &rid, now).await?;
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM room_members WHERE room_id = $1")
        .bind(&rid)
        .fetch_one(&mut *tx)
        .await?;
    if count >= MAX_ROOM_MEMBERS {
        return Err(ApiError::conflict(
            codes::CONFLICT,
            format!("a room has at most {MAX_ROOM_MEMBERS} members"),
        ));
    }
    if !insert_member(&mut tx, &rid, &req.user_id.to_string(), now).await? {
        return Err(ApiError::conflict(
            codes::ALREADY_MEMBER,
            "this user is already a member",
        ));
    }
    tx.commit().await?;
    let members = members(&state.db, id, &m.owner_id).await?;
    publish(
        &state,
        members.iter().map(|x| x.user_id).collect(),
        id,
        RoomChange::MemberAdded,
    );
    let added = members
        .into_iter()
        .find(|x| x.user_id == req.user_id)
        .ok_or_else(|| ApiError::internal("added member vanished"))?;
    Ok((StatusCode::CREATED, Json(added)))
}

#[utoipa::path(delete, path = "/api/v1/rooms/{id}/members/{user_id}", tag = "rooms",
    params(("id" = Uuid, Path), ("user_id" = Uuid, Path)),
    responses((status = 204), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
/// Remove a member (owner) or leave (yourself). When the owner leaves, the
/// longest-standing member becomes the owner; when the last member leaves, the
/// room is deleted. Direct rooms cannot be left: delete them instead.
pub async fn remove_member(
    State(state): State<AppState>,
    me: AuthUser,
    Path((id, user_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    let m = require_member(&state.db, id, me.id()).await?;
    if user_id != me.id() {
        owner_only(&m, me.id())?;
    }
    not_direct(&m)?;
    let audience = member_ids(&state.db, id).await?;
    if !audience.contains(&user_id) {
        return Err(ApiError::not_found());
    }
    let files = attachments::file_ids_of_room(&state.db, id).await?;
    let (rid, uid, now) = (id.to_string(), user_id.to_string(), now_ms());
    let mut tx = state.db.begin_write().await?;
    lock_room(&mut tx, &rid, now).await?;
    let removed = sqlx::query("DELETE FROM room_members WHERE room_id = $1 AND user_id = $2")
        .bind(&rid)
        .bind(&uid)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if removed == 0 {
        // Removed (or left) concurrently.
        return Err(ApiError::not_found());
    }
    let remaining: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM room_members WHERE room_id = $1")
        .bind(&rid)
        .fetch_one(&mut *tx)
        .await?;
    if remaining == 0 {
        // The last member left: nobody could ever read the room again.
        sqlx::query("DELETE FROM rooms WHERE id = $1")
            .bind(&rid)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        attachments::remove_files(&state, &files).await;
        audit::record(
            &state.db,
            event::ROOM_DELETED,
            Some(me.id()),
            Some(id),
            None,
            None,
        )
        .await;
        publish(&state, audience, id, RoomChange::Deleted);
        return Ok(StatusCode::NO_CONTENT);
    }
    sqlx::query(
        "UPDATE rooms SET owner_id = CASE WHEN owner_id = $1 THEN \
           (SELECT user_id FROM room_members WHERE room_id = $2 ORDER BY joined_at, user_id LIMIT 1) \
         ELSE owner_id END WHERE id = $2",
    )
    .bind(&uid)
    .bind(&rid)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    publish(&state, audience, id, RoomChange::MemberRemoved);
    Ok(StatusCode::NO_CONTENT)
}

/// The routes of this feature, with their OpenAPI description (merged in
/// [`crate::app::api`]). Rooms and membership.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(direct))
        .routes(routes!(get, patch, delete))
        .routes(routes!(add_member))
        .routes(routes!(remove_member))
}
