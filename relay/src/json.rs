//! `ApiJson<T>`: the JSON body extractor whose every rejection is a problem+json
//! answer (400 malformed or unknown field, 413 too large, 415 wrong media type).

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use sotto_core::api::problem::codes;

use crate::error::ApiError;

pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(rej) => Err(match &rej {
                JsonRejection::JsonDataError(e) => {
                    let text = e.body_text();
                    let code = if text.contains("unknown field") {
                        codes::UNKNOWN_FIELD
                    } else {
                        codes::VALIDATION_FAILED
                    };
                    ApiError::bad_request(code, clean(&text))
                }
                JsonRejection::JsonSyntaxError(e) => {
                    ApiError::bad_request(codes::INVALID_JSON, clean(&e.body_text()))
                }
                JsonRejection::MissingJsonContentType(_) => ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    codes::UNSUPPORTED_MEDIA_TYPE,
                    "expected `Content-Type: application/json`",
                ),
                _ if rej.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    ApiError::too_large("the request body is too large")
                }
                _ => {
                    ApiError::bad_request(codes::INVALID_JSON, "the request body could not be read")
                }
            }),
        }
    }
}

/// Serde's message without axum's prefix, bounded in length (it can quote input).
fn clean(text: &str) -> String {
    let t = text.split_once(": ").map_or(text, |(_, rest)| rest);
    t.chars().take(300).collect()
}
