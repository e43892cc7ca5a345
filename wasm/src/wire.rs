//! Relay wire types, validated by the same Rust types the relay uses
//! (`sotto_core::api::ws`).

use sotto_core::api::{ClientFrame, ServerFrame};
use wasm_bindgen::prelude::wasm_bindgen;

use crate::error::Result;
use crate::js;
use crate::types;

/// Parses a frame the relay sent (a WebSocket text message). The result is the
/// frame as the core reads it: unknown fields are dropped, a frame of an unknown
/// `type` or with a field of the wrong type is `malformed`.
#[wasm_bindgen(js_name = parseServerFrame)]
pub fn parse_server_frame(text: &str) -> Result<types::ServerFrame> {
    Ok(js::to_js(&read_server_frame(text)?)?.into())
}

/// A relay frame as the core reads it, every integer in it exact as a
/// JavaScript number.
pub(crate) fn read_server_frame(text: &str) -> Result<ServerFrame> {
    let frame: ServerFrame = js::from_json_text(text, "server frame")?;
    // Every integer must be exact as a JavaScript number.
    let n = match &frame {
        ServerFrame::Ack { seq, .. }
        | ServerFrame::Message { seq, .. }
        | ServerFrame::Receipt { seq, .. }
        | ServerFrame::MessageDeleted { seq, .. }
        | ServerFrame::HistoryStart { seq, .. } => *seq,
        ServerFrame::Error { retry_after_ms, .. } => retry_after_ms.unwrap_or(0),
        _ => 0,
    };
    if n > (1u64 << 53) - 1 {
        return Err(crate::Error::malformed(
            "a number in the frame is above 2^53 - 1",
        ));
    }
    Ok(frame)
}

/// Encodes a frame to send to the relay, checked strictly (unknown fields are
/// refused, as the relay would).
#[wasm_bindgen(js_name = encodeClientFrame)]
pub fn encode_client_frame(frame: types::ClientFrame) -> Result<String> {
    let frame: ClientFrame = js::from_js(&frame, "client frame")?;
    client_frame_text(&frame)
}

/// The token of an e-mailed link (`.../verify-email#token=...`, `?token=`,
/// `&token=`), or the argument itself (trimmed) when it is already a token: the
/// core's parser, the one the native SDK uses.
#[wasm_bindgen(js_name = tokenFromLink)]
pub fn token_from_link(link_or_token: &str) -> String {
    sotto_core::api::token_from_link(link_or_token)
}

/// The engine's reconnect delay (`sotto_engine::policy`): 0.25 s × 2^failures up
/// to 30 s, jittered into `[d/2, d]` by `jitter`, a uniform 32-bit random number
/// the caller draws.
#[wasm_bindgen(js_name = reconnectDelayMs)]
pub fn reconnect_delay_ms(failures: u32, jitter: u32) -> f64 {
    // Below 30,000: exact as an f64.
    sotto_engine::policy::reconnect_delay_ms(failures, jitter) as f64
}

/// Whether the relay's refusal `code` of a message may pass on a later post
/// (the entry stays in the outbox), as the engine decides.
#[wasm_bindgen(js_name = transientRefusal)]
pub fn transient_refusal(code: &str) -> bool {
    sotto_engine::policy::transient_refusal(code)
}

pub(crate) fn client_frame_text(frame: &ClientFrame) -> Result<String> {
    serde_json::to_string(frame).map_err(|e| {
        crate::Error::new(
            crate::Code::Internal,
            format!("cannot serialize frame: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frames_are_strict() {
        let f: Result<ClientFrame> = js::from_json_text(r#"{"type":"ping"}"#, "f");
        assert_eq!(
            f.and_then(|f| client_frame_text(&f)).as_deref(),
            Ok(r#"{"type":"ping"}"#)
        );
        let f: Result<ClientFrame> =
            js::from_json_text(r#"{"type":"auth","token":"t","x":1}"#, "f");
        assert_eq!(f.map_err(|e| e.code().as_str()).err(), Some("malformed"));
    }
}
