//! Messages, receipts and unread counts: `/api/v1/rooms/{id}/messages...`,
//! `/api/v1/rooms/{id}/receipts`, `/api/v1/unread`.
//!
//! The relay stores each sealed envelope untouched. Before storing it, it
//! parses the envelope strictly with sotto-core, checks that the header's room,
//! sender and client id match the route, the token and the request, that the
//! sender device is one of the caller's registered devices, and that the
//! envelope's signature verifies under that device's key. It never decrypts
//! (it has no key to).
//!
//! `seq` is per room, gapless and strictly increasing: it is taken from the
//! room's counter inside the transaction that stores the message (a row lock on
//! PostgreSQL, the write lock on SQLite), so a failed insert rolls the counter
//! back with it. Deleting leaves a tombstone that keeps its `seq`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use sotto_core::api::ServerFrame;
use sotto_core::api::messages::{
    Message, MessageListQuery, PostMessageRequest, PostMessageResponse, Receipt, ReceiptKind,
    ReceiptRequest, UnreadResponse,
};
use sotto_core::api::pagination::Page;
use sotto_core::api::problem::{Problem, codes};
use sotto_core::encoding::B64;
use sotto_core::envelope::{Envelope, Limits};
use sotto_core::keys::VerifiedDevice;
use uuid::Uuid;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::AuthUser;
use crate::db::{now_ms, rfc3339, u64_of};
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::membership::{not_a_member, require_member};
use crate::state::AppState;

pub use crate::store::messages::PAGE_BYTES;
use crate::store::messages::{NewMessage, Stored, StoredRef, find_stored, page_after};

fn mismatch(detail: &str) -> ApiError {
    ApiError::bad_request(codes::ENVELOPE_MISMATCH, detail)
}

fn invalid(detail: impl Into<String>) -> ApiError {
    ApiError::bad_request(codes::INVALID_ENVELOPE, detail)
}

/// A retry of an already stored (sender, client_id): the first answer when it
/// carries the same envelope into the same room, 409 otherwise.
fn replay(
    stored: &StoredRef,
    room: Uuid,
    digest: &str,
) -> ApiResult<(StatusCode, Json<PostMessageResponse>)> {
    if !crate::store::messages::same_message(stored, room, digest) {
        return Err(ApiError::conflict(
            codes::ENVELOPE_MISMATCH,
            "this client_id was already used for another message",
        ));
    }
    Ok((StatusCode::CREATED, Json(stored.response()?)))
}

/// What posting needs to know, read in one query: the caller's membership,
/// the room's membership epoch, the sender device's active bundle, and
/// whether the room is a direct room between users one of whom blocked the
/// other.
struct SendContext {
    epoch: i64,
    device: Option<String>,
}

/// 404 `not_a_member` unless the caller is a member of `room`; 403 `blocked`
/// in a direct room with a user who blocked them or whom they blocked.
async fn send_context(
    state: &AppState,
    room: Uuid,
    me: Uuid,
    device: Uuid,
) -> ApiResult<SendContext> {
    let ctx = crate::store::messages::send_context(&state.db, room, me, device)
        .await?
        .ok_or_else(not_a_member)?;
    if ctx.blocked {
        return Err(ApiError::forbidden_code(
            codes::BLOCKED,
            "you cannot post here: one of you blocked the other",
        ));
    }
    Ok(SendContext {
        epoch: ctx.epoch,
        device: ctx.bundle,
    })
}

/// The sender device, verified; 400 `envelope_mismatch` when it is not an
/// active device of the caller (or its stored bundle no longer verifies).
fn sender_device(state: &AppState, device: Uuid, ctx: &SendContext) -> ApiResult<VerifiedDevice> {
    let Some(bundle) = &ctx.device else {
        return Err(mismatch(
            "the sender device is not one of your registered devices",
        ));
    };
    crate::keycache::verify_stored(&state.device_cache, device, bundle).map_err(|_| {
        mismatch("the sender device's stored bundle does not verify; register it again")
    })
}

/// The result of storing one message, shared by the REST route and (later) the
/// WebSocket `send` frame.
pub struct Posted {
    pub response: PostMessageResponse,
    pub created: bool,
}

