//! Devices and public keys: `/api/v1/devices...`, `GET /api/v1/users/{id}/devices`
//! and `POST /api/v1/keys/query`.
//!
//! The relay verifies every bundle with sotto-core (identity signature over the
//! device keys, device self-signature, well-formed keys, size limits) and keeps
//! each user's identity key: a bundle under a different identity key is refused
//! unless it explicitly replaces the identity, which drops the devices signed by
//! the old one. Every change is announced as `keys_changed` to the user and to
//! everyone sharing a room with them.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use sotto_core::api::ServerFrame;
use sotto_core::api::devices::{
    Device, DeviceListQuery, KeysQueryRequest, KeysQueryResponse, MAX_KEYS_QUERY_USERS,
    PutDeviceRequest, RevokeDeviceRequest,
};
use sotto_core::api::pagination::Page;
use sotto_core::api::problem::{Problem, codes};
use sotto_core::api::users::Role;
use sotto_core::encoding::b64_encode;
use uuid::Uuid;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::audit::{self, event};
use crate::auth::AuthUser;
use crate::db::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::ratelimit::Write;

use crate::state::AppState;
use crate::store;
use crate::validate::check_label;

/// Most devices one user may register.
pub const MAX_DEVICES_PER_USER: i64 = 64;

/// The caller's password must be `given` (400 `current_password_required`
/// when absent, 403 `invalid_credentials` when wrong).
async fn require_password(
    state: &AppState,
    me: &AuthUser,
    given: Option<String>,
    what: &str,
) -> ApiResult<()> {
    let given = given.ok_or_else(|| {
        ApiError::bad_request(
            codes::CURRENT_PASSWORD_REQUIRED,
            format!("{what} needs `current_password`"),
        )
    })?;
    let row = store::users::find_by_id(&state.db, me.id())
        .await?
        .ok_or_else(|| ApiError::unauthorized(codes::INVALID_TOKEN, "the account is gone"))?;
    if !crate::auth::verify_password(given, row.password_hash).await? {
        audit::record(
            &state.db,
            event::PASSWORD_CHECK_FAILED,
            Some(me.id()),
            Some(me.id()),
            None,
            Some(what),
        )
        .await;
        return Err(ApiError::forbidden_code(
            codes::INVALID_CREDENTIALS,
            "the current password is wrong",
        ));
    }
    Ok(())
}

/// Announces that `user`'s devices changed, to them and everyone sharing a room with them.
pub async fn announce_keys_changed(state: &AppState, user: Uuid) {
    let frame = ServerFrame::KeysChanged { user_id: user };
    if !state.events.has_subscribers() {
        state.events.publish(&[], frame);
        return;
    }
    let mut audience = match crate::membership::peers_of(&state.db, user).await {
        Ok(peers) => peers,
        Err(e) => {
            // The user still hears about their own keys; peers resume later.
            tracing::warn!(%user, code = e.code, "keys_changed: room peers unavailable");
            Vec::new()
        }
    };
    audience.push(user);
    state.events.publish(&audience, frame);
}

#[utoipa::path(put, path = "/api/v1/devices/{device_id}", tag = "devices",
    params(("device_id" = Uuid, Path)), request_body = PutDeviceRequest,
    responses((status = 200, body = Device, description = "replaced"), (status = 201, body = Device, description = "registered"),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 409, body = Problem), (status = 413, body = Problem)),
    security(("bearer" = [])))]
