//! The extractors that authenticate a request, so that a handler's signature
//! states who may call it: [`AuthUser`] (any signed-in user), [`AdminUser`]
//! (admin or master), [`AuthUserRow`] (the caller with their row, for `/me`),
//! and [`ClientIp`] (the client's address, through trusted proxies).

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use sotto_core::api::problem::codes;
use sotto_core::api::users::Role;

pub use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::users::UserRow;

/// The caller with their user row, in one query (for `/me`).
pub struct AuthUserRow(pub AuthUser, pub UserRow);

impl FromRequestParts<AppState> for AuthUserRow {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let claims = state.jwt.verify(bearer(parts)?.trim())?;
        match crate::store::sessions::live_session_user(&state.db, claims.sid, claims.sub).await? {
            Some(row) => Ok(Self(
                AuthUser {
                    user_id: claims.sub,
                    role: row.role,
                    session_id: claims.sid,
                },
                row,
            )),
            None => Err(ApiError::unauthorized(
                codes::INVALID_TOKEN,
                "the session has ended",
            )),
        }
    }
}

/// The bearer token of a request (401 when absent or not `Bearer`).
fn bearer(parts: &Parts) -> ApiResult<&str> {
    let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
        ApiError::unauthorized(codes::UNAUTHORIZED, "an access token is required")
    })?;
    header
        .to_str()
        .ok()
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .ok_or_else(|| {
            ApiError::unauthorized(
                codes::INVALID_TOKEN,
                "expected `Authorization: Bearer <token>`",
            )
        })
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)?;
        crate::auth::authenticate(&state.jwt, &state.db, token).await
    }
}

/// An authenticated caller whose role is at least admin (403 otherwise): the
/// role rule of admin-only routes, stated in the handler's signature.
#[derive(Debug, Clone, Copy)]
pub struct AdminUser(pub AuthUser);

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let me = AuthUser::from_request_parts(parts, state).await?;
        me.require(Role::Admin)?;
        Ok(Self(me))
    }
}

/// The client's address: the TCP peer, or through a trusted proxy the client
/// it names (`clientip.rs`, set on every request by the connection layer).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub std::net::IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(c) = parts.extensions.get::<crate::clientip::ClientAddr>() {
            return Ok(Self(c.ip));
        }
        parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| Self(crate::clientip::canonical(c.0.ip())))
            .ok_or_else(|| ApiError::internal("no client address on the request"))
    }
}
