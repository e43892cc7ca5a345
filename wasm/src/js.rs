//! Small helpers to read JavaScript arguments and build JavaScript results.
//!
//! Argument rules (`wasm/API.md`): a value of the wrong JavaScript type or shape
//! is `invalid_argument`; a string or JSON document of the right type that does
//! not parse (a bad UUID, bad base64url, an unknown field) is `malformed`.

use js_sys::{JSON, Object, Reflect, Uint8Array};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;
use wasm_bindgen::{JsCast, JsValue};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Largest integer a JavaScript number holds exactly (`Number.MAX_SAFE_INTEGER`).
pub(crate) const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// Builds a plain JavaScript object.
pub(crate) struct Obj(Object);

impl Obj {
    pub(crate) fn new() -> Self {
        Self(Object::new())
    }

    /// Sets `key`; setting a data property on a fresh plain object cannot fail.
    pub(crate) fn set(self, key: &str, value: impl Into<JsValue>) -> Self {
        let _ = Reflect::set(&self.0, &JsValue::from_str(key), &value.into());
        self
    }

    /// The object as one of the typed extern types of [`crate::types`].
    pub(crate) fn into_typed<T: JsCast>(self) -> T {
        self.0.unchecked_into()
    }
}

/// A copy of `bytes` as a JavaScript `Uint8Array`.
pub(crate) fn bytes(bytes: &[u8]) -> Uint8Array {
    Uint8Array::from(bytes)
}

/// `value` must be a (non-null) object.
pub(crate) fn object<'a>(value: &'a JsValue, what: &str) -> Result<&'a JsValue> {
    if value.is_object() {
        Ok(value)
    } else {
        Err(Error::invalid_argument(format!("{what} must be an object")))
    }
}

/// `obj[key]`.
pub(crate) fn get(obj: &JsValue, key: &str) -> Result<JsValue> {
    Reflect::get(obj, &JsValue::from_str(key))
        .map_err(|_| Error::invalid_argument(format!("cannot read property `{key}`")))
}

/// `obj[key]`, which must be a string.
pub(crate) fn get_string(obj: &JsValue, key: &str) -> Result<String> {
    get(obj, key)?
        .as_string()
        .ok_or_else(|| Error::invalid_argument(format!("`{key}` must be a string")))
}

/// `obj[key]`, which must be a UUID string.
pub(crate) fn get_uuid(obj: &JsValue, key: &str) -> Result<Uuid> {
    parse_uuid(&get_string(obj, key)?, key)
}

/// `obj[key]` as a number; `undefined` and `null` are `None`.
pub(crate) fn get_opt_number(obj: &JsValue, key: &str) -> Result<Option<f64>> {
    let v = get(obj, key)?;
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    v.as_f64()
        .map(Some)
        .ok_or_else(|| Error::invalid_argument(format!("`{key}` must be a number")))
}

/// Parses a UUID (any form the `uuid` crate reads; output is always lowercase hyphenated).
pub(crate) fn parse_uuid(text: &str, what: &str) -> Result<Uuid> {
    Uuid::try_parse(text).map_err(|_| Error::malformed(format!("`{what}` is not a UUID")))
}

/// The canonical text of a UUID: lowercase, hyphenated.
pub(crate) fn parse_uuids(texts: &[String], what: &str) -> Result<Vec<Uuid>> {
    texts.iter().map(|t| parse_uuid(t, what)).collect()
}

pub(crate) fn uuid_text(id: Uuid) -> String {
    id.hyphenated().to_string()
}

/// A JavaScript number that must be a non-negative safe integer.
pub(crate) fn safe_u64(x: f64, what: &str) -> Result<u64> {
    if x.is_finite() && x >= 0.0 && x.fract() == 0.0 && x <= MAX_SAFE_INTEGER {
        Ok(x as u64)
    } else {
        Err(Error::invalid_argument(format!(
            "{what} must be a non-negative integer up to 2^53 - 1"
        )))
    }
}

/// A JavaScript number that must be an integer in `u32` range.
pub(crate) fn safe_u32(x: f64, what: &str) -> Result<u32> {
    u32::try_from(safe_u64(x, what)?)
        .map_err(|_| Error::invalid_argument(format!("{what} must be below 2^32")))
}

/// A `u64` as a JavaScript number (exact below 2^53; the protocol's sizes,
/// sequence numbers and millisecond timestamps stay far below).
pub(crate) fn number(x: u64) -> f64 {
    x as f64
}

/// Serializes `value` to its wire JSON and parses that into a JavaScript value.
/// The intermediate text is zeroized (an attachment pointer holds a key).
pub(crate) fn to_js<T: Serialize>(value: &T) -> Result<JsValue> {
    let text = Zeroizing::new(
        serde_json::to_string(value)
            .map_err(|e| Error::new(crate::Code::Internal, format!("cannot serialize: {e}")))?,
    );
    JSON::parse(&text)
        .map_err(|_| Error::new(crate::Code::Internal, "cannot parse serialized JSON"))
}

/// Reads a JavaScript object as its wire JSON (`JSON.stringify`) and parses it
/// strictly with the core's serde types.
pub(crate) fn from_js<T: DeserializeOwned>(value: &JsValue, what: &str) -> Result<T> {
    object(value, what)?;
    let text = Zeroizing::new(
        JSON::stringify(value)
            .ok()
            .and_then(|s| s.as_string())
            .ok_or_else(|| Error::invalid_argument(format!("{what} is not JSON-serializable")))?,
    );
    from_json_text(&text, what)
}

/// Parses wire JSON text strictly.
pub(crate) fn from_json_text<T: DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| Error::malformed(format!("invalid {what}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Code;

    #[test]
    fn safe_integers() {
        assert_eq!(safe_u64(0.0, "x"), Ok(0));
        assert_eq!(safe_u64(MAX_SAFE_INTEGER, "x"), Ok(9_007_199_254_740_991));
        for bad in [-1.0, 0.5, f64::NAN, f64::INFINITY, MAX_SAFE_INTEGER + 2.0] {
            assert_eq!(
                safe_u64(bad, "x").map_err(|e| e.code()),
                Err(Code::InvalidArgument)
            );
        }
        assert_eq!(safe_u32(4_294_967_295.0, "x"), Ok(u32::MAX));
        assert!(safe_u32(4_294_967_296.0, "x").is_err());
    }

    #[test]
    fn uuids() {
        let id = parse_uuid("0000000A-0000-0000-0000-000000000001", "id").map(uuid_text);
        assert_eq!(id.as_deref(), Ok("0000000a-0000-0000-0000-000000000001"));
        assert_eq!(
            parse_uuid("nope", "id").map_err(|e| e.code()),
            Err(Code::Malformed)
        );
    }

    #[test]
    fn json_text_errors_are_malformed() {
        let r: Result<sotto_core::api::ClientFrame> = from_json_text(r#"{"type":"nope"}"#, "frame");
        assert_eq!(r.map_err(|e| e.code()), Err(Code::Malformed));
    }
}
