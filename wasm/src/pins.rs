//! Trust on first use and the device-list cache for the TypeScript client:
//! the engine's [`sotto_engine::pins::Pins`] and
//! [`sotto_engine::devices::Devices`] (the native SDK's code). The client
//! fetches the relay's device lists, hands them over, persists the pin it gets
//! back and emits the events; the engine verifies the bundles, caches the
//! list and decides whom to seal to and which senders to trust.

use sotto_core::keys::DeviceBundle;
use sotto_engine::devices::{Devices, Fetch, Listed, Query};
use sotto_engine::open::SenderDevice;
use sotto_engine::pins::{Pin, Pins};
use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::wasm_bindgen;

use crate::error::{Error, Result};
use crate::js::{self, Obj};
use crate::peer::VerifiedDevice;

#[wasm_bindgen(typescript_custom_section)]
const TS_PINS: &'static str = r#"
/**
 * A verified device of a served list (`ClientPins.servedList`), as `list` and
 * the addressing's targets hand it back: the fields are the verified bundle's.
 */
export interface ServedDevice { userId: Uuid; deviceId: Uuid; identityKey: Uint8Array; hasRsa: boolean; revokedAt?: string; device: VerifiedDevice }
/** The next query of a device-list fetch (`ClientPins.query`): ask for `users` and hand each list to `servedList` under `fetch`, then ask again. */
export type DeviceQuery = { kind: "keys"; users: Uuid[]; fetch: number } | { kind: "done" } | { kind: "keepsChanging" };
/** What a served device list decided (`ClientPins.servedList`). */
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

/// Every pin of this device (the engine's `Pins`), and the device lists
/// cached in memory (the engine's `Devices`).
#[wasm_bindgen]
pub struct ClientPins {
    inner: Pins,
    devices: Devices<Served>,
}

/// A served device as the cache keeps it: the client's `ServedDevice` object
/// (handed back by `list` and as addressing targets), and its verified device (for the
/// engine's open pipeline).
#[derive(Clone)]
pub(crate) struct Served {
    js: JsValue,
    device: sotto_core::keys::VerifiedDevice,
}

impl SenderDevice for Served {
    fn verified(&self) -> &sotto_core::keys::VerifiedDevice {
        &self.device
    }
}

impl Served {
    /// The client's `ServedDevice` object.
    pub(crate) fn into_js(self) -> JsValue {
        self.js
    }
}

impl ClientPins {
    /// The pins and the device cache (for the open pipeline and addressing).
    pub(crate) fn parts(&mut self) -> (&Pins, &mut Devices<Served>) {
        (&self.inner, &mut self.devices)
    }
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
            devices: Devices::default(),
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

    /// The next query of a fetch of these users' device lists, after `asked`
    /// queries of it (the engine's `Devices::query`): the missing users, in
    /// chunks the relay takes; again for an overtaken answer; bounded.
    #[wasm_bindgen(unchecked_return_type = "DeviceQuery")]
    pub fn query(&self, users: Vec<String>, asked: u32) -> Result<JsValue> {
        let users = js::parse_uuids(&users, "userId")?;
        let kind = |k: &str| Obj::new().set("kind", k);
        Ok(match self.devices.query(&users, asked as usize) {
            Query::Keys { users, fetch } => {
                let list: js_sys::Array = users
                    .into_iter()
                    .map(|u| JsValue::from_str(&js::uuid_text(u)))
                    .collect();
                kind("keys")
                    .set("users", list)
                    .set("fetch", js::number(fetch.number()))
            }
            Query::Done => kind("done"),
            Query::KeepsChanging => kind("keepsChanging"),
        }
        .into_typed::<JsValue>())
    }

    /// Drops one user's cached list (`keys_changed`), or all (a new connection).
    pub fn forget(&mut self, user: Option<String>) -> Result<()> {
        let user = user.map(|u| js::parse_uuid(&u, "userId")).transpose()?;
        self.devices.forget(user);
        Ok(())
    }

