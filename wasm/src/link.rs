//! The live connection, decided by the engine's [`sotto_engine::link::Link`]
//! (the code the native SDK runs): when to connect, `resume`, ping, send
//! receipts, give up on an `ack`, back off, and the steps that carry frames to
//! the feed (cursors, gaps, de-duplication). The TypeScript client does its
//! outputs (`ClientLink.poll`): HTTP, the WebSocket, one IndexedDB transaction
//! per step (`KeyStore.apply`), opening messages, the app's events.

use sotto_engine::feed::{Changes, Seen};
use sotto_engine::link::{Ack, Conn, Incoming, Link, LinkState, Output, PrepareFailed, Settle};
use uuid::Uuid;
use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::wasm_bindgen;

use crate::error::Result;
use crate::js::{self, Obj};

#[wasm_bindgen(typescript_custom_section)]
const TS_LINK: &'static str = r#"
/** What one step leaves for the store, applied in one transaction (`KeyStore.apply`). */
export interface FeedChanges {
  /** A room's new cursor (the store keeps the larger). */
  cursors: Array<{ roomId: Uuid; seq: number }>;
  /** A sender's message id first delivered at `roomId`/`seq` (a known one keeps its place). */
  seen: Array<{ sender: Uuid; clientId: Uuid; roomId: Uuid; seq: number }>;
  /** Sealed history items to keep. */
  historyPut: Array<{ roomId: Uuid; seq: number; sealed: Uint8Array }>;
  /** History items to drop (after the puts). */
  historyDelete: Array<{ roomId: Uuid; seq: number }>;
}
/** How the wait for a socket `ack` ended. */
export type LinkAck =
  | { kind: "stored"; id: Uuid; seq: number }
  | { kind: "refused"; code: string; detail?: string; retryAfterMs?: number }
  | { kind: "offline" };
/** A message to open, then `ClientLink.settle`. */
export interface LinkIncoming {
  roomId: Uuid;
  id: Uuid;
  seq: number;
  senderId: Uuid;
  deviceId: Uuid;
  createdAt: string;
  envelope: Uint8Array;
}
/** Something the driver must do (`ClientLink.poll`), in order. */
export type LinkOutput =
  | { kind: "prepare" | "open" | "authenticate" | "online" | "close"; conn: number }
  | { kind: "send"; text: string }
  | { kind: "state"; state: "connecting" | "online" | "offline"; reason?: string; retryInMs?: number }
  | { kind: "acked"; clientId: Uuid; ack: LinkAck }
  | { kind: "receive"; message: LinkIncoming }
  | { kind: "roomChanged"; roomId: Uuid; change: RoomChange }
  | { kind: "keysChanged"; userId: Uuid }
  | { kind: "store"; changes: FeedChanges }
  | { kind: "show"; frame: ServerFrame }
  | { kind: "app"; event: unknown }
  | { kind: "loggedOut" };
"#;

/// The live connection of this device (the engine's `Link`). Times are the
/// driver's monotonic clock in milliseconds (`performance.now()`).
#[wasm_bindgen]
pub struct ClientLink {
    inner: Link<JsValue>,
}

fn id(text: &str, what: &str) -> Result<Uuid> {
    js::parse_uuid(text, what)
}

fn ms(now: f64) -> u64 {
    // A clock reading: negative or NaN is 0, fractions dropped.
    if now.is_finite() && now > 0.0 {
        now as u64
    } else {
        0
    }
}

fn conn(c: f64) -> Result<Conn> {
    Ok(Conn(js::safe_u64(c, "conn")?))
}

fn jitter() -> u32 {
    let mut b = [0u8; 4];
    // No randomness (never in a browser or Node): no jitter, the delay's lower half.
    let _ = getrandom::fill(&mut b);
    u32::from_le_bytes(b)
}

fn place(room_id: Uuid, seq: u64) -> Obj {
    Obj::new()
        .set("roomId", js::uuid_text(room_id))
        .set("seq", js::number(seq))
}

