//! The incoming stream, decided by the engine's [`sotto_engine::Feed`] (the
//! code the native SDK runs): room cursors, gaps and `resume`,
//! de-duplication, `delivered` receipts, and the changes each step leaves for
//! the store. The TypeScript client feeds it frames and stores what
//! [`ClientFeed::take_changes`] returns (one IndexedDB transaction per step)
//! before it shows the step's events.

use sotto_engine::feed::{Arrival, Deletion, Feed, Resume, Seen};
use uuid::Uuid;
use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::wasm_bindgen;

use crate::error::Result;
use crate::js::{self, Obj};

#[wasm_bindgen(typescript_custom_section)]
const TS_FEED: &'static str = r#"
/** A room's cursor per room id: the body of a `resume` frame. */
export type ResumeCursors = Record<Uuid, number>;
/** What to do with a message frame (`ClientFeed.message`). */
export type FeedArrival =
  | { kind: "skip" }
  | { kind: "handled" }
  | { kind: "open" }
  | { kind: "resume"; cursors: ResumeCursors };
/** What to do with a tombstone (`ClientFeed.deletion`). */
export type FeedDeletion = { kind: "deleted" } | { kind: "skip" } | { kind: "resume"; cursors: ResumeCursors };
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
"#;

/// The incoming stream of this device (the engine's `Feed`).
#[wasm_bindgen]
pub struct ClientFeed {
    inner: Feed,
}

fn id(text: &str, what: &str) -> Result<Uuid> {
    js::parse_uuid(text, what)
}

fn cursors_js(resume: &Resume) -> JsValue {
    let mut o = Obj::new();
    for (room, seq) in &resume.0 {
        o = o.set(&js::uuid_text(*room), js::number(*seq));
    }
    o.into_typed::<JsValue>()
}

fn resume_js(resume: &Resume) -> JsValue {
    Obj::new()
        .set("kind", "resume")
        .set("cursors", cursors_js(resume))
        .into_typed::<JsValue>()
}

fn kind(k: &str) -> JsValue {
    Obj::new().set("kind", k).into_typed::<JsValue>()
}

fn place(room_id: Uuid, seq: u64) -> Obj {
    Obj::new()
        .set("roomId", js::uuid_text(room_id))
        .set("seq", js::number(seq))
}

#[wasm_bindgen]
impl ClientFeed {
    /// The feed of this device, before any connection.
    #[wasm_bindgen(constructor)]
    pub fn new(user_id: &str, device_id: &str) -> Result<ClientFeed> {
        Ok(Self {
            inner: Feed::new(id(user_id, "userId")?, id(device_id, "deviceId")?),
        })
    }

    /// A connection is authenticated: `rooms` the relay lists, `stored` every
    /// cursor of the store (`[roomId, seq]` pairs). Forgets the previous
    /// connection's state and returns the cursors of the first `resume`.
    #[wasm_bindgen(unchecked_return_type = "ResumeCursors")]
    pub fn connect(
        &mut self,
        rooms: Vec<String>,
        #[wasm_bindgen(unchecked_param_type = "Array<[Uuid, number]>")] stored: JsValue,
    ) -> Result<JsValue> {
        let rooms = rooms
            .iter()
            .map(|r| id(r, "room id"))
            .collect::<Result<Vec<_>>>()?;
        let mut cursors = Vec::new();
        for pair in js_sys::Array::from(&stored).iter() {
            let pair = js_sys::Array::from(&pair);
            let room = id(
                &pair.get(0).as_string().unwrap_or_default(),
                "cursor room id",
            )?;
            let seq = js::safe_u64(pair.get(1).as_f64().unwrap_or(f64::NAN), "cursor")?;
            cursors.push((room, seq));
        }
        let resume = self.inner.connect(rooms, cursors);
        Ok(cursors_js(&resume))
    }

    /// A room's cursor as the feed holds it.
    pub fn cursor(&self, room_id: &str) -> Result<f64> {
        Ok(js::number(self.inner.cursor(id(room_id, "roomId")?)))
    }

    /// A `message` frame arrived.
    #[wasm_bindgen(unchecked_return_type = "FeedArrival")]
    pub fn message(
        &mut self,
        room_id: &str,
        seq: f64,
        sender_id: &str,
        device_id: &str,
    ) -> Result<JsValue> {
        let arrival = self.inner.message(
            id(room_id, "room_id")?,
            js::safe_u64(seq, "seq")?,
            id(sender_id, "sender_id")?,
            id(device_id, "device_id")?,
        );
        Ok(match arrival {
            Arrival::Skip => kind("skip"),
            Arrival::Handled => kind("handled"),
            Arrival::Open => kind("open"),
            Arrival::Resume(frame) => resume_js(&frame),
        })
    }

    /// Whether the opened message `clientId` of `sender` at `roomId`/`seq` was
    /// seen before: in this step, or where the store says (`stored`, from
    /// `KeyStore.seenAt`). A new one is recorded in the step's changes.
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

    /// The message `open` asked for is handled (shown with its sealed history
    /// item `kept`, a control message, or undecryptable): the cursor moves.
    pub fn settle(&mut self, room_id: &str, seq: f64, kept: Option<Vec<u8>>) -> Result<()> {
        self.inner
            .settle(id(room_id, "roomId")?, js::safe_u64(seq, "seq")?, kept);
        Ok(())
    }

    /// A `message_deleted` frame arrived.
    #[wasm_bindgen(unchecked_return_type = "FeedDeletion")]
    pub fn deletion(&mut self, room_id: &str, seq: f64) -> Result<JsValue> {
        Ok(
            match self
                .inner
                .deletion(id(room_id, "room_id")?, js::safe_u64(seq, "seq")?)
            {
                Deletion::Deleted => kind("deleted"),
                Deletion::Skip => kind("skip"),
                Deletion::Resume(frame) => resume_js(&frame),
            },
        )
    }

    /// A `history_start` frame arrived.
    #[wasm_bindgen(js_name = historyStart)]
    pub fn history_start(&mut self, room_id: &str, seq: f64) -> Result<()> {
        self.inner
            .history_start(id(room_id, "room_id")?, js::safe_u64(seq, "seq")?);
        Ok(())
    }

    /// This user joined a room. Returns the cursors of the `resume` to send
    /// (from the store's cursor given at `connect`), or `undefined` if
    /// already followed.
    #[wasm_bindgen(unchecked_return_type = "ResumeCursors | undefined")]
    pub fn joined(&mut self, room_id: &str) -> Result<JsValue> {
        Ok(match self.inner.joined(id(room_id, "room_id")?) {
            Some(resume) => cursors_js(&resume),
            None => JsValue::UNDEFINED,
        })
    }

    /// The `delivered` receipts due: the highest settled seq per room.
    #[wasm_bindgen(unchecked_return_type = "Array<{ roomId: Uuid; seq: number }>")]
    pub fn receipts(&mut self) -> JsValue {
        let out = js_sys::Array::new();
        for (room_id, seq) in self.inner.receipts() {
            out.push(&place(room_id, seq).into_typed::<JsValue>());
        }
        out.into()
    }

    /// The changes since the last call, for one store transaction.
    #[wasm_bindgen(js_name = takeChanges, unchecked_return_type = "FeedChanges")]
    pub fn take_changes(&mut self) -> JsValue {
        let c = self.inner.take_changes();
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
}
