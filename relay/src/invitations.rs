//! Invitations: `/api/v1/invitations...` (`docs/relay.md`, "Consent:
//! invitations and blocks"). Adding someone who does not have you in their
//! contacts invites them (`rooms.rs`); here they list, accept and decline.
//! Until they accept they are not members: no room events, no messages, no
//! keys sealed for them, no presence either way. Their history starts when
//! they accept.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use sotto_core::api::invitations::{Invitation, InvitationChange};
use sotto_core::api::pagination::{Page, PageQuery, effective_limit};
use sotto_core::api::problem::Problem;
use sotto_core::api::rooms::{RoomChange, RoomDetails};
use uuid::Uuid;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::AuthUser;
use crate::db::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::membership::member_ids;
use crate::rooms::{introduce, publish, tell_invitee};
use crate::state::AppState;
use crate::store;

#[utoipa::path(get, path = "/api/v1/invitations", tag = "rooms", params(PageQuery),
    responses((status = 200, body = Page<Invitation>), (status = 400, body = Problem), (status = 401, body = Problem)),
    security(("bearer" = [])))]
/// Your pending invitations, oldest first.
pub async fn list(
    State(state): State<AppState>,
    me: AuthUser,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Page<Invitation>>> {
    let limit = effective_limit(q.limit);
    let after = crate::pagination::parse_cursor(&q.cursor)?;
    Ok(Json(
        store::invitations::page_for(&state.db, me.id(), after, limit).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/invitations/{id}/accept", tag = "rooms", params(("id" = Uuid, Path)),
    responses((status = 200, body = RoomDetails, description = "you are a member; your history of the room starts now"),
        (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "`limit_reached`: you are in the most rooms allowed")),
    security(("bearer" = [])))]
/// Accept an invitation: you become a member of its room.
pub async fn accept(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<RoomDetails>> {
    let now = now_ms();
    let mut tx = state.db.begin_write().await?;
    // The room is locked before the invitation is taken, as every path does.
    let Some(room) = store::invitations::room_of(&mut tx, id, me.id()).await? else {
        return Err(ApiError::not_found());
    };
    store::rooms::lock_room(&mut tx, room, now).await?;
    let Some(taken) = store::invitations::take(&mut tx, id, me.id()).await? else {
        // Withdrawn meanwhile.
        return Err(ApiError::not_found());
    };
    let max = state.config.max_rooms_per_user;
    if store::membership::room_count(&mut tx, me.id()).await? >= i64::from(max) {
        metrics::counter!("sotto_limit_reached_total", "limit" => "rooms_per_user").increment(1);
        return Err(ApiError::limit_reached(format!(
            "you are in the most rooms allowed ({max}); leave one first"
        )));
    }
    store::rooms::insert_member(&mut tx, taken.room, me.id(), now).await?;
    tx.commit().await?;
    let members = member_ids(&state.db, taken.room).await?;
    publish(&state, members.clone(), taken.room, RoomChange::MemberAdded);
    tell_invitee(&state, me.id(), id, taken.room, InvitationChange::Removed);
    introduce(&state, &[me.id()], &members).await;
    Ok(Json(
        store::rooms::details(&state.db, taken.room, me.id()).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/invitations/{id}/decline", tag = "rooms", params(("id" = Uuid, Path)),
    responses((status = 204, description = "declined: the invitation is gone"),
        (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
/// Decline an invitation. The room's members see that it is gone, not why.
pub async fn decline(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    let mut tx = state.db.begin_write().await?;
    // A change of the room's invitations: its `member_epoch` grows (the room
    // locked before the invitation is taken, as every path does).
    let Some(room) = store::invitations::room_of(&mut tx, id, me.id()).await? else {
        return Err(ApiError::not_found());
    };
    store::rooms::lock_room(&mut tx, room, now_ms()).await?;
    let Some(taken) = store::invitations::take(&mut tx, id, me.id()).await? else {
        return Err(ApiError::not_found());
    };
    tx.commit().await?;
    publish(
        &state,
        member_ids(&state.db, taken.room).await?,
        taken.room,
        RoomChange::InvitationRemoved,
    );
    tell_invitee(&state, me.id(), id, taken.room, InvitationChange::Removed);
    Ok(StatusCode::NO_CONTENT)
}

/// The routes of this feature, with their OpenAPI description (merged in
/// [`crate::app::api`]).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(accept))
        .routes(routes!(decline))
}
