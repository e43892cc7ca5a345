use rsa::RsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::device::{check_rsa_public, rsa_spki_der};
use super::{DeviceKeys, IdentityKeyPair, IdentityPublicKey};
use crate::encoding::{B64, Writer};
use crate::error::{BundleError, DecodeError, KeyError};
use crate::primitives;

/// The only bundle format version.
pub const BUNDLE_VERSION: u8 = 1;
/// Upper bound on an RSA SPKI DER (a 4096-bit key is 550 bytes).
pub const MAX_RSA_SPKI_LEN: usize = 1024;

const IDENTITY_SIG_CONTEXT: &[u8] = b"SOTTO-v1 device-bundle identity-signature\0";
const DEVICE_SIG_CONTEXT: &[u8] = b"SOTTO-v1 device-bundle device-signature\0";

/// A device's public keys, signed by the user's identity key (and by the
/// device's own signing key, proving possession). This is what the relay stores
/// and serves; all binary fields are base64url without padding in JSON.
///
/// A `DeviceBundle` is untrusted input until [`DeviceBundle::verify`] turns it
/// into a [`VerifiedDevice`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct DeviceBundle {
    /// Format version, [`BUNDLE_VERSION`].
    pub version: u8,
    /// The user the device belongs to.
    pub user_id: Uuid,
    /// The device.
    pub device_id: Uuid,
    /// The user's Ed25519 identity key (32 bytes).
    pub identity_key: B64,
    /// The device's Ed25519 signing key (32 bytes).
    pub signing_key: B64,
    /// The device's X25519 key (32 bytes).
    pub x25519_key: B64,
    /// The device's RSA key as SPKI DER, if it supports the `rsa` suite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub rsa_key: Option<B64>,
    /// Ed25519 signature by the identity key (64 bytes).
    pub identity_signature: B64,
    /// Ed25519 signature by the device signing key (64 bytes).
    pub device_signature: B64,
}

impl DeviceBundle {
    /// Builds and signs the bundle of `device` for `user_id`/`device_id` under `identity`.
    pub fn create(
        identity: &IdentityKeyPair,
        device: &DeviceKeys,
        user_id: Uuid,
        device_id: Uuid,
    ) -> Result<Self, KeyError> {
        let identity_key = identity.public_key().to_bytes();
        let signing_key = device.signing_public();
        let x25519_key = device.x25519_public();
        let rsa_key = match &device.rsa {
            Some(k) => Some(rsa_spki_der(k.as_public_key())?),
            None => None,
        };
        let body = signed_body(
            BUNDLE_VERSION,
            user_id,
            device_id,
            &identity_key,
            &signing_key,
            &x25519_key,
            rsa_key.as_deref(),
        )?;
        let identity_signature = identity.sign(&[IDENTITY_SIG_CONTEXT, &body].concat());
        let device_signature = device.sign(&[DEVICE_SIG_CONTEXT, &body].concat());
        Ok(Self {
            version: BUNDLE_VERSION,
            user_id,
            device_id,
            identity_key: B64(identity_key.to_vec()),
            signing_key: B64(signing_key.to_vec()),
            x25519_key: B64(x25519_key.to_vec()),
            rsa_key: rsa_key.map(B64),
            identity_signature: B64(identity_signature.to_vec()),
            device_signature: B64(device_signature.to_vec()),
        })
    }

    /// Checks every field and both signatures. On success the bundle's keys can be used.
    pub fn verify(&self) -> Result<VerifiedDevice, BundleError> {
        if self.version != BUNDLE_VERSION {
            return Err(DecodeError::UnsupportedVersion(self.version).into());
        }
        let identity = IdentityPublicKey::from_bytes(self.identity_key.as_bytes())?;
        let signing: [u8; 32] = primitives::ed25519_public(self.signing_key.as_bytes())
            .map_err(|_| DecodeError::InvalidKey("signing key is not a valid Ed25519 public key"))?
            .to_bytes();
        let x25519: [u8; 32] = self
            .x25519_key
            .as_bytes()
            .try_into()
            .map_err(|_| DecodeError::InvalidKey("X25519 key must be 32 bytes"))?;
        if !primitives::x25519_is_canonical(&x25519) {
            return Err(DecodeError::InvalidKey("X25519 key is not canonically encoded").into());
        }
        primitives::x25519_check_public(&x25519)
            .map_err(|_| DecodeError::InvalidKey("X25519 key has small order"))?;
        let rsa = match &self.rsa_key {
            Some(der) => Some(parse_rsa_spki(der.as_bytes())?),
            None => None,
        };
        let body = signed_body(
            self.version,
            self.user_id,
            self.device_id,
            &identity.to_bytes(),
            &signing,
            &x25519,
            self.rsa_key.as_ref().map(B64::as_bytes),
        )?;
        if !identity.verify(
            &[IDENTITY_SIG_CONTEXT, &body].concat(),
            self.identity_signature.as_bytes(),
        ) {
            return Err(BundleError::BadIdentitySignature);
        }
        if primitives::ed25519_verify(
            &signing,
            &[DEVICE_SIG_CONTEXT, &body].concat(),
            self.device_signature.as_bytes(),
        )
        .is_err()
        {
            return Err(BundleError::BadDeviceSignature);
        }
        Ok(VerifiedDevice {
            user_id: self.user_id,
            device_id: self.device_id,
            identity,
            signing,
            x25519,
            rsa: rsa.map(Box::new),
        })
    }

