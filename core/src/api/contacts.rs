//! Contacts (api.md "Contacts"): `GET /api/v1/contacts`, `POST /api/v1/contacts`,
//! `PATCH /api/v1/contacts/{id}`, `DELETE /api/v1/contacts/{id}`.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Timestamp, users::PublicUser};

/// One of the caller's contacts; items of `GET /api/v1/contacts` (a
/// [`super::Page`]), answer of `POST` (201) and `PATCH` (200).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Contact {
    /// Contact entry id (used in `/api/v1/contacts/{id}`), not the user's id.
    pub id: Uuid,
    /// The contact's public profile.
    pub user: PublicUser,
    /// The caller's private nickname for them.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub nickname: Option<String>,
    /// When the contact was added.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    /// Last nickname change.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: Timestamp,
}

/// `POST /api/v1/contacts` → 201 [`Contact`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct AddContactRequest {
    /// The user to add.
    pub user_id: Uuid,
    /// Optional nickname, at most 64 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    #[cfg_attr(feature = "openapi", schema(max_length = 64))]
    pub nickname: Option<String>,
}

/// `PATCH /api/v1/contacts/{id}` → 200 [`Contact`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct PatchContactRequest {
    /// The new nickname (at most 64 characters); `null` (or absent) removes it.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    #[cfg_attr(feature = "openapi", schema(max_length = 64))]
    pub nickname: Option<String>,
}
