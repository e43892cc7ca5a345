//! Room membership the relay cannot forge: the engine's [`sotto_engine::Rooms`]
//! for the TypeScript client (`docs/protocol.md` §12.4). Every decision (whom to
//! seal to, whether a statement is accepted, what the owner signs, when a
//! statement is forwarded) is the engine's, the same code the native SDK runs;
//! the TypeScript client only feeds it and persists what it returns.
//!
//! Values cross as the engine's serde JSON: records are opaque objects the
//! client stores and hands back unchanged.

use sotto_engine::{Plaintext, Warning};
use uuid::Uuid;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};

use crate::error::{Error, Result};
use crate::js::{self, Obj};

#[wasm_bindgen(typescript_custom_section)]
const TS_ROOMS: &'static str = r#"
/** What the engine keeps about one room's membership (opaque bytes): store it as is, hand it back to `new RoomMembership`. */
export type RoomRecord = Uint8Array;
/** An opened plaintext: the app's content, or a control message apps never see. */
export type DecodedPlaintext =
  | { kind: "content"; content: PlaintextContent }
  | { kind: "membership"; statement: Uint8Array };
"#;

/// Every room's membership as this device decides it (the engine's `Rooms`).
#[wasm_bindgen]
pub struct RoomMembership {
    inner: sotto_engine::Rooms,
}

fn uuid(text: &str, what: &str) -> Result<Uuid> {
    js::parse_uuid(text, what)
}

fn uuids(list: &[String], what: &str) -> Result<Vec<Uuid>> {
    list.iter().map(|t| uuid(t, what)).collect()
}

fn id_array(list: &[Uuid]) -> JsValue {
    let out = js_sys::Array::new();
    for u in list {
        out.push(&JsValue::from_str(&js::uuid_text(*u)));
    }
    out.into()
}

/// A `RoomDetails` object of the relay as the engine reads it (no serde:
/// the fields it needs).
pub(crate) fn view_of(details: &JsValue) -> Result<sotto_engine::room_ops::RoomView> {
    let kind = js::get_string(details, "kind")?;
    let direct = match kind.as_str() {
        "direct" => true,
        "group" => false,
        other => return Err(Error::malformed(format!("unknown room kind {other:?}"))),
    };
    let ids = |key: &str, field: &str| -> Result<Vec<Uuid>> {
        let list = js::get(details, key)?;
        if list.is_undefined() || list.is_null() {
            return Ok(Vec::new());
        }
        js_sys::Array::from(&list)
            .iter()
            .map(|m| js::get_uuid(&m, field))
            .collect()
    };
    let epoch = js::get(details, "member_epoch")?.as_f64().unwrap_or(0.0);
    Ok(sotto_engine::room_ops::RoomView {
        id: js::get_uuid(details, "id")?,
        // (Saturating, as the native client's parse of a huge number is exact.)
        member_epoch: if epoch.is_finite() && epoch > 0.0 {
            epoch as u64
        } else {
            0
        },
        direct,
        owner: js::get_uuid(details, "owner_id")?,
        members: ids("members", "user_id")?,
        invited: ids("invited", "user_id")?,
    })
}

impl RoomMembership {
    /// The engine's rooms (for the open pipeline).
    pub(crate) fn inner_mut(&mut self) -> &mut sotto_engine::Rooms {
        &mut self.inner
    }
}

/// A warning as its JavaScript object (`MembershipWarning`).
pub(crate) fn warning(w: &Warning) -> JsValue {
    let o = Obj::new();
    let o = match w {
        Warning::Unconfirmed { room_id, users } => o
            .set("kind", "unconfirmed")
            .set("room_id", js::uuid_text(*room_id))
            .set("users", id_array(users)),
        Warning::DirectRoomTampered { room_id, users } => o
            .set("kind", "direct_room_tampered")
            .set("room_id", js::uuid_text(*room_id))
            .set("users", id_array(users)),
        Warning::StatementRefused { room_id, reason } => o
            .set("kind", "statement_refused")
            .set("room_id", js::uuid_text(*room_id))
            .set("reason", reason.as_str()),
        Warning::Unsigned { room_id } => o
            .set("kind", "unsigned")
            .set("room_id", js::uuid_text(*room_id)),
    };
    o.into_typed::<JsValue>()
}

/// The saved records (`[roomId, RoomRecord][]`).
fn records_of(records: &JsValue) -> Result<Vec<(Uuid, sotto_engine::RoomRecord)>> {
    let mut loaded = Vec::new();
    if !records.is_undefined() && !records.is_null() {
        let wrong = || Error::invalid_argument("records must be an array of [roomId, Uint8Array]");
        let list: js_sys::Array = records.clone().dyn_into().map_err(|_| wrong())?;
        for entry in list.iter() {
            let pair: js_sys::Array = entry.dyn_into().map_err(|_| wrong())?;
            let id = pair.get(0).as_string().ok_or_else(wrong)?;
            let bytes: js_sys::Uint8Array = pair.get(1).dyn_into().map_err(|_| wrong())?;
            let record = sotto_engine::RoomRecord::from_bytes(&bytes.to_vec())
                .map_err(|e| Error::malformed(e.to_string()))?;
            loaded.push((uuid(&id, "room")?, record));
        }
    }
    Ok(loaded)
}

