//! Cursor pagination (api.md "Conventions": `?limit=` default 50, max 200, and
//! `?cursor=`; the response is `{"items": [...], "next_cursor": "..." | null}`).

use serde::{Deserialize, Serialize};

/// Page size used when the request gives no `limit`.
pub const DEFAULT_LIMIT: u32 = 50;

/// Largest page size the relay serves; a `limit` outside `1..=MAX_LIMIT` is
/// refused (400 `validation_failed`).
pub const MAX_LIMIT: u32 = 200;

/// Smallest page size.
pub const MIN_LIMIT: u32 = 1;

/// Deserialises a `?limit=`: an integer in `1..=MAX_LIMIT`, anything else an
/// error (use with `#[serde(default, deserialize_with = ...)]`).
///
/// # Errors
/// When the value is not an integer in range.
pub fn deserialize_limit<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let v = Option::<u32>::deserialize(d)?;
    match v {
        Some(n) if !(MIN_LIMIT..=MAX_LIMIT).contains(&n) => Err(serde::de::Error::custom(
            format_args!("limit must be between {MIN_LIMIT} and {MAX_LIMIT}"),
        )),
        v => Ok(v),
    }
}

/// The page size to use for a (validated) `limit`: [`DEFAULT_LIMIT`] when absent,
/// kept within `1..=MAX_LIMIT` in any case.
#[must_use]
pub fn effective_limit(limit: Option<u32>) -> u32 {
    limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
}

/// One page of a list response.
///
/// `next_cursor` is always serialised, as `null` on the last page, so clients can
/// rely on the key being present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Page<T> {
    /// The items of this page, in the list's order.
    pub items: Vec<T>,
    /// Opaque cursor to pass as `?cursor=` for the next page; `null` when this is
    /// the last page. Clients must not interpret it.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A page with the given items and cursor.
    #[must_use]
    pub fn new(items: Vec<T>, next_cursor: Option<String>) -> Self {
        Self { items, next_cursor }
    }

    /// The last (or only) page: `next_cursor` is `null`.
    #[must_use]
    pub fn last(items: Vec<T>) -> Self {
        Self {
            items,
            next_cursor: None,
        }
    }
}

impl<T> Default for Page<T> {
    fn default() -> Self {
        Self::last(Vec::new())
    }
}

/// The `?limit=&cursor=` query string of a paginated list route.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct PageQuery {
    /// Requested page size; see [`PageQuery::effective_limit`].
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
    /// Cursor from a previous page's `next_cursor`; absent for the first page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    #[cfg_attr(feature = "openapi", param(min_length = 1), schema(min_length = 1))]
    pub cursor: Option<String>,
}

impl PageQuery {
    /// Default page size ([`DEFAULT_LIMIT`]).
    pub const DEFAULT_LIMIT: u32 = DEFAULT_LIMIT;
    /// Maximum page size ([`MAX_LIMIT`]).
    pub const MAX_LIMIT: u32 = MAX_LIMIT;

    /// The page size to use: `limit` clamped to `1..=200`, 50 when absent.
    #[must_use]
    pub fn effective_limit(&self) -> u32 {
        effective_limit(self.limit)
    }
}
