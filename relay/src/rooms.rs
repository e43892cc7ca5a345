//! Rooms and membership: `/api/v1/rooms...`.
//!
//! Only members read or write anything of a room; to everyone else a room does
//! not exist (404 `not_a_member`, the same answer as for an unknown room). The
//! creator owns a group room; the owner renames, deletes and manages members; a
//! member may only leave. Direct rooms have at most two members, one room per
//! pair of users (a unique key makes concurrent opens race-free), and their
//! membership cannot change by hand.
//!
//! **Consent** (`docs/relay.md`, "Consent: invitations and blocks"): a user
//! becomes a member at once only when they have the actor in their contacts;
//! anyone else is invited (`invitations.rs` answers). Between users one of
//! whom blocked the other there is neither (403 `blocked`). Caps: rooms per
//! user, members per room (pending invitations included), open invitations
//! sent and received, room creations and invitations per minute.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sotto_core::api::ServerFrame;
use sotto_core::api::invitations::{InvitationChange, RoomInvitee};
use sotto_core::api::pagination::{Page, PageQuery, effective_limit};
use sotto_core::api::problem::{Problem, codes};
use sotto_core::api::rooms::{
    AddMemberRequest, CreateRoomRequest, DirectRoomRequest, PatchRoomRequest, Room, RoomChange,
    RoomDetails, RoomMember,
};
use uuid::Uuid;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::audit::{self, event};
use crate::auth::AuthUser;
use crate::db::{WriteTx, now_ms};
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::membership::{Membership, member_ids, require_member};
use crate::ratelimit::Write;
use crate::state::AppState;
use crate::store;
use crate::store::rooms;
pub use crate::store::rooms::{addable_user, details, hand_over_rooms};
use crate::validate::check_label;

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
/// newcomers; never between users one of whom blocked the other.
pub async fn introduce(state: &AppState, newcomers: &[Uuid], members: &[Uuid]) {
    if !state.config.ws_presence || !state.events.has_subscribers() {
        return;
    }
    for n in newcomers {
        let blocked = store::blocks::either_way(&state.db, *n)
            .await
            .unwrap_or_default();
        let others: Vec<Uuid> = members
            .iter()
            .filter(|m| *m != n && !blocked.contains(m))
            .copied()
            .collect();
        if state.presence.is_online(*n) {
            state.events.publish(
                &others,
                ServerFrame::Presence {
                    user_id: *n,
                    online: true,
                },
            );
        }
        for m in others
            .iter()
            .filter(|m| !newcomers.contains(m) && state.presence.is_online(**m))
        {
            state.events.publish(
                &[*n],
                ServerFrame::Presence {
                    user_id: *m,
                    online: true,
                },
            );
        }
    }
}

pub fn publish(state: &AppState, audience: Vec<Uuid>, room: Uuid, change: RoomChange) {
    state.events.publish(
        &audience,
        ServerFrame::Room {
            room_id: room,
            change,
        },
    );
}

/// Tells `invitee` (all their sockets) that an invitation of theirs changed.
pub fn tell_invitee(
    state: &AppState,
    invitee: Uuid,
    invitation: Uuid,
    room: Uuid,
    change: InvitationChange,
) {
    state.events.publish(
        &[invitee],
        ServerFrame::Invitation {
            invitation_id: invitation,
            room_id: room,
            change,
        },
    );
}

fn limit(name: &'static str, detail: String) -> ApiError {
    metrics::counter!("sotto_limit_reached_total", "limit" => name).increment(1);
    ApiError::limit_reached(detail)
}

pub fn blocked() -> ApiError {
    ApiError::forbidden_code(
        codes::BLOCKED,
        "one of you blocked the other: no rooms together",
    )
}

/// The creator's room count stays under `--max-rooms-per-user`.
async fn check_room_cap(
    state: &AppState,
    tx: &mut WriteTx,
    user: Uuid,
    who: &str,
) -> ApiResult<()> {
    let max = state.config.max_rooms_per_user;
    if store::membership::room_count(tx, user).await? >= i64::from(max) {
        return Err(limit(
            "rooms_per_user",
            format!("{who} in the most rooms allowed ({max})"),
        ));
    }
    Ok(())
}

