//! Users and roles: the `users` table, its rules, and `/api/v1/users...`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use sotto_core::api::pagination::{Page, effective_limit};
use sotto_core::api::problem::{Problem, codes};
use sotto_core::api::users::{
    CreateUserRequest, PatchUserRequest, PublicUser, Role, User, UserListQuery, UserSearchQuery,
};
use uuid::Uuid;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::audit::{self, event};
use crate::auth::{self, AuthUser};
use crate::db::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::extract::AdminUser;
use crate::json::ApiJson;
use crate::pagination::{page_of, parse_cursor};
use crate::state::AppState;
use crate::store;
pub use crate::store::users::{NewUser, UserRow};
use crate::tokens::spend_email_tokens;
use crate::validate::check_query_text;
use crate::validate::{Email, Username, check_new_password};

fn check_display_name(name: &Option<String>) -> ApiResult<Option<String>> {
    match name {
        None => Ok(None),
        Some(n) => {
            let t = n.trim();
            if t.is_empty() {
                return Ok(None);
            }
            // Control and bidirectional-override characters are refused (a
            // stored one from before this rule stays until the next change).
            crate::validate::check_label(t, "display_name", 64).map(Some)
        }
    }
}

/// Revokes every live session of a user, optionally keeping one.
pub async fn revoke_sessions(state: &AppState, user: Uuid, keep: Option<Uuid>) -> ApiResult<()> {
    crate::store::sessions::revoke_all_of(state.db.writer(), user, keep, now_ms()).await?;
    state.presence.sessions_changed(user);
    Ok(())
}

fn like_pattern(prefix: &str, suffix: &str, q: &str) -> String {
    let escaped: String = q
        .to_lowercase()
        .chars()
        .flat_map(|c| {
            if matches!(c, '%' | '_' | '\\') {
                vec!['\\', c]
            } else {
                vec![c]
            }
        })
        .collect();
    format!("{prefix}{escaped}{suffix}")
}

#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(UserListQuery),
    responses((status = 200, body = Page<User>), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
/// List users (admin, master), optionally filtered by `q` (username or e-mail substring).
pub async fn list(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(q): Query<UserListQuery>,
) -> ApiResult<Json<Page<User>>> {
    let limit = effective_limit(q.limit);
    check_query_text(q.q.as_deref().unwrap_or(""))?;
    let after = parse_cursor(&q.cursor)?;
    let pattern = like_pattern("%", "%", q.q.as_deref().unwrap_or(""));
    let rows = store::users::list_page(&state.db, after, &pattern, limit).await?;
    Ok(Json(page_of(
        rows,
        limit,
        |r| r.id.to_string(),
        UserRow::to_api,
    )))
}

#[utoipa::path(get, path = "/api/v1/users/search", tag = "users", params(UserSearchQuery),
    responses((status = 200, body = Page<PublicUser>), (status = 400, body = Problem), (status = 401, body = Problem)),
    security(("bearer" = [])))]
/// Find people to add: verified users whose username starts with `q`; public profiles only.
pub async fn search(
    State(state): State<AppState>,
    _me: AuthUser,
    Query(q): Query<UserSearchQuery>,
) -> ApiResult<Json<Page<PublicUser>>> {
    let term = q.q.trim();
    if term.is_empty() || term.len() > 64 || term.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            codes::VALIDATION_FAILED,
            "`q` must be 1-64 characters",
        ));
    }
    let limit = effective_limit(q.limit);
    // The cursor is the last username of the previous page (usernames are unique).
    let after = match &q.cursor {
        None => String::new(),
        Some(c) => Username::parse(c)
            .map(|u| u.as_str().to_string())
            .map_err(|_| ApiError::bad_request(codes::INVALID_CURSOR, "the cursor is not valid"))?,
    };
    let rows =
        store::users::search_page(&state.db, &like_pattern("", "%", term), &after, limit).await?;
    Ok(Json(page_of(
        rows,
        limit,
        |r| r.username.clone(),
        UserRow::to_public,
    )))
}

