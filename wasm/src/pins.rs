//! Trust on first use for the TypeScript client: the engine's
//! [`sotto_engine::pins::Pins`] (the native SDK's code). The client fetches
//! and verifies bundles, hands the list over, persists the pin it gets back
//! and emits the events.

use sotto_engine::pins::{Pin, Pins, ServedDevice};
use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::wasm_bindgen;

use crate::error::{Error, Result};
use crate::js::{self, Obj};

#[wasm_bindgen(typescript_custom_section)]
const TS_PINS: &'static str = r#"
/** A verified device of a served list, for `ClientPins.observe`. */
export interface ServedDevice { deviceId: Uuid; identityKey: Uint8Array; revoked: boolean }
/** What observing a served device list decided (`ClientPins.observe`). */
export interface ObservedDevices {
  /** A pin made now (first contact): persist it. */
  pinned?: { key: Uint8Array; verified: boolean };
  /** Identity changes to report (each once): whether the replaced pin was verified. */
  identityChanged: boolean[];
  /** Devices to report as rejected (each once). */
  rejected: Uuid[];
  /** The served devices under the pinned key. */
  trusted: Uuid[];
}
"#;

/// Every pin of this device (the engine's `Pins`).
#[wasm_bindgen]
pub struct ClientPins {
    inner: Pins,
}

fn key32(bytes: &[u8], what: &str) -> Result<[u8; 32]> {
    <[u8; 32]>::try_from(bytes)
        .map_err(|_| Error::invalid_argument(format!("{what} must be 32 bytes")))
}

fn pin_js(p: Pin) -> JsValue {
    Obj::new()
        .set("key", js::bytes(&p.key))
        .set("verified", p.verified)
        .into_typed::<JsValue>()
}

fn ids(list: &[uuid::Uuid]) -> js_sys::Array {
    let out = js_sys::Array::new();
    for id in list {
        out.push(&JsValue::from_str(&js::uuid_text(*id)));
    }
    out
}

#[wasm_bindgen]
impl ClientPins {
    /// The pins a store kept (`[userId, {key, verified}]` pairs), with this
    /// user's own key pinned and verified.
    #[wasm_bindgen(constructor)]
    pub fn new(
        me: &str,
        #[wasm_bindgen(js_name = myKey)] my_key: &[u8],
        #[wasm_bindgen(
            unchecked_param_type = "Array<[Uuid, { key: Uint8Array; verified: boolean }]>"
        )]
        stored: JsValue,
    ) -> Result<ClientPins> {
        let mut pins = Vec::new();
        for pair in js_sys::Array::from(&stored).iter() {
            let pair = js_sys::Array::from(&pair);
            let user = js::parse_uuid(&pair.get(0).as_string().unwrap_or_default(), "pin user")?;
            let p = pair.get(1);
            let key = js_sys::Uint8Array::new(&js::get(&p, "key")?).to_vec();
            let verified = js::get(&p, "verified")?.as_bool().unwrap_or(false);
            pins.push((
                user,
                Pin {
                    key: key32(&key, "pin key")?,
                    verified,
                },
            ));
        }
        Ok(Self {
            inner: Pins::load(js::parse_uuid(me, "me")?, key32(my_key, "myKey")?, pins),
        })
    }

    /// The pins again from the store (`[userId, {key, verified}]` pairs),
    /// keeping what was reported and who is changed.
    pub fn reload(
        &mut self,
        me: &str,
        #[wasm_bindgen(js_name = myKey)] my_key: &[u8],
        #[wasm_bindgen(
            unchecked_param_type = "Array<[Uuid, { key: Uint8Array; verified: boolean }]>"
        )]
        stored: JsValue,
    ) -> Result<()> {
        let fresh = Self::new(me, my_key, stored)?;
        let me = js::parse_uuid(me, "me")?;
        let my_key = key32(my_key, "myKey")?;
        let pins: Vec<(uuid::Uuid, Pin)> = fresh.inner.all().collect();
        self.inner.reload(me, my_key, pins);
        Ok(())
    }

    /// The leading tab reported an identity change of `user`.
    #[wasm_bindgen(js_name = changedElsewhere)]
    pub fn changed_elsewhere(&mut self, user: &str) -> Result<()> {
        self.inner
            .changed_elsewhere(js::parse_uuid(user, "userId")?);
        Ok(())
    }

    /// A user's pin.
    #[wasm_bindgen(unchecked_return_type = "{ key: Uint8Array; verified: boolean } | undefined")]
    pub fn pin(&self, user: &str) -> Result<JsValue> {
        Ok(self
            .inner
            .pin(js::parse_uuid(user, "userId")?)
            .map_or(JsValue::UNDEFINED, pin_js))
    }

    /// A user's trust state.
    #[wasm_bindgen(
        unchecked_return_type = "\"unknown\" | \"unverified\" | \"verified\" | \"changed\""
    )]
    pub fn trust(&self, user: &str) -> Result<String> {
        Ok(self
            .inner
            .trust(js::parse_uuid(user, "userId")?)
            .as_str()
            .to_owned())
    }

    /// Takes a served device list of `user` (`served`: the devices whose
    /// bundle verified; `invalid`: the others).
    #[wasm_bindgen(unchecked_return_type = "ObservedDevices")]
    pub fn observe(
        &mut self,
        user: &str,
        #[wasm_bindgen(unchecked_param_type = "ServedDevice[]")] served: JsValue,
        invalid: Vec<String>,
    ) -> Result<JsValue> {
        let mut list = Vec::new();
        for d in js_sys::Array::from(&served).iter() {
            let key = js_sys::Uint8Array::new(&js::get(&d, "identityKey")?).to_vec();
            list.push(ServedDevice {
                device_id: js::get_uuid(&d, "deviceId")?,
                identity_key: key32(&key, "identityKey")?,
                revoked: js::get(&d, "revoked")?.as_bool().unwrap_or(false),
            });
        }
        let invalid = invalid
            .iter()
            .map(|d| js::parse_uuid(d, "device id"))
            .collect::<Result<Vec<_>>>()?;
        let o = self
            .inner
            .observe(js::parse_uuid(user, "userId")?, &list, &invalid);
        let changed = js_sys::Array::new();
        for v in &o.identity_changed {
            changed.push(&JsValue::from_bool(*v));
        }
        let mut out = Obj::new()
            .set("identityChanged", changed)
            .set("rejected", ids(&o.rejected))
            .set("trusted", ids(&o.trusted));
        if let Some(p) = o.pinned {
            out = out.set("pinned", pin_js(p));
        }
        Ok(out.into_typed::<JsValue>())
    }

    /// The user accepted `key` for `user`: returns the pin to persist.
    #[wasm_bindgen(unchecked_return_type = "{ key: Uint8Array; verified: boolean }")]
    pub fn accept(&mut self, user: &str, key: &[u8]) -> Result<JsValue> {
        Ok(pin_js(self.inner.accept(
            js::parse_uuid(user, "userId")?,
            key32(key, "key")?,
        )))
    }

    /// Marks `user`'s pin verified: the pin to persist, or undefined.
    #[wasm_bindgen(js_name = markVerified, unchecked_return_type = "{ key: Uint8Array; verified: boolean } | undefined")]
    pub fn mark_verified(&mut self, user: &str) -> Result<JsValue> {
        Ok(self
            .inner
            .mark_verified(js::parse_uuid(user, "userId")?)
            .map_or(JsValue::UNDEFINED, pin_js))
    }
}
