//! `ApiJson<T>`: the JSON body extractor whose every rejection is a problem+json
//! answer (400 malformed or unknown field, 413 too large, 415 wrong media type).

use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use sotto_core::api::problem::codes;

use crate::error::ApiError;

pub struct ApiJson<T>(pub T);

/// Whether the request says its body is JSON (`application/json` or
/// `application/<anything>+json`, parameters allowed), as axum's `Json` checks.
fn is_json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(ct) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence
        .strip_prefix("application/")
        .is_some_and(|sub| sub == "json" || sub.ends_with("+json"))
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json_content_type(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                codes::UNSUPPORTED_MEDIA_TYPE,
                "expected `Content-Type: application/json`",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rej| {
            if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::too_large("the request body is too large")
            } else {
                ApiError::bad_request(codes::INVALID_JSON, "the request body could not be read")
            }
        })?;
        // Every body of this API is a JSON object. Serde would also accept a struct
        // in its sequence form (`["name", "password"]`), which no client means.
        match bytes
            .iter()
            .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            Some(b'{') => {}
            None => {
                return Err(ApiError::bad_request(
                    codes::INVALID_JSON,
                    "the request body is empty; expected a JSON object",
                ));
            }
            Some(_) => {
                return Err(ApiError::bad_request(
                    codes::VALIDATION_FAILED,
                    "the request body must be a JSON object",
                ));
            }
        }
        match axum::Json::<T>::from_bytes(&bytes) {
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