fn changes_js(c: &Changes) -> JsValue {
    let cursors = js_sys::Array::new();
    for (room, seq) in &c.cursors {
        cursors.push(&place(*room, *seq).into_typed::<JsValue>());
    }
    let seen = js_sys::Array::new();
    for (sender, client_id, room, seq) in &c.seen {
        let o = place(*room, *seq)
            .set("sender", js::uuid_text(*sender))
            .set("clientId", js::uuid_text(*client_id));
        seen.push(&o.into_typed::<JsValue>());
    }
    let put = js_sys::Array::new();
    for (room, seq, sealed) in &c.history_put {
        let o = place(*room, *seq).set("sealed", js::bytes(sealed));
        put.push(&o.into_typed::<JsValue>());
    }
    let delete = js_sys::Array::new();
    for (room, seq) in &c.history_delete {
        delete.push(&place(*room, *seq).into_typed::<JsValue>());
    }
    Obj::new()
        .set("cursors", cursors)
        .set("seen", seen)
        .set("historyPut", put)
        .set("historyDelete", delete)
        .into_typed::<JsValue>()
}

fn incoming_js(m: &Incoming) -> JsValue {
    place(m.room_id, m.seq)
        .set("id", js::uuid_text(m.id))
        .set("senderId", js::uuid_text(m.sender_id))
        .set("deviceId", js::uuid_text(m.device_id))
        .set("createdAt", m.created_at.as_str())
        .set("envelope", js::bytes(&m.envelope))
        .into_typed::<JsValue>()
}

fn ack_js(ack: Ack) -> JsValue {
    match ack {
        Ack::Stored { id, seq } => Obj::new()
            .set("kind", "stored")
            .set("id", js::uuid_text(id))
            .set("seq", js::number(seq)),
        Ack::Refused {
            code,
            detail,
            retry_after_ms,
        } => {
            let mut o = Obj::new().set("kind", "refused").set("code", code);
            if let Some(d) = detail {
                o = o.set("detail", d);
            }
            if let Some(r) = retry_after_ms {
                o = o.set("retryAfterMs", js::number(r));
            }
            o
        }
        Ack::Offline => Obj::new().set("kind", "offline"),
    }
    .into_typed::<JsValue>()
}

fn output_js(out: Output<JsValue>) -> Result<JsValue> {
    let kind = |k: &str| Obj::new().set("kind", k);
    let with_conn = |k: &str, c: Conn| kind(k).set("conn", js::number(c.0));
    Ok(match out {
        Output::Prepare(c) => with_conn("prepare", c),
        Output::Open(c) => with_conn("open", c),
        Output::Authenticate(c) => with_conn("authenticate", c),
        Output::Online(c) => with_conn("online", c),
        Output::Close(c) => with_conn("close", c),
        Output::Send(frame) => kind("send").set("text", crate::wire::client_frame_text(&frame)?),
        Output::State(LinkState::Connecting) => kind("state").set("state", "connecting"),
        Output::State(LinkState::Online) => kind("state").set("state", "online"),
        Output::State(LinkState::Offline {
            reason,
            retry_in_ms,
        }) => {
            let o = kind("state").set("state", "offline").set("reason", reason);
            match retry_in_ms {
                Some(ms) => o.set("retryInMs", js::number(ms)),
                None => o,
            }
        }
        Output::Acked { client_id, ack } => kind("acked")
            .set("clientId", js::uuid_text(client_id))
            .set("ack", ack_js(ack)),
        Output::Receive(m) => kind("receive").set("message", incoming_js(&m)),
        Output::RoomChanged { room_id, change } => kind("roomChanged")
            .set("roomId", js::uuid_text(room_id))
            .set("change", js::to_js(&change)?),
        Output::KeysChanged(user_id) => kind("keysChanged").set("userId", js::uuid_text(user_id)),
        Output::Store(changes) => kind("store").set("changes", changes_js(&changes)),
        Output::Show(frame) => kind("show").set("frame", js::to_js(&frame)?),
        Output::App(event) => kind("app").set("event", event),
        Output::LoggedOut => kind("loggedOut"),
    }
    .into_typed::<JsValue>())
}

