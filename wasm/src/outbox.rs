//! Sealing and posting for the TypeScript client: the engine's
//! [`sotto_engine::post::Posting`] and [`sotto_engine::outbox::Outbox`] (the
//! native SDK's code). The engine seals, decides the order of a post
//! (socket, HTTP, out of the store) and what each answer means; the client
//! keeps the entries in its store, sends the frame, posts over HTTP and
//! reports what it saw.

use sotto_core::api::ClientFrame;
use sotto_core::encoding::b64_encode;
use sotto_engine::open::Me;
use sotto_engine::outbox::{HttpAnswer, Outbox, SocketAnswer};
use sotto_engine::post::{Do, Flush, FlushStep, OutboxEntry, Posted, Posting};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};

use crate::device::Device;
use crate::error::{Error, Result};
use crate::js::{self, Obj};
use crate::peer::VerifiedDevice;

#[wasm_bindgen(typescript_custom_section)]
const TS_OUTBOX: &'static str = r#"
/** What to do next for an outgoing message (`ClientPosting.step`). */
export type PostStep =
  /** Whether the store still holds the entry (a flush read the list before): answer `checked`. */
  | { kind: "check" }
  /** Send `frame` on the live socket; answer `socketAck`, `socketRefused`, or `socketSilent` (no socket, no answer in time). */
  | { kind: "socket"; frame: Extract<ClientFrame, { type: "send" }> }
  /** Wait `afterMs`, post the entry over HTTP; answer `httpStored`, `httpRefused` or `httpUnreachable`. */
  | { kind: "http"; afterMs: number }
  /** Take the entry out of the store (report a failure), then `removed`. */
  | { kind: "remove" }
  /** Stored by the relay: with `announce` (an app message) keep `historyItem` and emit `sent`. */
  | { kind: "sent"; id: Uuid; seq: number; announce: boolean }
  /** Refused for good: the caller gets the refusal. */
  | { kind: "refused" }
  /** It waits in the store for the next connection. */
  | { kind: "queued" }
  /** The entry had left the store (another post sent it): nothing to do. */
  | { kind: "gone" };

/** What to do next in a flush of the outbox (`ClientFlush.step`). */
export type FlushStep =
  /** Drive `posting` to its end, then `posted(kind)` with its last step's kind. */
  | { kind: "post"; posting: ClientPosting }
  /** A post of `clientId` is in flight: wait for it to end, then `joined()`. */
  | { kind: "join"; clientId: Uuid }
  /** The flush has ended (the rest, if any, waits behind a queued entry). */
  | { kind: "done" };
"#;

/// The posts in flight (the engine's `Outbox`): one post of an entry at a time.
#[wasm_bindgen]
pub struct ClientOutbox {
    inner: Outbox,
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

    /// Whether a post of the entry is in flight.
    #[wasm_bindgen(js_name = isPosting)]
    pub fn is_posting(&self, client_id: &str) -> Result<bool> {
        Ok(self
            .inner
            .is_posting(js::parse_uuid(client_id, "clientId")?))
    }
}

/// One outgoing message on its way to the relay (the engine's `Posting`).
#[wasm_bindgen]
pub struct ClientPosting {
    inner: Posting,
}

/// A store's outbox entry, read field by field.
fn outbox_entry(entry: &JsValue) -> Result<OutboxEntry> {
    Ok(OutboxEntry {
        client_id: js::get_uuid(entry, "clientId")?,
        room_id: js::get_uuid(entry, "roomId")?,
        envelope: js::get(entry, "envelope")?
            .dyn_into::<js_sys::Uint8Array>()
            .map_err(|_| Error::invalid_argument("entry.envelope must be a Uint8Array"))?
            .to_vec(),
        control: js::get(entry, "control")?.is_truthy(),
    })
}

fn me(device: &Device) -> Me<'_> {
    Me {
        user: device.user(),
        device: device.own(),
        keys: device.keys(),
    }
}

