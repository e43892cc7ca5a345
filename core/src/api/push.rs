//! Push (api.md "Push"): the VAPID public key, browser push subscriptions tied to
//! a device, and the payload of a Web Push (RFC 8030/8291/8292).
//!
//! A push carries neither plaintext nor ciphertext of a message: only that a room
//! has news up to a `seq` ([`PushPayload`]).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Answer of `GET /api/v1/push/vapid-public-key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct VapidPublicKey {
    /// The relay's VAPID P-256 public key, uncompressed point, base64url without
    /// padding: the `applicationServerKey` for `PushManager.subscribe`.
    pub public_key: String,
}

/// `POST /api/v1/push/subscriptions` → 201: subscribe a device of the caller.
/// Re-posting an endpoint replaces its previous subscription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct PushSubscriptionRequest {
    /// The caller's device this subscription belongs to.
    pub device_id: Uuid,
    /// The browser's `PushSubscription.toJSON()`.
    pub subscription: PushSubscription,
}

/// A browser `PushSubscription` in its `toJSON()` form (camelCase keys, as the
/// browser writes them).
///
/// Not `deny_unknown_fields`: this object is defined by the Push API, and a
/// browser adding a member must not break subscribing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "WebPushSubscription"))]
#[serde(rename_all = "camelCase")]
pub struct PushSubscription {
    /// The push service URL the relay posts to.
    pub endpoint: String,
    /// Expiry as milliseconds since the Unix epoch (`expirationTime`), or `null`.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub expiration_time: Option<f64>,
    /// The subscription's keys.
    pub keys: PushSubscriptionKeys,
}

/// The `keys` of a browser `PushSubscription` (base64url strings, RFC 8291).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PushSubscriptionKeys {
    /// The user agent's P-256 ECDH public key.
    pub p256dh: String,
    /// The 16-byte authentication secret.
    pub auth: String,
}

/// `DELETE /api/v1/push/subscriptions` → 204.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct DeletePushSubscriptionRequest {
    /// Endpoint of the subscription to remove.
    pub endpoint: String,
}

/// The JSON payload of a Web Push sent by the relay (encrypted per RFC 8291),
/// tagged by `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PushPayload {
    /// Room `room_id` has messages up to `seq`; the client fetches them.
    News {
        /// The room.
        room_id: Uuid,
        /// Latest `seq` in the room.
        seq: u64,
    },
    /// Sent by `POST /api/v1/push/test`.
    Test,
}

/// Answer of `POST /api/v1/push/test`: whether the test push reached at least
/// one push service. Nothing more is said (which destination failed, and how,
/// would tell a caller about the relay's network).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PushTestResponse {
    /// At least one of the caller's subscriptions' push services accepted it.
    pub accepted: bool,
}
