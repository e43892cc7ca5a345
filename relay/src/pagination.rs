//! Cursor pagination shared by every list route: opaque cursors, and a page
//! built from `limit + 1` rows (the extra row only says there is more).

use sotto_core::api::pagination::Page;
use sotto_core::api::problem::codes;

use uuid::Uuid;

use crate::error::{ApiError, ApiResult};

/// A UUID cursor (`?cursor=`, the id of the previous page's last item); the nil
/// UUID when absent (every id is greater: ids are v4 or v7).
pub fn parse_cursor(cursor: &Option<String>) -> ApiResult<Uuid> {
    match cursor {
        None => Ok(Uuid::nil()),
        Some(c) => Uuid::parse_str(c)
            .map_err(|_| ApiError::bad_request(codes::INVALID_CURSOR, "the cursor is not valid")),
    }
}

/// [`page_of`] with a fallible conversion of each row.
pub fn try_page_of<T, R>(
    mut rows: Vec<R>,
    limit: u32,
    cursor_of: impl Fn(&R) -> String,
    map: impl Fn(&R) -> ApiResult<T>,
) -> ApiResult<Page<T>> {
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next = if more {
        rows.last().map(&cursor_of)
    } else {
        None
    };
    Ok(Page::new(
        rows.iter().map(map).collect::<ApiResult<Vec<_>>>()?,
        next,
    ))
}

/// A page from `limit + 1` rows: the extra row only says there is more.
pub fn page_of<T, R>(
    mut rows: Vec<R>,
    limit: u32,
    cursor_of: impl Fn(&R) -> String,
    map: impl Fn(&R) -> T,
) -> Page<T> {
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next = if more {
        rows.last().map(&cursor_of)
    } else {
        None
    };
    Page::new(rows.iter().map(map).collect(), next)
}
