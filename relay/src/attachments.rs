//! Attachments: `POST /api/v1/rooms/{id}/attachments` and
//! `GET /api/v1/attachments/{id}`.
//!
//! An attachment is opaque bytes (a file the client encrypted with its own key,
//! which travels inside a sealed message). Uploads are streamed: the relay holds
//! at most the inline threshold in memory, spills larger uploads to a temporary
//! file under `<data dir>/attachments/`, stops reading at the size limit (413),
//! and only makes the attachment visible once it is complete and synced. Small
//! attachments live in the database; larger ones as files named by their id.
//! Only members of the attachment's room may read it; deleting the room deletes
//! its attachments. Files left without a row (a crash mid-upload, a room deleted
//! by cascade) are swept at start and every hour.

use std::path::PathBuf;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use sotto_core::api::messages::AttachmentCreated;
use sotto_core::api::problem::{Problem, codes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::AuthUser;
use crate::db::{Db, now_ms, rfc3339};
use crate::error::{ApiError, ApiResult};
use crate::membership::require_member;
use crate::state::AppState;
use crate::store;

/// A temporary upload file, removed when dropped (an upload that fails, or
/// whose client disconnects, leaves nothing behind; after the rename into
/// place there is nothing left to remove).
struct TempFile {
    file: tokio::fs::File,
    path: PathBuf,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Where an upload in progress keeps its bytes.
enum Sink {
    Memory(Vec<u8>),
    File(TempFile),
}

async fn spill(state: &AppState, id: Uuid, buffered: &[u8]) -> ApiResult<TempFile> {
    let d = state.files.dir();
    crate::fsutil::create_private_dir(d)
        .map_err(|e| ApiError::internal(format!("attachments dir: {e}")))?;
    let path = state.files.temp_path(id);
    let file = crate::fsutil::private_tokio_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .await
        .map_err(|e| ApiError::internal(format!("attachment temp file: {e}")))?;
    let mut tmp = TempFile { file, path };
    tmp.file
        .write_all(buffered)
        .await
        .map_err(|e| ApiError::internal(format!("attachment write: {e}")))?;
    Ok(tmp)
}

/// Bytes of attachments `user` uploaded that are still stored.
async fn used_by(db: &Db, user: Uuid) -> ApiResult<u64> {
    store::attachments::used_by(db, user).await
}

#[utoipa::path(post, path = "/api/v1/rooms/{id}/attachments", tag = "messages", params(("id" = Uuid, Path)),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "the encrypted attachment, opaque bytes"),
    responses((status = 201, body = AttachmentCreated), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 404, body = Problem), (status = 408, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem)),
    security(("bearer" = [])))]
