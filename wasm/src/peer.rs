//! Peers: `VerifiedDevice` (a device whose bundle verified) and `verifyBundle`.

use sotto_core::keys::{self, IdentityPublicKey};
use wasm_bindgen::convert::TryFromJsValue;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};

use crate::error::{Error, Result};
use crate::js;
use crate::types;

/// A device whose bundle verified: its keys are well formed and bound to its
/// user's identity key by valid signatures. Only `verifyBundle` and
/// `Device.verified()` create one; `seal` and `open` accept nothing else.
#[wasm_bindgen]
#[derive(Clone)]
pub struct VerifiedDevice {
    inner: keys::VerifiedDevice,
}

impl VerifiedDevice {
    pub(crate) fn new(inner: keys::VerifiedDevice) -> Self {
        Self { inner }
    }

    /// The core type.
    pub fn inner(&self) -> &keys::VerifiedDevice {
        &self.inner
    }

    /// The Rust value behind a JavaScript `VerifiedDevice`, without consuming
    /// the JavaScript object (wasm-bindgen's own conversion would take it over
    /// and leave it freed): asks the object for a copy of itself.
    pub(crate) fn from_js(value: &JsValue, what: &str) -> Result<Self> {
        let wrong = || Error::invalid_argument(format!("{what} must be a VerifiedDevice"));
        if !value.is_object() {
            return Err(wrong());
        }
        let copy: js_sys::Function = js::get(value, COPY_METHOD)?
            .dyn_into()
            .map_err(|_| wrong())?;
        // Throws when the object was freed: the caller passed a dead handle.
        let handle = copy.call0(value).map_err(|_| wrong())?;
        Self::try_from_js_value(handle).map_err(|_| wrong())
    }
}

/// Name of the hidden method [`VerifiedDevice::from_js`] calls.
const COPY_METHOD: &str = "__sottoCopy";

#[wasm_bindgen]
impl VerifiedDevice {
    /// A copy of this handle (internal: how the bindings read a `VerifiedDevice`
    /// out of a plain object such as a `Recipient`).
    #[wasm_bindgen(js_name = "__sottoCopy", skip_typescript)]
    pub fn copy_handle(&self) -> VerifiedDevice {
        self.clone()
    }

    /// The owning user (UUID).
    #[wasm_bindgen(getter, js_name = userId)]
    pub fn user_id(&self) -> String {
        js::uuid_text(self.inner.user_id())
    }

    /// The device (UUID).
    #[wasm_bindgen(getter, js_name = deviceId)]
    pub fn device_id(&self) -> String {
        js::uuid_text(self.inner.device_id())
    }

    /// The user's Ed25519 identity key (32 bytes) that signed the bundle.
    #[wasm_bindgen(getter, js_name = identityKey)]
    pub fn identity_key(&self) -> Vec<u8> {
        self.inner.identity_key().to_bytes().to_vec()
    }

    /// The device's Ed25519 signing key (32 bytes).
    #[wasm_bindgen(getter, js_name = signingKey)]
    pub fn signing_key(&self) -> Vec<u8> {
        self.inner.signing_key().to_vec()
    }

    /// The device's X25519 key (32 bytes).
    #[wasm_bindgen(getter, js_name = x25519Key)]
    pub fn x25519_key(&self) -> Vec<u8> {
        self.inner.x25519_key().to_vec()
    }

    /// Whether the device can receive the `rsa` suite.
    #[wasm_bindgen(getter, js_name = hasRsa)]
    pub fn has_rsa(&self) -> bool {
        self.inner.has_rsa()
    }
}

/// Checks every field and both signatures of a bundle the relay served; with
/// `pinnedIdentityKey`, also that the pinned identity key signed it.
#[wasm_bindgen(js_name = verifyBundle)]
pub fn verify_bundle(
    bundle: types::DeviceBundle,
    #[wasm_bindgen(js_name = pinnedIdentityKey)] pinned_identity_key: Option<Vec<u8>>,
) -> Result<VerifiedDevice> {
    let bundle: keys::DeviceBundle = js::from_js(&bundle, "bundle")?;
    let verified = match pinned_identity_key {
        Some(pinned) => bundle.verify_for(&identity_key(&pinned)?)?,
        None => bundle.verify()?,
    };
    Ok(VerifiedDevice::new(verified))
}

/// Parses a 32-byte Ed25519 identity key.
pub(crate) fn identity_key(bytes: &[u8]) -> Result<IdentityPublicKey> {
    Ok(IdentityPublicKey::from_bytes(bytes)?)
}