/// What adding a user to a room did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// They are a member now.
    Member,
    /// They are invited (this invitation).
    Invited(Uuid),
}

/// Adds `target` to `room` for `actor` inside `tx`, or invites them (see the
/// module docs); the caller holds `actor`'s consent lock
/// (`store::blocks::lock_users`, taken first) and the room's lock or created
/// the room.
async fn add_or_invite(
    state: &AppState,
    tx: &mut WriteTx,
    room: Uuid,
    actor: Uuid,
    target: Uuid,
    now: i64,
) -> ApiResult<Added> {
    let c = &state.config;
    if store::blocks::between_in(tx, actor, target).await? {
        return Err(blocked());
    }
    if rooms::is_member(tx, room, target).await? {
        return Err(ApiError::conflict(
            codes::ALREADY_MEMBER,
            "this user is already a member",
        ));
    }
    if store::invitations::pending(tx, room, target)
        .await?
        .is_some()
    {
        return Err(ApiError::conflict(
            codes::ALREADY_INVITED,
            "this user is already invited",
        ));
    }
    if store::invitations::room_size(tx, room).await? >= i64::from(c.max_room_members) {
        return Err(limit(
            "room_members",
            format!(
                "a room has at most {} members, pending invitations included",
                c.max_room_members
            ),
        ));
    }
    if store::contacts::has(tx, target, actor).await? {
        check_room_cap(state, tx, target, "this user is").await?;
        rooms::insert_member(tx, room, target, now).await?;
        return Ok(Added::Member);
    }
    state.limits.check_write(Write::Invite, actor)?;
    if store::invitations::count_sent(tx, actor).await? >= i64::from(c.max_open_invitations) {
        return Err(limit(
            "open_invitations",
            format!(
                "you have {} invitations nobody answered yet; withdraw some first",
                c.max_open_invitations
            ),
        ));
    }
    if store::invitations::count_received(tx, target).await? >= i64::from(c.max_pending_invitations)
    {
        return Err(limit(
            "pending_invitations",
            "this user has too many unanswered invitations".to_string(),
        ));
    }
    let id = Uuid::now_v7();
    store::invitations::insert(tx, id, room, target, actor, now).await?;
    Ok(Added::Invited(id))
}

#[utoipa::path(post, path = "/api/v1/rooms", tag = "rooms", request_body = CreateRoomRequest,
    responses((status = 201, body = RoomDetails, description = "created; `member_ids` who have you in their contacts are members, the others invited"),
        (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem, description = "`blocked`: one of `member_ids` blocked you or you them"),
        (status = 409, body = Problem, description = "`limit_reached`: rooms per user, room size, open invitations"),
        (status = 429, body = Problem, description = "`rate_limited`: room creations or invitations per minute")),
    security(("bearer" = [])))]
/// Create a group room; you own it. Each of `member_ids` who has you in their
/// contacts is added at once; the others are invited.
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
    let max = state.config.max_room_members as usize;
    if others.len() >= max {
        return Err(ApiError::bad_request(
            codes::VALIDATION_FAILED,
            format!("a room has at most {max} members"),
        ));
    }
    if rooms::existing_users(&state.db, &others).await? != others.len() {
        return Err(ApiError::bad_request(
            codes::VALIDATION_FAILED,
            "`member_ids` names an unknown user",
        ));
    }
    state.limits.check_write(Write::RoomCreate, me.id())?;
    let id = Uuid::now_v7();
    let now = now_ms();
    let mut tx = state.db.begin_write().await?;
    // (Before the block checks of `add_or_invite`, see `lock_users`.)
    store::blocks::lock_users(&mut tx, &[me.id()]).await?;
    check_room_cap(&state, &mut tx, me.id(), "you are").await?;
    rooms::create_group(&mut tx, id, &name, me.id(), now).await?;
    rooms::insert_member(&mut tx, id, me.id(), now).await?;
    let mut members = vec![me.id()];
    let mut invited = Vec::new();
    for u in &others {
        match add_or_invite(&state, &mut tx, id, me.id(), *u, now).await? {
            Added::Member => members.push(*u),
            Added::Invited(inv) => invited.push((*u, inv)),
        }
    }
    tx.commit().await?;
    publish(&state, members.clone(), id, RoomChange::Created);
    for (u, inv) in invited {
        tell_invitee(&state, u, inv, id, InvitationChange::Received);
    }
    introduce(&state, &members, &members).await;
    Ok((
        StatusCode::CREATED,
        Json(rooms::details(&state.db, id, me.id()).await?),
    ))
}