/// Upload an encrypted attachment to a room (members only), streamed, up to the
/// configured size and within your storage quota. Its key goes inside a
/// message; the relay sees opaque bytes.
pub async fn upload(
    State(state): State<AppState>,
    me: AuthUser,
    Path(room): Path<Uuid>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<AttachmentCreated>)> {
    require_member(&state.db, room, me.id()).await?;
    if let Some(ct) = headers.get(header::CONTENT_TYPE)
        && !ct
            .to_str()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("application/octet-stream")
    {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            codes::UNSUPPORTED_MEDIA_TYPE,
            "expected `Content-Type: application/octet-stream`",
        ));
    }
    let Some(_slot) = state.uploads.take(me.id()) else {
        return Err(ApiError::rate_limited(std::time::Duration::from_secs(1)));
    };
    let max = state.config.max_attachment_bytes;
    let quota_left = state
        .config
        .attachment_quota_bytes
        .saturating_sub(used_by(&state.db, me.id()).await?);
    let over = |size: u64| {
        if size > max {
            ApiError::too_large(format!("attachments are at most {max} bytes"))
        } else {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                codes::QUOTA_EXCEEDED,
                format!("your attachment storage quota has {quota_left} bytes left"),
            )
        }
    };
    let limit = max.min(quota_left);
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = declared.filter(|n| *n > limit) {
        return Err(over(n));
    }
    let inline = state.config.attachment_inline_bytes.min(max);
    let idle = Duration::from_secs(state.config.request_timeout.max(1));
    let id = Uuid::now_v7();
    let mut size: u64 = 0;
    let mut sink = Sink::Memory(Vec::new());
    let mut stream = body.into_data_stream();
    loop {
        // Uploads are exempt from the whole-request timeout (large files take
        // time); a client that stops sending is cut off instead.
        let next = match tokio::time::timeout(idle, stream.next()).await {
            Ok(n) => n,
            Err(_) => {
                return Err(ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    codes::REQUEST_TIMEOUT,
                    "the upload stalled",
                ));
            }
        };
        let Some(chunk) = next else { break };
        let Ok(chunk) = chunk else {
            return Err(ApiError::bad_request(
                codes::VALIDATION_FAILED,
                "the upload was interrupted",
            ));
        };
        size = size.saturating_add(chunk.len() as u64);
        if size > limit {
            return Err(over(size));
        }
        sink = match sink {
            Sink::Memory(mut buf) if size <= inline => {
                buf.extend_from_slice(&chunk);
                Sink::Memory(buf)
            }
            Sink::Memory(buf) => {
                let mut tmp = spill(&state, id, &buf).await?;
                tmp.file
                    .write_all(&chunk)
                    .await
                    .map_err(|e| ApiError::internal(format!("attachment write: {e}")))?;
                Sink::File(tmp)
            }
            Sink::File(mut tmp) => {
                tmp.file
                    .write_all(&chunk)
                    .await
                    .map_err(|e| ApiError::internal(format!("attachment write: {e}")))?;
                Sink::File(tmp)
            }
        };
    }
    if size == 0 {
        return Err(ApiError::bad_request(
            codes::VALIDATION_FAILED,
            "the attachment is empty",
        ));
    }
    let size_i = i64::try_from(size).map_err(|_| over(size))?;
    let quota = i64::try_from(state.config.attachment_quota_bytes).unwrap_or(i64::MAX);
    let now = now_ms();
    let row = |data: Option<Vec<u8>>| store::attachments::NewAttachment {
        id,
        room,
        uploader: me.id(),
        size: size_i,
        data,
        now,
    };
    let insert = |a| async {
        let mut tx = state.db.begin_write().await?;
        let stored = store::attachments::insert(&mut tx, a, quota).await?;
        tx.commit().await?;
        Ok::<_, ApiError>(stored)
    };
    let stored = match sink {
        Sink::Memory(buf) => insert(row(Some(buf))).await?,
        Sink::File(mut tmp) => {
            let finished = async {
                tmp.file.flush().await?;
                tmp.file.sync_all().await?;
                tokio::fs::rename(&tmp.path, state.files.path(id)).await
            }
            .await;
            drop(tmp);
            finished.map_err(|e| ApiError::internal(format!("attachment finish: {e}")))?;
            match insert(row(None)).await {
                Ok(true) => true,
                other => {
                    state.files.remove(&[id]).await;
                    other?
                }
            }
        }
    };
    if !stored {
        // The uploader left, or the room was deleted, during the upload; or
        // concurrent uploads used up the quota meanwhile.
        require_member(&state.db, room, me.id()).await?;
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            codes::QUOTA_EXCEEDED,
            "your attachment storage quota is used up",
        ));
    }
    metrics::counter!("sotto_attachment_bytes_total").increment(size);
    Ok((
        StatusCode::CREATED,
        Json(AttachmentCreated {
            id,
            size,
            created_at: rfc3339(now),
        }),
    ))
}

#[utoipa::path(get, path = "/api/v1/attachments/{id}", tag = "messages", params(("id" = Uuid, Path)),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>, description = "the encrypted attachment"),
        (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
/// Download an attachment (members of its room only; anyone else gets 404).
pub async fn download(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let row = store::attachments::readable_by(&state.db, id, me.id())
        .await?
        .ok_or_else(ApiError::not_found)?;
    let body = match row.data {
        Some(data) => Body::from(data),
        None => {
            let file = tokio::fs::File::open(state.files.path(id))
                .await
                .map_err(|e| ApiError::internal(format!("attachment {id} file: {e}")))?;
            let stream = futures_util::stream::unfold(Some(file), |f| async move {
                let mut f = f?;
                let mut buf = vec![0u8; 64 * 1024];
                match f.read(&mut buf).await {
                    Ok(0) => None,
                    Ok(n) => {
                        buf.truncate(n);
                        Some((Ok(axum::body::Bytes::from(buf)), Some(f)))
                    }
                    Err(e) => Some((Err::<axum::body::Bytes, _>(e), None)),
                }
            });
            Body::from_stream(stream)
        }
    };
    let mut res = (StatusCode::OK, body).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(row.size));
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(res)
}

#[utoipa::path(delete, path = "/api/v1/attachments/{id}", tag = "messages", params(("id" = Uuid, Path)),
    responses((status = 204, description = "deleted; its bytes no longer count against your quota"),
        (status = 401, body = Problem), (status = 404, body = Problem, description = "no attachment of yours with this id")),
    security(("bearer" = [])))]
/// Delete an attachment you uploaded (messages pointing at it can no longer
/// fetch it). Frees its bytes from your attachment quota.
pub async fn delete(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    match store::attachments::delete_own(state.db.writer(), id, me.id()).await? {
        None => Err(ApiError::not_found()),
        Some(is_file) => {
            if is_file {
                state.files.remove(&[id]).await;
            }
            Ok(StatusCode::NO_CONTENT)
        }
    }
}

/// The routes of this feature, with their OpenAPI description (merged in
/// [`crate::app::api`]). Attachments (downloads; uploads are in [`streaming_routes`]).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(download, delete))
}

/// The upload route: exempt from the whole-request timeout (large files take
/// time); an upload that stalls is cut off instead.
pub fn streaming_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(upload))
}