#[wasm_bindgen]
impl ClientLink {
    /// The link of this device, before any connection. `connectTimeoutMs`:
    /// how long opening the socket may take.
    #[wasm_bindgen(constructor)]
    pub fn new(user_id: &str, device_id: &str, connect_timeout_ms: f64) -> Result<ClientLink> {
        Ok(Self {
            inner: Link::new(
                id(user_id, "userId")?,
                id(device_id, "deviceId")?,
                js::safe_u64(connect_timeout_ms, "connectTimeoutMs")?,
                Box::new(jitter),
            ),
        })
    }

    /// Connected and resumed.
    #[wasm_bindgen(getter, js_name = isOnline)]
    pub fn is_online(&self) -> bool {
        self.inner.is_online()
    }

    /// Work is left (a connection wanted, or one winding down).
    #[wasm_bindgen(getter, js_name = isActive)]
    pub fn is_active(&self) -> bool {
        self.inner.is_active()
    }

    /// The attempt whose socket may carry an app's frame now (`undefined`:
    /// not live). The driver writes such frames itself, not behind a step.
    #[wasm_bindgen(getter)]
    pub fn live(&self) -> Option<f64> {
        self.inner.live().map(|c| js::number(c.0))
    }

    /// Waits for the `ack` of a message frame the driver wrote on the live
    /// socket (an `acked` output ends it); false when not live.
    #[wasm_bindgen(js_name = expectAck)]
    pub fn expect_ack(&mut self, now: f64, client_id: &str) -> Result<bool> {
        Ok(self.inner.expect_ack(ms(now), id(client_id, "clientId")?))
    }

    /// The app wants the connection.
    pub fn start(&mut self, now: f64) {
        self.inner.start(ms(now));
    }

    /// The app stops the connection.
    pub fn stop(&mut self, now: f64) {
        self.inner.stop(ms(now));
    }

    /// The answer to `prepare`: the room ids the relay lists, and every stored
    /// cursor (`[roomId, seq]` pairs).
    pub fn prepared(
        &mut self,
        c: f64,
        now: f64,
        rooms: Vec<String>,
        #[wasm_bindgen(unchecked_param_type = "Array<[Uuid, number]>")] cursors: JsValue,
    ) -> Result<()> {
        let rooms = js::parse_uuids(&rooms, "room id")?;
        let mut stored = Vec::new();
        for pair in js_sys::Array::from(&cursors).iter() {
            let pair = js_sys::Array::from(&pair);
            let room = id(
                &pair.get(0).as_string().unwrap_or_default(),
                "cursor room id",
            )?;
            let seq = js::safe_u64(pair.get(1).as_f64().unwrap_or(f64::NAN), "cursor")?;
            stored.push((room, seq));
        }
        self.inner.prepared(conn(c)?, ms(now), Ok((rooms, stored)));
        Ok(())
    }

    /// `prepare` failed: `loggedOut` (stop for good), or `reason` (retry).
    #[wasm_bindgen(js_name = prepareFailed)]
    pub fn prepare_failed(
        &mut self,
        c: f64,
        now: f64,
        logged_out: bool,
        reason: String,
    ) -> Result<()> {
        let failed = if logged_out {
            PrepareFailed::LoggedOut
        } else {
            PrepareFailed::Retry(reason)
        };
        self.inner.prepared(conn(c)?, ms(now), Err(failed));
        Ok(())
    }

    /// The socket of `conn` is open.
    pub fn opened(&mut self, c: f64, now: f64) -> Result<()> {
        self.inner.opened(conn(c)?, ms(now));
        Ok(())
    }

