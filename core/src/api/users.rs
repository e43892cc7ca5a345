//! Users and roles (api.md "Users and roles"): profiles, roles, the admin list,
//! people search, creation, update. `GET /api/v1/auth/me` also answers a [`User`].

use core::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Redacted, Timestamp, nullable, pagination, redact_opt};

/// A user's role. Ordered: `User < Admin < Master`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// An ordinary user.
    #[default]
    User,
    /// Manages users with role `user`.
    Admin,
    /// Manages everyone, including roles.
    Master,
}

impl Role {
    /// The wire name (`"user"`, `"admin"`, `"master"`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Admin => "admin",
            Self::Master => "master",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A full user profile, seen by the user themself, admins and masters.
///
/// Answer of register (201), `GET /api/v1/auth/me`, `GET|POST|PATCH
/// /api/v1/users[/{id}]`; items of `GET /api/v1/users` (a [`super::Page`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct User {
    /// User id.
    pub id: Uuid,
    /// Unique, immutable username.
    pub username: String,
    /// E-mail address.
    pub email: String,
    /// Optional display name.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub display_name: Option<String>,
    /// Role.
    pub role: Role,
    /// Whether the e-mail address has been verified.
    pub email_verified: bool,
    /// Creation time.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    /// Last change of the profile.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: Timestamp,
}

impl User {
    /// The public part of this profile.
    #[must_use]
    pub fn to_public(&self) -> PublicUser {
        PublicUser {
            id: self.id,
            username: self.username.clone(),
            display_name: self.display_name.clone(),
        }
    }
}

/// The public profile of a user, as anyone who may find them sees it
/// (`GET /api/v1/users/search`, contacts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PublicUser {
    /// User id.
    pub id: Uuid,
    /// Username.
    pub username: String,
    /// Optional display name.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub display_name: Option<String>,
}

/// Query of `GET /api/v1/users?q=&limit=&cursor=` (admin, master) → a
/// [`super::Page`] of [`User`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct UserListQuery {
    /// Filter: substring of username, e-mail or display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub q: Option<String>,
    /// Page size (default 50, max 200).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::api::pagination::deserialize_limit"
    )]
    #[cfg_attr(feature = "ts", ts(optional))]
    #[cfg_attr(
        feature = "openapi",
        param(minimum = 1, maximum = 200),
        schema(minimum = 1, maximum = 200)
    )]
    pub limit: Option<u32>,
    /// Cursor from the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    #[cfg_attr(feature = "openapi", param(min_length = 1), schema(min_length = 1))]
    pub cursor: Option<String>,
}

impl UserListQuery {
    /// The page size to use, clamped to `1..=200`.
    #[must_use]
    pub fn effective_limit(&self) -> u32 {
        pagination::effective_limit(self.limit)
    }
}

/// Query of `GET /api/v1/users/search?q=&limit=&cursor=` (user) → a
/// [`super::Page`] of [`PublicUser`]: verified users whose username starts with
/// `q`, in username order; `next_cursor` continues the list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct UserSearchQuery {
    /// Username prefix.
    pub q: String,
    /// Maximum number of results (default 50, max 200).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::api::pagination::deserialize_limit"
    )]
    #[cfg_attr(feature = "ts", ts(optional))]
    #[cfg_attr(
        feature = "openapi",
        param(minimum = 1, maximum = 200),
        schema(minimum = 1, maximum = 200)
    )]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    #[cfg_attr(feature = "openapi", param(min_length = 1), schema(min_length = 1))]
    pub cursor: Option<String>,
}

impl UserSearchQuery {
    /// The result count to use, clamped to `1..=200`.
    #[must_use]
    pub fn effective_limit(&self) -> u32 {
        pagination::effective_limit(self.limit)
    }
}

/// `POST /api/v1/users` (admin, master) → 201 [`User`].
///
/// Only a master may set `role` to anything but `user` (403 otherwise).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    /// Username (same rules as at registration).
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = r"^\s*[A-Za-z0-9][A-Za-z0-9_.-]{2,31}\s*$",
            min_length = 3,
            max_length = 64
        )
    )]
    pub username: String,
    /// E-mail address.
    #[cfg_attr(feature = "openapi", schema(min_length = 3, max_length = 254))]
    pub email: String,
    /// Initial password (same rules as at registration).
    #[cfg_attr(
        feature = "openapi",
        schema(format = Password, min_length = 8, max_length = 1024)
    )]
    pub password: String,
    /// Optional display name, at most 64 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    #[cfg_attr(feature = "openapi", schema(max_length = 64))]
    pub display_name: Option<String>,
    /// Role; `user` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub role: Option<Role>,
}

impl fmt::Debug for CreateUserRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreateUserRequest")
            .field("username", &self.username)
            .field("email", &self.email)
            .field("password", &Redacted)
            .field("display_name", &self.display_name)
            .field("role", &self.role)
            .finish()
    }
}

/// `PATCH /api/v1/users/{id}` (self, admin, master) → 200 [`User`].
///
/// Absent fields are left unchanged. Self may change display name, e-mail and
/// password (a password change by oneself needs `current_password`); only a master
/// changes roles; nobody changes a username (400 `username_immutable`).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct PatchUserRequest {
    /// New display name: absent = unchanged, `null` = remove, a string = set.
    #[serde(
        default,
        deserialize_with = "nullable::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "ts", ts(optional))]
    #[cfg_attr(feature = "openapi", schema(max_length = 64))]
    pub display_name: Option<Option<String>>,
    /// New e-mail address (becomes unverified until verified again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    #[cfg_attr(feature = "openapi", schema(min_length = 3, max_length = 254))]
    pub email: Option<String>,
    /// New password (same rules as at registration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    #[cfg_attr(
        feature = "openapi",
        schema(format = Password, min_length = 8, max_length = 1024)
    )]
    pub password: Option<String>,
    /// The caller's current password; required when changing one's own password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    #[cfg_attr(feature = "openapi", schema(format = Password))]
    pub current_password: Option<String>,
    /// New role (master only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub role: Option<Role>,
    /// Never accepted: present only so that the relay can answer 400
    /// `username_immutable` rather than a generic unknown-field error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub username: Option<String>,
}

impl fmt::Debug for PatchUserRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PatchUserRequest")
            .field("display_name", &self.display_name)
            .field("email", &self.email)
            .field("password", &redact_opt(&self.password))
            .field("current_password", &redact_opt(&self.current_password))
            .field("role", &self.role)
            .field("username", &self.username)
            .finish()
    }
}
