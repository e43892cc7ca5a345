//! Identifiers as the database stores them (text UUIDs today): decoding a
//! stored id is checked, and a value that is not one is a corrupt row (500 with
//! a logged id), never a nil UUID.

use uuid::Uuid;

use crate::db::corrupt;
use crate::error::{ApiError, ApiResult};

pub fn parse_id(s: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(s).map_err(|e| ApiError::internal(format!("stored id {s:?}: {e}")))
}

/// A UUID stored as text, read through a tuple or scalar query.
pub fn parse_stored_id(column: &str, s: &str) -> Result<uuid::Uuid, crate::error::ApiError> {
    uuid::Uuid::parse_str(s).map_err(|_| crate::error::ApiError::internal(corrupt(column, &s)))
}

/// A UUID stored as text.
pub fn uuid_column(row: &sqlx::any::AnyRow, column: &str) -> Result<uuid::Uuid, sqlx::Error> {
    use sqlx::Row;
    let s: String = row.try_get(column)?;
    uuid::Uuid::parse_str(&s).map_err(|_| corrupt(column, &s))
}
