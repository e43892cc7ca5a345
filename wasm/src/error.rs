//! Errors thrown to JavaScript: `Error` objects with a stable `code` property
//! (and, for attachment errors, a `detail`), as listed in `wasm/API.md`.
//!
//! Every variant of every core error enum is mapped here on purpose; the core
//! enums are `#[non_exhaustive]`, so a variant added later falls to `internal`
//! until it is mapped (the host tests list every current variant).

use core::fmt;

use sotto_core::attachment::AttachmentError;
use sotto_core::{BackupError, BundleError, DecodeError, KeyError, OpenError, SealError};
use wasm_bindgen::JsValue;

/// The stable error codes (`err.code` in JavaScript).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Code {
    /// Bytes or JSON that do not parse.
    Malformed,
    /// Input above a limit.
    TooLarge,
    /// A format version this build does not know.
    UnsupportedVersion,
    /// An unknown suite id or name.
    UnsupportedSuite,
    /// A key that is not acceptable.
    InvalidKey,
    /// An envelope or bundle signature does not verify.
    BadSignature,
    /// A bundle signed by another identity key than the pinned one.
    IdentityMismatch,
    /// The envelope has no entry for this device.
    NotARecipient,
    /// AEAD or key-unwrap failure.
    DecryptionFailed,
    /// The envelope's room or sender differs from what the caller expects.
    ContextMismatch,
    /// Seal: no recipients or too many.
    RecipientCount,
    /// Seal: the same device twice.
    DuplicateRecipient,
    /// Seal: the `rsa` suite for a device without an RSA key.
    NoRsaKey,
    /// Backup: wrong passphrase or recovery key, or a tampered blob.
    WrongKeyOrCorrupted,
    /// A recovery key string that does not parse.
    BadRecoveryKey,
    /// Backup Argon2 parameters out of range.
    BadParameters,
    /// An empty passphrase.
    EmptyPassphrase,
    /// Attachment stream errors; `detail` says which.
    Attachment,
    /// A JavaScript value of the wrong type or shape.
    InvalidArgument,
    /// The platform CSPRNG failed.
    Rng,
    /// A primitive failed where it cannot for valid input (RSA key generation,
    /// key derivation): a bug or resource exhaustion.
    Internal,
}

impl Code {
    /// Every code, in the order of `wasm/API.md`.
    pub const ALL: &'static [Code] = &[
        Code::Malformed,
        Code::TooLarge,
        Code::UnsupportedVersion,
        Code::UnsupportedSuite,
        Code::InvalidKey,
        Code::BadSignature,
        Code::IdentityMismatch,
        Code::NotARecipient,
        Code::DecryptionFailed,
        Code::ContextMismatch,
        Code::RecipientCount,
        Code::DuplicateRecipient,
        Code::NoRsaKey,
        Code::WrongKeyOrCorrupted,
        Code::BadRecoveryKey,
        Code::BadParameters,
        Code::EmptyPassphrase,
        Code::Attachment,
        Code::InvalidArgument,
        Code::Rng,
        Code::Internal,
    ];

    /// The string JavaScript sees.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Malformed => "malformed",
            Code::TooLarge => "too_large",
            Code::UnsupportedVersion => "unsupported_version",
            Code::UnsupportedSuite => "unsupported_suite",
            Code::InvalidKey => "invalid_key",
            Code::BadSignature => "bad_signature",
            Code::IdentityMismatch => "identity_mismatch",
            Code::NotARecipient => "not_a_recipient",
            Code::DecryptionFailed => "decryption_failed",
            Code::ContextMismatch => "context_mismatch",
            Code::RecipientCount => "recipient_count",
            Code::DuplicateRecipient => "duplicate_recipient",
            Code::NoRsaKey => "no_rsa_key",
            Code::WrongKeyOrCorrupted => "wrong_key_or_corrupted",
            Code::BadRecoveryKey => "bad_recovery_key",
            Code::BadParameters => "bad_parameters",
            Code::EmptyPassphrase => "empty_passphrase",
            Code::Attachment => "attachment",
            Code::InvalidArgument => "invalid_argument",
            Code::Rng => "rng",
            Code::Internal => "internal",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure as JavaScript will see it: a code, an optional detail (attachment
/// errors) and a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    code: Code,
    detail: Option<&'static str>,
    message: String,
}

impl Error {
    /// An error with `code` and `message`.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            detail: None,
            message: message.into(),
        }
    }

    /// A JavaScript value of the wrong type or shape.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidArgument, message)
    }

    /// Bytes, text or JSON that do not parse.
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(Code::Malformed, message)
    }

    /// The code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The detail (attachment errors only).
    pub fn detail(&self) -> Option<&'static str> {
        self.detail
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    fn with_detail(mut self, detail: &'static str) -> Self {
        self.detail = Some(detail);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.detail {
            Some(d) => write!(f, "{} ({}/{})", self.message, self.code, d),
            None => write!(f, "{} ({})", self.message, self.code),
        }
    }
}

impl std::error::Error for Error {}