/// Validates and stores one envelope from `me` into `room`, or answers the
/// first result of an earlier identical post.
pub async fn post_envelope(
    state: &AppState,
    me: Uuid,
    room: Uuid,
    client_id: Uuid,
    bytes: Vec<u8>,
) -> ApiResult<Posted> {
    state.limits.check_post(me)?;
    let max = state.config.max_message_bytes;
    let limits = Limits {
        max_envelope_bytes: max,
        ..Limits::default()
    };
    let parsed = Envelope::from_bytes_with_limits(&bytes, &limits);
    let device_id = parsed
        .as_ref()
        .map_or(Uuid::nil(), |e| e.header.sender_device_id);
    let ctx = send_context(state, room, me, device_id).await?;
    if bytes.len() > max {
        return Err(ApiError::too_large(format!(
            "the envelope is larger than {max} bytes"
        )));
    }
    let env = parsed.map_err(|e| invalid(format!("the envelope does not parse: {e}")))?;
    let h = &env.header;
    if h.room_id != room {
        return Err(mismatch("the envelope is addressed to another room"));
    }
    if h.sender_user_id != me {
        return Err(mismatch("the envelope names another sender"));
    }
    if h.client_message_id != client_id {
        return Err(mismatch(
            "the envelope's client message id differs from `client_id`",
        ));
    }
    let device = sender_device(state, h.sender_device_id, &ctx)?;
    env.verify_signature(&device).map_err(|_| {
        invalid("the envelope's signature does not verify under the sender device's key")
    })?;
    let digest = crate::digest::sha256_hex(&bytes);
    let device_id = h.sender_device_id;
    drop(env);
    // Counted in memory (no database round trip); given back below if the
    // message is not stored.
    let size = bytes.len();
    if let Err(e) = state.quotas.reserve(me, size).await {
        // A retry of a message stored before the quota filled is still answered.
        if let Some(stored) = find_stored(&state.db, me, client_id).await? {
            let (_, Json(response)) = replay(&stored, room, &digest)?;
            return Ok(Posted {
                response,
                created: false,
            });
        }
        return Err(e);
    }
    let result = store_checked(state, me, room, client_id, device_id, bytes, digest, ctx).await;
    if !matches!(result, Ok(ref p) if p.created) {
        state.quotas.release(me, size);
    }
    result
}

/// Stores a checked post through the group commit (see [`post_envelope`]).
#[allow(clippy::too_many_arguments)]
async fn store_checked(
    state: &AppState,
    me: Uuid,
    room: Uuid,
    client_id: Uuid,
    device_id: Uuid,
    bytes: Vec<u8>,
    digest: String,
    mut ctx: SendContext,
) -> ApiResult<Posted> {
    let mut message = NewMessage {
        id: Uuid::now_v7(),
        room,
        sender: me,
        device: device_id,
        client_id,
        envelope: bytes,
        digest,
        now: now_ms(),
        epoch: ctx.epoch,
    };
    let mut attempts = 0;
    let seq = loop {
        let (back, stored) = state.ingest.store(message).await?;
        message = back;
        if let Stored::Seq(seq) = stored {
            break seq;
        }
        if let Some(stored) = find_stored(&state.db, me, client_id).await? {
            // A retry of this client_id (earlier or concurrent) is stored.
            let (_, Json(response)) = replay(&stored, room, &message.digest)?;
            return Ok(Posted {
                response,
                created: false,
            });
        }
        // The room's membership changed since we looked (or we were removed):
        // look again, under the new epoch.
        attempts += 1;
        if attempts >= 5 {
            return Err(ApiError::unavailable(
                "the room's membership keeps changing; retry",
            ));
        }
        ctx = send_context(state, room, me, device_id).await?;
        sender_device(state, device_id, &ctx)?;
        message.epoch = ctx.epoch;
    };
    metrics::counter!("sotto_messages_stored_total").increment(1);
    let seq_u = u64_of("seq", seq)?;
    let created_at = rfc3339(message.now);
    let id = message.id;
    state
        .events
        .publish_message(
            &state.db,
            message.epoch,
            ServerFrame::Message {
                room_id: room,
                id,
                seq: seq_u,
                sender_id: me,
                device_id,
                envelope: B64(message.envelope),
                created_at: created_at.clone(),
            },
        )
        .await;
    state.push.news(room, seq_u, me);
    Ok(Posted {
        response: PostMessageResponse {
            id,
            seq: seq_u,
            created_at,
        },
        created: true,
    })
}

#[utoipa::path(post, path = "/api/v1/rooms/{id}/messages", tag = "messages", params(("id" = Uuid, Path)),
    request_body = PostMessageRequest,
    responses((status = 201, body = PostMessageResponse, description = "stored (or stored earlier: a retry answers the first result)"),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 413, body = Problem)),
    security(("bearer" = [])))]
/// Post a sealed envelope. The header must name this room, you, one of your
/// devices and `client_id`, and the envelope must be signed by that device.
/// Idempotent on (sender, `client_id`).
pub async fn post(
    State(state): State<AppState>,
    me: AuthUser,
    Path(room): Path<Uuid>,
    ApiJson(req): ApiJson<PostMessageRequest>,
) -> ApiResult<(StatusCode, Json<PostMessageResponse>)> {
    let posted = post_envelope(&state, me.id(), room, req.client_id, req.envelope.0).await?;
    Ok((StatusCode::CREATED, Json(posted.response)))
}

