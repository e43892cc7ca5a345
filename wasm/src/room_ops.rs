//! The room operations for the TypeScript client: `ClientRoomOp`
//! (`sotto_engine::room_ops::RoomOperation`, the native SDK's code). The
//! engine says which relay call or addressing comes next, in its order; the
//! client makes the call, runs the addressing, shows the warnings and keeps
//! the relay's answers and errors.

use sotto_engine::address::Purpose;
use sotto_engine::room_ops::{Answer, Call, OpNeed, RoomOp, RoomOperation};
use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::wasm_bindgen;

use crate::error::{Error, Result};
use crate::js::{self, Obj};
use crate::rooms::{RoomMembership, view_of, warning};

#[wasm_bindgen(typescript_custom_section)]
const TS_ROOM_OPS: &'static str = r#"
/** A room operation (`ClientRoomOp`). */
export type RoomOpRequest =
  | { kind: "create"; members: Uuid[] }
  | { kind: "direct"; peer: Uuid }
  | { kind: "add" | "remove"; roomId: Uuid; userId: Uuid }
  | { kind: "accept"; invitation: Invitation };
/** What `ClientRoomOp.step` needs next (save the rooms' records first). */
export type RoomOpNeed =
  /** A relay call: answer `answered(rooms, details)` with the room's `RoomDetails` (null for add/remove), or `refused(rooms, code)` keeping the error. */
  | { kind: "createRoom" }
  | { kind: "directRoom"; userId: Uuid }
  | { kind: "addMember"; roomId: Uuid; userId: Uuid }
  | { kind: "removeMember"; roomId: Uuid; userId: Uuid }
  | { kind: "getRoom"; roomId: Uuid }
  | { kind: "acceptInvitation"; invitationId: Uuid }
  /** Run the addressing to its end, then `addressed(ok)` (on failure keep its error). */
  | { kind: "address"; roomId: Uuid; purpose: AddressPurpose }
  | { kind: "warn"; warning: MembershipWarning }
  /** Done: return the relay's last answer. */
  | { kind: "done" }
  /** Failed: throw the error kept. */
  | { kind: "failed" };
"#;

/// One room operation (see `sotto_engine::room_ops`).
#[wasm_bindgen]
pub struct ClientRoomOp {
    inner: RoomOperation,
}

fn purpose(p: &Purpose) -> JsValue {
    let o = Obj::new();
    match p {
        Purpose::Send => o.set("kind", "send"),
        Purpose::Maintain => o.set("kind", "maintain"),
        Purpose::Create(members) => o.set("kind", "create").set(
            "members",
            members
                .iter()
                .map(|u| JsValue::from_str(&js::uuid_text(*u)))
                .collect::<js_sys::Array>(),
        ),
        Purpose::Add(u) => o.set("kind", "add").set("userId", js::uuid_text(*u)),
        Purpose::Withdraw(u) => o.set("kind", "withdraw").set("userId", js::uuid_text(*u)),
    }
    .into_typed::<JsValue>()
}

#[wasm_bindgen]
impl ClientRoomOp {
    /// The operation `op` as user `me`.
    #[wasm_bindgen(constructor)]
    pub fn new(
        me: &str,
        #[wasm_bindgen(unchecked_param_type = "RoomOpRequest")] op: JsValue,
    ) -> Result<ClientRoomOp> {
        let op = match js::get_string(&op, "kind")?.as_str() {
            "create" => {
                let members: Vec<String> = js_sys::Array::from(&js::get(&op, "members")?)
                    .iter()
                    .map(|v| v.as_string().unwrap_or_default())
                    .collect();
                RoomOp::Create {
                    members: js::parse_uuids(&members, "members")?,
                }
            }
            "direct" => RoomOp::Direct {
                peer: js::get_uuid(&op, "peer")?,
            },
            "add" => RoomOp::Add {
                room: js::get_uuid(&op, "roomId")?,
                user: js::get_uuid(&op, "userId")?,
            },
            "remove" => RoomOp::Remove {
                room: js::get_uuid(&op, "roomId")?,
                user: js::get_uuid(&op, "userId")?,
            },
            "accept" => {
                let i = js::object(&js::get(&op, "invitation")?, "invitation")?.clone();
                let direct = js::get_string(&i, "room_kind")? == "direct";
                RoomOp::Accept {
                    invitation: js::get_uuid(&i, "id")?,
                    room: js::get_uuid(&i, "room_id")?,
                    direct_with: if direct {
                        Some(js::get_uuid(&js::get(&i, "inviter")?, "id")?)
                    } else {
                        None
                    },
                }
            }
            _ => return Err(Error::invalid_argument("unknown room operation")),
        };
        Ok(Self {
            inner: RoomOperation::new(js::parse_uuid(me, "me")?, op),
        })
    }

    /// What to do next.
    #[wasm_bindgen(unchecked_return_type = "RoomOpNeed")]
    pub fn step(&mut self, rooms: &mut RoomMembership) -> JsValue {
        let kind = |k: &str| Obj::new().set("kind", k);
        let id = |u: uuid::Uuid| js::uuid_text(u);
        match self.inner.step(rooms.inner_mut()) {
            OpNeed::Call(Call::CreateRoom) => kind("createRoom"),
            OpNeed::Call(Call::DirectRoom(u)) => kind("directRoom").set("userId", id(u)),
            OpNeed::Call(Call::AddMember { room, user }) => kind("addMember")
                .set("roomId", id(room))
                .set("userId", id(user)),
            OpNeed::Call(Call::RemoveMember { room, user }) => kind("removeMember")
                .set("roomId", id(room))
                .set("userId", id(user)),
            OpNeed::Call(Call::GetRoom(room)) => kind("getRoom").set("roomId", id(room)),
            OpNeed::Call(Call::AcceptInvitation(i)) => {
                kind("acceptInvitation").set("invitationId", id(i))
            }
            OpNeed::Address(room, p) => kind("address")
                .set("roomId", id(room))
                .set("purpose", purpose(&p)),
            OpNeed::Warn(w) => kind("warn").set("warning", warning(&w)),
            OpNeed::Done => kind("done"),
            OpNeed::Failed => kind("failed"),
        }
        .into_typed::<JsValue>()
    }

    /// The relay did the call: `details` the room it answered with (null
    /// when the call answers no room).
    pub fn answered(
        &mut self,
        rooms: &mut RoomMembership,
        #[wasm_bindgen(unchecked_param_type = "RoomDetails | null")] details: JsValue,
    ) -> Result<()> {
        let answer = if details.is_null() || details.is_undefined() {
            Answer::Ok
        } else {
            Answer::View(view_of(&details)?)
        };
        self.inner.answered(rooms.inner_mut(), answer);
        Ok(())
    }

    /// The relay refused the call with this problem `code` (undefined: it
    /// could not be reached); keep the error.
    pub fn refused(&mut self, rooms: &mut RoomMembership, code: Option<String>) {
        self.inner
            .answered(rooms.inner_mut(), Answer::refusal(code.as_deref()));
    }

    /// The addressing asked for ended (`ok`), or failed (keep its error).
    pub fn addressed(&mut self, ok: bool) {
        self.inner.addressed(ok);
    }
}
