//! Envelopes without keys: parse, inspect, convert between the binary and JSON forms.

use sotto_core::envelope::Envelope;
use sotto_core::suite::Suite;
use wasm_bindgen::prelude::wasm_bindgen;

use crate::error::Result;
use crate::js::{self, Obj};
use crate::types;

/// Parses an envelope fully (every limit enforced) without any cryptography:
/// nothing here is authenticated until `Device.open` succeeds.
#[wasm_bindgen(js_name = peekEnvelope)]
pub fn peek_envelope(envelope: &[u8]) -> Result<types::EnvelopeInfo> {
    let env = Envelope::from_bytes(envelope)?;
    let h = env.header;
    let ids = js_sys::Array::new();
    let suites = js_sys::Array::new();
    for r in &env.recipients {
        ids.push(&js::uuid_text(r.device_id).into());
        suites.push(&r.suite.name().into());
    }
    Ok(Obj::new()
        .set("version", f64::from(sotto_core::envelope::ENVELOPE_VERSION))
        .set(
            "suite",
            common_suite(env.recipients.iter().map(|r| r.suite)),
        )
        .set("roomId", js::uuid_text(h.room_id))
        .set("senderUserId", js::uuid_text(h.sender_user_id))
        .set("senderDeviceId", js::uuid_text(h.sender_device_id))
        .set("clientMessageId", js::uuid_text(h.client_message_id))
        .set("timestampMs", js::number(h.timestamp_ms))
        .set("recipientDeviceIds", ids)
        .set("recipientSuites", suites)
        .into_typed())
}

/// The name of the suite every entry uses, or `"mixed"`.
fn common_suite(mut suites: impl Iterator<Item = Suite>) -> &'static str {
    match suites.next() {
        None => "mixed",
        Some(first) if suites.all(|s| s == first) => first.name(),
        Some(_) => "mixed",
    }
}

/// The JSON form of a binary envelope (docs/protocol.md).
#[wasm_bindgen(js_name = envelopeToJson)]
pub fn envelope_to_json(envelope: &[u8]) -> Result<String> {
    Ok(Envelope::from_bytes(envelope)?.to_json_string())
}

/// The binary form of a JSON envelope, validated by the same rules as the binary parser.
#[wasm_bindgen(js_name = envelopeFromJson)]
pub fn envelope_from_json(json: &str) -> Result<Vec<u8>> {
    Ok(Envelope::from_json_str(json)?.to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_suite_names() {
        assert_eq!(
            common_suite([Suite::X25519, Suite::X25519].into_iter()),
            "x25519"
        );
        assert_eq!(common_suite([Suite::Rsa].into_iter()), "rsa");
        assert_eq!(
            common_suite([Suite::X25519, Suite::Rsa].into_iter()),
            "mixed"
        );
    }

    #[test]
    fn json_round_trip_and_errors_on_the_host() {
        let v: serde_json::Value =
            serde_json::from_str(include_str!("../../core/tests/vectors/sotto_v1.json"))
                .unwrap_or_default();
        let json = v["envelope"]["envelope_json"].to_string();
        let bytes = envelope_from_json(&json);
        assert!(bytes.is_ok(), "{bytes:?}");
        let bytes = bytes.unwrap_or_default();
        let back = envelope_to_json(&bytes).unwrap_or_default();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&back).ok(),
            Some(v["envelope"]["envelope_json"].clone())
        );
        let code = |r: Result<Vec<u8>>| r.map_err(|e| e.code().as_str());
        assert_eq!(code(envelope_from_json("{")), Err("malformed"));
        assert_eq!(
            code(envelope_to_json(&bytes[..10]).map(|_| vec![])),
            Err("malformed")
        );
        let mut v2 = bytes.clone();
        v2[0] = 2;
        assert_eq!(
            code(envelope_to_json(&v2).map(|_| vec![])),
            Err("unsupported_version")
        );
    }
}
