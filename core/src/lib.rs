//! # sotto-core
//!
//! The end-to-end encryption core of Sotto: keys, sealed envelopes, attachment
//! encryption ([`attachment`]), key backup, safety numbers, trust-on-first-use,
//! and the relay's wire types ([`api`]).
//!
//! **Sans-I/O.** This crate performs no network or file I/O, reads no clock
//! and no environment: functions take bytes (or decoded values) and return bytes.
//! The only thing it asks the platform for is randomness, from the operating
//! system's CSPRNG (`getrandom`; `crypto.getRandomValues` in browsers).
//!
//! ```text
//!   application ──plaintext──► seal() ──envelope bytes──► (your transport) ──► relay
//!   relay ──► (your transport) ──envelope bytes──► open() ──plaintext──► application
//! ```
//!
//! The byte-level formats are specified in `docs/protocol.md`, with test vectors
//! in `core/tests/vectors/`.
//!
//! ## Example: Alice seals a message to Bob's two devices
//!
//! ```
//! use sotto_core::envelope::{self, Header, OpenContext, Recipient};
//! use sotto_core::keys::{DeviceBundle, DeviceKeyOptions, DeviceKeys, IdentityKeyPair};
//! use uuid::Uuid;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Alice: one identity, one device.
//! let (alice, alice_dev) = (Uuid::from_u128(0xa11ce), Uuid::from_u128(0xa11ce_01));
//! let alice_id = IdentityKeyPair::generate()?;
//! let alice_keys = DeviceKeys::generate(DeviceKeyOptions::default())?;
//! let alice_bundle = DeviceBundle::create(&alice_id, &alice_keys, alice, alice_dev)?;
//!
//! // Bob: one identity, two devices (a phone and a laptop).
//! let bob = Uuid::from_u128(0xb0b);
//! let bob_id = IdentityKeyPair::generate()?;
//! let phone = (Uuid::from_u128(0xb0b_01), DeviceKeys::generate(DeviceKeyOptions::default())?);
//! let laptop = (Uuid::from_u128(0xb0b_02), DeviceKeys::generate(DeviceKeyOptions::default())?);
//! let phone_bundle = DeviceBundle::create(&bob_id, &phone.1, bob, phone.0)?;
//! let laptop_bundle = DeviceBundle::create(&bob_id, &laptop.1, bob, laptop.0)?;
//!
//! // Alice verifies the bundles the relay served (against Bob's pinned identity key)...
//! let bob_phone = phone_bundle.verify_for(&bob_id.public_key())?;
//! let bob_laptop = laptop_bundle.verify_for(&bob_id.public_key())?;
//!
//! // ...and seals once for both devices.
//! let room = Uuid::from_u128(0x7002);
//! let header = Header {
//!     room_id: room,
//!     sender_user_id: alice,
//!     sender_device_id: alice_dev,
//!     client_message_id: Uuid::from_u128(1),
//!     timestamp_ms: 1_700_000_000_000,
//! };
//! let sealed = envelope::seal(
//!     b"hi Bob",
//!     &header,
//!     &[Recipient::x25519(&bob_phone), Recipient::x25519(&bob_laptop)],
//!     &alice_keys,
//! )?;
//! let bytes = sealed.to_bytes(); // what travels through the relay
//!
//! // Each of Bob's devices opens it, trusting Alice's verified device bundle.
//! let alice_device = alice_bundle.verify_for(&alice_id.public_key())?;
//! let ctx = OpenContext { room_id: room, sender: &alice_device };
//! for (device_id, keys) in [&phone, &laptop] {
//!     let opened = envelope::open(&bytes, *device_id, keys, &ctx)?;
//!     assert_eq!(&opened.plaintext[..], b"hi Bob");
//!     assert_eq!(opened.replay_id(), header.client_message_id);
//! }
//! # Ok(())
//! # }
//! ```

pub mod api;
pub mod attachment;
pub mod backup;
pub mod encoding;
pub mod envelope;
pub mod error;
pub mod keys;
pub mod membership;
pub mod primitives;
mod rng;
pub mod safety;
pub mod suite;
pub mod trust;

#[cfg(feature = "test-vectors")]
pub mod testing;

pub use error::{BackupError, BundleError, DecodeError, KeyError, OpenError, SealError};

/// The crate version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
