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
    RoomDetails, RoomMember,
};
use uuid::Uuid;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::attachments;
use crate::audit::{self, event};
use crate::auth::AuthUser;
use crate::db::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::membership::{Membership, member_ids, require_member};
use crate::state::AppState;
use crate::store::rooms;
pub use crate::store::rooms::{addable_user, details, hand_over_rooms};
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

/// New room peers learn who of each other is online (presence is otherwise
/// announced only when a socket connects or the last one closes): each online
/// newcomer is announced to the other members, each online member to the
/// newcomers.
fn introduce(state: &AppState, newcomers: &[Uuid], members: &[Uuid]) {
    if !state.config.ws_presence || !state.events.has_subscribers() {
        return;
    }
    let online = |u: &Uuid| state.realtime.is_online(*u);
    for n in newcomers.iter().filter(|n| online(n)) {
        let others: Vec<Uuid> = members.iter().filter(|m| *m != n).copied().collect();
        state.events.publish(
            &others,
            ServerFrame::Presence {
                user_id: *n,
                online: true,
            },
        );
    }
    for m in members
        .iter()
        .filter(|m| !newcomers.contains(m) && online(m))
    {
        state.events.publish(
            newcomers,
            ServerFrame::Presence {
                user_id: *m,
                online: true,
            },
        );
    }
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
    if rooms::existing_users(&state.db, &others).await? != others.len() {
        return Err(ApiError::bad_request(
            codes::VALIDATION_FAILED,
            "`member_ids` names an unknown user",
        ));
    }
    let id = Uuid::now_v7();
    let now = now_ms();
    let mut tx = state.db.begin_write().await?;
    rooms::create_group(&mut tx, id, &name, me.id(), now).await?;
    rooms::insert_member(&mut tx, id, me.id(), now).await?;
    for u in &others {
        rooms::insert_member(&mut tx, id, *u, now).await?;
    }
    tx.commit().await?;
    let mut audience = others;
    audience.push(me.id());
    publish(&state, audience.clone(), id, RoomChange::Created);
    introduce(&state, &audience, &audience);
    Ok((
        StatusCode::CREATED,
        Json(rooms::details(&state.db, id, me.id()).await?),
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
    if !rooms::addable_user(&state.db, req.user_id).await? {
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
    let created = rooms::create_direct(&mut tx, id, me.id(), &key, now).await?;
    if created {
        rooms::insert_member(&mut tx, id, a, now).await?;
        rooms::insert_member(&mut tx, id, b, now).await?;
    }
    let room = rooms::direct_room(&mut tx, &key).await?;
    tx.commit().await?;
    if created {
        publish(&state, vec![a, b], room, RoomChange::Created);
        introduce(&state, &[a, b], &[a, b]);
    }
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(rooms::details(&state.db, room, me.id()).await?),
    ))
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
    Ok(Json(
        rooms::page_of_member(&state.db, me.id(), after, limit).await?,
    ))
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
    Ok(Json(rooms::details(&state.db, id, me.id()).await?))
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
    rooms::rename(state.db.writer(), id, &name, now_ms()).await?;
    publish(
        &state,
        member_ids(&state.db, id).await?,
        id,
        RoomChange::Renamed,
    );
    Ok(Json(rooms::details(&state.db, id, me.id()).await?))
}

/// Deletes a room with its messages and attachments (rows cascade; files are
/// removed after the commit) and tells its members.
async fn delete_room(state: &AppState, id: Uuid, actor: Uuid) -> ApiResult<()> {
    let audience = member_ids(&state.db, id).await?;
    let files = attachments::file_ids_of_room(&state.db, id).await?;
    rooms::delete(state.db.writer(), id).await?;
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
    if !rooms::addable_user(&state.db, req.user_id).await? {
        return Err(ApiError::not_found());
    }
    let now = now_ms();
    let mut tx = state.db.begin_write().await?;
    rooms::lock_room(&mut tx, id, now).await?;
    let count = rooms::member_count(&mut tx, id).await?;
    if count >= MAX_ROOM_MEMBERS {
        return Err(ApiError::conflict(
            codes::CONFLICT,
            format!("a room has at most {MAX_ROOM_MEMBERS} members"),
        ));
    }
    if !rooms::insert_member(&mut tx, id, req.user_id, now).await? {
        return Err(ApiError::conflict(
            codes::ALREADY_MEMBER,
            "this user is already a member",
        ));
    }
    tx.commit().await?;
    let members = rooms::members(&state.db, id, m.owner_id).await?;
    let ids: Vec<Uuid> = members.iter().map(|x| x.user_id).collect();
    publish(&state, ids.clone(), id, RoomChange::MemberAdded);
    introduce(&state, &[req.user_id], &ids);
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
    let now = now_ms();
    let mut tx = state.db.begin_write().await?;
    rooms::lock_room(&mut tx, id, now).await?;
    if !rooms::remove_member(&mut tx, id, user_id).await? {
        // Removed (or left) concurrently.
        return Err(ApiError::not_found());
    }
    if rooms::member_count(&mut tx, id).await? == 0 {
        // The last member left: nobody could ever read the room again.
        rooms::delete_in(&mut tx, id).await?;
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
    rooms::pass_ownership(&mut tx, id, user_id).await?;
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
