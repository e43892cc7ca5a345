//! Operations: `/`, `/health`, `/openapi.json`, `/docs`, the small
//! HTML pages e-mailed links open, their assets, and the admin audit log.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use sotto_core::api::ops::{CheckStatus, Health, RootInfo};
use sotto_core::api::pagination::{Page, effective_limit};
use sotto_core::api::problem::{Problem, codes};
use utoipa::{IntoParams, ToSchema};

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::db::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::extract::AdminUser;
use crate::state::AppState;

#[utoipa::path(get, path = "/", tag = "operations", responses((status = 200, body = RootInfo)))]
/// The relay's name and version. A browser (asking for `text/html`) is sent to the
/// browser chat instead when one is served.
pub async fn root(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if wants_html && state.config.web_root().is_some() {
        return Redirect::to("/app/").into_response();
    }
    Json(RootInfo {
        name: "sotto-relay".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
    .into_response()
}

#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
/// Liveness and database reachability; 503 when the database does not answer.
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let ok = tokio::time::timeout(std::time::Duration::from_secs(2), state.db.ping())
        .await
        .unwrap_or(false);
    let db = if ok {
        CheckStatus::Ok
    } else {
        CheckStatus::Unavailable
    };
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(Health {
            status: db,
            database: db,
        }),
    )
}

macro_rules! asset {
    ($name:literal) => {
        include_str!(concat!("../assets/", $name))
    };
}

pub async fn docs() -> Html<&'static str> {
    Html(asset!("docs.html"))
}
pub async fn verify_email_page() -> Html<&'static str> {
    Html(asset!("verify-email.html"))
}
pub async fn reset_password_page() -> Html<&'static str> {
    Html(asset!("reset-password.html"))
}

/// Static assets of the pages (no third-party code, nothing downloaded).
pub async fn assets(Path(name): Path<String>) -> Response {
    let (body, ct) = match name.as_str() {
        "page.css" => (asset!("page.css"), "text/css; charset=utf-8"),
        "pages.js" => (asset!("pages.js"), "text/javascript; charset=utf-8"),
        "verify-email.js" => (asset!("verify-email.js"), "text/javascript; charset=utf-8"),
        "reset-password.js" => (
            asset!("reset-password.js"),
            "text/javascript; charset=utf-8",
        ),
        "docs.js" => (asset!("docs.js"), "text/javascript; charset=utf-8"),
        _ => return ApiError::not_found().into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, ct),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// One audit-log entry.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    pub id: uuid::Uuid,
    /// RFC 3339 UTC.
    pub at: String,
    /// e.g. `login_ok`, `login_failed`, `role_changed`, `user_deleted`, `password_reset`, `refresh_reuse`.
    pub event: String,
    pub actor_id: Option<uuid::Uuid>,
    pub target_id: Option<uuid::Uuid>,
    pub ip: Option<String>,
    pub detail: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this event kind.
    pub event: Option<String>,
    /// Page size (default 50, 1 to 200).
    #[serde(
        default,
        deserialize_with = "sotto_core::api::pagination::deserialize_limit"
    )]
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// Cursor from the previous page (newest first).
    #[param(min_length = 1)]
    pub cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/admin/audit", tag = "operations", params(AuditQuery),
    responses((status = 200, body = Page<AuditEntry>), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
/// The security audit log, newest first (admin, master).
pub async fn audit_log(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<Page<AuditEntry>>> {
    crate::validate::check_query_text(q.event.as_deref().unwrap_or(""))?;
    let limit = effective_limit(q.limit);
    let before = match &q.cursor {
        None => None,
        Some(c) => Some(uuid::Uuid::parse_str(c).map_err(|_| {
            ApiError::bad_request(codes::INVALID_CURSOR, "the cursor is not valid")
        })?),
    };
    let rows =
        crate::store::audit::page(&state.db, before, q.event.as_deref().unwrap_or(""), limit)
            .await?;
    Ok(Json(crate::pagination::page_of(
        rows,
        limit,
        |r| r.id.to_string(),
        |r| AuditEntry {
            id: r.id,
            at: rfc3339(r.at),
            event: r.event.clone(),
            actor_id: r.actor_id,
            target_id: r.target_id,
            ip: r.ip.clone(),
            detail: r.detail.clone(),
        },
    )))
}

/// The routes of this feature, with their OpenAPI description (merged in
/// [`crate::app::api`]). Operations: root, health and the audit log.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(root))
        .routes(routes!(health))
        .routes(routes!(audit_log))
}
