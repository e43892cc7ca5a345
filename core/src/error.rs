//! Typed errors, one enum per operation. All are `#[non_exhaustive]`.
//!
//! [`OpenError`] deliberately says little: every failure after the signature
//! check that could depend on secret data (unwrapping, decryption, padding) is
//! reported as the single variant [`OpenError::DecryptionFailed`].

use thiserror::Error;

/// A byte string, base64 text or JSON document does not parse under the strict rules.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before a field was complete.
    #[error("input is truncated")]
    Truncated,
    /// Bytes remain after the last field.
    #[error("trailing bytes after the end of the structure")]
    TrailingBytes,
    /// The input or one of its fields exceeds a size limit.
    #[error("input exceeds a size limit")]
    TooLarge,
    /// The format version is not one this library understands.
    #[error("unsupported format version {0}")]
    UnsupportedVersion(u8),
    /// A suite identifier is not known.
    #[error("unknown suite {0}")]
    UnknownSuite(u8),
    /// A recipient count is zero or above the limit.
    #[error("invalid number of recipients")]
    RecipientCount,
    /// Recipient entries are not in strictly increasing device-id order (or repeat one).
    #[error("recipient entries are not strictly ordered by device id")]
    RecipientOrder,
    /// A field has a length its type does not allow.
    #[error("field has an invalid length")]
    BadLength,
    /// A magic number or fixed field does not have its required value.
    #[error("unrecognised format")]
    BadMagic,
    /// Base64url text is invalid (padding, wrong alphabet or non-canonical).
    #[error("invalid base64url")]
    Base64,
    /// A public key is malformed or unacceptable (wrong size, low order, bad RSA parameters).
    #[error("invalid public key: {0}")]
    InvalidKey(&'static str),
    /// JSON is malformed, has unknown fields or wrong types.
    #[error("invalid JSON: {0}")]
    Json(String),
}

/// Key generation or key import failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The operating system's random number generator failed.
    #[error("the system random number generator failed")]
    Rng,
    /// RSA key generation failed.
    #[error("RSA key generation failed")]
    RsaGeneration,
    /// An RSA size other than 2048, 3072 or 4096 bits.
    #[error("unsupported RSA key size (2048, 3072 or 4096 bits are accepted)")]
    UnsupportedRsaSize,
    /// Key material does not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// A device bundle failed verification.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BundleError {
    /// A field is malformed.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The identity key's signature over the bundle is invalid.
    #[error("identity signature is invalid")]
    BadIdentitySignature,
    /// The device signing key's signature over the bundle is invalid.
    #[error("device signature is invalid")]
    BadDeviceSignature,
    /// The bundle is signed by a different identity key than the one expected.
    #[error("bundle is signed by an unexpected identity key")]
    IdentityMismatch,
}

/// Sealing a message failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SealError {
    /// No recipients, or more than the limit.
    #[error("invalid number of recipients")]
    RecipientCount,
    /// The same device appears twice among the recipients.
    #[error("duplicate recipient device")]
    DuplicateRecipient,
    /// The plaintext is larger than [`crate::envelope::MAX_PLAINTEXT`].
    #[error("plaintext too large")]
    PlaintextTooLarge,
    /// The RSA suite was requested for a device that has no RSA key.
    #[error("recipient device has no RSA key")]
    NoRsaKey,
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Rng,
    /// A primitive failed (a recipient key is unusable).
    #[error("encryption failed")]
    Crypto,
}

/// Opening a message failed. Reveals only what an attacker already knows.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The envelope does not parse, or exceeds a limit.
    #[error("malformed envelope: {0}")]
    Malformed(DecodeError),
    /// The envelope's version is not supported.
    #[error("unsupported envelope version")]
    UnsupportedVersion,
    /// A recipient entry uses an unknown suite.
    #[error("unsupported suite")]
    UnsupportedSuite,
    /// The signature does not verify under the sender device key the caller trusts.
    #[error("signature verification failed")]
    BadSignature,
    /// The envelope has no entry for this device.
    #[error("this device is not a recipient")]
    NotARecipient,
    /// Unwrapping the content key or decrypting the content failed.
    #[error("decryption failed")]
    DecryptionFailed,
    /// The authenticated header names another room or sender than the one the message arrived from.
    #[error("message does not belong to the context it arrived in")]
    ContextMismatch,
}

impl From<DecodeError> for OpenError {
    fn from(e: DecodeError) -> Self {
        match e {
            DecodeError::UnsupportedVersion(_) => OpenError::UnsupportedVersion,
            DecodeError::UnknownSuite(_) => OpenError::UnsupportedSuite,
            other => OpenError::Malformed(other),
        }
    }
}

/// Exporting or importing a key backup failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BackupError {
    /// The blob does not parse.
    #[error("malformed backup: {0}")]
    Malformed(DecodeError),
    /// Argon2 parameters are outside the accepted bounds.
    #[error("backup key-derivation parameters are out of bounds")]
    BadParameters,
    /// Wrong passphrase or recovery key, or the backup was modified.
    #[error("wrong passphrase or recovery key, or the backup is corrupted")]
    WrongKeyOrCorrupted,
    /// A recovery key's text is malformed or its checksum does not match.
    #[error("recovery key is malformed")]
    BadRecoveryKey,
    /// The passphrase is empty.
    #[error("passphrase must not be empty")]
    EmptyPassphrase,
    /// Key derivation failed.
    #[error("key derivation failed")]
    Kdf,
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Rng,
}

impl From<DecodeError> for BackupError {
    fn from(e: DecodeError) -> Self {
        BackupError::Malformed(e)
    }
}