    /// Takes `user`'s device list as the relay served it, fetched under
    /// `fetch`: the engine verifies each bundle (signatures, ids), decides
    /// pins and events, and caches the list unless overtaken.
    #[wasm_bindgen(js_name = servedList, unchecked_return_type = "ObservedDevices")]
    pub fn served_list(
        &mut self,
        user: &str,
        #[wasm_bindgen(unchecked_param_type = "RelayDevice[]")] list: JsValue,
        fetch: f64,
    ) -> Result<JsValue> {
        let user_id = js::parse_uuid(user, "userId")?;
        if !js_sys::Array::is_array(&list) {
            return Err(Error::invalid_argument("the device list must be an array"));
        }
        // Entry by entry, the fields the engine reads (no serde code for the
        // whole `Device`): one the relay garbled is rejected by its id, not
        // the whole list.
        let mut parsed: Vec<(uuid::Uuid, uuid::Uuid, DeviceBundle, Option<String>)> = Vec::new();
        let mut unreadable = Vec::new();
        for entry in js_sys::Array::from(&list).iter() {
            let read = || -> Result<_> {
                Ok((
                    js::get_uuid(&entry, "device_id")?,
                    js::get_uuid(&entry, "user_id")?,
                    js::from_js::<DeviceBundle>(&js::get(&entry, "bundle")?, "bundle")?,
                    match js::get(&entry, "revoked_at")? {
                        v if v.is_undefined() || v.is_null() => None,
                        // (Anything but a timestamp string: unreadable, as natively.)
                        v => Some(
                            v.as_string()
                                .ok_or_else(|| Error::malformed("revoked_at must be a string"))?,
                        ),
                    },
                ))
            };
            match read() {
                Ok(d) => parsed.push(d),
                Err(_) => {
                    if let Ok(id) = js::get_uuid(&entry, "device_id") {
                        unreadable.push(id);
                    }
                }
            }
        }
        let listed: Vec<Listed<'_>> = parsed
            .iter()
            .map(|(device_id, user_id, bundle, revoked_at)| Listed {
                device_id: *device_id,
                user_id: *user_id,
                bundle,
                revoked_at: revoked_at.as_deref(),
            })
            .collect();
        let fetch = Fetch::from_number(js::safe_u64(fetch, "fetch")?);
        let o = self.devices.served_list(
            &mut self.inner,
            user_id,
            &listed,
            &unreadable,
            fetch,
            |device, d| {
                let mut js = Obj::new()
                    .set("userId", js::uuid_text(device.user_id()))
                    .set("deviceId", js::uuid_text(device.device_id()))
                    .set("identityKey", js::bytes(&device.identity_key().to_bytes()))
                    .set("hasRsa", device.has_rsa());
                if let Some(at) = &d.revoked_at {
                    js = js.set("revokedAt", *at);
                }
                let js = js
                    .set("device", VerifiedDevice::new(device.clone()))
                    .into_typed::<JsValue>();
                Served { device, js }
            },
        );
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

    /// A user's cached list (trusted devices first), if cached.
    #[wasm_bindgen(unchecked_return_type = "ServedDevice[] | undefined")]
    pub fn list(&self, user: &str) -> Result<JsValue> {
        Ok(match self.devices.list(js::parse_uuid(user, "userId")?) {
            None => JsValue::UNDEFINED,
            Some(list) => list
                .iter()
                .map(|k| k.handle.js.clone())
                .collect::<js_sys::Array>()
                .into(),
        })
    }

    /// The user accepts the identity key `user`'s active devices in the
    /// cached list agree on: the pin to persist, or undefined when they do
    /// not agree on one key (or there is none).
    #[wasm_bindgen(unchecked_return_type = "{ key: Uint8Array; verified: boolean } | undefined")]
    pub fn accept(&mut self, user: &str) -> Result<JsValue> {
        let user = js::parse_uuid(user, "userId")?;
        Ok(match self.devices.agreed_key(user) {
            Some(key) => pin_js(self.inner.accept(user, key)),
            None => JsValue::UNDEFINED,
        })
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
