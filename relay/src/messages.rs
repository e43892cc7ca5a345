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

use std::collections::BTreeMap;

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
use crate::db::{Backend, now_ms, rfc3339, u64_of};
use crate::error::{ApiError, ApiResult};
use crate::ids::parse_id;
use crate::json::ApiJson;
use crate::membership::{not_a_member, require_member};
use crate::state::AppState;

/// Most envelope bytes in one page of history (a page holds at least one message).
pub const PAGE_BYTES: i64 = 8 * 1024 * 1024;

fn mismatch(detail: &str) -> ApiError {
    ApiError::bad_request(codes::ENVELOPE_MISMATCH, detail)
}

fn invalid(detail: impl Into<String>) -> ApiError {
    ApiError::bad_request(codes::INVALID_ENVELOPE, detail)
}

#[derive(sqlx::FromRow)]
struct StoredRef {
    id: String,
    room_id: String,
    seq: i64,
    envelope_sha256: String,
    created_at: i64,
}

impl StoredRef {
    fn response(&self) -> ApiResult<PostMessageResponse> {
        Ok(PostMessageResponse {
            id: parse_id(&self.id)?,
            seq: u64_of("seq", self.seq)?,
            created_at: rfc3339(self.created_at),
        })
    }
}

/// A retry of an already stored (sender, client_id): the first answer when it
/// carries the same envelope into the same room, 409 otherwise.
fn replay(
    stored: &StoredRef,
    room: Uuid,
    digest: &str,
) -> ApiResult<(StatusCode, Json<PostMessageResponse>)> {
    if stored.room_id != room.to_string() || stored.envelope_sha256 != digest {
        return Err(ApiError::conflict(
            codes::ENVELOPE_MISMATCH,
            "this client_id was already used for another message",
        ));
    }
    Ok((StatusCode::CREATED, Json(stored.response()?)))
}

async fn find_stored(
    state: &AppState,
    sender: Uuid,
    client_id: Uuid,
) -> ApiResult<Option<StoredRef>> {
    Ok(sqlx::query_as::<_, StoredRef>(
        "SELECT id, room_id, seq, envelope_sha256, created_at FROM messages WHERE sender_id = $1 AND client_id = $2",
    )
    .bind(sender.to_string())
    .bind(client_id.to_string())
    .fetch_optional(state.db.read())
    .await?)
}

/// What posting needs to know, read in one query: the caller's membership,
/// the room's membership epoch, and the sender device's active bundle.
struct SendContext {
    epoch: i64,
    device: Option<String>,
}

