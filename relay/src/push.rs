//! Web Push, the routes of api.md "Push": the VAPID key, subscribing and
//! unsubscribing a device, and a test push. The sender is `pusher.rs`; where
//! pushes may go is `egress.rs`.
//!
//! - A subscription's endpoint must pass the egress policy (public address on
//!   port 443 unless `--push-allow-private`), is stored once across the relay
//!   and belongs to the account that stored it: another account posting the
//!   same endpoint is refused (409) and takes nothing over.
//! - Each device may hold `--push-max-per-device` subscriptions and each user
//!   `--push-max-per-user` (409 `limit_reached` beyond).
//! - `POST /api/v1/push/test` is limited to `--push-test-rate` per user per
//!   minute and answers only whether one push service accepted the push.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use base64ct::{Base64UrlUnpadded, Encoding};
use sotto_core::api::problem::{Problem, codes};
use sotto_core::api::push::{
    DeletePushSubscriptionRequest, PushSubscriptionRequest, PushTestResponse, VapidPublicKey,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::AuthUser;
use crate::db::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::ratelimit::Write;
use crate::state::AppState;
use crate::store::push::{self as store, Upsert};

/// Longest endpoint URL accepted.
const MAX_ENDPOINT: usize = 2048;

fn invalid(detail: impl Into<String>) -> ApiError {
    ApiError::bad_request(codes::INVALID_SUBSCRIPTION, detail)
}

fn decode_key(text: &str, what: &str) -> ApiResult<Vec<u8>> {
    // Browsers write these unpadded; some libraries pad them.
    Base64UrlUnpadded::decode_vec(text.trim_end_matches('='))
        .map_err(|_| invalid(format!("keys.{what} is not base64url")))
}

#[utoipa::path(get, path = "/api/v1/push/vapid-public-key", tag = "push",
    responses((status = 200, body = VapidPublicKey, description = "the relay's VAPID public key")))]
/// The relay's VAPID public key: the `applicationServerKey` to subscribe with.
pub async fn vapid_public_key(State(state): State<AppState>) -> Json<VapidPublicKey> {
    Json(VapidPublicKey {
        public_key: state.push.vapid().public_key().to_owned(),
    })
}

#[utoipa::path(post, path = "/api/v1/push/subscriptions", tag = "push", request_body = PushSubscriptionRequest,
    responses((status = 201, description = "subscribed (your earlier subscription of this endpoint is replaced)"),
        (status = 400, body = Problem, description = "`invalid_subscription`: malformed, or an endpoint the relay does not push to (not https, not port 443, not a public address or name)"),
        (status = 401, body = Problem),
        (status = 409, body = Problem, description = "`limit_reached`: the device or the user has the most subscriptions allowed; `conflict`: the endpoint is another account's")),
    security(("bearer" = [])))]
/// Subscribe one of your devices to Web Push with a browser `PushSubscription`.
/// Pushes say only which room has news up to which `seq`.
pub async fn subscribe(
    State(state): State<AppState>,
    me: AuthUser,
    ApiJson(req): ApiJson<PushSubscriptionRequest>,
) -> ApiResult<StatusCode> {
    let sub = &req.subscription;
    if sub.endpoint.len() > MAX_ENDPOINT {
        return Err(invalid(format!(
            "the endpoint is longer than {MAX_ENDPOINT} bytes"
        )));
    }
    let url =
        reqwest::Url::parse(&sub.endpoint).map_err(|_| invalid("the endpoint is not a URL"))?;
    state.push.check_endpoint(&url).await.map_err(invalid)?;
    let p256dh = decode_key(&sub.keys.p256dh, "p256dh")?;
    if p256dh.len() != 65 || p256::PublicKey::from_sec1_bytes(&p256dh).is_err() {
        return Err(invalid(
            "keys.p256dh is not an uncompressed P-256 public key",
        ));
    }
    let auth = decode_key(&sub.keys.auth, "auth")?;
    if auth.len() != 16 {
        return Err(invalid("keys.auth is not 16 bytes"));
    }
    let c = &state.config;
    let mut tx = state.db.begin_write().await?;
    if store::owner(&mut tx, &sub.endpoint)
        .await?
        .is_some_and(|owner| owner != me.id())
    {
        return Err(taken());
    }
    let (of_user, of_device) =
        store::counts(&mut tx, me.id(), req.device_id, &sub.endpoint).await?;
    if of_device >= i64::from(c.push_max_per_device) {
        return Err(limit(format!(
            "a device has at most {} push subscriptions",
            c.push_max_per_device
        )));
    }
    if of_user >= i64::from(c.push_max_per_user) {
        return Err(limit(format!(
            "a user has at most {} push subscriptions",
            c.push_max_per_user
        )));
    }
    let stored = store::upsert(
        &mut tx,
        me.id(),
        req.device_id,
        &sub.endpoint,
        &Base64UrlUnpadded::encode_string(&p256dh),
        &Base64UrlUnpadded::encode_string(&auth),
        now_ms(),
    )
    .await?;
    match stored {
        Upsert::Stored => {
            tx.commit().await?;
            Ok(StatusCode::CREATED)
        }
        Upsert::NoSuchDevice => Err(invalid("device_id is not one of your active devices")),
        Upsert::Taken => Err(taken()),
    }
}

fn taken() -> ApiError {
    ApiError::conflict(
        codes::CONFLICT,
        "this endpoint is subscribed by another account",
    )
}

fn limit(detail: String) -> ApiError {
    metrics::counter!("sotto_limit_reached_total", "limit" => "push_subscriptions").increment(1);
    ApiError::limit_reached(detail)
}

#[utoipa::path(delete, path = "/api/v1/push/subscriptions", tag = "push", request_body = DeletePushSubscriptionRequest,
    responses((status = 204, description = "unsubscribed (also when there was no such subscription of yours)"),
        (status = 400, body = Problem), (status = 401, body = Problem)),
    security(("bearer" = [])))]
/// Remove one of your push subscriptions by its endpoint.
pub async fn unsubscribe(
    State(state): State<AppState>,
    me: AuthUser,
    ApiJson(req): ApiJson<DeletePushSubscriptionRequest>,
) -> ApiResult<StatusCode> {
    store::delete_own(state.db.writer(), me.id(), &req.endpoint).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/push/test", tag = "push",
    responses((status = 200, body = PushTestResponse, description = "whether a test push reached at least one of your subscriptions' push services"),
        (status = 401, body = Problem),
        (status = 429, body = Problem, description = "`rate_limited`: more than `--push-test-rate` a minute")),
    security(("bearer" = [])))]
/// Send a test push (`{"type":"test"}`) to each of your subscriptions now, and
/// say whether at least one push service accepted it.
pub async fn test(
    State(state): State<AppState>,
    me: AuthUser,
) -> ApiResult<Json<PushTestResponse>> {
    state.limits.check_write(Write::PushTest, me.id())?;
    let subs = store::of_user(&state.db, me.id()).await?;
    let accepted = state.push.test(subs).await;
    Ok(Json(PushTestResponse { accepted }))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(vapid_public_key))
        .routes(routes!(subscribe, unsubscribe))
        .routes(routes!(test))
}