/// What opening a direct room did.
enum Direct {
    /// A new room (the other a member or invited).
    Created { room: Uuid, added: Added },
    /// The existing room, unchanged.
    Existing(Uuid),
    /// The existing room, which the caller joined (accepting an invitation).
    Joined {
        room: Uuid,
        invitation: Option<Uuid>,
    },
    /// The existing room, into which the caller (again) invited or added the other.
    Readded { room: Uuid, added: Added },
}

/// Opening the existing direct `room` of `me` and `other` (see [`direct`]).
async fn existing_direct(
    state: &AppState,
    tx: &mut WriteTx,
    room: Uuid,
    me: Uuid,
    other: Uuid,
    now: i64,
) -> ApiResult<Direct> {
    rooms::lock_room(tx, room, now).await?;
    if rooms::is_member(tx, room, me).await? {
        let other_in = rooms::is_member(tx, room, other).await?
            || store::invitations::pending(tx, room, other)
                .await?
                .is_some();
        if other_in {
            return Ok(Direct::Existing(room));
        }
        // They declined before: ask again (or add, if they now have the
        // caller in their contacts).
        let added = add_or_invite(state, tx, room, me, other, now).await?;
        return Ok(Direct::Readded { room, added });
    }
    // The other opened it: joining is the caller's consent.
    check_room_cap(state, tx, me, "you are").await?;
    let invitation = store::invitations::withdraw(tx, room, me)
        .await?
        .map(|t| t.id);
    rooms::insert_member(tx, room, me, now).await?;
    Ok(Direct::Joined { room, invitation })
}

#[utoipa::path(post, path = "/api/v1/rooms/direct", tag = "rooms", request_body = DirectRoomRequest,
    responses((status = 200, body = RoomDetails, description = "the existing direct room (joined, if you were invited to it)"),
        (status = 201, body = RoomDetails, description = "a new direct room; the other user is a member if they have you in their contacts, else invited"),
        (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem, description = "`blocked`: one of you blocked the other"),
        (status = 404, body = Problem),
        (status = 409, body = Problem, description = "`limit_reached`: rooms per user, open invitations"),
        (status = 429, body = Problem, description = "`rate_limited`: room creations or invitations per minute")),
    security(("bearer" = [])))]