/// Upload or replace one of your device bundles. The relay verifies its
/// signatures and keys (400 `invalid_bundle`); a bundle under another identity
/// key than yours is refused (409 `identity_key_changed`) unless
/// `replace_identity` is set, which also removes your devices signed by the old one.
pub async fn put(
    State(state): State<AppState>,
    me: AuthUser,
    Path(device_id): Path<Uuid>,
    ApiJson(req): ApiJson<PutDeviceRequest>,
) -> ApiResult<(StatusCode, Json<Device>)> {
    if req.bundle.device_id != device_id {
        return Err(ApiError::bad_request(
            codes::DEVICE_MISMATCH,
            "the bundle's device_id differs from the path's",
        ));
    }
    if req.bundle.user_id != me.id() {
        return Err(ApiError::bad_request(
            codes::DEVICE_MISMATCH,
            "the bundle names another user",
        ));
    }
    req.bundle.verify().map_err(|e| {
        ApiError::bad_request(codes::INVALID_BUNDLE, format!("invalid bundle: {e}"))
    })?;
    state.limits.check_write(Write::DeviceUpdate, me.id())?;
    if req.replace_identity {
        require_password(
            &state,
            &me,
            req.current_password.clone(),
            "replacing your identity key",
        )
        .await?;
    }
    let display_name = match &req.display_name {
        Some(n) => Some(check_label(n, "display_name", 64)?),
        None => None,
    };
    let identity = b64_encode(req.bundle.identity_key.as_bytes());
    let bundle_json = serde_json::to_string(&req.bundle).map_err(ApiError::internal)?;
    let dev = device_id.to_string();
    let now = now_ms();
    let write = store::devices::DeviceWrite {
        id: device_id,
        user: me.id(),
        display_name: display_name.as_deref(),
        identity: &identity,
        bundle_json: &bundle_json,
        now,
    };

    let mut tx = state.db.begin_write().await?;
    let on_record = store::devices::pin_identity(&mut tx, me.id(), &identity, now).await?;
    let replaced_identity = on_record != identity;
    if replaced_identity {
        if !req.replace_identity {
            return Err(ApiError::conflict(
                codes::IDENTITY_KEY_CHANGED,
                "the bundle is signed by another identity key than yours; set `replace_identity` to replace it",
            ));
        }
        store::devices::replace_identity(&mut tx, me.id(), &identity, now).await?;
        // The devices it revoked: their sessions end (not the caller's).
        store::devices::end_sessions_of_revoked(&mut tx, me.id(), me.session_id, now).await?;
    }
    let existing = store::devices::owner_of(&mut tx, device_id).await?;
    let status = match existing.map(|(owner, revoked)| (owner == me.id(), revoked)) {
        Some((false, _)) => {
            return Err(ApiError::conflict(
                codes::CONFLICT,
                "this device id is taken; generate a new one",
            ));
        }
        Some((true, true)) => {
            return Err(ApiError::conflict(
                codes::CONFLICT,
                "this device was revoked; register the device under a new id",
            ));
        }
        Some(_) => {
            store::devices::update(&mut tx, &write).await?;
            StatusCode::OK
        }
        None => {
            if store::devices::count_active(&mut tx, me.id()).await? >= MAX_DEVICES_PER_USER {
                metrics::counter!("sotto_limit_reached_total", "limit" => "devices").increment(1);
                return Err(ApiError::limit_reached(format!(
                    "at most {MAX_DEVICES_PER_USER} devices per user; revoke one first"
                )));
            }
            store::devices::insert(&mut tx, &write).await?;
            StatusCode::CREATED
        }
    };
    store::devices::record_session(&mut tx, device_id, me.session_id).await?;
    let device = store::devices::get(&mut tx, device_id).await?;
    tx.commit().await?;
    if replaced_identity {
        state.presence.sessions_changed(me.id());
    }

    if replaced_identity {
        audit::record(
            &state.db,
            event::IDENTITY_REPLACED,
            Some(me.id()),
            Some(me.id()),
            None,
            Some(&dev),
        )
        .await;
    }
    if status == StatusCode::CREATED {
        audit::record(
            &state.db,
            event::DEVICE_ADDED,
            Some(me.id()),
            Some(me.id()),
            None,
            Some(&dev),
        )
        .await;
    }
    announce_keys_changed(&state, me.id()).await;
    Ok((status, Json(device)))
}

#[utoipa::path(get, path = "/api/v1/devices", tag = "devices", params(DeviceListQuery),
    responses((status = 200, body = Page<Device>), (status = 400, body = Problem), (status = 401, body = Problem)),
    security(("bearer" = [])))]
/// Your devices: the active ones (at most 64, so one page), and with
/// `include_revoked=true` also the revoked ones.
pub async fn list_own(
    State(state): State<AppState>,
    me: AuthUser,
    Query(q): Query<DeviceListQuery>,
) -> ApiResult<Json<Page<Device>>> {
    let items =
        store::devices::of_users(&state.db, &[me.id()], q.include_revoked.unwrap_or(false)).await?;
    Ok(Json(Page::last(items)))
}

#[utoipa::path(delete, path = "/api/v1/devices/{device_id}", tag = "devices",
    params(("device_id" = Uuid, Path)), request_body = RevokeDeviceRequest,
    responses((status = 204), (status = 400, body = Problem, description = "`current_password_required`"),
        (status = 401, body = Problem),
        (status = 403, body = Problem, description = "`invalid_credentials`: the password is wrong"),
        (status = 404, body = Problem),
        (status = 429, body = Problem, description = "`rate_limited`: `--device-update-rate` per minute")),
    security(("bearer" = [])))]
