//! Keys: a user's identity key, a device's secret keys, and the signed public
//! device bundle that the relay stores and serves.
//!
//! ```text
//! IdentityKeyPair (Ed25519, one per user)
//!   └─ signs ─► DeviceBundle { user_id, device_id, signing key (Ed25519),
//!                              x25519 key, optional RSA SPKI }
//! DeviceKeys (per device, secret) ── public halves ─► DeviceBundle
//! DeviceBundle::verify() ─► VerifiedDevice   (the only thing `seal`/`open` accept)
//! ```

mod bundle;
mod device;
mod identity;

pub use bundle::{
    BUNDLE_VERSION, DeviceBundle, MAX_RSA_SPKI_LEN, VerifiedDevice, rsa_spki_der_from_pem,
    rsa_spki_pem_from_der,
};
pub use device::{DeviceKeyOptions, DeviceKeys, RsaBits};
pub use identity::{IdentityKeyPair, IdentityPublicKey};