#[wasm_bindgen]
impl RoomMembership {
    /// The rooms when a session opens (the engine's `Rooms::open`): the saved
    /// records (`[roomId, RoomRecord][]`), or (`records` null: the store
    /// never saved any) the rooms this device knew (`knownRooms`: those with
    /// a cursor) adopted as legacy rooms. Save `takeChanges()` next. Anything
    /// else than an array or null (`undefined` too) is refused: adopting
    /// would overwrite saved records.
    #[wasm_bindgen(constructor)]
    pub fn new(
        me: &str,
        #[wasm_bindgen(unchecked_param_type = "Array<[Uuid, RoomRecord]> | null")]
        records: &JsValue,
        #[wasm_bindgen(js_name = knownRooms)] known_rooms: Vec<String>,
    ) -> Result<RoomMembership> {
        let records = if records.is_null() {
            None
        } else if js_sys::Array::is_array(records) {
            Some(records_of(records)?)
        } else {
            return Err(Error::invalid_argument(
                "records must be an array of [roomId, Uint8Array], or null when the store never kept any",
            ));
        };
        let known = uuids(&known_rooms, "knownRooms")?;
        Ok(Self {
            inner: sotto_engine::Rooms::open(uuid(me, "me")?, records, known),
        })
    }

    /// The records again from the store (another tab changed them): every
    /// relay view forgotten, every view fetch under way overtaken.
    pub fn reload(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "Array<[Uuid, RoomRecord]>")] records: &JsValue,
    ) -> Result<()> {
        self.inner.reload(records_of(records)?);
        Ok(())
    }

    /// The records changed since the last call: `[roomId, RoomRecord | null][]`
    /// (`null`: delete). Save them before acting on what the step decided.
    #[wasm_bindgen(js_name = takeChanges, unchecked_return_type = "Array<[Uuid, RoomRecord | null]>")]
    pub fn take_changes(&mut self) -> JsValue {
        let out = js_sys::Array::new();
        for (id, record) in self.inner.take_changes() {
            let value: JsValue = match record {
                Some(r) => js::bytes(&r.to_bytes()).into(),
                None => JsValue::NULL,
            };
            out.push(&js_sys::Array::of2(
                &JsValue::from_str(&js::uuid_text(id)),
                &value,
            ));
        }
        out.into()
    }

    /// Forgets the relay's view of one room, or of all (`undefined`).
    #[wasm_bindgen(js_name = forgetRelayView)]
    pub fn forget_relay_view(&mut self, room: Option<String>) -> Result<()> {
        let room = room.map(|r| uuid(&r, "room")).transpose()?;
        self.inner.forget_relay_view(room);
        Ok(())
    }

    /// A room event of the relay (`change` as the `room` frame names it): the
    /// engine drops its view of the room (and, after `member_added`, the
    /// owner forwards its statement again); whether to fetch the room's view
    /// now and run the addressing's `maintain`.
    #[wasm_bindgen(js_name = roomChanged)]
    pub fn room_changed(
        &mut self,
        room: &str,
        #[wasm_bindgen(unchecked_param_type = "RoomChange")] change: &str,
    ) -> Result<bool> {
        // The wire's own names (serde's), as `ClientLink` hands them out.
        let change: sotto_core::api::RoomChange = serde_json::to_string(change)
            .ok()
            .and_then(|quoted| serde_json::from_str(&quoted).ok())
            .ok_or_else(|| Error::invalid_argument("change must be a RoomChange"))?;
        Ok(self.inner.room_changed(uuid(room, "room")?, change))
    }

    /// Hands the relay's `RoomDetails`, fetched for the addressing's `room`
    /// step under its `fetch` token, to the engine: the warnings to show, or
    /// `null` if a room event overtook the answer (not taken; the addressing
    /// asks again).
    #[wasm_bindgen(js_name = observeFetched, unchecked_return_type = "MembershipWarning[] | null")]
    pub fn observe_fetched(
        &mut self,
        fetch: f64,
        #[wasm_bindgen(unchecked_param_type = "RoomDetails")] details: JsValue,
    ) -> Result<JsValue> {
        let fetch = sotto_engine::membership::ViewFetch::from_number(js::safe_u64(fetch, "fetch")?);
        let Some(warnings) = self.inner.observe_fetched(fetch, view_of(&details)?) else {
            return Ok(JsValue::NULL);
        };
        let out = js_sys::Array::new();
        for w in &warnings {
            out.push(&warning(w));
        }
        Ok(out.into())
    }
}

/// An opened message's plaintext, decoded by the engine's content codec: the
/// app's content (anything this version does not know is `unknown`, never an
/// error), or a membership statement (a control message apps never see).
#[wasm_bindgen(js_name = decodePlaintext, unchecked_return_type = "DecodedPlaintext")]
pub fn decode_plaintext(plaintext: &[u8]) -> Result<JsValue> {
    Ok(match Plaintext::decode(plaintext) {
        Plaintext::Membership(s) => Obj::new()
            .set("kind", "membership")
            .set("statement", js::bytes(&s))
            .into_typed::<JsValue>(),
        Plaintext::Content(c) => Obj::new()
            .set("kind", "content")
            .set("content", js::to_js(&c)?)
            .into_typed::<JsValue>(),
    })
}

/// The plaintext of a message with `content` (the engine's content codec).
#[wasm_bindgen(js_name = encodeContentPlaintext)]
pub fn encode_content_plaintext(
    #[wasm_bindgen(unchecked_param_type = "PlaintextContent")] content: &JsValue,
) -> Result<Vec<u8>> {
    let content: sotto_engine::Content = js::from_js(content, "content")?;
    Ok(content.encode())
}