/// The direct (two-person) room with `user_id`: the existing one, or a new one.
/// Concurrent calls from both sides end in the same room. A user who does not
/// have you in their contacts is invited rather than added; calling this while
/// invited to their direct room accepts the invitation.
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
    let other = req.user_id;
    let (a, b) = if me.id() < other {
        (me.id(), other)
    } else {
        (other, me.id())
    };
    let key = format!("{a}:{b}");
    let now = now_ms();
    let mut tx = state.db.begin_write().await?;
    // (Before the block check, see `lock_users`.)
    store::blocks::lock_users(&mut tx, &[me.id()]).await?;
    if store::blocks::between_in(&mut tx, me.id(), other).await? {
        return Err(blocked());
    }
    let outcome = match rooms::find_direct(&mut tx, &key).await? {
        Some(room) => existing_direct(&state, &mut tx, room, me.id(), other, now).await?,
        None => {
            state.limits.check_write(Write::RoomCreate, me.id())?;
            check_room_cap(&state, &mut tx, me.id(), "you are").await?;
            let room = Uuid::now_v7();
            if rooms::create_direct(&mut tx, room, me.id(), &key, now).await? {
                rooms::insert_member(&mut tx, room, me.id(), now).await?;
                let added = add_or_invite(&state, &mut tx, room, me.id(), other, now).await?;
                Direct::Created { room, added }
            } else {
                // Opened concurrently by the other side (PostgreSQL): that one.
                let room = rooms::direct_room(&mut tx, &key).await?;
                existing_direct(&state, &mut tx, room, me.id(), other, now).await?
            }
        }
    };
    tx.commit().await?;
    let (room, status) = match outcome {
        Direct::Existing(room) => (room, StatusCode::OK),
        Direct::Created { room, added } | Direct::Readded { room, added } => {
            let created = matches!(outcome, Direct::Created { .. });
            match added {
                Added::Member => {
                    let change = if created {
                        RoomChange::Created
                    } else {
                        RoomChange::MemberAdded
                    };
                    publish(&state, vec![a, b], room, change);
                    introduce(&state, &[other], &[a, b]).await;
                }
                Added::Invited(inv) => {
                    let change = if created {
                        RoomChange::Created
                    } else {
                        RoomChange::MemberInvited
                    };
                    publish(&state, vec![me.id()], room, change);
                    tell_invitee(&state, other, inv, room, InvitationChange::Received);
                }
            }
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            (room, status)
        }
        Direct::Joined { room, invitation } => {
            publish(&state, vec![a, b], room, RoomChange::MemberAdded);
            if let Some(inv) = invitation {
                tell_invitee(&state, me.id(), inv, room, InvitationChange::Removed);
            }
            introduce(&state, &[me.id()], &[a, b]).await;
            (room, StatusCode::OK)
        }
    };
    Ok((
        status,
        Json(rooms::details(&state.db, room, me.id()).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/rooms", tag = "rooms", params(PageQuery),
    responses((status = 200, body = Page<Room>), (status = 400, body = Problem), (status = 401, body = Problem)),
    security(("bearer" = [])))]
/// The rooms you belong to, oldest first, each with its unread count (rooms
/// you are only invited to are listed by `GET /api/v1/invitations`).
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
/// A room's details, members and pending invitees (members only).
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

/// What a room's deletion must clean up and tell, read before it.
struct Deletion {
    audience: Vec<Uuid>,
    invitees: Vec<(Uuid, Uuid)>,
    files: Vec<Uuid>,
    freed: Vec<(Uuid, i64)>,
}

impl Deletion {
    async fn of(state: &AppState, id: Uuid) -> ApiResult<Self> {
        Ok(Self {
            audience: member_ids(&state.db, id).await?,
            invitees: store::invitations::of_room_ids(&state.db, id).await?,
            files: store::attachments::file_ids_of_room(&state.db, id).await?,
            freed: store::messages::bytes_by_sender(&state.db, id).await?,
        })
    }

    /// After the room's row is gone (committed): files, quotas, audit, events.
    async fn done(self, state: &AppState, id: Uuid, actor: Uuid) {
        state.files.remove(&self.files).await;
        state.quotas.freed(&self.freed).await;
        audit::record(
            &state.db,
            event::ROOM_DELETED,
            Some(actor),
            Some(id),
            None,
            None,
        )
        .await;
        publish(state, self.audience, id, RoomChange::Deleted);
        for (inv, invitee) in self.invitees {
            tell_invitee(state, invitee, inv, id, InvitationChange::Removed);
        }
    }
}

/// Deletes a room with its messages and attachments (rows cascade; files are
/// removed after the commit) and tells its members and invitees.
async fn delete_room(state: &AppState, id: Uuid, actor: Uuid) -> ApiResult<()> {
    let deletion = Deletion::of(state, id).await?;
    rooms::delete(state.db.writer(), id).await?;
    deletion.done(state, id, actor).await;
    Ok(())
}

#[utoipa::path(delete, path = "/api/v1/rooms/{id}", tag = "rooms", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
/// Delete a room with all its messages and attachments (owner only; either
/// member of a direct room).
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

/// The answer of adding a member: the member (201) or the invitee (202).
pub enum AddMemberAnswer {
    Member(RoomMember),
    Invited(RoomInvitee),
}

impl IntoResponse for AddMemberAnswer {
    fn into_response(self) -> Response {
        match self {
            Self::Member(m) => (StatusCode::CREATED, Json(m)).into_response(),
            Self::Invited(i) => (StatusCode::ACCEPTED, Json(i)).into_response(),
        }
    }
}

#[utoipa::path(post, path = "/api/v1/rooms/{id}/members", tag = "rooms", params(("id" = Uuid, Path)), request_body = AddMemberRequest,
    responses((status = 201, body = RoomMember, description = "added: the user has you in their contacts"),
        (status = 202, body = RoomInvitee, description = "invited: a member once they accept"),
        (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem, description = "not the owner; `blocked`: one of you blocked the other"),
        (status = 404, body = Problem),
        (status = 409, body = Problem, description = "`already_member`, `already_invited`, `limit_reached` (room size, rooms per user, open or pending invitations)"),
        (status = 429, body = Problem, description = "`rate_limited`: invitations per minute")),
    security(("bearer" = [])))]
