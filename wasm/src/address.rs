//! The engine's addressing for the TypeScript client: `ClientAddressing`
//! (`sotto_engine::address::Addressing`, the native SDK's code): whom a
//! message is sealed to, and the membership statements posted first. The
//! client does what a step asks (fetch, read ahead, warn, post) and saves the
//! rooms' records after each step; the order and every decision are the
//! engine's.

use sotto_engine::address::{AddressError, Addressing, Need, Purpose, Signer};
use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::wasm_bindgen;

use crate::device::Device;
use crate::error::{Error, Result};
use crate::js::{self, Obj};
use crate::pins::{ClientPins, Served};
use crate::rooms::RoomMembership;

#[wasm_bindgen(typescript_custom_section)]
const TS_ADDRESS: &'static str = r#"
/** What a `ClientAddressing` is for. */
export type AddressPurpose =
  | { kind: "send" }
  | { kind: "maintain" }
  | { kind: "create"; members: Uuid[] }
  | { kind: "add"; userId: Uuid }
  | { kind: "withdraw"; userId: Uuid };
/** What `ClientAddressing.step` needs next (save the rooms' records first), or its end. */
export type AddressNeed =
  /** The relay's view of the room: fetch it, hand it to `RoomMembership.observeFetched` with `fetch`. */
  | { kind: "room"; fetch: number }
  /** These users' device lists. */
  | { kind: "devices"; users: Uuid[] }
  /** Open the room's messages after the cursor for their statements only. */
  | { kind: "readAhead" }
  /** Another statement's post in the room is under way: wait a moment (or until a post ends), then step again. */
  | { kind: "wait" }
  | { kind: "warn"; warning: MembershipWarning }
  /** Seal this statement's plaintext to `targets`, post it as a control message; then `posted` (stored or queued), or `postRefused`. */
  | { kind: "post"; plaintext: Uint8Array; targets: ServedDevice[] }
  /** The devices to seal to (empty unless sending). */
  | { kind: "done"; targets: ServedDevice[] }
  | {
      kind: "failed";
      reason: "direct_room_tampered" | "membership_pending" | "identity_changed" | "no_devices" | "keeps_changing" | "membership";
      users?: Uuid[];
      detail: string;
    };
"#;

/// One addressing of a room (see `sotto_engine::address`).
#[wasm_bindgen]
pub struct ClientAddressing {
    inner: Addressing<Served>,
}

fn ids(list: &[uuid::Uuid]) -> js_sys::Array {
    list.iter()
        .map(|u| JsValue::from_str(&js::uuid_text(*u)))
        .collect()
}

fn targets(list: Vec<Served>) -> js_sys::Array {
    list.into_iter().map(Served::into_js).collect()
}

#[wasm_bindgen]
impl ClientAddressing {
    /// Starts one for `room`.
    #[wasm_bindgen(constructor)]
    pub fn new(
        room: &str,
        #[wasm_bindgen(unchecked_param_type = "AddressPurpose")] purpose: JsValue,
    ) -> Result<ClientAddressing> {
        let kind = js::get_string(&purpose, "kind")?;
        let purpose = match kind.as_str() {
            "send" => Purpose::Send,
            "maintain" => Purpose::Maintain,
            "create" => {
                let members: Vec<String> = js_sys::Array::from(&js::get(&purpose, "members")?)
                    .iter()
                    .map(|v| v.as_string().unwrap_or_default())
                    .collect();
                Purpose::Create(js::parse_uuids(&members, "members")?)
            }
            "add" => Purpose::Add(js::get_uuid(&purpose, "userId")?),
            "withdraw" => Purpose::Withdraw(js::get_uuid(&purpose, "userId")?),
            _ => return Err(Error::invalid_argument("unknown addressing purpose")),
        };
        Ok(Self {
            inner: Addressing::new(js::parse_uuid(room, "room")?, purpose),
        })
    }

    /// Runs as far as it goes without the client.
    #[wasm_bindgen(unchecked_return_type = "AddressNeed")]
    pub fn step(
        &mut self,
        pins: &mut ClientPins,
        rooms: &mut RoomMembership,
        device: &Device,
    ) -> Result<JsValue> {
        let signer = Signer {
            device: device.device_uuid(),
            keys: device.keys(),
        };
        let (trust, devices) = pins.parts();
        let kind = |k: &str| Obj::new().set("kind", k);
        Ok(
            match self.inner.step(&signer, trust, devices, rooms.inner_mut()) {
                Need::Room(fetch) => kind("room").set("fetch", js::number(fetch.number())),
                Need::Devices(users) => kind("devices").set("users", ids(&users)),
                Need::ReadAhead => kind("readAhead"),
                Need::Wait => kind("wait"),
                Need::Warn(w) => kind("warn").set("warning", js::to_js(&w)?),
                Need::Post {
                    plaintext,
                    targets: t,
                } => kind("post")
                    .set("plaintext", js::bytes(&plaintext))
                    .set("targets", targets(t)),
                Need::Done(t) => kind("done").set("targets", targets(t)),
                Need::Failed(e) => {
                    let detail = e.to_string();
                    let (reason, users) = match e {
                        AddressError::DirectRoomTampered(u) => ("direct_room_tampered", Some(u)),
                        AddressError::MembershipPending => ("membership_pending", None),
                        AddressError::IdentityChanged(u) => ("identity_changed", Some(u)),
                        AddressError::NoDevices => ("no_devices", None),
                        AddressError::Membership(_) => ("membership", None),
                        _ => ("keeps_changing", None),
                    };
                    let o = kind("failed").set("reason", reason).set("detail", detail);
                    match users {
                        Some(u) => o.set("users", ids(&u)),
                        None => o,
                    }
                }
            }
            .into_typed::<JsValue>(),
        )
    }

    /// The addressing is over (done, failed or given up): a view of the room
    /// it fetched is kept only if this device is `online` and no room event
    /// overtook the fetch (the engine's rule).
    pub fn finish(&mut self, rooms: &mut RoomMembership, online: bool) {
        self.inner.finish(rooms.inner_mut(), online);
    }

    /// The last `post` is stored by the relay, or queued in the outbox.
    pub fn posted(&mut self, rooms: &mut RoomMembership) {
        self.inner.posted(rooms.inner_mut());
    }

    /// The last `post` was refused for good: its devices do not hold the
    /// statement (forwarded next time). The addressing ends.
    #[wasm_bindgen(js_name = postRefused)]
    pub fn post_refused(&mut self, rooms: &mut RoomMembership) {
        self.inner.post_refused(rooms.inner_mut());
    }
}
