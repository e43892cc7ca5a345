//! The outbox's decisions for the TypeScript client: the engine's
//! [`sotto_engine::outbox::Outbox`] (the native SDK's code): single-flight
//! posting of a sealed message, and the verdict on each answer of the relay.
//! The client keeps the entries in its store and does the posting.

use sotto_engine::outbox::{HttpAnswer, Outbox, SocketAnswer, Verdict};
use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::wasm_bindgen;

use crate::error::Result;
use crate::js::{self, Obj};

#[wasm_bindgen(typescript_custom_section)]
const TS_OUTBOX: &'static str = r#"
/** What to do with an outbox entry after an answer of the relay (`ClientOutbox`). */
export type OutboxVerdict =
  | { kind: "sent"; id: Uuid; seq: number; announce: boolean }
  | { kind: "refused" }
  | { kind: "http"; afterMs: number }
  | { kind: "queued" };
"#;

/// The posts in flight (the engine's `Outbox`).
#[wasm_bindgen]
pub struct ClientOutbox {
    inner: Outbox,
}

fn verdict(v: Verdict) -> JsValue {
    let o = match v {
        Verdict::Sent { id, seq, announce } => Obj::new()
            .set("kind", "sent")
            .set("id", js::uuid_text(id))
            .set("seq", js::number(seq))
            .set("announce", announce),
        Verdict::Refused => Obj::new().set("kind", "refused"),
        Verdict::PostOverHttp { after_ms } => Obj::new()
            .set("kind", "http")
            .set("afterMs", js::number(after_ms)),
        Verdict::Queued => Obj::new().set("kind", "queued"),
    };
    o.into_typed::<JsValue>()
}

fn id(text: &str) -> Result<uuid::Uuid> {
    js::parse_uuid(text, "clientId")
}

#[wasm_bindgen]
impl ClientOutbox {
    /// No post in flight.
    #[wasm_bindgen(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> ClientOutbox {
        Self {
            inner: Outbox::new(),
        }
    }

    /// Marks a control message (no `sent` event, not in history).
    pub fn control(&mut self, client_id: &str) -> Result<()> {
        self.inner.control(id(client_id)?);
        Ok(())
    }

    /// Claims the post of an entry: false if a post of it is in flight.
    pub fn begin(&mut self, client_id: &str) -> Result<bool> {
        Ok(self.inner.begin(id(client_id)?))
    }

    /// Whether a post of the entry is in flight.
    #[wasm_bindgen(js_name = isPosting)]
    pub fn is_posting(&self, client_id: &str) -> Result<bool> {
        Ok(self.inner.is_posting(id(client_id)?))
    }

    /// The entry left the store after a `sent` or `refused` verdict: the post has ended.
    pub fn finish(&mut self, client_id: &str) -> Result<()> {
        self.inner.finish(id(client_id)?);
        Ok(())
    }

    /// The post stopped without an answer.
    pub fn abandon(&mut self, client_id: &str) -> Result<()> {
        self.inner.abandon(id(client_id)?);
        Ok(())
    }

    /// The socket acknowledged the entry.
    #[wasm_bindgen(js_name = socketAck, unchecked_return_type = "OutboxVerdict")]
    pub fn socket_ack(&mut self, client_id: &str, message_id: &str, seq: f64) -> Result<JsValue> {
        let answer = SocketAnswer::Ack {
            id: js::parse_uuid(message_id, "id")?,
            seq: js::safe_u64(seq, "seq")?,
        };
        Ok(verdict(self.inner.socket(id(client_id)?, answer)))
    }

    /// The socket refused the entry (`code`, `retryAfterMs`).
    #[wasm_bindgen(js_name = socketRefused, unchecked_return_type = "OutboxVerdict")]
    pub fn socket_refused(
        &mut self,
        client_id: &str,
        code: &str,
        retry_after_ms: Option<f64>,
    ) -> Result<JsValue> {
        let retry_after_ms = retry_after_ms
            .map(|ms| js::safe_u64(ms, "retryAfterMs"))
            .transpose()?;
        let answer = SocketAnswer::Refused {
            code,
            retry_after_ms,
        };
        Ok(verdict(self.inner.socket(id(client_id)?, answer)))
    }

    /// No socket, or no answer in time.
    #[wasm_bindgen(js_name = socketSilent, unchecked_return_type = "OutboxVerdict")]
    pub fn socket_silent(&mut self, client_id: &str) -> Result<JsValue> {
        Ok(verdict(
            self.inner.socket(id(client_id)?, SocketAnswer::NoAck),
        ))
    }

    /// HTTP stored the entry.
    #[wasm_bindgen(js_name = httpStored, unchecked_return_type = "OutboxVerdict")]
    pub fn http_stored(&mut self, client_id: &str, message_id: &str, seq: f64) -> Result<JsValue> {
        let answer = HttpAnswer::Stored {
            id: js::parse_uuid(message_id, "id")?,
            seq: js::safe_u64(seq, "seq")?,
        };
        Ok(verdict(self.inner.http(id(client_id)?, answer)))
    }

    /// HTTP answered with a problem of this status.
    #[wasm_bindgen(js_name = httpRefused, unchecked_return_type = "OutboxVerdict")]
    pub fn http_refused(&mut self, client_id: &str, status: u16) -> Result<JsValue> {
        Ok(verdict(
            self.inner
                .http(id(client_id)?, HttpAnswer::Refused { status }),
        ))
    }

    /// HTTP could not reach the relay.
    #[wasm_bindgen(js_name = httpUnreachable, unchecked_return_type = "OutboxVerdict")]
    pub fn http_unreachable(&mut self, client_id: &str) -> Result<JsValue> {
        Ok(verdict(
            self.inner.http(id(client_id)?, HttpAnswer::Unreachable),
        ))
    }
}
