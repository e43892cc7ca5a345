//! Room membership as the other features need it: whether a user is a member
//! (404 `not_a_member` otherwise, the same answer as for an unknown room) and
//! the audiences of events (a room's members, a user's peers). The reads are in
//! [`crate::store::membership`].

use axum::http::StatusCode;
use sotto_core::api::problem::codes;

use crate::error::ApiError;
pub use crate::store::membership::{
    Membership, member_ids, peers_of, require_member, rooms_and_peers,
};

pub fn not_a_member() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        codes::NOT_A_MEMBER,
        "no such room, or you are not a member of it",
    )
}
