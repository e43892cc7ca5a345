//! The JSON form of an envelope: a lossless, strict mirror of the binary form.
//! The signature is always over the binary encoding, so JSON → binary must
//! reproduce the original bytes exactly (it does: every field is fixed).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{ENVELOPE_VERSION, Envelope, Header, Limits, RecipientEntry};
use crate::encoding::B64;
use crate::error::DecodeError;
use crate::suite::Suite;

/// JSON representation of an [`Envelope`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeJson {
    /// Format version (1).
    pub version: u8,
    /// Room id.
    pub room_id: Uuid,
    /// Sender user id.
    pub sender_user_id: Uuid,
    /// Sender device id.
    pub sender_device_id: Uuid,
    /// Client message id (replay id).
    pub client_message_id: Uuid,
    /// Sender timestamp, ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// Recipient entries in strictly increasing device-id order.
    pub recipients: Vec<RecipientJson>,
    /// 12-byte content nonce.
    pub nonce: B64,
    /// Content ciphertext with tag.
    pub ciphertext: B64,
    /// 64-byte Ed25519 signature.
    pub signature: B64,
}

/// JSON representation of a [`RecipientEntry`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipientJson {
    /// Recipient device id.
    pub device_id: Uuid,
    /// `x25519` or `rsa`.
    pub suite: Suite,
    /// Wrapped content key.
    pub wrapped_key: B64,
}

impl Envelope {
    /// The JSON form.
    pub fn to_json(&self) -> EnvelopeJson {
        EnvelopeJson {
            version: ENVELOPE_VERSION,
            room_id: self.header.room_id,
            sender_user_id: self.header.sender_user_id,
            sender_device_id: self.header.sender_device_id,
            client_message_id: self.header.client_message_id,
            timestamp_ms: self.header.timestamp_ms,
            recipients: self
                .recipients
                .iter()
                .map(|r| RecipientJson {
                    device_id: r.device_id,
                    suite: r.suite,
                    wrapped_key: B64(r.wrapped_key.clone()),
                })
                .collect(),
            nonce: B64(self.nonce.to_vec()),
            ciphertext: B64(self.ciphertext.clone()),
            signature: B64(self.signature.to_vec()),
        }
    }

    /// The JSON form as a string.
    pub fn to_json_string(&self) -> String {
        serde_json::to_string(&self.to_json()).unwrap_or_default()
    }

    /// Parses the JSON form strictly and re-validates it through the binary parser,
    /// so both forms accept exactly the same envelopes.
    pub fn from_json_str(json: &str) -> Result<Self, DecodeError> {
        if json.len() > Limits::default().max_envelope_bytes * 2 {
            return Err(DecodeError::TooLarge);
        }
        let j: EnvelopeJson =
            serde_json::from_str(json).map_err(|e| DecodeError::Json(e.to_string()))?;
        Self::from_json(&j)
    }

    /// Converts the JSON form, applying every rule of [`Envelope::from_bytes`].
    pub fn from_json(j: &EnvelopeJson) -> Result<Self, DecodeError> {
        if j.version != ENVELOPE_VERSION {
            return Err(DecodeError::UnsupportedVersion(j.version));
        }
        let nonce: [u8; 12] = j
            .nonce
            .as_bytes()
            .try_into()
            .map_err(|_| DecodeError::BadLength)?;
        let signature: [u8; 64] = j
            .signature
            .as_bytes()
            .try_into()
            .map_err(|_| DecodeError::BadLength)?;
        let env = Envelope {
            header: Header {
                room_id: j.room_id,
                sender_user_id: j.sender_user_id,
                sender_device_id: j.sender_device_id,
                client_message_id: j.client_message_id,
                timestamp_ms: j.timestamp_ms,
            },
            recipients: j
                .recipients
                .iter()
                .map(|r| RecipientEntry {
                    device_id: r.device_id,
                    suite: r.suite,
                    wrapped_key: r.wrapped_key.0.clone(),
                })
                .collect(),
            nonce,
            ciphertext: j.ciphertext.0.clone(),
            signature,
        };
        if env.recipients.len() > u16::MAX.into()
            || env
                .recipients
                .iter()
                .any(|r| r.wrapped_key.len() > u16::MAX.into())
            || env.ciphertext.len() > super::MAX_CIPHERTEXT
        {
            return Err(DecodeError::TooLarge);
        }
        // One set of rules: round-trip through the strict binary parser.
        Envelope::from_bytes(&env.to_bytes())
    }
}