    /// Like [`DeviceBundle::verify`], and also requires the bundle to be signed by `expected`
    /// (the identity key the caller pinned for this user).
    pub fn verify_for(&self, expected: &IdentityPublicKey) -> Result<VerifiedDevice, BundleError> {
        let verified = self.verify()?;
        if verified.identity != *expected {
            return Err(BundleError::IdentityMismatch);
        }
        Ok(verified)
    }

    /// Parses a bundle from JSON (strict: unknown fields rejected) and verifies it.
    pub fn from_json_verified(json: &str) -> Result<VerifiedDevice, BundleError> {
        let bundle: DeviceBundle =
            serde_json::from_str(json).map_err(|e| DecodeError::Json(e.to_string()))?;
        bundle.verify()
    }
}

/// Imports an RSA public key from SPKI PEM (`-----BEGIN PUBLIC KEY-----`), validated
/// like a bundle's key (2048/3072/4096 bits, e = 65537, canonical rsaEncryption), and
/// returns its SPKI DER as used in [`DeviceBundle::rsa_key`].
pub fn rsa_spki_der_from_pem(pem: &str) -> Result<Vec<u8>, DecodeError> {
    if pem.len() > 4 * MAX_RSA_SPKI_LEN {
        return Err(DecodeError::TooLarge);
    }
    let key = RsaPublicKey::from_public_key_pem(pem.trim())
        .map_err(|_| DecodeError::InvalidKey("not an SPKI PEM RSA public key"))?;
    let der = rsa_spki_der(&key)
        .map_err(|_| DecodeError::InvalidKey("RSA public key does not encode"))?;
    parse_rsa_spki(&der)?;
    Ok(der)
}

/// Exports a validated RSA SPKI DER as PEM (LF line endings).
pub fn rsa_spki_pem_from_der(der: &[u8]) -> Result<String, DecodeError> {
    use rsa::pkcs8::{EncodePublicKey, LineEnding};
    parse_rsa_spki(der)?
        .to_public_key_pem(LineEnding::LF)
        .map_err(|_| DecodeError::InvalidKey("RSA public key does not encode"))
}

fn parse_rsa_spki(der: &[u8]) -> Result<RsaPublicKey, DecodeError> {
    if der.len() > MAX_RSA_SPKI_LEN {
        return Err(DecodeError::TooLarge);
    }
    let key = RsaPublicKey::from_public_key_der(der)
        .map_err(|_| DecodeError::InvalidKey("RSA key is not a valid SPKI DER"))?;
    check_rsa_public(&key)?;
    // Canonical form only: rsaEncryption with NULL parameters, minimal DER. This
    // refuses e.g. an id-RSASSA-PSS key (which the parser accepts) being used for OAEP.
    if rsa_spki_der(&key).ok().as_deref() != Some(der) {
        return Err(DecodeError::InvalidKey(
            "RSA key is not a canonical rsaEncryption SPKI DER",
        ));
    }
    Ok(key)
}

/// The bytes both bundle signatures cover (after their context prefix); see docs/protocol.md.
fn signed_body(
    version: u8,
    user_id: Uuid,
    device_id: Uuid,
    identity_key: &[u8; 32],
    signing_key: &[u8; 32],
    x25519_key: &[u8; 32],
    rsa_spki: Option<&[u8]>,
) -> Result<Vec<u8>, DecodeError> {
    let mut w = Writer::with_capacity(150 + rsa_spki.map_or(0, <[u8]>::len));
    w.u8(version)
        .bytes(user_id.as_bytes())
        .bytes(device_id.as_bytes())
        .bytes(identity_key)
        .bytes(signing_key)
        .bytes(x25519_key);
    w.var16(rsa_spki.unwrap_or(&[]))?;
    Ok(w.into_vec())
}

/// A device whose bundle verified: its identity, signing and encryption keys are
/// well formed and bound together by valid signatures.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifiedDevice {
    user_id: Uuid,
    device_id: Uuid,
    identity: IdentityPublicKey,
    signing: [u8; 32],
    x25519: [u8; 32],
    rsa: Option<Box<RsaPublicKey>>,
}

impl VerifiedDevice {
    /// The owning user.
    pub fn user_id(&self) -> Uuid {
        self.user_id
    }
    /// The device.
    pub fn device_id(&self) -> Uuid {
        self.device_id
    }
    /// The identity key that signed the bundle.
    pub fn identity_key(&self) -> &IdentityPublicKey {
        &self.identity
    }
    /// The device's Ed25519 signing key.
    pub fn signing_key(&self) -> &[u8; 32] {
        &self.signing
    }
    /// The device's X25519 key.
    pub fn x25519_key(&self) -> &[u8; 32] {
        &self.x25519
    }
    /// Whether the device can receive the `rsa` suite.
    pub fn has_rsa(&self) -> bool {
        self.rsa.is_some()
    }
    pub(crate) fn rsa_key(&self) -> Option<&RsaPublicKey> {
        self.rsa.as_deref()
    }
}

impl core::fmt::Debug for VerifiedDevice {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("VerifiedDevice")
            .field("user_id", &self.user_id)
            .field("device_id", &self.device_id)
            .field("identity", &self.identity)
            .field("has_rsa", &self.has_rsa())
            .finish()
    }
}
