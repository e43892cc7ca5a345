//! Blocks (`docs/relay.md` "Consent: invitations and blocks"): a user blocks
//! another; between the two there are then no invitations, no direct room and
//! no posts into an existing one, and neither sees the other's presence or
//! typing. `GET /api/v1/blocks`, `POST /api/v1/blocks`,
//! `DELETE /api/v1/blocks/{user_id}`.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Timestamp;
use super::users::PublicUser;

/// `POST /api/v1/blocks` → 201 [`BlockedUser`] (200 when already blocked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct BlockRequest {
    /// The user to block.
    pub user_id: Uuid,
}

/// A user the caller blocked: items of `GET /api/v1/blocks` (a [`super::Page`],
/// oldest first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct BlockedUser {
    /// Their public profile.
    pub user: PublicUser,
    /// When they were blocked.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
}