#[wasm_bindgen]
impl ClientPosting {
    /// Seals `plaintext` (zeroized by the caller) in `roomId` for `targets`
    /// (the addressing's devices) under `clientId` at `sentAtMs`, and claims
    /// its post. `control`: a membership statement. Push `entry()` to the
    /// store before the first step (`abandon` if that fails).
    #[allow(clippy::too_many_arguments)]
    pub fn seal(
        outbox: &mut ClientOutbox,
        device: &Device,
        #[wasm_bindgen(js_name = roomId)] room_id: &str,
        plaintext: &[u8],
        #[wasm_bindgen(unchecked_param_type = "ServedDevice[]")] targets: JsValue,
        control: bool,
        #[wasm_bindgen(js_name = clientId)] client_id: &str,
        #[wasm_bindgen(js_name = sentAtMs)] sent_at_ms: f64,
    ) -> Result<ClientPosting> {
        if !js_sys::Array::is_array(&targets) {
            return Err(Error::invalid_argument("targets must be an array"));
        }
        let mut devices = Vec::new();
        for t in js_sys::Array::from(&targets).iter() {
            devices.push(
                VerifiedDevice::from_js(&js::get(&t, "device")?, "target.device")?
                    .inner()
                    .clone(),
            );
        }
        let mut inner = Posting::seal(
            &me(device),
            js::parse_uuid(room_id, "roomId")?,
            plaintext,
            &devices,
            control,
            js::parse_uuid(client_id, "clientId")?,
            js::safe_u64(sent_at_ms, "sentAtMs")?,
        )?;
        inner.claim(&mut outbox.inner);
        Ok(Self { inner })
    }

    /// An entry the store kept (a flush), claimed for this caller; undefined
    /// when a post of it is in flight already (join that one).
    pub fn resume(
        outbox: &mut ClientOutbox,
        #[wasm_bindgen(unchecked_param_type = "OutboxEntry")] entry: JsValue,
    ) -> Result<Option<ClientPosting>> {
        Ok(Posting::resume(&mut outbox.inner, outbox_entry(&entry)?).map(|inner| Self { inner }))
    }

    /// The entry, as the store keeps it.
    #[wasm_bindgen(unchecked_return_type = "OutboxEntry")]
    pub fn entry(&self) -> JsValue {
        let e = self.inner.entry();
        Obj::new()
            .set("clientId", js::uuid_text(e.client_id))
            .set("roomId", js::uuid_text(e.room_id))
            .set("envelope", js::bytes(&e.envelope))
            .set("control", e.control)
            .into_typed::<JsValue>()
    }

    /// What to do next.
    #[wasm_bindgen(unchecked_return_type = "PostStep")]
    pub fn step(&mut self, outbox: &mut ClientOutbox) -> JsValue {
        let kind = |k: &str| Obj::new().set("kind", k);
        match self.inner.step(&mut outbox.inner) {
            Do::Socket(ClientFrame::Send {
                room_id,
                client_id,
                envelope,
            }) => kind("socket").set(
                "frame",
                Obj::new()
                    .set("type", "send")
                    .set("room_id", js::uuid_text(room_id))
                    .set("client_id", js::uuid_text(client_id))
                    .set("envelope", b64_encode(envelope.as_bytes()))
                    .into_typed::<JsValue>(),
            ),
            // (The engine posts only `send` frames.)
            Do::Socket(_) => kind("queued"),
            Do::Http { after_ms } => kind("http").set("afterMs", js::number(after_ms)),
            Do::Check => kind("check"),
            Do::Remove => kind("remove"),
            Do::Done(Posted::Sent { id, seq, announce }) => kind("sent")
                .set("id", js::uuid_text(id))
                .set("seq", js::number(seq))
                .set("announce", announce),
            Do::Done(Posted::Refused) => kind("refused"),
            Do::Done(Posted::Queued) => kind("queued"),
            Do::Done(Posted::Gone) => kind("gone"),
        }
        .into_typed::<JsValue>()
    }

    /// Whether the store still holds the entry (`check`; a store that cannot tell: true).
    pub fn checked(&mut self, outbox: &mut ClientOutbox, still: bool) {
        self.inner.checked(&mut outbox.inner, still);
    }

    /// The socket acknowledged the entry.
    #[wasm_bindgen(js_name = socketAck)]
    pub fn socket_ack(&mut self, outbox: &mut ClientOutbox, id: &str, seq: f64) -> Result<()> {
        let answer = SocketAnswer::Ack {
            id: js::parse_uuid(id, "id")?,
            seq: js::safe_u64(seq, "seq")?,
        };
        self.inner.socket(&mut outbox.inner, answer);
        Ok(())
    }

    /// The socket refused the entry (`code`, `retryAfterMs`).
    #[wasm_bindgen(js_name = socketRefused)]
    pub fn socket_refused(
        &mut self,
        outbox: &mut ClientOutbox,
        code: &str,
        #[wasm_bindgen(js_name = retryAfterMs)] retry_after_ms: Option<f64>,
    ) -> Result<()> {
        let retry_after_ms = retry_after_ms
            .map(|ms| js::safe_u64(ms, "retryAfterMs"))
            .transpose()?;
        let answer = SocketAnswer::Refused {
            code,
            retry_after_ms,
        };
        self.inner.socket(&mut outbox.inner, answer);
        Ok(())
    }

