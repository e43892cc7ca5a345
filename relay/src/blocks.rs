//! Blocks: `/api/v1/blocks...` (`docs/relay.md`, "Consent: invitations and
//! blocks"). A user blocks another; between the two there are then no
//! invitations (pending ones are removed, either way), no new direct room and
//! no posts into an existing one (403 `blocked`), and neither sees the other's
//! presence or typing. Shared group rooms stay as they are: both still read
//! and write there, and still fetch each other's keys to seal to them.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use sotto_core::api::ServerFrame;
use sotto_core::api::blocks::{BlockRequest, BlockedUser};
use sotto_core::api::invitations::InvitationChange;
use sotto_core::api::pagination::{Page, PageQuery, effective_limit};
use sotto_core::api::problem::{Problem, codes};
use sotto_core::api::rooms::RoomChange;
use uuid::Uuid;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::AuthUser;
use crate::db::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::membership::member_ids;
use crate::ratelimit::Write;
use crate::rooms::{introduce, publish, tell_invitee};
use crate::state::AppState;
use crate::store;

#[utoipa::path(get, path = "/api/v1/blocks", tag = "contacts", params(PageQuery),
    responses((status = 200, body = Page<BlockedUser>), (status = 400, body = Problem), (status = 401, body = Problem)),
    security(("bearer" = [])))]
/// The users you blocked, by user id.
pub async fn list(
    State(state): State<AppState>,
    me: AuthUser,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Page<BlockedUser>>> {
    let limit = effective_limit(q.limit);
    let after = crate::pagination::parse_cursor(&q.cursor)?;
    Ok(Json(
        store::blocks::page(&state.db, me.id(), after, limit).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/blocks", tag = "contacts", request_body = BlockRequest,
    responses((status = 201, body = BlockedUser, description = "blocked"),
        (status = 200, body = BlockedUser, description = "blocked already"),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 429, body = Problem, description = "`rate_limited`: contact and block changes per minute")),
    security(("bearer" = [])))]
/// Block a user: no invitations, direct room, presence or typing between you.
pub async fn block(
    State(state): State<AppState>,
    me: AuthUser,
    ApiJson(req): ApiJson<BlockRequest>,
) -> ApiResult<(StatusCode, Json<BlockedUser>)> {
    let other = req.user_id;
    if other == me.id() {
        return Err(ApiError::bad_request(
            codes::CANNOT_TARGET_SELF,
            "you cannot block yourself",
        ));
    }
    if store::users::find_by_id(&state.db, other).await?.is_none() {
        return Err(ApiError::not_found());
    }
    state.limits.check_write(Write::Contact, me.id())?;
    let now = now_ms();
    let (a, b) = if me.id() < other {
        (me.id(), other)
    } else {
        (other, me.id())
    };
    let mut tx = state.db.begin_write().await?;
    // Both users' consent locks first: an invitation or direct room on its
    // way between them commits before the reads below, or sees the block.
    store::blocks::lock_users(&mut tx, &[me.id(), other]).await?;
    // The rooms are locked before their invitations go, in one order, as
    // every path locks a room before it writes an invitation: their direct
    // room (a post into it racing the block is checked again), and the rooms
    // whose invitations go (their `member_epoch` grows). A room gone since
    // the read is skipped; the invitations go room by room, each after its
    // lock. The block is written after the locks, as an account's deletion
    // locks its rooms before its user row.
    let mut rooms = store::invitations::rooms_between(&mut tx, me.id(), other).await?;
    if let Some(room) = store::rooms::find_direct(&mut tx, &format!("{a}:{b}")).await? {
        rooms.push(room);
    }
    rooms.sort_unstable();
    rooms.dedup();
    let mut removed = Vec::new();
    for room in rooms {
        if store::rooms::lock_room_if_there(&mut tx, room, now).await? {
            removed.extend(
                store::invitations::remove_between_in(&mut tx, room, me.id(), other).await?,
            );
        }
    }
    let added = store::blocks::insert(&mut tx, me.id(), other, now).await?;
    // The answer as written (an unblock right after the commit must not turn
    // it into a 404).
    let row = store::blocks::one(&mut tx, me.id(), other)
        .await?
        .ok_or_else(|| ApiError::internal("the block just written is not there"))?;
    tx.commit().await?;
    for t in removed {
        tell_invitee(&state, t.invitee, t.id, t.room, InvitationChange::Removed);
        if let Ok(members) = member_ids(&state.db, t.room).await {
            publish(&state, members, t.room, RoomChange::InvitationRemoved);
        }
    }
    if added && state.config.ws_presence {
        // Each stops seeing the other online.
        for (to, about) in [(me.id(), other), (other, me.id())] {
            state.events.publish(
                &[to],
                ServerFrame::Presence {
                    user_id: about,
                    online: false,
                },
            );
        }
    }
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(row)))
}

#[utoipa::path(delete, path = "/api/v1/blocks/{user_id}", tag = "contacts", params(("user_id" = Uuid, Path)),
    responses((status = 204, description = "unblocked"), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 404, body = Problem, description = "you had not blocked this user"),
        (status = 429, body = Problem, description = "`rate_limited`: contact and block changes per minute")),
    security(("bearer" = [])))]
/// Lift a block. Presence between you shows again (for users who share a
/// room, unless the other blocked you too).
pub async fn unblock(
    State(state): State<AppState>,
    me: AuthUser,
    Path(user_id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    state.limits.check_write(Write::Contact, me.id())?;
    if !store::blocks::remove(state.db.writer(), me.id(), user_id).await? {
        return Err(ApiError::not_found());
    }
    let peers = store::membership::presence_peers_of(&state.db, me.id()).await?;
    if peers.contains(&user_id) {
        introduce(&state, &[me.id()], &[me.id(), user_id]).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The routes of this feature, with their OpenAPI description (merged in
/// [`crate::app::api`]).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, block))
        .routes(routes!(unblock))
}
