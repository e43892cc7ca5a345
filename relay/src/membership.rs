//! Room membership as the other features need it: whether a user is a member
//! (404 `not_a_member` otherwise, the same answer as for an unknown room) and
//! the audiences of events (a room's members, a user's peers). The reads are in
//! [`crate::store::membership`].

pub use crate::store::membership::{
    Membership, member_ids, not_a_member, peers_of, presence_peers_of, require_member,
    rooms_and_peers,
};