/// 404 `not_a_member` unless the caller is a member of `room`.
async fn send_context(
    state: &AppState,
    room: Uuid,
    me: Uuid,
    device: Uuid,
) -> ApiResult<SendContext> {
    let (epoch, bundle) = sqlx::query_as::<_, (i64, Option<String>)>(
        "SELECT r.member_epoch, d.bundle FROM room_members m JOIN rooms r ON r.id = m.room_id \
         LEFT JOIN devices d ON d.id = $3 AND d.user_id = $2 AND d.revoked_at IS NULL \
         WHERE m.room_id = $1 AND m.user_id = $2",
    )
    .bind(room.to_string())
    .bind(me.to_string())
    .bind(device.to_string())
    .fetch_optional(state.db.read())
    .await?
    .ok_or_else(not_a_member)?;
    Ok(SendContext {
        epoch,
        device: bundle,
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
    crate::devices::verify_stored(state, device, bundle).map_err(|_| {
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
    let max = state.config.max_message_bytes;
    let limits = Limits {
        max_envelope_bytes: max,
        ..Limits::default()
    };
    let parsed = Envelope::from_bytes_with_limits(&bytes, &limits);
    let device_id = parsed
        .as_ref()
        .map_or(Uuid::nil(), |e| e.header.sender_device_id);
    let mut ctx = send_context(state, room, me, device_id).await?;
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

    let id = Uuid::now_v7();
    let now = now_ms();
    let mut attempts = 0;
    let seq = loop {
        let stored = store(
            state,
            id,
            room,
            me,
            h.sender_device_id,
            client_id,
            &bytes,
            &digest,
            now,
            ctx.epoch,
        )
        .await;
        match stored {
            Ok(Some(seq)) => break seq,
            Ok(None) => {
                // The room's membership changed since we looked (or we were
                // removed): look again, under the new epoch.
                attempts += 1;
                if attempts >= 5 {
                    return Err(ApiError::unavailable(
                        "the room's membership keeps changing; retry",
                    ));
                }
                ctx = send_context(state, room, me, h.sender_device_id).await?;
                sender_device(state, h.sender_device_id, &ctx)?;
            }
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                // A retry of this client_id (earlier or concurrent) is stored;
                // our counter increment rolled back with the failed insert.
                let stored = find_stored(state, me, client_id)
                    .await?
                    .ok_or_else(not_a_member)?;
                let (_, Json(response)) = replay(&stored, room, &digest)?;
                return Ok(Posted {
                    response,
                    created: false,
                });
            }
            Err(e) => return Err(e.into()),
        }
    };
    metrics::counter!("sotto_messages_stored_total").increment(1);
    let seq_u = u64_of("seq", seq)?;
    let created_at = rfc3339(now);
    state
        .events
        .publish_to_room(
            &state.db,
            room,
            ServerFrame::Message {
                room_id: room,
                id,
                seq: seq_u,
                sender_id: me,
                device_id: h.sender_device_id,
                envelope: B64(bytes),
                created_at: created_at.clone(),
            },
        )
        .await;
    Ok(Posted {
        response: PostMessageResponse {
            id,
            seq: seq_u,
            created_at,
        },
        created: true,
    })
}

/// Takes the room's next `seq` and stores the message with it, atomically:
/// either both happen or neither. `None` when the sender is no longer a member.
///
/// One statement on both backends: on PostgreSQL the `UPDATE` in the `WITH`
/// locks the room's row while it runs; SQLite has a single writer and a trigger.
///
/// The statement stores nothing (`None`) unless the sender is a member and the
/// room's `member_epoch` is still `epoch`. On PostgreSQL the epoch is what makes
/// the membership check safe: a post that waited for the row lock re-evaluates
/// the row's epoch (but not the `EXISTS`, which reads the statement's older
/// snapshot), so a removal that committed meanwhile is noticed.
#[allow(clippy::too_many_arguments)]
async fn store(
    state: &AppState,
    id: Uuid,
    room: Uuid,
    sender: Uuid,
    device: Uuid,
    client_id: Uuid,
    bytes: &[u8],
    digest: &str,
    now: i64,
    epoch: i64,
) -> Result<Option<i64>, sqlx::Error> {
    const NEXT_SEQ: &str = "UPDATE rooms SET last_seq = last_seq + 1 WHERE id = $1 AND member_epoch = $9 \
        AND EXISTS (SELECT 1 FROM room_members WHERE room_id = $1 AND user_id = $2) RETURNING last_seq";
    match state.db.backend {
        Backend::Postgres => {
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "WITH s AS ({NEXT_SEQ}) \
                 INSERT INTO messages (id, room_id, seq, sender_id, device_id, client_id, envelope, envelope_sha256, created_at) \
                 SELECT $3, $1, s.last_seq, $2, $4, $5, $6, $7, $8 FROM s RETURNING seq"
            )))
            .bind(room.to_string())
            .bind(sender.to_string())
            .bind(id.to_string())
            .bind(device.to_string())
            .bind(client_id.to_string())
            .bind(bytes.to_vec())
            .bind(digest)
            .bind(now)
            .bind(epoch)
            .fetch_optional(state.db.write())
            .await
        }
        Backend::Sqlite => {
            // One statement: SQLite runs it under its single write lock, and the
            // `messages_take_seq` trigger moves the room's counter to the new seq.
            sqlx::query_scalar(
                "INSERT INTO messages (id, room_id, seq, sender_id, device_id, client_id, envelope, envelope_sha256, created_at) \
                 SELECT $3, $1, r.last_seq + 1, $2, $4, $5, $6, $7, $8 FROM rooms r WHERE r.id = $1 AND r.member_epoch = $9 \
                 AND EXISTS (SELECT 1 FROM room_members WHERE room_id = $1 AND user_id = $2) RETURNING seq",
            )
            .bind(room.to_string())
            .bind(sender.to_string())
            .bind(id.to_string())
            .bind(device.to_string())
            .bind(client_id.to_string())
            .bind(bytes.to_vec())
            .bind(digest)
            .bind(now)
            .bind(epoch)
            .fetch_optional(state.db.write())
            .await
        }
    }
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

#[derive(sqlx::FromRow)]
struct MessageRow {
    id: String,
    room_id: String,
    seq: i64,
    sender_id: String,
    device_id: String,
    client_id: String,
    envelope: Option<Vec<u8>>,
    created_at: i64,
    deleted_at: Option<i64>,
}

impl MessageRow {
    fn into_api(self) -> ApiResult<Message> {
        Ok(Message {
            id: parse_id(&self.id)?,
            room_id: parse_id(&self.room_id)?,
            seq: u64_of("seq", self.seq)?,
            sender_id: parse_id(&self.sender_id)?,
            device_id: parse_id(&self.device_id)?,
            client_id: parse_id(&self.client_id)?,
            envelope: self.envelope.map(B64),
            deleted: self.deleted_at.is_some(),
            created_at: rfc3339(self.created_at),
            updated_at: rfc3339(self.deleted_at.unwrap_or(self.created_at)),
        })
    }
}

/// One page of `room`'s messages after `after_seq` for a member who joined at
/// `joined_seq` (earlier history is not theirs to read).
pub async fn page_after(
    state: &AppState,
    room: Uuid,
    joined_seq: i64,
    after_seq: u64,
    limit: u32,
) -> ApiResult<Page<Message>> {
    let after = i64::try_from(after_seq)
        .map_err(|_| ApiError::bad_request(codes::VALIDATION_FAILED, "`after_seq` is too large"))?
        .max(joined_seq);
    // First the sizes (no envelopes): the page ends at `limit` messages or at
    // PAGE_BYTES of envelopes, whichever comes first (always at least one), so
    // a page of large envelopes cannot take unbounded memory.
    let sizes: Vec<(i64, Option<i64>)> = sqlx::query_as(
        "SELECT seq, CAST(LENGTH(envelope) AS BIGINT) FROM messages \
         WHERE room_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
    )
    .bind(room.to_string())
    .bind(after)
    .bind(i64::from(limit) + 1)
    .fetch_all(state.db.read())
    .await?;
    let mut taken = 0usize;
    let mut bytes = 0i64;
    for (_, size) in sizes.iter().take(limit as usize) {
        // A tombstone has no envelope (NULL size): it costs nothing.
        let size = size.unwrap_or(0);
        if taken > 0 && bytes.saturating_add(size) > PAGE_BYTES {
            break;
        }
        bytes = bytes.saturating_add(size);
        taken += 1;
    }
    let more = sizes.len() > taken;
    let Some(&(last, _)) = sizes.get(taken.wrapping_sub(1)) else {
        return Ok(Page::last(Vec::new()));
    };
    let rows = sqlx::query_as::<_, MessageRow>(
        "SELECT id, room_id, seq, sender_id, device_id, client_id, envelope, created_at, deleted_at \
         FROM messages WHERE room_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq",
    )
    .bind(room.to_string())
    .bind(after)
    .bind(last)
    .fetch_all(state.db.read())
    .await?;
    let items = rows
        .into_iter()
        .map(MessageRow::into_api)
        .collect::<ApiResult<Vec<_>>>()?;
    let next = if more {
        items.last().map(|m| m.seq.to_string())
    } else {
        None
    };
    Ok(Page::new(items, next))
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
        &state,
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
    let row: Option<(String, i64)> =
        sqlx::query_as("SELECT sender_id, seq FROM messages WHERE id = $1 AND room_id = $2")
            .bind(msg.to_string())
            .bind(room.to_string())
            .fetch_optional(state.db.read())
            .await?;
    let Some((sender, seq)) = row else {
        return Err(ApiError::not_found());
    };
    if seq <= m.joined_seq {
        return Err(ApiError::not_found());
    }
    // In a direct room nobody owns the other's messages.
    let owner_may = m.is_owner(me.id()) && !m.is_direct();
    if sender != me.id().to_string() && !owner_may {
        return Err(ApiError::forbidden(
            "only the sender or the room's owner may delete a message",
        ));
    }
    let erased = sqlx::query(
        "UPDATE messages SET envelope = NULL, deleted_at = $1 WHERE id = $2 AND deleted_at IS NULL",
    )
    .bind(now_ms())
    .bind(msg.to_string())
    .execute(state.db.write())
    .await?
    .rows_affected();
    if erased > 0 {
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
    let (rid, uid) = (room.to_string(), me.to_string());
    let sql = match kind {
        // Reading implies delivery.
        ReceiptKind::Read => {
            "UPDATE room_members SET \
               read_at = CASE WHEN read_seq < $1 THEN $2 ELSE read_at END, \
               read_seq = CASE WHEN read_seq < $1 THEN $1 ELSE read_seq END, \
               delivered_at = CASE WHEN delivered_seq < $1 THEN $2 ELSE delivered_at END, \
               delivered_seq = CASE WHEN delivered_seq < $1 THEN $1 ELSE delivered_seq END \
             WHERE room_id = $3 AND user_id = $4 AND (read_seq < $1 OR delivered_seq < $1)"
        }
        ReceiptKind::Delivered => {
            "UPDATE room_members SET delivered_seq = $1, delivered_at = $2 \
             WHERE room_id = $3 AND user_id = $4 AND delivered_seq < $1"
        }
    };
    let moved = sqlx::query(sql)
        .bind(seq)
        .bind(now_ms())
        .bind(&rid)
        .bind(&uid)
        .execute(state.db.write())
        .await?
        .rows_affected()
        > 0;
    let (cur, at): (i64, i64) = sqlx::query_as(match kind {
        ReceiptKind::Read => "SELECT read_seq, read_at FROM room_members WHERE room_id = $1 AND user_id = $2",
        ReceiptKind::Delivered => {
            "SELECT delivered_seq, delivered_at FROM room_members WHERE room_id = $1 AND user_id = $2"
        }
    })
    .bind(&rid)
    .bind(&uid)
    .fetch_optional(state.db.read())
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
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT m.room_id, (SELECT COUNT(*) FROM messages x WHERE x.room_id = m.room_id AND x.seq > m.read_seq \
           AND x.sender_id <> m.user_id AND x.deleted_at IS NULL) FROM room_members m WHERE m.user_id = $1",
    )
    .bind(me.id().to_string())
    .fetch_all(state.db.read())
    .await?;
    let mut out = BTreeMap::new();
    for (room, n) in rows {
        out.insert(parse_id(&room)?, u64_of("unread", n)?);
    }
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
