//! Opening a session for the TypeScript client: `ClientSetUp`
//! (`sotto_engine::setup::SetUp`, the native SDK's code). The engine decides
//! the order and the checks (the store's account, the backup's account, this
//! device revoked, an account that has devices already); the client does the
//! key work, the store and the relay calls.

use sotto_engine::setup::{Mode, OwnDevice, SetUp, SetupError, SetupNeed};
use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::wasm_bindgen;

use crate::error::{Error, Result};
use crate::js::{self, Obj};

#[wasm_bindgen(typescript_custom_section)]
const TS_SETUP: &'static str = r#"
/** What `ClientSetUp.step` needs next. */
export type SetupStep =
  /** Unlock the stored account's keys (upgrading an old store), then `unlocked(deviceId)`. */
  | { kind: "unlock" }
  /** List this account's devices, revoked ones included, then `ownDevices(list)`. */
  | { kind: "ownDevices" }
  /** A new identity and device keys, then `generated(deviceId)`. */
  | { kind: "generate" }
  /** Open the key backup, then `backupOpened(userId, deviceId)`. */
  | { kind: "openBackup" }
  /** New device keys under the backup's identity, then `generated(deviceId)`. */
  | { kind: "newDeviceKeys" }
  /** Keep the device's keys in the store (a new store key under the passphrase), then `saved()`. */
  | { kind: "saveAccount" }
  /** Publish the device's bundle, then `uploaded()`. */
  | { kind: "upload" }
  | { kind: "done" }
  | { kind: "failed"; reason: "store_mismatch" | "identity_exists" | "device_revoked" | "out_of_order"; detail: string };
"#;

/// One session opening (see `sotto_engine::setup`).
#[wasm_bindgen]
pub struct ClientSetUp {
    inner: SetUp,
}

#[wasm_bindgen]
impl ClientSetUp {
    /// Opens `me`'s session: `stored` the user id of the account the store
    /// holds (undefined: none); `mode` used when it holds none.
    #[wasm_bindgen(constructor)]
    pub fn new(
        me: &str,
        stored: Option<String>,
        #[wasm_bindgen(unchecked_param_type = "\"new\" | \"link\" | \"restore\"")] mode: &str,
    ) -> Result<ClientSetUp> {
        let mode = match mode {
            "new" => Mode::New,
            "link" => Mode::Link,
            "restore" => Mode::Restore,
            _ => return Err(Error::invalid_argument("mode must be new, link or restore")),
        };
        let stored = stored.map(|u| js::parse_uuid(&u, "stored")).transpose()?;
        Ok(Self {
            inner: SetUp::new(js::parse_uuid(me, "me")?, stored, mode),
        })
    }

    /// What to do next.
    #[wasm_bindgen(unchecked_return_type = "SetupStep")]
    pub fn step(&mut self) -> JsValue {
        let kind = |k: &str| Obj::new().set("kind", k);
        match self.inner.step() {
            SetupNeed::Unlock => kind("unlock"),
            SetupNeed::OwnDevices => kind("ownDevices"),
            SetupNeed::Generate => kind("generate"),
            SetupNeed::OpenBackup => kind("openBackup"),
            SetupNeed::NewDeviceKeys => kind("newDeviceKeys"),
            SetupNeed::SaveAccount => kind("saveAccount"),
            SetupNeed::Upload => kind("upload"),
            SetupNeed::Done => kind("done"),
            SetupNeed::Failed(e) => kind("failed")
                .set(
                    "reason",
                    match e {
                        SetupError::StoreMismatch(_) => "store_mismatch",
                        SetupError::IdentityExists => "identity_exists",
                        SetupError::DeviceRevoked => "device_revoked",
                        _ => "out_of_order",
                    },
                )
                .set("detail", e.to_string()),
        }
        .into_typed::<JsValue>()
    }

    /// The stored keys opened: this device's id.
    pub fn unlocked(&mut self, device: &str) -> Result<()> {
        self.inner.unlocked(js::parse_uuid(device, "deviceId")?);
        Ok(())
    }

    /// The account's devices as the relay lists them (`RelayDevice[]`, revoked ones included).
    #[wasm_bindgen(js_name = ownDevices)]
    pub fn own_devices(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "RelayDevice[]")] list: JsValue,
    ) -> Result<()> {
        let mut own = Vec::new();
        for d in js_sys::Array::from(&list).iter() {
            let revoked = js::get(&d, "revoked_at")?;
            own.push(OwnDevice {
                device_id: js::get_uuid(&d, "device_id")?,
                revoked: !(revoked.is_undefined() || revoked.is_null()),
            });
        }
        self.inner.own_devices(own);
        Ok(())
    }

    /// Keys were made for `deviceId` (`generate`, `newDeviceKeys`).
    pub fn generated(&mut self, device: &str) -> Result<()> {
        self.inner.generated(js::parse_uuid(device, "deviceId")?);
        Ok(())
    }

    /// The backup opened: the account and the device it holds.
    #[wasm_bindgen(js_name = backupOpened)]
    pub fn backup_opened(&mut self, user: &str, device: &str) -> Result<()> {
        self.inner.backup_opened(
            js::parse_uuid(user, "userId")?,
            js::parse_uuid(device, "deviceId")?,
        );
        Ok(())
    }

    /// The keys are in the store.
    pub fn saved(&mut self) {
        self.inner.saved();
    }

    /// The bundle is published.
    pub fn uploaded(&mut self) {
        self.inner.uploaded();
    }
}
