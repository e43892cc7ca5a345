//! The engine's open pipeline for the TypeScript client: `ClientOpening`
//! (`sotto_engine::open::Opening`, the native SDK's code). The client does
//! what a step asks (fetch a device list, ask the link's replay check) and
//! shows the outcome; every check and its order are the engine's.

use sotto_engine::feed::Seen;
use sotto_engine::link::Incoming;
use sotto_engine::open::{Me, Opening, Outcome, Step};
use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::wasm_bindgen;

use crate::device::Device;
use crate::error::{Error, Result};
use crate::js::{self, Obj};
use crate::pins::ClientPins;
use crate::rooms::RoomMembership;

#[wasm_bindgen(typescript_custom_section)]
const TS_OPEN: &'static str = r#"
/** What `ClientOpening.step` needs next, or its outcome. */
export type OpenStep =
  /** Make sure the user's device list is cached (fetch it), then step again; on failure `failed`. */
  | { kind: "fetch"; userId: Uuid }
  /** The link's replay check of the sender's message id (`ClientLink.seen`), then `seen` and step again. */
  | { kind: "seen"; senderId: Uuid; clientId: Uuid }
  /** Content for the app, as local history keeps it. */
  | { kind: "message"; item: HistoryItem }
  /** A membership statement (not the app's): taken, or refused with a warning. Save the rooms' changes. */
  | { kind: "control"; warning: MembershipWarning | null }
  | { kind: "undecryptable"; reason: "not_for_this_device" | "unknown_device" | "untrusted_sender" | "invalid" | "replayed" }
  /** Handled in a stored step already: settle it, show nothing. */
  | { kind: "again" }
  /** Cannot tell now: the cursor must not move. */
  | { kind: "later"; reason: string };
"#;

/// One message through the engine's open pipeline: peek, sender check (one
/// refetch for an unknown device), open, replay check, decode, and a
/// statement's signer check.
#[wasm_bindgen]
pub struct ClientOpening {
    inner: Opening,
}

#[wasm_bindgen]
impl ClientOpening {
    /// The message as the link handed it out (`statementsOnly`: read ahead
    /// of the live stream for its membership statement; no replay check, and
    /// content comes out as `again`).
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "LinkIncoming")] m: JsValue,
        #[wasm_bindgen(js_name = statementsOnly)] statements_only: bool,
    ) -> Result<ClientOpening> {
        let envelope = js_sys::Uint8Array::new(&js::get(&m, "envelope")?).to_vec();
        let seq = js::get(&m, "seq")?.as_f64().unwrap_or(f64::NAN);
        let m = Incoming {
            room_id: js::get_uuid(&m, "roomId")?,
            id: js::get_uuid(&m, "id")?,
            seq: js::safe_u64(seq, "seq")?,
            sender_id: js::get_uuid(&m, "senderId")?,
            device_id: js::get_uuid(&m, "deviceId")?,
            created_at: js::get_string(&m, "createdAt")?,
            envelope,
        };
        Ok(Self {
            inner: if statements_only {
                Opening::statements_only(m)
            } else {
                Opening::new(m)
            },
        })
    }

    /// Runs the pipeline as far as it goes without the client.
    #[wasm_bindgen(unchecked_return_type = "OpenStep")]
    pub fn step(
        &mut self,
        pins: &mut ClientPins,
        rooms: &mut RoomMembership,
        device: &Device,
    ) -> Result<JsValue> {
        let me = Me {
            user: device.user(),
            device: device.own(),
            keys: device.keys(),
        };
        let (trust, devices) = pins.parts();
        let kind = |k: &str| Obj::new().set("kind", k);
        Ok(
            match self.inner.step(&me, trust, devices, rooms.inner_mut()) {
                Step::Fetch(user) => kind("fetch").set("userId", js::uuid_text(user)),
                Step::Seen { sender, client_id } => kind("seen")
                    .set("senderId", js::uuid_text(sender))
                    .set("clientId", js::uuid_text(client_id)),
                Step::Done(Outcome::Message(item)) => {
                    kind("message").set("item", js::to_js(&item)?)
                }
                Step::Done(Outcome::Control(w)) => kind("control").set(
                    "warning",
                    match w {
                        Some(w) => js::to_js(&w)?,
                        None => JsValue::NULL,
                    },
                ),
                Step::Done(Outcome::Undecryptable(r)) => {
                    kind("undecryptable").set("reason", r.as_str())
                }
                Step::Done(Outcome::Again) => kind("again"),
                Step::Done(Outcome::Later(why)) => kind("later").set("reason", why),
            }
            .into_typed::<JsValue>(),
        )
    }

    /// The link's verdict (`"new" | "again" | "replay"`) for a `seen` step.
    pub fn seen(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "\"new\" | \"again\" | \"replay\"")] verdict: &str,
    ) -> Result<()> {
        self.inner.seen(match verdict {
            "new" => Seen::New,
            "again" => Seen::Again,
            "replay" => Seen::Replay,
            _ => {
                return Err(Error::invalid_argument(
                    "verdict must be new, again or replay",
                ));
            }
        });
        Ok(())
    }

    /// What a step asked could not be done (`why`): the outcome is `later`.
    pub fn failed(&mut self, why: String) {
        self.inner.failed(why);
    }
}