#[utoipa::path(get, path = "/api/v1/rooms/{id}/messages", tag = "messages",
    params(("id" = Uuid, Path), MessageListQuery),
    responses((status = 200, body = Page<Message>), (status = 400, body = Problem), (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
/// Messages with `seq > after_seq`, in `seq` order (members only; from when you
/// joined). `next_cursor` is the `after_seq` of the next page.
pub async fn list(
    State(state): State<AppState>,
    me: AuthUser,
    Path(room): Path<Uuid>,
    Query(q): Query<MessageListQuery>,
) -> ApiResult<Json<Page<Message>>> {
    let m = require_member(&state.db, room, me.id()).await?;
    let page = page_after(
        &state.db,
        room,
        m.joined_seq,
        q.after_seq.unwrap_or(0),
        q.effective_limit(),
    )
    .await?;
    Ok(Json(page))
}

#[utoipa::path(delete, path = "/api/v1/rooms/{id}/messages/{msg_id}", tag = "messages",
    params(("id" = Uuid, Path), ("msg_id" = Uuid, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
/// Delete a message (its sender or the room's owner). The envelope is erased;
/// a tombstone keeps the `seq`.
pub async fn delete(
    State(state): State<AppState>,
    me: AuthUser,
    Path((room, msg)): Path<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    let m = require_member(&state.db, room, me.id()).await?;
    let Some((sender, seq)) = crate::store::messages::sender_and_seq(&state.db, room, msg).await?
    else {
        return Err(ApiError::not_found());
    };
    if seq <= m.joined_seq {
        return Err(ApiError::not_found());
    }
    // In a direct room nobody owns the other's messages.
    let owner_may = m.is_owner(me.id()) && !m.is_direct();
    if sender != me.id() && !owner_may {
        return Err(ApiError::forbidden(
            "only the sender or the room's owner may delete a message",
        ));
    }
    let erased = crate::store::messages::erase(state.db.writer(), msg, now_ms()).await?;
    if let Some(freed) = erased {
        state.quotas.freed(&[freed]).await;
        state
            .events
            .publish_to_room(
                &state.db,
                room,
                ServerFrame::MessageDeleted {
                    room_id: room,
                    id: msg,
                    seq: u64_of("seq", seq)?,
                },
            )
            .await;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Moves `me`'s receipt in `room` forward (never back) and announces a move.
pub async fn record_receipt(
    state: &AppState,
    me: Uuid,
    room: Uuid,
    kind: ReceiptKind,
    seq: u64,
) -> ApiResult<Receipt> {
    state
        .limits
        .check_write(crate::ratelimit::Write::Receipt, me)?;
    let m = require_member(&state.db, room, me).await?;
    let seq = i64::try_from(seq)
        .ok()
        .filter(|s| *s <= m.last_seq)
        .ok_or_else(|| {
            ApiError::bad_request(
                codes::VALIDATION_FAILED,
                "`seq` is beyond the room's latest message",
            )
        })?;
    let moved =
        crate::store::messages::move_receipt(state.db.writer(), room, me, kind, seq, now_ms())
            .await?;
    let (cur, at) = crate::store::messages::receipt(&state.db, room, me, kind)
        .await?
        .ok_or_else(not_a_member)?;
    let cur = u64_of("seq", cur)?;
    if moved {
        state
            .events
            .publish_to_room(
                &state.db,
                room,
                ServerFrame::Receipt {
                    room_id: room,
                    user_id: me,
                    kind,
                    seq: cur,
                },
            )
            .await;
    }
    Ok(Receipt {
        room_id: room,
        user_id: me,
        kind,
        seq: cur,
        updated_at: rfc3339(at),
    })
}

#[utoipa::path(post, path = "/api/v1/rooms/{id}/receipts", tag = "messages", params(("id" = Uuid, Path)),
    request_body = ReceiptRequest,
    responses((status = 200, body = Receipt, description = "your receipt in the room after the update"),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
/// Mark messages up to `seq` as delivered or read. Receipts only move forward
/// (a lower `seq` changes nothing); `read` implies `delivered`.
pub async fn receipt(
    State(state): State<AppState>,
    me: AuthUser,
    Path(room): Path<Uuid>,
    ApiJson(req): ApiJson<ReceiptRequest>,
) -> ApiResult<Json<Receipt>> {
    Ok(Json(
        record_receipt(&state, me.id(), room, req.kind, req.seq).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/unread", tag = "messages",
    responses((status = 200, body = UnreadResponse), (status = 401, body = Problem)),
    security(("bearer" = [])))]
/// Unread counts of all your rooms: messages from others after your `read`
/// receipt, not counting deleted ones.
pub async fn unread(
    State(state): State<AppState>,
    me: AuthUser,
) -> ApiResult<Json<UnreadResponse>> {
    let out = crate::store::messages::unread_counts(&state.db, me.id()).await?;
    Ok(Json(UnreadResponse(out)))
}

/// The routes of this feature, with their OpenAPI description (merged in
/// [`crate::app::api`]). Messages, receipts and unread counts.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(post, list))
        .routes(routes!(delete))
        .routes(routes!(receipt))
        .routes(routes!(unread))
}
