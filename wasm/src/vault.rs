//! The store key and local history (`sotto_engine::vault`, the same code the
//! native SDK runs): `StoreVault`.

use sotto_core::backup;
use std::cell::RefCell;

use sotto_engine::vault::{HistoryKey, ReadAhead, StoreKey, VaultError};
use wasm_bindgen::prelude::wasm_bindgen;
use zeroize::Zeroizing;

use crate::device::{Device, backup_params};
use crate::error::{Code, Error, Result};
use crate::js;
use crate::types;

impl From<VaultError> for Error {
    fn from(e: VaultError) -> Self {
        let code = match e {
            VaultError::WrongPassphrase => Code::WrongKeyOrCorrupted,
            VaultError::EmptyPassphrase => Code::EmptyPassphrase,
            VaultError::BadParameters => Code::BadParameters,
            VaultError::Corrupted => Code::DecryptionFailed,
            VaultError::SecretsCorrupted => Code::WrongKeyOrCorrupted,
            _ => Code::Malformed,
        };
        Error::new(code, e.to_string())
    }
}

type OsRng = rand_core::UnwrapErr<getrandom::SysRng>;

fn os_rng() -> Result<OsRng> {
    let mut probe = [0u8; 1];
    getrandom::fill(&mut probe).map_err(|e| Error::new(Code::Rng, e.to_string()))?;
    Ok(rand_core::UnwrapErr(getrandom::SysRng))
}

/// A client store's secrets: the random store key (which the store
/// passphrase wraps), the device's secrets kept under it, and local history
/// sealed under a key derived from it. Secrets stay in WASM memory; `free()`
/// drops them.
#[wasm_bindgen]
pub struct StoreVault {
    key: StoreKey,
    history: HistoryKey,
    /// The nonces of history items: the OS RNG read ahead (one call per 64).
    nonces: RefCell<ReadAhead<OsRng>>,
}

impl StoreVault {
    fn new(key: StoreKey) -> Result<Self> {
        let history = key.history();
        let nonces = RefCell::new(ReadAhead::new(os_rng()?));
        Ok(Self {
            key,
            history,
            nonces,
        })
    }
}

#[wasm_bindgen]
impl StoreVault {
    /// A new random store key (the OS RNG).
    pub fn generate() -> Result<StoreVault> {
        let key = StoreKey::generate(&mut os_rng()?);
        Self::new(key)
    }

    /// Unwraps a stored key with the store passphrase (`wrong_key_or_corrupted`
    /// for a wrong passphrase or a modified blob).
    pub fn unwrap(wrapped: &[u8], passphrase: String) -> Result<StoreVault> {
        let passphrase = Zeroizing::new(passphrase);
        let key = StoreKey::unwrap(wrapped, passphrase.as_bytes())?;
        Self::new(key)
    }

    /// Unlocks a stored account (the engine's `StoreKey::unlock`, as the
    /// native SDK): the store key under the passphrase, then the device's
    /// secrets under it. A store from before the store key (`storeKey`
    /// undefined) holds a passphrase backup: opened so, and kept anew under
    /// a new store key (wrapped with `params`, default the core's), which
    /// `upgraded` carries for the caller to save.
    #[wasm_bindgen(js_name = unlockAccount)]
    pub fn unlock_account(
        #[wasm_bindgen(js_name = storeKey)] store_key: Option<Vec<u8>>,
        backup: &[u8],
        passphrase: String,
        params: Option<types::BackupParams>,
    ) -> Result<types::UnlockedAccount> {
        let passphrase = Zeroizing::new(passphrase);
        let params = backup_params(params.as_ref().map(AsRef::as_ref))?;
        let unlocked = StoreKey::unlock(
            store_key.as_deref(),
            backup,
            passphrase.as_bytes(),
            &params,
            &mut os_rng()?,
        )?;
        let device = Device::from_secrets(unlocked.secrets)?;
        let mut out = js::Obj::new()
            .set("vault", Self::new(unlocked.key)?)
            .set("device", device);
        if let Some(u) = unlocked.upgraded {
            let upgraded = js::Obj::new()
                .set("storeKey", js::bytes(&u.wrapped_key))
                .set("backup", js::bytes(&u.secrets));
            out = out.set("upgraded", upgraded.into_typed::<wasm_bindgen::JsValue>());
        }
        Ok(out.into_typed())
    }

    /// The key wrapped under `passphrase` (Argon2id; `params` default to the
    /// core's 64 MiB, t=3, p=1). Changing the passphrase is wrapping again.
    pub fn wrap(&self, passphrase: String, params: Option<types::BackupParams>) -> Result<Vec<u8>> {
        let passphrase = Zeroizing::new(passphrase);
        let params = backup_params(params.as_ref().map(AsRef::as_ref))?;
        Ok(self
            .key
            .wrap(passphrase.as_bytes(), &params, &mut os_rng()?)?)
    }

    /// The device's secrets as a key-backup blob under the store key.
    #[wasm_bindgen(js_name = exportDevice)]
    pub fn export_device(&self, device: &Device) -> Result<Vec<u8>> {
        Ok(backup::export_with_recovery_key(
            &device.secrets()?,
            &self.key.device_key(),
        )?)
    }

    /// The device kept by [`StoreVault::export_device`].
    #[wasm_bindgen(js_name = importDevice)]
    pub fn import_device(&self, blob: &[u8]) -> Result<Device> {
        Device::from_secrets(backup::import_with_recovery_key(
            blob,
            &self.key.device_key(),
        )?)
    }

    /// Seals a history item for the store, bound to `roomId` and `seq`:
    /// `json` is the UTF-8 JSON of a `HistoryItem` (the caller encodes it).
    #[wasm_bindgen(js_name = sealHistory)]
    pub fn seal_history(
        &self,
        #[wasm_bindgen(js_name = roomId)] room_id: &str,
        seq: f64,
        json: &[u8],
    ) -> Result<Vec<u8>> {
        let room = js::parse_uuid(room_id, "roomId")?;
        let seq = js::safe_u64(seq, "seq")?;
        let mut nonces = self
            .nonces
            .try_borrow_mut()
            .map_err(|_| Error::new(Code::Rng, "the RNG is in use"))?;
        Ok(self.history.seal_bytes(room, seq, json, &mut *nonces)?)
    }

    /// Opens the history item stored at `roomId`, `seq` to its JSON bytes
    /// (`decryption_failed` when it does not authenticate there); the caller
    /// checks that its `room_id` and `seq` are those.
    #[wasm_bindgen(js_name = openHistory)]
    pub fn open_history(
        &self,
        #[wasm_bindgen(js_name = roomId)] room_id: &str,
        seq: f64,
        sealed: &[u8],
    ) -> Result<Vec<u8>> {
        let room = js::parse_uuid(room_id, "roomId")?;
        let seq = js::safe_u64(seq, "seq")?;
        Ok(self.history.open_bytes(room, seq, sealed)?.to_vec())
    }
}
