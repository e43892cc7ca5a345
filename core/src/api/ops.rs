//! Operations (api.md "Operations"): `GET /health` and `GET /`.
//! (`/metrics` is Prometheus text, `/openapi.json` and `/docs` are documents.)

use serde::{Deserialize, Serialize};

/// Health of the relay or one of its dependencies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// Working.
    Ok,
    /// Not working (e.g. the database is unreachable).
    Unavailable,
}

/// Answer of `GET /health`: 200 when everything is `ok`, 503 otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Health {
    /// Overall status.
    pub status: CheckStatus,
    /// Database status.
    pub database: CheckStatus,
}

/// Answer of `GET /`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RootInfo {
    /// Service name (`"sotto-relay"`).
    pub name: String,
    /// Relay version (the crate version).
    pub version: String,
}