    /// The socket of `conn` ended.
    pub fn closed(&mut self, c: f64, now: f64, reason: String) -> Result<()> {
        self.inner.closed(conn(c)?, ms(now), reason);
        Ok(())
    }

    /// A text frame arrived on the socket of `conn` (unreadable ones, and
    /// ones with a number not exact in JavaScript, are ignored).
    pub fn received(&mut self, c: f64, now: f64, text: &str) -> Result<()> {
        let c = conn(c)?;
        match crate::wire::read_server_frame(text) {
            Ok(frame) => self.inner.received_frame(c, ms(now), frame),
            Err(_) => self.inner.received(c, ms(now), ""),
        }
        Ok(())
    }

    /// No longer waits for this `ack`.
    #[wasm_bindgen(js_name = forgetAck)]
    pub fn forget_ack(&mut self, client_id: &str) -> Result<()> {
        self.inner.forget_ack(id(client_id, "clientId")?);
        Ok(())
    }

    /// The replay check of the message under `receive`: `stored` is where
    /// `KeyStore.seenAt` says the id was first delivered.
    #[wasm_bindgen(unchecked_return_type = "\"new\" | \"again\" | \"replay\"")]
    pub fn seen(
        &mut self,
        sender: &str,
        client_id: &str,
        room_id: &str,
        seq: f64,
        #[wasm_bindgen(unchecked_param_type = "{ roomId: Uuid; seq: number } | null")]
        stored: JsValue,
    ) -> Result<String> {
        let stored = if stored.is_null() || stored.is_undefined() {
            None
        } else {
            Some((
                js::get_uuid(&stored, "roomId")?,
                js::safe_u64(
                    js::get(&stored, "seq")?.as_f64().unwrap_or(f64::NAN),
                    "stored seq",
                )?,
            ))
        };
        let answer = self.inner.seen(
            id(sender, "sender")?,
            id(client_id, "clientId")?,
            id(room_id, "roomId")?,
            js::safe_u64(seq, "seq")?,
            stored,
        );
        Ok(match answer {
            Seen::New => "new",
            Seen::Again => "again",
            Seen::Replay => "replay",
        }
        .to_owned())
    }

    /// The message under `receive` is handled: `kept` its sealed history item,
    /// `event` what to show once the step is stored (`undefined`: nothing).
    pub fn settle(
        &mut self,
        room_id: &str,
        seq: f64,
        kept: Option<Vec<u8>>,
        #[wasm_bindgen(unchecked_param_type = "unknown")] event: JsValue,
    ) -> Result<()> {
        let event = (!event.is_undefined()).then_some(event);
        self.inner.settle(
            id(room_id, "roomId")?,
            js::safe_u64(seq, "seq")?,
            Settle::Handled { kept, event },
        );
        Ok(())
    }

    /// The message under `receive` cannot be checked now: the connection ends
    /// after the step, its cursor stays.
    #[wasm_bindgen(js_name = settleLater)]
    pub fn settle_later(&mut self, room_id: &str, seq: f64, reason: String) -> Result<()> {
        self.inner.settle(
            id(room_id, "roomId")?,
            js::safe_u64(seq, "seq")?,
            Settle::Later(reason),
        );
        Ok(())
    }

    /// The answer to `store`: `error` undefined when stored.
    pub fn stored(&mut self, now: f64, error: Option<String>) {
        self.inner.stored(ms(now), error.map_or(Ok(()), Err));
    }

    /// The next output, or `undefined` until an input or `deadline`.
    #[wasm_bindgen(unchecked_return_type = "LinkOutput | undefined")]
    pub fn poll(&mut self, now: f64) -> Result<JsValue> {
        match self.inner.poll(ms(now)) {
            Some(out) => output_js(out),
            None => Ok(JsValue::UNDEFINED),
        }
    }

    /// When to call `poll` at the latest without an input (`undefined`: only
    /// an input changes anything).
    pub fn deadline(&self) -> Option<f64> {
        self.inner.deadline().map(js::number)
    }
}