/// Add a member (owner only; not in a direct room): at once if they have you
/// in their contacts, else invited. A member sees the room's messages from
/// when they join, not its earlier history.
pub async fn add_member(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<Uuid>,
    ApiJson(req): ApiJson<AddMemberRequest>,
) -> ApiResult<AddMemberAnswer> {
    let m = require_member(&state.db, id, me.id()).await?;
    owner_only(&m, me.id())?;
    not_direct(&m)?;
    if !rooms::addable_user(&state.db, req.user_id).await? {
        return Err(ApiError::not_found());
    }
    let now = now_ms();
    let mut tx = state.db.begin_write().await?;
    // (Before the room's lock and the block check, see `lock_users`.)
    store::blocks::lock_users(&mut tx, &[me.id()]).await?;
    rooms::lock_room(&mut tx, id, now).await?;
    let added = add_or_invite(&state, &mut tx, id, me.id(), req.user_id, now).await?;
    // The answer as written, read before the commit: a block, a withdrawal or
    // a leave right after it must not fail the answer.
    let answer = match added {
        Added::Member => AddMemberAnswer::Member(
            rooms::member_in(&mut tx, id, req.user_id, m.owner_id)
                .await?
                .ok_or_else(|| ApiError::internal("the member just added is not there"))?,
        ),
        Added::Invited(_) => AddMemberAnswer::Invited(
            store::invitations::invitee_in(&mut tx, id, req.user_id)
                .await?
                .ok_or_else(|| ApiError::internal("the invitation just made is not there"))?,
        ),
    };
    tx.commit().await?;
    let ids = member_ids(&state.db, id).await?;
    match added {
        Added::Member => {
            publish(&state, ids.clone(), id, RoomChange::MemberAdded);
            introduce(&state, &[req.user_id], &ids).await;
        }
        Added::Invited(inv) => {
            publish(&state, ids, id, RoomChange::MemberInvited);
            tell_invitee(&state, req.user_id, inv, id, InvitationChange::Received);
        }
    }
    Ok(answer)
}

#[utoipa::path(delete, path = "/api/v1/rooms/{id}/members/{user_id}", tag = "rooms",
    params(("id" = Uuid, Path), ("user_id" = Uuid, Path)),
    responses((status = 204), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
/// Remove a member or withdraw a pending invitation (owner), or leave
/// (yourself). When the owner leaves, the longest-standing member becomes the
/// owner; when the last member leaves, the room is deleted. Direct rooms
/// cannot be left: delete them instead.
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
    let now = now_ms();
    let mut tx = state.db.begin_write().await?;
    rooms::lock_room(&mut tx, id, now).await?;
    // Read under the room's lock: a member added meanwhile hears of it too.
    let audience = store::membership::member_ids_in(&mut tx, id).await?;
    if !audience.contains(&user_id) {
        // Not a member: a pending invitation the owner withdraws, or nothing.
        let Some(taken) = store::invitations::withdraw(&mut tx, id, user_id).await? else {
            return Err(ApiError::not_found());
        };
        tx.commit().await?;
        publish(&state, audience, id, RoomChange::InvitationRemoved);
        tell_invitee(&state, user_id, taken.id, id, InvitationChange::Removed);
        return Ok(StatusCode::NO_CONTENT);
    }
    if !rooms::remove_member(&mut tx, id, user_id).await? {
        // Removed (or left) concurrently.
        return Err(ApiError::not_found());
    }
    if rooms::member_count(&mut tx, id).await? == 0 {
        // The last member left: nobody could ever read the room again. (The
        // reads see the room as committed: unchanged but for the leave.)
        let mut deletion = Deletion::of(&state, id).await?;
        deletion.audience = audience.clone();
        rooms::delete_in(&mut tx, id).await?;
        tx.commit().await?;
        deletion.done(&state, id, me.id()).await;
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
