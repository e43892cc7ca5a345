//! Sealed envelopes (format v1): one AES-256-GCM content encryption, the content
//! key wrapped once per recipient device, the whole signed by the sender device.
//!
//! Binary layout (all integers big-endian; see `docs/protocol.md`):
//!
//! ```text
//! header      version u8 = 1 ‖ room_id [16] ‖ sender_user_id [16]
//!             ‖ sender_device_id [16] ‖ client_message_id [16] ‖ timestamp_ms u64
//! recipients  count u16 ‖ count × (device_id [16] ‖ suite u8 ‖ len u16 ‖ wrapped [len])
//!             (strictly increasing device_id)
//! content     nonce [12] ‖ len u32 ‖ ciphertext‖tag [len]
//! signature   Ed25519 [64] over "SOTTO-v1 envelope-signature\0" ‖ every preceding byte
//! ```

mod json;
pub mod padding;
mod seal;

pub use json::EnvelopeJson;
#[cfg(feature = "test-vectors")]
pub(crate) use seal::seal_with_rng;
pub use seal::{OpenContext, Opened, Recipient, open, seal};

use uuid::Uuid;

use crate::encoding::{Reader, Writer};
use crate::error::DecodeError;
use crate::suite::Suite;

/// The only envelope format version.
pub const ENVELOPE_VERSION: u8 = 1;
/// Encoded header length.
pub const HEADER_LEN: usize = 1 + 16 * 4 + 8;
/// Largest plaintext `seal` accepts (256 KiB). Larger payloads go in attachments.
pub const MAX_PLAINTEXT: usize = 256 * 1024;
/// Largest ciphertext (padded [`MAX_PLAINTEXT`] plus tag) a parser accepts.
pub const MAX_CIPHERTEXT: usize = 288 * 1024;
/// Default maximum number of recipient devices.
pub const MAX_RECIPIENTS: usize = 1024;
/// Default maximum encoded envelope size (1 MiB).
pub const MAX_ENVELOPE_BYTES: usize = 1024 * 1024;
/// Signature domain-separation prefix.
pub(crate) const SIGNATURE_CONTEXT: &[u8] = b"SOTTO-v1 envelope-signature\0";
/// Content AEAD associated-data prefix; the header follows it.
pub(crate) const CONTENT_AAD_PREFIX: &[u8] = b"SOTTO-v1 content\0";

/// Parser limits. The defaults fit every envelope `seal` can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum recipient entries.
    pub max_recipients: usize,
    /// Maximum total encoded size.
    pub max_envelope_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_recipients: MAX_RECIPIENTS,
            max_envelope_bytes: MAX_ENVELOPE_BYTES,
        }
    }
}

/// The authenticated routing header of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// Room the message belongs to.
    pub room_id: Uuid,
    /// Sending user.
    pub sender_user_id: Uuid,
    /// Sending device.
    pub sender_device_id: Uuid,
    /// Sender-chosen unique message id; the replay id reported by [`open`].
    pub client_message_id: Uuid,
    /// Sender's clock, milliseconds since the Unix epoch (informational).
    pub timestamp_ms: u64,
}

impl Header {
    /// The canonical 73-byte encoding (also the AEAD associated data and part of every wrap context).
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut w = Writer::with_capacity(HEADER_LEN);
        self.write(&mut w);
        let mut out = [0u8; HEADER_LEN];
        out.copy_from_slice(w.as_slice());
        out
    }

    fn write(&self, w: &mut Writer) {
        w.u8(ENVELOPE_VERSION)
            .bytes(self.room_id.as_bytes())
            .bytes(self.sender_user_id.as_bytes())
            .bytes(self.sender_device_id.as_bytes())
            .bytes(self.client_message_id.as_bytes())
            .u64(self.timestamp_ms);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = r.u8()?;
        if version != ENVELOPE_VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        Ok(Self {
            room_id: r.uuid()?,
            sender_user_id: r.uuid()?,
            sender_device_id: r.uuid()?,
            client_message_id: r.uuid()?,
            timestamp_ms: r.u64()?,
        })
    }
}

/// One recipient device's wrapped copy of the content key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientEntry {
    /// The recipient device.
    pub device_id: Uuid,
    /// How the key is wrapped.
    pub suite: Suite,
    /// The wrapped content key.
    pub wrapped_key: Vec<u8>,
}

