//! Fixtures shared by the core's integration tests: users with devices, an
//! in-memory "two parties, no relay" harness.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use sotto_core::envelope::Header;
use sotto_core::keys::{
    DeviceBundle, DeviceKeyOptions, DeviceKeys, IdentityKeyPair, RsaBits, VerifiedDevice,
};
use uuid::Uuid;

pub struct Device {
    pub id: Uuid,
    pub keys: DeviceKeys,
    pub bundle: DeviceBundle,
    pub verified: VerifiedDevice,
}

pub struct User {
    pub id: Uuid,
    pub identity: IdentityKeyPair,
    pub devices: Vec<Device>,
}

impl User {
    pub fn new(id: u128) -> Self {
        Self {
            id: Uuid::from_u128(id),
            identity: IdentityKeyPair::generate().unwrap(),
            devices: vec![],
        }
    }

    pub fn add_device(&mut self, id: u128, rsa: Option<RsaBits>) -> &Device {
        let keys = DeviceKeys::generate(DeviceKeyOptions { rsa }).unwrap();
        self.push_device(id, keys)
    }

    pub fn push_device(&mut self, id: u128, keys: DeviceKeys) -> &Device {
        let id = Uuid::from_u128(id);
        let bundle = DeviceBundle::create(&self.identity, &keys, self.id, id).unwrap();
        let verified = bundle.verify_for(&self.identity.public_key()).unwrap();
        self.devices.push(Device {
            id,
            keys,
            bundle,
            verified,
        });
        self.devices.last().unwrap()
    }

    pub fn header(&self, device: usize, room: Uuid, msg: u128) -> Header {
        Header {
            room_id: room,
            sender_user_id: self.id,
            sender_device_id: self.devices[device].id,
            client_message_id: Uuid::from_u128(msg),
            timestamp_ms: 1_763_700_000_000,
        }
    }
}

pub fn room(n: u128) -> Uuid {
    Uuid::from_u128(0x7000_0000 + n)
}
