//! Key-wrap suites: how a message's content key reaches one recipient device.
//!
//! | id | name     | wrap                                                    | wrapped length |
//! |----|----------|---------------------------------------------------------|----------------|
//! | 1  | `x25519` | HPKE base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM | 80 |
//! | 2  | `rsa`    | RSA-OAEP, SHA-256 and MGF1-SHA-256                       | modulus size (256/384/512) |
//!
//! Both bind the envelope header and the recipient's device id: HPKE through its
//! `info`, RSA-OAEP through its label. One message may mix suites.

pub(crate) mod rsa;
pub(crate) mod x25519;

use serde::{Deserialize, Serialize};

use crate::error::DecodeError;

/// A key-wrap suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Suite {
    /// HPKE (RFC 9180) base mode with DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM.
    X25519,
    /// RSA-OAEP with SHA-256.
    Rsa,
}

impl Suite {
    /// The suite's one-byte identifier in the binary envelope.
    pub fn id(self) -> u8 {
        match self {
            Suite::X25519 => 1,
            Suite::Rsa => 2,
        }
    }

    /// The suite with this identifier.
    pub fn from_id(id: u8) -> Result<Self, DecodeError> {
        match id {
            1 => Ok(Suite::X25519),
            2 => Ok(Suite::Rsa),
            other => Err(DecodeError::UnknownSuite(other)),
        }
    }

    /// Whether `len` is a valid wrapped-key length for this suite.
    pub fn valid_wrap_len(self, len: usize) -> bool {
        match self {
            Suite::X25519 => len == x25519::WRAPPED_LEN,
            Suite::Rsa => matches!(len, 256 | 384 | 512),
        }
    }

    /// The suite's name (`x25519` or `rsa`).
    pub fn name(self) -> &'static str {
        match self {
            Suite::X25519 => "x25519",
            Suite::Rsa => "rsa",
        }
    }
}

/// The context bytes bound into every wrap: `prefix ‖ header ‖ recipient device id`.
pub(crate) fn wrap_context(prefix: &[u8], header: &[u8], device_id: &uuid::Uuid) -> Vec<u8> {
    [prefix, header, device_id.as_bytes()].concat()
}
