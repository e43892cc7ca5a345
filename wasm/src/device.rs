//! The user's identity and one device's keys: `Device`. Secrets stay in WASM
//! memory; `free()` drops them, and the core key types zeroize on drop.

use sotto_core::backup::{self, BackupParams, DeviceSecrets, RecoveryKey};
use sotto_core::envelope::{self, Header, OpenContext};
use sotto_core::keys::{DeviceBundle, DeviceKeyOptions, DeviceKeys, IdentityKeyPair, RsaBits};
use sotto_core::suite::Suite;
use uuid::Uuid;
use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::wasm_bindgen;
use zeroize::Zeroizing;

use crate::error::{Code, Error, Result};
use crate::js::{self, Obj};
use crate::peer::VerifiedDevice;
use crate::types;

/// A user's identity key and one device's keys (Ed25519 signing, X25519, optional
/// RSA-OAEP), with the device's user and device ids.
#[wasm_bindgen]
pub struct Device {
    user_id: Uuid,
    device_id: Uuid,
    identity: IdentityKeyPair,
    keys: DeviceKeys,
    bundle: DeviceBundle,
    own: sotto_core::keys::VerifiedDevice,
}

impl Device {
    fn assemble(
        user_id: Uuid,
        device_id: Uuid,
        identity: IdentityKeyPair,
        keys: DeviceKeys,
    ) -> Result<Self> {
        let bundle = DeviceBundle::create(&identity, &keys, user_id, device_id)?;
        let own = bundle.verify()?;
        Ok(Self {
            user_id,
            device_id,
            identity,
            keys,
            bundle,
            own,
        })
    }

    pub(crate) fn from_secrets(s: DeviceSecrets) -> Result<Self> {
        Self::assemble(s.user_id, s.device_id, s.identity, s.device)
    }

    pub(crate) fn secrets(&self) -> Result<DeviceSecrets> {
        let rsa = self.keys.rsa_pkcs8_der()?;
        Ok(DeviceSecrets {
            user_id: self.user_id,
            device_id: self.device_id,
            identity: IdentityKeyPair::from_seed(&self.identity.to_seed()),
            device: DeviceKeys::from_secret_parts(
                &self.keys.signing_seed(),
                &self.keys.x25519_secret(),
                rsa.as_deref().map(Vec::as_slice),
            )?,
        })
    }

    /// The core device keys (for tests and benchmarks in Rust).
    pub fn keys(&self) -> &DeviceKeys {
        &self.keys
    }

    /// The user id.
    pub(crate) fn user(&self) -> Uuid {
        self.user_id
    }

    /// This device, verified (the sender of its own messages).
    pub(crate) fn own(&self) -> &sotto_core::keys::VerifiedDevice {
        &self.own
    }

    /// The device id.
    pub(crate) fn device_uuid(&self) -> Uuid {
        self.device_id
    }
}

/// `{ rsaBits?: 2048 | 3072 | 4096 }` → key options.
pub(crate) fn key_options(options: Option<&JsValue>) -> Result<DeviceKeyOptions> {
    let Some(options) = options.filter(|o| !o.is_undefined() && !o.is_null()) else {
        return Ok(DeviceKeyOptions::default());
    };
    js::object(options, "options")?;
    let rsa = match js::get_opt_number(options, "rsaBits")? {
        None => None,
        Some(bits) => Some(rsa_bits(bits)?),
    };
    Ok(DeviceKeyOptions { rsa })
}

/// An accepted RSA size, else `invalid_argument`.
pub(crate) fn rsa_bits(bits: f64) -> Result<RsaBits> {
    let n = js::safe_u64(bits, "rsaBits")?;
    usize::try_from(n)
        .ok()
        .and_then(RsaBits::from_bits)
        .ok_or_else(|| Error::invalid_argument("rsaBits must be 2048, 3072 or 4096"))
}

pub(crate) fn backup_params(params: Option<&JsValue>) -> Result<BackupParams> {
    let Some(params) = params.filter(|p| !p.is_undefined() && !p.is_null()) else {
        return Ok(BackupParams::default());
    };
    js::object(params, "params")?;
    let field = |key: &str| -> Result<u32> {
        let v = js::get_opt_number(params, key)?
            .ok_or_else(|| Error::invalid_argument(format!("params.{key} is required")))?;
        js::safe_u32(v, key)
    };
    Ok(BackupParams {
        m_cost_kib: field("mCostKib")?,
        t_cost: field("tCost")?,
        p_cost: field("pCost")?,
    })
}

/// `"x25519"` (default when absent) or `"rsa"`; anything else is `unsupported_suite`.
pub(crate) fn suite_arg(value: &JsValue) -> Result<Suite> {
    if value.is_undefined() || value.is_null() {
        return Ok(Suite::X25519);
    }
    let name = value
        .as_string()
        .ok_or_else(|| Error::invalid_argument("suite must be a string"))?;
    suite_by_name(&name)
}

