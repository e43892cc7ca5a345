//! Contacts: `/api/v1/contacts...`. A contact is the caller's private entry for
//! another user, with an optional nickname only the caller sees. Having someone
//! as a contact (in either direction) lets both fetch each other's keys, and
//! having them as a contact lets them add you to rooms without an invitation
//! (`rooms.rs`, "Consent").

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use sotto_core::api::contacts::{AddContactRequest, Contact, PatchContactRequest};
use sotto_core::api::pagination::{Page, PageQuery, effective_limit};
use sotto_core::api::problem::{Problem, codes};
use uuid::Uuid;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::AuthUser;
use crate::db::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::ratelimit::Write;
use crate::state::AppState;
use crate::store;
use crate::validate::check_label;

/// Most contacts one user may keep.
pub const MAX_CONTACTS: i64 = 5000;

fn nickname(raw: &Option<String>) -> ApiResult<Option<String>> {
    match raw {
        None => Ok(None),
        Some(n) if n.trim().is_empty() => Ok(None),
        Some(n) => Ok(Some(check_label(n, "nickname", 64)?)),
    }
}

async fn one(state: &AppState, owner: Uuid, id: Uuid) -> ApiResult<Contact> {
    store::contacts::one(&state.db, owner, id)
        .await?
        .ok_or_else(ApiError::not_found)
}

#[utoipa::path(get, path = "/api/v1/contacts", tag = "contacts", params(PageQuery),
    responses((status = 200, body = Page<Contact>), (status = 400, body = Problem), (status = 401, body = Problem)),
    security(("bearer" = [])))]
/// Your contacts, in the order you added them.
pub async fn list(
    State(state): State<AppState>,
    me: AuthUser,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Page<Contact>>> {
    let limit = effective_limit(q.limit);
    let after = crate::pagination::parse_cursor(&q.cursor)?;
    Ok(Json(
        store::contacts::page(&state.db, me.id(), after, limit).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/contacts", tag = "contacts", request_body = AddContactRequest,
    responses((status = 201, body = Contact), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
/// Add a user to your contacts.
pub async fn add(
    State(state): State<AppState>,
    me: AuthUser,
    ApiJson(req): ApiJson<AddContactRequest>,
) -> ApiResult<(StatusCode, Json<Contact>)> {
    if req.user_id == me.id() {
        return Err(ApiError::bad_request(
            codes::CANNOT_TARGET_SELF,
            "you cannot add yourself as a contact",
        ));
    }
    let nickname = nickname(&req.nickname)?;
    state.limits.check_write(Write::Contact, me.id())?;
    if !store::rooms::addable_user(&state.db, req.user_id).await? {
        return Err(ApiError::not_found());
    }
    let id = Uuid::now_v7();
    let now = now_ms();
    let mut tx = state.db.begin_write().await?;
    if store::contacts::count(&mut tx, me.id()).await? >= MAX_CONTACTS {
        metrics::counter!("sotto_limit_reached_total", "limit" => "contacts").increment(1);
        return Err(ApiError::limit_reached(format!(
            "at most {MAX_CONTACTS} contacts"
        )));
    }
    let added =
        store::contacts::insert(&mut tx, id, me.id(), req.user_id, nickname.as_deref(), now)
            .await?;
    tx.commit().await?;
    if !added {
        return Err(ApiError::conflict(
            codes::CONTACT_EXISTS,
            "this user is already one of your contacts",
        ));
    }
    Ok((StatusCode::CREATED, Json(one(&state, me.id(), id).await?)))
}

#[utoipa::path(patch, path = "/api/v1/contacts/{id}", tag = "contacts", params(("id" = Uuid, Path)),
    request_body = PatchContactRequest,
    responses((status = 200, body = Contact), (status = 400, body = Problem), (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
/// Change (or with `null`, remove) a contact's nickname.
pub async fn patch(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<Uuid>,
    ApiJson(req): ApiJson<PatchContactRequest>,
) -> ApiResult<Json<Contact>> {
    let nickname = nickname(&req.nickname)?;
    state.limits.check_write(Write::Contact, me.id())?;
    if !store::contacts::set_nickname(
        state.db.writer(),
        me.id(),
        id,
        nickname.as_deref(),
        now_ms(),
    )
    .await?
    {
        return Err(ApiError::not_found());
    }
    Ok(Json(one(&state, me.id(), id).await?))
}

#[utoipa::path(delete, path = "/api/v1/contacts/{id}", tag = "contacts", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
/// Remove a contact.
pub async fn delete(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    state.limits.check_write(Write::Contact, me.id())?;
    if !store::contacts::remove(state.db.writer(), me.id(), id).await? {
        return Err(ApiError::not_found());
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The routes of this feature, with their OpenAPI description (merged in
/// [`crate::app::api`]). Contacts.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, add))
        .routes(routes!(patch, delete))
}