    /// No socket, or no answer in time.
    #[wasm_bindgen(js_name = socketSilent)]
    pub fn socket_silent(&mut self, outbox: &mut ClientOutbox) {
        self.inner.socket(&mut outbox.inner, SocketAnswer::NoAck);
    }

    /// HTTP stored the entry.
    #[wasm_bindgen(js_name = httpStored)]
    pub fn http_stored(&mut self, outbox: &mut ClientOutbox, id: &str, seq: f64) -> Result<()> {
        let answer = HttpAnswer::Stored {
            id: js::parse_uuid(id, "id")?,
            seq: js::safe_u64(seq, "seq")?,
        };
        self.inner.http(&mut outbox.inner, answer);
        Ok(())
    }

    /// HTTP answered with a problem of this status.
    #[wasm_bindgen(js_name = httpRefused)]
    pub fn http_refused(&mut self, outbox: &mut ClientOutbox, status: u16) {
        self.inner
            .http(&mut outbox.inner, HttpAnswer::Refused { status });
    }

    /// HTTP could not reach the relay.
    #[wasm_bindgen(js_name = httpUnreachable)]
    pub fn http_unreachable(&mut self, outbox: &mut ClientOutbox) {
        self.inner.http(&mut outbox.inner, HttpAnswer::Unreachable);
    }

    /// The entry left the store (or the store failed, reported): the post has ended.
    pub fn removed(&mut self, outbox: &mut ClientOutbox) {
        self.inner.removed(&mut outbox.inner);
    }

    /// The client stops before the end: the entry stays in the store.
    pub fn abandon(&mut self, outbox: &mut ClientOutbox) {
        self.inner.abandon(&mut outbox.inner);
    }

    /// The sent message as local history keeps it (`receivedAt`: now, RFC
    /// 3339); undefined for a control message.
    #[wasm_bindgen(js_name = historyItem, unchecked_return_type = "HistoryItem | undefined")]
    pub fn history_item(
        &self,
        device: &Device,
        id: &str,
        seq: f64,
        #[wasm_bindgen(js_name = receivedAt)] received_at: String,
    ) -> Result<JsValue> {
        let id = js::parse_uuid(id, "id")?;
        let seq = js::safe_u64(seq, "seq")?;
        match self.inner.history_item(&me(device), id, seq, received_at) {
            Some(item) => js::to_js(&item),
            None => Ok(JsValue::UNDEFINED),
        }
    }
}

/// The store's outbox posted in order (the engine's `Flush`): one post of an
/// entry at a time, stopping at the first that cannot go out yet.
#[wasm_bindgen]
pub struct ClientFlush {
    inner: Flush,
}

#[wasm_bindgen]
impl ClientFlush {
    /// A flush of the store's entries (oldest first).
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "OutboxEntry[]")] entries: JsValue,
    ) -> Result<ClientFlush> {
        if !js_sys::Array::is_array(&entries) {
            return Err(Error::invalid_argument("entries must be an array"));
        }
        let entries = js_sys::Array::from(&entries)
            .iter()
            .map(|e| outbox_entry(&e))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            inner: Flush::new(entries),
        })
    }

    /// What to do next.
    #[wasm_bindgen(unchecked_return_type = "FlushStep")]
    pub fn step(&mut self, outbox: &mut ClientOutbox) -> JsValue {
        let kind = |k: &str| Obj::new().set("kind", k);
        match self.inner.step(&mut outbox.inner) {
            FlushStep::Post(p) => {
                kind("post").set("posting", JsValue::from(ClientPosting { inner: p }))
            }
            FlushStep::Join(id) => kind("join").set("clientId", js::uuid_text(id)),
            FlushStep::Done => kind("done"),
        }
        .into_typed::<JsValue>()
    }

    /// The post that `join` waited for has ended.
    pub fn joined(&mut self) {
        self.inner.joined();
    }

    /// How the handed-out post ended: the kind of its last step (`sent`,
    /// `refused`, `queued`, `gone`).
    pub fn posted(&mut self, kind: &str) -> Result<()> {
        let outcome = match kind {
            "sent" => Posted::Sent {
                id: uuid::Uuid::nil(),
                seq: 0,
                announce: false,
            },
            "refused" => Posted::Refused,
            "queued" => Posted::Queued,
            "gone" => Posted::Gone,
            _ => {
                return Err(Error::invalid_argument(
                    "kind must be sent, refused, queued or gone",
                ));
            }
        };
        self.inner.posted(outcome);
        Ok(())
    }
}