/// The suite called `name`.
pub(crate) fn suite_by_name(name: &str) -> Result<Suite> {
    match name {
        "x25519" => Ok(Suite::X25519),
        "rsa" => Ok(Suite::Rsa),
        other => Err(Error::new(
            Code::UnsupportedSuite,
            format!("unknown suite `{other}` (x25519 or rsa)"),
        )),
    }
}

fn non_empty(passphrase: &str) -> Result<()> {
    if passphrase.is_empty() {
        return Err(sotto_core::BackupError::EmptyPassphrase.into());
    }
    Ok(())
}

#[wasm_bindgen]
impl Device {
    /// A new identity and new device keys (X25519 always; RSA-OAEP too when
    /// `rsaBits` is given) for `userId`/`deviceId`.
    pub fn generate(
        #[wasm_bindgen(js_name = userId)] user_id: &str,
        #[wasm_bindgen(js_name = deviceId)] device_id: &str,
        options: Option<types::DeviceOptions>,
    ) -> Result<Device> {
        let user_id = js::parse_uuid(user_id, "userId")?;
        let device_id = js::parse_uuid(device_id, "deviceId")?;
        let options = key_options(options.as_ref().map(AsRef::as_ref))?;
        let identity = IdentityKeyPair::generate()?;
        let keys = DeviceKeys::generate(options)?;
        Self::assemble(user_id, device_id, identity, keys)
    }

    /// The same identity with fresh device keys under a new device id (linking
    /// a second device).
    #[wasm_bindgen(js_name = withNewDeviceKeys)]
    pub fn with_new_device_keys(
        &self,
        #[wasm_bindgen(js_name = deviceId)] device_id: &str,
        options: Option<types::DeviceOptions>,
    ) -> Result<Device> {
        let device_id = js::parse_uuid(device_id, "deviceId")?;
        let options = key_options(options.as_ref().map(AsRef::as_ref))?;
        let keys = DeviceKeys::generate(options)?;
        let identity = IdentityKeyPair::from_seed(&self.identity.to_seed());
        Self::assemble(self.user_id, device_id, identity, keys)
    }

    /// Restores a device from a passphrase backup.
    #[wasm_bindgen(js_name = importPassphraseBackup)]
    pub fn import_passphrase_backup(blob: &[u8], passphrase: String) -> Result<Device> {
        let passphrase = Zeroizing::new(passphrase);
        non_empty(&passphrase)?;
        Self::from_secrets(backup::import_with_passphrase(blob, passphrase.as_bytes())?)
    }

    /// Restores a device from a recovery-key backup.
    #[wasm_bindgen(js_name = importRecoveryBackup)]
    pub fn import_recovery_backup(
        blob: &[u8],
        #[wasm_bindgen(js_name = recoveryKey)] recovery_key: String,
    ) -> Result<Device> {
        let text = Zeroizing::new(recovery_key);
        let key = RecoveryKey::parse(&text)?;
        Self::from_secrets(backup::import_with_recovery_key(blob, &key)?)
    }

    /// Encrypts this device's secrets under `passphrase` (Argon2id; `params`
    /// default to the core's 64 MiB, t=3, p=1).
    #[wasm_bindgen(js_name = exportPassphraseBackup)]
    pub fn export_passphrase_backup(
        &self,
        passphrase: String,
        params: Option<types::BackupParams>,
    ) -> Result<Vec<u8>> {
        let passphrase = Zeroizing::new(passphrase);
        let params = backup_params(params.as_ref().map(AsRef::as_ref))?;
        Ok(backup::export_with_passphrase(
            &self.secrets()?,
            passphrase.as_bytes(),
            &params,
        )?)
    }

    /// Encrypts this device's secrets under a fresh random recovery key; returns
    /// the blob and the key's text (show it once to the user).
    #[wasm_bindgen(js_name = exportRecoveryBackup)]
    pub fn export_recovery_backup(&self) -> Result<types::RecoveryBackup> {
        let key = RecoveryKey::generate()?;
        let blob = backup::export_with_recovery_key(&self.secrets()?, &key)?;
        let text = key.to_display_string();
        Ok(Obj::new()
            .set("blob", js::bytes(&blob))
            .set("recoveryKey", JsValue::from_str(&text))
            .into_typed())
    }

    /// The user (UUID).
    #[wasm_bindgen(getter, js_name = userId)]
    pub fn user_id(&self) -> String {
        js::uuid_text(self.user_id)
    }

    /// The device (UUID).
    #[wasm_bindgen(getter, js_name = deviceId)]
    pub fn device_id(&self) -> String {
        js::uuid_text(self.device_id)
    }

    /// The user's public Ed25519 identity key (32 bytes).
    #[wasm_bindgen(getter, js_name = identityKey)]
    pub fn identity_key(&self) -> Vec<u8> {
        self.identity.public_key().to_bytes().to_vec()
    }

    /// Whether the device has an RSA key (can receive the `rsa` suite).
    #[wasm_bindgen(getter, js_name = hasRsa)]
    pub fn has_rsa(&self) -> bool {
        self.own.has_rsa()
    }