impl From<Error> for JsValue {
    /// A JavaScript `Error` with `code` (and `detail`) properties.
    fn from(e: Error) -> JsValue {
        let err = js_sys::Error::new(&e.message);
        let obj: &JsValue = err.as_ref();
        // Setting a property on a fresh Error cannot fail.
        let _ = js_sys::Reflect::set(obj, &JsValue::from_str("code"), &e.code.as_str().into());
        if let Some(detail) = e.detail {
            let _ = js_sys::Reflect::set(obj, &JsValue::from_str("detail"), &detail.into());
        }
        err.into()
    }
}

/// The code of a decoding failure, wherever it is reported.
fn decode_code(e: &DecodeError) -> Code {
    match e {
        DecodeError::Truncated
        | DecodeError::TrailingBytes
        | DecodeError::RecipientCount
        | DecodeError::RecipientOrder
        | DecodeError::BadLength
        | DecodeError::BadMagic
        | DecodeError::Base64
        | DecodeError::Json(_) => Code::Malformed,
        DecodeError::TooLarge => Code::TooLarge,
        DecodeError::UnsupportedVersion(_) => Code::UnsupportedVersion,
        DecodeError::UnknownSuite(_) => Code::UnsupportedSuite,
        DecodeError::InvalidKey(_) => Code::InvalidKey,
        _ => Code::Malformed,
    }
}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Self {
        Self::new(decode_code(&e), e.to_string())
    }
}

impl From<KeyError> for Error {
    fn from(e: KeyError) -> Self {
        let code = match &e {
            KeyError::Rng => Code::Rng,
            KeyError::RsaGeneration => Code::Internal,
            KeyError::UnsupportedRsaSize => Code::InvalidArgument,
            KeyError::Decode(d) => decode_code(d),
            _ => Code::Internal,
        };
        Self::new(code, e.to_string())
    }
}

impl From<BundleError> for Error {
    fn from(e: BundleError) -> Self {
        let code = match &e {
            BundleError::Decode(d) => decode_code(d),
            BundleError::BadIdentitySignature | BundleError::BadDeviceSignature => {
                Code::BadSignature
            }
            BundleError::IdentityMismatch => Code::IdentityMismatch,
            _ => Code::Internal,
        };
        Self::new(code, e.to_string())
    }
}

impl From<SealError> for Error {
    fn from(e: SealError) -> Self {
        let code = match &e {
            SealError::RecipientCount => Code::RecipientCount,
            SealError::DuplicateRecipient => Code::DuplicateRecipient,
            SealError::PlaintextTooLarge => Code::TooLarge,
            SealError::NoRsaKey => Code::NoRsaKey,
            SealError::Rng => Code::Rng,
            // "A recipient key is unusable" (core's wording).
            SealError::Crypto => Code::InvalidKey,
            _ => Code::Internal,
        };
        Self::new(code, e.to_string())
    }
}

impl From<OpenError> for Error {
    fn from(e: OpenError) -> Self {
        let code = match &e {
            OpenError::Malformed(d) => decode_code(d),
            OpenError::UnsupportedVersion => Code::UnsupportedVersion,
            OpenError::UnsupportedSuite => Code::UnsupportedSuite,
            OpenError::BadSignature => Code::BadSignature,
            OpenError::NotARecipient => Code::NotARecipient,
            OpenError::DecryptionFailed => Code::DecryptionFailed,
            OpenError::ContextMismatch => Code::ContextMismatch,
            _ => Code::Internal,
        };
        Self::new(code, e.to_string())
    }
}

impl From<BackupError> for Error {
    fn from(e: BackupError) -> Self {
        let code = match &e {
            BackupError::Malformed(d) => decode_code(d),
            BackupError::BadParameters => Code::BadParameters,
            BackupError::WrongKeyOrCorrupted => Code::WrongKeyOrCorrupted,
            BackupError::BadRecoveryKey => Code::BadRecoveryKey,
            BackupError::EmptyPassphrase => Code::EmptyPassphrase,
            BackupError::Kdf => Code::Internal,
            BackupError::Rng => Code::Rng,
            _ => Code::Internal,
        };
        Self::new(code, e.to_string())
    }
}

impl From<AttachmentError> for Error {
    fn from(e: AttachmentError) -> Self {
        let detail = match &e {
            AttachmentError::BadMagic => "bad_header",
            AttachmentError::UnsupportedVersion(_) => "unsupported_version",
            AttachmentError::BadChunkSize(_) => "bad_chunk_size",
            AttachmentError::Truncated => "truncated",
            AttachmentError::WrongKeyOrCorrupted => "decryption_failed",
            AttachmentError::DigestMismatch => "digest_mismatch",
            AttachmentError::SizeMismatch => "size_mismatch",
            AttachmentError::BadPointer(_) => "bad_pointer",
            AttachmentError::TooLarge => "too_large",
            AttachmentError::Rng => return Self::new(Code::Rng, e.to_string()),
            AttachmentError::Crypto => return Self::new(Code::Internal, e.to_string()),
            _ => return Self::new(Code::Internal, e.to_string()),
        };
        Self::new(Code::Attachment, e.to_string()).with_detail(detail)
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = core::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    fn code(e: impl Into<Error>) -> &'static str {
        e.into().code().as_str()
    }

