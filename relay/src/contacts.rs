//! Contacts: `/api/v1/contacts...`. A contact is the caller's private entry for
//! another user, with an optional nickname only the caller sees. Having someone
//! as a contact (in either direction) lets both fetch each other's keys.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use sotto_core::api::contacts::{AddContactRequest, Contact, PatchContactRequest};
use sotto_core::api::pagination::{Page, PageQuery, effective_limit};
use sotto_core::api::problem::{Problem, codes};
use sotto_core::api::users::PublicUser;
use uuid::Uuid;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::AuthUser;
use crate::db::{now_ms, rfc3339};
use crate::error::{ApiError, ApiResult};
use crate::ids::parse_id;
use crate::json::ApiJson;
use crate::state::AppState;
use crate::validate::check_label;

/// Most contacts one user may keep.
pub const MAX_CONTACTS: i64 = 5000;

const CONTACT_SELECT: &str = "SELECT c.id, c.contact_id, u.username, u.display_name, c.nickname, c.created_at, c.updated_at \
    FROM contacts c JOIN users u ON u.id = c.contact_id";

#[derive(sqlx::FromRow)]
struct ContactRow {
    id: String,
    contact_id: String,
    username: String,
    display_name: Option<String>,
    nickname: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl ContactRow {
    fn to_api(&self) -> ApiResult<Contact> {
        Ok(Contact {
            id: parse_id(&self.id)?,
            user: PublicUser {
                id: parse_id(&self.contact_id)?,
                username: self.username.clone(),
                display_name: self.display_name.clone(),
            },
            nickname: self.nickname.clone(),
            created_at: rfc3339(self.created_at),
            updated_at: rfc3339(self.updated_at),
        })
    }
}

fn nickname(raw: &Option<String>) -> ApiResult<Option<String>> {
    match raw {
        None => Ok(None),
        Some(n) if n.trim().is_empty() => Ok(None),
        Some(n) => Ok(Some(check_label(n, "nickname", 64)?)),
    }
}

async fn one(state: &AppState, owner: Uuid, id: Uuid) -> ApiResult<Contact> {
    sqlx::query_as::<_, ContactRow>(sqlx::AssertSqlSafe(format!(
        "{CONTACT_SELECT} WHERE c.id = $1 AND c.owner_id = $2"
    )))
    .bind(id.to_string())
    .bind(owner.to_string())
    .fetch_optional(state.db.read())
    .await?
    .ok_or_else(ApiError::not_found)?
    .to_api()
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
    let rows = sqlx::query_as::<_, ContactRow>(sqlx::AssertSqlSafe(format!(
        "{CONTACT_SELECT} WHERE c.owner_id = $1 AND c.id > $2 ORDER BY c.id LIMIT $3"
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
        ContactRow::to_api,
    )?))
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
    if !crate::rooms::addable_user(&state.db, req.user_id).await? {
        return Err(ApiError::not_found());
    }
    let id = Uuid::now_v7();
    let now = now_ms();
    let mut tx = state.db.begin_write().await?;
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM contacts WHERE owner_id = $1")
        .bind(me.id().to_string())
        .fetch_one(&mut *tx)
        .await?;
    if count >= MAX_CONTACTS {
        return Err(ApiError::conflict(
            codes::CONFLICT,
            format!("at most {MAX_CONTACTS} contacts"),
        ));
    }
    let added = sqlx::query(
        "INSERT INTO contacts (id, owner_id, contact_id, nickname, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (owner_id, contact_id) DO NOTHING",
    )
    .bind(id.to_string())
    .bind(me.id().to_string())
    .bind(req.user_id.to_string())
    .bind(&nickname)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    if added == 0 {
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
    let n = sqlx::query(
        "UPDATE contacts SET nickname = $1, updated_at = $2 WHERE id = $3 AND owner_id = $4",
    )
    .bind(&nickname)
    .bind(now_ms())
    .bind(id.to_string())
    .bind(me.id().to_string())
    .execute(state.db.write())
    .await?
    .rows_affected();
    if n == 0 {
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
    let n = sqlx::query("DELETE FROM contacts WHERE id = $1 AND owner_id = $2")
        .bind(id.to_string())
        .bind(me.id().to_string())
        .execute(state.db.write())
        .await?
        .rows_affected();
    if n == 0 {
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
