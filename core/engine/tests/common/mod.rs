//! What the engine's integration tests share: people with real keys, and a
//! served device as the cache takes it.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::rc::Rc;

use sotto_core::keys::{
    DeviceBundle, DeviceKeyOptions, DeviceKeys, IdentityKeyPair, VerifiedDevice,
};
use sotto_engine::devices::Known;
use uuid::Uuid;

/// A user with one device (real keys): user `n`, device `n << 8 | d`.
pub struct Person {
    pub id: Uuid,
    pub device: Uuid,
    pub identity: Rc<IdentityKeyPair>,
    pub keys: DeviceKeys,
}

impl Person {
    /// User `n` with a new identity and its device 1.
    pub fn new(n: u128) -> Self {
        Self::with_identity(n, 1, IdentityKeyPair::generate().unwrap().into())
    }

    /// User `n`'s device `d` under `identity` (another device of the same
    /// user, or an impostor's under another key).
    pub fn with_identity(n: u128, d: u128, identity: Rc<IdentityKeyPair>) -> Self {
        Self {
            id: Uuid::from_u128(n),
            device: Uuid::from_u128(n << 8 | d),
            identity,
            keys: DeviceKeys::generate(DeviceKeyOptions::default()).unwrap(),
        }
    }

    /// The device as a verified bundle.
    pub fn verified(&self) -> VerifiedDevice {
        DeviceBundle::create(&self.identity, &self.keys, self.id, self.device)
            .unwrap()
            .verify()
            .unwrap()
    }
}

/// `device` as a served list entry for `Devices::served`.
pub fn known(device: &VerifiedDevice, revoked_at: Option<String>) -> Known<VerifiedDevice> {
    Known {
        device_id: device.device_id(),
        identity_key: device.identity_key().to_bytes(),
        revoked_at,
        handle: device.clone(),
    }
}

impl Person {
    /// The device as the relay lists it (`GET …/devices`, `POST /keys/query`).
    pub fn served(&self, revoked_at: Option<&str>) -> sotto_core::api::devices::Device {
        sotto_core::api::devices::Device {
            device_id: self.device,
            user_id: self.id,
            display_name: None,
            bundle: DeviceBundle::create(&self.identity, &self.keys, self.id, self.device).unwrap(),
            created_at: "2026-01-01T00:00:00Z".into(),
            updated_at: "2026-01-01T00:00:00Z".into(),
            revoked_at: revoked_at.map(str::to_owned),
        }
    }
}