    #[test]
    fn codes_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for c in Code::ALL {
            let s = c.as_str();
            assert!(seen.insert(s), "duplicate code {s}");
            assert!(
                s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{s}"
            );
        }
    }

    #[test]
    fn every_code_is_documented_in_api_md() {
        let api = include_str!("../API.md");
        for c in Code::ALL {
            assert!(
                api.contains(&format!("`{}`", c.as_str())),
                "{c} missing from API.md"
            );
        }
    }

    #[test]
    fn decode_errors() {
        for (e, want) in [
            (DecodeError::Truncated, "malformed"),
            (DecodeError::TrailingBytes, "malformed"),
            (DecodeError::RecipientCount, "malformed"),
            (DecodeError::RecipientOrder, "malformed"),
            (DecodeError::BadLength, "malformed"),
            (DecodeError::BadMagic, "malformed"),
            (DecodeError::Base64, "malformed"),
            (DecodeError::Json("x".into()), "malformed"),
            (DecodeError::TooLarge, "too_large"),
            (DecodeError::UnsupportedVersion(2), "unsupported_version"),
            (DecodeError::UnknownSuite(9), "unsupported_suite"),
            (DecodeError::InvalidKey("k"), "invalid_key"),
        ] {
            assert_eq!(code(e.clone()), want, "{e:?}");
            assert_eq!(code(BundleError::Decode(e.clone())), want, "{e:?}");
            assert_eq!(code(KeyError::Decode(e.clone())), want, "{e:?}");
            assert_eq!(code(BackupError::Malformed(e.clone())), want, "{e:?}");
            assert_eq!(code(OpenError::Malformed(e.clone())), want, "{e:?}");
        }
    }

    #[test]
    fn key_bundle_seal_open_errors() {
        assert_eq!(code(KeyError::Rng), "rng");
        assert_eq!(code(KeyError::RsaGeneration), "internal");
        assert_eq!(code(KeyError::UnsupportedRsaSize), "invalid_argument");
        assert_eq!(code(BundleError::BadIdentitySignature), "bad_signature");
        assert_eq!(code(BundleError::BadDeviceSignature), "bad_signature");
        assert_eq!(code(BundleError::IdentityMismatch), "identity_mismatch");
        assert_eq!(code(SealError::RecipientCount), "recipient_count");
        assert_eq!(code(SealError::DuplicateRecipient), "duplicate_recipient");
        assert_eq!(code(SealError::PlaintextTooLarge), "too_large");
        assert_eq!(code(SealError::NoRsaKey), "no_rsa_key");
        assert_eq!(code(SealError::Rng), "rng");
        assert_eq!(code(SealError::Crypto), "invalid_key");
        assert_eq!(code(OpenError::UnsupportedVersion), "unsupported_version");
        assert_eq!(code(OpenError::UnsupportedSuite), "unsupported_suite");
        assert_eq!(code(OpenError::BadSignature), "bad_signature");
        assert_eq!(code(OpenError::NotARecipient), "not_a_recipient");
        assert_eq!(code(OpenError::DecryptionFailed), "decryption_failed");
        assert_eq!(code(OpenError::ContextMismatch), "context_mismatch");
        // Core folds version and suite decode errors into dedicated open variants.
        assert_eq!(
            code(OpenError::from(DecodeError::UnknownSuite(3))),
            "unsupported_suite"
        );
    }

    #[test]
    fn backup_errors() {
        assert_eq!(code(BackupError::BadParameters), "bad_parameters");
        assert_eq!(
            code(BackupError::WrongKeyOrCorrupted),
            "wrong_key_or_corrupted"
        );
        assert_eq!(code(BackupError::BadRecoveryKey), "bad_recovery_key");
        assert_eq!(code(BackupError::EmptyPassphrase), "empty_passphrase");
        assert_eq!(code(BackupError::Kdf), "internal");
        assert_eq!(code(BackupError::Rng), "rng");
    }

    #[test]
    fn attachment_errors_carry_a_detail() {
        for (e, detail) in [
            (AttachmentError::BadMagic, "bad_header"),
            (
                AttachmentError::UnsupportedVersion(2),
                "unsupported_version",
            ),
            (AttachmentError::BadChunkSize(1), "bad_chunk_size"),
            (AttachmentError::Truncated, "truncated"),
            (AttachmentError::WrongKeyOrCorrupted, "decryption_failed"),
            (AttachmentError::DigestMismatch, "digest_mismatch"),
            (AttachmentError::SizeMismatch, "size_mismatch"),
            (AttachmentError::BadPointer("p"), "bad_pointer"),
            (AttachmentError::TooLarge, "too_large"),
        ] {
            let err = Error::from(e);
            assert_eq!(err.code(), Code::Attachment);
            assert_eq!(err.detail(), Some(detail));
        }
        assert_eq!(code(AttachmentError::Rng), "rng");
        assert_eq!(code(AttachmentError::Crypto), "internal");
    }
}