#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", params(("id" = Uuid, Path)),
    responses((status = 200, body = User), (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
/// A full profile: your own, or anyone's for admins and masters. Others get 404.
pub async fn get(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<User>> {
    if id != me.id() && me.role() < Role::Admin {
        return Err(ApiError::not_found());
    }
    let row = store::users::find_by_id(&state.db, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(row.to_api()))
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUserRequest,
    responses((status = 201, body = User), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
/// Create a user (admin, master). Only a master may give a role other than `user`.
/// Accounts created by an administrator start with a verified e-mail address.
pub async fn create(
    State(state): State<AppState>,
    AdminUser(me): AdminUser,
    ApiJson(req): ApiJson<CreateUserRequest>,
) -> ApiResult<(StatusCode, Json<User>)> {
    let role = req.role.unwrap_or(Role::User);
    if role != Role::User && me.role() != Role::Master {
        return Err(ApiError::forbidden(
            "only a master may create admins or masters",
        ));
    }
    let username = Username::parse(&req.username)?;
    let email = Email::parse(&req.email)?;
    check_new_password(&req.password)?;
    let display_name = check_display_name(&req.display_name)?;
    let password_hash = auth::hash_password(req.password).await?;
    let row = store::users::insert(
        state.db.writer(),
        NewUser {
            username: &username,
            email: &email,
            password_hash,
            display_name,
            role,
            email_verified: true,
        },
    )
    .await?;
    audit::record(
        &state.db,
        event::USER_CREATED,
        Some(me.id()),
        Some(row.uuid()),
        None,
        Some(role.as_str()),
    )
    .await;
    Ok((StatusCode::CREATED, Json(row.to_api())))
}

#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", params(("id" = Uuid, Path)), request_body = PatchUserRequest,
    responses((status = 200, body = User), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
/// Update a profile. You may change your display name, e-mail and password (with
/// `current_password`); admins manage users, masters manage everyone; only a master
/// changes roles; nobody changes a username; the last master cannot be demoted.
pub async fn patch(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<Uuid>,
    ApiJson(req): ApiJson<PatchUserRequest>,
) -> ApiResult<Json<User>> {
    let is_self = id == me.id();
    if !is_self && me.role() < Role::Admin {
        return Err(ApiError::not_found());
    }
    let target = store::users::find_by_id(&state.db, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    if !is_self && me.role() == Role::Admin && target.role() != Role::User {
        return Err(ApiError::forbidden("admins manage only users"));
    }
    if req.username.is_some() {
        return Err(ApiError::bad_request(
            codes::USERNAME_IMMUTABLE,
            "usernames cannot be changed",
        ));
    }
    if req.role.is_some() && me.role() != Role::Master {
        return Err(ApiError::forbidden("only a master changes roles"));
    }
    // Validate everything before writing anything.
    let display_name = match &req.display_name {
        Some(d) => Some(check_display_name(d)?),
        None => None,
    };
    let email = req.email.as_deref().map(Email::parse).transpose()?;
    let email = email.filter(|e| e.as_str() != target.email);
    if let Some(pw) = &req.password {
        check_new_password(pw)?;
    }
    // Changing your own password or address needs your current password, so a
    // stolen access token alone cannot take the account over.
    if is_self && (req.password.is_some() || email.is_some()) {
        let current = req.current_password.clone().ok_or_else(|| {
            ApiError::bad_request(
                codes::CURRENT_PASSWORD_REQUIRED,
                "changing your password or e-mail needs `current_password`",
            )
        })?;
        if !auth::verify_password(current, target.password_hash.clone()).await? {
            return Err(ApiError::forbidden_code(
                codes::INVALID_CREDENTIALS,
                "the current password is wrong",
            ));
        }
    }
    let new_hash = match &req.password {
        Some(pw) => Some(auth::hash_password(pw.clone()).await?),
        None => None,
    };
    if let Some(e) = &email
        && store::users::email_exists(&state.db, e).await?
    {
        return Err(ApiError::conflict(
            codes::EMAIL_TAKEN,
            "this e-mail address is already registered",
        ));
    }

    let now = now_ms();
    let mut tx = state.db.begin_write().await?;
    if req.role.is_some() {
        store::users::lock_master_changes(&mut tx).await?;
    }
    if let Some(role) = req.role
        && role != target.role()
    {
        let changed = store::users::set_role(&mut tx, id, role, now).await?;
        if !changed {
            return Err(ApiError::conflict(
                codes::LAST_MASTER,
                "the last master cannot be demoted",
            ));
        }
    }
    if let Some(d) = display_name {
        store::users::set_display_name(&mut tx, id, d.as_deref(), now).await?;
    }
    if let Some(e) = &email {
        store::users::set_email(&mut tx, id, e, now).await?;
    }
    if let Some(h) = &new_hash {
        store::users::set_password(&mut tx, id, h, now).await?;
    }
    tx.commit().await?;

    if let Some(role) = req.role.filter(|r| *r != target.role()) {
        let detail = format!("{} -> {}", target.role, role.as_str());
        audit::record(
            &state.db,
            event::ROLE_CHANGED,
            Some(me.id()),
            Some(id),
            None,
            Some(&detail),
        )
        .await;
    }
    if new_hash.is_some() || email.is_some() {
        spend_email_tokens(&state.db, id).await?;
    }
    if new_hash.is_some() {
        // Every other session of that user ends; the caller keeps theirs if it is their own account.
        revoke_sessions(&state, id, is_self.then_some(me.session_id)).await?;
        audit::record(
            &state.db,
            event::PASSWORD_CHANGED,
            Some(me.id()),
            Some(id),
            None,
            None,
        )
        .await;
    }
    if let Some(e) = &email {
        audit::record(
            &state.db,
            event::EMAIL_CHANGED,
            Some(me.id()),
            Some(id),
            None,
            None,
        )
        .await;
        crate::mail::send_verification(&state.mailer, &state.db, id, e.as_str()).await?;
    }
    let row = store::users::find_by_id(&state.db, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(row.to_api()))
}

#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
/// Delete a user (admin, master). Never yourself; admins delete only users; the last
/// master cannot be deleted.
pub async fn delete(
    State(state): State<AppState>,
    AdminUser(me): AdminUser,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    if id == me.id() {
        return Err(ApiError::bad_request(
            codes::CANNOT_DELETE_SELF,
            "you cannot delete your own account",
        ));
    }
    let target = store::users::find_by_id(&state.db, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    if me.role() == Role::Admin && target.role() != Role::User {
        return Err(ApiError::forbidden("admins delete only users"));
    }
    let rooms = crate::membership::rooms_and_peers(&state.db, id).await?;
    let mut tx = state.db.begin_write().await?;
    // The user's consent lock first (`store::blocks::lock_users`): a block or
    // invitation of theirs on its way finishes before the rooms are read, or
    // waits for the deletion, so neither locks a room the other holds.
    store::blocks::lock_users(&mut tx, &[id]).await?;
    store::users::lock_master_changes(&mut tx).await?;
    let deleted = store::users::delete(&mut tx, id).await?;
    if !deleted {
        return Err(ApiError::conflict(
            codes::LAST_MASTER,
            "the last master cannot be deleted",
        ));
    }
    // Their memberships went with them (cascade). Rooms they owned pass to the
    // longest-standing remaining member; rooms left without members are deleted.
    let files = crate::rooms::hand_over_rooms(&mut tx, id).await?;
    tx.commit().await?;
    state.files.remove(&files).await;
    state.presence.sessions_changed(id);
    crate::rooms::announce_user_deleted(&state, id, rooms);
    audit::record(
        &state.db,
        event::USER_DELETED,
        Some(me.id()),
        Some(id),
        None,
        Some(&target.username),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// The routes of this feature, with their OpenAPI description (merged in
/// [`crate::app::api`]). Users and roles.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(search))
        .routes(routes!(get, patch, delete))
}