/// A parsed (not yet authenticated) envelope. Parse with [`Envelope::from_bytes`],
/// authenticate and decrypt with [`open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Routing header.
    pub header: Header,
    /// Recipient entries in strictly increasing device-id order.
    pub recipients: Vec<RecipientEntry>,
    /// Content nonce.
    pub nonce: [u8; 12],
    /// Content ciphertext with its 16-byte tag.
    pub ciphertext: Vec<u8>,
    /// Sender device's Ed25519 signature.
    pub signature: [u8; 64],
}

impl Envelope {
    /// Strictly parses the binary encoding under the default [`Limits`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::from_bytes_with_limits(bytes, &Limits::default())
    }

    /// Strictly parses the binary encoding: exact lengths, known version and
    /// suites, ordered unique recipients, no trailing bytes, within `limits`.
    pub fn from_bytes_with_limits(bytes: &[u8], limits: &Limits) -> Result<Self, DecodeError> {
        if bytes.len() > limits.max_envelope_bytes {
            return Err(DecodeError::TooLarge);
        }
        let mut r = Reader::new(bytes);
        let header = Header::read(&mut r)?;
        let count = usize::from(r.u16()?);
        if count == 0 || count > limits.max_recipients {
            return Err(DecodeError::RecipientCount);
        }
        let mut recipients: Vec<RecipientEntry> = Vec::with_capacity(count);
        for _ in 0..count {
            let device_id = r.uuid()?;
            let suite = Suite::from_id(r.u8()?)?;
            let wrapped = r.var16()?;
            if !suite.valid_wrap_len(wrapped.len()) {
                return Err(DecodeError::BadLength);
            }
            if recipients
                .last()
                .is_some_and(|prev| prev.device_id >= device_id)
            {
                return Err(DecodeError::RecipientOrder);
            }
            recipients.push(RecipientEntry {
                device_id,
                suite,
                wrapped_key: wrapped.to_vec(),
            });
        }
        let nonce = r.array::<12>()?;
        let ct_len = usize::try_from(r.u32()?).map_err(|_| DecodeError::TooLarge)?;
        if ct_len > MAX_CIPHERTEXT {
            return Err(DecodeError::TooLarge);
        }
        if ct_len < 16 {
            return Err(DecodeError::BadLength);
        }
        let ciphertext = r.take(ct_len)?.to_vec();
        let signature = r.array::<64>()?;
        r.finish()?;
        Ok(Self {
            header,
            recipients,
            nonce,
            ciphertext,
            signature,
        })
    }

    /// The canonical binary encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = self.unsigned_bytes();
        w.bytes(&self.signature);
        w.into_vec()
    }

    /// Everything the signature covers (without its context prefix).
    pub(crate) fn unsigned_bytes(&self) -> Writer {
        let wraps: usize = self
            .recipients
            .iter()
            .map(|r| 19 + r.wrapped_key.len())
            .sum();
        let mut w = Writer::with_capacity(HEADER_LEN + 2 + wraps + 16 + self.ciphertext.len() + 64);
        self.header.write(&mut w);
        // Counts and lengths were bounded when the envelope was built or parsed;
        // saturate rather than panic if a caller built an oversized one by hand
        // (the result then simply fails to parse or verify).
        w.u16(u16::try_from(self.recipients.len()).unwrap_or(u16::MAX));
        for entry in &self.recipients {
            w.bytes(entry.device_id.as_bytes()).u8(entry.suite.id());
            w.u16(u16::try_from(entry.wrapped_key.len()).unwrap_or(u16::MAX))
                .bytes(&entry.wrapped_key);
        }
        w.bytes(&self.nonce);
        w.u32(u32::try_from(self.ciphertext.len()).unwrap_or(u32::MAX))
            .bytes(&self.ciphertext);
        w
    }

    /// The routing header, for the relay: parses only what it needs, and checks
    /// nothing it cannot check (it has no keys).
    pub fn peek_header(bytes: &[u8]) -> Result<Header, DecodeError> {
        Header::read(&mut Reader::new(bytes))
    }

    /// The recipient device ids, in order.
    pub fn recipient_devices(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.recipients.iter().map(|r| r.device_id)
    }
}