/// Revoke one of your devices (with your password): it can no longer post, is
/// no longer served for encryption, the sessions that registered it end, and
/// the change is announced. Its bundle stays listed with `include_revoked` so
/// that messages it sent remain verifiable.
pub async fn delete(
    State(state): State<AppState>,
    me: AuthUser,
    Path(device_id): Path<Uuid>,
    ApiJson(req): ApiJson<RevokeDeviceRequest>,
) -> ApiResult<StatusCode> {
    state.limits.check_write(Write::DeviceUpdate, me.id())?;
    require_password(&state, &me, Some(req.current_password), "revoking a device").await?;
    let mut tx = state.db.begin_write().await?;
    if !store::devices::revoke(&mut tx, me.id(), device_id, now_ms()).await? {
        return Err(ApiError::not_found());
    }
    tx.commit().await?;
    state.presence.sessions_changed(me.id());
    audit::record(
        &state.db,
        event::DEVICE_REVOKED,
        Some(me.id()),
        Some(me.id()),
        None,
        Some(&device_id.to_string()),
    )
    .await;
    announce_keys_changed(&state, me.id()).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Which of `users` the caller may fetch keys of: themself, everyone for admins
/// and masters, otherwise users sharing a room or a contact (either direction).
async fn visible_users(state: &AppState, me: &AuthUser, users: &[Uuid]) -> ApiResult<Vec<Uuid>> {
    if users.is_empty() {
        return Ok(Vec::new());
    }
    if me.role() >= Role::Admin {
        return Ok(users.to_vec());
    }
    let mut out = store::devices::related_users(&state.db, me.id(), users).await?;
    if users.contains(&me.id()) {
        out.push(me.id());
    }
    Ok(out)
}

#[utoipa::path(get, path = "/api/v1/users/{id}/devices", tag = "devices",
    params(("id" = Uuid, Path), DeviceListQuery),
    responses((status = 200, body = Page<Device>), (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
/// Another user's device bundles: for users who share a room or a contact with
/// you, and for admins. Anyone else is 404.
pub async fn list_for_user(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<Uuid>,
    Query(q): Query<DeviceListQuery>,
) -> ApiResult<Json<Page<Device>>> {
    if visible_users(&state, &me, &[id]).await?.is_empty() {
        return Err(ApiError::not_found());
    }
    if crate::store::users::find_by_id(&state.db, id)
        .await?
        .is_none()
    {
        return Err(ApiError::not_found());
    }
    let items =
        store::devices::of_users(&state.db, &[id], q.include_revoked.unwrap_or(false)).await?;
    Ok(Json(Page::last(items)))
}

#[utoipa::path(post, path = "/api/v1/keys/query", tag = "devices", request_body = KeysQueryRequest,
    responses((status = 200, body = KeysQueryResponse), (status = 400, body = Problem), (status = 401, body = Problem)),
    security(("bearer" = [])))]
/// The bundles of every device of the given users, in one call. Users you may
/// not see and unknown users are answered with an empty list, like users
/// without devices.
pub async fn query(
    State(state): State<AppState>,
    me: AuthUser,
    ApiJson(req): ApiJson<KeysQueryRequest>,
) -> ApiResult<Json<KeysQueryResponse>> {
    if req.user_ids.len() > MAX_KEYS_QUERY_USERS {
        return Err(ApiError::bad_request(
            codes::VALIDATION_FAILED,
            format!("at most {MAX_KEYS_QUERY_USERS} user ids per query"),
        ));
    }
    let mut asked = req.user_ids.clone();
    asked.sort_unstable();
    asked.dedup();
    let visible = visible_users(&state, &me, &asked).await?;
    let mut devices: BTreeMap<Uuid, Vec<Device>> = asked.iter().map(|u| (*u, Vec::new())).collect();
    for d in store::devices::of_users(&state.db, &visible, req.include_revoked).await? {
        devices.entry(d.user_id).or_default().push(d);
    }
    Ok(Json(KeysQueryResponse { devices }))
}

/// The routes of this feature, with their OpenAPI description (merged in
/// [`crate::app::api`]). Devices and public keys.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_own))
        .routes(routes!(put, delete))
        .routes(routes!(list_for_user))
        .routes(routes!(query))
}