    /// The signed public bundle to `PUT /api/v1/devices/{deviceId}`.
    pub fn bundle(&self) -> Result<types::DeviceBundle> {
        Ok(js::to_js(&self.bundle)?.into())
    }

    /// This device as a verified peer (to open its own messages, or seal to itself).
    pub fn verified(&self) -> VerifiedDevice {
        VerifiedDevice::new(self.own.clone())
    }

    /// Encrypts `plaintext` for every recipient and signs it with this device's
    /// key. The header's sender is this device. Returns the binary envelope.
    pub fn seal(
        &self,
        plaintext: Vec<u8>,
        header: types::SealHeader,
        recipients: types::RecipientList,
    ) -> Result<Vec<u8>> {
        let plaintext = Zeroizing::new(plaintext);
        let header: &JsValue = header.as_ref();
        js::object(header, "header")?;
        let header = Header {
            room_id: js::get_uuid(header, "roomId")?,
            sender_user_id: self.user_id,
            sender_device_id: self.device_id,
            client_message_id: js::get_uuid(header, "clientMessageId")?,
            timestamp_ms: js::safe_u64(
                js::get_opt_number(header, "timestampMs")?
                    .ok_or_else(|| Error::invalid_argument("`timestampMs` must be a number"))?,
                "timestampMs",
            )?,
        };
        let list: &JsValue = recipients.as_ref();
        if !js_sys::Array::is_array(list) {
            return Err(Error::invalid_argument("recipients must be an array"));
        }
        let list = js_sys::Array::from(list);
        let mut devices = Vec::with_capacity(list.length() as usize);
        for item in list.iter() {
            js::object(&item, "recipient")?;
            let device = VerifiedDevice::from_js(&js::get(&item, "device")?, "recipient.device")?;
            let suite = suite_arg(&js::get(&item, "suite")?)?;
            devices.push((device, suite));
        }
        let recipients: Vec<envelope::Recipient<'_>> = devices
            .iter()
            .map(|(d, s)| envelope::Recipient::new(d.inner(), *s))
            .collect();
        let sealed = envelope::seal(&plaintext, &header, &recipients, &self.keys)?;
        Ok(sealed.to_bytes())
    }

    /// Authenticates and decrypts an envelope for this device. `expected` is
    /// where the message arrived from: its room, and the sender device the caller
    /// trusts; the envelope must name both.
    pub fn open(&self, envelope: &[u8], expected: types::OpenExpected) -> Result<types::Opened> {
        let expected: &JsValue = expected.as_ref();
        js::object(expected, "expected")?;
        let room_id = js::get_uuid(expected, "roomId")?;
        let sender = VerifiedDevice::from_js(&js::get(expected, "sender")?, "expected.sender")?;
        let ctx = OpenContext {
            room_id,
            sender: sender.inner(),
        };
        let opened = envelope::open(envelope, self.device_id, &self.keys, &ctx)?;
        let suite = own_suite(envelope, self.device_id)?;
        let h = opened.header;
        Ok(Obj::new()
            .set("plaintext", js::bytes(&opened.plaintext))
            .set("roomId", js::uuid_text(h.room_id))
            .set("senderUserId", js::uuid_text(h.sender_user_id))
            .set("senderDeviceId", js::uuid_text(h.sender_device_id))
            .set("clientMessageId", js::uuid_text(h.client_message_id))
            .set("timestampMs", js::number(h.timestamp_ms))
            .set("suite", suite.name())
            .into_typed())
    }
}

/// The suite of `device`'s entry in an envelope that has just opened for it.
fn own_suite(envelope: &[u8], device: Uuid) -> Result<Suite> {
    let env = envelope::Envelope::from_bytes(envelope)?;
    env.recipients
        .iter()
        .find(|r| r.device_id == device)
        .map(|r| r.suite)
        .ok_or_else(|| Error::new(Code::NotARecipient, "this device is not a recipient"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_sizes() {
        assert_eq!(rsa_bits(2048.0), Ok(RsaBits::Rsa2048));
        assert_eq!(rsa_bits(4096.0), Ok(RsaBits::Rsa4096));
        for bad in [1024.0, 2048.5, -1.0] {
            assert_eq!(
                rsa_bits(bad).map_err(|e| e.code()),
                Err(Code::InvalidArgument)
            );
        }
    }

    #[test]
    fn suites_by_name() {
        assert_eq!(suite_by_name("x25519"), Ok(Suite::X25519));
        assert_eq!(suite_by_name("rsa"), Ok(Suite::Rsa));
        assert_eq!(
            suite_by_name("RSA").map_err(|e| e.code()),
            Err(Code::UnsupportedSuite)
        );
    }

    #[test]
    fn empty_passphrase_is_refused() {
        assert_eq!(
            non_empty("").map_err(|e| e.code()),
            Err(Code::EmptyPassphrase)
        );
        assert_eq!(non_empty("x"), Ok(()));
    }
}
