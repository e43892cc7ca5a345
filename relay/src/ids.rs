//! Identifiers and times as the database stores them: [`Id`] (each backend's
//! UUID type; a stored value that is not a UUID fails to decode, a corrupt row
//! answered 500 with a logged id, never a nil UUID) and [`Millis`]. Defined
//! with the store, whose statements bind and read them.

pub use crate::store::{Id, Millis};
