//! Devices and public keys (api.md "Devices and public keys"): uploading a
//! device bundle, listing and revoking devices, fetching other users' bundles and
//! the bulk key query used for fan-out.
//!
//! The relay stores public material only. A change of a user's devices is
//! announced over WebSocket ([`super::ServerFrame::KeysChanged`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Timestamp;
use crate::keys::DeviceBundle;

/// Most user ids accepted by one `POST /api/v1/keys/query` (more is 400
/// `validation_failed`).
pub const MAX_KEYS_QUERY_USERS: usize = 200;

/// `PUT /api/v1/devices/{device_id}`: upload or replace the caller's device bundle
/// → 200 [`Device`] (201 when the device is new).
///
/// The relay checks that `bundle.device_id` equals the path's `device_id` and
/// `bundle.user_id` the caller, verifies the bundle's signatures and rejects
/// malformed keys (400 `invalid_bundle`). A bundle whose identity key differs from
/// the one already on record for the user is refused (409 `identity_key_changed`)
/// unless `replace_identity` is `true`, which needs the account's
/// `current_password` (400 `current_password_required`, 403
/// `invalid_credentials` when wrong). `Debug` redacts the password.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct PutDeviceRequest {
    /// The signed public bundle of the device.
    pub bundle: DeviceBundle,
    /// Optional human-readable device name (e.g. "Laptop"), at most 64 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    #[cfg_attr(feature = "openapi", schema(max_length = 64))]
    pub display_name: Option<String>,
    /// Explicitly replace the user's identity key with the bundle's (e.g. after
    /// losing all devices). Everyone sharing a room with the user is told via
    /// `keys_changed`, and their clients should show the safety-number change.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(as = "Option<bool>", optional))]
    pub replace_identity: bool,
    /// The account's password: required with `replace_identity`, so a stolen
    /// access token alone cannot swap the user's identity key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    #[cfg_attr(feature = "openapi", schema(max_length = 1024))]
    pub current_password: Option<String>,
}

impl core::fmt::Debug for PutDeviceRequest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PutDeviceRequest")
            .field("bundle", &self.bundle)
            .field("display_name", &self.display_name)
            .field("replace_identity", &self.replace_identity)
            .field(
                "current_password",
                &super::redact_opt(&self.current_password),
            )
            .finish()
    }
}

/// `DELETE /api/v1/devices/{device_id}` → 204: revoke one of the caller's
/// devices, which needs the account's password (so a stolen access token alone
/// cannot cut the owner's devices off). `Debug` redacts it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct RevokeDeviceRequest {
    /// The account's password.
    #[cfg_attr(feature = "openapi", schema(max_length = 1024))]
    pub current_password: String,
}

impl core::fmt::Debug for RevokeDeviceRequest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RevokeDeviceRequest")
            .field("current_password", &super::Redacted)
            .finish()
    }
}

/// A registered device and its public bundle.
///
/// Answer of `PUT /api/v1/devices/{device_id}`; items of `GET /api/v1/devices` and
/// `GET /api/v1/users/{id}/devices` (each a [`super::Page`] of `Device`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "RelayDevice"))]
pub struct Device {
    /// Device id (chosen by the client, equal to `bundle.device_id`).
    pub device_id: Uuid,
    /// Owner of the device.
    pub user_id: Uuid,
    /// Optional human-readable device name.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub display_name: Option<String>,
    /// The device's signed public bundle.
    pub bundle: DeviceBundle,
    /// First upload.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    /// Last replacement of the bundle or name.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: Timestamp,
    /// When the device was revoked; absent for an active device. Revoked devices
    /// are listed only on request (`include_revoked`), so that clients can still
    /// verify messages they sent before; nobody should encrypt to them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub revoked_at: Option<Timestamp>,
}

/// Query of `GET /api/v1/users/{id}/devices` and `GET /api/v1/devices`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct DeviceListQuery {
    /// Also list revoked devices (default `false`: active devices only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub include_revoked: Option<bool>,
}

/// `POST /api/v1/keys/query` → 200 [`KeysQueryResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct KeysQueryRequest {
    /// Users whose device bundles are wanted (at most [`MAX_KEYS_QUERY_USERS`]).
    pub user_ids: Vec<Uuid>,
    /// Also return revoked devices (to verify old messages), flagged with
    /// `revoked_at`. Default `false`: the devices to encrypt to.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    #[cfg_attr(feature = "ts", ts(as = "Option<bool>", optional))]
    pub include_revoked: bool,
}

/// Answer of `POST /api/v1/keys/query`: the bundles of every device of the asked
/// users, in one call, for fan-out.
///
/// Users the caller may not see (no shared room or contact, not an admin) and
/// unknown users are answered exactly like users without devices, with an empty
/// list, so the answer does not reveal who exists.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct KeysQueryResponse {
    /// Devices per user id; every asked user id is a key.
    pub devices: BTreeMap<Uuid, Vec<Device>>,
}
