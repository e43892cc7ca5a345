use core::fmt;

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use rand_core::CryptoRng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

use crate::encoding::{b64_decode, b64_encode};
use crate::error::{DecodeError, KeyError};
use crate::primitives;

/// A user's long-term identity key pair (Ed25519). Signs the user's device bundles.
///
/// The secret half is zeroized on drop and never printed.
pub struct IdentityKeyPair {
    signing: SigningKey,
}

impl IdentityKeyPair {
    /// Generates a new identity key from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, KeyError> {
        let mut rng = crate::rng::system().map_err(|_| KeyError::Rng)?;
        Ok(Self::generate_with_rng(&mut rng))
    }

    pub(crate) fn generate_with_rng(rng: &mut impl CryptoRng) -> Self {
        Self {
            signing: SigningKey::from_bytes(&Zeroizing::new(crate::rng::array::<32>(rng))),
        }
    }

    /// Rebuilds the key pair from its 32-byte secret seed (RFC 8032 private key).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self {
            signing: SigningKey::from_bytes(seed),
        }
    }

    /// The 32-byte secret seed, for backups. Zeroized on drop.
    pub fn to_seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.signing.to_bytes())
    }

    /// The public identity key.
    pub fn public_key(&self) -> IdentityPublicKey {
        IdentityPublicKey(self.signing.verifying_key())
    }

    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }
}

impl fmt::Debug for IdentityKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityKeyPair")
            .field("public", &self.public_key())
            .field("secret", &"[redacted]")
            .finish()
    }
}

/// A user's public identity key (Ed25519), validated: a canonical point that is
/// not of small order. JSON form: base64url of the 32 raw bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdentityPublicKey(VerifyingKey);

impl IdentityPublicKey {
    /// Parses the 32 raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        primitives::ed25519_public(bytes)
            .map(Self)
            .map_err(|_| DecodeError::InvalidKey("identity key is not a valid Ed25519 public key"))
    }

    /// The 32 raw bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// base64url (no padding) of the raw bytes.
    pub fn to_base64(&self) -> String {
        b64_encode(&self.to_bytes())
    }

    /// Parses base64url (no padding) of the raw bytes.
    pub fn from_base64(text: &str) -> Result<Self, DecodeError> {
        Self::from_bytes(&b64_decode(text)?)
    }

    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        primitives::ed25519_verify(self.0.as_bytes(), message, signature).is_ok()
    }
}

impl fmt::Debug for IdentityPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdentityPublicKey({})", self.to_base64())
    }
}

impl Serialize for IdentityPublicKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_base64())
    }
}

impl<'de> Deserialize<'de> for IdentityPublicKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::from_base64(&text).map_err(serde::de::Error::custom)
    }
}
