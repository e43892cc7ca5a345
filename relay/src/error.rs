//! The one HTTP error type: every failure becomes an RFC 9457 problem+json
//! answer with a stable `code`. Internal errors are logged with an id and
//! answered opaquely (no database text reaches a client).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sotto_core::api::problem::{PROBLEM_CONTENT_TYPE, Problem, codes};

/// An error answered to the client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: Option<String>,
    /// When to retry (429, some 503): `Retry-After` in whole seconds, rounded
    /// up; the WebSocket `error` frame's `retry_after_ms`.
    pub retry_after: Option<std::time::Duration>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: Some(detail.into()),
            retry_after: None,
        }
    }
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }
    pub fn unauthorized(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, detail)
    }
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, codes::FORBIDDEN, detail)
    }
    pub fn forbidden_code(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, detail)
    }
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, codes::NOT_FOUND, "no such resource")
    }
    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }
    /// 429 `rate_limited`, to be retried after `wait`.
    pub fn rate_limited(wait: std::time::Duration) -> Self {
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: codes::RATE_LIMITED,
            detail: Some("too many requests; retry later".into()),
            retry_after: Some(wait),
        }
    }
    /// 429 `quota_exceeded`: a byte quota is used up until `wait` has passed.
    pub fn quota_exceeded(wait: std::time::Duration, detail: impl Into<String>) -> Self {
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: codes::QUOTA_EXCEEDED,
            detail: Some(detail.into()),
            retry_after: Some(wait),
        }
    }
    /// 409 `limit_reached`: a cap on a count (rooms, members, invitations,
    /// devices, subscriptions) is reached; waiting does not help, removing does.
    pub fn limit_reached(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, codes::LIMIT_REACHED, detail)
    }
    /// `Retry-After` in whole seconds (at least 1).
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after
            .map(|d| (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1))
    }
    /// `retry_after_ms` of the WebSocket `error` frame (at least 1).
    pub fn retry_after_ms(&self) -> Option<u64> {
        self.retry_after
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1))
    }
    pub fn too_large(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            codes::PAYLOAD_TOO_LARGE,
            detail,
        )
    }
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, codes::UNAVAILABLE, detail)
    }
    /// An internal failure: logged here with a correlation id, answered as an opaque 500.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        let id = uuid::Uuid::new_v4();
        tracing::error!(error_id = %id, error = %err, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL,
            format!("internal error (id {id})"),
        )
    }

    pub fn to_problem(&self) -> Problem {
        let title = self.status.canonical_reason().unwrap_or("Error");
        let p = Problem::new(self.status.as_u16(), self.code, title);
        match &self.detail {
            Some(d) => p.with_detail(d.clone()),
            None => p,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.to_problem()).unwrap_or_default();
        let mut res = (self.status, body).into_response();
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(s) = self.retry_after_secs()
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            h.insert(header::RETRY_AFTER, v);
        }
        res
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                tracing::warn!(error = %e, "database unavailable");
                ApiError::unavailable("the database is unavailable; retry later")
            }
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                ApiError::conflict(codes::CONFLICT, "the resource already exists")
            }
            // A row this request refers to was deleted concurrently.
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => ApiError::conflict(
                codes::CONFLICT,
                "a resource this request refers to no longer exists",
            ),
            // Lock contention beyond the busy timeout (SQLite BUSY/LOCKED and their
            // extended codes), PostgreSQL serialization failures and deadlocks.
            sqlx::Error::Database(db)
                if db.code().is_some_and(|c| {
                    matches!(c.as_ref(), "40001" | "40P01")
                        // SQLite result codes are short numbers; SQLSTATEs have 5 characters.
                        || (c.len() < 5 && c.parse::<i32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6)))
                }) =>
            {
                tracing::warn!(error = %e, "database contention");
                let mut err = ApiError::unavailable("the database is busy; retry shortly");
                err.retry_after = Some(std::time::Duration::from_secs(1));
                err
            }
            // PostgreSQL's `text` cannot hold U+0000 (SQLSTATE 22021): a NUL in a
            // string that reaches a query unvalidated (a lookup by login or push
            // endpoint, say) is the client's bad input, refused whole. Field
            // validators refuse it earlier with their own codes where they exist.
            sqlx::Error::Database(db) if db.code().is_some_and(|c| c == "22021") => {
                ApiError::bad_request(
                    codes::VALIDATION_FAILED,
                    "text in the request must not contain U+0000 (NUL)",
                )
            }
            _ => ApiError::internal(e),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
